-- bench/s8_actions.sql — scenario 8: the per-action paths lowcode.transition,
-- lowcode.update_record and lowcode.complete_task (pgbench, bench/pgbench/s8_*.sql), each
-- against one hand-written statement writing the same rows into plain tables.
--
-- What each call writes, with the workflow below (no rule listens to what these calls fire,
-- so none runs; checked per run by bench.s8_writes from the table statistics):
--   transition     records: 1 UPDATE (state, revision + 1, updated_at, updated_by);
--                  history: 1 INSERT ('transition', from_state, to_state, detail {transition})
--   update_record  records: 1 UPDATE (data, revision + 1, updated_at, updated_by);
--                  history: 1 INSERT ('updated', before and after data)
--   complete_task  tasks: 1 UPDATE (status, outcome, result, completed_by/_at, met_deadline);
--                  timers: 1 UPDATE (its pending deadline cancelled);
--                  history: 1 INSERT ('task_completed', detail {task, name, outcome, data, met_deadline})
-- The baselines (bench/pgbench/s8_*_plain.sql) write exactly these rows into
-- bench.s8_*_plain: copies of lowcode.records, history, tasks and timers made with
-- CREATE TABLE ... (LIKE lowcode.x INCLUDING DEFAULTS INCLUDING INDEXES), so the same
-- columns, NOT NULLs, defaults and indexes; no foreign keys, CHECKs, triggers or row level
-- security. (bench/setup.sql's tasks and timers mirrors predate lowcode.tasks' app, form,
-- outcomes, result_schema and events columns and lowcode.timers' index on task_id.)
--
-- Every pgbench client works on its own rows (by :client_id): a block of records that
-- transitions move open → working → open, a block that update_record edits, and a share of
-- the tasks claimed by the bench's role that complete_task completes, one after the other.
-- bench.s8_reset puts everything back before each run.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- ------------------------------------------------------------------ form and workflow
-- The inspection fault report again (app insp, bench/setup.sql), with a workflow that has a
-- pair of transitions back and forth and one rule: a severe fault (severity ≥ 4) gets a
-- task 'check' in pool 's8' with a one-day deadline (a timer). Records of severity 2 get
-- none. No rule listens to transitions, updates or completed tasks, and no task emits events.
SELECT lowcode.define_form('insp', 'fault_s8', f.schema) FROM bench.forms f WHERE f.form = 'small';
SELECT lowcode.define_workflow('insp', 'fault_s8', '{
  "states": {"open": {"initial": true}, "working": {}},
  "transitions": [{"name": "start", "from": "open", "to": "working"},
                  {"name": "pause", "from": "working", "to": "open"}],
  "rules": [
    {"name": "route", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "check", "pool": "s8", "due": "1 day"}}]}
  ]}');
SELECT lowcode.publish('insp');

-- ------------------------------------------------------------------ plain tables
CREATE TABLE bench.s8_records_plain (LIKE lowcode.records INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.s8_history_plain (LIKE lowcode.history INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.s8_tasks_plain (LIKE lowcode.tasks INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.s8_timers_plain (LIKE lowcode.timers INCLUDING DEFAULTS INCLUDING INDEXES);
-- (LIKE copies the id defaults with lowcode's sequences: each table gets its own.)
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['records', 'history', 'tasks', 'timers'] LOOP
        EXECUTE format('CREATE SEQUENCE bench.s8_%1$s_plain_id_seq OWNED BY bench.s8_%1$s_plain.id', t);
        EXECUTE format('ALTER TABLE bench.s8_%1$s_plain ALTER COLUMN id SET DEFAULT nextval(%2$L)',
                       t, format('bench.s8_%s_plain_id_seq', t));
    END LOOP;
END $$;

-- The rows of each kind, ids first_id .. first_id + rows - 1 in lowcode's tables and
-- first_id .. first_id + plain_rows - 1 in the plain ones (the first `rows` the same rows):
--   move  records for transition; pgbench client c moves records first_id + c * per ... (per:
--         records_per_slot, -D per=)
--   edit  records for update_record, the same way
--   task  claimed tasks; with C clients, client c completes tasks first_id + c * (rows / C) ...
--         one after the other (so one client may use them all). The plain copy has more of them
--         (plain_rows: the baseline is faster): the extra ones are copies of lowcode's tasks and
--         their deadlines, on the same records.
CREATE TABLE bench.s8_ranges (
    kind        text PRIMARY KEY,
    first_id    bigint NOT NULL,
    rows        int NOT NULL,
    plain_rows  int NOT NULL
);

-- Called by a pgbench script when a client has used up its tasks (the run is longer than the
-- supply: raise it in scripts/bench.sh).
CREATE FUNCTION bench.s8_exhausted(kind text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'scenario 8: a client used up its % rows: raise s8_task_rate / s8_plain_task_rate in scripts/bench.sh', kind;
END $$;

-- n records of form fault_s8 (severity 2: no rule; 5: a task and its deadline) through
-- lowcode.submit, in one statement of this session: consecutive ids. Returns the first id.
CREATE FUNCTION bench.s8_submit(n int, severity int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint; hi bigint; cnt bigint;
BEGIN
    SELECT min(id), max(id), count(*) INTO lo, hi, cnt
      FROM (SELECT lowcode.submit('insp', 'fault_s8', jsonb_set(bench.small_valid_doc(i), '{severity}', to_jsonb(severity))) AS id
              FROM generate_series(1, n) i) s;
    IF cnt <> n OR hi - lo + 1 <> n THEN
        RAISE EXCEPTION 'scenario 8: % records got ids % .. %, not consecutive', cnt, lo, hi;
    END IF;
    RETURN lo;
END $$;

-- slots × records_per_slot records to move, as many to edit, `tasks` claimed tasks (each on its
-- own record, with its pending deadline), all copied into the plain tables, and there
-- `plain_tasks` tasks in all.
CREATE FUNCTION bench.s8_prepare(slots int, records_per_slot int, tasks int, plain_tasks int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint; hi bigint; cnt bigint; first_task bigint;
BEGIN
    INSERT INTO bench.s8_ranges VALUES ('move', bench.s8_submit(slots * records_per_slot, 2), slots * records_per_slot, slots * records_per_slot);
    INSERT INTO bench.s8_ranges VALUES ('edit', bench.s8_submit(slots * records_per_slot, 2), slots * records_per_slot, slots * records_per_slot);
    lo := bench.s8_submit(tasks, 5);
    hi := lo + tasks - 1;
    SELECT min(t.id), max(t.id), count(*) INTO first_task, hi, cnt
      FROM lowcode.tasks t WHERE t.record_id BETWEEN lo AND hi;
    IF cnt <> tasks OR hi - first_task + 1 <> cnt THEN
        RAISE EXCEPTION 'scenario 8: % tasks with ids % .. %, expected % consecutive', cnt, first_task, hi, tasks;
    END IF;
    INSERT INTO bench.s8_ranges VALUES ('task', first_task, tasks, greatest(tasks, plain_tasks));
    -- Claimed by this role (lowcode.actor() of the pgbench clients), through lowcode (after
    -- ANALYZE: with the statistics of an empty pool, each claim takes ~7 × longer).
    ANALYZE lowcode.tasks;
    PERFORM count(lowcode.claim_task(t.id)) FROM lowcode.tasks t WHERE t.id BETWEEN first_task AND hi;
    IF EXISTS (SELECT FROM lowcode.tasks t WHERE t.id BETWEEN first_task AND hi
                 AND (t.status <> 'claimed' OR t.claimed_by <> lowcode.actor(t.app))) THEN
        RAISE EXCEPTION 'scenario 8: not every task is claimed by %', current_user;
    END IF;

    INSERT INTO bench.s8_records_plain SELECT r.* FROM lowcode.records r WHERE r.app = 'insp' AND r.form = 'fault_s8' ORDER BY r.id;
    INSERT INTO bench.s8_history_plain SELECT h.* FROM lowcode.history h WHERE h.app = 'insp' AND h.form = 'fault_s8' ORDER BY h.id;
    INSERT INTO bench.s8_tasks_plain SELECT t.* FROM lowcode.tasks t WHERE t.app = 'insp' AND t.form = 'fault_s8' ORDER BY t.id;
    INSERT INTO bench.s8_timers_plain SELECT m.* FROM lowcode.timers m
      WHERE m.record_id IN (SELECT r.id FROM bench.s8_records_plain r) ORDER BY m.id;
    -- The plain supply's extra tasks: task first_task + j copies task first_task + j % tasks,
    -- with a copy of its deadline.
    lo := (SELECT max(m.id) FROM bench.s8_timers_plain m);
    INSERT INTO bench.s8_tasks_plain
    SELECT c.*
      FROM generate_series(tasks, plain_tasks - 1) j
      JOIN bench.s8_tasks_plain t ON t.id = first_task + j % tasks,
           LATERAL jsonb_populate_record(t, jsonb_build_object('id', first_task + j)) c
     ORDER BY j;
    INSERT INTO bench.s8_timers_plain
    SELECT c.*
      FROM generate_series(tasks, plain_tasks - 1) j
      JOIN bench.s8_timers_plain m ON m.task_id = first_task + j % tasks,
           LATERAL jsonb_populate_record(m, jsonb_build_object('id', lo + 1 + j - tasks, 'task_id', first_task + j)) c
     ORDER BY j;
    PERFORM setval('bench.s8_records_plain_id_seq', (SELECT max(id) FROM bench.s8_records_plain)),
            setval('bench.s8_history_plain_id_seq', (SELECT max(id) FROM bench.s8_history_plain)),
            setval('bench.s8_tasks_plain_id_seq', (SELECT max(id) FROM bench.s8_tasks_plain)),
            setval('bench.s8_timers_plain_id_seq', (SELECT max(id) FROM bench.s8_timers_plain));
END $$;

-- Before each run: the moved records back in state 'open' (lowcode: through transition
-- 'pause'; plain: the same columns), the completed tasks claimed again and their deadlines
-- pending again (lowcode has no call that reopens a task: the same UPDATE in both).
CREATE FUNCTION bench.s8_reset() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m bench.s8_ranges := (SELECT x FROM bench.s8_ranges x WHERE x.kind = 'move');
    t bench.s8_ranges := (SELECT x FROM bench.s8_ranges x WHERE x.kind = 'task');
BEGIN
    PERFORM count(lowcode.transition(r.id, 'pause')) FROM lowcode.records r
      WHERE r.id BETWEEN m.first_id AND m.first_id + m.rows - 1 AND r.state = 'working';
    UPDATE bench.s8_records_plain r
       SET state = 'open', revision = r.revision + 1, updated_at = now(), updated_by = current_user
     WHERE r.id BETWEEN m.first_id AND m.first_id + m.rows - 1 AND r.state = 'working';
    UPDATE lowcode.tasks x
       SET status = 'claimed', outcome = NULL, result = NULL, completed_by = NULL, completed_at = NULL, met_deadline = NULL
     WHERE x.id BETWEEN t.first_id AND t.first_id + t.rows - 1 AND x.status = 'completed';
    UPDATE lowcode.timers x SET status = 'pending'
     WHERE x.task_id BETWEEN t.first_id AND t.first_id + t.rows - 1 AND x.status = 'cancelled';
    UPDATE bench.s8_tasks_plain x
       SET status = 'claimed', outcome = NULL, result = NULL, completed_by = NULL, completed_at = NULL, met_deadline = NULL
     WHERE x.id BETWEEN t.first_id AND t.first_id + t.plain_rows - 1 AND x.status = 'completed';
    UPDATE bench.s8_timers_plain x SET status = 'pending'
     WHERE x.task_id BETWEEN t.first_id AND t.first_id + t.plain_rows - 1 AND x.status = 'cancelled';
END $$;

-- ------------------------------------------------------------------ rows written per call
-- The tables each variant may write, by short name (lowcode's, or the plain copies).
CREATE FUNCTION bench.s8_tables(plain bool) RETURNS TABLE (name text, rel regclass)
LANGUAGE sql AS $$
    SELECT n, CASE WHEN plain THEN format('bench.s8_%s_plain', n) ELSE format('lowcode.%s', n) END::regclass
      FROM unnest(ARRAY['records', 'history', 'tasks', 'timers']) n
    UNION ALL
    SELECT 'events', 'lowcode.events'::regclass WHERE NOT plain
$$;

CREATE TABLE bench.s8_marks (rel regclass PRIMARY KEY, ins bigint, upd bigint, del bigint);

-- The cumulative row counts of the tables, right before a run.
CREATE FUNCTION bench.s8_mark() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_stat_clear_snapshot();
    DELETE FROM bench.s8_marks;
    INSERT INTO bench.s8_marks
    SELECT s.relid, s.n_tup_ins, s.n_tup_upd, s.n_tup_del
      FROM pg_stat_user_tables s WHERE s.relid IN (SELECT t.rel FROM bench.s8_tables(false) t UNION SELECT t.rel FROM bench.s8_tables(true) t);
END $$;

-- After a run of `transactions` calls: the rows inserted / updated / deleted per call in each
-- table, into bench.results (metric 'writes <table> <ins|upd|del>'; zeros left out). The
-- pgbench backends report their counts when they exit: wait until they are gone.
CREATE FUNCTION bench.s8_writes(item text, variant text, rep int, plain bool, transactions bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '10 seconds';
BEGIN
    WHILE EXISTS (SELECT FROM pg_stat_activity a
                   WHERE a.datname = current_database() AND a.backend_type = 'client backend'
                     AND a.pid <> pg_backend_pid())
          AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    PERFORM pg_sleep(0.5);
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
    SELECT '8', item, variant, rep, format('writes %s %s', t.name, w.kind), w.n::float8 / transactions
      FROM bench.s8_tables(plain) t
      JOIN pg_stat_user_tables s ON s.relid = t.rel
      JOIN bench.s8_marks k ON k.rel = t.rel,
           LATERAL (VALUES ('ins', s.n_tup_ins - k.ins), ('upd', s.n_tup_upd - k.upd), ('del', s.n_tup_del - k.del)) w(kind, n)
     WHERE w.n <> 0;
END $$;
