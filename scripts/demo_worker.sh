#!/usr/bin/env bash
# scripts/demo_worker.sh — lowcode's background worker end to end (make demo-worker):
# a cluster with shared_preload_libraries = 'lowcode' and a tiny local webhook receiver on
# 127.0.0.1; a severe fault report's "fault.severe" event arrives there, signed, and its
# task's deadline escalation ("fault.overdue") fires on time, with nobody calling
# run_due_timers. The extension as installed for PG_CONFIG is used (make install first, or
# LOWCODE_INSTALL=1).
#
# Environment: LOWCODE_PGPORT (default 29560; the receiver listens on the next port),
# LOWCODE_DEMO_KEEP=1 keeps the cluster running afterwards.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lc_setup
[ "${LOWCODE_INSTALL:-0}" != 1 ] || lc_install_extension "${LOWCODE_PROFILE:-release}"
[ "${LOWCODE_DEMO_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
export LOWCODE_PGPORT="${LOWCODE_PGPORT:-29560}"
rport=$((LOWCODE_PGPORT + 1))
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

lc_cluster_start demo_worker
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.webhook_allow = '127.0.0.1:$rport'"
    echo "lowcode.launcher_naptime = '1s'"
} | lc_as_pg tee -a "$LC_DATA/postgresql.conf" >/dev/null
lc_as_pg "$pg_bin/pg_ctl" restart -D "$LC_DATA" -l "$LC_LOGFILE" -m fast -w -t 60 >/dev/null ||
    lc_die "restart with the worker failed"

received="$LC_DIR/received.jsonl"
: >"$received"
python3 "$LC_ROOT/tests/system/webhook_receiver.py" "$rport" "$secret" "$received" &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true; lc_cleanup' EXIT

q() { lc_psql -X -q -A -t -d demo -c "$1"; }
lc_psql -q -d postgres -c "CREATE DATABASE demo" >/dev/null
lc_psql -q -d demo >/dev/null <<SQL
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('inspection', 'Factory inspections');
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object", "required": ["site", "severity", "machine"],
  "properties": {"site": {"type": "string"}, "severity": {"type": "integer", "minimum": 1, "maximum": 5},
                 "machine": {"type": "string"}}}');
SELECT lowcode.define_workflow('inspection', 'fault_report', '{
  "states": {"open": {"initial": true}, "resolved": {"final": true}},
  "transitions": [{"name": "resolve", "from": "open", "to": "resolved"}],
  "rules": [
    {"name": "route_severe", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 seconds"}},
              {"emit": {"topic": "fault.severe"}}]},
    {"name": "overdue", "on": "deadline_passed:fix", "then": [{"emit": {"topic": "fault.overdue"}}]}
  ]}');
SELECT lowcode.create_webhook('ops', 'http://127.0.0.1:$rport/ok', '{fault.*}', '{"secret": "$secret"}');
SQL

echo "== the worker (lowcode.worker_status())"
for _ in $(seq 1 100); do
    [ "$(q "SELECT state FROM lowcode.worker_status() WHERE database = 'demo'")" = on ] && break
    sleep 0.2
done
lc_psql -X -d demo -c "SELECT database, state, pid, acting_as, detail FROM lowcode.worker_status()"

echo "== a severe fault report: a task due in 5 seconds, and the event fault.severe"
record="$(q "SELECT lowcode.submit('inspection', 'fault_report', '{\"site\": \"plant-2\", \"severity\": 5, \"machine\": \"M-117\"}')")"
echo "record $record submitted at $(date -u +%T.%N | cut -c1-12)"

wait_topic() { # wait_topic TOPIC SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        grep -q "\"topic\": \"$1\"" "$received" && return 0
        sleep 0.1
    done
    lc_die "$1 did not arrive within $2 s (see $LC_LOGFILE)"
}
echo "(a worker that has just started waits one lease, 15 s, before its first webhook poll)"
wait_topic fault.severe 40
echo "== arrived at the receiver (signature checked there: sig_ok):"
grep '"topic": "fault.severe"' "$received"

echo "== nobody calls run_due_timers: the worker fires the deadline on time"
wait_topic fault.overdue 30
lc_psql -X -d demo -c "SELECT name, event, fire_at, fired_at, round(extract(epoch FROM fired_at - fire_at) * 1000) AS late_ms
                         FROM lowcode.timers WHERE record_id = $record"
echo "== fault.overdue arrived:"
grep '"topic": "fault.overdue"' "$received"
echo "== lowcode.webhook_deliveries('ops'):"
lc_psql -X -d demo -c "SELECT event_id, attempt, status_code, round(latency_ms::numeric, 1) AS latency_ms, outcome FROM lowcode.webhook_deliveries('ops')"
python3 - "$received" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows and all(r["sig_ok"] for r in rows), "a request with a bad signature"
print(f"demo: {len(rows)} webhook request(s), every signature valid")
PY
