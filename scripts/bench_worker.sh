#!/usr/bin/env bash
# scripts/bench_worker.sh — lowcode's background worker under load (make bench-worker):
#   1. webhook deliveries per second to a local receiver that answers 200 at once
#      (tests/system/webhook_receiver.py, not logging), one webhook, N events;
#   2. timer lateness (fired_at - fire_at) p50 / p99 / max with T timers due at R per second.
# Uses the extension as installed for PG_CONFIG (make install first, or LOWCODE_INSTALL=1).
#
# Environment: LOWCODE_PGPORT (default 29570; the receiver uses the next port),
# LOWCODE_BENCH_EVENTS (default 10000), LOWCODE_BENCH_TIMERS (20000), LOWCODE_BENCH_RATE (1000).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lc_setup
[ "${LOWCODE_INSTALL:-0}" != 1 ] || lc_install_extension "${LOWCODE_PROFILE:-release}"
export LOWCODE_PGPORT="${LOWCODE_PGPORT:-29570}"
rport=$((LOWCODE_PGPORT + 1))
events="${LOWCODE_BENCH_EVENTS:-10000}"
timers="${LOWCODE_BENCH_TIMERS:-20000}"
rate="${LOWCODE_BENCH_RATE:-1000}"
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

lc_cluster_start bench_worker
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.webhook_allow = '127.0.0.1:$rport'"
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

lc_log "2: $timers timers due at $rate per second"
q "INSERT INTO lowcode.timers (record_id, name, event, fire_at)
   SELECT r.ids[1 + i % 200], 'bench', 'tick', clock_timestamp() + interval '2 seconds' + (i * interval '1 second') / $rate
     FROM generate_series(0, $timers - 1) i, (SELECT array_agg(id ORDER BY id) ids FROM lowcode.records) r" >/dev/null
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
printf 'webhooks: %s\ntimers (%s due/s): %s\n' "$deliveries" "$rate" "$lateness" | tee "$LC_DIR/results.txt"
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
    echo "| timer lateness (fired_at − fire_at), $timers timers due at $rate per second | $lateness | p99 < 1 s |"
} >"$doc"
lc_log "wrote $doc"
