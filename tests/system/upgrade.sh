#!/usr/bin/env bash
# upgrade — ALTER EXTENSION lowcode UPDATE from the last release to the current version, on a
# lived-in database, by a superuser and by a database owner who is not one (trusted install).
#
# The compatibility rule (docs/operations.md, "Upgrading"): there is one library,
# $libdir/lowcode (module_pathname in lowcode.control), and the library of version N serves the
# SQL of every released version before N until that database runs ALTER EXTENSION lowcode
# UPDATE. So this test installs the frozen script of the release FROM
# (sql/releases/lowcode--FROM.sql, which never changes) with the library built from the current
# code, and checks:
#
# 1. Frozen check: if the current version is itself frozen, its frozen script equals what the
#    code generates (apart from pgrx's "-- src/file.rs:line" comments). FROM is the newest
#    frozen release older than the current version; the update path FROM -> current must exist
#    (sql/lowcode--FROM--TO.sql, installed by `cargo pgrx install`; the test also copies them
#    from sql/ into the extension directory, and the frozen FROM script; files it adds are
#    removed afterwards, files it replaced are restored).
# 2. For each installer (postgres, a superuser; dbo, a database owner who is not one):
#    CREATE EXTENSION lowcode VERSION FROM, and fill it with a lived-in app using only FROM's
#    API: form versions 1 and 2, records in every workflow state, open and claimed tasks,
#    pending / decided / withdrawn approvals, pending, fired and cancelled timers, events acked,
#    in flight (failed once), never delivered and dead, a consumer with its own max_attempts,
#    grants and hidden fields, a unique constraint, typed views. The data must be all there
#    (checked while still on FROM).
# 3. ALTER EXTENSION lowcode UPDATE (as the same installer), then:
#    - the data is all there: every configuration table (every column FROM had), the typed
#      views as the owner and as a granted role with a hidden field, unchanged; only the
#      outbox's bookkeeping may be migrated (consumers' cursors, in-flight and acked
#      deliveries): the consumers, their max_attempts and dead letters stay, and what the
#      consumers get after the update is checked below;
#    - the catalog equals a fresh CREATE EXTENSION lowcode by the same installer: extension
#      members, config-dump registrations, functions (definition, owner, ACL, comment),
#      relations (owner, ACL, comment, columns, constraints, indexes, triggers, policies, views,
#      sequences), types, the schema. The full diff goes to $SYS_WORK/<db>-catalog.diff and a
#      summary (how many lines differ, per kind, with the first ones) is printed;
#    - the app carries on: every event the consumer had not acked is delivered exactly once
#      (the one that failed once as its second attempt; with the outbox API of either version:
#      poll_events' event_id column where it has one), the dead letter can be replayed, the
#      open task is claimed and completed, the claimed one completed by its claimer, the
#      pending approvals decided (records reach won), every pending timer fires exactly once,
#      the new events are delivered exactly once, version 2 and the
#      unique constraint are still enforced, the granted role still submits and still does not
#      see the hidden field.
# 4. A database left on FROM in the same cluster keeps working next to the updated ones (the
#    library serves both; a rolling upgrade).
# Checks after the update do not stop at the first failure: every failing one is listed.
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

ext_dir="$("$PG_CONFIG" --sharedir)/extension"
current="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' "$LC_ROOT/Cargo.toml")"
[ -n "$current" ] || fail "no version in Cargo.toml"
generated="$ext_dir/lowcode--$current.sql"
[ -f "$generated" ] || fail "$generated does not exist: install the extension first (cargo pgrx install --pg-config $PG_CONFIG)"
releases="$LC_ROOT/sql/releases"

# Without pgrx's source-location comments (they move whenever src/ is edited).
normalized() { grep -vE '^-- src/[^ ]+:[0-9]+$' "$1"; }

step "frozen check (version $current)"
if [ -f "$releases/lowcode--$current.sql" ]; then
    if ! diff <(normalized "$releases/lowcode--$current.sql") <(normalized "$generated") >"$SYS_WORK/frozen.diff"; then
        head -n 40 "$SYS_WORK/frozen.diff" >&2
        fail "the code generates another install script for version $current than the frozen
sql/releases/lowcode--$current.sql (diff above, < frozen, > generated; compared with the installed
$generated). A released version never changes: bump the version in Cargo.toml and write
sql/lowcode--$current--<new>.sql with what changed."
    fi
    echo "sql/releases/lowcode--$current.sql matches the code"
fi
from="$(find "$releases" -maxdepth 1 -name 'lowcode--*.sql' -printf '%f\n' 2>/dev/null |
    sed -E 's/^lowcode--(.*)\.sql$/\1/' | { grep -vxF "$current" || true; } | sort -V |
    awk -v cur="$current" '{ print $0 " " cur }' | while read -r v c; do
        [ "$(printf '%s\n%s\n' "$v" "$c" | sort -V | head -n 1)" = "$v" ] && echo "$v"
    done | tail -n 1)"
# LOWCODE_UPGRADE_FROM picks an older frozen release (upgrade_oldest.sh: the first one, so that
# the whole chain of update scripts is run too).
if [ -n "${LOWCODE_UPGRADE_FROM:-}" ]; then
    [ -f "$releases/lowcode--$LOWCODE_UPGRADE_FROM.sql" ] ||
        fail "LOWCODE_UPGRADE_FROM=$LOWCODE_UPGRADE_FROM: no sql/releases/lowcode--$LOWCODE_UPGRADE_FROM.sql"
    from="$LOWCODE_UPGRADE_FROM"
fi
if [ -z "$from" ]; then
    echo "upgrade: nothing to upgrade from (no frozen release older than $current in sql/releases)"
    exit 0
fi
to="$current"
echo "upgrade path: $from -> $to"

# Files the test puts into the extension directory: removed (or restored) on exit.
declare -A placed=()
place() {
    local src="$1" dest="$ext_dir/$2"
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        return 0
    fi
    if [ -f "$dest" ]; then
        cp -p "$dest" "$SYS_WORK/saved-$2"
        placed[$2]=restore
    else
        placed[$2]=remove
    fi
    cp "$src" "$dest"
    chmod 644 "$dest"
}
unplace() {
    local f
    for f in "${!placed[@]}"; do
        if [ "${placed[$f]}" = restore ]; then
            cp -p "$SYS_WORK/saved-$f" "$ext_dir/$f"
        else
            rm -f "$ext_dir/$f"
        fi
    done
}
trap 'unplace; lc_cleanup' EXIT
place "$releases/lowcode--$from.sql" "lowcode--$from.sql"
shopt -s nullglob
for script in "$LC_ROOT"/sql/lowcode--*--*.sql; do
    place "$script" "$(basename "$script")"
done
shopt -u nullglob

sys_start upgrade 28854

# as ROLE DB [psql args] — psql as ROLE (SQL on stdin or in -c).
as() {
    local role="$1" db="$2"
    shift 2
    lc_as_pg "$pg_bin/psql" -h "$(sys_sock upgrade)" -p "$(sys_port upgrade)" -U "$role" -d "$db" \
        -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}
expect_as() { # expect_as WHAT WANT ROLE DB SQL
    local what="$1" want="$2" role="$3" db="$4" query="$5" got
    got="$(as "$role" "$db" -c "$query" 2>&1)" || fail "$what: query failed as $role on $db: $got ($query)"
    [ "$got" = "$want" ] || fail "$what: expected '$want', got '$got' (as $role on $db: $query)"
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

sys_psql upgrade -d postgres >/dev/null <<'SQL'
CREATE ROLE dbo LOGIN NOSUPERUSER;
CREATE ROLE clerk LOGIN NOSUPERUSER;
SQL
for db in su_upgraded su_fresh stays; do
    sys_psql upgrade -d postgres -c "CREATE DATABASE $db" >/dev/null
done
for db in dbo_upgraded dbo_fresh; do
    sys_psql upgrade -d postgres -c "CREATE DATABASE $db OWNER dbo" >/dev/null
done
path="$(sys_val upgrade su_upgraded "SELECT path FROM pg_extension_update_paths('lowcode') WHERE source = '$from' AND target = '$to'")"
[ -n "$path" ] || fail "no update path from $from to $to: write sql/lowcode--$from--$to.sql"
echo "update scripts: $path"

# --- the lived-in app (FROM's API only) --------------------------------------------------------

# fill OWNER DB — the owner's part of the app; the clerk's part follows.
fill() {
    local owner="$1" db="$2"
    local v1=false
    [ "$from" = 0.1.0 ] && v1=true
    as "$owner" "$db" -v from="$from" -v v1="$v1" >/dev/null <<'SQL'
CREATE EXTENSION lowcode VERSION :'from';
SELECT lowcode.create_app('crm', 'Customers');
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}');
SELECT lowcode.submit('crm', 'lead', '{"name": "old"}');  -- version 1, before there was a workflow
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "required": ["name", "score"],
  "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 0},
                 "secret": {"type": "string"}, "nudged": {"type": "boolean"}}}');
SELECT lowcode.define_workflow('crm', 'lead', '{
  "states": {"new": {"initial": true}, "review": {}, "won": {"final": true}, "lost": {"final": true}},
  "transitions": [{"name": "lose", "from": ["new", "review"], "to": "lost"}],
  "rules": [
    {"name": "call", "on": "created",
     "then": [{"task": {"name": "call", "pool": "sales", "due": "1 day"}},
              {"timer": {"name": "nudge", "after": "1 hour"}}, {"emit": {"topic": "lead.new"}}]},
    {"name": "called", "on": "task_completed:call", "then": [{"transition": "review"}]},
    {"name": "ask", "on": "entered:review",
     "then": [{"approval": {"name": "board", "mode": "all", "approvers": ["ann", "ben"],
                            "on_approve": "won", "on_reject": "lost", "on_withdraw": "new"}}]},
    {"name": "nudged", "on": "timer:nudge", "then": [{"set": {"nudged": true}}, {"emit": {"topic": "lead.nudged"}}]},
    {"name": "won", "on": "approved:board", "then": [{"emit": {"topic": "lead.won"}}]}]}');
SELECT lowcode.add_unique('crm', 'lead', ARRAY['name']);
SELECT lowcode.publish('crm');
SELECT lowcode.grant('crm', 'clerk', ARRAY['submit', 'read_own', 'claim']);
SELECT lowcode.hide_fields('crm', 'lead', 'clerk', ARRAY['secret']);
-- An outbox consumer that gives up after one attempt (0.1.0 had no create_consumer; its
-- consumers came with their first poll).
\if :v1
INSERT INTO lowcode.consumers (name, max_attempts) VALUES ('audit', 1);
\else
SELECT lowcode.create_consumer('audit', '{"from": "beginning", "max_attempts": 1}');
SELECT lowcode.create_consumer('mailer', '{"from": "beginning"}');
\endif

-- cy: task claimed by sam.
SELECT lowcode.submit('crm', 'lead', '{"name": "cy", "score": 2, "secret": "s-cy"}');
SELECT lowcode.claim_task('sales', 'sam');
-- dan: called, in review, ann approved, ben still to decide.
SELECT lowcode.submit('crm', 'lead', '{"name": "dan", "score": 3}') AS dan \gset
SELECT lowcode.complete_task(lowcode.claim_task('sales'), 'called');  -- dan's call
SET lowcode.actor = 'ann';
SELECT lowcode.decide(id, 'approve', 'fine') FROM lowcode.tasks WHERE record_id = :dan AND claimed_by = 'ann' AND status = 'claimed';
RESET lowcode.actor;
-- eve: won.
SELECT lowcode.submit('crm', 'lead', '{"name": "eve", "score": 4}') AS eve \gset
SELECT lowcode.complete_task(lowcode.claim_task('sales'), 'called');  -- eve's call
SET lowcode.actor = 'ann';
SELECT lowcode.decide(id, 'approve') FROM lowcode.tasks WHERE record_id = :eve AND claimed_by = 'ann' AND status = 'claimed';
SET lowcode.actor = 'ben';
SELECT lowcode.decide(id, 'approve') FROM lowcode.tasks WHERE record_id = :eve AND claimed_by = 'ben' AND status = 'claimed';
RESET lowcode.actor;
-- fay: rejected, lost.
SELECT lowcode.submit('crm', 'lead', '{"name": "fay", "score": 5}') AS fay \gset
SELECT lowcode.complete_task(lowcode.claim_task('sales'), 'called');  -- fay's call
SET lowcode.actor = 'ben';
SELECT lowcode.decide(id, 'reject', 'no budget') FROM lowcode.tasks WHERE record_id = :fay AND claimed_by = 'ben' AND status = 'claimed';
RESET lowcode.actor;
-- gus: approval withdrawn by its submitter, back to new.
SELECT lowcode.submit('crm', 'lead', '{"name": "gus", "score": 6}') AS gus \gset
SELECT lowcode.complete_task(lowcode.claim_task('sales'), 'called');  -- gus's call
SELECT lowcode.withdraw(:gus);
-- hal: nudged (its timer fired), then lost by hand.
SELECT lowcode.submit('crm', 'lead', '{"name": "hal", "score": 7}') AS hal \gset
UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE record_id = :hal AND name = 'nudge';
SELECT lowcode.run_due_timers();
SELECT lowcode.transition(:hal, 'lose');

-- The outbox so far: mailer acks everything but one event, which fails once (retry now).
-- audit fails its first event: a dead letter; the rest stays in flight.
\if :v1
SELECT count(*) FROM lowcode.poll_events('mailer', 100, '1 hour');
SELECT lowcode.nack_event('mailer', min(id), 'smtp down', interval '0 seconds') FROM lowcode.events;
SELECT lowcode.ack_events('mailer', array_agg(id)) FROM lowcode.events WHERE id > (SELECT min(id) FROM lowcode.events);
SELECT count(*) FROM lowcode.poll_events('audit', 100, '1 hour');
SELECT lowcode.nack_event('audit', min(id), 'bad payload') FROM lowcode.events;
\else
-- (From 0.2.0 on, poll_events returns delivery ids, and event_id.)
CREATE TEMP TABLE polled AS SELECT * FROM lowcode.poll_events('mailer', 100, '1 hour');
SELECT lowcode.nack_event('mailer', (SELECT p.id FROM polled p ORDER BY p.event_id LIMIT 1), 'smtp down', interval '0 seconds');
SELECT lowcode.ack_events('mailer', ARRAY(SELECT p.id FROM polled p ORDER BY p.event_id OFFSET 1));
-- (An acked delivery leaves no row from 0.2.0 on: the test keeps what mailer acked.)
CREATE TABLE public.mailer_acked AS SELECT p.event_id FROM polled p ORDER BY p.event_id OFFSET 1;
CREATE TEMP TABLE audited AS SELECT * FROM lowcode.poll_events('audit', 100, '1 hour');
SELECT lowcode.nack_event('audit', (SELECT p.id FROM audited p ORDER BY p.event_id LIMIT 1), 'bad payload');
\endif

-- bob, after mailer's poll (never delivered): task open, timers pending; updated once.
SELECT lowcode.submit('crm', 'lead', '{"name": "bob", "score": 1, "secret": "s-bob"}') AS bob \gset
SELECT lowcode.update_record(:bob, '{"name": "bob", "score": 8, "secret": "s-bob"}', 1);
SELECT lowcode.emit('ops.note', '{"by": "hand"}');
SQL
    as clerk "$db" -c "INSERT INTO crm.lead (name, score, secret) VALUES ('ivy', 9, 's-ivy')" >/dev/null
}

# The state of the app, while still on FROM: what the fill must have produced.
check_filled() {
    local owner="$1" db="$2"
    expect_as "records in every state" "lost:2,new:4,review:1,submitted:1,won:1" "$owner" "$db" \
        "SELECT string_agg(s || ':' || n, ',' ORDER BY s) FROM (
           SELECT coalesce(state, '<none>') AS s, count(*) AS n FROM lowcode.records GROUP BY 1) x"
    expect_as "form versions of the records" "1:1,2:8" "$owner" "$db" \
        "SELECT string_agg(v || ':' || n, ',' ORDER BY v) FROM (SELECT v.version AS v, count(*) AS n
           FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id GROUP BY 1) x"
    expect_as "tasks open, claimed, completed, cancelled" \
        "approval/cancelled:3,approval/claimed:1,approval/completed:4,task/cancelled:1,task/claimed:1,task/completed:4,task/open:2" "$owner" "$db" \
        "SELECT string_agg(k, ',' ORDER BY k) FROM (SELECT kind || '/' || status || ':' || count(*) AS k
           FROM lowcode.tasks GROUP BY kind, status) x"
    expect_as "approvals pending, approved, rejected, withdrawn" "approved:1,pending:1,rejected:1,withdrawn:1" "$owner" "$db" \
        "SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM (SELECT status, count(*) AS n FROM lowcode.approvals GROUP BY 1) x"
    expect_as "timers pending, fired, cancelled" "t|t|t" "$owner" "$db" \
        "SELECT bool_or(status = 'pending'), bool_or(status = 'fired'), bool_or(status = 'cancelled') FROM lowcode.timers"
    if [ "$from" = 0.1.0 ]; then
        expect_as "deliveries acked, pending (failed once), dead, and events never delivered" "t|t|t|t" "$owner" "$db" \
            "SELECT bool_or(status = 'acked'), bool_or(status = 'pending' AND last_error = 'smtp down'), bool_or(status = 'dead'),
                    EXISTS (SELECT FROM lowcode.events e WHERE NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id))
               FROM lowcode.deliveries"
    else # (an acked delivery leaves no row from 0.2.0 on)
        expect_as "deliveries pending (failed once), dead, and events never delivered" "t|t|t" "$owner" "$db" \
            "SELECT bool_or(status = 'pending' AND last_error = 'smtp down'), bool_or(status = 'dead'),
                    EXISTS (SELECT FROM lowcode.events e WHERE NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id))
               FROM lowcode.deliveries"
    fi
    expect_as "grants and hidden fields" "3|1" "$owner" "$db" \
        "SELECT (SELECT count(*) FROM lowcode.grants), (SELECT count(*) FROM lowcode.hidden_fields)"
    expect_as "the clerk sees its own record without the hidden field" "ivy|9|" clerk "$db" \
        "SELECT name, score, secret FROM crm.lead"
}

# snapshot OWNER DB FILE — every row of every configuration table (the columns it has now), and
# the typed view as the owner and as the clerk.
snapshot_columns() { # the SELECT list of each config table, as "table|col, col, ..."
    as "$1" "$2" -c "SELECT c::regclass::text || '|' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
       FROM pg_extension x, unnest(x.extconfig) AS c JOIN pg_attribute a ON a.attrelid = c
      WHERE x.extname = 'lowcode' AND a.attnum > 0 AND NOT a.attisdropped
        AND (SELECT relkind FROM pg_class WHERE oid = c) IN ('r', 'p')
      GROUP BY c ORDER BY 1"
}
snapshot() {
    local owner="$1" db="$2" out="$3" cols="$4" table list
    : >"$out"
    while IFS='|' read -r table list; do
        [ -n "$table" ] || continue
        echo "== $table" >>"$out"
        case "$table" in
            # The outbox's bookkeeping may be migrated (cursors, in-flight and acked deliveries):
            # the consumers and their dead letters must stay; what they get afterwards is
            # checked by carry_on.
            lowcode.consumers) list="name, max_attempts, created_at" ;;
            lowcode.deliveries) table="lowcode.deliveries WHERE status = 'dead'" list="consumer, event_id, status, last_error" ;;
        esac
        as "$owner" "$db" -c "SELECT '${table%% *}: ' || t::text FROM (SELECT $list FROM $table) t ORDER BY 1" >>"$out" ||
            echo "(cannot read $table)" >>"$out"
    done <"$cols"
    echo "== crm.lead as $owner" >>"$out"
    as "$owner" "$db" -c "SELECT 'crm.lead as owner: ' || t::text FROM crm.lead t ORDER BY id" >>"$out" || echo "(cannot read)" >>"$out"
    echo "== crm.lead as clerk" >>"$out"
    as clerk "$db" -c "SELECT 'crm.lead as clerk: ' || t::text FROM crm.lead t ORDER BY id" >>"$out" || echo "(cannot read)" >>"$out"
}

catalog() {
    as "$1" "$2" <<'SQL'
\pset fieldsep ' | '
-- One line per object (newlines in definitions written as \n), so a diff names each object.
-- Extension members, and which tables pg_dump carries the data of.
SELECT 'member', pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'lowcode') ORDER BY 2;
SELECT 'config', c::regclass::text, coalesce(x.extcondition[i], '')
  FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS u(c, i) WHERE x.extname = 'lowcode' ORDER BY 2;
SELECT 'extension', extname, extversion, extrelocatable, extnamespace::regnamespace, extowner::regrole
  FROM pg_extension WHERE extname = 'lowcode';
-- Functions, in full, with their owners, privileges and comments.
SELECT 'function', p.oid::regprocedure, replace(pg_get_functiondef(p.oid), E'\n', '\n'), p.proowner::regrole, coalesce(p.proacl::text, ''),
       coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace ORDER BY p.oid::regprocedure::text;
-- Tables, views and sequences: owners, privileges, columns, defaults, constraints, indexes,
-- triggers, policies, comments.
SELECT 'relation', c.relname, c.relkind, c.relpersistence, c.relowner::regrole, c.relrowsecurity, c.relforcerowsecurity,
       coalesce(c.relacl::text, ''), coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'p', 'm')
 ORDER BY 2;
-- (A column's place among the live ones, not its attnum: an update that drops a column leaves
-- a gap there that SELECT *, pg_dump and every reader skip.)
SELECT 'column', c.relname, pg_catalog.row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS place, a.attname,
       format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity, a.attgenerated, coalesce(a.attacl::text, ''),
       coalesce(col_description(c.oid, a.attnum), '')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm') ORDER BY 2, 3;
SELECT 'constraint', conrelid::regclass, conname, pg_get_constraintdef(oid),
       coalesce(obj_description(oid, 'pg_constraint'), '') FROM pg_constraint
 WHERE connamespace = 'lowcode'::regnamespace ORDER BY conrelid::regclass::text, conname;
-- Indexes, except the ones add_unique made for a form's data.
SELECT 'index', indexrelid::regclass, pg_get_indexdef(indexrelid), coalesce(obj_description(indexrelid, 'pg_class'), '')
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'lowcode'::regnamespace
   AND c.relname NOT IN (SELECT index_name FROM lowcode.uniques) ORDER BY indexrelid::regclass::text;
SELECT 'trigger', tgrelid::regclass, tgname, pg_get_triggerdef(t.oid), tgenabled,
       coalesce(obj_description(t.oid, 'pg_trigger'), '') FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'lowcode'::regnamespace AND NOT t.tgisinternal ORDER BY tgrelid::regclass::text, tgname;
SELECT 'policy', schemaname || '.' || tablename, policyname, permissive, roles::text, cmd,
       replace(coalesce(qual, ''), E'\n', '\n'), replace(coalesce(with_check, ''), E'\n', '\n') FROM pg_policies WHERE schemaname = 'lowcode' ORDER BY 2, 3;
SELECT 'view', c.relname, replace(pg_get_viewdef(c.oid), E'\n', '\n') FROM pg_class c
 WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 2;
SELECT 'sequence', s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcycle,
       coalesce(pg_get_serial_sequence(d.refobjid::regclass::text, a.attname), '')
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
  LEFT JOIN pg_depend d ON d.objid = s.seqrelid AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE c.relnamespace = 'lowcode'::regnamespace ORDER BY s.seqrelid::regclass::text;
SELECT 'type', t.typname, t.typtype, t.typowner::regrole, coalesce(t.typacl::text, '') FROM pg_type t
 WHERE t.typnamespace = 'lowcode'::regnamespace AND t.typtype NOT IN ('c') AND t.typname NOT LIKE '\_%' ORDER BY 2;
SELECT 'schema', nspname, nspowner::regrole, coalesce(nspacl::text, ''), coalesce(obj_description(oid, 'pg_namespace'), '')
  FROM pg_namespace WHERE nspname = 'lowcode';
SQL
}

# compare_catalogs WHAT OWNER DB_FRESH DB_UPGRADED — print a summary of the differences.
compare_catalogs() {
    local owner="$2" fresh="$3" upgraded="$4" members
    catalog "$owner" "$fresh" >"$SYS_WORK/$fresh-catalog.txt" || fail "cannot read the catalog of $fresh"
    catalog "$owner" "$upgraded" >"$SYS_WORK/$upgraded-catalog.txt" || fail "cannot read the catalog of $upgraded"
    members="$(grep -c '^member' "$SYS_WORK/$fresh-catalog.txt")"
    [ "$members" -ge 50 ] || fail "the fresh catalog looks incomplete ($members members)"
    if diff "$SYS_WORK/$fresh-catalog.txt" "$SYS_WORK/$upgraded-catalog.txt" >"$SYS_WORK/$upgraded-catalog.diff"; then
        echo "catalog of $upgraded equals a fresh install ($members extension members)"
        return 0
    fi
    {
        echo "after ALTER EXTENSION lowcode UPDATE TO '$to' the catalog of $upgraded differs from a fresh install"
        echo "by $owner ($fresh); the update scripts ($path) miss what changed between $from and $to."
        echo "Lines only in the fresh install (<) and only in the updated one (>), per kind:"
        grep -E '^[<>] ' "$SYS_WORK/$upgraded-catalog.diff" | awk '{ print $1, $2 }' | sort | uniq -c |
            awk '{ printf "    %s %-10s %s\n", $2, $3, $1 }'
        echo "Objects that differ (first 40; full diff: $SYS_WORK/$upgraded-catalog.diff):"
        grep -E '^[<>] ' "$SYS_WORK/$upgraded-catalog.diff" | awk -F ' \\| ' '{ print substr($1, 1, 1), $1 " | " $2 }' |
            cut -c3- | sort -u | head -n 40 | sed 's/^/    /'
    } >&2
    return 1
}

# mailer_poll OWNER DB — poll mailer once (up to 1000, invisible for an hour) and ack what came:
# prints "event ids|attempt of the first event" (the ids sorted, comma-separated).
mailer_poll() {
    local evcol
    evcol="$(as "$1" "$2" -c "SELECT CASE WHEN 'event_id' = ANY (proargnames) THEN 'event_id' ELSE 'id' END
                               FROM pg_proc WHERE oid = 'lowcode.poll_events(text, int, interval)'::regprocedure")" || return 1
    as "$1" "$2" <<SQL
CREATE TEMP TABLE got AS SELECT $evcol AS event_id, id AS delivery_id, attempt FROM lowcode.poll_events('mailer', 1000, '1 hour');
DO \$\$ BEGIN PERFORM lowcode.ack_events('mailer', ARRAY(SELECT delivery_id FROM got)); END \$\$;
SELECT coalesce(string_agg(event_id::text, ',' ORDER BY event_id), '') || '|'
       || coalesce((SELECT attempt::text FROM got ORDER BY event_id LIMIT 1), '') FROM got;
SQL
}

# carry_on WHAT OWNER DB — the app goes on after the update (stops at the first failure).
carry_on() {
    local owner="$2" db="$3" expected first again later
    # The outbox first: every event mailer had not acked before the update comes exactly once
    # (the failed one too, as its second attempt). poll_events returns the event's id as
    # event_id where it has that column (0.2.0: id is then the delivery id, for acks), else as id.
    expected="$(cat "$SYS_WORK/$db-unacked.txt")"
    first="$(mailer_poll "$owner" "$db")" || fail "mailer cannot poll and ack after the update"
    if [ -z "$expected" ] || [ "${first%%|*}" != "$expected" ]; then
        fail "events mailer had not acked before the update: expected ids ${expected:-none}, got ${first%%|*}"
    fi
    [ "${first#*|}" = "2" ] || fail "the event that failed once should come back as attempt 2, came as ${first#*|}"
    again="$(mailer_poll "$owner" "$db")" || fail "mailer cannot poll after the update"
    [ "$again" = "|" ] || fail "events were delivered twice: a second poll got ${again%%|*}"
    expect_as "the dead letter is replayed" "1" "$owner" "$db" "SELECT lowcode.replay_dead_letters('lead.new', 'audit')"

    # Tasks and approvals.
    as "$owner" "$db" >/dev/null <<'SQL' || fail "the tasks and approvals do not carry on (see above)"
SET lowcode.actor = 'sue';
SELECT lowcode.complete_task(lowcode.claim_task('sales'), 'called');   -- bob's open task
SET lowcode.actor = 'sam';
SELECT lowcode.complete_task(t.id, 'called') FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
 WHERE r.data ->> 'name' = 'cy' AND t.status = 'claimed';
RESET lowcode.actor;
SET lowcode.actor = 'ben';
SELECT lowcode.decide(t.id, 'approve') FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
 WHERE r.data ->> 'name' IN ('dan', 'bob', 'cy') AND t.claimed_by = 'ben' AND t.status = 'claimed';
SET lowcode.actor = 'ann';
SELECT lowcode.decide(t.id, 'approve') FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
 WHERE r.data ->> 'name' IN ('bob', 'cy') AND t.claimed_by = 'ann' AND t.status = 'claimed';
RESET lowcode.actor;
SQL
    expect_as "tasks complete, approvals decided: bob, cy, dan won" "bob:won,cy:won,dan:won,eve:won,fay:lost,gus:new,hal:lost,old:submitted" \
        "$owner" "$db" "SELECT string_agg((data ->> 'name') || ':' || state, ',' ORDER BY data ->> 'name')
                          FROM lowcode.records WHERE state IS NOT NULL AND data ->> 'name' <> 'ivy'"
    expect_as "no task is left open or claimed but the clerk's" "1" "$owner" "$db" \
        "SELECT count(*) FROM lowcode.tasks WHERE status IN ('open', 'claimed')"

    # Timers: every pending one fires once.
    expect_as "timers fire once" $'t\n0\n0' "$owner" "$db" "
        UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE status = 'pending';
        SELECT lowcode.run_due_timers() > 0;
        SELECT lowcode.run_due_timers();
        SELECT count(*) FROM lowcode.timers WHERE status = 'pending'"
    expect_as "ivy's pending nudge fired and ran its rule (hal's fired before the update)" "hal,ivy" "$owner" "$db" \
        "SELECT string_agg(data ->> 'name', ',' ORDER BY data ->> 'name') FROM lowcode.records WHERE data ->> 'nudged' = 'true'"

    # New events after the update, also exactly once.
    later="$(mailer_poll "$owner" "$db")" || fail "mailer cannot poll after the update"
    later="${later%%|*}"
    [ -n "$later" ] || fail "the events of the carried-on app (lead.won, lead.nudged ...) did not reach mailer"
    again="$(mailer_poll "$owner" "$db")" || fail "mailer cannot poll after the update"
    [ "$again" = "|" ] || fail "events were delivered twice: a second poll got ${again%%|*}"
    for id in ${later//,/ }; do
        case ",${first%%|*}," in *",$id,"*) fail "event $id was delivered to mailer twice after the update" ;; esac
    done

    # Forms, grants, hidden fields.
    fails_as "version 2 enforced" 23514 "$owner" "$db" "SELECT lowcode.submit('crm', 'lead', '{\"name\": \"zed\"}')"
    fails_as "unique kept" 23505 "$owner" "$db" "SELECT lowcode.submit('crm', 'lead', '{\"name\": \"bob\", \"score\": 1}')"
    expect_as "validate" "/score|minimum" "$owner" "$db" \
        "SELECT path, keyword FROM lowcode.validate('crm', 'lead', '{\"name\": \"x\", \"score\": -1}')"
    as clerk "$db" -c "INSERT INTO crm.lead (name, score, secret) VALUES ('joy', 1, 's-joy')" >/dev/null ||
        fail "the clerk cannot submit after the update"
    expect_as "the clerk still sees only its own records, without the hidden field" "ivy||joy|" clerk "$db" \
        "SELECT string_agg(name || '|' || coalesce(secret, ''), '|' ORDER BY name) FROM crm.lead"
    got="$(as "$owner" "$db" -c "SELECT id FROM lowcode.records WHERE data ->> 'name' = 'eve'")"
    fails_as "the clerk still may not read others' records (as if there were none)" 42704 clerk "$db" "SELECT lowcode.get_record($got)"
}

# --- run it for both installers ------------------------------------------------------------------

for owner in postgres dbo; do
    if [ "$owner" = postgres ]; then pre=su; else pre=dbo; fi
    step "$owner: CREATE EXTENSION lowcode VERSION '$from' (the library of $to) and fill it"
    fill "$owner" "${pre}_upgraded"
    check_filled "$owner" "${pre}_upgraded"
    snapshot_columns "$owner" "${pre}_upgraded" >"$SYS_WORK/$pre-columns.txt" || fail "cannot list the config tables"
    snapshot "$owner" "${pre}_upgraded" "$SYS_WORK/$pre-before.txt" "$SYS_WORK/$pre-columns.txt"
    # The events mailer has not acknowledged: after the update it must get exactly these.
    unacked="SELECT string_agg(e.id::text, ',' ORDER BY e.id) FROM lowcode.events e
        LEFT JOIN lowcode.deliveries d ON d.event_id = e.id AND d.consumer = 'mailer'
       WHERE d.status IS NULL OR d.status = 'pending'"
    [ "$from" = 0.1.0 ] || unacked="SELECT string_agg(e.id::text, ',' ORDER BY e.id) FROM lowcode.events e
       WHERE e.id NOT IN (SELECT a.event_id FROM public.mailer_acked a)"
    as "$owner" "${pre}_upgraded" -c "$unacked" >"$SYS_WORK/${pre}_upgraded-unacked.txt" ||
        fail "cannot list the events mailer has not acknowledged"

    step "$owner: ALTER EXTENSION lowcode UPDATE TO '$to'"
    as "$owner" "${pre}_upgraded" -c "ALTER EXTENSION lowcode UPDATE TO '$to'" >/dev/null ||
        fail "ALTER EXTENSION lowcode UPDATE TO '$to' failed as $owner"
    expect_as "version after the update" "$to" "$owner" "${pre}_upgraded" "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'"
    as "$owner" "${pre}_fresh" -c "CREATE EXTENSION lowcode VERSION '$to'" >/dev/null || fail "fresh install as $owner failed"

    step "$owner: the data is all there"
    snapshot "$owner" "${pre}_upgraded" "$SYS_WORK/$pre-after.txt" "$SYS_WORK/$pre-columns.txt"
    if ! diff "$SYS_WORK/$pre-before.txt" "$SYS_WORK/$pre-after.txt" >"$SYS_WORK/$pre-data.diff"; then
        grep -E '^[<>]' "$SYS_WORK/$pre-data.diff" | cut -c1-220 | head -n 30 >&2
        SYS_FAILED+=("$owner: the data changed in the update (diff above, < before, > after; $SYS_WORK/$pre-data.diff)")
    else
        echo "$(grep -vc '^==' "$SYS_WORK/$pre-after.txt") rows of $(grep -c '^==' "$SYS_WORK/$pre-after.txt") tables and views unchanged"
    fi

    step "$owner: the catalog equals a fresh install of $to"
    check compare_catalogs "$owner: catalog of the updated database equals a fresh install" "$owner" "${pre}_fresh" "${pre}_upgraded"

    step "$owner: the app carries on"
    check carry_on "$owner: the app carries on after the update" "$owner" "${pre}_upgraded"
done

step "a database left on $from keeps working next to the updated ones"
fill postgres stays
check expect_as "a database on $from in the same cluster" "$from" postgres stays \
    "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'"
check fails_as "$from's validation in the same cluster" 23514 postgres stays \
    "SELECT lowcode.submit('crm', 'lead', '{\"name\": \"zed\"}')"
check expect_as "$from's workflow in the same cluster" "new" postgres stays \
    "SELECT FROM lowcode.submit('crm', 'lead', '{\"name\": \"kim\", \"score\": 1}');
     SELECT state FROM lowcode.records WHERE data ->> 'name' = 'kim'"

finish
echo "upgrade: ok ($from -> $to as a superuser and as a database owner: data kept, catalog identical, the app carries on)"
