#!/usr/bin/env bash
# trusted_install — a database owner who is not a superuser installs and runs lowcode
# (trusted = true), and gains no superuser rights through it.
#
# 1. Role dbo (no superuser) owns database app and runs CREATE EXTENSION lowcode there.
#    lowcode's tables, views and SECURITY DEFINER entry points belong to dbo; every other
#    function (helpers, triggers, the C functions) to the superuser.
# 2. dbo runs an app end to end: definitions, typed views, a workflow with a `call` action,
#    grants to a worker role that submits and claims, timers, the outbox, export/import.
# 3. dbo cannot turn that into superuser rights: it cannot change a C function, replace or
#    alter any lowcode function (lowcode_guard, ownership), or add a trigger to lowcode's
#    tables; an entry point a superuser calls runs with dbo's rights; no SQL function runs
#    code as another role, and dbo cannot forge what a call runs or as whom.
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
expect_as "dbo owns the tables but the publishers' call grants" "lowcode.call_grants" dbo app \
    "SELECT string_agg(format('%I.%I', schemaname, tablename), ',') FROM pg_tables WHERE schemaname = 'lowcode' AND tableowner <> 'dbo'"
# (The SECURITY DEFINER entry points written in Rust belong to dbo like the others, so they run
# with dbo's rights, never a superuser's; dbo cannot replace a C function's code, and the DDL
# guard refuses ALTER FUNCTION on lowcode's functions.)
expect_as "the superuser keeps the C functions that are not SECURITY DEFINER" "0" dbo app \
    "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.pronamespace = 'lowcode'::regnamespace AND l.lanname = 'c' AND NOT p.prosecdef
        AND p.proowner = 'dbo'::regrole"
expect_as "the SECURITY DEFINER C functions run as dbo" \
    "call_at,claim_task,claim_task,claimable_tasks,complete_task,decide,my_tasks,reassign_task,release_task,run_due_timers,submit,submit,transition,update_record,view_write,withdraw|16" dbo app \
    "SELECT string_agg(p.proname, ',' ORDER BY p.proname), count(*) FILTER (WHERE p.proowner = 'dbo'::regrole)
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.pronamespace = 'lowcode'::regnamespace AND l.lanname = 'c' AND p.prosecdef"
expect_as "dbo owns the SECURITY DEFINER functions, and only those" "t|0" dbo app \
    "SELECT count(*) >= 30 AND bool_and(p.proowner = 'dbo'::regrole), count(*) FILTER (WHERE p.proowner = 'dbo'::regrole AND NOT p.prosecdef)
       FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace AND (p.prosecdef OR p.proowner = 'dbo'::regrole)"

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
expect_as "the worker sees its own voucher, stamped by the call action as the workflow's publisher" "wu|dbo" worker app \
    "SELECT student, stamped_by FROM canteen.voucher"
expect_as "dbo sees both" "2" dbo app "SELECT count(*) FROM canteen.voucher"
expect_as "the worker's claim moved li's voucher" "checked" dbo app \
    "SELECT state FROM lowcode.records WHERE data ->> 'student' = 'li'"
fails_as "a negative balance is refused" 23514 worker app \
    "INSERT INTO canteen.voucher (student, balance) VALUES ('wu', -1)"
as dbo app -c "UPDATE lowcode.timers SET fire_at = now() - interval '1 second'" >/dev/null
expect_as "dbo runs the timers (li's left with its state)" "1" dbo app "SELECT lowcode.run_due_timers()"
as dbo app -c "SELECT lowcode.create_consumer('audit', '{\"app\": \"canteen\", \"from\": \"beginning\"}')" >/dev/null
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
CREATE FUNCTION public.grab_call(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE dbo SUPERUSER;
    RETURN '{}';
END $$;
SQL
fails_as "dbo cannot add a trigger to lowcode.records" 42501 dbo app \
    "CREATE TRIGGER grab BEFORE INSERT ON lowcode.records FOR EACH ROW EXECUTE FUNCTION public.grab()"
fails_as "dbo cannot replace an entry point it owns" 42501 dbo app \
    "CREATE OR REPLACE FUNCTION lowcode.run_due_timers(max int DEFAULT 1000) RETURNS int LANGUAGE sql AS 'ALTER ROLE dbo SUPERUSER; SELECT 0'"
fails_as "dbo cannot make an entry point SECURITY INVOKER" 42501 dbo app \
    "ALTER FUNCTION lowcode.run_due_timers(int) SECURITY INVOKER"
fails_as "dbo cannot replace a helper that runs as its caller" 42501 dbo app \
    "CREATE OR REPLACE FUNCTION lowcode.is_admin() RETURNS boolean LANGUAGE sql AS 'SELECT true'"
# A workflow call written by dbo, fired by a superuser's timer run: runs as dbo, not as the superuser.
as dbo app >/dev/null <<'SQL'
SELECT lowcode.define_form('canteen', 'audit', '{"type": "object"}');
SELECT lowcode.define_workflow('canteen', 'audit', '{"states": {"s": {"initial": true}},
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "t", "after": "1 hour"}}]},
            {"name": "grab", "on": "timer:t", "then": [{"call": "public.grab_call"}]}]}');
SELECT lowcode.submit('canteen', 'audit', '{}');
UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE status = 'pending';
SQL
expect_as "the superuser's timer run fires dbo's call as dbo" "0" postgres app "SELECT lowcode.run_due_timers()"
expect_as "and it failed to escalate" "failed" dbo app "SELECT status FROM lowcode.timers WHERE event = 'timer:t'"
# dbo owns workflow_versions, but what a call runs and as whom is in lowcode.call_grants, which
# only lowcode writes: a forged calls_run_as changes nothing, and dbo may add a grant only for
# a role whose rights it has (pg_restore of its own database).
as dbo app >/dev/null <<'SQL'
UPDATE lowcode.workflow_versions SET calls_run_as = 'postgres' WHERE form = 'audit';
SELECT lowcode.submit('canteen', 'audit', '{}');
UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE status = 'pending';
SQL
as postgres app -c "SELECT lowcode.run_due_timers()" >/dev/null
expect_as "a forged calls_run_as is ignored: the call ran as dbo and could not escalate" "failed|t" dbo app \
    "SELECT status, error LIKE 'must be superuser%' FROM lowcode.timers WHERE event = 'timer:t' ORDER BY id DESC LIMIT 1"
fails_as "dbo cannot grant a call to a superuser" 42501 dbo app \
    "INSERT INTO lowcode.call_grants VALUES ((SELECT max(id) FROM lowcode.workflow_versions), 'x', 'public.grab_call(jsonb)', 'postgres')"
fails_as "dbo cannot change a grant" 42501 dbo app "UPDATE lowcode.call_grants SET run_as = 'postgres'"
fails_as "there is no SQL function that runs code as another role" 42883 worker app \
    "SELECT lowcode.call_as('dbo', 'SELECT NULL::jsonb', '{}')"
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
