-- bench/s9_growth.sql — scenario 9: every runtime function's cost as its tables grow. The same
-- calls (bench/pgbench/s9_*.sql: submit, claim + complete, transition, update_record, decide;
-- one client) timed with 10k, 100k and 1M records of one form in lowcode's tables, each record
-- with its history, half of them with an open pool task and its pending deadline timer (the
-- pool grows with the records: the backlog the issue saw), a quarter with a pending approval,
-- its open task and deadline.
--
-- The tables grow through lowcode.submit itself (bench.s9_grow), so every row is one lowcode
-- wrote. Poll cost against the outbox's size is scenario 5's (10k and 1M events waiting).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- The inspection fault report again (app insp), with scenario 8's workflow on a form of its
-- own: transitions start (open → working) and pause (back); a severe fault (severity ≥ 4)
-- gets a task 'check' in pool 's9' with a one-day deadline; a fault of severity 3 needs the
-- sign-off of one approver (the role running the benchmark) within a day: its approval task
-- and deadline (approved: the record moves to working).
SELECT lowcode.define_form('insp', 'fault_s9', f.schema) FROM bench.forms f WHERE f.form = 'small';
SELECT lowcode.define_workflow('insp', 'fault_s9', pg_catalog.replace('{
  "states": {"open": {"initial": true}, "working": {}},
  "transitions": [{"name": "start", "from": "open", "to": "working"},
                  {"name": "pause", "from": "working", "to": "open"}],
  "rules": [
    {"name": "route", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "check", "pool": "s9", "due": "1 day"}}]},
    {"name": "sign", "on": "created", "when": {"properties": {"severity": {"const": 3}}},
     "then": [{"approval": {"name": "sign", "mode": "any", "approvers": ["$me"],
                            "on_approve": "working", "on_reject": "open", "due": "1 day"}}]}
  ]}', '$me', current_user)::jsonb);
SELECT lowcode.publish('insp');

-- The records transition and update_record work on: 1,000 each, made first (ids first_id ..
-- first_id + 999), severity 2 (no task).
CREATE TABLE bench.s9_ranges (kind text PRIMARY KEY, first_id bigint NOT NULL, rows int NOT NULL);

-- n records of fault_s9 through lowcode.submit in one statement, every other one severe (a task
-- and its deadline) and every fourth one of severity 3 (an approval, its task and deadline)
-- unless `severity` says; returns the first id.
CREATE FUNCTION bench.s9_submit(n int, severity int DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    SELECT min(s.id) FROM (
        SELECT lowcode.submit('insp', 'fault_s9',
                              jsonb_set(bench.small_valid_doc(i), '{severity}',
                                        to_jsonb(coalesce(severity, CASE WHEN i % 2 = 0 THEN 5 WHEN i % 4 = 1 THEN 3 ELSE 2 END)))) AS id
          FROM generate_series(1, n) i) s
$$;

CREATE FUNCTION bench.s9_prepare() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.s9_ranges VALUES ('move', bench.s9_submit(1000, 2), 1000);
    INSERT INTO bench.s9_ranges VALUES ('edit', bench.s9_submit(1000, 2), 1000);
END $$;

-- Grow fault_s9 to `target` records (in statements of 50,000 submits); the number it has.
CREATE PROCEDURE bench.s9_grow(target int)
LANGUAGE plpgsql AS $$
DECLARE
    have int;
BEGIN
    LOOP
        SELECT count(*) INTO have FROM lowcode.records r WHERE r.app = 'insp' AND r.form = 'fault_s9';
        EXIT WHEN have >= target;
        PERFORM bench.s9_submit(least(50000, target - have));
        COMMIT;
    END LOOP;
END $$;

-- Before a run of decide: n new records of severity 3, each with its approval and one approval
-- task, claimed by the role running the benchmark (its approver); returns the first task's id
-- (the n tasks' ids follow on from it: checked).
CREATE FUNCTION bench.s9_approvals(n int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    first_record bigint := bench.s9_submit(n, 3);
    first_task   bigint;
    last_task    bigint;
    tasks        bigint;
BEGIN
    SELECT min(t.id), max(t.id), count(*) INTO first_task, last_task, tasks
      FROM lowcode.tasks t
     WHERE t.record_id BETWEEN first_record AND first_record + n - 1 AND t.approval_id IS NOT NULL
       AND t.status = 'claimed';
    IF tasks <> n OR last_task - first_task + 1 <> n THEN
        RAISE EXCEPTION 's9_approvals: % claimed approval tasks with ids % .. %, want % in a row', tasks, first_task, last_task, n;
    END IF;
    RETURN first_task;
END $$;

-- Before each run: the moved records back in 'open' (through transition 'pause').
CREATE FUNCTION bench.s9_reset() RETURNS void
LANGUAGE sql AS $$
    SELECT count(lowcode.transition(r.id, 'pause')) FROM lowcode.records r, bench.s9_ranges m
     WHERE m.kind = 'move' AND r.id BETWEEN m.first_id AND m.first_id + m.rows - 1 AND r.state = 'working';
$$;

-- What a size is: the rows of the tables the calls touch, into bench.results (metric
-- 'rows <table>'; pool: the open tasks of pool s9).
CREATE FUNCTION bench.s9_sizes(item text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
    SELECT '9', item, 'tables', 1, 'rows ' || t, n
      FROM (VALUES ('records', (SELECT count(*) FROM lowcode.records)),
                   ('history', (SELECT count(*) FROM lowcode.history)),
                   ('tasks', (SELECT count(*) FROM lowcode.tasks)),
                   ('open tasks in the pool', (SELECT count(*) FROM lowcode.tasks WHERE pool = 's9' AND status = 'open')),
                   ('pending approvals', (SELECT count(*) FROM lowcode.approvals WHERE status = 'pending')),
                   ('pending timers', (SELECT count(*) FROM lowcode.timers WHERE status = 'pending'))) AS s(t, n);
$$;
