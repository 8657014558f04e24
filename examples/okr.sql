-- OKRs: objectives, each measured by a few key results. Owners update their key results'
-- progress during the quarter; the objective's progress is rolled up automatically (the
-- weighted average of its key results), and an objective that reaches 100% is "achieved".
--
-- Shows: a rule on one form whose `call` action updates a record of another form (which in
-- turn runs that form's rules), lock-then-compute so concurrent updates roll up correctly
-- (shown with two sessions via dblink), and a report over the typed views.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/okr.sql
-- (as a superuser, or a user allowed to use dblink). Every step checks its own outcome and
-- stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;
CREATE EXTENSION IF NOT EXISTS dblink;

-- 1. Two forms. "progress" is a percentage; an objective's progress is computed, never typed.
SELECT lowcode.create_app('okr', 'Objectives and key results');
SELECT lowcode.define_form('okr', 'objective', '{
  "type": "object",
  "required": ["title", "owner", "quarter"],
  "properties": {
    "title":    {"type": "string", "minLength": 1},
    "owner":    {"type": "string"},
    "quarter":  {"type": "string", "pattern": "^[0-9]{4}-Q[1-4]$"},
    "progress": {"type": "number", "minimum": 0, "maximum": 100}
  }}') AS version;
SELECT lowcode.define_form('okr', 'key_result', '{
  "type": "object",
  "required": ["objective", "title", "progress"],
  "properties": {
    "objective": {"type": "integer"},
    "title":     {"type": "string", "minLength": 1},
    "progress":  {"type": "number", "minimum": 0, "maximum": 100},
    "weight":    {"type": "number", "exclusiveMinimum": 0, "description": "relative weight, 1 when absent"}
  }}') AS version;
SELECT lowcode.publish('okr') AS views;

-- 2. The roll-up. It first locks the objective's record, then computes: two key results of
--    one objective updated at the same time therefore roll up one after the other, and the
--    second one sees the first one's new progress. (Compute first and lock later, and the
--    second would write an average that misses the first update.)
CREATE FUNCTION okr.roll_up(key_result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    objective_id  bigint := (key_result -> 'data' ->> 'objective')::bigint;
    rolled        numeric;
BEGIN
    PERFORM FROM lowcode.records WHERE id = objective_id AND app = 'okr' AND form = 'objective' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'okr: there is no objective %', objective_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT coalesce(round(sum(k.progress * coalesce(k.weight, 1)) / sum(coalesce(k.weight, 1)), 1), 0)
      INTO rolled
      FROM okr.key_result k
     WHERE k.objective = objective_id AND k.state = 'active';
    -- Write only when it changed (so the objective's history shows real changes only).
    UPDATE lowcode.records
       SET data = data || jsonb_build_object('progress', rolled)
     WHERE id = objective_id AND data -> 'progress' IS DISTINCT FROM to_jsonb(rolled);
END $$;

-- 3. Workflows. A key result rolls up when it is created, updated, or dropped (a dropped key
--    result no longer counts). lowcode has no "deleted" event, so dropping is a transition,
--    which also keeps the key result's history. An objective at 100% becomes "achieved"
--    (and back to "active" if a key result is lowered again); "close" ends it.
SELECT lowcode.define_workflow('okr', 'key_result', '{
  "states": {"active": {"initial": true}, "dropped": {"final": true}},
  "transitions": [{"name": "drop", "from": "active", "to": "dropped"}],
  "rules": [
    {"name": "roll_up_new",     "on": "created",         "then": [{"call": "okr.roll_up"}]},
    {"name": "roll_up_changed", "on": "updated",         "then": [{"call": "okr.roll_up"}]},
    {"name": "roll_up_dropped", "on": "entered:dropped", "then": [{"call": "okr.roll_up"}]}
  ]}') AS workflow_version;
SELECT lowcode.define_workflow('okr', 'objective', '{
  "states": {"active": {"initial": true}, "achieved": {}, "closed": {"final": true}},
  "transitions": [{"name": "close", "from": ["active", "achieved"], "to": "closed"}],
  "rules": [
    {"name": "achieved", "on": "updated",
     "when": {"required": ["progress"], "properties": {"progress": {"minimum": 100}}},
     "then": [{"transition": "achieved"}]},
    {"name": "not_yet", "on": "updated",
     "when": {"required": ["progress"], "properties": {"progress": {"exclusiveMaximum": 100}}},
     "then": [{"transition": "active"}]},
    {"name": "celebrate", "on": "entered:achieved", "then": [{"emit": {"topic": "okr.achieved"}}]}
  ]}') AS workflow_version;

-- A check used below: fail unless the objective shows the expected progress and state.
CREATE FUNCTION pg_temp.expect(objective_title text, progress numeric, state text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE o record;
BEGIN
    SELECT * INTO o FROM okr.objective WHERE title = objective_title;
    IF (o.progress, o.state) IS DISTINCT FROM (expect.progress, expect.state) THEN
        RAISE EXCEPTION 'objective "%" should be at % %% (%), but is at % %% (%)',
            objective_title, expect.progress, expect.state, o.progress, o.state;
    END IF;
    RETURN format('%s: %s%% %s', objective_title, o.progress, o.state);
END $$;

-- 4. An objective and its key results. Each new key result rolls up at once.
INSERT INTO okr.objective (title, owner, quarter) VALUES ('Faster checkout', 'mei', '2026-Q2')
RETURNING id AS checkout \gset
INSERT INTO okr.key_result (objective, title, progress, weight) VALUES
    (:checkout, 'p95 checkout latency under 300 ms', 20, 2),
    (:checkout, 'payment errors below 0.1%',         50, 1),
    (:checkout, 'one-click checkout shipped',         0, 1);
SELECT id, title, progress, weight, state FROM okr.key_result ORDER BY id;
SELECT pg_temp.expect('Faster checkout', 22.5, 'active');   -- (20*2 + 50 + 0) / 4

-- 5. Updates through the quarter. Each UPDATE of a key result runs its rule, which updates
--    the objective, which runs the objective's rules.
UPDATE okr.key_result SET progress = 60 WHERE title LIKE 'p95%';
SELECT pg_temp.expect('Faster checkout', 42.5, 'active');   -- (60*2 + 50 + 0) / 4
SELECT lowcode.update_record(id, data || '{"progress": 100}') AS revision
  FROM lowcode.records WHERE app = 'okr' AND form = 'key_result' AND data ->> 'title' = 'one-click checkout shipped';
SELECT pg_temp.expect('Faster checkout', 67.5, 'active');   -- (60*2 + 50 + 100) / 4

-- The payment key result turns out to be out of reach this quarter: it is dropped, and the
-- objective is re-computed from the other two.
SELECT lowcode.transition(id, 'drop') AS state FROM okr.key_result WHERE title LIKE 'payment%';
SELECT pg_temp.expect('Faster checkout', 73.3, 'active');   -- (60*2 + 100) / 3

-- Latency done: the objective reaches 100% and is achieved.
UPDATE okr.key_result SET progress = 100 WHERE title LIKE 'p95%';
SELECT pg_temp.expect('Faster checkout', 100, 'achieved');

-- A regression is found and latency goes back to 90%: the objective is active again.
UPDATE okr.key_result SET progress = 90 WHERE title LIKE 'p95%';
SELECT pg_temp.expect('Faster checkout', 93.3, 'active');   -- (90*2 + 100) / 3
UPDATE okr.key_result SET progress = 100 WHERE title LIKE 'p95%';
SELECT pg_temp.expect('Faster checkout', 100, 'achieved');
DO $$
BEGIN
    IF (SELECT count(*) FROM lowcode.events WHERE topic = 'okr.achieved') <> 2 THEN
        RAISE EXCEPTION 'okr.achieved should have been emitted twice (achieved, lowered, achieved again)';
    END IF;
END $$;

-- A key result must point at an objective that exists.
DO $$
BEGIN
    INSERT INTO okr.key_result (objective, title, progress) VALUES (999999, 'orphan', 10);
    RAISE EXCEPTION 'a key result of a missing objective should be refused';
EXCEPTION WHEN foreign_key_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- The objective's history: every roll-up, and which rule moved it.
SELECT h.revision, h.action, h.after ->> 'progress' AS progress, h.from_state, h.to_state, h.detail ->> 'rule' AS rule
  FROM lowcode.history h JOIN okr.objective o ON o.id = h.record_id
 WHERE o.title = 'Faster checkout' AND h.action <> 'rule_action'
 ORDER BY h.id;

-- 6. Two owners update two key results of the same objective at the same moment, each from
--    their own session (dblink opens them here; each holds its transaction open a moment).
--    The objective must end up with both updates counted.
INSERT INTO okr.objective (title, owner, quarter) VALUES ('Happier support', 'jun', '2026-Q2')
RETURNING id AS support \gset
INSERT INTO okr.key_result (objective, title, progress) VALUES
    (:support, 'CSAT above 4.5', 0),
    (:support, 'first reply under 1 hour', 0);
SELECT pg_temp.expect('Happier support', 0, 'active');

SELECT format('dbname=%s port=%s host=%s user=%s options=-clock_timeout=10s', current_database(), current_setting('port'),
              coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''), 'localhost'),
              current_user) AS here \gset
SELECT dblink_connect('owner_1', :'here'), dblink_connect('owner_2', :'here');
SELECT dblink_send_query('owner_1', $$UPDATE okr.key_result SET progress = 40 WHERE title = 'CSAT above 4.5' RETURNING pg_sleep(0.3)::text$$),
       dblink_send_query('owner_2', $$UPDATE okr.key_result SET progress = 80 WHERE title = 'first reply under 1 hour' RETURNING pg_sleep(0.3)::text$$);
SELECT * FROM dblink_get_result('owner_1') AS r(slept text);
SELECT * FROM dblink_get_result('owner_1') AS r(slept text);
SELECT * FROM dblink_get_result('owner_2') AS r(slept text);
SELECT * FROM dblink_get_result('owner_2') AS r(slept text);
SELECT dblink_disconnect('owner_1'), dblink_disconnect('owner_2');
SELECT pg_temp.expect('Happier support', 60, 'active');     -- (40 + 80) / 2, whoever went first

-- 7. The quarter's report, then closing.
SELECT o.title AS objective, o.owner, o.progress AS objective_pct, o.state,
       k.title AS key_result, k.progress AS kr_pct, coalesce(k.weight, 1) AS weight, k.state AS kr_state
  FROM okr.objective o LEFT JOIN okr.key_result k ON k.objective = o.id
 ORDER BY o.id, k.id;
SELECT lowcode.transition(id, 'close') AS state FROM okr.objective WHERE quarter = '2026-Q2' ORDER BY id;
DO $$
BEGIN
    IF EXISTS (SELECT FROM okr.objective WHERE state <> 'closed') THEN
        RAISE EXCEPTION 'every objective of the quarter should be closed';
    END IF;
END $$;
