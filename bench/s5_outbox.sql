-- bench/s5_outbox.sql — scenario 5: 100k outbox events, 2 consumers (each gets every event)
-- polling batches of 100 and acking them; baseline: the same events in a plain log table read
-- with one cursor per consumer (no per-event acknowledgement).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- n events as the inspection workflow's emit writes them.
CREATE FUNCTION bench.s5_prepare(n int) RETURNS void
LANGUAGE sql AS $$
    TRUNCATE lowcode.deliveries, lowcode.consumers, lowcode.events;
    INSERT INTO lowcode.events (topic, payload, record_id)
    SELECT 'fault.severe',
           jsonb_build_object('record', g, 'app', 'insp', 'form', 'fault_wf', 'state', 'open',
                              'event', 'created', 'rule', 'route_severe', 'data', bench.small_valid_doc(g)), g
      FROM generate_series(1, n) g;
    INSERT INTO bench.events_raw (topic, payload) SELECT topic, payload FROM lowcode.events ORDER BY id;
$$;

-- A consumer: poll up to 100 (commit), "process" them, ack them (commit), until none is left
-- or cap_s seconds passed.
CREATE PROCEDURE bench.consume(run text, worker int, consumer text, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        SELECT array_agg(e.id) INTO ids FROM lowcode.poll_events(consumer, 100) e;
        COMMIT;
        EXIT WHEN ids IS NULL;
        total := total + lowcode.ack_events(consumer, ids);
        COMMIT;
        EXIT WHEN clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

CREATE PROCEDURE bench.consume_raw(run text, worker int, consumer text, cap_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    pos bigint; last bigint; n int; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
    INSERT INTO bench.cursors_raw VALUES (consumer, 0) ON CONFLICT DO NOTHING;
    LOOP
        SELECT c.pos INTO pos FROM bench.cursors_raw c WHERE c.consumer = consume_raw.consumer FOR UPDATE;
        SELECT max(id), count(payload) INTO last, n
          FROM (SELECT id, payload FROM bench.events_raw WHERE id > pos ORDER BY id LIMIT 100) s;
        EXIT WHEN n = 0;
        UPDATE bench.cursors_raw c SET pos = last WHERE c.consumer = consume_raw.consumer;
        total := total + n;
        COMMIT;
        EXIT WHEN clock_timestamp() - t0 > cap_s * interval '1 s';
    END LOOP;
    COMMIT;
    INSERT INTO bench.runs VALUES (run, worker, t0, clock_timestamp(), total);
END $$;

-- After a run: every acknowledged delivery was acked exactly once (one delivery row per
-- consumer and event, attempt 1: nothing handed out twice), and whether each consumer got all n.
CREATE FUNCTION bench.s5_check(run text, rep int, n int, consumers text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint; elapsed float8; acked bigint; redelivered bigint; complete bool;
BEGIN
    SELECT sum(items), extract(epoch FROM max(finished) - min(started)) INTO counted, elapsed
      FROM bench.runs r WHERE r.run = s5_check.run;
    SELECT count(*) FILTER (WHERE status = 'acked'), count(*) FILTER (WHERE attempt > 1)
      INTO acked, redelivered
      FROM lowcode.deliveries WHERE consumer = ANY (consumers);
    SELECT bool_and(c = n) INTO complete FROM (
        SELECT count(*) FILTER (WHERE d.status = 'acked') AS c
          FROM unnest(consumers) u(name) LEFT JOIN lowcode.deliveries d ON d.consumer = u.name GROUP BY u.name) s;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('5', 'outbox', 'lowcode poll_events + ack_events', rep, 'per_s', counted / elapsed),
        ('5', 'outbox', 'lowcode poll_events + ack_events', rep, 'acked', counted),
        ('5', 'outbox', 'lowcode poll_events + ack_events', rep, 'seconds', elapsed),
        ('5', 'outbox', 'lowcode poll_events + ack_events', rep, 'complete', complete::int),
        ('5', 'outbox', 'lowcode poll_events + ack_events', rep, 'exactly_once',
            CASE WHEN acked = counted AND redelivered = 0 THEN 1 ELSE 0 END);
END $$;

CREATE FUNCTION bench.s5_check_raw(run text, rep int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    counted bigint; elapsed float8;
BEGIN
    SELECT sum(items), extract(epoch FROM max(finished) - min(started)) INTO counted, elapsed
      FROM bench.runs r WHERE r.run = s5_check_raw.run;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('5', 'outbox', 'baseline: plain log + cursor', rep, 'per_s', counted / elapsed),
        ('5', 'outbox', 'baseline: plain log + cursor', rep, 'acked', counted),
        ('5', 'outbox', 'baseline: plain log + cursor', rep, 'seconds', elapsed);
END $$;
