#!/usr/bin/env bash
# tests/system/citus.sh — lowcode on a three-node Citus 13 cluster (a coordinator and two
# workers on this machine, each with shared_preload_libraries = 'citus,lowcode'), as far as
# lowcode goes on Citus today: installed beside Citus (Citus's own event triggers made
# PostgreSQL report CREATE EXTENSION lowcode's schema to lowcode's DDL guard, which refused it),
# propagated to every node, every example app on the coordinator with the same output as on
# one node, a form's schema enforced by a CHECK on the shards of a table distributed by
# tenant, Citus allowed to copy lowcode's tables onto the nodes (the guard lets a superuser's
# shards, their indexes and grants through, and nothing else), and lowcode's background
# worker on every node (the coordinator's fires timers; the workers' idle, no errors). Then
# database rt with the runtime distributed by app (lowcode.distribute(runtime => true)): a
# submit one command to its app's node, a transaction over two workers' apps, an app role's
# grants on every shard, the calls by id and claims on the app's node, 8 claimers on 2,000
# tasks, timers fired by the workers' own workers, an app's outbox consumer on its node polled
# from the coordinator (in order, once; ack, nack, an app role's consume grant) and its webhook
# delivered once per event by its node's worker (issue 21; what is missing: docs/scale-out.md).
#
# Needs Citus installed in the PostgreSQL of PG_CONFIG: scripts/citus_stage.sh builds it
# (scripts/citus.sh) and runs this; scripts/system.sh leaves it out unless it is named.
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

[ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] ||
    fail "Citus is not installed in $("$PG_CONFIG" --pkglibdir) (scripts/citus.sh)"

NODES=(coord w1 w2)
step "three nodes: citus and lowcode preloaded"
port=28860
for n in "${NODES[@]}"; do
    sys_start "$n" "$port"
    port=$((port + 1))
    {
        sys_worker_conf citus
        echo "shared_buffers = 32MB"
        # Citus starts a maintenance worker per database (and lowcode its pool): ten databases.
        echo "max_worker_processes = 64"
        # The worker serves app and rt only: the examples drive their timers themselves, as in
        # the examples stage (which runs without the worker).
        echo "lowcode.worker_databases = 'app, rt'"
        echo "max_prepared_transactions = 20"
        # The clusters have no TLS.
        echo "citus.node_conninfo = 'sslmode=prefer'"
        # Webhooks go to a receiver of this test on 127.0.0.1.
        echo "lowcode.webhook_allow = '127.0.0.1'"
        # (A distributed deadlock, should there be one, with its cycle in the log.)
        echo "citus.log_distributed_deadlock_detection = on"
        # A shard move by logical replication (the mode Citus picks when it can).
        echo "wal_level = logical"
    } | sys_conf "$n"
    sys_restart "$n"
done

step "CREATE EXTENSION lowcode on the coordinator of a Citus cluster: propagated to the workers"
# app: w2 comes later (a node added to a distributed install).
for n in "${NODES[@]}"; do
    sys_psql "$n" -d postgres -c "CREATE DATABASE app" || fail "CREATE DATABASE app on $n"
    sys_psql "$n" -d app -c "CREATE EXTENSION citus" >/dev/null || fail "CREATE EXTENSION citus on $n/app"
done
sys_psql coord -d app >/dev/null <<SQL || fail "adding w1 to app"
SELECT citus_set_coordinator_host('127.0.0.1', $(sys_port coord));
SELECT citus_add_node('127.0.0.1', $(sys_port w1));
SQL
sys_psql coord -d app -c "CREATE EXTENSION lowcode" || fail "CREATE EXTENSION lowcode beside Citus"
version="$(sys_val coord app "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'")"
check sys_expect "lowcode on w1" "$version" w1 app \
    "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'"

step "lowcode.distribute(): the definitions become reference tables, on every node"
sys_psql coord -d app -c "CREATE ROLE dbo LOGIN" || fail "role dbo"
check sys_fails "not for a role that is not a superuser" 42501 coord app \
    "SET ROLE dbo; SELECT lowcode.distribute()"
check sys_expect "the definitions" \
    "apps,call_grants,form_versions,forms,grants,hidden_fields,schemas,uniques,workflow_versions" coord app \
    "SELECT string_agg(t, ',' ORDER BY t) FROM unnest(lowcode.distribute()) t"
check sys_expect "again: nothing left to do" "0" coord app "SELECT cardinality(lowcode.distribute())"
# (Its own settings go back as they were: none is left behind for the caller's transaction.)
settings_undone() {
    sys_psql coord -d app >/dev/null <<'SQL'
DO $$
BEGIN
    PERFORM lowcode.distribute();
    IF current_setting('citus.enable_unsafe_triggers') <> 'off'
       OR current_setting('citus.enable_local_reference_table_foreign_keys') <> 'on' THEN
        RAISE EXCEPTION 'distribute() left its settings behind: % %', current_setting('citus.enable_unsafe_triggers'),
                        current_setting('citus.enable_local_reference_table_foreign_keys');
    END IF;
END $$;
SQL
}
check settings_undone "distribute() leaves no setting behind"
check sys_expect "w2 has no lowcode before it is added" "0" w2 app \
    "SELECT count(*) FROM pg_namespace WHERE nspname = 'lowcode'"
sys_psql coord -d app -c "SELECT citus_add_node('127.0.0.1', $(sys_port w2))" >/dev/null || fail "adding w2 to app"
check sys_expect "lowcode on the added node" "$version" w2 app \
    "SELECT extversion FROM pg_extension WHERE extname = 'lowcode'"
check sys_expect "distribute() again, after adding w2: nothing new to make" "0" coord app \
    "SELECT cardinality(lowcode.distribute())"
# Ids that do not collide across nodes: each worker's lowcode sequences start at its group's
# range (group id << 48), the added node's too; the coordinator's (group 0) are left as they were.
for n in w1 w2; do
    check sys_expect "$n's lowcode sequences in its own range" "t" "$n" app \
        "SELECT pg_catalog.bool_and(x.v >= (g.groupid::int8 << 48) AND x.v < ((g.groupid::int8 + 1) << 48))
           FROM pg_dist_local_group g,
                LATERAL (SELECT last_value AS v FROM lowcode.records_id_seq UNION ALL
                         SELECT last_value FROM lowcode.history_id_seq UNION ALL
                         SELECT last_value FROM lowcode.tasks_id_seq UNION ALL
                         SELECT last_value FROM lowcode.events_id_seq) x WHERE g.groupid > 0"
done
check sys_expect "the coordinator's where they were" "t" coord app \
    "SELECT last_value < (1::int8 << 48) FROM lowcode.records_id_seq"
for n in w1 w2; do
    check sys_expect "a copy of each on $n" "9" "$n" app \
        "SET citus.override_table_visibility = off;
         SELECT count(DISTINCT regexp_replace(relname, '_[0-9]+$', '')) FROM pg_class
          WHERE relnamespace = 'lowcode'::regnamespace AND relkind = 'r' AND relname ~ '_[0-9]+$'"
done

step "a tenant table distributed by tenant, its form's schema a CHECK enforced on the shards"
sys_psql coord -d app >/dev/null <<'SQL' || fail "the distributed tenant table"
SELECT lowcode.create_app('shop');
SELECT lowcode.define_form('shop', 'order', '{"type": "object", "required": ["qty"],
  "properties": {"qty": {"type": "integer", "minimum": 1}}}');
CREATE TABLE orders (tenant int NOT NULL, id bigint NOT NULL, doc jsonb NOT NULL,
                     CHECK (lowcode.conforms('shop', 'order', doc)), PRIMARY KEY (tenant, id));
SELECT create_distributed_table('orders', 'tenant', shard_count => 4);
INSERT INTO orders SELECT t, t, jsonb_build_object('qty', t) FROM generate_series(1, 20) t;
SQL
check sys_expect "the tenants' rows are on both workers" "2" coord app \
    "SELECT count(DISTINCT s.nodeport) FROM citus_shards s
      WHERE s.table_name = 'orders'::regclass AND s.nodeport <> $(sys_port coord)
        AND s.shardid IN (SELECT get_shard_id_for_distribution_column('orders', o.tenant) FROM orders o)"
check sys_fails "a document the form refuses, refused on its shard" 23514 coord app \
    "INSERT INTO orders VALUES (7, 100, '{\"qty\": 0}')"
check sys_fails "and on the shard of another tenant" 23514 coord app \
    "INSERT INTO orders VALUES (8, 101, '{}')"
# One session throughout, so that the workers' backends serving it (Citus keeps its
# connections) have validated with the old version before the new one comes.
new_version() {
    local got
    got="$(sys_psql coord -d app <<'SQL'
CREATE FUNCTION pg_temp.put(t int, doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO orders VALUES (t, 1000 + pg_catalog.floor(pg_catalog.random() * 1e9)::int, doc); RETURN 'ok';
EXCEPTION WHEN check_violation THEN RETURN '23514'; END $$;
SELECT pg_temp.put(7, '{"qty": 2}') || ' ' || pg_temp.put(8, '{"qty": 2}');
SELECT lowcode.define_form('shop', 'order', '{"type": "object", "required": ["qty", "sku"],
  "properties": {"qty": {"type": "integer", "minimum": 1}, "sku": {"type": "string"}}}');
SELECT pg_temp.put(7, '{"qty": 2}') || ' ' || pg_temp.put(8, '{"qty": 2}');
SELECT pg_temp.put(7, '{"qty": 2, "sku": "x"}') || ' ' || pg_temp.put(8, '{"qty": 2, "sku": "x"}');
SQL
)" 2>/dev/null || fail "a new version of the form: $got"
    got="$(printf '%s\n' "$got" | grep -Ev '^(2|CREATE FUNCTION)?$' | tr '\n' '/')"
    [ "$got" = "ok ok/23514 23514/ok ok/" ] ||
        fail "v1 accepted, then (same session) v1 refused and v2 accepted on both workers' shards: got $got"
}
check new_version "a new version of the form, enforced on every shard from the next statement"
step "the guard lets a superuser's Citus shards of lowcode's tables through, and nothing else"
check sys_fails "a table that only looks like a shard is refused" 42501 coord app \
    "CREATE TABLE lowcode.nothing_12 (x int)"
check sys_fails "so is one named after a table lowcode does not have" 42501 coord app \
    "CREATE TABLE public.t (x int); CREATE TABLE lowcode.t_12 (x int)"
check sys_fails "and a trigger on one of lowcode's shards by a role that is not a superuser" 42501 w1 app \
    "SET citus.override_table_visibility = off; SET citus.enable_manual_changes_to_shards = on;
     DO \$\$ DECLARE s text := (SELECT relname FROM pg_class WHERE relnamespace = 'lowcode'::regnamespace
                                   AND relname ~ '^forms_[0-9]+$' LIMIT 1);
     BEGIN EXECUTE format('ALTER TABLE lowcode.%I OWNER TO dbo', s);
           SET ROLE dbo;
           EXECUTE format('CREATE TRIGGER x BEFORE INSERT ON lowcode.%I FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()', s);
     END \$\$"

check sys_fails "and a grant on a shard of lowcode's beyond its table's grants" 42501 w1 app \
    "SET citus.override_table_visibility = off; SET citus.enable_manual_changes_to_shards = on;
     DO \$\$ DECLARE s text := (SELECT relname FROM pg_class WHERE relnamespace = 'lowcode'::regnamespace
                                   AND relname ~ '^grants_[0-9]+$' LIMIT 1);
     BEGIN EXECUTE format('GRANT INSERT ON lowcode.%I TO dbo', s); END \$\$"

step "every example app on the coordinator, its definitions on every node: the same output as on one node"
copy="$SYS_WORK/examples"
cp -r "$LC_ROOT/examples" "$copy"
chown -R "$PG_OS_USER:" "$copy"
for f in "$LC_ROOT"/examples/*.sql; do
    e="$(basename "$f" .sql)"
    db="ex_$e"
    single="$SYS_WORK/$e.single.out"
    spread="$SYS_WORK/$e.citus.out"
    # One node: the coordinator's PostgreSQL, a database without Citus.
    sys_psql coord -d postgres -c "CREATE DATABASE ${db}_one" || fail "CREATE DATABASE ${db}_one"
    sys_psql coord -d "${db}_one" -c "CREATE EXTENSION lowcode" >/dev/null || fail "lowcode in ${db}_one"
    lc_as_pg "$pg_bin/psql" -h "$(sys_sock coord)" -p "$(sys_port coord)" -X -v ON_ERROR_STOP=1 \
        -d "${db}_one" --echo-all -f "$copy/$e.sql" >"$single" 2>&1 || fail "$e on one node: $(tail -n 20 "$single")"
    sys_citus_db "$db" coord w1 w2
    sys_psql coord -d "$db" -c "CREATE EXTENSION lowcode" -c "SELECT lowcode.distribute()" >/dev/null ||
        fail "lowcode, distributed, in $db"
    if ! lc_as_pg "$pg_bin/psql" -h "$(sys_sock coord)" -p "$(sys_port coord)" -X -v ON_ERROR_STOP=1 \
        -d "$db" --echo-all -f "$copy/$e.sql" >"$spread" 2>&1; then
        SYS_FAILED+=("example $e on the Citus coordinator: $(tail -n 5 "$spread" | tr '\n' ' ')")
        continue
    fi
    # Timestamps, generated secrets, backend pids, and which of the racing sessions wins (the
    # claim race's engineers, the canteen's tills and clerks, the sign-up chain's players: a
    # racer's row, with the lines its cell continues on, is left out; each example checks its
    # race's outcome itself; who won the claim race shows later on too, so the two engineers'
    # names are one, and so the columns' widths) differ between any two runs, and Citus warns that a pg_temp
    # function stays on its node. Nothing else may differ.
    norm() {
        sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.+]+//g; s/whsec_[A-Za-z0-9+\/=_-]+/whsec_/g
                s/server process with PID [0-9]+/server process/' "$1" |
            grep -Ev 'has dependency on unsupported object|will be created only locally' |
            awk '/^ *(alice|bob|till_[0-9]+|clerk_[0-9]+|p[0-9]+) +\|/ || /^ +[0-9]+ \| player_p[0-9]+$/ { skip = 1 }
                 skip { skip = ($0 ~ /\+$/); next }
                 { print }' |
            sed -E 's/\b(alice|bob)\b/<engineer>/g; s/ +/ /g; s/-+/-/g'
    }
    if ! diff <(norm "$single") <(norm "$spread") >"$SYS_WORK/$e.diff"; then
        SYS_FAILED+=("example $e: output differs on Citus ($SYS_WORK/$e.diff: $(head -n 6 "$SYS_WORK/$e.diff" | tr '\n' ' '))")
    fi
done

step "lowcode's worker on every node: the coordinator's fires a timer nobody runs by hand"
sys_psql coord -d app >/dev/null <<'SQL' || fail "a timer on the coordinator"
SELECT lowcode.define_form('shop', 'ticket', '{"type": "object"}');
SELECT lowcode.define_workflow('shop', 'ticket', '{
  "states": {"open": {"initial": true}, "late": {}},
  "rules": [{"name": "wait", "on": "created", "then": [{"timer": {"name": "nudge", "after": "1 second"}}]},
            {"name": "late", "on": "timer:nudge", "then": [{"transition": "late"}]}]}');
SELECT lowcode.submit('shop', 'ticket', '{}');
SQL
check sys_wait_true coord app 30 "the timer fired by the coordinator's worker" \
    "SELECT state = 'late' FROM lowcode.records WHERE app = 'shop' AND form = 'ticket'"
for n in "${NODES[@]}"; do
    check sys_expect "lowcode's worker started on $n" "t" "$n" postgres \
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type LIKE 'lowcode%')"
done
for n in w1 w2; do
    # (Less the refusal this test asked for above.)
    if grep -E 'ERROR|FATAL' "$(sys_log "$n")" | grep -v 'CREATE TRIGGER x on\|GRANT TABLE refused' | grep -qi lowcode; then
        SYS_FAILED+=("$n's log has lowcode errors: $(grep -E 'ERROR|FATAL' "$(sys_log "$n")" | grep -i lowcode | head -n 3 | tr '\n' ' ')")
    fi
done

step "the runtime distributed by app: lowcode.distribute(runtime => true)"
# Database rt: every runtime table distributed by app (4 shards over w1 and w2), colocated.
sys_citus_db rt coord w1 w2
sys_psql coord -d rt -c "CREATE EXTENSION lowcode" >/dev/null || fail "lowcode in rt"
# A unique field from before (its index gets the app first).
sys_psql coord -d rt >/dev/null <<'SQL' || fail "app early in rt"
SELECT lowcode.create_app('early');
SELECT lowcode.define_form('early', 'signup', '{"type": "object"}');
SELECT lowcode.add_unique('early', 'signup', ARRAY['email']);
SQL
check sys_expect "the definitions made reference tables, the runtime tables distributed" \
    "apps,forms,form_versions,workflow_versions,grants,hidden_fields,schemas,uniques,call_grants,webhooks,records,history,approvals,tasks,decisions,timers,events,outbox_epochs,consumers,deliveries,leases,webhook_attempts" \
    coord rt "SET citus.shard_count = 4; SELECT array_to_string(lowcode.distribute(runtime => true), ',')"
check sys_expect "by app, colocated with the records" "12" coord rt \
    "SELECT count(*) FROM pg_dist_partition p WHERE p.partmethod = 'h' AND p.logicalrelid::text LIKE 'lowcode.%'
        AND p.colocationid = (SELECT q.colocationid FROM pg_dist_partition q WHERE q.logicalrelid = 'lowcode.records'::regclass)"
check sys_expect "again: nothing left to do" "0" coord rt "SELECT cardinality(lowcode.distribute(runtime => true))"
check sys_expect "keys with the app, on every node" "3" coord rt \
    "SELECT count(*) FROM run_command_on_all_nodes(\$\$SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
        WHERE c.conrelid = 'lowcode.history'::regclass AND c.contype = 'p'\$\$) WHERE result = 'PRIMARY KEY (app, id)'"
check sys_expect "lowcode's guard on again, on every node" "3" coord rt \
    "SELECT count(*) FROM run_command_on_all_nodes(\$\$SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'lowcode_guard%' AND evtenabled = 'O'\$\$) WHERE result = '2'"
# Eight apps with a workflow: a task with a deadline and an event for every report.
sys_psql coord -d rt >/dev/null <<'SQL' || fail "the apps of rt"
SELECT lowcode.create_app('app' || i) FROM generate_series(1, 8) i;
SELECT lowcode.define_form('app' || i, 'fault', '{"type": "object", "properties": {"what": {"type": "string"}}, "required": ["what"]}')
  FROM generate_series(1, 8) i;
SELECT lowcode.define_workflow('app' || i, 'fault', '{
  "states": {"open": {"initial": true}, "done": {}},
  "transitions": [{"name": "finish", "from": "open", "to": "done"}],
  "rules": [{"name": "pool", "on": "created", "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 minutes"}}]},
            {"name": "tell", "on": "created", "then": [{"emit": {"topic": "fault.reported"}}]}]}')
  FROM generate_series(1, 8) i;
SQL
# The first app on each worker.
node_of() {
    sys_val coord rt "SELECT 'app' || i FROM generate_series(1, 8) i
        JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('lowcode.records', 'app' || i)
        JOIN pg_dist_node n ON n.groupid = p.groupid
       WHERE n.nodeport = $(sys_port "$1") ORDER BY i LIMIT 1"
}
app1="$(node_of w1)"
app2="$(node_of w2)"
{ [ -n "$app1" ] && [ -n "$app2" ]; } || fail "no app on each worker (w1: '$app1', w2: '$app2')"

submit_one_node() {
    local out calls
    out="$(sys_psql coord -d rt -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
        -c "SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"pump\"}')" 2>&1)" || fail "submit: $out"
    calls="$(grep -c 'NOTICE:  issuing' <<<"$out")"
    [ "$calls" = 1 ] || fail "a submit sent $calls commands, not 1: $out"
    grep -q "issuing SELECT lowcode.submit('$app1'" <<<"$out" || fail "not the submit itself: $out"
    grep -q "on server [a-z]*@127.0.0.1:$(sys_port w1) " <<<"$out" || fail "not to w1: $out"
}
check submit_one_node "a submit is one command, to its app's node (w1)"
check sys_expect "its record, history, task, deadline and event, all on w1's shards" "1|3|1|1|1" coord rt \
    "SELECT (SELECT count(*) FROM lowcode.records WHERE app = '$app1') || '|' || (SELECT count(*) FROM lowcode.history WHERE app = '$app1')
        || '|' || (SELECT count(*) FROM lowcode.tasks WHERE app = '$app1') || '|' || (SELECT count(*) FROM lowcode.timers WHERE app = '$app1')
        || '|' || (SELECT count(*) FROM lowcode.events WHERE app = '$app1')"
check sys_expect "written on w1: its id from w1's range" "1" coord rt \
    "SELECT id >> 48 FROM lowcode.records WHERE app = '$app1'"
check sys_expect "a call inside a statement is sent too (one per app)" "2" coord rt \
    "SELECT count(lowcode.submit(a, 'fault', '{\"what\": \"valve\"}')) FROM unnest(ARRAY['$app1', '$app2']) a"
check sys_expect "and submit with the form's version" "t" coord rt \
    "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"fan\"}', 1) > 0"
check sys_fails "a stale version: 40001, from w2" 40001 coord rt \
    "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"fan\"}', 2)"
check sys_fails "a bad report: 23514, from w2" 23514 coord rt \
    "SELECT lowcode.submit('$app2', 'fault', '{}')"

check sys_expect "a unique field from before distribute(): one submit" "t" coord rt \
    "SELECT lowcode.submit('early', 'signup', '{\"email\": \"a@x\"}') > 0"
check sys_fails "and the same again: 23505" 23505 coord rt \
    "SELECT lowcode.submit('early', 'signup', '{\"email\": \"a@x\"}')"
check sys_fails "a unique field added after: 23505 too" 23505 coord rt \
    "SELECT lowcode.add_unique('$app1', 'fault', ARRAY['what']); SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"pump\"}')"

step "a transaction over two workers' apps: commits and rolls back as one"
before="$(sys_val coord rt "SELECT count(*) FROM lowcode.records")"
sys_psql coord -d rt >/dev/null <<SQL || fail "the rolled-back transaction"
BEGIN;
SELECT lowcode.submit('$app1', 'fault', '{"what": "a"}');
SELECT lowcode.submit('$app2', 'fault', '{"what": "b"}');
ROLLBACK;
SQL
check sys_expect "rolled back: nothing on either" "$before" coord rt "SELECT count(*) FROM lowcode.records"
sys_psql coord -d rt >/dev/null 2>&1 <<SQL && fail "a transaction with a bad report committed"
BEGIN;
SELECT lowcode.submit('$app1', 'fault', '{"what": "a"}');
SELECT lowcode.submit('$app2', 'fault', '{}');
COMMIT;
SQL
check sys_expect "a refused report on w2: nothing on w1 either" "$before" coord rt "SELECT count(*) FROM lowcode.records"
sys_psql coord -d rt >/dev/null <<SQL || fail "the committed transaction"
BEGIN;
SELECT lowcode.submit('$app1', 'fault', '{"what": "a"}');
SELECT lowcode.submit('$app2', 'fault', '{"what": "b"}');
COMMIT;
SQL
check sys_expect "committed: on both" "$((before + 2))|2" coord rt \
    "SELECT count(*) || '|' || count(DISTINCT app) FILTER (WHERE data->>'what' IN ('a', 'b')) FROM lowcode.records"

step "an app role on the distributed runtime: what its grants allow, on every shard"
sys_psql coord -d rt >/dev/null <<SQL || fail "role alice"
CREATE ROLE alice LOGIN;
SELECT lowcode.grant('$app1', 'alice', ARRAY['submit', 'read_all', 'claim']);
SELECT lowcode.grant('$app2', 'alice', ARRAY['submit']);
SQL
check sys_expect "alice submits to an app on w2" "t" coord rt \
    "SET ROLE alice; SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"x\"}') > 0"
check sys_expect "alice's submit, owned and made by alice on w2" "alice|alice" coord rt \
    "SELECT owner || '|' || created_by FROM lowcode.records WHERE app = '$app2' AND data->>'what' = 'x'"
other="$(sys_val coord rt "SELECT 'app' || i FROM generate_series(1, 8) i WHERE 'app' || i NOT IN ('$app1', '$app2') LIMIT 1")"
check sys_fails "and not to an app where she holds nothing" 42501 coord rt \
    "SET ROLE alice; SELECT lowcode.submit('$other', 'fault', '{\"what\": \"x\"}')"
check sys_fails "nor when the call is sent from inside a statement (as alice, not as lowcode)" 42501 coord rt \
    "SET ROLE alice; SELECT count(lowcode.submit(a, 'fault', '{\"what\": \"x\"}')) FROM unnest(ARRAY['$other']) a"
check sys_expect "she reads the records of the app she may read, only" "$app1" coord rt \
    "SET ROLE alice; SELECT string_agg(DISTINCT app, ',') FROM lowcode.records"
check sys_expect "and its tasks, only" "$app1" coord rt \
    "SET ROLE alice; SELECT string_agg(DISTINCT app, ',') FROM lowcode.tasks"
open1="$(sys_val coord rt "SELECT count(*) FROM lowcode.tasks WHERE app = '$app1' AND pool = 'engineers' AND status = 'open'")"
[ "$open1" -gt 0 ] || fail "no open task in $app1"
check sys_expect "claimable_tasks: alice's inbox, the open tasks of the app where she may claim, from every shard" "$open1|$app1" coord rt \
    "SET ROLE alice; SELECT count(*) || '|' || string_agg(DISTINCT app, ',') FROM lowcode.claimable_tasks('engineers')"
pump="$(sys_val coord rt "SELECT id FROM lowcode.records WHERE app = '$app1' AND data->>'what' = 'pump'")"
check sys_expect "reads by id work: get_record, record_history" "pump|3" coord rt \
    "SELECT (lowcode.get_record($pump)).data->>'what' || '|' || (SELECT count(*) FROM lowcode.record_history($pump))"
all1="$(sys_val coord rt "SELECT count(*) FROM lowcode.records WHERE app = '$app1' AND form = 'fault'")"
check sys_expect "read_records: the app's records, read on its node" "$all1|$all1" coord rt \
    "SELECT count(*) || '|' || count(DISTINCT id) FROM lowcode.read_records('$app1', 'fault')"
sys_psql coord -d rt -c "SELECT lowcode.hide_fields('$app1', 'fault', 'alice', ARRAY['what'])" >/dev/null || fail "hide_fields"
check sys_expect "as alice, without the field hidden from her (masked on the app's node)" "$all1|0" coord rt \
    "SET ROLE alice; SELECT count(*) || '|' || count(*) FILTER (WHERE data ? 'what') FROM lowcode.read_records('$app1', 'fault')"
check sys_expect "and nothing of an app where she may not read" "0" coord rt \
    "SET ROLE alice; SELECT count(*) FROM lowcode.read_records('$app2', 'fault')"
sys_psql coord -d rt -c "SELECT lowcode.show_fields('$app1', 'fault', 'alice', ARRAY['what'])" >/dev/null || fail "show_fields"
check sys_fails "delete_record: not for alice, who may read but not delete (42501, from w1)" 42501 coord rt \
    "SET ROLE alice; SELECT lowcode.delete_record($pump)"
doomed="$(sys_val coord rt "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"doomed\"}')")"
sys_psql coord -d rt -c "SELECT lowcode.delete_record($doomed)" >/dev/null || fail "delete_record $doomed"
check sys_expect "delete_record on the app's node: the record and its task gone, its history kept" "0|0|true" coord rt \
    "SELECT (SELECT count(*) FROM lowcode.records WHERE id = $doomed) || '|' || (SELECT count(*) FROM lowcode.tasks WHERE record_id = $doomed)
        || '|' || ((SELECT count(*) FROM lowcode.history WHERE record_id = $doomed) > 0)"
check sys_fails "a record that does not exist: 42704" 42704 coord rt "SELECT lowcode.delete_record(12345)"
check sys_fails "a typed view's write, which cannot be sent: 0A000" 0A000 coord rt \
    "SELECT lowcode.publish('$app1'); INSERT INTO ${app1}.fault (what) VALUES ('y')"

step "calls by id on the distributed runtime: run on the node of the record's app, on its shards"
task="$(sys_val coord rt "SELECT id FROM lowcode.tasks WHERE record_id = $pump")"
check sys_expect "update_record by id: revision 2" "2" coord rt \
    "SELECT lowcode.update_record($pump, '{\"what\": \"pump\", \"note\": \"loud\"}')"
check sys_fails "a stale revision: 40001, from w1" 40001 coord rt \
    "SELECT lowcode.update_record($pump, '{\"what\": \"pump\"}', 1)"
check sys_expect "claim_task by id" "t" coord rt "SELECT lowcode.claim_task($task)"
sys_psql coord -d rt -c "SELECT lowcode.complete_task($task, NULL)" >/dev/null || fail "complete_task $task"
check sys_expect "complete_task: done, its deadline cancelled" "completed|cancelled" coord rt \
    "SELECT (SELECT status FROM lowcode.tasks WHERE id = $task) || '|' || (SELECT status FROM lowcode.timers WHERE task_id = $task)"
check sys_expect "transition by id" "done" coord rt "SELECT lowcode.transition($pump, 'finish')"
valve="$(sys_val coord rt "SELECT min(id) FROM lowcode.records WHERE app = '$app1' AND data->>'what' = 'valve'")"
check sys_expect "a transition with a payload" "done" coord rt \
    "SELECT lowcode.transition($valve, 'finish', '{\"note\": \"bent\"}')"
check sys_expect "merged into the record's data on w1" "valve|bent" coord rt \
    "SELECT data->>'what' || '|' || (data->>'note') FROM lowcode.records WHERE id = $valve"
check sys_expect "its history, in order, all on w1" "created,task_created,rule_action,updated,task_claimed,task_completed,transition" coord rt \
    "SELECT string_agg(action, ',' ORDER BY id) FROM lowcode.record_history($pump)"
check sys_fails "a record that does not exist: 42704" 42704 coord rt "SELECT lowcode.transition(12345, 'finish')"
check sys_fails "call_at with a call it does not run: 42883" 42883 coord rt "SELECT lowcode.call_at('$app1', 'drop_everything')"
call_at_one_node() {
    local out rec calls
    rec="$(sys_val coord rt "SELECT min(id) FROM lowcode.records WHERE app = '$app2' AND state = 'open'")"
    out="$(sys_psql coord -d rt -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
        -c "SELECT lowcode.call_at('$app2', 'transition', '{\"record\": $rec, \"name\": \"finish\"}')" 2>&1)" || fail "call_at: $out"
    calls="$(grep -c 'NOTICE:  issuing' <<<"$out")"
    [ "$calls" = 1 ] || fail "call_at sent $calls commands, not 1: $out"
    grep -q "on server [a-z]*@127.0.0.1:$(sys_port w2) " <<<"$out" || fail "not to w2: $out"
}
check call_at_one_node "call_at with the app: one command, to its node (w2)"
alice_task="$(sys_val coord rt "SELECT min(t.id) FROM lowcode.tasks t WHERE t.app = '$app1' AND t.status = 'open'")"
check sys_expect "alice claims a task of the app where she may claim, by id" "t" coord rt \
    "SET ROLE alice; SELECT lowcode.claim_task($alice_task)"
check sys_expect "as alice" "alice" coord rt "SELECT claimed_by FROM lowcode.tasks WHERE id = $alice_task"
alice_state="$(sys_val coord rt "SELECT r.state FROM lowcode.tasks t JOIN lowcode.records r ON r.app = t.app AND r.id = t.record_id WHERE t.id = $alice_task")"
check sys_expect "my_tasks: the task she holds, with its record's state" "$alice_task|$alice_state" coord rt \
    "SET ROLE alice; SELECT string_agg(id || '|' || record_state, ',') FROM lowcode.my_tasks()"
check sys_fails "and may not fire a transition there (update_all): 42501" 42501 coord rt \
    "SET ROLE alice; SELECT lowcode.transition((SELECT min(id) FROM lowcode.records WHERE app = '$app1' AND state = 'open'), 'finish')"
open2="$(sys_val coord rt "SELECT count(*) FROM lowcode.records WHERE app = '$app2' AND state = 'open'")"
[ "$open2" -gt 1 ] || fail "app $app2 has $open2 open records, not a few"
check sys_expect "a call by id inside a query Citus runs on the shards of the records it reads" "$open2" coord rt \
    "SELECT count(*) FILTER (WHERE lowcode.transition(r.id, 'finish') = 'done')
       FROM lowcode.records r WHERE r.app = '$app2' AND r.state = 'open'"
check sys_expect "and they are done" "0" coord rt \
    "SELECT count(*) FROM lowcode.records WHERE app = '$app2' AND state = 'open'"

step "8 claimers on 2,000 tasks of a distributed app: each claimed exactly once"
sys_psql coord -d rt >/dev/null <<'SQL' || fail "app claims"
SELECT lowcode.create_app('claims');
SELECT lowcode.define_form('claims', 'job', '{"type": "object"}');
SELECT lowcode.define_workflow('claims', 'job', '{"states": {"open": {"initial": true}},
  "rules": [{"name": "pool", "on": "created", "then": [{"task": {"name": "do", "pool": "crew"}}]}]}');
SELECT count(lowcode.submit('claims', 'job', pg_catalog.jsonb_build_object('n', i))) FROM generate_series(1, 2000) i;
CREATE TABLE claimed (session int, task bigint);
CREATE PROCEDURE claim_all(session int) LANGUAGE plpgsql AS $$
DECLARE
    t bigint;
BEGIN
    LOOP
        t := lowcode.claim_task('crew');
        EXIT WHEN t IS NULL;
        INSERT INTO claimed VALUES (session, t);
        COMMIT;
    END LOOP;
END $$;
SQL
pids=()
for i in 1 2 3 4 5 6 7 8; do
    sys_psql coord -d rt -c "CALL claim_all($i)" >"$SYS_WORK/claimer_$i.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a claimer failed: $(cat "$SYS_WORK"/claimer_*.log)"; done
check sys_expect "2,000 claims, 2,000 tasks, each once" "2000|2000|2000" coord rt \
    "SELECT count(*) || '|' || count(DISTINCT task) || '|' ||
            (SELECT count(*) FROM lowcode.tasks WHERE app = 'claims' AND status = 'claimed') FROM claimed"
check sys_expect "by claimers side by side" "t" coord rt "SELECT count(DISTINCT session) > 1 FROM claimed"
check sys_expect "and a claim from an empty pool: NULL" "" coord rt "SELECT lowcode.claim_task('crew')"

step "timers of a distributed runtime: fired on the workers, by each node's worker"
sys_psql coord -d rt >/dev/null <<SQL || fail "a timer in two apps"
SELECT lowcode.define_form(a, 'ticket', '{"type": "object"}') FROM unnest(ARRAY['$app1', '$app2']) a;
SELECT lowcode.define_workflow(a, 'ticket', '{
  "states": {"open": {"initial": true}, "late": {}},
  "rules": [{"name": "wait", "on": "created", "then": [{"timer": {"name": "nudge", "after": "1 second"}}]},
            {"name": "late", "on": "timer:nudge", "then": [{"transition": "late"}]}]}') FROM unnest(ARRAY['$app1', '$app2']) a;
SELECT lowcode.submit('$app1', 'ticket', '{}');
SELECT lowcode.submit('$app2', 'ticket', '{}');
SQL
check sys_wait_true coord rt 30 "both timers fired, on w1 and on w2, with nobody calling run_due_timers" \
    "SELECT count(*) = 2 FROM lowcode.records WHERE form = 'ticket' AND state = 'late'"
check sys_expect "each fired once" "2|2" coord rt \
    "SELECT count(*) FILTER (WHERE status = 'fired') || '|' || count(*) FROM lowcode.timers WHERE name = 'nudge'"
check sys_expect "the coordinator has no shards: its run_due_timers fires nothing" "0" coord rt "SELECT lowcode.run_due_timers()"

step "the outbox of a distributed runtime: an app's consumer on its node, polled from the coordinator"
sys_psql coord -d rt >/dev/null <<SQL || fail "consumers"
SELECT lowcode.create_consumer('feed1', '{"app": "$app1", "topics": ["fault.*"], "from": "beginning"}');
SELECT lowcode.create_consumer('feed2', '{"app": "$app2", "from": "beginning"}');
SELECT lowcode.grant('$app2', 'alice', ARRAY['consume']);
SQL
events1="$(sys_val coord rt "SELECT string_agg(id::text, ',' ORDER BY id) FROM lowcode.events WHERE app = '$app1' AND topic LIKE 'fault.%'")"
[ -n "$events1" ] || fail "no events in $app1"
polled="$(sys_val coord rt "SELECT string_agg(event_id::text, ',' ORDER BY id) || '/' || string_agg(id::text, ',' ORDER BY id)
    FROM lowcode.poll_events('feed1', 1000)")"
# same WHAT GOT WANT
same() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
check same "every event of its app, once, in order" "${polled%/*}" "$events1"
check sys_expect "leased: nothing more" "0" coord rt "SELECT count(*) FROM lowcode.poll_events('feed1', 1000)"
poll_one_node() {
    local out calls
    out="$(sys_psql coord -d rt -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
        -c "SELECT count(*) FROM lowcode.poll_events('feed1')" 2>&1)" || fail "poll: $out"
    # A read of the consumers' shards for its app (in a savepoint: with a node down, the
    # nodes that answer are read instead), then the call, once, to w1 (in a remote
    # transaction: BEGIN and COMMIT around it).
    calls="$(grep 'NOTICE:  issuing' <<<"$out" |
        grep -vc "issuing SELECT DISTINCT app FROM lowcode.consumers_[0-9]* x WHERE\|issuing BEGIN \|issuing COMMIT\|issuing RELEASE SAVEPOINT ")"
    [ "$calls" = 1 ] || fail "a poll sent $calls commands besides the lookup, not 1: $out"
    grep -A1 "issuing SELECT r FROM lowcode.call_at('$app1'::text, 'poll_events'::text" <<<"$out" |
        grep -q "on server [a-z]*@127.0.0.1:$(sys_port w1) " || fail "not sent to w1: $out"
}
check poll_one_node "a poll is sent to the node of the consumer's app (w1)"
check sys_expect "each acknowledged" "$(tr ',' '\n' <<<"${polled#*/}" | wc -l)" coord rt \
    "SELECT lowcode.ack_events('feed1', '{${polled#*/}}')"
check sys_expect "then none in flight, none behind" "0|0" coord rt \
    "SELECT in_flight || '|' || lag_events FROM lowcode.consumer_lag('feed1')"
new1="$(sys_val coord rt "SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"hose\"}')")"
polled="$(sys_val coord rt "SELECT count(*) || '|' || max(record_id) || '/' || max(id) FROM lowcode.poll_events('feed1')")"
check same "a new report: its event alone" "${polled%/*}" "1|$new1"
check sys_expect "nacked: back at once, its second attempt" "retry|2" coord rt \
    "SELECT lowcode.nack_event('feed1', ${polled#*/}, 'no', '0 seconds') || '|' || (SELECT attempt FROM lowcode.poll_events('feed1'))"
check sys_fails "the same name in another app: 42710" 42710 coord rt \
    "SELECT lowcode.create_consumer('feed1', '{\"app\": \"$app2\"}')"
check sys_fails "a consumer of every app: 0A000 (docs/scale-out.md)" 0A000 coord rt \
    "SELECT lowcode.create_consumer('everything')"
check sys_fails "an unknown consumer: 42704" 42704 coord rt "SELECT * FROM lowcode.poll_events('nobody')"
check sys_expect "purge_events('1 day'): no event that old" "0" coord rt "SELECT lowcode.purge_events('1 day')"
check sys_expect "alice polls the consumer of the app where she may consume" "t" coord rt \
    "SET ROLE alice; SELECT count(*) > 0 FROM lowcode.poll_events('feed2')"
check sys_fails "and not the other: 42501, from w1" 42501 coord rt "SET ROLE alice; SELECT * FROM lowcode.poll_events('feed1')"
check sys_expect "dropped, on its node; then there is none" "true|false" coord rt \
    "SELECT lowcode.drop_consumer('feed1') || '|' || lowcode.drop_consumer('feed1')"
check sys_expect "nothing of it left" "0|0" coord rt \
    "SELECT (SELECT count(*) FROM lowcode.deliveries WHERE consumer = 'feed1') || '|' || (SELECT count(*) FROM lowcode.leases WHERE consumer = 'feed1')"

step "webhooks of a distributed runtime: each app's events delivered once, by its node's worker"
rport=28869
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
received="$SYS_WORK/received.jsonl"
: >"$received"
python3 "$LC_ROOT/tests/system/webhook_receiver.py" "$rport" "$secret" "$received" &
receiver_pid=$!
trap 'kill "$receiver_pid" 2>/dev/null || true; lc_cleanup' EXIT
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport), 0.2)" 2>/dev/null && break
    sleep 0.1
done
sys_psql coord -d rt >/dev/null <<SQL || fail "the webhooks"
SELECT lowcode.create_webhook('hook' || i, 'http://127.0.0.1:$rport/ok', ARRAY['fault.reported'],
                              jsonb_build_object('app', a, 'secret', '$secret'))
  FROM unnest(ARRAY['$app1', '$app2']) WITH ORDINALITY x(a, i);
SELECT count(lowcode.submit(a, 'fault', jsonb_build_object('what', 'hook', 'n', n)))
  FROM unnest(ARRAY['$app1', '$app2']) a, generate_series(1, 5) n;
SQL
check sys_wait_true coord rt 30 "both webhooks delivered their app's five events" \
    "SELECT (SELECT count(*) FROM lowcode.webhook_deliveries('hook1') WHERE outcome = 'delivered') = 5
        AND (SELECT count(*) FROM lowcode.webhook_deliveries('hook2') WHERE outcome = 'delivered') = 5"
hooks_once() {
    python3 - "$received" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = [r["id"] for r in rows]
assert len(rows) == 10, f"{len(rows)} requests, not 10"
assert len(set(ids)) == 10, f"{len(set(ids))} distinct events"
assert all(r["sig_ok"] and r["status"] == 200 for r in rows), rows
PY
}
check hooks_once "the receiver got ten requests, ten events, signed"
check sys_expect "each attempt kept on its app's node" "$app1:5,$app2:5" coord rt \
    "SELECT string_agg(app || ':' || n, ',' ORDER BY app) FROM (SELECT app, count(*) n FROM lowcode.webhook_attempts GROUP BY app) x"
check sys_expect "drop_webhook" "t" coord rt "SELECT lowcode.drop_webhook('hook1')"
check sys_expect "its consumer and its attempts gone with it" "0|0" coord rt \
    "SELECT (SELECT count(*) FROM lowcode.consumers WHERE name = 'webhook:hook1')
        || '|' || (SELECT count(*) FROM lowcode.webhook_attempts WHERE webhook = 'hook1')"
check sys_fails "a webhook of every app: 0A000" 0A000 coord rt \
    "SELECT lowcode.create_webhook('all', 'http://127.0.0.1:$rport/ok')"
kill "$receiver_pid" 2>/dev/null || true

step "a shard move of a live app under submits and a consumer: nothing lost, nothing twice, in order"
# app1's shards (its records, history, events, the consumer ...) go from w1 to w2 (blocking
# writes while it copies) and back (by logical replication, blocking writes only at the end)
# (citus_move_shard_placement) while one client submits reports, one transaction after
# another, and a consumer polls and acknowledges. A submit that waited for a move ends with
# 40001 (run it again: nothing of it was written); every one that returned an id is kept, and
# its event is delivered once, in the order of the submits: the consumer reads the events
# written on w1, then those written on w2, then w1's again (lowcode.outbox_epochs).
shard="$(sys_val coord rt "SELECT get_shard_id_for_distribution_column('lowcode.records', '$app1')")"
shard_port() {
    sys_val coord rt "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
                       WHERE p.shardid = $shard"
}
[ "$(shard_port)" = "$(sys_port w1)" ] || fail "$app1 is not on w1"
sys_psql coord -d rt -c "SELECT lowcode.create_consumer('mover', '{\"app\": \"$app1\", \"topics\": [\"fault.reported\"]}')" \
    >/dev/null || fail "the consumer mover"
mv="$SYS_WORK/move"
mkdir -p "$mv"
: >"$mv/submitted"
: >"$mv/delivered"
: >"$mv/errors"
rm -f "$mv/stop"
(
    for i in $(seq 1 200); do
        sys_val coord rt "SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"move $i\"}')" >>"$mv/submitted" 2>>"$mv/errors" || true
    done
    touch "$mv/stop"
) &
submitter=$!
poll_ack="WITH p AS (SELECT * FROM lowcode.poll_events('mover', 50)),
               a AS (SELECT lowcode.ack_events('mover', ARRAY(SELECT id FROM p)) AS n)
          SELECT p.record_id FROM p, a ORDER BY p.id"
(
    while [ ! -f "$mv/stop" ]; do
        sys_val coord rt "$poll_ack" >>"$mv/delivered" 2>>"$mv/errors" || true
        sleep 0.05
    done
) &
poller=$!
move_to() {
    sys_val coord rt "SELECT citus_move_shard_placement($shard, '127.0.0.1', $(sys_port "$1"), '127.0.0.1', $(sys_port "$2"),
                                                       shard_transfer_mode => '$3')" >/dev/null
}
sleep 1
move_to w1 w2 block_writes || fail "moving $app1 to w2"
[ "$(shard_port)" = "$(sys_port w2)" ] || fail "$app1 not on w2 after the move"
sleep 1
move_to w2 w1 force_logical || fail "moving $app1 back to w1 by logical replication"
wait "$submitter" "$poller"
for _ in 1 2 3 4 5; do
    sys_val coord rt "$poll_ack" >>"$mv/delivered" || fail "polling mover after the moves"
done
submitted="$(wc -l <"$mv/submitted")"
[ "$submitted" -ge 100 ] || fail "only $submitted of 200 submits went through: $(sort "$mv/errors" | uniq -c)"
moved_errors() {
    # Only a submit or poll that waited for a move (40001), or a poll in a distributed
    # deadlock with the move (Citus cancels it; it is polled again).
    ! grep '^ERROR' "$mv/errors" | grep -v "its shards moved to another node while\|involved in a distributed deadlock"
}
check moved_errors "the submits and polls that failed waited for a move ($(grep -c '^ERROR' "$mv/errors") of them)"
check same "every submitted report's event delivered once, in the order of the submits ($submitted)" \
    "$(tr '\n' ',' <"$mv/delivered")" "$(tr '\n' ',' <"$mv/submitted")"
check sys_expect "every submitted report kept, on w1 again" "$submitted" coord rt \
    "SELECT count(*) FROM lowcode.records WHERE app = '$app1' AND id = ANY ('{$(paste -sd, "$mv/submitted")}')"
check sys_expect "their history in order: created, one after another as submitted" "$(paste -sd, "$mv/submitted")" coord rt \
    "SELECT string_agg(record_id::text, ',' ORDER BY at, id) FROM lowcode.history
      WHERE app = '$app1' AND action = 'created' AND record_id = ANY ('{$(paste -sd, "$mv/submitted")}')"
check sys_expect "their events written on w1, w2, and w1 again: three epochs" "1,2,1" coord rt \
    "SELECT string_agg(e.origin::text, ',' ORDER BY e.epoch) FROM lowcode.outbox_epochs e WHERE e.app = '$app1'"
check sys_expect "the consumer behind by nothing" "0|0" coord rt \
    "SELECT lag_events || '|' || in_flight FROM lowcode.consumer_lag('mover')"

step "a node down: the other node's apps keep working, the down one's fail naming it, nothing lost"
# Before w2 stops: a report in an app on each worker, and a consumer of each app.
sys_psql coord -d rt >/dev/null <<SQL || fail "the consumers down1 and down2"
SELECT lowcode.create_consumer('down1', '{"app": "$app1", "topics": ["fault.reported"]}');
SELECT lowcode.create_consumer('down2', '{"app": "$app2", "topics": ["fault.reported"]}');
SQL
r1="$(sys_val coord rt "SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"before\"}')")"
r2="$(sys_val coord rt "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"before\"}')")"
lc_as_pg "$pg_bin/pg_ctl" stop -D "$(sys_data w2)" -m fast -w >/dev/null || fail "stopping w2"
during="$(sys_val coord rt "SELECT lowcode.submit('$app1', 'fault', '{\"what\": \"during\"}')")" ||
    fail "a submit to $app1 (w1) with w2 down"
check sys_expect "$app1 (w1): a call by id" "done" coord rt "SELECT lowcode.transition($r1, 'finish')"
check sys_expect "$app1: the record and its history, read by id" "done|done" coord rt \
    "SELECT (lowcode.get_record($r1)).state || '|' || (SELECT h.to_state FROM lowcode.record_history($r1) h ORDER BY h.id DESC LIMIT 1)"
check sys_expect "$app1: its consumer polled" "$r1,$during" coord rt \
    "SELECT string_agg(record_id::text, ',' ORDER BY id) FROM lowcode.poll_events('down1')"
check sys_expect "a claim from a pool: a task of an app on w1" "t" coord rt \
    "SELECT lowcode.claim_task('engineers', 'postgres') IS NOT NULL"
down_error() {
    local what="$1" query="$2" want="$3" out
    out="$(sys_psql coord -d rt -v VERBOSITY=verbose -c "$query" 2>&1)" && fail "$what: succeeded with w2 down"
    grep -q "ERROR:  08006" <<<"$out" || fail "$what: expected SQLSTATE 08006, got: $out"
    grep -q -- "$want" <<<"$out" || fail "$what: the error does not say '$want': $out"
}
check down_error "$app2 (w2): a submit" "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"during\"}')" \
    "127.0.0.1:$(sys_port w2)"
check down_error "$app2: a call by id" "SELECT lowcode.transition($r2, 'finish')" \
    "record $r2 is not on the nodes that answered, and 127.0.0.1:$(sys_port w2) ([a-z0-9, ]*$app2"
check down_error "$app2: a read by id" "SELECT lowcode.get_record($r2)" "127.0.0.1:$(sys_port w2) ([a-z0-9, ]*$app2"
check down_error "$app2: its consumer" "SELECT * FROM lowcode.poll_events('down2')" \
    "consumer \"down2\" is not on the nodes that answered, and 127.0.0.1:$(sys_port w2)"
lc_as_pg "$pg_bin/pg_ctl" start -D "$(sys_data w2)" -l "$(sys_log w2)" -w >/dev/null || fail "starting w2 again"
check sys_expect "w2 back: $app2's report and its event, nothing lost" "open|$r2" coord rt \
    "SELECT (lowcode.get_record($r2)).state || '|' || (SELECT string_agg(record_id::text, ',') FROM lowcode.poll_events('down2'))"
check sys_expect "and its calls by id work again" "done" coord rt "SELECT lowcode.transition($r2, 'finish')"

step "purge_events on a distributed runtime: app by app, on its node, what its consumers have passed"
sys_psql coord -d rt -c "SELECT lowcode.create_consumer('keeper', '{\"app\": \"$app2\"}')" >/dev/null || fail "the consumer keeper"
kept="$(sys_val coord rt "SELECT lowcode.submit('$app2', 'fault', '{\"what\": \"kept\"}')")"
check sys_expect "some events purged" "t" coord rt "SELECT lowcode.purge_events('0 seconds') > 0"
check sys_expect "the moved app's events, which its consumers had passed (on three nodes' ids), gone" "0" coord rt \
    "SELECT count(*) FROM lowcode.events WHERE app = '$app1' AND record_id = ANY ('{$(paste -sd, "$mv/submitted")}')"
check sys_expect "an event its consumer has not read kept, and read" "$kept" coord rt \
    "SELECT string_agg(DISTINCT record_id::text, ',') FROM lowcode.poll_events('keeper')"
check sys_expect "those in flight kept (down1's, leased and not acknowledged)" "2" coord rt \
    "SELECT count(*) FROM lowcode.events WHERE app = '$app1' AND record_id IN ($r1, $during)"

step "a node down: distribute() says which one it could not reach"
lc_as_pg "$pg_bin/pg_ctl" stop -D "$(sys_data w2)" -m fast -w >/dev/null || fail "stopping w2"
down_named() {
    local out
    out="$(sys_psql coord -d app -v VERBOSITY=sqlstate -c "SELECT lowcode.distribute()" 2>&1)" &&
        fail "distribute() succeeded with w2 down"
    case "$out" in
        *"ERROR:  08006"*) ;;
        *) fail "distribute() with w2 down: expected SQLSTATE 08006, got: $out" ;;
    esac
    out="$(sys_psql coord -d app -c "SELECT lowcode.distribute()" 2>&1)"
    case "$out" in
        *"could not give every node its id range: 127.0.0.1:$(sys_port w2) ("*) ;;
        *) fail "distribute() with w2 down does not name it: $out" ;;
    esac
}
check down_named "distribute() with w2 down: 08006, naming w2"
lc_as_pg "$pg_bin/pg_ctl" start -D "$(sys_data w2)" -l "$(sys_log w2)" -w >/dev/null || fail "starting w2 again"
check sys_expect "and with w2 back, nothing left to do" "0" coord app "SELECT cardinality(lowcode.distribute())"

finish
