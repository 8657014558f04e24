-- Tasks: pools, roles and assignees; claiming (first claim wins), completing with an
-- outcome, releasing, reassigning, deadlines met or missed, and every misuse.
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

-- Roles are cluster-wide: these are dropped at the end.
SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_wf_tester;
DROP ROLE IF EXISTS lc_wf_outsider;
DROP ROLE IF EXISTS lc_wf_qa;
RESET client_min_messages;
CREATE ROLE lc_wf_qa NOLOGIN;
CREATE ROLE lc_wf_tester NOLOGIN IN ROLE lc_wf_qa;
CREATE ROLE lc_wf_outsider NOLOGIN;

SELECT lowcode.create_app('svc', 'Service desk');
-- Both may work on the app's tasks; the role task below is still for lc_wf_qa's members only.
SELECT lowcode.grant('svc', 'lc_wf_tester', ARRAY['claim']);
SELECT lowcode.grant('svc', 'lc_wf_outsider', ARRAY['claim']);
SELECT lowcode.define_form('svc', 'job', '{"type": "object", "required": ["title"],
  "properties": {"title": {"type": "string"}, "fixed": {"type": "boolean"}}}');
SELECT lowcode.define_workflow('svc', 'job', '{
  "states": {"open": {"initial": true}, "escalated": {}, "done": {"final": true}},
  "rules": [
    {"name": "route", "on": "created", "then": [
       {"task": {"name": "fix", "pool": "fixers", "due": "1 hour"}},
       {"task": {"name": "test", "role": "lc_wf_qa"}},
       {"task": {"name": "call", "title": "Call the customer", "assignee": "carol"}}]},
    {"name": "fixed", "on": "task_completed:fix", "outcome": "fixed", "then": [{"set": {"fixed": true}}, {"transition": "done"}]},
    {"name": "failed", "on": "task_completed:fix", "outcome": "failed", "then": [{"transition": "escalated"}]},
    {"name": "any", "on": "task_completed:*", "then": [{"emit": {"topic": "svc.task_done"}}]}]}');

-- Each record gets a pool task (with a deadline), a role task and an assigned task.
SELECT lowcode.submit('svc', 'job', '{"title": "leak"}') AS j1 \gset
SELECT id, name, pool, role, assignee, title, status, claimed_by, due_at IS NOT NULL AS has_due
  FROM lowcode.tasks ORDER BY id;
SELECT name, event, task_id, status FROM lowcode.timers ORDER BY id;
SELECT min(id) AS fix1 FROM lowcode.tasks WHERE name = 'fix' \gset
SELECT min(id) AS test1 FROM lowcode.tasks WHERE name = 'test' \gset
SELECT min(id) AS call1 FROM lowcode.tasks WHERE name = 'call' \gset

-- First claim wins; the second claimer gets NULL; an empty or unknown pool gives NULL.
SELECT lowcode.claim_task('fixers', 'wang') AS first_claim;
SELECT lowcode.claim_task('fixers', 'zhao') AS second_claim;
SELECT lowcode.claim_task('nobody_works_here', 'zhao') AS empty_pool;
SELECT status, claimed_by FROM lowcode.tasks WHERE id = :fix1;
-- The worker defaults to lowcode.actor().
SET lowcode.actor = 'zhao';
SELECT lowcode.submit('svc', 'job', '{"title": "drip"}') AS j2 \gset
SELECT lowcode.claim_task('fixers') = (SELECT id FROM lowcode.tasks WHERE name = 'fix' AND record_id = :j2) AS zhao_claimed_j2;
SELECT claimed_by FROM lowcode.tasks WHERE name = 'fix' AND record_id = :j2;
RESET lowcode.actor;

-- Role tasks are claimed through the role's name by members only.
SET ROLE lc_wf_outsider;
SELECT lowcode.claim_task('lc_wf_qa') AS outsider_claim;
RESET ROLE;
SET ROLE lc_wf_tester;
SELECT lowcode.claim_task('lc_wf_qa') = :test1 AS tester_claimed;
RESET ROLE;
SELECT status, claimed_by FROM lowcode.tasks WHERE id = :test1;

-- Completing: only the claimer (the actor) may; the outcome picks the rule.
SET lowcode.actor = 'zhao';
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'fixed') $$, :fix1));
SET lowcode.actor = 'wang';
SELECT lowcode.complete_task(:fix1, 'fixed', '{"hours": 2}');
RESET lowcode.actor;
SELECT status, outcome, result, completed_by, met_deadline FROM lowcode.tasks WHERE id = :fix1;
SELECT state, data FROM lowcode.records WHERE id = :j1;
-- The record is done (a final state): its other open tasks were cancelled with it.
SELECT name, status FROM lowcode.tasks WHERE record_id = :j1 ORDER BY id;
-- task_completed:* fired too: one event per completed task.
SELECT topic, payload ->> 'rule' AS rule, payload ->> 'event' AS event FROM lowcode.events ORDER BY id;
-- The deadline timer of a completed task is cancelled.
SELECT status FROM lowcode.timers WHERE task_id = :fix1;
-- Completing twice, or a task nobody claimed.
SET lowcode.actor = 'wang';
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'fixed') $$, :fix1));
RESET lowcode.actor;
SELECT lowcode.submit('svc', 'job', '{"title": "flood"}') AS j3 \gset
SELECT id AS fix3 FROM lowcode.tasks WHERE name = 'fix' AND record_id = :j3 \gset
SELECT id AS call1 FROM lowcode.tasks WHERE name = 'call' AND record_id = :j3 \gset
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'fixed') $$, :fix3));

-- Releasing gives a pool task back: the next claim can take it.
SELECT lowcode.claim_task('fixers', 'li') = :fix3 AS li_claimed;
SET lowcode.actor = 'wang';
SELECT pg_temp.err(format($$ SELECT lowcode.release_task(%s) $$, :fix3));
SET lowcode.actor = 'li';
SELECT lowcode.release_task(:fix3);
SELECT status, claimed_by FROM lowcode.tasks WHERE id = :fix3;
SELECT pg_temp.err(format($$ SELECT lowcode.release_task(%s) $$, :fix3));
SELECT lowcode.claim_task('fixers', 'wang') = :fix3 AS wang_claimed;
-- An assigned task is not in a pool: it cannot be released.
SET lowcode.actor = 'carol';
SELECT pg_temp.err(format($$ SELECT lowcode.release_task(%s) $$, :call1));
RESET lowcode.actor;

-- Reassigning hands a task to someone else, who then completes it.
SELECT lowcode.reassign_task(:call1, 'dave');
SELECT status, assignee, claimed_by FROM lowcode.tasks WHERE id = :call1;
SET lowcode.actor = 'carol';
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'called') $$, :call1));
SET lowcode.actor = 'dave';
SELECT lowcode.complete_task(:call1, 'called');
RESET lowcode.actor;
SELECT pg_temp.err(format($$ SELECT lowcode.reassign_task(%s, 'erin') $$, :call1));
SELECT pg_temp.err(format($$ SELECT lowcode.reassign_task(%s, '') $$, :fix3));
SELECT pg_temp.err(format($$ SELECT lowcode.reassign_task(%s, NULL) $$, :fix3));

-- A missed deadline: met_deadline is false, and the other outcome's rule runs.
UPDATE lowcode.tasks SET due_at = now() - interval '1 minute' WHERE id = :fix3;
SET lowcode.actor = 'wang';
SELECT lowcode.complete_task(:fix3, 'failed', '{"reason": "no parts"}');
RESET lowcode.actor;
SELECT status, outcome, result, met_deadline FROM lowcode.tasks WHERE id = :fix3;
SELECT state, data FROM lowcode.records WHERE id = :j3;
-- A task without a deadline always meets it.
SET ROLE lc_wf_tester;
SET lowcode.actor = 'lc_wf_tester';
SELECT lowcode.claim_task('lc_wf_qa') AS test2 \gset
SELECT lowcode.complete_task(:test2, 'passed');
RESET lowcode.actor;
RESET ROLE;
SELECT name, outcome, met_deadline FROM lowcode.tasks WHERE id = :test2;

-- History of the first record: task actions with their details, in order.
SELECT action, from_state, to_state, detail - 'task' AS detail
  FROM lowcode.record_history(:j1);

-- Unknown tasks and NULL arguments.
SELECT pg_temp.err($$ SELECT lowcode.complete_task(999999, 'x') $$);
SELECT pg_temp.err($$ SELECT lowcode.release_task(999999) $$);
SELECT pg_temp.err($$ SELECT lowcode.reassign_task(999999, 'x') $$);
SELECT pg_temp.err($$ SELECT lowcode.complete_task(NULL, 'x') $$);
SELECT pg_temp.err($$ SELECT lowcode.release_task(NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.reassign_task(NULL, 'x') $$);
SELECT pg_temp.err($$ SELECT lowcode.claim_task(NULL) $$);

-- Clean up the cluster-wide roles.
REVOKE ALL ON ALL TABLES IN SCHEMA lowcode FROM lc_wf_tester, lc_wf_outsider;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA lowcode FROM lc_wf_tester, lc_wf_outsider;
REVOKE ALL ON SCHEMA lowcode FROM lc_wf_tester, lc_wf_outsider;
DROP ROLE lc_wf_tester;
DROP ROLE lc_wf_outsider;
DROP ROLE lc_wf_qa;
