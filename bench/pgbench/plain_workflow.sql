-- The plain baseline for lowcode.submit with the inspection workflow (issue 20): the statement of
-- handwritten_workflow.sql, writing the same rows into plain tables (bench/setup.sql: the same
-- columns, defaults and indexes; no foreign keys, CHECKs or triggers): the physical limit of
-- the work a workflow submit does.
WITH rec AS (
    INSERT INTO bench.records_plain (app, form, form_version_id, data, state)
    SELECT f.app, f.name, f.current_version_id,
           '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}',
           'open'
      FROM bench.forms_raw f WHERE f.app = 'insp' AND f.name = 'fault_wf'
    RETURNING id, app, form, state, revision, data
), task AS (
    INSERT INTO bench.tasks_plain (record_id, name, pool, title, status, due_at, app, form)
    SELECT rec.id, 'fix', 'engineers', 'fix', 'open', now() + interval '5 minutes', rec.app, rec.form
      FROM rec
    RETURNING id, record_id, due_at, app
), deadline AS (
    INSERT INTO bench.wf_timers_plain (record_id, name, event, task_id, fire_at, app)
    SELECT task.record_id, 'fix', 'deadline_passed:' || 'fix', task.id, task.due_at, task.app
      FROM task
), hist AS (
    INSERT INTO bench.history_plain (record_id, app, form, action, revision, actor, from_state, to_state, before, after, detail)
    SELECT rec.id, rec.app, rec.form, h.action, rec.revision, current_user, h.from_state, rec.state, NULL, h.after, h.detail
      FROM rec, task,
           LATERAL (VALUES (1, 'created', NULL, rec.data, '{}'::jsonb),
                           (2, 'task_created', rec.state, NULL, jsonb_build_object('name', 'fix', 'rule', 'route_severe', 'task', task.id)),
                           (3, 'rule_action', rec.state, NULL, '{"rule": "route_severe", "action": {"emit": {"topic": "fault.severe"}}}'::jsonb))
                   AS h(n, action, from_state, after, detail)
     ORDER BY h.n
)
INSERT INTO bench.wf_events_plain (topic, payload, record_id, app)
SELECT 'fault.severe',
       jsonb_build_object('record', rec.id, 'app', rec.app, 'form', rec.form, 'state', rec.state,
                          'event', 'created', 'rule', 'route_severe', 'data', rec.data),
       rec.id, rec.app
  FROM rec;
