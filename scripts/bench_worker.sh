#!/usr/bin/env bash
# scripts/bench_worker.sh — lowcode's background worker under load (make bench-worker):
#   1. webhook deliveries per second to a local receiver that answers 200 at once
#      (tests/system/webhook_receiver.py, not logging), one webhook, N events; then the time
#      from an event's commit to its delivery with 1000 events written at 100 per second;
#   2. timer lateness (fired_at - fire_at) p50 / p99 / max with T timers due at R per second;
#   3. the same over D databases (default 100) at R per second in all, with PostgreSQL's default
#      max_worker_processes (8) and lowcode.worker_max (4): lateness, the most workers at
#      once, and how many visits the pool made; then an event in every database for its
#      webhook: how long until the last one is delivered.
# Uses the extension as installed for PG_CONFIG (make install first, or LOWCODE_INSTALL=1).
#
# Environment: LOWCODE_PGPORT (default 29570; the receiver uses the next port),
# LOWCODE_BENCH_EVENTS (default 10000), LOWCODE_BENCH_TIMERS (20000), LOWCODE_BENCH_RATE (1000),
# LOWCODE_BENCH_DATABASES (100), LOWCODE_BENCH_POOL_TIMERS (20000: 20 s at 1,000/s),
# LOWCODE_BENCH_SKIP_ONE=1 (only part 3, the many databases; no document written).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lc_setup
[ "${LOWCODE_INSTALL:-0}" != 1 ] || lc_install_extension "${LOWCODE_PROFILE:-release}"
export LOWCODE_PGPORT="${LOWCODE_PGPORT:-29570}"
rport=$((LOWCODE_PGPORT + 1))
events="${LOWCODE_BENCH_EVENTS:-10000}"
timers="${LOWCODE_BENCH_TIMERS:-20000}"
rate="${LOWCODE_BENCH_RATE:-1000}"
ndb="${LOWCODE_BENCH_DATABASES:-100}"
pool_timers="${LOWCODE_BENCH_POOL_TIMERS:-20000}"
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

lc_cluster_start bench_worker
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.webhook_allow = '127.0.0.1:$rport'"
    echo "max_connections = 200"
    echo "lowcode.launcher_naptime = '500ms'"
} | lc_as_pg tee -a "$LC_DATA/postgresql.conf" >/dev/null
lc_as_pg "$pg_bin/pg_ctl" restart -D "$LC_DATA" -l "$LC_LOGFILE" -m fast -w -t 60 >/dev/null ||
    lc_die "restart with the worker failed"
python3 "$LC_ROOT/tests/system/webhook_receiver.py" "$rport" "$secret" - &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true; lc_cleanup' EXIT

q() { lc_psql -X -q -A -t -d bench -c "$1"; }
lc_psql -q -d postgres -c "CREATE DATABASE bench" >/dev/null
lc_psql -q -d bench >/dev/null <<SQL
CREATE EXTENSION lowcode;
SELECT lowcode.create_webhook('bench', 'http://127.0.0.1:$rport/ok', NULL, '{"secret": "$secret"}');
SELECT lowcode.create_app('clock');
SELECT lowcode.define_form('clock', 'thing', '{"type": "object"}');
SELECT lowcode.submit('clock', 'thing', jsonb_build_object('n', i)) FROM generate_series(1, 200) i;
SQL
deliveries="(not run)"
paced="(not run)"
lateness="(not run)"
if [ "${LOWCODE_BENCH_SKIP_ONE:-0}" != 1 ]; then
lc_psql -q -d bench -c "SELECT count(lowcode.emit('bench.tick', jsonb_build_object('n', i))) FROM generate_series(1, $events) i" >/dev/null

lc_log "1: $events webhook deliveries (one webhook, receiver answers 200 at once)"
for _ in $(seq 1 240); do
    [ "$(q "SELECT count(*) >= $events FROM lowcode.webhook_attempts WHERE outcome = 'delivered'")" = t ] && break
    sleep 0.5
done
deliveries="$(q "SELECT format('%s delivered in %s s: %s deliveries/s (latency p50 %s ms, p99 %s ms)',
                     count(*), round(extract(epoch FROM max(attempted_at) - min(attempted_at))::numeric, 2),
                     round(count(*) / greatest(extract(epoch FROM max(attempted_at) - min(attempted_at)), 0.001)),
                     round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2),
                     round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2))
                   FROM lowcode.webhook_attempts WHERE outcome = 'delivered'")"
lc_log "webhooks: $deliveries"

lc_log "1b: commit to delivery, 1000 events at 100 per second (each its own transaction)"
for i in $(seq 1 1000); do
    echo "SELECT lowcode.emit('bench.paced', jsonb_build_object('n', $i));"
    echo "SELECT pg_sleep(0.01);"
done | lc_psql -X -q -d bench >/dev/null
for _ in $(seq 1 120); do
    [ "$(q "SELECT count(*) >= 1000 FROM lowcode.webhook_attempts a JOIN lowcode.events e ON e.id = a.event_id
            WHERE e.topic = 'bench.paced' AND a.outcome = 'delivered'")" = t ] && break
    sleep 0.5
done
# The event's created_at is its transaction's start (the emit is the whole transaction); the
# receiver has it when the attempt's answer came (attempted_at + latency).
paced="$(q "SELECT format('%s delivered: commit to delivery p50 %s ms, p99 %s ms, max %s ms', count(*),
                 round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                 round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1))
              FROM (SELECT extract(epoch FROM a.attempted_at - e.created_at) * 1000 + a.latency_ms AS ms
                      FROM lowcode.webhook_attempts a JOIN lowcode.events e ON e.id = a.event_id
                     WHERE e.topic = 'bench.paced' AND a.outcome = 'delivered') l")"
lc_log "webhooks at 100 events/s: $paced"

lc_log "2: $timers timers due at $rate per second"
q "INSERT INTO lowcode.timers (record_id, name, event, fire_at, app)
   SELECT r.ids[1 + i % 200], 'bench', 'tick', clock_timestamp() + interval '2 seconds' + (i * interval '1 second') / $rate,
          r.apps[1 + i % 200]
     FROM generate_series(0, $timers - 1) i,
          (SELECT array_agg(id ORDER BY id) ids, array_agg(app ORDER BY id) apps FROM lowcode.records) r" >/dev/null
for _ in $(seq 1 $((timers * 4 / rate + 60))); do
    [ "$(q "SELECT count(*) = $timers FROM lowcode.timers WHERE name = 'bench' AND status = 'fired'")" = t ] && break
    sleep 0.5
done
lateness="$(q "SELECT format('%s fired: lateness p50 %s ms, p99 %s ms, max %s ms', count(*),
                    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1))
                 FROM (SELECT extract(epoch FROM fired_at - fire_at) * 1000 AS ms
                         FROM lowcode.timers WHERE name = 'bench' AND status = 'fired') l")"
lc_log "timers: $lateness"
fi
lc_log "3: $ndb databases, $pool_timers timers due at $rate per second spread over them"
# One database made once, copied: a database a worker is in cannot be copied, so the template
# takes no connections once it is ready.
lc_psql -q -d postgres -c "CREATE DATABASE pool_template" >/dev/null
lc_psql -q -d pool_template >/dev/null <<'SQL'
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('clock');
SELECT lowcode.define_form('clock', 'thing', '{"type": "object"}');
SELECT lowcode.submit('clock', 'thing', jsonb_build_object('n', i)) FROM generate_series(1, 20) i;
SQL
lc_psql -q -d postgres -c "ALTER DATABASE pool_template WITH ALLOW_CONNECTIONS false" >/dev/null
lc_psql -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'pool_template'" >/dev/null
sleep 0.5
for d in $(seq 1 "$ndb"); do
    lc_psql -q -d postgres -c "CREATE DATABASE pool_$d TEMPLATE pool_template" >/dev/null
done
sleep 3 # every database visited once
start="$(q "SELECT extract(epoch FROM clock_timestamp() + make_interval(secs => 5 + $ndb * 0.05))")"
for d in $(seq 1 "$ndb"); do
    # Written as lowcode's rules write timers: the due time noted for the worker pool.
    lc_psql -X -q -A -t -d "pool_$d" >/dev/null <<SQL
BEGIN;
INSERT INTO lowcode.timers (record_id, name, event, fire_at, app)
SELECT r.ids[1 + i % 20], 'bench', 'tick', to_timestamp($start) + (i * interval '1 second') / $rate, r.apps[1 + i % 20]
  FROM generate_series(0, $pool_timers - 1) i,
       (SELECT array_agg(id ORDER BY id) ids, array_agg(app ORDER BY id) apps FROM lowcode.records) r
 WHERE i % $ndb = $d - 1;
SELECT lowcode.worker_note_due(min(fire_at)) FROM lowcode.timers WHERE name = 'bench' AND status = 'pending';
COMMIT;
SQL
done
(
    while :; do
        q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lowcode worker'" 2>/dev/null
        sleep 0.25
    done >"$LC_DIR/pool_workers.txt"
) &
sampler=$!
trap 'kill "$receiver" "$sampler" 2>/dev/null || true; lc_cleanup' EXIT
sleep "$(awk -v s="$start" -v n="$pool_timers" -v r="$rate" -v now="$(date +%s.%N)" 'BEGIN { d = s + n / r - now + 2; print (d > 0 ? d : 0) }')"
for _ in $(seq 1 60); do
    left=0
    for d in $(seq 1 "$ndb"); do
        left=$((left + $(lc_psql -X -q -A -t -d "pool_$d" -c "SELECT count(*) FROM lowcode.timers WHERE name = 'bench' AND status = 'pending'")))
    done
    [ "$left" = 0 ] && break
    sleep 1
done
kill "$sampler" 2>/dev/null || true
for d in $(seq 1 "$ndb"); do
    lc_psql -X -q -A -t -d "pool_$d" -c "SELECT extract(epoch FROM fired_at - fire_at) * 1000 FROM lowcode.timers WHERE name = 'bench'"
done >"$LC_DIR/pool_lateness.txt"
visits="$(for d in $(seq 1 "$ndb"); do lc_psql -X -q -A -t -d "pool_$d" -c "SELECT visits FROM lowcode.worker_status() WHERE database = current_database()"; done | awk '{ s += $1 } END { print s }')"
most="$(sort -n "$LC_DIR/pool_workers.txt" | tail -n 1)"
pool="$(sort -n "$LC_DIR/pool_lateness.txt" | awk -v left="$left" -v most="$most" -v visits="$visits" -v ndb="$ndb" '
    { a[NR] = $1 }
    END { printf "%d fired (%d never): lateness p50 %.1f ms, p99 %.1f ms, max %.1f ms; at most %d workers at once (+1 launcher), %d visits to %d databases",
                 NR, left, a[int(NR * 0.5)], a[int(NR * 0.99)], a[NR], most, visits, ndb }')"
lc_log "pool: $pool"
for d in $(seq 1 "$ndb"); do
    lc_psql -X -q -A -t -d "pool_$d" -c "SELECT lowcode.create_webhook('hook', 'http://127.0.0.1:$rport/ok', NULL, '{\"secret\": \"$secret\"}')" >/dev/null
done
sleep 2
t0="$(date +%s.%N)"
for d in $(seq 1 "$ndb"); do
    lc_psql -X -q -A -t -d "pool_$d" -c "SELECT lowcode.emit('pool.tick', '{}')" >/dev/null
done
t1="$(date +%s.%N)"
for _ in $(seq 1 600); do
    pending=0
    for d in $(seq 1 "$ndb"); do
        pending=$((pending + $(lc_psql -X -q -A -t -d "pool_$d" -c "SELECT (count(*) = 0)::int FROM lowcode.webhook_attempts WHERE outcome = 'delivered'")))
    done
    [ "$pending" = 0 ] && break
    sleep 0.2
done
spread="$(awk -v a="$t0" -v b="$t1" -v c="$(date +%s.%N)" -v n="$ndb" -v p="$pending" 'BEGIN { printf "an event in each of %d databases (written over %.1f s): the last delivered %.1f s after the first was written (%d databases still waiting)", n, b - a, c - a, p }')"
lc_log "pool webhooks: $spread"
printf 'webhooks: %s\nwebhooks at 100 events/s: %s\ntimers (%s due/s): %s\npool: %s\npool webhooks: %s\n' "$deliveries" "$paced" "$rate" "$lateness" "$pool" "$spread" | tee "$LC_DIR/results.txt"
[ "${LOWCODE_BENCH_SKIP_ONE:-0}" != 1 ] || exit 0
# The figures, with the machine, date, commit and build they come from.
doc="${LOWCODE_BENCH_WORKER_DOC:-$LC_ROOT/docs/benchmarks-worker.md}"
so="$("$PG_CONFIG" --pkglibdir)/lowcode.so"
build="debug"
readelf -S "$so" 2>/dev/null | grep -q '\.debug_info' || build="release"
{
    echo "# lowcode background worker: benchmark"
    echo
    echo "Written by \`make bench-worker\` (\`scripts/bench_worker.sh\`); every figure below comes from the run described here."
    echo
    echo "| machine |  |"
    echo "| --- | --- |"
    echo "| CPUs (nproc) | $(nproc) |"
    echo "| PostgreSQL | $("$PG_CONFIG" --version) |"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| lowcode | commit $(git -C "$LC_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $build build of the installed lowcode.so |"
    echo "| load average at the end (1, 5, 15 min) | $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo
    echo "| measurement | result | goal |"
    echo "| --- | --- | --- |"
    echo "| webhook deliveries, one webhook, $events events, local receiver answering 200 at once | $deliveries | ≥ 2,000 deliveries/s |"
    echo "| commit to webhook delivery, 1000 events at 100 per second, each its own transaction (created_at to the receiver's answer) | $paced | p50 ≤ 50 ms, p99 < 250 ms |"
    echo "| timer lateness (fired_at − fire_at), $timers timers due at $rate per second | $lateness | p99 < 1 s |"
    echo "| $ndb databases (max_worker_processes 8, lowcode.worker_max 4): $pool_timers timers due at $rate per second spread over them | $pool | p99 < 1 s, at most 4 workers |"
    echo "| $ndb databases, each with a webhook | $spread | every database's event delivered |"
} >"$doc"
lc_log "wrote $doc"
