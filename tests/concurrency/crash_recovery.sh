#!/usr/bin/env bash
# crash_recovery — 4 pgbench clients submit into a form whose workflow creates, for every record,
# a task with a deadline (a timer), a reminder timer and an outbox event; in the middle
# the cluster is stopped with `pg_ctl stop -m immediate` (no shutdown checkpoint, so the
# restart replays WAL), then started again on the same data directory.
# Invariants after recovery: every record committed before the crash is there; every
# record has its 'created' history row, its task, its deadline, its timer and its event,
# exactly once; no task, timer, event or history row without its record; the lowcode
# indexes pass amcheck; and the app keeps working.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=4
MIN_RECORDS=600

sql >/dev/null <<'SQL'
SELECT lowcode.create_app('crash');
SELECT lowcode.define_form('crash', 'f', '{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}');
SELECT lowcode.define_workflow('crash', 'f', '{
  "states": {"new": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "new", "to": "done"}],
  "rules": [{"name": "intake", "on": "created",
             "then": [{"task": {"name": "review", "pool": "crew", "due": "1 hour"}},
                      {"timer": {"name": "remind", "after": "1 day"}},
                      {"emit": {"topic": "crash.created"}}]}]}');
SQL

cat >"$CONC_WORK/submit.pgbench" <<'PGB'
SELECT lowcode.submit('crash', 'f', jsonb_build_object('n', :client_id));
PGB
chown "$PG_OS_USER:" "$CONC_WORK/submit.pgbench"

# wait_records N — until N records are committed (at most 20 s).
wait_records() {
    for _ in $(seq 1 200); do
        [ "$(val "SELECT count(*) FROM lowcode.records")" -ge "$1" ] && return 0
        sleep 0.1
    done
}
pgbench_bg submitters -n -c "$CLIENTS" -j 2 -T 40 -f "$CONC_WORK/submit.pgbench"
# A checkpoint under load, then more load, so recovery replays from mid-stream.
wait_records $((MIN_RECORDS / 2))
val "CHECKPOINT" >/dev/null
wait_records "$MIN_RECORDS"
before="$(val "SELECT count(*) FROM lowcode.records")"
[ "$before" -ge "$MIN_RECORDS" ] || fail "only $before records after 20 s: pgbench did not get going"
log_lines=$(wc -l <"$LC_LOGFILE")
lc_as_pg "$pg_bin/pg_ctl" stop -D "$LC_DATA" -m immediate -w -t 60 >/dev/null ||
    fail "pg_ctl stop -m immediate failed"
rc=0
wait "${conc_pids[@]}" || rc=$?
conc_pids=()
conc_names=()
[ "$rc" != 0 ] || fail "pgbench finished cleanly: the crash did not interrupt it"

lc_as_pg "$pg_bin/pg_ctl" start -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 >/dev/null ||
    fail "the cluster did not restart after the crash (see $LC_LOGFILE)"
tail -n +"$((log_lines + 1))" "$LC_LOGFILE" | grep -qE 'not properly shut down|was interrupted' ||
    fail "the restart did not go through crash recovery"
for _ in $(seq 1 100); do
    lc_as_pg "$pg_bin/pg_isready" -q -h "$PGHOST" -p "$PGPORT" && break
    sleep 0.1
done

after="$(val "SELECT count(*) FROM lowcode.records")"
[ "$after" -ge "$before" ] || fail "records lost: $before committed before the crash, $after after recovery"

# Each record with everything its transaction wrote, exactly once.
per_record() { # WHAT  SUBQUERY-GROUPED-BY-record_id
    expect "records without exactly one $1" 0 "
        SELECT count(*) FROM lowcode.records r LEFT JOIN ($2) x ON x.record_id = r.id
         WHERE x.n IS DISTINCT FROM 1"
}
per_record "'created' history row" "SELECT record_id, count(*) n FROM lowcode.history WHERE action = 'created' GROUP BY 1"
per_record "'task_created' history row" "SELECT record_id, count(*) n FROM lowcode.history WHERE action = 'task_created' GROUP BY 1"
per_record "review task" "SELECT record_id, count(*) n FROM lowcode.tasks WHERE name = 'review' AND status = 'open' AND pool = 'crew' GROUP BY 1"
per_record "deadline timer" "SELECT t.record_id, count(*) n FROM lowcode.timers t JOIN lowcode.tasks k ON k.id = t.task_id
                             WHERE t.event = 'deadline_passed:review' AND t.status = 'pending' GROUP BY 1"
per_record "remind timer" "SELECT record_id, count(*) n FROM lowcode.timers WHERE event = 'timer:remind' AND status = 'pending' GROUP BY 1"
per_record "crash.created event" "SELECT record_id, count(*) n FROM lowcode.events WHERE topic = 'crash.created' GROUP BY 1"

# Nothing without its record (history and events have no foreign key).
for t in tasks timers events history; do
    expect "$t rows without their record" 0 "
        SELECT count(*) FROM lowcode.$t x WHERE NOT EXISTS (SELECT FROM lowcode.records r WHERE r.id = x.record_id)"
done
expect "rows in the pool" "$after" "SELECT count(*) FROM lowcode.tasks"
expect "events" "$after" "SELECT count(*) FROM lowcode.events"

# The indexes survived too, and the app still works.
sql >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT bt_index_check(c.oid, true)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
 WHERE c.relnamespace = 'lowcode'::regnamespace AND a.amname = 'btree';
SQL
id="$(val "SELECT lowcode.submit('crash', 'f', '{\"n\": 0}')")"
expect "a task for a record submitted after recovery" 1 "SELECT count(*) FROM lowcode.tasks WHERE record_id = $id"
echo "crash after $before committed records; after recovery $after records, each with its history," \
    "task, deadline, timer and event exactly once, nothing orphaned, indexes intact"
