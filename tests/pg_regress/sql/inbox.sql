-- Forms and tasks for people in a browser: form_schema (a standard document, the author's
-- order, the UI schema and title), set_form_ui and its checks, submit with the version the
-- page was built from, and the task inbox (claimable_tasks, my_tasks, claim_task(id)),
-- declared outcomes, result schemas, task events and role checks that follow the actor.
CREATE EXTENSION lowcode;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;

SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_inbox_server;
DROP ROLE IF EXISTS lc_inbox_engineers;
DROP ROLE IF EXISTS lc_inbox_ann;
RESET client_min_messages;
CREATE ROLE lc_inbox_server NOLOGIN;
CREATE ROLE lc_inbox_engineers NOLOGIN;
CREATE ROLE lc_inbox_ann NOLOGIN IN ROLE lc_inbox_engineers;

SELECT lowcode.create_app('insp', 'Equipment inspection');
SELECT lowcode.register_schema('https://example.test/site', '{"type": "object", "required": ["building"],
  "properties": {"building": {"type": "string", "minLength": 2}, "floor": {"type": "integer"}}}');
-- Written as text: the author's order is kept (jsonb would sort the keys).
SELECT lowcode.define_form('insp', 'fault', '{"title": "Fault report", "type": "object", "required": ["machine", "severity"],
  "properties": {"site": {"$ref": "https://example.test/site"},
                 "photos": {"type": "array", "items": {"type": "object", "properties": {"url": {"type": "string"}, "caption": {"type": "string"}}}},
                 "machine": {"type": "string", "minLength": 1}, "severity": {"enum": [1, 2, 3]}}}');
SELECT jsonb_pretty(lowcode.form_schema('insp', 'fault'));
SELECT title FROM lowcode.forms WHERE app = 'insp' AND name = 'fault';
-- Given as jsonb: the stored (sorted) order.
SELECT lowcode.define_form('insp', 'note', '{"type": "object", "properties": {"zeta": {}, "alpha": {}}}'::jsonb);
SELECT lowcode.form_schema('insp', 'note') -> 'order';

-- The UI schema: labels and help per locale, order, widgets; no new version.
SELECT lowcode.set_form_ui('insp', 'fault', '{
  "title": {"en": "Fault report", "zh-CN": "故障报告"},
  "order": {"": ["machine", "severity", "site", "photos"]},
  "fields": {"machine": {"label": {"en": "Machine", "zh-CN": "设备"}, "help": {"en": "as on its plate", "zh-CN": "铭牌上的编号"}},
             "severity": {"widget": "radio", "enum_labels": {"1": {"en": "low", "zh-CN": "低"}, "3": {"en": "stopped", "zh-CN": "停机"}}},
             "site.building": {"label": {"en": "Building", "zh-CN": "楼"}},
             "photos.caption": {"widget": "textarea"}}}');
SELECT s -> 'version' AS version, s -> 'title' AS title, s -> 'order' -> '' AS top_order,
       s -> 'ui' -> 'fields' -> 'machine' -> 'label' ->> 'zh-CN' AS machine_zh
  FROM lowcode.form_schema('insp', 'fault') s;
-- Every mistake says where.
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{"fields": {"site.room": {}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{"fields": {"machine": {"widget": "slider"}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{"fields": {"machine": {"label": {"en us": "x"}}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{"order": {"": ["machine", "nope"]}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{"colour": "red"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'nope', '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.form_schema('insp', 'nope') $$);
SELECT pg_temp.err($$ SELECT lowcode.form_schema('insp', 'fault', 9) $$);
-- Not an app admin: refused.
SET ROLE lc_inbox_server;
SELECT pg_temp.err($$ SELECT lowcode.set_form_ui('insp', 'fault', '{}') $$);
-- Anyone reads a form to render it.
SELECT (lowcode.form_schema('insp', 'fault') -> 'version')::int AS version;
RESET ROLE;

-- A page built from version 1 submits with it; after the form changed it is refused (40001)
-- and nothing is written.
SELECT lowcode.submit('insp', 'fault', '{"machine": "press 4", "severity": 2}', 1) > 0 AS submitted;
SELECT lowcode.define_form('insp', 'fault', '{"title": "Fault report", "type": "object", "required": ["machine", "severity"],
  "properties": {"site": {"$ref": "https://example.test/site"}, "machine": {"type": "string", "minLength": 1},
                 "severity": {"enum": [1, 2, 3]}, "photos": {"type": "array"}}}');
SELECT pg_temp.err($$ SELECT lowcode.submit('insp', 'fault', '{"machine": "press 4", "severity": 2}', 1) $$);
SELECT count(*) AS records FROM lowcode.records WHERE app = 'insp' AND form = 'fault';
SELECT pg_temp.err($$ SELECT lowcode.submit('insp', 'fault', '{}', NULL) $$);

-- Tasks for people: an app server acts for them (act_as), they claim from an inbox.
SELECT lowcode.grant('insp', 'lc_inbox_server', ARRAY['submit', 'read_all', 'claim', 'act_as']);
SELECT lowcode.define_form('insp', 'job', '{"type": "object", "required": ["machine"], "properties": {"machine": {"type": "string"}}}');
SELECT lowcode.define_workflow('insp', 'job', '{
  "states": {"open": {"initial": true}, "fixed": {"final": true}},
  "rules": [
    {"name": "route", "on": "created", "then": [
       {"task": {"name": "repair", "title": "Repair it", "pool": "engineers", "due": "5 minutes", "events": true,
                 "outcomes": ["fixed", "cannot_fix"],
                 "result": {"type": "object", "required": ["minutes"], "properties": {"minutes": {"type": "integer", "minimum": 1}}}}},
       {"task": {"name": "inspect", "role": "lc_inbox_engineers"}}]},
    {"name": "done", "on": "task_completed:repair", "outcome": "fixed", "then": [{"transition": "fixed"}]}]}');
SELECT lowcode.publish('insp');
SET ROLE lc_inbox_server;
SET lowcode.actor = 'bob';
SELECT lowcode.submit('insp', 'job', '{"machine": "press 4"}') AS job \gset
SELECT app, form, record_state, name, title, pool FROM lowcode.claimable_tasks() ORDER BY id;
-- bob is no PostgreSQL role: the role task is not his, whatever the app server's roles.
SELECT (SELECT id FROM lowcode.tasks WHERE name = 'inspect' AND record_id = :job) AS inspect \gset
SELECT pg_temp.err(format('SELECT lowcode.claim_task(%s::bigint)', :inspect));
SELECT (SELECT id FROM lowcode.tasks WHERE name = 'repair' AND record_id = :job) AS repair \gset
SELECT lowcode.claim_task(:repair::bigint) AS bob_won;
SET lowcode.actor = 'carl';
SELECT lowcode.claim_task(:repair::bigint) AS carl_won;
SELECT count(*) AS carl_can_claim FROM lowcode.claimable_tasks('engineers');
-- lc_inbox_ann is a member of the role: the inspect task is hers to take.
SET lowcode.actor = 'lc_inbox_ann';
SELECT name FROM lowcode.claimable_tasks() ORDER BY id;
SELECT lowcode.claim_task(:inspect::bigint) AS ann_won;
SET lowcode.actor = 'bob';
SELECT app, form, name, status, outcomes FROM lowcode.my_tasks();
-- Outcomes and the result schema are checked; nothing is half-written.
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'done') $$, :repair));
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'fixed', '{"minutes": 0}') $$, :repair));
SELECT status FROM lowcode.tasks WHERE id = :repair;
SELECT lowcode.complete_task(:repair, 'fixed', '{"minutes": 4}');
SELECT state FROM lowcode.records WHERE id = :job;
SELECT count(*) AS bobs_tasks FROM lowcode.my_tasks();
RESET lowcode.actor;
RESET ROLE;
-- The inbox's events, in order.
SELECT topic, payload ->> 'name' AS name, payload ->> 'by' AS by, payload ->> 'outcome' AS outcome
  FROM lowcode.events WHERE topic LIKE 'insp.task.%' ORDER BY id;
-- Gone, and someone else's app.
SELECT pg_temp.err($$ SELECT lowcode.claim_task(999999::bigint) $$);
SELECT lowcode.create_app('other', 'Other');
SELECT lowcode.define_form('other', 'job', '{"type": "object"}');
SELECT lowcode.define_workflow('other', 'job', '{"states": {"open": {"initial": true}},
  "rules": [{"name": "route", "on": "created", "then": [{"task": {"name": "t", "pool": "engineers"}}]}]}');
SELECT lowcode.submit('other', 'job', '{}') AS other \gset
SELECT (SELECT id FROM lowcode.tasks WHERE record_id = :other) AS other_task \gset
SET ROLE lc_inbox_server;
SELECT pg_temp.err(format('SELECT lowcode.claim_task(%s::bigint)', :other_task));
SELECT count(*) AS other_apps_tasks_listed FROM lowcode.claimable_tasks() WHERE app = 'other';
RESET ROLE;
-- A result schema that does not compile is refused when the workflow is defined.
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('insp', 'job', '{"states": {"open": {"initial": true}},
  "rules": [{"name": "r", "on": "created", "then": [{"task": {"name": "t", "pool": "p", "result": {"type": "nonsense"}}}]}]}') $$);

DROP EXTENSION lowcode CASCADE;
DROP ROLE lc_inbox_ann;
DROP ROLE lc_inbox_engineers;
DROP ROLE lc_inbox_server;
