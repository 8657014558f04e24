-- Equipment inspection: engineers report faults on the factory floor.
-- `make demo` runs this file in a throwaway database and prints every statement with its result.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- 1. An app is a namespace for forms.
SELECT lowcode.create_app('inspection', 'Equipment inspection');

-- 2. A form is a JSON Schema. Defining it publishes version 1.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity"],
  "properties": {
    "site":        {"type": "string", "minLength": 1},
    "severity":    {"type": "integer", "minimum": 1, "maximum": 5},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos":      {"type": "array", "items": {"type": "string"}}
  }}') AS version;

-- 3. Submissions are validated by the database; a good one returns its record id.
SELECT lowcode.submit('inspection', 'fault_report',
                      '{"site": "plant-7", "severity": 5, "reported_at": "2026-11-25T08:30:00Z"}') AS record_id;
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-3", "severity": 2}') AS record_id;

-- 4. A bad one is refused (SQLSTATE 23514). DETAIL lists every problem as JSON.
--    (The error is caught here only so the demo can go on.)
DO $$
DECLARE detail text;
BEGIN
    PERFORM lowcode.submit('inspection', 'fault_report', '{"severity": 9}');
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %', SQLERRM;
    RAISE NOTICE 'detail:  %', detail;
END $$;

-- 5. Ask before you submit: validate() lists problems without raising, is_valid() says yes or no.
SELECT * FROM lowcode.validate('inspection', 'fault_report', '{"severity": 9}');
SELECT lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 1}') AS is_valid;

-- 6. Publish typed views: a schema named after the app, one view per form.
SELECT lowcode.publish('inspection') AS views;
SELECT id, site, severity, reported_at, state, revision FROM inspection.fault_report ORDER BY id;

-- Plain SQL writes go through the same validation.
INSERT INTO inspection.fault_report (site, severity, photos)
VALUES ('plant-9', 4, '["valve.jpg"]')
RETURNING id, site, severity, photos;
UPDATE inspection.fault_report SET severity = 3 WHERE site = 'plant-3' RETURNING id, severity, revision;

-- 7. Every change is in the history, with who did it.
SELECT record_id, action, revision, actor, after ->> 'severity' AS severity
  FROM lowcode.history ORDER BY id;

-- 8. Forms evolve: a changed schema is version 2; existing records keep the version they were validated against.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity", "machine"],
  "properties": {
    "site":        {"type": "string", "minLength": 1},
    "severity":    {"type": "integer", "minimum": 1, "maximum": 5},
    "machine":     {"type": "string", "pattern": "^M-[0-9]{3}$"},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos":      {"type": "array", "items": {"type": "string"}}
  }}') AS version;
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-7", "severity": 1, "machine": "M-042"}') AS record_id;
SELECT lowcode.publish('inspection') AS views;
SELECT r.id, v.version AS validated_against, f.site, f.machine
  FROM inspection.fault_report f
  JOIN lowcode.records r USING (id)
  JOIN lowcode.form_versions v ON v.id = r.form_version_id
 ORDER BY r.id;

-- 9. Use a form as a CHECK constraint on a table of your own.
CREATE TABLE imported_faults (
    id  serial PRIMARY KEY,
    doc jsonb NOT NULL CHECK (lowcode.conforms('inspection', 'fault_report', doc))
);
INSERT INTO imported_faults (doc) VALUES ('{"site": "plant-1", "severity": 2, "machine": "M-001"}');
SELECT count(*) AS imported FROM imported_faults;

-- =====================================================================================
-- Part two: the workflow. Severe faults become work for the engineers on shift.
-- =====================================================================================

-- 10. Attach a workflow to the form. A record starts in the initial state ("open") and moves
--     by named transitions (called by people) or by rules (run by the database, in the same
--     transaction as the change that triggered them). Rules listen to events:
--       * "route_severe": a new fault with severity >= 4 becomes a task in the claim pool
--         "engineers", due in 5 minutes, and an outbox event "fault.severe";
--       * "fixed": when an engineer completes that task with outcome "fixed", the fault
--         gets resolution "fixed" and moves to "resolved";
--       * "overdue": if the 5 minutes pass first, an outbox event "fault.overdue".
--     (Records submitted before a form has a workflow keep their old state, "submitted".)
SELECT lowcode.define_workflow('inspection', 'fault_report', '{
  "states": {
    "open":     {"initial": true, "title": "reported, not yet resolved"},
    "resolved": {"final": true}
  },
  "transitions": [
    {"name": "resolve", "from": "open", "to": "resolved", "when": {"required": ["resolution"]}}
  ],
  "rules": [
    {"name": "route_severe", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 minutes"}},
              {"emit": {"topic": "fault.severe"}}]},
    {"name": "fixed", "on": "task_completed:fix", "outcome": "fixed",
     "then": [{"set": {"resolution": "fixed"}}, {"transition": "resolved"}]},
    {"name": "overdue", "on": "deadline_passed:fix",
     "then": [{"emit": {"topic": "fault.overdue"}}]}
  ]}') AS workflow_version;

-- The workflow as a Mermaid state diagram (paste it into any Mermaid viewer).
SELECT lowcode.workflow_diagram('inspection', 'fault_report') AS diagram \gset
\echo :diagram

-- 11. A minor fault: no task. Someone resolves it by hand with the "resolve" transition, whose
--     condition wants a "resolution"; without one it is refused.
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-4", "severity": 2, "machine": "M-204"}') AS minor \gset
DO $$
BEGIN
    PERFORM lowcode.transition(r.id, 'resolve') FROM lowcode.records r
     WHERE r.app = 'inspection' AND r.data ->> 'machine' = 'M-204';
    RAISE EXCEPTION 'the resolve transition should need a resolution';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
SELECT lowcode.transition(:minor, 'resolve', '{"resolution": "tightened a loose bolt"}') AS state;
DO $$
BEGIN
    IF (SELECT count(*) FROM lowcode.tasks) <> 0 THEN
        RAISE EXCEPTION 'a severity-2 fault should not create a task';
    END IF;
END $$;

-- 12. A severe fault arrives and lands in the "engineers" pool. Two engineers, alice and bob,
--     grab it at the same moment from their own database sessions (dblink opens them here;
--     in real life they are two app servers). Both sessions are inside a transaction when
--     they call claim_task, so the two claims truly overlap: the first one locks the task,
--     the second one skips it instead of waiting (and would get the next task, if any).
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-2", "severity": 5, "machine": "M-101"}') AS fault \gset
SELECT id, name, pool, status, due_at - created_at AS time_allowed
  FROM lowcode.tasks WHERE record_id = :fault;

CREATE EXTENSION IF NOT EXISTS dblink;
-- Where this database is, so that the two extra sessions connect to it (as the same user;
-- dblink needs a superuser or a password for that). A claim never waits for a lock; should
-- one ever do, lock_timeout makes it fail instead of hanging.
SELECT format('dbname=%s port=%s host=%s user=%s options=-clock_timeout=10s', current_database(), current_setting('port'),
              coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''), 'localhost'),
              current_user) AS here \gset
SELECT dblink_connect('alice', :'here'), dblink_connect('bob', :'here');

SELECT dblink_exec('alice', 'BEGIN'), dblink_exec('bob', 'BEGIN');
SELECT dblink_send_query('alice', $$SELECT lowcode.claim_task('engineers', 'alice')$$) AS alice_asks,
       dblink_send_query('bob',   $$SELECT lowcode.claim_task('engineers', 'bob')$$)   AS bob_asks;
-- Collect both answers (then once more each: dblink wants an empty result before reuse).
CREATE TEMP TABLE race AS
    SELECT 'alice' AS engineer, task FROM dblink_get_result('alice') AS r(task bigint)
    UNION ALL
    SELECT 'bob', task FROM dblink_get_result('bob') AS r(task bigint);
SELECT * FROM dblink_get_result('alice') AS r(task bigint);
SELECT * FROM dblink_get_result('bob') AS r(task bigint);
SELECT dblink_exec('alice', 'COMMIT'), dblink_exec('bob', 'COMMIT');
SELECT dblink_disconnect('alice'), dblink_disconnect('bob');

-- One of them got the task, the other got NULL (nothing left to claim).
SELECT engineer, task AS claimed_task FROM race ORDER BY engineer;
DO $$
DECLARE winners int := (SELECT count(task) FROM race);
BEGIN
    IF winners <> 1 THEN
        RAISE EXCEPTION 'the claim race should have exactly one winner, not %', winners;
    END IF;
    IF NOT EXISTS (SELECT FROM race JOIN lowcode.tasks t ON t.id = race.task
                    WHERE t.status = 'claimed' AND t.claimed_by = race.engineer) THEN
        RAISE EXCEPTION 'the winner''s task is not claimed by the winner';
    END IF;
END $$;
SELECT engineer AS winner, task AS race_task FROM race WHERE task IS NOT NULL \gset
SELECT engineer AS loser FROM race WHERE task IS NULL \gset

-- The loser cannot complete the winner's task (the app server says who acts with lowcode.actor).
SET lowcode.actor = :'loser';
DO $$
BEGIN
    PERFORM lowcode.complete_task(t.id, 'fixed') FROM lowcode.tasks t WHERE t.status = 'claimed';
    RAISE EXCEPTION 'only the engineer who claimed a task may complete it';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- The winner fixes the machine and completes the task: rule "fixed" resolves the fault.
SET lowcode.actor = :'winner';
SELECT lowcode.complete_task(:race_task, 'fixed');
RESET lowcode.actor;
SELECT id, state, data ->> 'resolution' AS resolution FROM lowcode.records WHERE id = :fault;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM race JOIN lowcode.tasks t ON t.id = race.task
                     JOIN lowcode.records r ON r.id = t.record_id
                    WHERE r.state = 'resolved' AND r.data ->> 'resolution' = 'fixed'
                      AND t.status = 'completed' AND t.completed_by = race.engineer AND t.met_deadline) THEN
        RAISE EXCEPTION 'completing the task should have resolved the fault, on time';
    END IF;
END $$;

-- Everything that happened to the fault, and who did it.
SELECT action, actor, from_state, to_state,
       coalesce('rule ' || (detail ->> 'rule'), 'worker ' || (detail ->> 'worker'),
                'outcome ' || (detail ->> 'outcome')) AS why
  FROM lowcode.record_history(:fault);

-- 13. A busier shift: six more severe faults. Each engineer claims the oldest open one.
SELECT lowcode.submit('inspection', 'fault_report',
                      jsonb_build_object('site', 'plant-5', 'severity', 4, 'machine', 'M-50' || n)) AS record_id
  FROM generate_series(1, 6) n;
SELECT lowcode.claim_task('engineers', 'alice') AS alice_1 \gset
SELECT lowcode.claim_task('engineers', 'bob')   AS bob_1 \gset
SELECT lowcode.claim_task('engineers', 'carol') AS carol_1 \gset
SELECT lowcode.claim_task('engineers', 'alice') AS alice_2 \gset
SELECT lowcode.claim_task('engineers', 'bob')   AS bob_2 \gset
SELECT lowcode.claim_task('engineers', 'carol') AS carol_2 \gset
SELECT lowcode.claim_task('engineers', 'dave') IS NULL AS nothing_left_for_dave;

-- Bob's and carol's second faults take too long. Instead of waiting 5 minutes, move their
-- deadlines into the past; the timer runner (call it every minute from pg_cron or a worker)
-- then fires deadline_passed:fix, and rule "overdue" emits "fault.overdue".
UPDATE lowcode.tasks  SET due_at  = now() - interval '1 minute' WHERE id IN (:bob_2, :carol_2);
UPDATE lowcode.timers SET fire_at = now() - interval '1 minute' WHERE task_id IN (:bob_2, :carol_2);
SELECT lowcode.run_due_timers() AS timers_fired;
DO $$
BEGIN
    IF (SELECT count(*) FROM lowcode.events WHERE topic = 'fault.overdue') <> 2 THEN
        RAISE EXCEPTION 'expected 2 fault.overdue events, got %',
            (SELECT count(*) FROM lowcode.events WHERE topic = 'fault.overdue');
    END IF;
END $$;

-- Everyone completes their work, on time or late.
SET lowcode.actor = 'alice';
SELECT lowcode.complete_task(:alice_1, 'fixed'), lowcode.complete_task(:alice_2, 'fixed');
SET lowcode.actor = 'bob';
SELECT lowcode.complete_task(:bob_1, 'fixed'), lowcode.complete_task(:bob_2, 'fixed');
SET lowcode.actor = 'carol';
SELECT lowcode.complete_task(:carol_1, 'fixed'), lowcode.complete_task(:carol_2, 'fixed');
RESET lowcode.actor;

-- 14. The score table: faults each engineer resolved, and how many within the 5 minutes.
SELECT t.completed_by AS engineer,
       count(*) AS resolved,
       count(*) FILTER (WHERE t.met_deadline) AS within_5_minutes
  FROM lowcode.tasks t
  JOIN lowcode.records r ON r.id = t.record_id
 WHERE t.name = 'fix' AND t.status = 'completed' AND r.state = 'resolved'
 GROUP BY t.completed_by
 ORDER BY within_5_minutes DESC, resolved DESC, engineer;
DO $$
DECLARE
    winner text := (SELECT engineer FROM race WHERE task IS NOT NULL);
    got jsonb;
    want jsonb;
BEGIN
    SELECT jsonb_object_agg(engineer, jsonb_build_array(resolved, on_time)) INTO got
      FROM (SELECT t.completed_by AS engineer, count(*) AS resolved,
                   count(*) FILTER (WHERE t.met_deadline) AS on_time
              FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id
             WHERE t.name = 'fix' AND t.status = 'completed' AND r.state = 'resolved'
             GROUP BY t.completed_by) scores;
    -- alice: 2 on time; bob and carol: 1 on time + 1 late; plus the race fault for its winner.
    want := jsonb_build_object('alice', jsonb_build_array(2 + (winner = 'alice')::int, 2 + (winner = 'alice')::int),
                               'bob',   jsonb_build_array(2 + (winner = 'bob')::int,   1 + (winner = 'bob')::int),
                               'carol', jsonb_build_array(2, 1));
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'score table is wrong: got %, want %', got, want;
    END IF;
    IF EXISTS (SELECT FROM lowcode.records WHERE app = 'inspection' AND state = 'open') THEN
        RAISE EXCEPTION 'every fault should be resolved by now';
    END IF;
END $$;

-- 15. Other systems learn about all this from the transactional outbox: a consumer of the
--     app's events polls them (at least once, in commit batches) and acknowledges them by the
--     delivery ids the poll returned.
SELECT lowcode.create_consumer('maintenance_board', '{"app": "inspection", "from": "beginning"}');
CREATE TEMP TABLE board AS SELECT * FROM lowcode.poll_events('maintenance_board');
SELECT topic, payload ->> 'record' AS record, payload -> 'data' ->> 'machine' AS machine FROM board ORDER BY id;
SELECT lowcode.ack_events('maintenance_board', array_agg(id)) AS acknowledged FROM board;
