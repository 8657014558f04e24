-- Cascades: rules that trigger each other are bounded by lowcode.max_cascade (SQLSTATE
-- 54000, the rules of the loop in DETAIL); a failing cascade leaves no trace at all.
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
-- counts(): how many rows every workflow table holds.
CREATE FUNCTION pg_temp.counts() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'records', (SELECT count(*) FROM lowcode.records),
        'history', (SELECT count(*) FROM lowcode.history),
        'tasks', (SELECT count(*) FROM lowcode.tasks),
        'approvals', (SELECT count(*) FROM lowcode.approvals),
        'timers', (SELECT count(*) FROM lowcode.timers),
        'events', (SELECT count(*) FROM lowcode.events))
$$;
-- A counter the call action bumps: merged into data, so it changes the record every time.
CREATE FUNCTION public.wf_bump(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('n', coalesce((r -> 'data' ->> 'n')::int, 0) + 1)
$$;
CREATE FUNCTION public.wf_fail(r jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lab robot offline while handling record %', r ->> 'id'
        USING ERRCODE = 'external_routine_exception', HINT = 'restart the robot';
END $$;

SELECT lowcode.create_app('lab', 'Laboratory');
SELECT lowcode.define_form('lab', 'sample', '{"type": "object", "properties": {"n": {"type": "integer"}, "stop_at": {"type": "integer"},
  "step": {"type": "integer"}, "mode": {"type": "string"}, "kicked": {"type": "boolean"}}}');
SELECT lowcode.define_workflow('lab', 'sample', '{
  "states": {"a": {"initial": true}, "b": {}, "done": {"final": true}},
  "transitions": [{"name": "go", "from": "a", "to": "b"}, {"name": "finish", "from": ["a", "b"], "to": "done"}],
  "rules": [
    {"name": "kick", "on": "created", "when": {"anyOf": [{"required": ["n"]}, {"required": ["step"]}]}, "then": [{"set": {"kicked": true}}]},
    {"name": "setup", "on": "created", "then": [
       {"task": {"name": "check", "pool": "lab", "due": "1 hour"}},
       {"timer": {"name": "expire", "after": "1 day"}},
       {"approval": {"name": "sign", "mode": "any", "approvers": ["boss"], "on_approve": "done", "on_reject": "a"}},
       {"emit": {"topic": "lab.created"}}]},
    {"name": "count", "on": "updated", "when": {"required": ["n"], "not": {"required": ["stop_at"]}},
     "then": [{"emit": {"topic": "lab.counted"}}, {"call": "public.wf_bump"}]},
    {"name": "count_to", "on": "updated", "when": {"required": ["n", "stop_at"]},
     "then": [{"call": "public.wf_bump"}]},
    {"name": "ping", "on": "entered:b", "when": {"required": ["mode"], "properties": {"mode": {"const": "bounce"}}}, "then": [{"transition": "a"}]},
    {"name": "pong", "on": "entered:a", "when": {"required": ["mode"], "properties": {"mode": {"const": "bounce"}}}, "then": [{"transition": "b"}]},
    {"name": "step1", "on": "updated", "when": {"properties": {"step": {"const": 1}}, "required": ["step"]},
     "then": [{"emit": {"topic": "lab.step1"}}, {"task": {"name": "check", "pool": "lab"}}, {"set": {"step": 2}}]},
    {"name": "step2", "on": "updated", "when": {"properties": {"step": {"const": 2}}, "required": ["step"]},
     "then": [{"timer": {"name": "expire", "after": "2 days"}}, {"set": {"step": 3}}]},
    {"name": "step3", "on": "updated", "when": {"properties": {"step": {"const": 3}}, "required": ["step"]},
     "then": [{"call": "public.wf_fail"}]}]}');

-- A record to change later, and the counts before anything fails.
SELECT lowcode.submit('lab', 'sample', '{}') AS s1 \gset
SELECT pg_temp.counts() AS before \gset
SELECT :'before';

-- A rule that re-triggers itself (updated → call wf_bump → updated ...) hits the bound.
SELECT pg_temp.err($$ SELECT lowcode.submit('lab', 'sample', '{"n": 0}') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"n": 0}') $$, :s1));
-- lowcode.max_cascade changes the bound.
SET lowcode.max_cascade = 3;
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"n": 0}') $$, :s1));
-- A chain that ends below the bound is fine: count_to stops when n reaches stop_at.
SELECT lowcode.define_workflow('lab', 'sample', (SELECT jsonb_set(definition, '{rules,3,when}',
    '{"required": ["n", "stop_at"], "not": {"properties": {"n": {"const": 3}}}}')
  FROM lowcode.workflow_versions WHERE app = 'lab' AND form = 'sample' AND version = 1));
SELECT lowcode.update_record(:s1, '{"n": 0, "stop_at": 3}');
SELECT data FROM lowcode.records WHERE id = :s1;
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"n": -1, "stop_at": 3}') $$, :s1));
RESET lowcode.max_cascade;
SELECT lowcode.update_record(:s1, '{"n": -1, "stop_at": 3}');
SELECT data FROM lowcode.records WHERE id = :s1;
SELECT pg_temp.counts() AS before \gset

-- Two rules moving the record back and forth (entered:b → a, entered:a → b).
SET lowcode.max_cascade = 4;
SELECT pg_temp.err($$ SELECT lowcode.submit('lab', 'sample', '{"mode": "bounce"}') $$);
SELECT lowcode.submit('lab', 'sample', '{"mode": "calm"}') AS s2 \gset
SELECT pg_temp.err(format($$ UPDATE lowcode.records SET data = '{"mode": "bounce"}' WHERE id = %s $$, :s2));
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'go') $$, :s2));
RESET lowcode.max_cascade;
SELECT state, data FROM lowcode.records WHERE id = :s2;
SELECT pg_temp.counts() AS before \gset

-- After the error nothing is left: no record, task, approval, timer, event or history row.
SELECT pg_temp.err($$ SELECT lowcode.submit('lab', 'sample', '{"n": 0}') $$);
SELECT pg_temp.counts() = :'before'::jsonb AS nothing_left, pg_temp.counts();

-- A rule that raises in the middle of a cascade (step1 → step2 → step3 calls wf_fail):
-- its error, with its HINT, and no trace of step1 or step2 either.
SELECT pg_temp.err($$ SELECT lowcode.submit('lab', 'sample', '{"step": 1}') $$);
SELECT pg_temp.counts() = :'before'::jsonb AS nothing_left;
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"step": 1}') $$, :s2));
SELECT pg_temp.counts() = :'before'::jsonb AS nothing_left;
SELECT state, data, revision FROM lowcode.records WHERE id = :s2;
-- The same inside a transaction block: the failed statement takes the whole transaction.
-- (CONTEXT is hidden: it is the whole call stack of the cascade.)
\set SHOW_CONTEXT never
BEGIN;
SELECT lowcode.update_record(:s2, '{"mode": "fine"}');
SELECT lowcode.update_record(:s2, '{"step": 1}');
COMMIT;
\set SHOW_CONTEXT errors
SELECT pg_temp.counts() = :'before'::jsonb AS nothing_left;
SELECT data FROM lowcode.records WHERE id = :s2;
-- The rule chain does not leak into the next statement: a normal update works.
SELECT lowcode.update_record(:s2, '{"mode": "fine"}');
SELECT current_setting('lowcode.rule_chain', true) AS rule_chain_after;
