-- bench/s5_outbox.sql — scenario 5: the outbox against pgmq (installed from the SQL its crate
-- embeds), one consumer polling batches of 100 and acknowledging them; the same payloads.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- n events of app insp as the inspection workflow's emit writes them, in one transaction.
CREATE OR REPLACE FUNCTION bench.s5_prepare(n int) RETURNS void
LANGUAGE sql AS $$
    TRUNCATE lowcode.deliveries, lowcode.leases, lowcode.consumers, lowcode.events;
    INSERT INTO lowcode.events (topic, payload, record_id, app)
    SELECT 'fault.severe',
           jsonb_build_object('record', g, 'app', 'insp', 'form', 'fault_wf', 'state', 'open',
                              'event', 'created', 'rule', 'route_severe', 'data', bench.small_valid_doc(g)), g, 'insp'
      FROM generate_series(1, n) g;
$$;

-- pgmq's queue "bench" refilled with the first n of those payloads (pgmq archives what it reads).
CREATE OR REPLACE FUNCTION bench.s5_prepare_pgmq(n int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pgmq.meta WHERE queue_name = 'bench') THEN
        PERFORM pgmq.create('bench');
    END IF;
    TRUNCATE pgmq.q_bench, pgmq.a_bench;
    INSERT INTO pgmq.q_bench (vt, message) SELECT now(), payload FROM lowcode.events ORDER BY id LIMIT n;
END $$;

-- A lowcode consumer from the beginning: poll up to 100 (commit), ack them (commit), until
-- none is left, or max events, or cap_s seconds passed.
CREATE OR REPLACE PROCEDURE bench.consume(run text, worker int, consumer text, max bigint, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; total bigint := 0; t0 timestamptz;
BEGIN
    PERFORM lowcode.create_consumer(consumer, '{"from": "beginning"}');
    COMMIT;
    t0 := clock_timestamp();
    LOOP
        SELECT array_agg(e.id) INTO ids FROM lowcode.poll_events(consumer, 100) e;
        COMMIT;
        EXIT WHEN ids IS NULL;
        total := total + lowcode.ack_events(consumer, ids);
        COMMIT;
        EXIT WHEN total >= max OR clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

-- pgmq's documented consumer loop: read up to 100 with a 30 s visibility (commit), archive them
-- (commit).
CREATE OR REPLACE PROCEDURE bench.consume_pgmq(run text, worker int, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        SELECT array_agg(m.msg_id) INTO ids FROM pgmq.read('bench', 30, 100) m;
        COMMIT;
        EXIT WHEN ids IS NULL;
        total := total + (SELECT count(*) FROM pgmq.archive('bench', ids));
        COMMIT;
        EXIT WHEN clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

-- Record a run: events per second (all workers together), how many, seconds; for lowcode,
-- whether every consumer got every event once (no leases left, no retry rows).
CREATE OR REPLACE FUNCTION bench.s5_record(run text, rep int, item text, variant text, n bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint; elapsed float8; per_worker float8;
BEGIN
    SELECT sum(items), extract(epoch FROM max(finished) - min(started)), avg(extract(epoch FROM finished - started))
      INTO counted, elapsed, per_worker
      FROM bench.runs r WHERE r.run = s5_record.run;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('5', item, variant, rep, 'per_s', counted / elapsed),
        ('5', item, variant, rep, 'acked', counted),
        ('5', item, variant, rep, 'seconds', elapsed),
        ('5', item, variant, rep, 'worker_seconds', per_worker);
    IF n IS NOT NULL THEN
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
            ('5', item, variant, rep, 'exactly_once',
             CASE WHEN counted = n AND NOT EXISTS (SELECT FROM lowcode.leases) AND NOT EXISTS (SELECT FROM lowcode.deliveries)
                  THEN 1 ELSE 0 END);
    END IF;
END $$;

-- Scenario 2's live consumers: poll and ack while producers submit, until stop_s seconds passed;
-- and a sampler of their lag (every 0.25 s), whose maximum goes to the results.
CREATE OR REPLACE PROCEDURE bench.consume_live(consumer text, stop_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() - t0 < stop_s * interval '1 s' LOOP
        SELECT array_agg(e.id) INTO ids FROM lowcode.poll_events(consumer, 100) e;
        COMMIT;
        IF ids IS NULL THEN
            PERFORM pg_sleep(0.01);
        ELSE
            PERFORM lowcode.ack_events(consumer, ids);
            COMMIT;
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE bench.sample_lag(item text, variant text, rep int, stop_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp(); events bigint := 0; secs float8 := 0; e bigint; s float8;
BEGIN
    WHILE clock_timestamp() - t0 < stop_s * interval '1 s' LOOP
        SELECT max(lag_events), max(coalesce(lag_seconds, 0)) INTO e, s FROM lowcode.consumer_status;
        events := greatest(events, coalesce(e, 0));
        secs := greatest(secs, coalesce(s, 0));
        COMMIT;
        PERFORM pg_sleep(0.25);
    END LOOP;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('2', item, variant, rep, 'max_lag_events', events), ('2', item, variant, rep, 'max_lag_seconds', secs);
END $$;
