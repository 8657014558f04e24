-- baseline for lowcode.submit with the inspection workflow: one hand-written statement writing
-- the rows that submit writes for a severity-5 fault report, into plain mirrors of lowcode's
-- tables (same columns, defaults, indexes and keys; bench/setup.sql): the record (in the
-- workflow's initial state 'open'), rule route_severe's task 'fix' in pool 'engineers' with a
-- 5-minute deadline, the deadline's timer row, the three history rows lowcode writes (the
-- record's 'created' row, the rule's 'task_created' and 'rule_action' notes, with lowcode's
-- details) and the outbox event 'fault.severe' with lowcode's payload (record, app, form,
-- state, event, rule, data): seven rows, as submit writes (scripts/bench.sh checks the count).
-- No validation, no rule evaluation: the rows only. ('deadline_passed:' || 'fix' because
-- pgbench -M prepared would take a colon followed by a name, even in a literal, for a variable.)
WITH rec AS (
    INSERT INTO bench.records_raw (app, form, form_version_id, data, state)
    SELECT f.app, f.name, f.current_version_id,
           '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}',
           'open'
      FROM bench.forms_raw f WHERE f.app = 'insp' AND f.name = 'fault_wf'
    RETURNING id, app, form, state, revision, data
), task AS (
    INSERT INTO bench.tasks_raw (record_id, name, pool, title, status, due_at, app, form)
    SELECT rec.id, 'fix', 'engineers', 'fix', 'open', now() + interval '5 minutes', rec.app, rec.form
      FROM rec
    RETURNING id, record_id, due_at, app
), deadline AS (
    INSERT INTO bench.wf_timers_raw (record_id, name, event, task_id, fire_at, app)
    SELECT task.record_id, 'fix', 'deadline_passed:' || 'fix', task.id, task.due_at, task.app
      FROM task
), hist AS (
    INSERT INTO bench.history_raw (record_id, app, form, action, revision, actor, from_state, to_state, before, after, detail)
    SELECT rec.id, rec.app, rec.form, h.action, rec.revision, current_user, h.from_state, rec.state, NULL, h.after, h.detail
      FROM rec, task,
           LATERAL (VALUES (1, 'created', NULL, rec.data, '{}'::jsonb),
                           (2, 'task_created', rec.state, NULL, jsonb_build_object('name', 'fix', 'rule', 'route_severe', 'task', task.id)),
                           (3, 'rule_action', rec.state, NULL, '{"rule": "route_severe", "action": {"emit": {"topic": "fault.severe"}}}'::jsonb))
                   AS h(n, action, from_state, after, detail)
     ORDER BY h.n
)
INSERT INTO bench.wf_events_raw (topic, payload, record_id, app)
SELECT 'fault.severe',
       jsonb_build_object('record', rec.id, 'app', rec.app, 'form', rec.form, 'state', rec.state,
                          'event', 'created', 'rule', 'route_severe', 'data', rec.data),
       rec.id, rec.app
  FROM rec;
