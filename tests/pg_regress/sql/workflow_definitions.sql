-- Workflow definitions: versions, every definition error with the path of the problem,
-- and the Mermaid diagram.
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
-- wf_err(definition): the error define_workflow raises for hr.leave with that definition.
CREATE FUNCTION pg_temp.wf_err(definition text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.err(format('SELECT lowcode.define_workflow(%L, %L, %L)', 'hr', 'leave', definition))
$$;

SELECT lowcode.create_app('hr', 'Human resources');
SELECT lowcode.define_form('hr', 'leave', '{"type": "object", "required": ["days"],
  "properties": {"days": {"type": "integer", "minimum": 1}, "reason": {"type": "string"}}}');
SELECT lowcode.define_form('hr', 'plain', '{"type": "object"}');

-- Version 1; the identical definition again (key order does not matter) is still version 1.
SELECT lowcode.define_workflow('hr', 'leave', '{
  "states": {"draft": {"initial": true}, "submitted": {}, "approved": {"final": true}},
  "transitions": [{"name": "submit", "from": "draft", "to": "submitted"},
                  {"name": "approve", "from": "submitted", "to": "approved"}]}');
SELECT lowcode.define_workflow('hr', 'leave', '{
  "transitions": [{"to": "submitted", "from": "draft", "name": "submit"},
                  {"name": "approve", "to": "approved", "from": "submitted"}],
  "states": {"approved": {"final": true}, "submitted": {}, "draft": {"initial": true}}}');
-- A changed definition is version 2; version 1 is kept.
SELECT lowcode.define_workflow('hr', 'leave', '{
  "states": {"draft": {"initial": true}, "submitted": {}, "approved": {"final": true}, "rejected": {"final": true}},
  "transitions": [{"name": "submit", "from": "draft", "to": "submitted"},
                  {"name": "approve", "from": "submitted", "to": "approved"},
                  {"name": "reject", "from": "submitted", "to": "rejected"}]}');
SELECT app, form, version, initial_state, final_states FROM lowcode.workflow_versions ORDER BY version;
SELECT w.version AS current_version
  FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
 WHERE f.app = 'hr' AND f.name = 'leave';
SELECT w.version, t.name, t.from_states, t.to_state
  FROM lowcode.transitions t JOIN lowcode.workflow_versions w ON w.id = t.workflow_version_id
 ORDER BY w.version, t.name;
-- Going back to the version 1 definition publishes version 3 (versions only grow).
SELECT lowcode.define_workflow('hr', 'leave', '{
  "states": {"draft": {"initial": true}, "submitted": {}, "approved": {"final": true}},
  "transitions": [{"name": "submit", "from": "draft", "to": "submitted"},
                  {"name": "approve", "from": "submitted", "to": "approved"}]}');

-- Unknown app or form, bad names, NULL.
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('nowhere', 'leave', '{"states": {"a": {"initial": true}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('hr', 'holiday', '{"states": {"a": {"initial": true}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('hr', 'Leave', '{"states": {"a": {"initial": true}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('hr', 'leave', NULL) $$);

-- Shape errors (against the definition schema), each with its path.
SELECT pg_temp.wf_err('[]');
SELECT pg_temp.wf_err('"draft"');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "actions": []}');
SELECT pg_temp.wf_err('{"transitions": []}');
SELECT pg_temp.wf_err('{"states": {}}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true, "colour": "red"}}}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "transitions": [{"name": "go", "from": "a"}]}');

-- States: exactly one initial state; names like app and form names.
SELECT pg_temp.wf_err('{"states": {"a": {}, "b": {}}}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {"initial": true}}}');
SELECT pg_temp.wf_err('{"states": {"Draft": {"initial": true}}}');
SELECT pg_temp.wf_err('{"states": {"in review": {"initial": true}}}');

-- Transitions: known states, nothing out of a final state, unique names, good names.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "transitions": [{"name": "go", "from": "a", "to": "nowhere"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}}, "transitions": [{"name": "go", "from": ["a", "nowhere"], "to": "b"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {"final": true}},
  "transitions": [{"name": "go", "from": "a", "to": "b"}, {"name": "back", "from": "b", "to": "a"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}},
  "transitions": [{"name": "go", "from": "a", "to": "b"}, {"name": "go", "from": "b", "to": "a"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}}, "transitions": [{"name": "Go Now", "from": "a", "to": "b"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}}, "transitions": [{"name": "go", "from": "a", "to": "b", "roles": [""]}]}');

-- Every state must be reachable from the initial one (by transitions or rule actions).
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}, "limbo": {}}, "transitions": [{"name": "go", "from": "a", "to": "b"}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}, "c": {}},
  "transitions": [{"name": "go", "from": "a", "to": "b"}, {"name": "side", "from": "c", "to": "b"}]}');

-- Rules: unique names, known actions, one kind per action.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}},
  "rules": [{"name": "r", "on": "created", "then": [{"set": {"x": 1}}]}, {"name": "r", "on": "updated", "then": [{"set": {"x": 2}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"explode": {}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"set": {"x": 1}, "notify": {"channel": "c"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": []}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"transition": "nowhere"}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"call": " "}]}]}');

-- Tasks: exactly one of assignee, role, pool; due is an interval.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "assignee": "ann"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "due": "soon"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "due": "-5 minutes"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "due": "5"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "due": "1 fortnight"}}]}]}');

-- Timers: exactly one of after or at_field; after is an interval.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"timer": {"name": "t"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"timer": {"name": "t", "after": "1 hour", "at_field": "due"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "then": [{"timer": {"name": "t", "after": "tomorrow"}}]}]}');

-- Approvals: ratio needs required, at most the number of approvers; required only for ratio.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "ratio", "approvers": ["x", "y"], "on_approve": "ok", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "ratio", "required": 3, "approvers": ["x", "y"], "on_approve": "ok", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "all", "required": 1, "approvers": ["x", "y"], "on_approve": "ok", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "majority", "approvers": ["x", "y"], "on_approve": "ok", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "any", "approvers": [], "on_approve": "ok", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "any", "approvers": ["x"], "on_approve": "done", "on_reject": "a"}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "ok": {"final": true}}, "rules": [{"name": "r", "on": "created",
  "then": [{"approval": {"name": "ap", "mode": "any", "approvers": ["x"], "on_approve": "ok", "on_reject": "a", "due": "2 dayz"}}]}]}');

-- Events: known kinds, with the :name they need, naming something that exists.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "exploded", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created:a", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "entered", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "task_completed", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "left:nowhere", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "task_completed:fix", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "deadline_passed:fix", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "timer:remind", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "approved:boss", "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "withdrawn:boss", "then": [{"set": {"x": 1}}]}]}');
-- A task is not an approval: approved:<task> is refused.
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "mk", "on": "created", "then": [{"task": {"name": "fix", "pool": "p"}}]},
  {"name": "r", "on": "approved:fix", "then": [{"set": {"x": 1}}]}]}');

-- when: must be a valid JSON Schema (rules and transitions).
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "when": {"type": "nonsense"}, "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "when": {"properties": {"days": {"minimum": "two"}}}, "then": [{"set": {"x": 1}}]}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}, "b": {}}, "transitions": [{"name": "go", "from": "a", "to": "b", "when": {"required": "days"}}]}');
SELECT pg_temp.wf_err('{"states": {"a": {"initial": true}}, "rules": [{"name": "r", "on": "created", "when": "yes", "then": [{"set": {"x": 1}}]}]}');

-- Nothing half-written: hr.leave is still at version 3, and no other version exists.
SELECT count(*) AS workflow_versions, max(version) AS latest FROM lowcode.workflow_versions;

-- A good definition using every action and event kind is accepted.
-- A call names a function that exists (and that the definer may execute).
CREATE FUNCTION public.nudge(r jsonb) RETURNS void LANGUAGE sql AS '';
SELECT lowcode.define_workflow('hr', 'leave', '{
  "states": {"draft": {"initial": true}, "review": {}, "approved": {"final": true}, "rejected": {"final": true}},
  "transitions": [{"name": "submit", "from": "draft", "to": "review", "roles": ["staff"], "when": {"required": ["days"]}},
                  {"name": "cancel", "from": ["draft", "review"], "to": "rejected"}],
  "rules": [
    {"name": "ask", "on": "entered:review", "then": [
       {"approval": {"name": "boss", "mode": "ratio", "required": 2, "approvers": ["x", "y", "z"],
                     "on_approve": "approved", "on_reject": "draft", "on_withdraw": "draft", "due": "2 days"}},
       {"task": {"name": "file", "role": "clerks", "due": "1 day 12 hours"}},
       {"timer": {"name": "remind", "after": "30 minutes"}},
       {"timer": {"name": "until", "at_field": "until"}}]},
    {"name": "filed", "on": "task_completed:file", "outcome": "done", "then": [{"set": {"filed": true}}]},
    {"name": "any_task", "on": "task_completed:*", "then": [{"notify": {"channel": "hr", "payload": {"k": 1}}}]},
    {"name": "late", "on": "deadline_passed:file", "then": [{"emit": {"topic": "hr.late"}}]},
    {"name": "nudge", "on": "timer:remind", "then": [{"call": "public.nudge"}]},
    {"name": "yes", "on": "approved:boss", "then": [{"emit": {"topic": "hr.approved", "payload": {"ok": true}}}]},
    {"name": "no", "on": "rejected:boss", "then": [{"set": {"rejected": true}}]},
    {"name": "back", "on": "withdrawn:boss", "then": [{"set": {"withdrawn": true}}]},
    {"name": "out", "on": "left:review", "then": [{"set": {"left": true}}]},
    {"name": "touch", "on": "updated", "when": {"properties": {"days": {"minimum": 10}}}, "then": [{"transition": "review"}]}]}');
SELECT position, name, event, condition IS NOT NULL AS has_when, outcome, jsonb_array_length(actions) AS actions
  FROM lowcode.rules r JOIN lowcode.workflow_versions w ON w.id = r.workflow_version_id
 WHERE w.version = 4 ORDER BY position;

-- The diagram of a small machine (Mermaid stateDiagram-v2).
SELECT lowcode.define_form('hr', 'ticket', '{"type": "object"}');
SELECT lowcode.define_workflow('hr', 'ticket', '{
  "states": {"open": {"initial": true}, "doing": {}, "done": {"final": true}, "escalated": {}},
  "transitions": [{"name": "start", "from": "open", "to": "doing"},
                  {"name": "finish", "from": ["doing", "escalated"], "to": "done"}],
  "rules": [{"name": "escalate", "on": "entered:doing", "when": {"properties": {"urgent": {"const": true}}},
             "then": [{"transition": "escalated"}]},
            {"name": "sign", "on": "created", "then": [{"approval": {"name": "lead", "mode": "any", "approvers": ["ann"],
                                                          "on_approve": "doing", "on_reject": "open"}}]}]}');
SELECT lowcode.workflow_diagram('hr', 'ticket');
-- A form without a workflow, an unknown form.
SELECT pg_temp.err($$ SELECT lowcode.workflow_diagram('hr', 'plain') $$);
SELECT pg_temp.err($$ SELECT lowcode.workflow_diagram('hr', 'nope') $$);
