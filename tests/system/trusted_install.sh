#!/usr/bin/env bash
# trusted_install — a database owner who is not a superuser installs and runs lowcode
# (trusted = true), and gains no superuser rights through it.
#
# 1. Role dbo (no superuser) owns database app and runs CREATE EXTENSION lowcode there.
#    lowcode's SQL objects belong to dbo, its C functions to the superuser.
# 2. dbo runs an app end to end: definitions, typed views, a workflow with a `call` action,
#    grants to a worker role that submits and claims, timers, the outbox, export/import.
# 3. dbo cannot turn that into superuser rights: it cannot change a C function; a trigger it
#    adds to lowcode.records runs with dbo's rights even when a superuser submits, so its
#    ALTER ROLE fails; lowcode.call_as_invoker is lowcode's alone.
# 4. dbo can pg_dump its database and pg_restore it into another database it owns.
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

sys_start main 28855

as() { # as ROLE DB [psql args] — psql as another role (lc_messages is not theirs to set)
    local role="$1" db="$2"
    shift 2
    lc_as_pg "$pg_bin/psql" -h "$(sys_sock main)" -p "$(sys_port main)" -U "$role" -d "$db" \
        -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}
fails_as() { # fails_as WHAT STATE ROLE DB SQL
    local what="$1" state="$2" role="$3" db="$4" query="$5" out
    out="$(as "$role" "$db" -v VERBOSITY=sqlstate -c "$query" 2>&1)" &&
        fail "$what: succeeded, expected SQLSTATE $state ($query)"
    case "$out" in
        *"ERROR:  $state"*) ;;
        *) fail "$what: expected SQLSTATE $state, got: $out" ;;
    esac
}
expect_as() { # expect_as WHAT WANT ROLE DB SQL
    local what="$1" want="$2" role="$3" db="$4" query="$5" got
    got="$(as "$role" "$db" -c "$query")" || fail "$what: query failed as $role on $db: $query"
    [ "$got" = "$want" ] || fail "$what: expected '$want', got '$got' (as $role on $db: $query)"
}

step "a database owner who is not a superuser installs lowcode"
sys_psql main -d postgres >/dev/null <<'SQL'
CREATE ROLE dbo LOGIN NOSUPERUSER;
CREATE ROLE worker LOGIN;
CREATE DATABASE app OWNER dbo;
CREATE DATABASE app2 OWNER dbo;
SQL
as dbo app -c "CREATE EXTENSION lowcode" >/dev/null
expect_as "dbo is no superuser" "f" dbo app "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
expect_as "dbo owns the extension" "dbo" dbo app \
    "SELECT extowner::regrole FROM pg_extension WHERE extname = 'lowcode'"
expect_as "dbo owns the tables" "0" dbo app \
    "SELECT count(*) FROM pg_tables WHERE schemaname = 'lowcode' AND tableowner <> 'dbo'"
expect_as "the superuser keeps the C functions" "0" dbo app \
    "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.pronamespace = 'lowcode'::regnamespace AND l.lanname = 'c' AND p.proowner = 'dbo'::regrole"
expect_as "dbo owns the SQL functions" "0" dbo app \
    "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.pronamespace = 'lowcode'::regnamespace AND l.lanname <> 'c' AND p.proowner <> 'dbo'::regrole"

step "dbo runs an app"
as dbo app >/dev/null <<'SQL'
CREATE FUNCTION public.stamp(r jsonb) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_build_object('stamped_by', current_user::text) $$;
SELECT lowcode.create_app('canteen', 'Canteen');
SELECT lowcode.define_form('canteen', 'voucher', '{"type": "object", "required": ["student", "balance"],
  "properties": {"student": {"type": "string"}, "balance": {"type": "number", "minimum": 0},
                 "stamped_by": {"type": "string"}}}');
SELECT lowcode.define_workflow('canteen', 'voucher', '{
  "states": {"issued": {"initial": true}, "checked": {"final": true}},
  "rules": [{"name": "stamp", "on": "created", "then": [{"call": "public.stamp"},
            {"task": {"name": "check", "pool": "cashiers"}}, {"timer": {"name": "expire", "after": "1 day"}},
            {"emit": {"topic": "voucher.issued"}}]},
            {"name": "done", "on": "task_completed:check", "then": [{"transition": "checked"}]}]}');
SELECT lowcode.publish('canteen');
SELECT lowcode.grant('canteen', 'worker', ARRAY['submit', 'read_own', 'claim']);
SELECT lowcode.submit('canteen', 'voucher', '{"student": "li", "balance": 10}');
SQL
as worker app >/dev/null <<'SQL'
INSERT INTO canteen.voucher (student, balance) VALUES ('wu', 5);
SELECT lowcode.complete_task(lowcode.claim_task('cashiers'), 'ok');
SQL
expect_as "the worker sees its own voucher, stamped by the call action as itself" "wu|worker" worker app \
    "SELECT student, stamped_by FROM canteen.voucher"
expect_as "dbo sees both" "2" dbo app "SELECT count(*) FROM canteen.voucher"
expect_as "the worker's claim moved li's voucher" "checked" dbo app \
    "SELECT state FROM lowcode.records WHERE data ->> 'student' = 'li'"
fails_as "a negative balance is refused" 23514 worker app \
    "INSERT INTO canteen.voucher (student, balance) VALUES ('wu', -1)"
as dbo app -c "UPDATE lowcode.timers SET fire_at = now() - interval '1 second'" >/dev/null
expect_as "dbo runs the timers (li's left with its state)" "1" dbo app "SELECT lowcode.run_due_timers()"
expect_as "dbo polls the outbox" "2" dbo app "SELECT count(*) FROM lowcode.poll_events('audit')"
expect_as "dbo exports and re-imports the app" "0" dbo app \
    "SELECT count(*) FROM lowcode.diff_app('canteen', lowcode.export_app('canteen'))"

step "dbo gains no superuser rights"
fails_as "dbo cannot change a C function" 42501 dbo app \
    "ALTER FUNCTION lowcode.check_record(text, text, jsonb) CALLED ON NULL INPUT"
as dbo app >/dev/null <<'SQL'
CREATE FUNCTION public.grab() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE dbo SUPERUSER;
    RETURN NEW;
END $$;
CREATE TRIGGER grab BEFORE INSERT ON lowcode.records FOR EACH ROW EXECUTE FUNCTION public.grab();
SQL
fails_as "dbo's trigger runs with dbo's rights when the superuser submits" 42501 postgres app \
    "SELECT lowcode.submit('canteen', 'voucher', '{\"student\": \"root\", \"balance\": 1}')"
as dbo app -c "DROP TRIGGER grab ON lowcode.records" >/dev/null
fails_as "other roles cannot run code as their caller" 42501 worker app \
    "SELECT lowcode.call_as_invoker('SELECT NULL::jsonb', '{}')"
expect_as "dbo is still no superuser" "f" dbo app "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbo'"

step "dbo dumps and restores its database"
{ lc_as_pg "$pg_bin/pg_dump" -h "$(sys_sock main)" -p "$(sys_port main)" -U dbo -Fc app ||
    echo "pg_dump failed" >&2; } |
    lc_as_pg "$pg_bin/pg_restore" -h "$(sys_sock main)" -p "$(sys_port main)" -U dbo -d app2 --exit-on-error ||
    fail "pg_dump | pg_restore as dbo failed"
# (events.txid is re-based on restore on purpose, see dump_restore.)
for table in records history tasks timers events grants hidden_fields; do
    rows="SELECT count(*) || ':' || md5(coalesce(string_agg((to_jsonb(t) - 'txid')::text, ',' ORDER BY t.*::text), ''))
            FROM lowcode.$table t"
    want="$(as dbo app -c "$rows")"
    expect_as "restored lowcode.$table" "$want" dbo app2 "$rows"
done
as worker app2 -c "INSERT INTO canteen.voucher (student, balance) VALUES ('zhao', 3)" >/dev/null ||
    fail "the worker cannot submit in the restored database"
expect_as "the restored app still validates" "1" worker app2 "SELECT count(*) FROM canteen.voucher WHERE student = 'zhao'"

finish
