-- The workflow runtime: initial state, transitions (state, roles, conditions, payload),
-- rules on record events, set / notify / call actions, direct state updates, history.
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
DROP ROLE IF EXISTS lc_wf_ann;
DROP ROLE IF EXISTS lc_wf_bob;
DROP ROLE IF EXISTS lc_wf_engineer;
RESET client_min_messages;
CREATE ROLE lc_wf_engineer NOLOGIN;
CREATE ROLE lc_wf_ann NOLOGIN IN ROLE lc_wf_engineer;
CREATE ROLE lc_wf_bob NOLOGIN;

-- Functions the call action uses: one returns data to merge, one returns nothing.
CREATE FUNCTION public.wf_enrich(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('assigned_team', 'team-' || (r -> 'data' ->> 'priority'), 'seen_state', r ->> 'state')
$$;
CREATE TABLE public.wf_calls (record_id bigint, state text, title text);
CREATE FUNCTION public.wf_audit(r jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.wf_calls VALUES ((r ->> 'id')::bigint, r ->> 'state', r -> 'data' ->> 'title')
$$;
GRANT SELECT, INSERT ON public.wf_calls TO lc_wf_ann, lc_wf_bob;
-- One whose result does not fit the form it is used with.
CREATE FUNCTION public.wf_too_many(r jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"qty": 1000}'::jsonb $$;

SELECT lowcode.create_app('ops', 'Operations');
-- Both may read and change tickets; "start" is still for lc_wf_engineer's members only.
SELECT lowcode.grant('ops', 'lc_wf_ann', ARRAY['read_all', 'update_all']);
SELECT lowcode.grant('ops', 'lc_wf_bob', ARRAY['read_all', 'update_all']);
SELECT lowcode.define_form('ops', 'ticket', '{
  "type": "object", "required": ["title"],
  "properties": {
    "title": {"type": "string", "minLength": 1},
    "priority": {"type": "integer", "minimum": 1, "maximum": 5},
    "resolution": {"type": "string", "minLength": 3},
    "note": {"type": "string", "maxLength": 10}
  }}');
SELECT lowcode.define_workflow('ops', 'ticket', '{
  "states": {"new": {"initial": true}, "triage": {}, "working": {}, "resolved": {"final": true}, "closed": {"final": true}},
  "transitions": [
    {"name": "accept", "from": "new", "to": "triage"},
    {"name": "start", "from": "triage", "to": "working", "roles": ["lc_wf_engineer"]},
    {"name": "resolve", "from": "working", "to": "resolved",
     "when": {"required": ["resolution"], "properties": {"resolution": {"not": {"const": "wontfix"}}}}},
    {"name": "close", "from": ["new", "triage"], "to": "closed"}],
  "rules": [
    {"name": "urgent", "on": "created", "when": {"required": ["priority"], "properties": {"priority": {"minimum": 4}}},
     "then": [{"set": {"note": "urgent"}}, {"notify": {"channel": "ops_alerts", "payload": {"level": "high"}}}]},
    {"name": "stamp", "on": "updated", "when": {"required": ["note"], "properties": {"note": {"const": "stamp me"}}},
     "then": [{"set": {"note": "stamped"}}]},
    {"name": "triaged", "on": "left:triage", "then": [{"set": {"note": "triaged"}}]},
    {"name": "enrich", "on": "entered:working", "then": [{"call": "public.wf_enrich"}, {"call": "public.wf_audit"}]},
    {"name": "celebrate", "on": "entered:resolved", "when": {"properties": {"priority": {"const": 5}}},
     "then": [{"set": {"note": "hero"}}]}]}');

-- Records start in the initial state; the created rule ran only when its condition held.
SELECT lowcode.submit('ops', 'ticket', '{"title": "printer", "priority": 2}') AS t1 \gset
SELECT lowcode.submit('ops', 'ticket', '{"title": "outage", "priority": 5}') AS t2 \gset
SELECT id - :t1 AS n, state, data FROM lowcode.records ORDER BY id;

-- transition() moves the record and returns its state.
SELECT lowcode.transition(:t1, 'accept');
-- From the wrong state; an unknown transition (HINT lists them); NULLs; unknown record.
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'accept') $$, :t1));
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'resolve') $$, :t1));
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'fly') $$, :t1));
SELECT pg_temp.err($$ SELECT lowcode.transition(NULL, 'accept') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, NULL) $$, :t1));
SELECT pg_temp.err($$ SELECT lowcode.transition(999999, 'accept') $$);
-- A record of a form without a workflow has no transitions.
SELECT lowcode.define_form('ops', 'memo', '{"type": "object"}');
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'accept') $$, lowcode.submit('ops', 'memo', '{}')));

-- Roles: a non-member of lc_wf_engineer is refused, a member may start.
SET ROLE lc_wf_bob;
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'start') $$, :t1));
RESET ROLE;
SELECT state FROM lowcode.records WHERE id = :t1;
SET ROLE lc_wf_ann;
SELECT lowcode.transition(:t1, 'start');
RESET ROLE;
-- left:triage set the note, entered:working called wf_enrich (merged) and wf_audit (void).
SELECT state, data, updated_by FROM lowcode.records WHERE id = :t1;
SELECT record_id - :t1 AS n, state, title FROM public.wf_calls;

-- Guard condition: not met → 23514 with the issues in DETAIL; nothing changes.
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'resolve') $$, :t1));
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'resolve', '{"resolution": "wontfix"}') $$, :t1));
-- A payload that breaks the form: 23514 and nothing changed.
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'resolve', '{"resolution": "ok"}') $$, :t1));
SELECT state, revision, data ? 'resolution' AS has_resolution FROM lowcode.records WHERE id = :t1;
-- The payload is merged into data and validated.
SELECT lowcode.transition(:t1, 'resolve', '{"resolution": "replaced toner"}');
SELECT state, data ->> 'resolution' AS resolution, data ->> 'note' AS note FROM lowcode.records WHERE id = :t1;
-- A final state: nothing leaves it.
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'close') $$, :t1));

-- entered:resolved with a when: only the priority-5 ticket gets the hero note.
SELECT lowcode.transition(:t2, 'accept');
SET ROLE lc_wf_ann;
SELECT lowcode.transition(:t2, 'start');
RESET ROLE;
SELECT lowcode.transition(:t2, 'resolve', '{"resolution": "rebooted"}');
SELECT state, data FROM lowcode.records WHERE id = :t2;

-- updated rule with a when: a plain update that matches is stamped, others are not.
SELECT lowcode.submit('ops', 'ticket', '{"title": "desk"}') AS t3 \gset
SELECT lowcode.update_record(:t3, '{"title": "desk", "note": "stamp me"}');
SELECT data ->> 'note' AS note, revision FROM lowcode.records WHERE id = :t3;
SELECT lowcode.update_record(:t3, '{"title": "desk", "note": "leave me"}');
SELECT data ->> 'note' AS note, revision FROM lowcode.records WHERE id = :t3;
-- A plain UPDATE of the data is an event too.
UPDATE lowcode.records SET data = data || '{"note": "stamp me"}' WHERE id = :t3;
SELECT data ->> 'note' AS note FROM lowcode.records WHERE id = :t3;

-- Direct UPDATE of the state: an unknown state is refused; a known one is allowed and fires the rules.
SELECT pg_temp.err(format($$ UPDATE lowcode.records SET state = 'limbo' WHERE id = %s $$, :t3));
UPDATE lowcode.records SET state = 'triage' WHERE id = :t3;
UPDATE lowcode.records SET state = 'closed' WHERE id = :t3;
SELECT state, data ->> 'note' AS note FROM lowcode.records WHERE id = :t3;

-- History, in order, with the cause of each change.
SELECT action, from_state, to_state, detail, after ->> 'note' AS note
  FROM lowcode.record_history(:t1);
SELECT action, from_state, to_state, detail, after ->> 'note' AS note
  FROM lowcode.record_history(:t3);

-- A rule's set is validated against the form: when it breaks the schema the whole write
-- (the submit, the rule's other actions) is rolled back.
SELECT lowcode.define_form('ops', 'order', '{"type": "object", "properties": {"qty": {"type": "integer", "maximum": 10}, "flag": {"type": "string"}}}');
-- (wf_nope exists when the workflow is defined, as a call's function must, and is gone when it runs.)
CREATE FUNCTION public.wf_nope(r jsonb) RETURNS void LANGUAGE sql AS '';
SELECT lowcode.define_workflow('ops', 'order', '{
  "states": {"open": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "open", "to": "done"}],
  "rules": [
    {"name": "flag", "on": "created", "then": [{"set": {"flag": "new"}}]},
    {"name": "bulk", "on": "created", "when": {"required": ["bulk"]}, "then": [{"set": {"qty": 100}}]},
    {"name": "bad_call", "on": "created", "when": {"required": ["call_missing"]}, "then": [{"call": "public.wf_nope"}]},
    {"name": "bad_result", "on": "created", "when": {"required": ["call_bad"]}, "then": [{"call": "public.wf_too_many"}]}]}');
DROP FUNCTION public.wf_nope(jsonb);
SELECT count(*) AS records_before FROM lowcode.records WHERE form = 'order' \gset
SELECT count(*) AS history_before FROM lowcode.history \gset
SELECT pg_temp.err($$ SELECT lowcode.submit('ops', 'order', '{"qty": 1, "bulk": true}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('ops', 'order', '{"qty": 1, "call_missing": true}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('ops', 'order', '{"qty": 1, "call_bad": true}') $$);
SELECT (SELECT count(*) FROM lowcode.records WHERE form = 'order') - :records_before AS new_records,
       (SELECT count(*) FROM lowcode.history) - :history_before AS new_history;
SELECT lowcode.submit('ops', 'order', '{"qty": 1}') AS o1 \gset
SELECT data FROM lowcode.records WHERE id = :o1;
-- The rule's set on update: the transition that triggered it is rolled back too.
SELECT lowcode.define_workflow('ops', 'order', '{
  "states": {"open": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "open", "to": "done"}],
  "rules": [{"name": "overfill", "on": "entered:done", "then": [{"emit": {"topic": "order.done"}}, {"set": {"qty": 11}}]}]}');
SELECT count(*) AS events_before FROM lowcode.events \gset
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'finish') $$, :o1));
SELECT state, data, (SELECT count(*) FROM lowcode.events) - :events_before AS new_events FROM lowcode.records WHERE id = :o1;

-- notify: the session listening gets the rule's notification when the statement commits.
-- psql prints the sender's PID, so the notifications are captured to a file and read back
-- with the PID masked.
SELECT '/tmp/lowcode_regress_notify_' || current_setting('port') || '_' || current_database() || '.txt' AS notify_file \gset
LISTEN ops_alerts;
\o :notify_file
SELECT lowcode.submit('ops', 'ticket', '{"title": "fire", "priority": 4}') AS t4 \gset
SELECT lowcode.submit('ops', 'ticket', '{"title": "dust", "priority": 1}');
\o
UNLISTEN ops_alerts;
SELECT regexp_replace(pg_read_file(:'notify_file'), 'PID \d+', 'PID <pid>', 'g') AS printed;
\setenv LOWCODE_NOTIFY_FILE :notify_file
\! rm -f "$LOWCODE_NOTIFY_FILE"
SELECT action, detail -> 'action' AS action_detail FROM lowcode.record_history(:t4) WHERE action = 'rule_action';

-- transition returns the state after the rules it triggered: entering 'checked' moves the
-- parcel on to 'shipped' (a rule's transition); a rule that only emits leaves it where it went.
SELECT lowcode.define_form('ops', 'parcel', '{"type": "object"}');
SELECT lowcode.define_workflow('ops', 'parcel', '{
  "states": {"new": {"initial": true}, "checked": {}, "shipped": {}, "held": {}},
  "transitions": [{"name": "check", "from": "new", "to": "checked"}, {"name": "hold", "from": "new", "to": "held"}],
  "rules": [{"name": "ship", "on": "entered:checked", "then": [{"transition": "shipped"}]},
            {"name": "note", "on": "entered:held", "then": [{"emit": {"topic": "parcel.held"}}]}]}');
SELECT lowcode.submit('ops', 'parcel', '{}') AS p1 \gset
SELECT lowcode.submit('ops', 'parcel', '{}') AS p2 \gset
SELECT lowcode.transition(:p1, 'check') AS after_check, lowcode.transition(:p2, 'hold') AS after_hold;

-- A form whose workflow names no transition: the hint says so.
SELECT lowcode.define_form('ops', 'note', '{"type": "object"}');
SELECT lowcode.define_workflow('ops', 'note', '{"states": {"open": {"initial": true}}}');
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'accept') $$, lowcode.submit('ops', 'note', '{}')));
-- lowcode.transitions lists a workflow's transitions from its definition.
SELECT t.name, t.from_states, t.to_state, t.roles, t.condition IS NOT NULL AS has_condition
  FROM lowcode.transitions t JOIN lowcode.forms f ON f.workflow_version_id = t.workflow_version_id
 WHERE f.app = 'ops' AND f.name IN ('ticket', 'note') ORDER BY t.name;

-- Clean up the cluster-wide roles.
REVOKE ALL ON ALL TABLES IN SCHEMA lowcode FROM lc_wf_ann, lc_wf_bob;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA lowcode FROM lc_wf_ann, lc_wf_bob;
REVOKE ALL ON SCHEMA lowcode FROM lc_wf_ann, lc_wf_bob;
REVOKE ALL ON public.wf_calls FROM lc_wf_ann, lc_wf_bob;
DROP ROLE lc_wf_ann;
DROP ROLE lc_wf_bob;
DROP ROLE lc_wf_engineer;
