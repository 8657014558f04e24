# shellcheck shell=bash
# tests/system/lib.sh — helpers shared by the system tests (tests/system/*.sh).
# Source it from a test (`source "$(dirname "$0")/lib.sh"`). Each test is self-contained:
# it starts its own clusters (as postgres, on its own non-default ports) and they are
# stopped when it exits, whatever happens. scripts/system.sh runs the tests and checks
# every server log they list in $SYS_WORK/logs for crashes; a test can also run alone:
#   bash tests/system/dump_restore.sh
#
#   sys_start NAME PORT          initdb + start a cluster "sys_NAME" on PORT + LOWCODE_PORT_OFFSET;
#                                remembers it as NAME
#   sys_psql NAME [psql args]    psql as postgres to cluster NAME (-X -q -A -t, stop on error);
#                                SQL goes on stdin or in -c, never in a file postgres must read
#   sys_val NAME DB "SQL"        the single value of a query
#   sys_expect WHAT WANT NAME DB "SQL"   fail unless the query's value is WANT
#   sys_fails WHAT STATE NAME DB "SQL"   fail unless the SQL fails with SQLSTATE STATE
#   sys_dir NAME / sys_sock NAME / sys_port NAME / sys_data NAME / sys_log NAME
#   sys_register_datadir DIR LOG a cluster made another way (pg_basebackup): stopped on
#                                exit and its log checked like the others
#   check ASSERTION...           run an assertion (sys_expect, sys_fails, a function) without
#                                stopping at its failure; `finish` then fails the test
#   fail MESSAGE / step MESSAGE / finish
#   sys_citus_db DB COORD WORKER...   database DB with Citus on every node, the workers added
#
# Read-only replicas (standby.sh: a streaming hot standby; polardb_ro.sh: a PolarDB read-only
# node on shared storage) share these:
#   sys_conf NAME                append stdin to cluster NAME's postgresql.conf
#   sys_restart NAME             pg_ctl restart of cluster NAME (after sys_conf)
#   sys_worker_conf [LIBS]       postgresql.conf lines that preload lowcode (after LIBS, a
#                                comma-separated list) with short worker and launcher naptimes
#   sys_replica_dir NAME PURPOSE PORT   socket dir and log of a replica made another way
#                                (pg_basebackup, polar-initdb.sh) in lc_reach_dir sys_PURPOSE,
#                                its data directory removed; remembered as cluster NAME on
#                                PORT + LOWCODE_PORT_OFFSET, stopped on exit, its log checked
#   sys_replica_app NAME         database app on cluster NAME with the desk app the replica
#                                checks read
#   sys_wait_true NAME DB SECONDS WHAT "SQL"   until the query returns t (fail after SECONDS)
#   sys_wait_replay PRIMARY REPLICA   until REPLICA has replayed what PRIMARY has written
#   sys_replica_checks PRIMARY REPLICA   reads work on REPLICA, writes fail with 25006, the
#                                worker fires timers on PRIMARY and stays idle on REPLICA, a
#                                new form version is enforced on REPLICA after replay
# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/lib.sh"

LC_NAME="${LC_NAME:-$(basename "$0" .sh)}"
# Scratch space of this test (scripts/system.sh passes one; alone, a reachable one of our own).
if [ -z "${SYS_WORK:-}" ]; then
    SYS_WORK="$(lc_reach_dir "sys_$LC_NAME")/work"
    rm -rf "$SYS_WORK"
    mkdir -p "$SYS_WORK"
fi
: >"$SYS_WORK/logs"

declare -A SYS_DIRS=() SYS_PORTS=()

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

step() {
    printf -- '-- %s\n' "$*"
}

sys_start() {
    local name="$1" port="$2"
    LOWCODE_PGPORT="$(lc_port "$port")" lc_cluster_start "sys_$name" >/dev/null
    SYS_DIRS[$name]="$LC_DIR"
    SYS_PORTS[$name]="$LC_PORT"
    printf '%s\n' "$LC_LOGFILE" >>"$SYS_WORK/logs"
}

sys_register_datadir() {
    LC_STARTED_DATADIRS+=("$1")
    printf '%s\n' "$2" >>"$SYS_WORK/logs"
}

sys_dir() { printf '%s\n' "${SYS_DIRS[$1]}"; }
sys_sock() { printf '%s\n' "${SYS_DIRS[$1]}/sock"; }
sys_data() { printf '%s\n' "${SYS_DIRS[$1]}/data"; }
sys_log() { printf '%s\n' "${SYS_DIRS[$1]}/server.log"; }
sys_port() { printf '%s\n' "${SYS_PORTS[$1]}"; }

# sys_psql NAME [args]: PGOPTIONS in the environment is passed on (sudo drops it otherwise).
sys_psql() {
    local name="$1"
    shift
    lc_as_pg env PGOPTIONS="-c lc_messages=C ${PGOPTIONS:-}" \
        "$pg_bin/psql" -h "$(sys_sock "$name")" -p "$(sys_port "$name")" -U "$PG_OS_USER" \
        -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

sys_val() {
    sys_psql "$1" -d "$2" -c "$3"
}

sys_expect() {
    local what="$1" want="$2" name="$3" db="$4" query="$5" got
    got="$(sys_val "$name" "$db" "$query")" || fail "$what: query failed on $name/$db: $query"
    [ "$got" = "$want" ] || fail "$what: expected '$want', got '$got' ($name/$db: $query)"
}

# sys_fails WHAT STATE NAME DB "SQL" — the statement must fail with SQLSTATE STATE.
sys_fails() {
    local what="$1" state="$2" name="$3" db="$4" query="$5" out
    out="$(sys_psql "$name" -d "$db" -v VERBOSITY=sqlstate -c "$query" 2>&1)" &&
        fail "$what: succeeded, expected SQLSTATE $state ($query)"
    case "$out" in
        *"ERROR:  $state"*) ;;
        *) fail "$what: expected SQLSTATE $state, got: $out" ;;
    esac
}

SYS_FAILED=()
check() {
    ( "$@" ) || SYS_FAILED+=("$2")
}

# finish — end of a test: fail if a check failed.
finish() {
    if [ "${#SYS_FAILED[@]}" -gt 0 ]; then
        printf 'FAIL: %s check(s) failed:\n' "${#SYS_FAILED[@]}" >&2
        printf '    %s\n' "${SYS_FAILED[@]}" >&2
        exit 1
    fi
}

# --- Citus --------------------------------------------------------------------------------

# sys_citus_db DB COORDINATOR WORKER... — database DB on every node with Citus, the workers
# added to the coordinator (clusters started with shared_preload_libraries = 'citus,...').
sys_citus_db() {
    local db="$1" coord="$2" n
    shift 2
    for n in "$coord" "$@"; do
        sys_psql "$n" -d postgres -c "CREATE DATABASE $db" || fail "CREATE DATABASE $db on $n"
        sys_psql "$n" -d "$db" -c "CREATE EXTENSION citus" >/dev/null || fail "CREATE EXTENSION citus on $n/$db"
    done
    sys_psql "$coord" -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $(sys_port "$coord"))" >/dev/null ||
        fail "the coordinator of $db"
    for n in "$@"; do
        sys_psql "$coord" -d "$db" -c "SELECT citus_add_node('127.0.0.1', $(sys_port "$n"))" >/dev/null ||
            fail "adding $n to $db"
    done
}

# --- read-only replicas -------------------------------------------------------------------

sys_conf() {
    lc_as_pg tee -a "$(sys_data "$1")/postgresql.conf" >/dev/null
}

sys_restart() {
    lc_as_pg "$pg_bin/pg_ctl" restart -D "$(sys_data "$1")" -l "$(sys_log "$1")" -m fast -w -t 60 >/dev/null ||
        fail "$1: restart failed: $(tail -n 20 "$(sys_log "$1")")"
}

sys_worker_conf() {
    echo "# lowcode's worker (tests/system/lib.sh)"
    echo "shared_preload_libraries = '${1:+$1,}lowcode'"
    echo "lowcode.launcher_naptime = '200ms'"
    echo "lowcode.worker_naptime = '200ms'"
}

sys_replica_dir() {
    local name="$1" purpose="$2" port="$3" dir
    dir="$(lc_reach_dir "sys_$purpose")"
    lc_stop_datadir "$dir/data"
    rm -rf "$dir/data" "$dir/sock"
    mkdir -p "$dir/sock"
    chown "$PG_OS_USER:" "$dir/sock"
    : >"$dir/server.log"
    chown "$PG_OS_USER:" "$dir/server.log"
    SYS_DIRS[$name]="$dir"
    SYS_PORTS[$name]="$(lc_port "$port")"
    sys_register_datadir "$dir/data" "$dir/server.log"
}

sys_replica_app() {
    sys_psql "$1" -d postgres -c "CREATE DATABASE app" >/dev/null
    sys_psql "$1" -d app >/dev/null <<'SQL'
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('desk', 'Help desk');
SELECT lowcode.define_form('desk', 'ticket', '{"type": "object", "required": ["title"],
  "properties": {"title": {"type": "string", "minLength": 1}, "severity": {"type": "integer", "minimum": 1, "maximum": 5}}}');
SELECT lowcode.define_workflow('desk', 'ticket', '{
  "states": {"open": {"initial": true}, "closed": {"final": true}},
  "transitions": [{"name": "close", "from": "open", "to": "closed"}],
  "rules": [{"name": "triage", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
             "then": [{"task": {"name": "fix", "pool": "crew", "due": "1 hour"}}, {"emit": {"topic": "ticket.severe"}},
                      {"approval": {"name": "ok", "mode": "any", "approvers": ["ann"], "on_approve": "closed", "on_reject": "open"}}]}]}');
SELECT lowcode.publish('desk');
SELECT lowcode.submit('desk', 'ticket', '{"title": "printer", "severity": 5}');
SELECT lowcode.submit('desk', 'ticket', '{"title": "coffee", "severity": 1}');
SELECT lowcode.update_record(2, '{"title": "coffee machine", "severity": 2}');
SQL
}

sys_wait_true() {
    local name="$1" db="$2" secs="$3" what="$4" query="$5" _
    for _ in $(seq 1 $((secs * 10))); do
        [ "$(sys_val "$name" "$db" "$query" 2>/dev/null || true)" = t ] && return 0
        sleep 0.1
    done
    fail "$what: not true after ${secs}s ($name/$db: $query)"
}

sys_wait_replay() {
    local lsn
    lsn="$(sys_val "$1" app "SELECT pg_current_wal_lsn()")"
    sys_wait_true "$2" app 30 "$2 replays up to $lsn" "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn"
}

# sys_no_worker_lines WHAT REPLICA — (for check) REPLICA's log mentions no lowcode process.
sys_no_worker_lines() {
    local lines
    lines="$(grep -E 'lowcode (launcher|worker)' "$(sys_log "$2")" || true)"
    [ -z "$lines" ] || fail "the replica's log mentions lowcode's worker: $lines"
}

# sys_replica_session WHAT REPLICA — (for check) a REPLICA session validates against version 1,
# then (while it sits idle) $SYS_WORK/new_version.sh publishes version 2 on the primary and
# waits for REPLICA to replay it; the same session must now use version 2.
sys_replica_session() {
    local replica="$2" got expected
    got="$(sys_psql "$replica" -d app -v ON_ERROR_STOP=0 <<EOF
SELECT 'before:' || lowcode.is_valid('desk', 'ticket', '{"title": "no severity"}');
\\set waited \`bash '$SYS_WORK/new_version.sh'\`
SELECT 'wait:' || :'waited';
SELECT 'after:' || lowcode.is_valid('desk', 'ticket', '{"title": "no severity"}');
SELECT 'version:' || v.version FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id WHERE f.name = 'ticket';
SELECT 'issues:' || string_agg(keyword || ' ' || message, '; ') FROM lowcode.validate('desk', 'ticket', '{"title": "no severity"}');
EOF
)" || fail "the replica session failed: $got"
    expected="before:true
wait:replayed
after:false
version:2
issues:required \"severity\" is a required property"
    [ "$got" = "$expected" ] || fail "replica session: expected
$expected
got
$got"
}

sys_replica_checks() {
    local primary="$1" replica="$2" write out
    sys_psql "$primary" -d app -c \
        "SELECT lowcode.submit('desk', 'ticket', '{\"title\": \"after the replica started\", \"severity\": 4}')" >/dev/null
    sys_wait_replay "$primary" "$replica"

    step "reads on the replica"
    # Validation reads the catalog; nothing in it may need a transaction id (a replica has none).
    if ! out="$(sys_val "$replica" app "SELECT lowcode.is_valid('desk', 'ticket', '{}')" 2>&1)"; then
        case "$out" in
            *"cannot assign TransactionIds during recovery"*)
                echo "KNOWN BUG: validation assigns a transaction id (pgrx Spi::get_one* in src/definitions_cache.rs use" \
                    "connect_mut, which calls GetCurrentTransactionId): it fails on a replica" >&2 ;;
        esac
    fi
    expect_replica() { check sys_expect "$replica: $1" "$2" "$replica" app "$3"; }
    expect_replica "is_valid" "t|f" \
        "SELECT lowcode.is_valid('desk', 'ticket', '{\"title\": \"x\"}'), lowcode.is_valid('desk', 'ticket', '{\"title\": \"\"}')"
    expect_replica "validate" "/severity|maximum" \
        "SELECT path, keyword FROM lowcode.validate('desk', 'ticket', '{\"title\": \"x\", \"severity\": 9}')"
    expect_replica "conforms" "t" "SELECT lowcode.conforms('desk', 'ticket', '{\"title\": \"x\", \"severity\": 3}')"
    expect_replica "matches" "t" "SELECT lowcode.matches('{\"required\": [\"a\"]}', '{\"a\": 1}')"
    expect_replica "records (written after the replica started too)" "3|after the replica started,coffee machine,printer" \
        "SELECT count(*), string_agg(data ->> 'title', ',' ORDER BY data ->> 'title') FROM lowcode.records"
    expect_replica "history" "created,updated" \
        "SELECT string_agg(action, ',' ORDER BY id) FROM lowcode.record_history(2)"
    expect_replica "typed view" "printer|5|open" "SELECT title, severity, state FROM desk.ticket WHERE id = 1"
    expect_replica "tasks and events" "2|2" \
        "SELECT (SELECT count(*) FROM lowcode.tasks WHERE status = 'open'), (SELECT count(*) FROM lowcode.events)"
    expect_replica "workflow_diagram" "stateDiagram-v2" \
        "SELECT split_part(lowcode.workflow_diagram('desk', 'ticket'), E'\n', 1)"
    expect_replica "export_app" "desk|ticket" \
        "SELECT e ->> 'app', e -> 'forms' -> 0 ->> 'name' FROM lowcode.export_app('desk') e"
    expect_replica "diff_app" "0" "SELECT count(*) FROM lowcode.diff_app('desk', lowcode.export_app('desk'))"
    expect_replica "conforms_to_version" "t" \
        "SELECT lowcode.conforms_to_version((SELECT current_version_id FROM lowcode.forms WHERE name = 'ticket'), '{\"title\": \"x\"}')"
    expect_replica "cache_stats" "t" "SELECT (lowcode.cache_stats() ->> 'capacity')::int > 0"

    step "writes on the replica fail with 25006"
    for write in \
        "SELECT lowcode.submit('desk', 'ticket', '{\"title\": \"x\"}')" \
        "SELECT lowcode.update_record(1, '{\"title\": \"y\"}')" \
        "SELECT lowcode.delete_record(2)" \
        "INSERT INTO desk.ticket (title) VALUES ('z')" \
        "SELECT lowcode.define_form('desk', 'other', '{}')" \
        "SELECT lowcode.create_app('other')" \
        "SELECT lowcode.define_workflow('desk', 'ticket', '{\"states\": {\"s\": {\"initial\": true}}}')" \
        "SELECT lowcode.claim_task('crew')" \
        "SELECT lowcode.complete_task((SELECT min(id) FROM lowcode.tasks), 'done')" \
        "SELECT lowcode.decide((SELECT min(id) FROM lowcode.tasks WHERE kind = 'approval'), 'approve')" \
        "SELECT lowcode.transition(1, 'close')" \
        "SELECT * FROM lowcode.poll_events('billing')" \
        "SELECT lowcode.emit('x')" \
        "SELECT lowcode.ack_events('billing', ARRAY[1::bigint])" \
        "LISTEN lowcode_events" \
        "SELECT lowcode.run_due_timers()"; do
        check sys_fails "$replica refuses: $write" 25006 "$replica" app "$write"
    done

    step "the worker fires timers on the primary and stays idle on the replica"
    # Both preload lowcode (the replica's postgresql.conf is the primary's); lowcode's launcher
    # starts only once recovery has finished (BgWorkerStart_RecoveryFinished), so a replica
    # runs none, and what the primary's worker fires reaches the replica by replay.
    sys_wait_true "$primary" app 20 "a worker for app on the primary" \
        "SELECT state = 'on' AND pid IS NOT NULL FROM lowcode.worker_status() WHERE database = 'app'"
    sys_psql "$primary" -d app -c "INSERT INTO lowcode.timers (record_id, name, event, fire_at, app)
        SELECT 2, 'replica_check', 'tick', clock_timestamp() + interval '500 milliseconds', r.app
          FROM lowcode.records r WHERE r.id = 2" >/dev/null
    sys_wait_true "$primary" app 20 "the primary's worker fires the timer" \
        "SELECT status = 'fired' FROM lowcode.timers WHERE name = 'replica_check'"
    sys_wait_replay "$primary" "$replica"
    expect_replica "the timer fired once, on the primary, replayed" "fired|1" \
        "SELECT t.status, (SELECT count(*) FROM lowcode.history h
                            WHERE h.action = 'timer_fired' AND h.detail ->> 'name' = 'replica_check')
           FROM lowcode.timers t WHERE t.name = 'replica_check'"
    expect_replica "lowcode is preloaded on the replica" "t" "SELECT lowcode.worker_preloaded()"
    expect_replica "no lowcode launcher or worker runs on the replica" "0" \
        "SELECT count(*) FROM lowcode.worker_processes()"
    expect_replica "worker_status: off on the replica, which says it is a standby" "off|t|t" \
        "SELECT state, pid IS NULL, detail LIKE '%standby%' FROM lowcode.worker_status()"
    check sys_expect "$primary: the worker still runs" "on" "$primary" app \
        "SELECT state FROM lowcode.worker_status() WHERE database = 'app'"
    check sys_no_worker_lines "$replica: no lowcode launcher or worker in its log" "$replica"

    step "a new version on the primary is enforced on the replica after replay"
    # One replica session validates against version 1, then (while it sits idle) the primary
    # publishes version 2 and the replica replays it; the same session must now use version 2.
    cat >"$SYS_WORK/new_version.sh" <<EOF
set -e
'$pg_bin/psql' -h '$(sys_sock "$primary")' -p $(sys_port "$primary") -U $PG_OS_USER -d app -X -q -A -t -v ON_ERROR_STOP=1 \\
    -c "SELECT lowcode.define_form('desk', 'ticket', '{\"type\": \"object\", \"required\": [\"title\", \"severity\"],
          \"properties\": {\"title\": {\"type\": \"string\", \"minLength\": 1}, \"severity\": {\"type\": \"integer\"}}}')" >/dev/null
lsn=\$('$pg_bin/psql' -h '$(sys_sock "$primary")' -p $(sys_port "$primary") -U $PG_OS_USER -d app -X -A -t -c "SELECT pg_current_wal_lsn()")
for i in \$(seq 1 300); do
    done=\$('$pg_bin/psql' -h '$(sys_sock "$replica")' -p $(sys_port "$replica") -U $PG_OS_USER -d app -X -A -t -c "SELECT pg_last_wal_replay_lsn() >= '\$lsn'::pg_lsn")
    [ "\$done" = t ] && { echo replayed; exit 0; }
    sleep 0.1
done
echo "not replayed"
EOF
    chmod 755 "$SYS_WORK/new_version.sh"
    chown "$PG_OS_USER:" "$SYS_WORK/new_version.sh"
    check sys_replica_session "$replica: a session that validated before enforces the new version after replay" "$replica"
    expect_replica "a fresh session enforces version 2 too" "f" \
        "SELECT lowcode.is_valid('desk', 'ticket', '{\"title\": \"no severity\"}')"
}
