#!/usr/bin/env bash
# upgrade — extension upgrades: ALTER EXTENSION lowcode UPDATE from the frozen release to the
# current code gives exactly the catalog of a fresh install, and the app keeps working.
#
# 1. Frozen check: sql/releases/lowcode--<current version>.sql (scripts/freeze-release.sh)
#    must equal the install script the code generates (the one `cargo pgrx install` put in
#    $(pg_config --sharedir)/extension), apart from pgrx's "-- src/file.rs:line" comments.
#    A released version must never change; an unreleased current version needs an update
#    path from the newest frozen release (sql/lowcode--<from>--<to>.sql).
# 2. Upgrade: from the newest frozen release FROM to TO = the current version (or, while the
#    current version is itself frozen, to the next patch version made of the current generated
#    script, test-only). CREATE EXTENSION lowcode VERSION FROM, fill it (app, versions,
#    workflow, tasks, timers, events), ALTER EXTENSION lowcode UPDATE TO TO, use it; then its
#    catalog (extension members, function definitions, tables, constraints, indexes, triggers,
#    views, sequences, comments, privileges, dumped config tables) must equal a fresh
#    CREATE EXTENSION lowcode VERSION TO. Files copied into the extension directory for the
#    test are removed afterwards (files that were there are restored).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

ext_dir="$("$PG_CONFIG" --sharedir)/extension"
current="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' "$LC_ROOT/Cargo.toml")"
[ -n "$current" ] || fail "no version in Cargo.toml"
generated="$ext_dir/lowcode--$current.sql"
[ -f "$generated" ] || fail "$generated does not exist: install the extension first (cargo pgrx install)"
releases="$LC_ROOT/sql/releases"

# Without pgrx's source-location comments (they move whenever src/ is edited).
normalized() { grep -vE '^-- src/[^ ]+:[0-9]+$' "$1"; }

step "frozen check (version $current)"
newest="$(find "$releases" -maxdepth 1 -name 'lowcode--*.sql' -printf '%f\n' 2>/dev/null |
    sed -E 's/^lowcode--(.*)\.sql$/\1/' | sort -V | tail -n 1)"
[ -n "$newest" ] || fail "no frozen release in sql/releases: run scripts/freeze-release.sh"
if [ -f "$releases/lowcode--$current.sql" ]; then
    if ! diff <(normalized "$releases/lowcode--$current.sql") <(normalized "$generated") >"$SYS_WORK/frozen.diff"; then
        head -n 40 "$SYS_WORK/frozen.diff" >&2
        fail "the code generates another install script for version $current than the frozen
sql/releases/lowcode--$current.sql (diff above, < frozen, > generated; compared with the installed
$generated). A released version must not change: bump the version in Cargo.toml, write
sql/lowcode--$current--<new>.sql with what changed, and run scripts/freeze-release.sh when the
new version is released. (If $current was never released: scripts/freeze-release.sh --force.)"
    fi
    from="$current"
    to="$(echo "$current" | awk -F. -v OFS=. '{ $NF = $NF + 1; print }')"
else
    from="$newest"
    to="$current"
fi
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

if [ "$from" = "$current" ]; then
    place "$generated" "lowcode--$to.sql"                 # test-only: the current code as "$to"
else
    place "$releases/lowcode--$from.sql" "lowcode--$from.sql"
fi
shopt -s nullglob
for script in "$LC_ROOT"/sql/lowcode--*--*.sql; do
    place "$script" "$(basename "$script")"
done
shopt -u nullglob

sys_start upgrade 28854
db() { sys_psql upgrade -d "$1"; }
sys_psql upgrade -d postgres -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh" >/dev/null
path="$(sys_val upgrade upgraded "SELECT path FROM pg_extension_update_paths('lowcode') WHERE source = '$from' AND target = '$to'")"
[ -n "$path" ] || fail "no update path from $from to $to: write sql/lowcode--$from--$to.sql"
echo "update scripts: $path"

step "CREATE EXTENSION lowcode VERSION '$from', fill, ALTER EXTENSION lowcode UPDATE TO '$to'"
db upgraded >/dev/null <<SQL
CREATE EXTENSION lowcode VERSION '$from';
SELECT lowcode.create_app('crm', 'Customers');
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}');
SELECT lowcode.submit('crm', 'lead', '{"name": "ann"}');
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "required": ["name", "score"],
  "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 0}}}');
SELECT lowcode.define_workflow('crm', 'lead', '{
  "states": {"new": {"initial": true}, "won": {"final": true}},
  "transitions": [{"name": "win", "from": "new", "to": "won"}],
  "rules": [{"name": "call", "on": "created",
             "then": [{"task": {"name": "call", "pool": "sales", "due": "1 day"}}, {"emit": {"topic": "lead.new"}}]}]}');
SELECT lowcode.submit('crm', 'lead', '{"name": "bob", "score": 3}');
SELECT count(*) FROM lowcode.poll_events('mailer', 10, '1 hour');
SELECT lowcode.add_unique('crm', 'lead', ARRAY['name']);
SELECT lowcode.publish('crm');
ALTER EXTENSION lowcode UPDATE TO '$to';
SQL
sys_expect "version after the update" "$to" upgrade upgraded "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'"
sys_psql upgrade -d fresh -c "CREATE EXTENSION lowcode VERSION '$to'" >/dev/null

step "the app works after the update"
sys_expect "old data kept" "2|1" upgrade upgraded \
    "SELECT count(*), count(*) FILTER (WHERE v.version = 1) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id"
sys_fails "version 2 enforced" 23514 upgrade upgraded "SELECT lowcode.submit('crm', 'lead', '{\"name\": \"cy\"}')"
sys_fails "unique kept" 23505 upgrade upgraded "SELECT lowcode.submit('crm', 'lead', '{\"name\": \"bob\", \"score\": 1}')"
sys_expect "typed view" "new" upgrade upgraded "INSERT INTO crm.lead (name, score) VALUES ('dan', 5) RETURNING state"
sys_val upgrade upgraded "SELECT count(*) FROM (SELECT lowcode.complete_task(lowcode.claim_task('sales', current_user), 'done')) x" >/dev/null
sys_expect "claim, complete, transition" "bob|won" upgrade upgraded "
    SELECT r.data ->> 'name', lowcode.transition(r.id, 'win') FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
     WHERE t.status = 'completed'"
# bob's deadline ended with his task; dan's is still pending.
sys_expect "timers fire" "1" upgrade upgraded \
    "UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE status = 'pending'; SELECT lowcode.run_due_timers()"
sys_expect "events delivered" "lead.new" upgrade upgraded \
    "SELECT string_agg(DISTINCT topic, ',') FROM lowcode.poll_events('mailer', 10)"
sys_expect "validate" "/score|minimum" upgrade upgraded \
    "SELECT path, keyword FROM lowcode.validate('crm', 'lead', '{\"name\": \"x\", \"score\": -1}')"

step "the updated catalog equals a fresh install of $to"
catalog() {
    db "$1" <<'SQL'
\pset fieldsep ' | '
-- Extension members, and which tables pg_dump carries the data of.
SELECT 'member', pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'lowcode') ORDER BY 2;
SELECT 'config', c::regclass::text, coalesce(x.extcondition[i], '')
  FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS u(c, i) WHERE x.extname = 'lowcode' ORDER BY 2;
SELECT 'extension', extname, extversion, extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'lowcode';
-- Functions, in full, with their privileges and comments.
SELECT 'function', p.oid::regprocedure::text, pg_get_functiondef(p.oid), coalesce(p.proacl::text, ''),
       coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace ORDER BY 2;
-- Tables, views and sequences: columns, defaults, constraints, indexes, triggers, comments.
SELECT 'relation', c.relname, c.relkind, c.relpersistence, coalesce(c.relacl::text, ''),
       coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'p', 'm')
 ORDER BY 2;
SELECT 'column', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity, a.attgenerated,
       coalesce(col_description(c.oid, a.attnum), '')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm') ORDER BY 2, 3;
SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE connamespace = 'lowcode'::regnamespace ORDER BY 2, 3;
-- Indexes, except the ones add_unique made for a form's data.
SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'lowcode'::regnamespace
   AND c.relname NOT IN (SELECT index_name FROM lowcode.uniques) ORDER BY 2;
SELECT 'trigger', tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid), tgenabled FROM pg_trigger t
 JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'lowcode'::regnamespace AND NOT t.tgisinternal ORDER BY 2, 3;
SELECT 'view', c.relname, pg_get_viewdef(c.oid) FROM pg_class c
 WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 2;
SELECT 'sequence', s.seqrelid::regclass::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcycle
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'lowcode'::regnamespace ORDER BY 2;
SELECT 'type', t.typname, t.typtype FROM pg_type t
 WHERE t.typnamespace = 'lowcode'::regnamespace AND t.typtype NOT IN ('c') AND t.typname NOT LIKE '\_%' ORDER BY 2;
SELECT 'schema', nspname, coalesce(nspacl::text, ''), coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = 'lowcode';
SQL
}
catalog upgraded >"$SYS_WORK/catalog-upgraded.txt"
catalog fresh >"$SYS_WORK/catalog-fresh.txt"
[ "$(grep -c '^member' "$SYS_WORK/catalog-fresh.txt")" -ge 50 ] ||
    fail "the fresh catalog looks incomplete ($(grep -c '^member' "$SYS_WORK/catalog-fresh.txt") members)"
if ! diff "$SYS_WORK/catalog-fresh.txt" "$SYS_WORK/catalog-upgraded.txt" >"$SYS_WORK/catalog.diff"; then
    head -n 60 "$SYS_WORK/catalog.diff" >&2
    fail "after ALTER EXTENSION lowcode UPDATE TO '$to' the catalog differs from a fresh install (< fresh, > updated):
the update scripts ($path) miss what changed between $from and $to"
fi
echo "upgrade: ok ($from -> $to: $(grep -c '^member' "$SYS_WORK/catalog-fresh.txt") extension members, catalog identical)"
