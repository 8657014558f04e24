-- bench/s10_mixed.sql — scenario 10: a mixed load, each kind of work alone and all together,
-- on one form: submitters (lowcode.submit: a record, its task in pool s10 with a deadline 5 s
-- out, an outbox event), claimers (claim_task + complete_task on that pool), two outbox
-- consumers (poll_events + ack_events) and a timer caller (run_due_timers, as the worker calls
-- it: the deadlines of tasks nobody claimed in time fire). Rates are counted from what each
-- kind did (records written, tasks completed, events acknowledged, timers fired), and a
-- sampler counts how often a client waited on a lock.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

SELECT lowcode.define_form('insp', 'fault_s10', f.schema) FROM bench.forms f WHERE f.form = 'small';
SELECT lowcode.define_workflow('insp', 'fault_s10', '{
  "states": {"open": {"initial": true}},
  "rules": [
    {"name": "route", "on": "created",
     "then": [{"task": {"name": "check", "pool": "s10", "due": "5 seconds"}},
              {"emit": {"topic": "insp.s10"}}]}
  ]}');
SELECT lowcode.publish('insp');

-- What each kind did in a run.
CREATE TABLE bench.s10_counts (run text, kind text, n bigint, at timestamptz DEFAULT clock_timestamp());

-- n records of fault_s10 in one statement (the supply the claimers, consumers and timer
-- caller start from).
CREATE FUNCTION bench.s10_prefill(n int) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(lowcode.submit('insp', 'fault_s10', bench.small_valid_doc(i))) FROM generate_series(1, n) i
$$;

-- An outbox consumer for stop_s seconds: polls up to 100, acknowledges them; counts.
CREATE PROCEDURE bench.s10_consume(consumer text, run text, stop_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; t0 timestamptz := clock_timestamp(); acked bigint := 0;
BEGIN
    WHILE clock_timestamp() - t0 < stop_s * interval '1 s' LOOP
        SELECT array_agg(e.id) INTO ids FROM lowcode.poll_events(consumer, 100) e;
        COMMIT;
        IF ids IS NULL THEN
            PERFORM pg_sleep(0.01);
        ELSE
            PERFORM lowcode.ack_events(consumer, ids);
            COMMIT;
            acked := acked + cardinality(ids);
        END IF;
    END LOOP;
    INSERT INTO bench.s10_counts (run, kind, n) VALUES (run, 'consumers', acked);
END $$;

-- The timer caller for stop_s seconds: run_due_timers(1000), then 50 ms of sleep when there
-- was nothing due (the worker's loop, without the worker).
CREATE PROCEDURE bench.s10_timers(run text, stop_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp(); fired bigint := 0; k int;
BEGIN
    WHILE clock_timestamp() - t0 < stop_s * interval '1 s' LOOP
        k := lowcode.run_due_timers(1000);
        COMMIT;
        fired := fired + k;
        IF k = 0 THEN
            PERFORM pg_sleep(0.05);
        END IF;
    END LOOP;
    INSERT INTO bench.s10_counts (run, kind, n) VALUES (run, 'timers', fired);
END $$;

-- Every 100 ms for stop_s seconds: how many of the database's other client sessions are
-- active, and how many of them wait on a lock.
CREATE PROCEDURE bench.s10_sample(run text, stop_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp(); active bigint := 0; waiting bigint := 0; a bigint; w bigint;
BEGIN
    WHILE clock_timestamp() - t0 < stop_s * interval '1 s' LOOP
        SELECT count(*) FILTER (WHERE s.state = 'active'),
               count(*) FILTER (WHERE s.state = 'active' AND s.wait_event_type = 'Lock')
          INTO a, w
          FROM pg_stat_activity s
         WHERE s.datname = current_database() AND s.backend_type = 'client backend' AND s.pid <> pg_backend_pid();
        active := active + a;
        waiting := waiting + w;
        IF w > 0 THEN
            -- Who waited, on what (kept per run: the report names them).
            INSERT INTO bench.s10_counts (run, kind, n)
            SELECT run, 'waits: ' || s.wait_event || ' · ' || left(regexp_replace(s.query, '\s+', ' ', 'g'), 80), 1
              FROM pg_stat_activity s
             WHERE s.datname = current_database() AND s.backend_type = 'client backend'
               AND s.state = 'active' AND s.wait_event_type = 'Lock' AND s.pid <> pg_backend_pid();
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
    INSERT INTO bench.s10_counts (run, kind, n) VALUES (run, 'active samples', active), (run, 'lock-wait samples', waiting);
END $$;

-- Before a run: the counts the tables give (records written, tasks completed).
CREATE FUNCTION bench.s10_mark(run text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bench.s10_counts (run, kind, n)
    VALUES (run, 'records before', (SELECT count(*) FROM lowcode.records r WHERE r.app = 'insp' AND r.form = 'fault_s10')),
           (run, 'completed before', (SELECT count(*) FROM lowcode.tasks t WHERE t.pool = 's10' AND t.status = 'completed'));
$$;

-- After a run of `seconds`: each kind's rate into bench.results (item: the run, 'alone' or
-- 'together'; variant: the kind; metric per_s), and the share of sampled active sessions that
-- waited on a lock.
CREATE FUNCTION bench.s10_record(run text, item text, kinds text[], seconds float8, rep int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c bench.s10_counts;
BEGIN
    IF 'submitters' = ANY (kinds) THEN
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
        SELECT '10', item, 'submitters', rep, 'per_s',
               ((SELECT count(*) FROM lowcode.records r WHERE r.app = 'insp' AND r.form = 'fault_s10')
                - (SELECT n FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind = 'records before')) / seconds;
    END IF;
    IF 'claimers' = ANY (kinds) THEN
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
        SELECT '10', item, 'claimers', rep, 'per_s',
               ((SELECT count(*) FROM lowcode.tasks t WHERE t.pool = 's10' AND t.status = 'completed')
                - (SELECT n FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind = 'completed before')) / seconds;
    END IF;
    FOR c IN SELECT * FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind IN ('consumers', 'timers') LOOP
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES ('10', item, c.kind, rep, 'per_s', c.n / seconds);
    END LOOP;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
    SELECT '10', item, 'sessions', rep, 'lock_wait_share',
           coalesce((SELECT n FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind = 'lock-wait samples')::float8
                    / nullif((SELECT n FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind = 'active samples'), 0), 0)
     WHERE EXISTS (SELECT FROM bench.s10_counts x WHERE x.run = s10_record.run AND x.kind = 'active samples');
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
    SELECT '10', item, 'pool', rep, 'open tasks after', count(*) FROM lowcode.tasks t WHERE t.pool = 's10' AND t.status = 'open';
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
    SELECT '10', item, x.kind, rep, 'samples', sum(x.n) FROM bench.s10_counts x
     WHERE x.run = s10_record.run AND x.kind LIKE 'waits: %' GROUP BY x.kind;
END $$;
