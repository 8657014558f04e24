# shellcheck shell=bash
# tests/concurrency/lib.sh — helpers shared by the concurrency tests.
# Source it from a test (`source "$(dirname "$0")/lib.sh"`); scripts/concurrency.sh
# exports PGHOST PGPORT PGUSER PGDATABASE CONC_WORK and the LC_* cluster variables.
#
#   sql [psql args]          psql against the test database, quiet, unaligned,
#                            tuples only, stops at the first error
#   val "SELECT ..."         print the single value of a query
#   expect WHAT WANT "SQL"   fail unless the query's single value is WANT
#   show "SQL"               print a query's result (diagnostics), aligned
#   fail MESSAGE             print FAIL: MESSAGE and exit 1
#   session NAME [psql args] start a psql session in the background; its output
#                            goes to $CONC_WORK/NAME.log
#   pgbench_bg NAME [args]   the same for pgbench
#   wait_sessions            wait for every background session; fail if one failed
#   barrier_start N KEY...   a session that holds advisory locks KEY... and, key
#                            by key, lets N waiting sessions go at once; sessions
#                            pass a barrier with  $(barrier_sql KEY)
#   race_records NAME SETUP CALL  a session that races record by record (see below)
#   now_ms                   wall clock in milliseconds
# Every session is bounded (statement_timeout, client_connection_check_interval), and
# sessions still running when the test exits are killed, so nothing outlives its timeout.

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/lib.sh"

: "${PGHOST:?run through scripts/concurrency.sh}" "${PGPORT:?}" "${PGUSER:?}" "${PGDATABASE:?}" "${CONC_WORK:?}"

# Options for every session (CONC_OPTIONS adds more).
CONC_BASE_OPTIONS="-c statement_timeout=90s -c client_connection_check_interval=1s -c lc_messages=C"

conc_pids=()
conc_names=()

conc_kill_sessions() {
    local pid
    for pid in "${conc_pids[@]+"${conc_pids[@]}"}"; do
        kill "$pid" 2>/dev/null || true
    done
}
conc_exit() {
    local rc=$?
    conc_kill_sessions
    exit "$rc"
}
trap conc_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# psql as postgres; sudo drops the environment, so everything goes on the command line.
conc_psql() {
    lc_as_pg env PGOPTIONS="$CONC_BASE_OPTIONS ${CONC_OPTIONS:-}" \
        "$pg_bin/psql" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" \
        -X -q -v ON_ERROR_STOP=1 "$@"
}

sql() {
    conc_psql -A -t "$@"
}

val() {
    sql -c "$1"
}

show() {
    conc_psql -P pager=off -c "$1" >&2 || true
}

expect() {
    local what="$1" want="$2" query="$3" got
    got="$(val "$query")" || fail "$what: query failed: $query"
    if [ "$got" != "$want" ]; then
        fail "$what: expected $want, got $got   ($query)"
    fi
}

session() {
    local name="$1"
    shift
    conc_psql "$@" >"$CONC_WORK/$name.log" 2>&1 &
    conc_pids+=("$!")
    conc_names+=("$name")
}

pgbench_bg() {
    local name="$1"
    shift
    lc_as_pg env PGOPTIONS="$CONC_BASE_OPTIONS ${CONC_OPTIONS:-}" \
        "$pg_bin/pgbench" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@" "$PGDATABASE" \
        >"$CONC_WORK/$name.log" 2>&1 &
    conc_pids+=("$!")
    conc_names+=("$name")
}

# wait_sessions — wait for every session started so far; fail (showing its log) if
# one exited non-zero.
wait_sessions() {
    local i rc bad=0
    for i in "${!conc_pids[@]}"; do
        rc=0
        wait "${conc_pids[$i]}" || rc=$?
        if [ "$rc" != 0 ]; then
            bad=1
            printf 'session %s exited %s:\n' "${conc_names[$i]}" "$rc" >&2
            tail -n 15 "$CONC_WORK/${conc_names[$i]}.log" | sed 's/^/    /' >&2
        fi
    done
    conc_pids=()
    conc_names=()
    [ "$bad" = 0 ] || fail "a concurrent session failed (logs in $CONC_WORK)"
}

# barrier_sql KEY — what a session runs to wait at the barrier KEY.
barrier_sql() {
    echo "DO \$\$ BEGIN PERFORM pg_advisory_lock_shared($1); PERFORM pg_advisory_unlock_shared($1); END \$\$"
}

# barrier_start N KEY... — a background session holds advisory locks KEY...; for
# each KEY in order it waits until N sessions wait for that key (at most 30 s),
# then releases it so they all go at once. Returns once every lock is held.
barrier_start() {
    local n="$1" keys i
    shift
    keys="ARRAY[$(IFS=,; echo "$*")]::bigint[]"
    session "barrier_$1" -c "SELECT pg_advisory_lock(k) FROM unnest($keys) k" -c "
        DO \$\$
        DECLARE k bigint; deadline timestamptz; waiting int;
        BEGIN
            FOREACH k IN ARRAY $keys LOOP
                deadline := clock_timestamp() + interval '30 s';
                LOOP
                    SELECT count(*) INTO waiting FROM pg_locks
                     WHERE locktype = 'advisory' AND objid = k AND NOT granted
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
                    EXIT WHEN waiting >= $n;
                    IF clock_timestamp() > deadline THEN
                        RAISE EXCEPTION 'barrier %: only % of $n sessions arrived in 30 s', k, waiting;
                    END IF;
                    PERFORM pg_sleep(0.002);
                END LOOP;
                PERFORM pg_advisory_unlock(k);
            END LOOP;
        END \$\$"
    for i in $(seq 1 400); do
        [ "$(val "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND mode = 'ExclusiveLock' AND objid = ANY ($keys)")" = "$#" ] && return 0
        sleep 0.025
    done
    fail "barrier $* did not come up"
}

# race_records NAME SETUP CALL — a session that runs SETUP, then record by record
# (lowcode.records in id order) passes the record's barrier (key 1000 + id: barrier_start)
# and runs CALL, a text expression of the record id `rec`, in a transaction of its own. Each
# outcome goes to the table outcomes (who, record_id, result, sqlstate, message), which the
# test creates: the result, or 'error' with the SQLSTATE and message.
race_records() {
    session "$1" -c "$2" -c "
        DO \$\$
        DECLARE rec bigint; result text; st text; msg text;
        BEGIN
            FOR rec IN SELECT id FROM lowcode.records ORDER BY id LOOP
                PERFORM pg_advisory_lock_shared(1000 + rec);
                PERFORM pg_advisory_unlock_shared(1000 + rec);
                BEGIN
                    result := $3;
                    INSERT INTO outcomes VALUES ('$1', rec, result, NULL, NULL);
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                    INSERT INTO outcomes VALUES ('$1', rec, 'error', st, msg);
                END;
                COMMIT;
            END LOOP;
        END \$\$"
}

# now_ms — wall clock in milliseconds (for timing checks).
now_ms() {
    date +%s%3N
}
