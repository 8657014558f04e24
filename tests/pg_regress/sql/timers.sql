-- Timers and deadlines: timer actions (after, at_field), run_due_timers fires due ones
-- once, timer:<name> and deadline_passed:<task> rules, cancellation when the record leaves
-- the state, failures isolated per timer, re-arming.
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
-- due(record, name): make a record's pending timers of that name due now.
CREATE FUNCTION pg_temp.due(record bigint, timer text) RETURNS int LANGUAGE sql AS $$
    WITH x AS (UPDATE lowcode.timers SET fire_at = now() - interval '1 second'
                WHERE record_id = record AND name = timer AND status = 'pending' RETURNING 1)
    SELECT count(*)::int FROM x
$$;
-- timers(record): the record's timers, oldest first.
CREATE FUNCTION pg_temp.timers(record bigint)
RETURNS TABLE (name text, event text, in_state text, status text, error text) LANGUAGE sql AS $$
    SELECT name, event, in_state, status, error FROM lowcode.timers WHERE record_id = record ORDER BY id
$$;
CREATE FUNCTION public.wf_explode(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF r -> 'data' ? 'permanent' THEN
        RAISE EXCEPTION 'record % is broken', r ->> 'id';
    END IF;
    RAISE EXCEPTION 'reminder service is down (record %)', r ->> 'id' USING ERRCODE = 'connection_failure';
END $$;

SELECT lowcode.create_app('crm', 'CRM');
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "call_at": {"type": "string", "format": "date-time"},
                 "reminded": {"type": "integer"}, "late": {"type": "boolean"}, "explode": {"type": "boolean"},
                 "snooze": {"type": "boolean"}, "remind_at": {"type": "string"}}}');
SELECT lowcode.define_workflow('crm', 'lead', '{
  "states": {"new": {"initial": true}, "contacted": {}, "stale": {}, "won": {"final": true}},
  "transitions": [{"name": "contact", "from": "new", "to": "contacted"},
                  {"name": "win", "from": ["new", "contacted", "stale"], "to": "won"}],
  "rules": [
    {"name": "arm", "on": "created", "then": [{"timer": {"name": "remind", "after": "2 hours"}}]},
    {"name": "schedule", "on": "created", "when": {"required": ["call_at"]}, "then": [{"timer": {"name": "call", "at_field": "call_at"}}]},
    {"name": "follow_up", "on": "entered:contacted", "then": [{"task": {"name": "follow_up", "assignee": "sales", "due": "1 day"}}]},
    {"name": "remind", "on": "timer:remind", "when": {"not": {"required": ["explode"]}}, "then": [{"set": {"reminded": 1}}, {"emit": {"topic": "crm.remind"}}]},
    {"name": "remind_boom", "on": "timer:remind", "when": {"required": ["explode"]}, "then": [{"emit": {"topic": "crm.boom"}}, {"call": "public.wf_explode"}]},
    {"name": "call_now", "on": "timer:call", "then": [{"transition": "stale"}]},
    {"name": "late", "on": "deadline_passed:follow_up", "then": [{"set": {"late": true}}]},
    {"name": "snooze", "on": "updated", "when": {"required": ["snooze"]}, "then": [{"timer": {"name": "remind", "after": "3 hours"}}]}]}');

-- after: a pending timer in the state it was set in, due in two hours.
SELECT lowcode.submit('crm', 'lead', '{"name": "acme"}') AS l1 \gset
SELECT * FROM pg_temp.timers(:l1);
SELECT ceil(extract(epoch FROM fire_at - now()) / 60) AS fires_in_minutes FROM lowcode.timers WHERE record_id = :l1;
-- at_field: fires at the record's date-time.
SELECT lowcode.submit('crm', 'lead', '{"name": "globex", "call_at": "2030-01-02T03:04:05Z"}') AS l2 \gset
SELECT name, fire_at = '2030-01-02T03:04:05Z'::timestamptz AS at_call_at FROM lowcode.timers WHERE record_id = :l2 ORDER BY id;
-- at_field naming a field the record lacks, or one that holds no date-time, is an error
-- naming the rule, record, timer and field.
SELECT lowcode.define_workflow('crm', 'lead', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "schedule", "on": "created", "then": [{"timer": {"name": "call", "at_field": "remind_at"}}]}]}');
SELECT pg_temp.err($$ SELECT lowcode.submit('crm', 'lead', '{"name": "initech"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('crm', 'lead', '{"name": "initech", "remind_at": "soon"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('crm', 'lead', '{"name": "initech", "remind_at": "2030-02-30 10:00"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('crm', 'lead', '{"name": "initech", "remind_at": ""}') $$);
SELECT count(*) AS initech_records FROM lowcode.records WHERE data ->> 'name' = 'initech';
SELECT lowcode.define_workflow('crm', 'lead', (SELECT definition
  FROM lowcode.workflow_versions WHERE app = 'crm' AND form = 'lead' AND version = 1));

-- Nothing is due yet: run_due_timers fires nothing.
SELECT lowcode.run_due_timers();
-- Only the due one fires, once; timer:remind ran its rule; history records timer_fired.
SELECT pg_temp.due(:l1, 'remind');
SELECT lowcode.run_due_timers();
SELECT lowcode.run_due_timers();
SELECT * FROM pg_temp.timers(:l1);
SELECT * FROM pg_temp.timers(:l2);
SELECT data FROM lowcode.records WHERE id = :l1;
SELECT topic, record_id = :l1 AS for_l1 FROM lowcode.events ORDER BY id;
SELECT action, detail - 'timer' AS detail FROM lowcode.record_history(:l1) WHERE action IN ('timer_fired', 'rule', 'rule_action');
-- at_field timer: when due, timer:call moves the record.
SELECT pg_temp.due(:l2, 'call');
SELECT lowcode.run_due_timers();
SELECT state FROM lowcode.records WHERE id = :l2;

-- Timers set in a state are cancelled when the record leaves it.
SELECT lowcode.submit('crm', 'lead', '{"name": "hooli"}') AS l3 \gset
SELECT lowcode.transition(:l3, 'contact');
SELECT * FROM pg_temp.timers(:l3);
SELECT pg_temp.due(:l3, 'remind') AS made_due_after_cancel;
SELECT lowcode.run_due_timers();

-- A deadline fires deadline_passed:<task> only while the task is open.
SELECT pg_temp.due(:l3, 'follow_up');
SELECT lowcode.run_due_timers();
SELECT data ->> 'late' AS late FROM lowcode.records WHERE id = :l3;
SELECT lowcode.submit('crm', 'lead', '{"name": "umbrella"}') AS l4 \gset
SELECT lowcode.transition(:l4, 'contact');
SELECT id AS l4_task FROM lowcode.tasks WHERE record_id = :l4 \gset
SET lowcode.actor = 'sales';
SELECT lowcode.complete_task(:l4_task, 'called');
RESET lowcode.actor;
-- The completed task's deadline was cancelled; even if it were still pending it would not fire its rule.
SELECT * FROM pg_temp.timers(:l4);
UPDATE lowcode.timers SET status = 'pending', fire_at = now() - interval '1 second' WHERE task_id = :l4_task;
SELECT lowcode.run_due_timers();
SELECT data ? 'late' AS late, (SELECT count(*) FROM lowcode.record_history(:l4) WHERE action = 'timer_fired') AS timer_fired_rows
  FROM lowcode.records WHERE id = :l4;

-- A timer whose rule raises a transient error (here connection_failure) is tried again later:
-- pending with its error and a backoff, its effects undone; the other timers of the run fire.
SELECT lowcode.submit('crm', 'lead', '{"name": "boom", "explode": true}') AS l5 \gset
SELECT lowcode.submit('crm', 'lead', '{"name": "calm"}') AS l6 \gset
SELECT pg_temp.due(:l5, 'remind') + pg_temp.due(:l6, 'remind') AS made_due;
SELECT count(*) AS events_before FROM lowcode.events \gset
SELECT count(*) AS l5_history FROM lowcode.record_history(:l5) \gset
SELECT lowcode.run_due_timers();
SELECT * FROM pg_temp.timers(:l5);
SELECT * FROM pg_temp.timers(:l6);
SELECT topic FROM lowcode.events ORDER BY id OFFSET :events_before;
SELECT (SELECT count(*) FROM lowcode.record_history(:l5)) - :l5_history AS l5_new_history,
       (SELECT data ->> 'reminded' FROM lowcode.records WHERE id = :l6) AS l6_reminded;
SELECT attempts, ceil(extract(epoch FROM fire_at - now())) AS retry_in_seconds FROM lowcode.timers WHERE record_id = :l5;
-- Not before its backoff; then again, four times (each row: made due, then run: it fires
-- nothing, and its next try is twice as late), and the fifth failure is final.
SELECT lowcode.run_due_timers();
SELECT pg_temp.due(:l5, 'remind') + lowcode.run_due_timers() AS run FROM generate_series(1, 4);
SELECT status, attempts, error FROM lowcode.timers WHERE record_id = :l5;
-- A failed timer is not retried.
SELECT lowcode.run_due_timers();
-- Any other error fails the timer at once.
SELECT lowcode.submit('crm', 'lead', '{"name": "bad", "explode": true, "permanent": true}') AS l5b \gset
SELECT pg_temp.due(:l5b, 'remind');
SELECT lowcode.run_due_timers();
SELECT status, attempts, error FROM lowcode.timers WHERE record_id = :l5b;

-- Re-arming a timer with the same name cancels the previous one.
SELECT lowcode.submit('crm', 'lead', '{"name": "initrode"}') AS l7 \gset
SELECT lowcode.update_record(:l7, '{"name": "initrode", "snooze": true}');
SELECT name, in_state, status, ceil(extract(epoch FROM fire_at - now()) / 3600) AS hours
  FROM lowcode.timers WHERE record_id = :l7 ORDER BY id;

-- run_due_timers(max) fires at most max timers; the rest wait for the next run.
SELECT lowcode.submit('crm', 'lead', '{"name": "a"}') AS m1 \gset
SELECT lowcode.submit('crm', 'lead', '{"name": "b"}') AS m2 \gset
SELECT pg_temp.due(:m1, 'remind') + pg_temp.due(:m2, 'remind') AS made_due;
SELECT lowcode.run_due_timers(1);
SELECT lowcode.run_due_timers(1);
SELECT lowcode.run_due_timers(1);

-- Two timers of one record due in the same run: the first moves the record on (call_now →
-- stale), which cancels the second (set in "new"): it must not fire after all.
SELECT lowcode.submit('crm', 'lead', '{"name": "both", "call_at": "2030-01-01T00:00:00Z"}') AS b1 \gset
UPDATE lowcode.timers SET fire_at = now() - CASE name WHEN 'call' THEN interval '2 seconds' ELSE interval '1 second' END
 WHERE record_id = :b1;
SELECT lowcode.run_due_timers();
SELECT * FROM pg_temp.timers(:b1);
SELECT state, data ? 'reminded' AS reminded FROM lowcode.records WHERE id = :b1;
SELECT action FROM lowcode.record_history(:b1) WHERE action = 'timer_fired';

-- A batch of timers whose rules make tasks (more than the journal writes with its one-row
-- statement): every task, its deadline, its note and its event, each naming its own task.
SELECT lowcode.define_form('crm', 'chase', '{"type": "object"}');
SELECT lowcode.define_workflow('crm', 'chase', '{
  "states": {"open": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "close", "from": "open", "to": "done"}],
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "late", "after": "1 hour"}}]},
            {"name": "chase", "on": "timer:late",
             "then": [{"task": {"name": "call", "pool": "sales", "due": "10 minutes", "events": true}}]}]}');
CREATE TEMP TABLE chased AS
  SELECT lowcode.submit('crm', 'chase', jsonb_build_object('n', i)) AS id FROM generate_series(1, 40) i;
UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE record_id IN (SELECT id FROM chased);
SELECT lowcode.run_due_timers();
SELECT count(*) AS tasks, count(DISTINCT t.record_id) AS records,
       count(*) FILTER (WHERE t.status = 'open' AND t.pool = 'sales' AND t.due_at - t.created_at = interval '10 minutes') AS as_defined
  FROM lowcode.tasks t WHERE t.record_id IN (SELECT id FROM chased);
SELECT count(*) AS deadlines
  FROM lowcode.timers d JOIN lowcode.tasks t ON t.id = d.task_id AND t.record_id = d.record_id
 WHERE d.record_id IN (SELECT id FROM chased) AND d.status = 'pending'
   AND d.event = 'deadline_passed:call' AND d.fire_at = t.due_at;
SELECT count(*) AS notes_naming_their_task
  FROM lowcode.history h JOIN lowcode.tasks t ON t.id = (h.detail ->> 'task')::bigint AND t.record_id = h.record_id
 WHERE h.action = 'task_created' AND h.record_id IN (SELECT id FROM chased);
SELECT count(*) AS events_naming_their_task
  FROM lowcode.events e JOIN lowcode.tasks t ON t.id = (e.payload ->> 'task')::bigint AND t.record_id = e.record_id
 WHERE e.topic = 'crm.task.created' AND e.record_id IN (SELECT id FROM chased);

-- Deleting a record takes its tasks and their deadlines with it (records_after: tasks and
-- timers have no foreign keys, the engine deletes them with their record).
CREATE TEMP TABLE gone AS SELECT id FROM chased ORDER BY id LIMIT 3;
SELECT count(*) AS deleted FROM gone, LATERAL lowcode.delete_record(gone.id);
SELECT (SELECT count(*) FROM lowcode.tasks t WHERE t.record_id IN (SELECT id FROM gone)) AS tasks_left,
       (SELECT count(*) FROM lowcode.timers d WHERE d.record_id IN (SELECT id FROM gone)) AS timers_left,
       (SELECT count(*) FROM lowcode.timers d WHERE d.task_id IS NOT NULL
           AND NOT EXISTS (SELECT FROM lowcode.tasks t WHERE t.id = d.task_id)) AS deadlines_without_task;

-- TRUNCATE lowcode.records (CASCADE, for the approvals) takes every task (through approvals)
-- and timer (records_truncated) with it.
BEGIN;
SELECT (SELECT count(*) FROM lowcode.tasks) > 0 AS had_tasks, (SELECT count(*) FROM lowcode.timers) > 0 AS had_timers;
-- Timers and task deadlines name their record's app (docs/scale-out.md).
SELECT count(*) > 0 AS timers, count(*) FILTER (WHERE x.task_id IS NOT NULL) > 0 AS deadlines,
       count(*) FILTER (WHERE x.app IS DISTINCT FROM r.app) AS other_app
  FROM lowcode.timers x JOIN lowcode.records r ON r.id = x.record_id;
SET client_min_messages = warning;
TRUNCATE lowcode.records CASCADE;
RESET client_min_messages;
SELECT (SELECT count(*) FROM lowcode.tasks) AS tasks_left, (SELECT count(*) FROM lowcode.timers) AS timers_left;
ROLLBACK;
