-- The transactional outbox: events written in the same transaction as the change that caused
-- them, delivered at least once to each named consumer.
--
-- Ordering without loss: an event is handed to consumers only once every transaction that
-- could still commit an earlier-numbered event has finished. Each consumer keeps a cursor in
-- transaction ids: it takes the events of transactions older than the oldest one still
-- running (pg_snapshot_xmin), so an event committed late is never skipped.

CREATE TABLE lowcode.events (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    record_id   bigint,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_txid_idx ON lowcode.events (txid);
COMMENT ON TABLE lowcode.events IS 'Outbox events (topic, JSON payload) for other systems, written in the transaction that caused them.';

CREATE TABLE lowcode.consumers (
    name          text PRIMARY KEY CHECK (name <> ''),
    cursor_xid    xid8 NOT NULL DEFAULT '0',
    max_attempts  int NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lowcode.consumers IS 'Each consumer of the outbox, with its own cursor and its max_attempts before an event goes to dead letters.';

CREATE TABLE lowcode.deliveries (
    consumer    text NOT NULL REFERENCES lowcode.consumers (name) ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES lowcode.events (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'acked', 'dead')),
    attempt     int NOT NULL DEFAULT 0,
    visible_at  timestamptz NOT NULL DEFAULT now(),
    last_error  text,
    acked_at    timestamptz,
    PRIMARY KEY (consumer, event_id)
);
-- Polls hand out the oldest ready events first, and look at retried ones for dead letters.
CREATE INDEX deliveries_order_idx ON lowcode.deliveries (consumer, event_id) WHERE status = 'pending';
CREATE INDEX deliveries_retried_idx ON lowcode.deliveries (consumer, attempt) WHERE status = 'pending' AND attempt > 0;
COMMENT ON TABLE lowcode.deliveries IS 'Each event''s delivery state for each consumer: pending (invisible while in flight), acked, or dead (a dead letter, with its last error).';

-- Restored events and cursors: transaction ids of another cluster mean nothing here, so
-- restored events count as committed by the restore, and every consumer re-reads the
-- outbox once (deliveries it already has, acknowledged or not, are kept as they were).
CREATE FUNCTION lowcode.events_restored() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'events' THEN
        NEW.txid := pg_current_xact_id();
    ELSE
        NEW.cursor_xid := '0';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.events_restored() IS 'Trigger, only while lowcode.replaying(): re-bases restored events and consumer cursors on this cluster''s transaction ids.';
CREATE TRIGGER events_restored BEFORE INSERT ON lowcode.events
    FOR EACH ROW WHEN (lowcode.replaying()) EXECUTE FUNCTION lowcode.events_restored();
CREATE TRIGGER consumers_restored BEFORE INSERT ON lowcode.consumers
    FOR EACH ROW WHEN (lowcode.replaying()) EXECUTE FUNCTION lowcode.events_restored();

SELECT pg_catalog.pg_extension_config_dump('lowcode.events', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.consumers', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.events_id_seq', '');

CREATE FUNCTION lowcode.emit(topic text, payload jsonb DEFAULT '{}', record bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    event_id bigint;
BEGIN
    IF topic IS NULL OR topic = '' THEN
        RAISE EXCEPTION 'lowcode: emit: topic must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO lowcode.events (topic, payload, record_id) VALUES (topic, coalesce(payload, '{}'), record)
    RETURNING id INTO event_id;
    PERFORM pg_notify('lowcode_events', topic);
    RETURN event_id;
END $$;
COMMENT ON FUNCTION lowcode.emit(text, jsonb, bigint) IS 'Write an outbox event (rules use it through the emit action); NOTIFY lowcode_events wakes consumers at commit.';

CREATE FUNCTION lowcode.poll_events(consumer text, max int DEFAULT 100, visibility interval DEFAULT '30 seconds')
RETURNS TABLE (id bigint, topic text, payload jsonb, attempt int, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c        lowcode.consumers;
    horizon  xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'consume events');
    IF consumer IS NULL OR consumer = '' THEN
        RAISE EXCEPTION 'lowcode: poll_events: consumer must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max IS NULL OR max < 1 THEN
        RAISE EXCEPTION 'lowcode: poll_events: max must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF visibility IS NULL OR visibility < interval '0' THEN
        RAISE EXCEPTION 'lowcode: poll_events: visibility must be an interval of 0 or more, not %', coalesce(visibility::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lowcode.consumers (name) VALUES (consumer) ON CONFLICT DO NOTHING;
    -- Hand this consumer the events of every transaction that has finished since its cursor.
    SELECT * INTO c FROM lowcode.consumers x WHERE x.name = consumer FOR UPDATE;
    IF c.cursor_xid < horizon THEN
        INSERT INTO lowcode.deliveries (consumer, event_id)
        SELECT consumer, e.id FROM lowcode.events e
         WHERE e.txid >= c.cursor_xid AND e.txid < horizon
        ON CONFLICT DO NOTHING;
        UPDATE lowcode.consumers x SET cursor_xid = horizon WHERE x.name = consumer;
    END IF;
    -- In-flight deliveries that ran out of attempts become dead letters.
    UPDATE lowcode.deliveries d SET status = 'dead',
           last_error = coalesce(d.last_error, 'not acknowledged within its visibility timeout')
     WHERE d.consumer = consumer AND d.status = 'pending' AND d.attempt > 0
       AND d.attempt >= c.max_attempts AND d.visible_at <= now();
    RETURN QUERY
    WITH ready AS (
        SELECT d.event_id FROM lowcode.deliveries d
         WHERE d.consumer = consumer AND d.status = 'pending' AND d.visible_at <= now()
         ORDER BY d.event_id
         LIMIT max
           FOR UPDATE SKIP LOCKED
    ), taken AS (
        UPDATE lowcode.deliveries d SET attempt = d.attempt + 1, visible_at = now() + visibility
          FROM ready WHERE d.consumer = consumer AND d.event_id = ready.event_id
        RETURNING d.event_id, d.attempt
    )
    SELECT e.id, e.topic, e.payload, taken.attempt, e.created_at
      FROM taken JOIN lowcode.events e ON e.id = taken.event_id
     ORDER BY e.id;
END $$;
COMMENT ON FUNCTION lowcode.poll_events(text, int, interval) IS 'Take up to max events for a consumer (created on first use). Each stays invisible to other polls of that consumer for visibility; unacknowledged, it comes back (at-least-once). Consumers are independent: each sees every event.';

CREATE FUNCTION lowcode.ack_events(consumer text, ids bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    acked int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'consume events');
    UPDATE lowcode.deliveries d SET status = 'acked', acked_at = now()
     WHERE d.consumer = consumer AND d.event_id = ANY (ids) AND d.status = 'pending';
    GET DIAGNOSTICS acked = ROW_COUNT;
    RETURN acked;
END $$;
COMMENT ON FUNCTION lowcode.ack_events(text, bigint[]) IS 'Acknowledge events a consumer has processed; returns how many were pending.';

CREATE FUNCTION lowcode.nack_event(consumer text, id bigint, error text, retry_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    d  lowcode.deliveries;
    c  lowcode.consumers;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'consume events');
    IF consumer IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'lowcode: nack_event: arguments "consumer" and "id" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM lowcode.deliveries x WHERE x.consumer = consumer AND x.event_id = id FOR UPDATE;
    IF NOT FOUND OR d.status <> 'pending' THEN
        RAISE EXCEPTION 'lowcode: event % is not in flight for consumer "%"', id, consumer
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO c FROM lowcode.consumers x WHERE x.name = consumer;
    IF d.attempt >= c.max_attempts THEN
        UPDATE lowcode.deliveries x SET status = 'dead', last_error = error
         WHERE x.consumer = consumer AND x.event_id = id;
        RETURN 'dead';
    END IF;
    -- Exponential backoff: 1 s, 2 s, 4 s ... capped at an hour, unless the consumer says when.
    UPDATE lowcode.deliveries x
       SET last_error = error,
           visible_at = now() + coalesce(retry_after, least(interval '1 second' * power(2, d.attempt - 1), interval '1 hour'))
     WHERE x.consumer = consumer AND x.event_id = id;
    RETURN 'retry';
END $$;
COMMENT ON FUNCTION lowcode.nack_event(text, bigint, text, interval) IS 'Report a failed delivery: retried after retry_after or an exponential backoff; after the consumer''s max_attempts it becomes a dead letter with this error. Returns retry or dead.';

CREATE FUNCTION lowcode.replay_dead_letters(topic text, consumer text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    replayed int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'replay dead letters');
    UPDATE lowcode.deliveries d SET status = 'pending', attempt = 0, visible_at = now()
      FROM lowcode.events e
     WHERE e.id = d.event_id AND d.status = 'dead' AND e.topic = topic
       AND (consumer IS NULL OR d.consumer = consumer);
    GET DIAGNOSTICS replayed = ROW_COUNT;
    RETURN replayed;
END $$;
COMMENT ON FUNCTION lowcode.replay_dead_letters(text, text) IS 'Put a topic''s dead letters (of one consumer, or all) back in the queue with fresh attempts; returns how many.';

CREATE FUNCTION lowcode.purge_events(older_than interval) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    gone int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'purge events');
    DELETE FROM lowcode.events e
     WHERE e.created_at < now() - older_than
       AND e.txid < (SELECT coalesce(min(c.cursor_xid), '0') FROM lowcode.consumers c)
       AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id AND d.status <> 'acked');
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;
COMMENT ON FUNCTION lowcode.purge_events(interval) IS 'Delete events older than older_than that every consumer has acknowledged; dead letters and undelivered events stay.';
