#!/usr/bin/env bash
# worker_pool — more databases than worker processes: lowcode's bounded worker pool serves
# every database (shared_preload_libraries = 'lowcode', PostgreSQL's default
# max_worker_processes = 8, lowcode.worker_max = 4 by default).
#
# 1. 12 databases, each with lowcode, an app whose records set two timers (3 s and 6 s after
#    they are created) and a webhook: every timer of every database fires, exactly once, on
#    time; every event of every database reaches the webhook; never more than
#    lowcode.worker_max workers at once.
# 2. lowcode.worker_status() tells the truth in every database: visits, the next due time,
#    and why a database waits (lowcode.worker_max = 1, three databases due at once).
# 3. A database with a worker in it is dropped at once, and forgotten.
# Ports 29540 (cluster) and 29541 (receiver); override with LOWCODE_POOL_PORT (+1).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

port="${LOWCODE_POOL_PORT:-29540}"
rport=$((port + 1 + ${LOWCODE_PORT_OFFSET:-0}))
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
received="$SYS_WORK/received.jsonl"
: >"$received"
dbs=12

sys_start pool "$port"
data="$(sys_data pool)"
log="$(sys_log pool)"
{
    echo "shared_preload_libraries = 'lowcode'"
    # PostgreSQL's default (PolarDB's is 16): fewer worker slots than databases.
    echo "max_worker_processes = 8"
    echo "lowcode.launcher_naptime = '500ms'"
    echo "lowcode.webhook_allow = '127.0.0.0/8'"
} | lc_as_pg tee -a "$data/postgresql.conf" >/dev/null
lc_as_pg "$pg_bin/pg_ctl" restart -D "$data" -l "$log" -m fast -w -t 60 >/dev/null || fail "restart failed"

receiver_pid=""
python3 "$LC_ROOT/tests/system/webhook_receiver.py" "$rport" "$secret" "$received" &
receiver_pid=$!
sampler_pid=""
trap '[ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null; kill "$receiver_pid" 2>/dev/null; lc_cleanup' EXIT
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport), 0.2)" 2>/dev/null && break
    sleep 0.1
done

wait_for() { # wait_for WHAT SECONDS DB SQL — until the query returns t
    local what="$1" secs="$2" db="$3" query="$4"
    for _ in $(seq 1 $((secs * 10))); do
        [ "$(sys_val pool "$db" "$query" 2>/dev/null || true)" = t ] && return 0
        sleep 0.1
    done
    fail "$what: not true after ${secs}s ($db: $query)"
}

check sys_expect "max_worker_processes is 8, PostgreSQL's default" "8|4" pool postgres \
    "SELECT current_setting('max_worker_processes') || '|' || current_setting('lowcode.worker_max')"

step "$dbs databases with lowcode, an app with timers and a webhook in each"
for i in $(seq 1 "$dbs"); do
    sys_psql pool -d postgres -c "CREATE DATABASE m$i" >/dev/null
    sys_psql pool -d "m$i" >/dev/null <<SQL
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('ops');
SELECT lowcode.define_form('ops', 'job', '{"type": "object", "properties": {"n": {"type": "integer"}}}');
SELECT lowcode.define_workflow('ops', 'job', '{
  "states": {"open": {"initial": true}, "late": {"final": true}},
  "transitions": [{"name": "slip", "from": "open", "to": "late"}],
  "rules": [
    {"name": "arm", "on": "created", "then": [{"timer": {"name": "soon", "after": "3 seconds"}}, {"timer": {"name": "later", "after": "6 seconds"}}]},
    {"name": "soon", "on": "timer:soon", "then": [{"emit": {"topic": "ops.soon"}}]},
    {"name": "later", "on": "timer:later", "then": [{"transition": "late"}, {"emit": {"topic": "ops.later"}}]}]}');
SELECT lowcode.publish('ops');
SELECT lowcode.create_webhook('sink', 'http://127.0.0.1:$rport/ok', ARRAY['ops.*'], '{"secret": "$secret"}');
SQL
done
# Workers never above lowcode.worker_max (sampled every 50 ms from here on).
(
    while :; do
        sys_val pool postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lowcode worker'" 2>/dev/null
        sleep 0.05
    done >"$SYS_WORK/workers.txt"
) &
sampler_pid=$!

step "5 records in each database, all at once: 120 timers due 3 s and 6 s later"
start_epoch="$(date +%s.%N)"
for i in $(seq 1 "$dbs"); do
    sys_val pool "m$i" "SELECT count(lowcode.submit('ops', 'job', jsonb_build_object('n', n))) FROM generate_series(1, 5) n" >/dev/null &
done
wait_for_jobs() { local p; for p in $(jobs -p); do [ "$p" = "$receiver_pid" ] || [ "$p" = "$sampler_pid" ] || wait "$p"; done; }
wait_for_jobs
for i in $(seq 1 "$dbs"); do
    wait_for "m$i: both timers of every record fired" 30 "m$i" \
        "SELECT count(*) = 10 FROM lowcode.timers WHERE status = 'fired'"
done
step "all timers fired $(awk -v s="$start_epoch" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s after the first submit"
for i in $(seq 1 "$dbs"); do
    check sys_expect "m$i: each timer fired exactly once (one timer_fired row each, records in their final state)" "10|10|5" pool "m$i" "
        SELECT (SELECT count(*) FROM lowcode.history WHERE action = 'timer_fired') || '|' ||
               (SELECT count(DISTINCT detail->>'timer') FROM lowcode.history WHERE action = 'timer_fired') || '|' ||
               (SELECT count(*) FROM lowcode.records WHERE state = 'late')"
    check sys_expect "m$i: none early, none more than 2 s late" "0" pool "m$i" "
        SELECT count(*) FROM lowcode.timers WHERE fired_at < fire_at OR fired_at > fire_at + interval '2 seconds'"
done
lateness="$(for i in $(seq 1 "$dbs"); do
    sys_val pool "m$i" "SELECT string_agg((extract(epoch FROM fired_at - fire_at) * 1000)::int::text, E'\n') FROM lowcode.timers"
done | sort -n | awk '{ a[NR] = $1 } END { printf "p50=%sms p99=%sms max=%sms (%d timers)", a[int(NR * 0.5)], a[int(NR * 0.99)], a[NR], NR }')"
step "timer lateness over $dbs databases: $lateness"

step "every event of every database reaches the webhook"
for _ in $(seq 1 200); do
    n="$(python3 -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l)['status'] == 200))" "$received")"
    [ "$n" -ge $((dbs * 10)) ] && break
    sleep 0.1
done
for i in $(seq 1 "$dbs"); do
    check sys_expect "m$i: its 10 events delivered (acknowledged by the webhook's consumer)" "t" pool "m$i" \
        "SELECT (SELECT lag_events = 0 AND in_flight = 0 FROM lowcode.consumer_lag('webhook:sink'))
            AND (SELECT count(*) FROM lowcode.webhook_attempts WHERE outcome = 'delivered') >= 10"
done
seen="$(python3 -c "import json, sys; rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]; print(sum(1 for r in rows if r['status'] == 200), all(r['sig_ok'] for r in rows))" "$received")"
step "the receiver: $seen (requests answered 200, every signature valid)"
check sys_expect "the receiver got every event (12 x 10), each signature valid" "t" pool postgres \
    "SELECT ${seen% *} >= $((dbs * 10)) AND '${seen#* }' = 'True'"
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
most="$(sort -n "$SYS_WORK/workers.txt" | tail -n 1)"
step "most lowcode workers at once: $most ($(wc -l <"$SYS_WORK/workers.txt") samples)"
check sys_expect "never more workers than lowcode.worker_max" "t" pool postgres "SELECT ${most:-99} <= 4"

step "worker_status in every database: visited, and what is next"
for i in $(seq 1 "$dbs"); do
    check sys_expect "m$i: worker_status row for m$i, visited" "t" pool "m$i" "
        SELECT state IN ('on', 'idle', 'starting', 'waiting') AND visits >= 1 AND last_timer_run IS NOT NULL
          FROM lowcode.worker_status() WHERE database = 'm$i'"
done
check sys_expect "worker_status lists all 12 databases (lowcode ones only)" "12" pool m1 \
    "SELECT count(*) FROM lowcode.worker_status() WHERE database LIKE 'm%'"

step "lowcode.worker_max = 1 and six databases due at once: the others say they wait, and why"
sys_psql pool -d postgres >/dev/null <<'SQL'
ALTER SYSTEM SET lowcode.worker_max = 1;
SELECT pg_reload_conf();
SQL
sleep 1
for i in 1 2 3 4 5 6; do
    sys_val pool "m$i" "SELECT count(lowcode.submit('ops', 'job', jsonb_build_object('n', n))) FROM generate_series(1, 20) n" >/dev/null
done
saw_waiting=0
for _ in $(seq 1 400); do
    w="$(sys_val pool m1 "SELECT count(*) FROM lowcode.worker_status() WHERE state = 'waiting' AND detail LIKE '%lowcode.worker_max (1)%'")"
    [ "${w:-0}" -ge 1 ] && { saw_waiting=1; break; }
    sleep 0.02
done
check sys_expect "a database was seen waiting for lowcode.worker_max" "1" pool postgres "SELECT $saw_waiting"
for i in 1 2 3 4 5 6; do
    wait_for "m$i: its 40 new timers fired with one worker" 40 "m$i" \
        "SELECT count(*) = 50 FROM lowcode.timers WHERE status = 'fired'"
done
sys_psql pool -d postgres >/dev/null <<'SQL'
ALTER SYSTEM RESET lowcode.worker_max;
SELECT pg_reload_conf();
SQL

step "a database with a worker in it is dropped at once, and forgotten"
sys_val pool m12 "SELECT lowcode.submit('ops', 'job', '{}')" >/dev/null
t0=$(date +%s%N)
sys_psql pool -d postgres -c "DROP DATABASE m12 WITH (FORCE)" >/dev/null || fail "DROP DATABASE m12 failed"
took_ms=$((($(date +%s%N) - t0) / 1000000))
step "DROP DATABASE took ${took_ms} ms"
check sys_expect "dropped within 4 s" "t" pool postgres "SELECT $took_ms < 4000"
sleep 1.5
check sys_expect "m12 is no longer in worker_status" "0" pool m1 \
    "SELECT count(*) FROM lowcode.worker_status() WHERE database = 'm12'"
check sys_expect "no worker in m12" "0" pool postgres \
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'm12'"
grep -q "no background worker slot" "$log" && step "(the launcher logged a full max_worker_processes)"

finish
