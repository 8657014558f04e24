#!/usr/bin/env bash
# delete_race — a record is deleted at the same moment as the completion of its task, whose
# rule gives the record a new task with a deadline (one barrier per record, RECORDS records).
# Tasks and timers have no foreign key to their record: the engine deletes them with it and
# keeps the record from being deleted under the rules of an event (FOR KEY SHARE, what the
# key's check took), and delete_record takes the record's tasks before the record, the order a
# completion takes them in. Invariants: every record is deleted; no task or timer is left
# without its record; no deadlock (with the key, 22 of 30 races ended in one; with the lock
# but without delete_record's order, 30 of 30); a completion either finished first or was
# refused because its task was gone.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

RECORDS=30

sql >/dev/null <<SQL
SELECT lowcode.create_app('dr');
SELECT lowcode.define_form('dr', 'f', '{"type": "object"}');
SELECT lowcode.define_workflow('dr', 'f', '{
  "states": {"open": {"initial": true}},
  "rules": [{"name": "assign", "on": "created", "then": [{"task": {"name": "fix", "assignee": "eng"}}]},
            {"name": "check", "on": "task_completed:fix",
             "then": [{"task": {"name": "verify", "pool": "qa", "due": "1 hour"}}]}]}');
SELECT count(lowcode.submit('dr', 'f', '{}')) FROM generate_series(1, $RECORDS);
CREATE TABLE outcomes (who text, record_id bigint, result text, sqlstate text, message text);
SQL
expect "fix tasks claimed by eng" "$RECORDS" "SELECT count(*) FROM lowcode.tasks WHERE name = 'fix' AND status = 'claimed'"

keys="$(val "SELECT string_agg((1000 + id)::text, ' ' ORDER BY id) FROM lowcode.records")"
# shellcheck disable=SC2086
barrier_start 2 $keys
race_records completer "SET lowcode.actor = 'eng'" "(SELECT 'completed' FROM lowcode.complete_task((SELECT t.id FROM lowcode.tasks t WHERE t.record_id = rec AND t.name = 'fix'), 'done'))"
race_records deleter "SET lowcode.actor = 'eng'" "(SELECT 'deleted' FROM lowcode.delete_record(rec))"
wait_sessions

# The one refusal that may happen: the completion's task is gone (its id NULL: 22004).
bad="$(val "SELECT string_agg(DISTINCT format('%s: %s %s', who, sqlstate, message), '; ') FROM outcomes
             WHERE result = 'error' AND NOT (who = 'completer' AND sqlstate IN ('22004', '42704'))")"
[ -z "$bad" ] || fail "unexpected errors (a deadlock?): $bad"
expect "outcomes" "$((2 * RECORDS))" "SELECT count(*) FROM outcomes"
expect "records deleted" "$RECORDS" "SELECT count(*) FROM outcomes WHERE who = 'deleter' AND result = 'deleted'"
expect "tasks without their record" 0 \
    "SELECT count(*) FROM lowcode.tasks t WHERE NOT EXISTS (SELECT FROM lowcode.records r WHERE r.id = t.record_id)"
expect "timers without their record" 0 \
    "SELECT count(*) FROM lowcode.timers d WHERE NOT EXISTS (SELECT FROM lowcode.records r WHERE r.id = d.record_id)"
bad="$(val "
    SELECT string_agg(format('record %s: fix %s, verify %s, deadlines %s', r.id, f.status, v.n, d.n), '; ' ORDER BY r.id)
      FROM lowcode.records r
      LEFT JOIN lowcode.tasks f ON f.record_id = r.id AND f.name = 'fix'
      CROSS JOIN LATERAL (SELECT count(*) n FROM lowcode.tasks t WHERE t.record_id = r.id AND t.name = 'verify') v
      CROSS JOIN LATERAL (SELECT count(*) n FROM lowcode.timers t WHERE t.record_id = r.id AND t.status = 'pending') d
     WHERE NOT ((f.status = 'completed' AND v.n = 1 AND d.n = 1) OR (f.status = 'claimed' AND v.n = 0 AND d.n = 0))")"
[ -z "$bad" ] || fail "records left half done: $bad"
echo "$RECORDS delete-vs-completion races, no deadlock: \
$(val "SELECT count(*) FROM outcomes WHERE who = 'completer' AND result = 'completed'") completions finished first, \
no task or timer without its record"
