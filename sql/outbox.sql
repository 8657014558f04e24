-- The transactional outbox: events written in the same transaction as the change that caused
-- them, delivered at least once to each consumer, in batches taken from snapshots (as PgQ
-- does): a consumer's batch is the events whose transactions are visible in its new snapshot
-- and were not in its previous one. An event committed late is in the batch of the snapshot
-- that first sees it committed, so nothing is skipped; and a long transaction holds back only
-- its own events, never everyone else's.
--
-- A consumer's position is a cursor (its two snapshots and where it is in the batch). A poll
-- hands out a lease: one row for the events it gave, acknowledged by delivery id. Only an event
-- that was nacked, not acknowledged in time, or died gets a row of its own (lowcode.deliveries).
-- So the cost of an event does not depend on the backlog nor on the number of consumers.

CREATE TABLE lowcode.events (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    record_id   bigint,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The app of the record it is about (NULL for events of no record): consumers are per app.
    app         text
);
-- Batches are read in (txid, id) order from the snapshot they start at.
CREATE INDEX events_batch_idx ON lowcode.events (txid, id);
COMMENT ON TABLE lowcode.events IS 'Outbox events (topic, JSON payload, app) for other systems, written in the transaction that caused them; kept until every consumer has passed them (lowcode.purge_events).';

CREATE TABLE lowcode.consumers (
    name          text PRIMARY KEY CHECK (name <> ''),
    -- The oldest transaction whose events this consumer may still need (the xmin of
    -- batch_from): events of older transactions it has passed. What retention goes by.
    cursor_xid    xid8 NOT NULL DEFAULT '0',
    max_attempts  int NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The app whose events it reads (NULL: every app, for lowcode administrators only).
    app           text,
    -- The topics it reads: exact names or prefixes 'order.*' (NULL: all).
    topics        text[],
    -- Delay before the n-th retry (the last one repeats); empty: 1 s, doubling, at most 1 hour.
    backoff       interval[] NOT NULL DEFAULT '{}',
    -- The current batch: events visible in batch_to and not in batch_from, handed out in
    -- (txid, id) order up to (pos_txid, pos_id).
    batch_from    pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    batch_to      pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    pos_txid      xid8 NOT NULL DEFAULT '0',
    pos_id        bigint NOT NULL DEFAULT 0,
    -- The epoch of its app's events (lowcode.outbox_epochs) its batch is of: 0 on one node.
    epoch         int NOT NULL DEFAULT 0
);
-- On a distributed runtime an app's events may be written on several nodes over time (its
-- shards moved by citus_move_shard_placement or the rebalancer), each with transaction ids of
-- its own, which say nothing about another node's. An epoch is a stretch of an app's events
-- written on one node: that node's group (origin; the ids it draws are origin << 48 on), and
-- the first id of the stretch. Epochs follow one another in commit order (a shard move lets
-- the old node's writes end before the new node's begin), and within one the events are in
-- that node's commit batches, as on one node: a consumer reads epoch by epoch. The first event
-- of a stretch writes its epoch (lowcode.outbox_epoch_mark, a trigger lowcode.distribute()
-- puts on lowcode.events). Empty on one node, where every event is of epoch 0.
CREATE TABLE lowcode.outbox_epochs (
    app         text NOT NULL,
    epoch       int NOT NULL CHECK (epoch > 0),
    origin      int NOT NULL,
    first_id    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, epoch)
);
COMMENT ON TABLE lowcode.outbox_epochs IS 'Epochs of an app''s outbox events on a distributed runtime: each a stretch of its events written on one node (origin: its group; first_id: the first event''s id), in commit order; consumers read them one after the other. Empty on one node (every event is of epoch 0).';

COMMENT ON TABLE lowcode.consumers IS 'Consumers of the outbox (lowcode.create_consumer): the app and topics each reads, its retry policy, and its cursor (two snapshots and a position in the batch between them).';

CREATE TABLE lowcode.deliveries (
    consumer    text NOT NULL REFERENCES lowcode.consumers (name) ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES lowcode.events (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'acked', 'dead')),
    attempt     int NOT NULL DEFAULT 0,
    visible_at  timestamptz NOT NULL DEFAULT now(),
    last_error  text,
    acked_at    timestamptz,
    -- The lease that holds it while it is in flight again.
    lease_id    bigint,
    -- The consumer's app ('' for a consumer of every app): a distributed runtime keeps it with
    -- the app's events, on the app's node (lowcode.distribute).
    app         text NOT NULL DEFAULT '',
    PRIMARY KEY (consumer, event_id)
);
-- Retries come back in the order they become visible; purging looks deliveries up by event.
CREATE INDEX deliveries_ready_idx ON lowcode.deliveries (consumer, visible_at) WHERE status = 'pending';
CREATE INDEX deliveries_event_idx ON lowcode.deliveries (event_id);
COMMENT ON TABLE lowcode.deliveries IS 'The events of a consumer that are not on the happy path: nacked or not acknowledged in time (pending, with attempt and backoff), or dead letters (dead, with the last error).';

CREATE TABLE lowcode.leases (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL REFERENCES lowcode.consumers (name) ON DELETE CASCADE,
    -- The events one poll handed out, by position (delivery id = lease id * 65536 + position);
    -- a position is NULL once acknowledged or nacked.
    events      bigint[] NOT NULL,
    -- The attempt each delivery is (1: the first, from the consumer's batch).
    attempts    int[] NOT NULL,
    open        int NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- The consumer's app ('' for a consumer of every app), as in lowcode.deliveries.
    app         text NOT NULL DEFAULT ''
);
CREATE INDEX leases_consumer_idx ON lowcode.leases (consumer, expires_at);
COMMENT ON TABLE lowcode.leases IS 'Events in flight: one row per poll, until each of its events is acknowledged or nacked, or its visibility timeout ends (then the rest get rows in lowcode.deliveries and come back).';

-- Restored events and cursors: transaction ids of another cluster mean nothing here, so
-- restored events count as committed by the restore, and every consumer reads the outbox again
-- from its oldest kept event (its retries and dead letters are kept as they were).
CREATE FUNCTION lowcode.events_restored() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'events' THEN
        NEW.txid := pg_current_xact_id();
    ELSE
        NEW.cursor_xid := '0';
        NEW.batch_from := '1:1:';
        NEW.batch_to := '1:1:';
        NEW.pos_txid := '0';
        NEW.pos_id := 0;
        NEW.epoch := 0;
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
-- (Leases are not dumped, their ids are: a delivery id from before a restore never names a new lease.)
SELECT pg_catalog.pg_extension_config_dump('lowcode.leases_id_seq', '');

-- lowcode.emit (an event written at once) is Rust (src/outbox.rs); the events a write's rules emit are
-- written with its history rows by the journal (src/journal.rs).


-- ---------------------------------------------------------------- consumers

CREATE FUNCTION lowcode.create_consumer(name text, options jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    app      text := options ->> 'app';
    topics   text[];
    backoff  interval[] := '{}';
    attempts int := coalesce((options ->> 'max_attempts')::int, 5);
    start    pg_snapshot;
    routed   jsonb;
    epoch    int := 0;
    span     record;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'lowcode: create_consumer: name must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    PERFORM lowcode.check_options('create_consumer', options, ARRAY['app', 'topics', 'max_attempts', 'backoff', 'from']);
    IF app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('create consumer %s of every app', name));
    ELSE
        IF NOT EXISTS (SELECT FROM lowcode.apps a WHERE a.name = app) THEN
            RAISE EXCEPTION 'lowcode: unknown app "%"', app USING ERRCODE = 'undefined_object';
        END IF;
        PERFORM lowcode.authorize(app, 'admin', format('create consumer %s', name));
    END IF;
    -- On a distributed runtime, made on the node of its app (its snapshots are that node's);
    -- authorized first, here (which consumers exist is for those who may make them).
    routed := lowcode.outbox_at('create_consumer', name, app, jsonb_build_object('options', options));
    IF routed ? 'r' THEN
        RETURN;
    END IF;
    IF options ? 'topics' THEN
        IF jsonb_typeof(options -> 'topics') <> 'array'
           OR EXISTS (SELECT FROM jsonb_array_elements(options -> 'topics') t WHERE jsonb_typeof(t) <> 'string' OR t #>> '{}' = '') THEN
            RAISE EXCEPTION 'lowcode: consumer "%": topics must be an array of topic names or prefixes like ''order.*''', name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        topics := ARRAY(SELECT jsonb_array_elements_text(options -> 'topics'));
    END IF;
    IF attempts < 1 THEN
        RAISE EXCEPTION 'lowcode: consumer "%": max_attempts must be at least 1', name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'backoff' THEN
        BEGIN
            backoff := ARRAY(SELECT b::interval FROM jsonb_array_elements_text(options -> 'backoff') b);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'lowcode: consumer "%": backoff must be an array of intervals, e.g. ["10 seconds", "1 minute"]', name
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    -- 'now' (default): the events committed from now on; 'beginning': every event still kept.
    start := CASE coalesce(options ->> 'from', 'now')
                 WHEN 'now' THEN lowcode.batch_snapshot()
                 WHEN 'beginning' THEN '1:1:'::pg_snapshot END;
    IF start IS NULL THEN
        RAISE EXCEPTION 'lowcode: consumer "%": from must be ''now'' or ''beginning'', not %', name, options -> 'from'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- On a distributed runtime, 'now' is in the app's last epoch (lowcode.outbox_epochs): if it
    -- was written on another node (its shards moved here since), all of it is passed.
    IF routed ->> 'app' IS NOT NULL AND options ->> 'from' IS DISTINCT FROM 'beginning' THEN
        epoch := coalesce((SELECT x.epoch FROM lowcode.outbox_epochs x WHERE x.app = app ORDER BY x.epoch DESC LIMIT 1), 0);
        span := lowcode.outbox_epoch(app, epoch);
        IF NOT span.live THEN
            start := span.seal;
        END IF;
    END IF;
    INSERT INTO lowcode.consumers (name, app, topics, max_attempts, backoff, batch_from, batch_to, pos_txid, cursor_xid, epoch)
    VALUES (name, app, topics, attempts, backoff, start, start, pg_snapshot_xmax(start), pg_snapshot_xmin(start), epoch);
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'lowcode: consumer "%" already exists', name
        USING ERRCODE = 'duplicate_object', HINT = 'drop it first with lowcode.drop_consumer';
END $$;
COMMENT ON FUNCTION lowcode.create_consumer(text, jsonb) IS 'Create an outbox consumer. options: app (whose events it reads; NULL: every app, administrators only), topics (names or prefixes ''order.*''), max_attempts (5), backoff (intervals before each retry; default 1 s doubling to 1 h), from (''now'' or ''beginning''). An app''s admin creates its consumers; roles granted consume in the app poll them.';

CREATE FUNCTION lowcode.drop_consumer(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    routed jsonb := lowcode.outbox_at('drop_consumer', name, NULL, '{}');
    on_app text := routed ->> 'app';
BEGIN
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::boolean;
    END IF;
    IF on_app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
    ELSE
        -- (The app as a value: Citus runs the statement on the app's shard here.)
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = on_app AND x.name = name FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('drop consumer %s', name));
    ELSE
        PERFORM lowcode.authorize(c.app, 'admin', format('drop consumer %s', name));
    END IF;
    DELETE FROM lowcode.consumers x WHERE x.name = name AND (c.app IS NULL OR x.app = c.app);
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_consumer(text) IS 'Drop an outbox consumer with its retries, dead letters and events in flight; true if there was one. Events it alone held back can then be purged.';

-- The consumer, locked, for one of its calls by the invoker: an app's consumers are for the
-- roles granted consume (or admin) in that app, consumers of every app for administrators.
CREATE FUNCTION lowcode.consumer_for(name text, doing text, app text) RETURNS lowcode.consumers
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c lowcode.consumers;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'lowcode: %: consumer must not be empty', doing USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- (On a distributed runtime the app's node, which lowcode.outbox_at found, holds it.)
    IF app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
    ELSE
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = app AND x.name = name FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown consumer "%"', name
            USING ERRCODE = 'undefined_object',
                  HINT = format('create it with lowcode.create_consumer(%L, ''{"app": "<app>", "topics": ["<topic>"]}'')', name);
    END IF;
    IF c.app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('%s (consumer %s of every app)', doing, name));
    ELSE
        PERFORM lowcode.authorize(c.app, 'consume', format('%s (consumer %s)', doing, name));
    END IF;
    RETURN c;
END $$;
COMMENT ON FUNCTION lowcode.consumer_for(text, text, text) IS 'Internal: locks a consumer for poll, ack or nack (of app, when lowcode.outbox_at names it), after checking the invoker may consume its app''s events; 42704 for an unknown consumer.';

-- A snapshot of now in which this transaction's own uncommitted events are not yet visible
-- (PostgreSQL leaves the current transaction out of its snapshots' in-progress list).
CREATE FUNCTION lowcode.batch_snapshot() RETURNS pg_snapshot
LANGUAGE plpgsql AS $$
DECLARE
    s   pg_snapshot := pg_current_snapshot();
    me  xid8 := pg_current_xact_id_if_assigned();
BEGIN
    -- (A snapshot taken before this transaction had an id already counts it as running.)
    IF me IS NULL OR me >= pg_snapshot_xmax(s) THEN
        RETURN s;
    END IF;
    RETURN (least(pg_snapshot_xmin(s), me)::text || ':' || pg_snapshot_xmax(s)::text || ':' ||
            coalesce((SELECT string_agg(x::text, ',' ORDER BY x)
                        FROM (SELECT pg_snapshot_xip(s) AS x UNION SELECT me) u), ''))::pg_snapshot;
END $$;
COMMENT ON FUNCTION lowcode.batch_snapshot() IS 'Internal: the current snapshot, with the calling transaction counted as still running.';

-- An epoch of an app's events (lowcode.outbox_epochs; 0: the events from before the first,
-- written on the coordinator or on one node): its node (origin), its events' ids (from
-- first_id, and below until_id, where a later epoch of the same node begins), the epoch after
-- it, and whether it is live: the app's last epoch, written here. An epoch that is not live has
-- all its events committed; seal is a snapshot that sees them all (in its node's ids).
CREATE FUNCTION lowcode.outbox_epoch(app text, epoch int,
    OUT origin int, OUT first_id bigint, OUT until_id bigint, OUT next_epoch int, OUT live boolean, OUT seal pg_snapshot)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    here int;
    top  xid8;
BEGIN
    IF app IS NULL OR epoch IS NULL THEN
        RETURN;
    END IF;
    IF epoch = 0 THEN
        origin := 0;
        first_id := 0;
    ELSE
        SELECT x.origin, x.first_id INTO origin, first_id FROM lowcode.outbox_epochs x WHERE x.app = app AND x.epoch = epoch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'lowcode: app "%" has no outbox epoch %', app, epoch USING ERRCODE = 'internal_error';
        END IF;
    END IF;
    SELECT x.epoch INTO next_epoch FROM lowcode.outbox_epochs x WHERE x.app = app AND x.epoch > epoch ORDER BY x.epoch LIMIT 1;
    SELECT x.first_id INTO until_id FROM lowcode.outbox_epochs x
     WHERE x.app = app AND x.epoch > epoch AND x.origin = origin ORDER BY x.epoch LIMIT 1;
    -- (This node's group: Citus's catalog, read only on a distributed runtime.)
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO here;
    live := next_epoch IS NULL AND origin = here;
    IF NOT live THEN
        SELECT e.txid INTO top FROM lowcode.events e
         WHERE e.app = app AND e.id >= first_id AND (until_id IS NULL OR e.id < until_id) AND (e.id >> 48) = origin
         ORDER BY e.txid DESC LIMIT 1;
        seal := CASE WHEN top IS NULL THEN '1:1:'
                     ELSE ((top::text::numeric + 1)::text || ':' || (top::text::numeric + 1)::text || ':') END::pg_snapshot;
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.outbox_epoch(text, int) IS 'Internal (the outbox of a distributed runtime): an epoch of an app''s events: its node, its ids, the next epoch, whether it is live (the last, written on this node), and for one that is not, a snapshot that sees all of it.';

CREATE FUNCTION lowcode.poll_events(consumer text, max int DEFAULT 100, visibility interval DEFAULT '30 seconds')
RETURNS TABLE (id bigint, topic text, payload jsonb, attempt int, created_at timestamptz, event_id bigint, record_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c         lowcode.consumers;
    lease     bigint;
    ids       bigint[] := '{}';
    tries     int[] := '{}';
    got       bigint[];
    advanced  boolean := false;
    last_txid xid8;
    last_id   bigint;
    routed    jsonb;
    capp      text;
    -- The consumer's epoch, on a distributed runtime whose app's events are of several.
    epoched   boolean := false;
    span      record;
BEGIN
    IF max IS NULL OR max < 1 OR max > 65535 THEN
        RAISE EXCEPTION 'lowcode: poll_events: max must be between 1 and 65535, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF visibility IS NULL OR visibility < interval '0' THEN
        RAISE EXCEPTION 'lowcode: poll_events: visibility must be an interval of 0 or more, not %', coalesce(visibility::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- On a distributed runtime, on the node of the consumer's app (lowcode.outbox_at).
    routed := lowcode.outbox_at('poll_events', consumer, NULL, jsonb_build_object('max', max, 'visibility', visibility));
    IF routed ? 'r' THEN
        RETURN QUERY SELECT * FROM jsonb_to_recordset(routed -> 'r')
            AS r(id bigint, topic text, payload jsonb, attempt int, created_at timestamptz, event_id bigint, record_id bigint);
        RETURN;
    END IF;
    -- One poll of a consumer at a time: its cursor is one row.
    c := lowcode.consumer_for(consumer, 'poll events', routed ->> 'app');
    -- (Every statement names the app: on a distributed runtime each is then one shard's.)
    capp := coalesce(c.app, '');
    -- Leases whose visibility timeout ended: their first deliveries get rows of their own (the
    -- retried ones have theirs) and come back now.
    INSERT INTO lowcode.deliveries (app, consumer, event_id, attempt, visible_at, last_error)
    SELECT capp, c.name, u.e, u.a, now(), 'not acknowledged within its visibility timeout'
      FROM lowcode.leases l, unnest(l.events, l.attempts) AS u(e, a)
     WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now() AND u.e IS NOT NULL AND u.a = 1
    ON CONFLICT DO NOTHING;
    UPDATE lowcode.deliveries d SET lease_id = NULL,
           last_error = coalesce(d.last_error, 'not acknowledged within its visibility timeout')
      FROM lowcode.leases l
     WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now()
       AND d.app = capp AND d.consumer = c.name AND d.lease_id = l.id;
    DELETE FROM lowcode.leases l WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now();
    -- Deliveries that used their last attempt and were not acknowledged in time die.
    UPDATE lowcode.deliveries d SET status = 'dead', lease_id = NULL
     WHERE d.app = capp AND d.consumer = c.name AND d.status = 'pending' AND d.attempt >= c.max_attempts AND d.visible_at <= now();
    lease := nextval('lowcode.leases_id_seq');
    -- Retries first, in the order they became due.
    WITH due AS (
        SELECT d.event_id FROM lowcode.deliveries d
         WHERE d.app = capp AND d.consumer = c.name AND d.status = 'pending' AND d.visible_at <= now()
         ORDER BY d.visible_at, d.event_id
         LIMIT max
    ), taken AS (
        UPDATE lowcode.deliveries d SET attempt = d.attempt + 1, visible_at = now() + visibility, lease_id = lease
          FROM due WHERE d.app = capp AND d.consumer = c.name AND d.event_id = due.event_id
        RETURNING d.event_id, d.attempt
    )
    SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}'), coalesce(array_agg(t.attempt ORDER BY t.event_id), '{}')
      INTO ids, tries FROM taken t;
    -- On a distributed runtime, the batches are of the consumer's epoch (lowcode.outbox_epochs):
    -- the events its app wrote on one node, in that node's transaction ids.
    epoched := routed ->> 'app' IS NOT NULL;
    span := lowcode.outbox_epoch(CASE WHEN epoched THEN c.app END, c.epoch);
    -- Then the batch, from where the last poll left it; when it is done, the next batch: the
    -- events committed between its snapshot and a new one.
    WHILE cardinality(ids) < max LOOP
        SELECT array_agg(b.id ORDER BY b.txid, b.id), (array_agg(b.txid ORDER BY b.txid DESC, b.id DESC))[1],
               (array_agg(b.id ORDER BY b.txid DESC, b.id DESC))[1]
          INTO got, last_txid, last_id
          FROM (SELECT e.id, e.txid FROM lowcode.events e
                 WHERE (e.txid, e.id) > (c.pos_txid, c.pos_id)
                   AND (NOT epoched OR (e.id >= span.first_id AND (span.until_id IS NULL OR e.id < span.until_id)
                                         AND (e.id >> 48) = span.origin))
                   AND e.txid < pg_snapshot_xmax(c.batch_to)
                   AND pg_visible_in_snapshot(e.txid, c.batch_to)
                   AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
                   AND (c.app IS NULL OR e.app = c.app)
                   AND (c.topics IS NULL OR lowcode.topic_matches(e.topic, c.topics))
                   -- (a consumer re-reading a restored outbox has rows for its dead letters)
                   AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.app = capp AND d.consumer = c.name AND d.event_id = e.id)
                 ORDER BY e.txid, e.id
                 LIMIT max - cardinality(ids)) b;
        IF got IS NOT NULL THEN
            ids := ids || got;
            tries := tries || array_fill(1, ARRAY[cardinality(got)]);
            c.pos_txid := last_txid;
            c.pos_id := last_id;
        END IF;
        EXIT WHEN cardinality(ids) >= max OR advanced;
        -- An epoch that is not live, read up to its seal: done; the next one (when its first
        -- event is written) is read from its start.
        IF epoched AND NOT span.live AND c.batch_to::text = span.seal::text THEN
            EXIT WHEN span.next_epoch IS NULL;
            c.epoch := span.next_epoch;
            span := lowcode.outbox_epoch(c.app, c.epoch);
            c.batch_from := '1:1:';
            c.batch_to := CASE WHEN span.live THEN lowcode.batch_snapshot() ELSE span.seal END;
            c.pos_txid := '0';
            c.pos_id := 0;
            CONTINUE;
        END IF;
        -- This batch is done: the next one starts where it ended. Its first events are those of
        -- transactions that were still running at the old snapshot and have committed since
        -- (of an epoch that is not live: all of its events are committed).
        advanced := true;
        c.batch_from := c.batch_to;
        c.batch_to := CASE WHEN NOT epoched OR span.live THEN lowcode.batch_snapshot() ELSE span.seal END;
        -- (ORDER BY … LIMIT 1, not min(): PostgreSQL 14 has no min(xid8).)
        c.pos_txid := coalesce((SELECT x FROM pg_snapshot_xip(c.batch_from) x
                                 WHERE pg_visible_in_snapshot(x, c.batch_to) ORDER BY x LIMIT 1),
                               pg_snapshot_xmax(c.batch_from));
        c.pos_id := 0;
    END LOOP;
    -- Every event of the batch is handed out: the consumer has passed them (those in flight are
    -- kept by their lease until acknowledged), and its next poll starts the next batch.
    IF cardinality(ids) < max THEN
        c.batch_from := c.batch_to;
    END IF;
    UPDATE lowcode.consumers x
       SET batch_from = c.batch_from, batch_to = c.batch_to, pos_txid = c.pos_txid, pos_id = c.pos_id,
           cursor_xid = pg_snapshot_xmin(c.batch_from), epoch = c.epoch
     WHERE x.name = c.name AND (c.app IS NULL OR x.app = c.app);
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO lowcode.leases (id, app, consumer, events, attempts, open, expires_at)
    VALUES (lease, capp, c.name, ids, tries, cardinality(ids), now() + visibility);
    RETURN QUERY
    SELECT lease * 65536 + u.i, e.topic, e.payload, u.a, e.created_at, e.id, e.record_id
      FROM unnest(ids, tries) WITH ORDINALITY AS u(e_id, a, i)
      JOIN lowcode.events e ON e.id = u.e_id AND (c.app IS NULL OR e.app = c.app)
     ORDER BY u.i;
END $$;
COMMENT ON FUNCTION lowcode.poll_events(text, int, interval) IS 'Take up to max events for a consumer: retries that are due first, then the next events of its batch (events committed since its last snapshot, in commit batches). Each is in flight for visibility; unacknowledged, it comes back (at least once). id is the delivery id to ack or nack; event_id stays the same across retries. An unknown consumer is an error (42704).';

CREATE FUNCTION lowcode.ack_events(consumer text, ids bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    routed jsonb := lowcode.outbox_at('ack_events', consumer, NULL, jsonb_build_object('ids', ids));
    c      lowcode.consumers;
    capp   text;
    l      lowcode.leases;
    pos    int[];
    acked  int := 0;
BEGIN
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::int;
    END IF;
    c := lowcode.consumer_for(consumer, 'acknowledge events', routed ->> 'app');
    capp := coalesce(c.app, '');
    -- A delivery id names its lease and position: a late ack from a poll whose lease already
    -- ended finds no lease and acknowledges nothing (the redelivery has another id).
    FOR l IN
        SELECT x.* FROM lowcode.leases x
         WHERE x.app = capp AND x.id = ANY (ARRAY(SELECT DISTINCT i / 65536 FROM unnest(ids) i WHERE i > 0))
           AND x.consumer = c.name
         ORDER BY x.id
           FOR UPDATE
    LOOP
        pos := ARRAY(SELECT DISTINCT (i % 65536)::int FROM unnest(ids) i
                      WHERE i / 65536 = l.id AND l.events[(i % 65536)::int] IS NOT NULL);
        CONTINUE WHEN cardinality(pos) = 0;
        DELETE FROM lowcode.deliveries d
         WHERE d.app = capp AND d.consumer = c.name AND d.lease_id = l.id
           AND d.event_id = ANY (ARRAY(SELECT l.events[p] FROM unnest(pos) p));
        IF l.open = cardinality(pos) THEN
            DELETE FROM lowcode.leases x WHERE x.app = capp AND x.id = l.id;
        ELSE
            UPDATE lowcode.leases x
               SET events = ARRAY(SELECT CASE WHEN i = ANY (pos) THEN NULL ELSE l.events[i] END
                                    FROM generate_subscripts(l.events, 1) i ORDER BY i),
                   open = l.open - cardinality(pos)
             WHERE x.app = capp AND x.id = l.id;
        END IF;
        acked := acked + cardinality(pos);
    END LOOP;
    RETURN acked;
END $$;
COMMENT ON FUNCTION lowcode.ack_events(text, bigint[]) IS 'Acknowledge deliveries (the ids poll_events returned) a consumer has processed; returns how many were in flight. Acking twice, or a delivery whose lease ended, counts 0.';

CREATE FUNCTION lowcode.nack_event(consumer text, id bigint, error text, retry_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    l      lowcode.leases;
    p      int := (id % 65536)::int;
    ev     bigint;
    tried  int;
    wait   interval;
    dead   boolean;
    routed jsonb;
    capp   text;
BEGIN
    IF consumer IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'lowcode: nack_event: arguments "consumer" and "id" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    routed := lowcode.outbox_at('nack_event', consumer, NULL,
                                jsonb_build_object('id', id, 'error', error, 'retry_after', retry_after));
    IF routed ? 'r' THEN
        RETURN routed ->> 'r';
    END IF;
    c := lowcode.consumer_for(consumer, 'nack events', routed ->> 'app');
    capp := coalesce(c.app, '');
    SELECT * INTO l FROM lowcode.leases x WHERE x.app = capp AND x.id = nack_event.id / 65536 AND x.consumer = c.name FOR UPDATE;
    IF NOT FOUND OR p < 1 OR p > cardinality(l.events) OR l.events[p] IS NULL THEN
        RAISE EXCEPTION 'lowcode: delivery % is not in flight for consumer "%"', id, consumer
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'nack the id poll_events returned, before its visibility timeout ends';
    END IF;
    ev := l.events[p];
    tried := l.attempts[p];
    -- The wait: the one retry policy (crates/core/src/retry.rs), the consumer's backoff.
    wait := lowcode.retry_delay('consumer', tried, NULL, c.backoff);
    dead := tried >= c.max_attempts;
    INSERT INTO lowcode.deliveries AS d (app, consumer, event_id, status, attempt, visible_at, last_error)
    VALUES (capp, c.name, ev, CASE WHEN dead THEN 'dead' ELSE 'pending' END, tried,
            now() + coalesce(retry_after, wait, interval '0'),
            error)
    ON CONFLICT ON CONSTRAINT deliveries_pkey DO UPDATE
       SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, visible_at = EXCLUDED.visible_at,
           last_error = EXCLUDED.last_error, lease_id = NULL;
    IF l.open = 1 THEN
        DELETE FROM lowcode.leases x WHERE x.app = capp AND x.id = l.id;
    ELSE
        UPDATE lowcode.leases x SET events[p] = NULL, open = l.open - 1 WHERE x.app = capp AND x.id = l.id;
    END IF;
    RETURN CASE WHEN dead THEN 'dead' ELSE 'retry' END;
END $$;
COMMENT ON FUNCTION lowcode.nack_event(text, bigint, text, interval) IS 'Report a failed delivery (the id poll_events returned): retried after retry_after or the consumer''s backoff; after its max_attempts it becomes a dead letter with this error. Returns retry or dead.';

CREATE FUNCTION lowcode.replay_dead_letters(topic text, consumer text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    replayed int;
    routed   jsonb;
    c        lowcode.consumers;
BEGIN
    IF consumer IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'replay dead letters of every consumer');
        PERFORM lowcode.outbox_at('replay_dead_letters', NULL, NULL, '{}');
    ELSE
        routed := lowcode.outbox_at('replay_dead_letters', consumer, NULL, jsonb_build_object('topic', topic));
        IF routed ? 'r' THEN
            RETURN (routed ->> 'r')::int;
        END IF;
        c := lowcode.consumer_for(consumer, 'replay dead letters', routed ->> 'app');
    END IF;
    UPDATE lowcode.deliveries d SET status = 'pending', attempt = 0, visible_at = now(), lease_id = NULL
      FROM lowcode.events e
     WHERE e.id = d.event_id AND d.status = 'dead' AND e.topic = topic
       AND (consumer IS NULL OR (d.consumer = consumer AND d.app = coalesce(c.app, '')
                                 AND (c.app IS NULL OR e.app = c.app)));
    GET DIAGNOSTICS replayed = ROW_COUNT;
    RETURN replayed;
END $$;
COMMENT ON FUNCTION lowcode.replay_dead_letters(text, text) IS 'Put a topic''s dead letters (of one consumer, or of all: administrators) back in the queue with fresh attempts; returns how many.';

-- ---------------------------------------------------------------- lag and retention

CREATE FUNCTION lowcode.consumer_lag(consumer text)
RETURNS TABLE (name text, app text, topics text[], lag_events bigint, lag_seconds double precision,
               in_flight bigint, retrying bigint, dead bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    routed jsonb := lowcode.outbox_at('consumer_lag', consumer, NULL, '{}');
    on_app text := routed ->> 'app';
BEGIN
    IF routed ? 'r' THEN
        RETURN QUERY SELECT * FROM jsonb_to_recordset(routed -> 'r')
            AS r(name text, app text, topics text[], lag_events bigint, lag_seconds double precision,
                 in_flight bigint, retrying bigint, dead bigint);
        RETURN;
    END IF;
    IF on_app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = consumer;
    ELSE
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = on_app AND x.name = consumer;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown consumer "%"', consumer USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT (lowcode.is_admin() OR (c.app IS NOT NULL AND lowcode.may(c.app, 'consume'))) THEN
        PERFORM lowcode.refuse(c.app, 'consume', format('see the lag of consumer %s', consumer));
    END IF;
    RETURN QUERY
    SELECT c.name, c.app, c.topics, count(*), extract(epoch FROM clock_timestamp() - min(e.created_at))::double precision,
           (SELECT coalesce(sum(l.open), 0)::bigint FROM lowcode.leases l WHERE l.app = coalesce(c.app, '') AND l.consumer = c.name),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.app = coalesce(c.app, '') AND d.consumer = c.name AND d.status = 'pending'),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.app = coalesce(c.app, '') AND d.consumer = c.name AND d.status = 'dead')
      FROM lowcode.events e
      -- (On a distributed runtime: the epoch of each event, lowcode.outbox_epochs; the events
      -- of epochs after the consumer's are all ahead of it.)
      LEFT JOIN LATERAL (SELECT x.epoch FROM lowcode.outbox_epochs x
                          WHERE on_app IS NOT NULL AND x.app = on_app AND x.origin = (e.id >> 48) AND x.first_id <= e.id
                          ORDER BY x.epoch DESC LIMIT 1) k ON true
     WHERE (on_app IS NOT NULL AND coalesce(k.epoch, 0) > c.epoch
            OR (on_app IS NULL OR coalesce(k.epoch, 0) = c.epoch)
               AND e.txid >= pg_snapshot_xmin(c.batch_from)
               AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
               AND NOT (pg_visible_in_snapshot(e.txid, c.batch_to) AND (e.txid, e.id) <= (c.pos_txid, c.pos_id)))
       AND (c.app IS NULL OR e.app = c.app)
       AND (c.topics IS NULL OR lowcode.topic_matches(e.topic, c.topics));
END $$;
COMMENT ON FUNCTION lowcode.consumer_lag(text) IS 'How far a consumer is behind: committed events it has not been handed yet (lag_events, and the age of the oldest in seconds), deliveries in flight, retries waiting, dead letters.';

CREATE FUNCTION lowcode.purge_events(older_than interval) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    passed  xid8;
    leased  bigint;
    gone    int;
    routed  jsonb;
    on_app  text;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'purge events');
    -- On a distributed runtime, app by app on the app's node (lowcode.outbox_at): each node's
    -- transaction ids are its own, and an app's consumers read its events epoch by epoch.
    routed := lowcode.outbox_at('purge_events', NULL, NULL, jsonb_build_object('older_than', older_than));
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::int;
    END IF;
    on_app := routed ->> 'app';
    IF on_app IS NOT NULL THEN
        -- An event of the app that every consumer of the app has passed: of an epoch before
        -- the consumer's, or of its epoch and a transaction older than its cursor_xid.
        DELETE FROM lowcode.events e
         WHERE e.app = on_app
           AND e.created_at < now() - older_than
           AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.app = on_app AND d.event_id = e.id)
           AND NOT EXISTS (SELECT FROM lowcode.leases l WHERE l.app = on_app AND e.id = ANY (l.events))
           AND NOT EXISTS (
                 SELECT FROM lowcode.consumers c
                  CROSS JOIN LATERAL (SELECT coalesce((SELECT x.epoch FROM lowcode.outbox_epochs x
                                                        WHERE x.app = on_app AND x.origin = (e.id >> 48) AND x.first_id <= e.id
                                                        ORDER BY x.epoch DESC LIMIT 1), 0) AS epoch) k
                  WHERE c.app = on_app
                    AND NOT (k.epoch < c.epoch OR (k.epoch = c.epoch AND e.txid < c.cursor_xid)));
        GET DIAGNOSTICS gone = ROW_COUNT;
        RETURN gone;
    END IF;
    -- Every consumer has passed the events of transactions older than its cursor_xid; events
    -- in flight or with retries or dead letters stay.
    SELECT c.cursor_xid INTO passed FROM lowcode.consumers c ORDER BY c.cursor_xid LIMIT 1;
    SELECT min(e) INTO leased FROM lowcode.leases l, unnest(l.events) e;
    DELETE FROM lowcode.events e
     WHERE e.txid < coalesce(passed, pg_snapshot_xmin(pg_current_snapshot()))
       AND e.created_at < now() - older_than
       AND e.id < coalesce(leased, 9223372036854775807)
       AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id);
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;
COMMENT ON FUNCTION lowcode.purge_events(interval) IS 'Delete events older than older_than that every consumer has passed; events in flight, retried or dead stay. Returns how many. On a distributed runtime, app by app on the app''s node.';

CREATE VIEW lowcode.outbox_retention AS
SELECT e.id AS oldest_event, e.created_at AS oldest_created_at,
       CASE WHEN EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id AND d.status = 'dead')
                 THEN 'a dead letter of ' || (SELECT string_agg(d.consumer, ', ' ORDER BY d.consumer) FROM lowcode.deliveries d WHERE d.event_id = e.id)
            WHEN EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id)
                 THEN 'retried by ' || (SELECT string_agg(d.consumer, ', ' ORDER BY d.consumer) FROM lowcode.deliveries d WHERE d.event_id = e.id)
            WHEN EXISTS (SELECT FROM lowcode.leases l WHERE e.id = ANY (l.events))
                 THEN 'in flight for ' || (SELECT string_agg(DISTINCT l.consumer, ', ') FROM lowcode.leases l WHERE e.id = ANY (l.events))
            WHEN EXISTS (SELECT FROM lowcode.consumers c WHERE e.txid >= c.cursor_xid)
                 THEN 'not yet passed by ' || (SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM lowcode.consumers c WHERE e.txid >= c.cursor_xid)
            ELSE 'passed by every consumer: purge_events deletes it once it is old enough' END AS kept_because
  FROM (SELECT * FROM lowcode.events ORDER BY id LIMIT 1) e;
COMMENT ON VIEW lowcode.outbox_retention IS 'The oldest event the outbox keeps, and why: a dead letter, a retry, in flight, a consumer that has not passed it, or only its age.';

-- Wake-ups: consumers LISTEN lowcode_events; whoever ticks (the lowcode worker, or a
-- scheduler) calls this in a transaction of its own, so that writers never NOTIFY.
CREATE TABLE lowcode.outbox_signal (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_event   bigint NOT NULL DEFAULT 0,
    signalled_at timestamptz
);
COMMENT ON TABLE lowcode.outbox_signal IS 'The newest event lowcode.signal_events has announced (one row).';
INSERT INTO lowcode.outbox_signal DEFAULT VALUES;

CREATE FUNCTION lowcode.signal_events() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    newest  bigint;
    before  bigint;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'signal events');
    SELECT max(e.id) INTO newest FROM lowcode.events e;
    SELECT s.last_event INTO before FROM lowcode.outbox_signal s FOR UPDATE SKIP LOCKED;
    IF NOT FOUND OR newest IS NULL OR newest <= before THEN
        RETURN 0;
    END IF;
    UPDATE lowcode.outbox_signal s SET last_event = newest, signalled_at = now();
    PERFORM pg_notify('lowcode_events', newest::text);
    RETURN newest - before;
END $$;
COMMENT ON FUNCTION lowcode.signal_events() IS 'NOTIFY lowcode_events (payload: the newest event id) when events were committed since the last signal; returns how many. Called by a ticker in its own transaction, never by writers.';
