#!/usr/bin/env bash
# withdraw_race — the submitter withdraws a record at the same moment as the last
# approver of its "all" approval approves it (one barrier per record, RECORDS records).
# Invariants: no deadlock; for every record exactly one side won — either the approval
# was approved (record approved, one wd.approved event, the withdraw refused with 55000
# "no pending approval") or withdrawn (record back in draft, no event, the decide refused
# with 55000 "task cancelled") — and no approval task is left open.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

RECORDS=20

sql >/dev/null <<SQL
SELECT lowcode.create_app('wd');
SELECT lowcode.define_form('wd', 'f', '{"type": "object"}');
SELECT lowcode.define_workflow('wd', 'f', '{
  "states": {"draft": {"initial": true}, "review": {}, "approved": {"final": true}},
  "transitions": [{"name": "send", "from": "draft", "to": "review"}],
  "rules": [{"name": "ask", "on": "entered:review",
             "then": [{"approval": {"name": "board", "mode": "all", "approvers": ["a1", "a2"],
                                    "on_approve": "approved", "on_reject": "draft"}}]},
            {"name": "yes", "on": "approved:board", "then": [{"emit": {"topic": "wd.approved"}}]}]}');
SET lowcode.actor = 'sub';
SELECT lowcode.transition(lowcode.submit('wd', 'f', '{}'), 'send') FROM generate_series(1, $RECORDS);
SET lowcode.actor = 'a1';
SELECT lowcode.decide(t.id, 'approve') FROM lowcode.tasks t WHERE t.assignee = 'a1';
CREATE TABLE outcomes (who text, record_id bigint, result text, sqlstate text, message text);
SQL
expect "approvals waiting for their last approver" "$RECORDS" "SELECT count(*) FROM lowcode.approvals WHERE status = 'pending' AND approved = 1"

keys="$(val "SELECT string_agg((1000 + id)::text, ' ' ORDER BY id) FROM lowcode.records")"
# shellcheck disable=SC2086
barrier_start 2 $keys
race_records approver "SET lowcode.actor = 'a2'" "lowcode.decide((SELECT t.id FROM lowcode.tasks t WHERE t.record_id = rec AND t.assignee = 'a2'), 'approve')"
race_records submitter "SET lowcode.actor = 'sub'" "lowcode.withdraw(rec)"
wait_sessions

bad="$(val "SELECT string_agg(DISTINCT format('%s: %s %s', who, sqlstate, message), '; ') FROM outcomes
             WHERE result = 'error' AND sqlstate <> '55000'")"
[ -z "$bad" ] || fail "unexpected errors (a deadlock?): $bad"
bad="$(val "
    SELECT string_agg(format('record %s: state %s, approval %s, %s events, decide %s, withdraw %s',
                             r.id, r.state, a.status, e.n, d.result, w.result), '; ' ORDER BY r.id)
      FROM lowcode.records r
      JOIN lowcode.approvals a ON a.record_id = r.id
      JOIN outcomes d ON d.record_id = r.id AND d.who = 'approver'
      JOIN outcomes w ON w.record_id = r.id AND w.who = 'submitter'
      CROSS JOIN LATERAL (SELECT count(*) n FROM lowcode.events e WHERE e.record_id = r.id) e
     WHERE NOT ((r.state = 'approved' AND a.status = 'approved' AND a.approved = 2 AND e.n = 1
                 AND d.result = 'approved' AND w.result = 'error' AND w.message LIKE '%no pending approval%')
             OR (r.state = 'draft' AND a.status = 'withdrawn' AND a.approved = 1 AND e.n = 0
                 AND d.result = 'error' AND d.message LIKE '%cancelled%' AND w.result = 'draft'))")"
[ -z "$bad" ] || fail "records where not exactly one side won: $bad"
expect "outcomes" "$((2 * RECORDS))" "SELECT count(*) FROM outcomes"
expect "approval tasks left open or claimed" 0 "SELECT count(*) FROM lowcode.tasks WHERE status IN ('open', 'claimed')"
echo "$RECORDS withdraw-vs-last-approval races, no deadlock: $(val "SELECT string_agg(status || '=' || n, ' ' ORDER BY status)
        FROM (SELECT status, count(*) n FROM lowcode.approvals GROUP BY 1) s")"
