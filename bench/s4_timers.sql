-- bench/s4_timers.sql — scenario 4: 100k due task deadlines of the inspection workflow
-- (deadline_passed:fix → rule "overdue" → an outbox event), fired by lowcode.run_due_timers
-- from 1 and from 2 concurrent callers; the baseline marks plain due rows fired and writes an
-- outbox row for each, in set-based batches of the same size.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- n open tasks in pool "deadlines", each with a deadline timer that is due (distinct fire_at
-- values, all in the past), and n plain due rows. The other pending timers (the 5-minute
-- deadlines of scenario 2's submits) are cancelled first: coming due during a run, they would
-- be fired and counted too.
CREATE FUNCTION bench.s4_prepare(n int) RETURNS void
LANGUAGE sql AS $$
    UPDATE lowcode.timers SET status = 'cancelled' WHERE status = 'pending';
    WITH t AS (
        INSERT INTO lowcode.tasks (record_id, name, pool, title, due_at, created_at, app, form)
        SELECT (SELECT min(id) FROM bench.hosts) + g % 1000, 'fix', 'deadlines', 'fix',
               now() - interval '1 hour' + g * interval '1 ms', now() - interval '2 hours',
               'insp', 'fault_wf'
          FROM generate_series(0, n - 1) g
        RETURNING id, record_id, due_at, app)
    INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at, app)
    SELECT record_id, 'fix', 'deadline_passed:fix', id, due_at, app FROM t ORDER BY id;
    INSERT INTO bench.timers_raw (record_id, event, fire_at)
    SELECT (SELECT min(id) FROM bench.hosts) + g % 1000, 'deadline_passed:fix',
           now() - interval '1 hour' + g * interval '1 ms'
      FROM generate_series(0, n - 1) g;
$$;

-- Make every timer of the set due again (after a run fired some of them).
CREATE FUNCTION bench.s4_reset() RETURNS void
LANGUAGE sql AS $$
    UPDATE lowcode.timers SET status = 'pending', fired_at = NULL, error = NULL
     WHERE status <> 'pending' AND event = 'deadline_passed:fix'
       AND task_id IN (SELECT id FROM lowcode.tasks WHERE pool = 'deadlines');
    UPDATE bench.timers_raw SET status = 'pending', fired_at = NULL WHERE status <> 'pending';
$$;

-- A caller: run_due_timers(1000) and commit, until nothing is due or cap_s seconds passed.
CREATE PROCEDURE bench.fire_timers(run text, worker int, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    n int; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        n := lowcode.run_due_timers(1000);
        total := total + n;
        COMMIT;
        EXIT WHEN n = 0 OR clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

-- The physical baseline caller: the same batches, set-based, on the plain table.
CREATE PROCEDURE bench.fire_timers_raw(run text, worker int, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    n int; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        WITH due AS (
            SELECT id FROM bench.timers_raw
             WHERE status = 'pending' AND fire_at <= now()
             ORDER BY fire_at, id LIMIT 1000
               FOR UPDATE SKIP LOCKED
        ), fired AS (
            UPDATE bench.timers_raw t SET status = 'fired', fired_at = now()
              FROM due WHERE t.id = due.id
            RETURNING t.id, t.record_id, t.event
        ), emitted AS (
            INSERT INTO bench.outbox_raw (topic, record_id, payload)
            SELECT 'fault.overdue', record_id, jsonb_build_object('timer', id, 'event', event) FROM fired
            RETURNING 1
        )
        SELECT count(*) INTO n FROM emitted;
        total := total + n;
        COMMIT;
        EXIT WHEN n = 0 OR clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

-- After a lowcode run: fired timers = what the callers counted, each fired once (one
-- timer_fired history row and one fault.overdue event each), none failed.
CREATE FUNCTION bench.s4_check(run text, item text, rep int, n int, history_mark bigint, event_mark bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint; fired bigint; failed bigint; fire_rows bigint; distinct_timers bigint; events bigint;
    elapsed float8;
BEGIN
    SELECT sum(items), extract(epoch FROM max(finished) - min(started)) INTO counted, elapsed
      FROM bench.runs r WHERE r.run = s4_check.run;
    SELECT count(*) FILTER (WHERE status = 'fired'), count(*) FILTER (WHERE status = 'failed')
      INTO fired, failed
      FROM lowcode.timers WHERE event = 'deadline_passed:fix'
       AND task_id IN (SELECT id FROM lowcode.tasks WHERE pool = 'deadlines');
    SELECT count(*), count(DISTINCT detail ->> 'timer') INTO fire_rows, distinct_timers
      FROM lowcode.history WHERE id > history_mark AND action = 'timer_fired';
    SELECT count(*) INTO events FROM lowcode.events WHERE id > event_mark AND topic = 'fault.overdue';
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('4', item, 'lowcode run_due_timers', rep, 'per_s', counted / elapsed),
        ('4', item, 'lowcode run_due_timers', rep, 'fired', counted),
        ('4', item, 'lowcode run_due_timers', rep, 'seconds', elapsed),
        ('4', item, 'lowcode run_due_timers', rep, 'projected_100k_s', n / (counted / elapsed)),
        ('4', item, 'lowcode run_due_timers', rep, 'exactly_once',
            CASE WHEN fired = counted AND failed = 0 AND fire_rows = counted AND distinct_timers = counted
                      AND events = counted THEN 1 ELSE 0 END);
END $$;

CREATE FUNCTION bench.s4_check_raw(run text, item text, rep int, n int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint; elapsed float8;
BEGIN
    SELECT sum(items), extract(epoch FROM max(finished) - min(started)) INTO counted, elapsed
      FROM bench.runs r WHERE r.run = s4_check_raw.run;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('4', item, 'baseline: plain table', rep, 'per_s', counted / elapsed),
        ('4', item, 'baseline: plain table', rep, 'fired', counted),
        ('4', item, 'baseline: plain table', rep, 'seconds', elapsed),
        ('4', item, 'baseline: plain table', rep, 'projected_100k_s', n / (counted / elapsed));
END $$;
