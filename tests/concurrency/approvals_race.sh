#!/usr/bin/env bash
# approvals_race — 8 approvers deciding the same approval at the same moment (a barrier
# per record lets all 8 go at once), on RECORDS records per mode.
#   mode all: everyone approves → verdict approved exactly once (one decide returns
#             'approved', seven 'pending'), approved = 8, one approved:board rule firing
#             (exactly one event), record in on_approve.
#   mode any: approvers 1-4 approve, 5-8 reject → exactly one decision counts, the seven
#             others get an error saying the approval is decided / their task cancelled
#             (SQLSTATE 55000 — not a deadlock), and the approval, the record's state, its
#             tasks and its single event all agree with that one verdict.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

RECORDS=10
APPROVERS=8

workflow() { # MODE
    cat <<JSON
{"states": {"draft": {"initial": true}, "review": {}, "approved": {"final": true}, "rejected": {"final": true}},
 "rules": [{"name": "ask", "on": "created", "then": [{"transition": "review"},
             {"approval": {"name": "board", "mode": "$1", "approvers": ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"],
                           "on_approve": "approved", "on_reject": "rejected"}}]},
           {"name": "yes", "on": "approved:board", "then": [{"emit": {"topic": "board.approved"}}]},
           {"name": "no", "on": "rejected:board", "then": [{"emit": {"topic": "board.rejected"}}]}]}
JSON
}

sql >/dev/null <<SQL
SELECT lowcode.create_app('appr');
SELECT lowcode.define_form('appr', 'allf', '{"type": "object"}');
SELECT lowcode.define_form('appr', 'anyf', '{"type": "object"}');
SELECT lowcode.define_workflow('appr', 'allf', '$(workflow all)');
SELECT lowcode.define_workflow('appr', 'anyf', '$(workflow any)');
SELECT lowcode.submit('appr', 'allf', '{}') FROM generate_series(1, $RECORDS);
SELECT lowcode.submit('appr', 'anyf', '{}') FROM generate_series(1, $RECORDS);
-- What each decide call returned, or the error it raised (kept even when it failed).
CREATE TABLE outcomes (form text, record_id bigint, approver text, decision text,
                       result text, sqlstate text, message text);
SQL
expect "pending approvals" "$((2 * RECORDS))" "SELECT count(*) FROM lowcode.approvals WHERE status = 'pending'"
expect "approval tasks held by their approvers" "$((2 * RECORDS * APPROVERS))" "
    SELECT count(*) FROM lowcode.tasks WHERE kind = 'approval' AND status = 'claimed' AND claimed_by = assignee"

# race FORM — every approver decides every record of FORM, 8 at a time per record.
race() {
    local form="$1" i decision keys
    keys="$(val "SELECT string_agg((1000 + id)::text, ' ' ORDER BY id) FROM lowcode.records WHERE form = '$form'")"
    # shellcheck disable=SC2086
    barrier_start "$APPROVERS" $keys
    for i in $(seq 1 "$APPROVERS"); do
        decision=approve
        [ "$form" = anyf ] && [ "$i" -gt $((APPROVERS / 2)) ] && decision=reject
        session "${form}_a$i" -c "SET lowcode.actor = 'a$i'" -c "
            DO \$\$
            DECLARE rec bigint; task bigint; verdict text; st text; msg text;
            BEGIN
                FOR rec IN SELECT id FROM lowcode.records WHERE form = '$form' ORDER BY id LOOP
                    SELECT t.id INTO task FROM lowcode.tasks t
                     WHERE t.record_id = rec AND t.kind = 'approval' AND t.assignee = 'a$i';
                    PERFORM pg_advisory_lock_shared(1000 + rec);
                    PERFORM pg_advisory_unlock_shared(1000 + rec);
                    BEGIN
                        verdict := lowcode.decide(task, '$decision');
                        INSERT INTO outcomes VALUES ('$form', rec, 'a$i', '$decision', verdict, NULL, NULL);
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                        INSERT INTO outcomes VALUES ('$form', rec, 'a$i', '$decision', 'error', st, msg);
                    END;
                    COMMIT;
                END LOOP;
            END \$\$"
    done
    wait_sessions
}

# ------------------------------------------------------------------ mode all
t0=$(now_ms)
race allf
took_all=$(($(now_ms) - t0))
expect "decide calls on allf" "$((RECORDS * APPROVERS))" "SELECT count(*) FROM outcomes WHERE form = 'allf'"
errors="$(val "SELECT string_agg(format('a%s on record %s: %s %s', approver, record_id, sqlstate, message), '; ')
                 FROM outcomes WHERE form = 'allf' AND result = 'error'")"
[ -z "$errors" ] || fail "mode all: an approver's decision failed: $errors"
expect "mode all: records whose decide calls did not return 'approved' once and 'pending' 7 times" 0 "
    SELECT count(*) FROM (SELECT record_id FROM outcomes WHERE form = 'allf' GROUP BY record_id
                          HAVING count(*) FILTER (WHERE result = 'approved') <> 1
                              OR count(*) FILTER (WHERE result = 'pending') <> $((APPROVERS - 1))) x"
expect "mode all: approvals not approved with approved = 8, rejected = 0" 0 "
    SELECT count(*) FROM lowcode.approvals a JOIN lowcode.records r ON r.id = a.record_id
     WHERE r.form = 'allf' AND NOT (a.status = 'approved' AND a.approved = $APPROVERS AND a.rejected = 0
                                    AND a.decided_at IS NOT NULL)"
expect "mode all: approvals without exactly 8 decisions" 0 "
    SELECT count(*) FROM lowcode.approvals a JOIN lowcode.records r ON r.id = a.record_id
     WHERE r.form = 'allf' AND (SELECT count(*) FROM lowcode.decisions d WHERE d.approval_id = a.id) <> $APPROVERS"
expect "mode all: records not in state approved" 0 "SELECT count(*) FROM lowcode.records WHERE form = 'allf' AND state <> 'approved'"
expect "mode all: records without exactly one board.approved event and no other" 0 "
    SELECT count(*) FROM lowcode.records r WHERE r.form = 'allf'
       AND ((SELECT count(*) FROM lowcode.events e WHERE e.record_id = r.id AND e.topic = 'board.approved') <> 1
         OR EXISTS (SELECT FROM lowcode.events e WHERE e.record_id = r.id AND e.topic <> 'board.approved'))"
expect "mode all: records whose history shows the verdict other than once" 0 "
    SELECT count(*) FROM lowcode.records r WHERE r.form = 'allf'
       AND (SELECT count(*) FROM lowcode.history h WHERE h.record_id = r.id AND h.action = 'approval_decision'
                                                      AND h.detail ->> 'verdict' = 'approved') <> 1"
expect "mode all: approval tasks not completed" 0 "
    SELECT count(*) FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
     WHERE r.form = 'allf' AND t.status <> 'completed'"
echo "mode all: $RECORDS approvals x $APPROVERS simultaneous approvers: each approved exactly once, one event each (${took_all} ms)"

# ------------------------------------------------------------------ mode any
t0=$(now_ms)
race anyf
took_any=$(($(now_ms) - t0))
expect "decide calls on anyf" "$((RECORDS * APPROVERS))" "SELECT count(*) FROM outcomes WHERE form = 'anyf'"
bad="$(val "SELECT string_agg(format('record %s: %s successful decisions', record_id, n), '; ') FROM (
              SELECT record_id, count(*) FILTER (WHERE result <> 'error') n FROM outcomes
               WHERE form = 'anyf' GROUP BY record_id) x WHERE n <> 1")"
[ -z "$bad" ] || fail "mode any: not exactly one decision per approval: $bad"
bad="$(val "SELECT string_agg(DISTINCT format('%s %s', sqlstate, message), '; ') FROM outcomes
             WHERE form = 'anyf' AND result = 'error' AND sqlstate <> '55000'")"
[ -z "$bad" ] || fail "mode any: the losers should get 55000 (already decided / task cancelled), got: $bad"
bad="$(val "SELECT string_agg(format('a%s on record %s: %s', approver, record_id, result), '; ') FROM outcomes
             WHERE form = 'anyf' AND result <> 'error' AND result <> CASE decision WHEN 'approve' THEN 'approved' ELSE 'rejected' END")"
[ -z "$bad" ] || fail "mode any: the one decision did not decide the approval: $bad"
# The approval, the decisions table, the record, its tasks and its events agree with the winner.
bad="$(val "
    WITH w AS (SELECT record_id, approver, result FROM outcomes WHERE form = 'anyf' AND result <> 'error')
    SELECT string_agg(format('record %s', w.record_id), ', ') FROM w
      JOIN lowcode.approvals a ON a.record_id = w.record_id
      JOIN lowcode.records r ON r.id = w.record_id
     WHERE a.status <> w.result
        OR a.approved + a.rejected <> 1
        OR a.approved <> (w.result = 'approved')::int
        OR r.state <> w.result
        OR (SELECT count(*) FROM lowcode.decisions d WHERE d.approval_id = a.id) <> 1
        OR NOT EXISTS (SELECT FROM lowcode.decisions d WHERE d.approval_id = a.id AND d.approver = w.approver)
        OR (SELECT count(*) FROM lowcode.tasks t WHERE t.approval_id = a.id AND t.status = 'completed') <> 1
        OR (SELECT count(*) FROM lowcode.tasks t WHERE t.approval_id = a.id AND t.status = 'cancelled') <> $((APPROVERS - 1))
        OR (SELECT count(*) FROM lowcode.events e WHERE e.record_id = r.id) <> 1
        OR NOT EXISTS (SELECT FROM lowcode.events e WHERE e.record_id = r.id AND e.topic = 'board.' || w.result)")"
if [ -n "$bad" ]; then
    show "SELECT a.record_id, a.status, a.approved, a.rejected, r.state,
                 (SELECT string_agg(e.topic, ',') FROM lowcode.events e WHERE e.record_id = r.id) events,
                 (SELECT string_agg(t.status, ',') FROM lowcode.tasks t WHERE t.approval_id = a.id) tasks
            FROM lowcode.approvals a JOIN lowcode.records r ON r.id = a.record_id WHERE r.form = 'anyf' ORDER BY 1"
    fail "mode any: state inconsistent with the verdict for $bad"
fi
echo "mode any: $RECORDS approvals x $APPROVERS simultaneous deciders: one verdict each" \
    "($(val "SELECT string_agg(result || '=' || n, ' ' ORDER BY result) FROM (SELECT result, count(*) n FROM outcomes
              WHERE form = 'anyf' AND result <> 'error' GROUP BY result) x")), the others refused with 55000 (${took_any} ms)"
