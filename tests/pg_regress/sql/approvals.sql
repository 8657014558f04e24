-- Approvals: sequential, all (会签), any (或签) and ratio modes; decisions by holders only;
-- approved / rejected / withdrawn events; withdrawing by the submitter; the decisions table.
CREATE EXTENSION lowcode;
-- err(sql): run sql, show SQLSTATE, message, DETAIL and HINT of the error it raises.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;
-- task_of(record, approver): the open decision task an approver holds on a record.
CREATE FUNCTION pg_temp.task_of(record bigint, approver text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM lowcode.tasks WHERE record_id = record AND claimed_by = approver AND status = 'claimed'
$$;
-- decide_as(actor, record, decision): decide as that approver.
CREATE FUNCTION pg_temp.decide_as(who text, record bigint, decision text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lowcode.actor', who, true);
    RETURN lowcode.decide(pg_temp.task_of(record, who), decision, who || ' says ' || decision);
END $$;
-- pending(record): who holds an open decision task, in order.
CREATE FUNCTION pg_temp.pending(record bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(claimed_by, ', ' ORDER BY id), '(none)')
      FROM lowcode.tasks WHERE record_id = record AND kind = 'approval' AND status = 'claimed'
$$;

SELECT lowcode.create_app('fin', 'Finance');
SELECT lowcode.define_form('fin', 'expense', '{"type": "object", "required": ["amount", "mode"],
  "properties": {"amount": {"type": "number"}, "mode": {"enum": ["sequential", "all", "any", "ratio"]},
                 "outcome": {"type": "string"}}}');
SELECT lowcode.define_workflow('fin', 'expense', '{
  "states": {"draft": {"initial": true}, "review": {}, "paid": {"final": true}, "returned": {}},
  "transitions": [{"name": "submit", "from": ["draft", "returned"], "to": "review"}],
  "rules": [
    {"name": "ask_seq", "on": "entered:review", "when": {"properties": {"mode": {"const": "sequential"}}},
     "then": [{"approval": {"name": "chain", "mode": "sequential", "approvers": ["lead", "manager", "cfo"],
                            "on_approve": "paid", "on_reject": "returned"}}]},
    {"name": "ask_all", "on": "entered:review", "when": {"properties": {"mode": {"const": "all"}}},
     "then": [{"approval": {"name": "board", "mode": "all", "approvers": ["ann", "ben", "cai"],
                            "on_approve": "paid", "on_reject": "returned", "on_withdraw": "returned", "due": "2 days"}}]},
    {"name": "ask_any", "on": "entered:review", "when": {"properties": {"mode": {"const": "any"}}},
     "then": [{"approval": {"name": "duty", "mode": "any", "approvers": ["dan", "eve"],
                            "on_approve": "paid", "on_reject": "returned"}}]},
    {"name": "ask_ratio", "on": "entered:review", "when": {"properties": {"mode": {"const": "ratio"}}},
     "then": [{"approval": {"name": "panel", "mode": "ratio", "required": 2, "approvers": ["fay", "gus", "hal"],
                            "on_approve": "paid", "on_reject": "returned"}}]},
    {"name": "on_ok", "on": "approved:chain", "then": [{"set": {"outcome": "chain approved"}}, {"emit": {"topic": "fin.approved"}}]},
    {"name": "on_ok_board", "on": "approved:board", "then": [{"set": {"outcome": "board approved"}}]},
    {"name": "on_no", "on": "rejected:board", "then": [{"set": {"outcome": "board said no"}}, {"emit": {"topic": "fin.rejected"}}]},
    {"name": "on_no_panel", "on": "rejected:panel", "then": [{"set": {"outcome": "panel said no"}}]},
    {"name": "on_back", "on": "withdrawn:board", "then": [{"set": {"outcome": "withdrawn"}}]}]}');

-- sequential: one task at a time, in the order of approvers.
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 100, "mode": "sequential"}') AS seq \gset
SELECT lowcode.transition(:seq, 'submit');
RESET lowcode.actor;
SELECT name, mode, approvers, required, status, approved, rejected FROM lowcode.approvals WHERE record_id = :seq;
SELECT pg_temp.pending(:seq);
BEGIN;
SELECT pg_temp.decide_as('lead', :seq, 'approve');
COMMIT;
SELECT pg_temp.pending(:seq);
BEGIN;
SELECT pg_temp.decide_as('manager', :seq, 'approve');
COMMIT;
SELECT pg_temp.pending(:seq);
BEGIN;
SELECT pg_temp.decide_as('cfo', :seq, 'approve');
COMMIT;
SELECT pg_temp.pending(:seq);
-- approved: the record moved to on_approve and approved:chain ran.
SELECT state, data ->> 'outcome' AS outcome FROM lowcode.records WHERE id = :seq;
SELECT status, approved, rejected, decided_at IS NOT NULL AS decided FROM lowcode.approvals WHERE record_id = :seq;
SELECT topic FROM lowcode.events ORDER BY id;
SELECT t.name, d.approver, d.decision, d.comment
  FROM lowcode.decisions d JOIN lowcode.tasks t ON t.id = d.task_id
 WHERE t.record_id = :seq ORDER BY d.id;
-- sequential, rejected by the second approver: back to on_reject, the third never asked.
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 200, "mode": "sequential"}') AS seq2 \gset
SELECT lowcode.transition(:seq2, 'submit');
BEGIN;
SELECT pg_temp.decide_as('lead', :seq2, 'approve');
SELECT pg_temp.decide_as('manager', :seq2, 'reject');
COMMIT;
SELECT state FROM lowcode.records WHERE id = :seq2;
SELECT claimed_by, status, outcome FROM lowcode.tasks WHERE record_id = :seq2 ORDER BY id;

-- all (会签): every approver must approve; one reject sends the record back.
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 300, "mode": "all"}') AS all1 \gset
SELECT lowcode.transition(:all1, 'submit');
SELECT pg_temp.pending(:all1);
BEGIN;
SELECT pg_temp.decide_as('cai', :all1, 'approve');
SELECT pg_temp.decide_as('ann', :all1, 'approve');
COMMIT;
SELECT state, (SELECT status FROM lowcode.approvals WHERE record_id = :all1) AS approval FROM lowcode.records WHERE id = :all1;
BEGIN;
SELECT pg_temp.decide_as('ben', :all1, 'approve');
COMMIT;
SELECT state, data ->> 'outcome' AS outcome FROM lowcode.records WHERE id = :all1;
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 301, "mode": "all"}') AS all2 \gset
SELECT lowcode.transition(:all2, 'submit');
BEGIN;
SELECT pg_temp.decide_as('ann', :all2, 'approve');
SELECT pg_temp.decide_as('ben', :all2, 'reject');
COMMIT;
-- rejected:board ran; cai's task was cancelled and deciding it now fails.
SELECT state, data ->> 'outcome' AS outcome FROM lowcode.records WHERE id = :all2;
SELECT claimed_by, status, outcome FROM lowcode.tasks WHERE record_id = :all2 ORDER BY id;
-- Every approver's task had a deadline; the verdict cancelled the ones still pending.
SELECT t.claimed_by, x.event, x.status FROM lowcode.timers x JOIN lowcode.tasks t ON t.id = x.task_id
 WHERE x.record_id = :all2 ORDER BY x.id;
SELECT topic FROM lowcode.events ORDER BY id;
SELECT id AS cai_task FROM lowcode.tasks WHERE record_id = :all2 AND claimed_by = 'cai' \gset
SET lowcode.actor = 'cai';
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, 'approve') $$, :cai_task));
-- Resubmitting starts a new round with fresh tasks.
SET lowcode.actor = 'sam';
SELECT lowcode.transition(:all2, 'submit');
SELECT pg_temp.pending(:all2);
SELECT name, status, approved, rejected FROM lowcode.approvals WHERE record_id = :all2 ORDER BY id;

-- any (或签): the first decision wins; the other tasks are cancelled.
SELECT lowcode.submit('fin', 'expense', '{"amount": 400, "mode": "any"}') AS any1 \gset
SELECT lowcode.transition(:any1, 'submit');
SELECT pg_temp.pending(:any1);
SELECT id AS eve_task FROM lowcode.tasks WHERE record_id = :any1 AND claimed_by = 'eve' \gset
BEGIN;
SELECT pg_temp.decide_as('dan', :any1, 'approve');
COMMIT;
SELECT state FROM lowcode.records WHERE id = :any1;
SELECT claimed_by, status, outcome FROM lowcode.tasks WHERE record_id = :any1 ORDER BY id;
SET lowcode.actor = 'eve';
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, 'reject') $$, :eve_task));
-- any, first decision a reject: rejected.
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 401, "mode": "any"}') AS any2 \gset
SELECT lowcode.transition(:any2, 'submit');
BEGIN;
SELECT pg_temp.decide_as('eve', :any2, 'reject');
COMMIT;
SELECT state, (SELECT status FROM lowcode.approvals WHERE record_id = :any2) AS approval FROM lowcode.records WHERE id = :any2;

-- ratio: 2 of 3 approve → approved (the third task is cancelled).
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 500, "mode": "ratio"}') AS r1 \gset
SELECT lowcode.transition(:r1, 'submit');
BEGIN;
SELECT pg_temp.decide_as('fay', :r1, 'approve');
SELECT pg_temp.decide_as('gus', :r1, 'reject');
SELECT pg_temp.decide_as('hal', :r1, 'approve');
COMMIT;
SELECT state FROM lowcode.records WHERE id = :r1;
SELECT status, approved, rejected FROM lowcode.approvals WHERE record_id = :r1;
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 501, "mode": "ratio"}') AS r2 \gset
SELECT lowcode.transition(:r2, 'submit');
BEGIN;
SELECT pg_temp.decide_as('fay', :r2, 'approve');
SELECT pg_temp.decide_as('gus', :r2, 'approve');
COMMIT;
SELECT state, (SELECT status FROM lowcode.approvals WHERE record_id = :r2) AS approval FROM lowcode.records WHERE id = :r2;
SELECT claimed_by, status FROM lowcode.tasks WHERE record_id = :r2 ORDER BY id;
-- ratio: 2 rejects of 3 with required 2 → rejected (2 approvals are no longer possible).
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 502, "mode": "ratio"}') AS r3 \gset
SELECT lowcode.transition(:r3, 'submit');
BEGIN;
SELECT pg_temp.decide_as('fay', :r3, 'reject');
COMMIT;
SELECT status, approved, rejected FROM lowcode.approvals WHERE record_id = :r3;
BEGIN;
SELECT pg_temp.decide_as('hal', :r3, 'reject');
COMMIT;
SELECT state, data ->> 'outcome' AS outcome FROM lowcode.records WHERE id = :r3;
SELECT claimed_by, status, outcome FROM lowcode.tasks WHERE record_id = :r3 ORDER BY id;

-- Misuse: deciding someone else's task, a bad decision, a plain task, unknown task, NULLs.
SET lowcode.actor = 'sam';
SELECT lowcode.submit('fin', 'expense', '{"amount": 600, "mode": "all"}') AS w1 \gset
SELECT lowcode.transition(:w1, 'submit');
SELECT pg_temp.task_of(:w1, 'ann') AS ann_task \gset
SET lowcode.actor = 'ben';
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, 'approve') $$, :ann_task));
SET lowcode.actor = 'ann';
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, 'maybe') $$, :ann_task));
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, NULL) $$, :ann_task));
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'approve') $$, :ann_task));
SELECT pg_temp.err($$ SELECT lowcode.decide(999999, 'approve') $$);
SELECT pg_temp.err($$ SELECT lowcode.decide(NULL, 'approve') $$);
-- None of that left a decision behind.
SELECT count(*) AS decisions FROM lowcode.decisions d JOIN lowcode.tasks t ON t.id = d.task_id WHERE t.record_id = :w1;

-- withdraw: by someone else → 42501; by the submitter while pending → on_withdraw, tasks cancelled.
SET lowcode.actor = 'ann';
SELECT pg_temp.err(format($$ SELECT lowcode.withdraw(%s) $$, :w1));
SELECT lowcode.decide(:ann_task, 'approve');
SET lowcode.actor = 'sam';
SELECT lowcode.withdraw(:w1);
SELECT state, data ->> 'outcome' AS outcome FROM lowcode.records WHERE id = :w1;
SELECT status FROM lowcode.approvals WHERE record_id = :w1;
SELECT claimed_by, status, outcome FROM lowcode.tasks WHERE record_id = :w1 ORDER BY id;
-- Their deadlines are cancelled too.
SELECT t.claimed_by, x.event, x.status FROM lowcode.timers x JOIN lowcode.tasks t ON t.id = x.task_id
 WHERE x.record_id = :w1 ORDER BY x.id;
-- Nothing pending any more.
SELECT pg_temp.err(format($$ SELECT lowcode.withdraw(%s) $$, :w1));
SELECT pg_temp.err($$ SELECT lowcode.withdraw(999999) $$);
-- Without on_withdraw the record goes back to the initial state.
SELECT lowcode.submit('fin', 'expense', '{"amount": 700, "mode": "any"}') AS w2 \gset
SELECT lowcode.transition(:w2, 'submit');
SELECT lowcode.withdraw(:w2);
SELECT state FROM lowcode.records WHERE id = :w2;
RESET lowcode.actor;

-- History of a withdrawn record: request, decision, withdrawal, with their causes.
SELECT action, actor, from_state, to_state, detail - 'approval' AS detail FROM lowcode.record_history(:w1);

-- Every decision, in order.
SELECT r.data ->> 'amount' AS amount, t.name, d.approver, d.decision
  FROM lowcode.decisions d JOIN lowcode.tasks t ON t.id = d.task_id JOIN lowcode.records r ON r.id = t.record_id
 ORDER BY d.id;

-- Approvals, decisions and their deadline timers name their record's app, as every runtime
-- row does (what a scaled-out install distributes the runtime by: docs/scale-out.md).
SELECT count(*) > 0 AS approvals, count(*) FILTER (WHERE a.app IS DISTINCT FROM r.app) AS other_app
  FROM lowcode.approvals a JOIN lowcode.records r ON r.id = a.record_id;
SELECT count(*) > 0 AS decisions, count(*) FILTER (WHERE d.app IS DISTINCT FROM a.app) AS other_app
  FROM lowcode.decisions d JOIN lowcode.approvals a ON a.id = d.approval_id;
SELECT count(*) > 0 AS deadlines, count(*) FILTER (WHERE x.app IS DISTINCT FROM r.app) AS other_app
  FROM lowcode.timers x JOIN lowcode.records r ON r.id = x.record_id;
