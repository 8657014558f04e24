-- The transactional outbox: emit (the rule action), consumers as managed objects (per app, by
-- topic), polls in batches from snapshots with delivery ids, acks, visibility timeouts, stale
-- acks, nacks with retry and backoff, dead letters, replay, lag, retention and purge, misuse.
-- A poll hands out events of transactions committed before it, so every emit and poll below is
-- its own statement (its own transaction). Late commits and long transactions are tested with
-- real sessions in tests/concurrency/outbox_*.sh.
CREATE EXTENSION lowcode;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
-- poll(consumer, max, visibility): poll into the table got (kept for acks), show event, topic, attempt.
CREATE TEMP TABLE got (id bigint, topic text, payload jsonb, attempt int, created_at timestamptz, event_id bigint, record_id bigint);
GRANT ALL ON got TO PUBLIC;
CREATE FUNCTION pg_temp.poll(who text, n int DEFAULT 100, vis interval DEFAULT '30 seconds')
RETURNS TABLE (event bigint, topic text, attempt int) LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM got;
    INSERT INTO got SELECT * FROM lowcode.poll_events(who, n, vis);
    RETURN QUERY SELECT g.event_id, g.topic, g.attempt FROM got g ORDER BY g.id;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.poll(text, int, interval) TO PUBLIC;
-- rows(consumer): its retry and dead-letter rows (the only per-event rows there are).
CREATE FUNCTION pg_temp.rows(who text)
RETURNS TABLE (event bigint, topic text, status text, attempt int, visible boolean, last_error text) LANGUAGE sql AS $$
    SELECT d.event_id, e.topic, d.status, d.attempt, d.visible_at <= now(), d.last_error
      FROM lowcode.deliveries d JOIN lowcode.events e ON e.id = d.event_id
     WHERE d.consumer = who ORDER BY d.event_id
$$;

SELECT lowcode.create_app('shop', 'Shop');
SELECT lowcode.define_form('shop', 'order', '{"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}');
SELECT lowcode.define_workflow('shop', 'order', '{
  "states": {"placed": {"initial": true}, "shipped": {"final": true}},
  "transitions": [{"name": "ship", "from": "placed", "to": "shipped"}],
  "rules": [{"name": "announce", "on": "created", "then": [{"emit": {"topic": "order.placed", "payload": {"source": "web"}}}]},
            {"name": "shipped", "on": "entered:shipped", "then": [{"emit": {"topic": "order.shipped"}}]}]}');
SELECT lowcode.create_app('hr', 'HR');
SELECT lowcode.define_form('hr', 'leave', '{"type": "object"}');
SELECT lowcode.define_workflow('hr', 'leave', '{"states": {"asked": {"initial": true}},
  "rules": [{"name": "tell", "on": "created", "then": [{"emit": {"topic": "leave.asked"}}]}]}');

-- ------------------------------------------------------------ consumers
-- billing reads shop's events, search only order.shipped, audit every app (administrators).
SELECT lowcode.create_consumer('billing', '{"app": "shop", "from": "beginning"}');
SELECT lowcode.create_consumer('search', '{"app": "shop", "topics": ["order.ship*", "order.shipped"], "max_attempts": 3}');
SELECT lowcode.create_consumer('audit', '{"from": "beginning", "backoff": ["10 seconds", "1 minute"]}');
SELECT lowcode.create_consumer('hr_feed', '{"app": "hr"}');
SELECT name, app, topics, max_attempts, backoff FROM lowcode.consumers ORDER BY name;
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('billing') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"app": "nope"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"topics": "order"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"backoff": ["soon"]}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"from": "yesterday"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"max_attempts": 0}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('x', '{"colour": "red"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('', '{}') $$);
-- A poll by a consumer that does not exist is an error, not a silent copy of the log.
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('ghost') $$);

-- ------------------------------------------------------------ emit
-- The emit action: the payload names the record, form, state, event and rule, with the data;
-- the event carries the record's app.
SELECT lowcode.submit('shop', 'order', '{"sku": "A-1", "qty": 2}') AS o1 \gset
SELECT lowcode.submit('hr', 'leave', '{}') AS h1 \gset
SELECT lowcode.transition(:o1, 'ship');
SELECT lowcode.emit('audit.ping');
-- An emit in a transaction that rolls back leaves no event.
BEGIN;
SELECT lowcode.emit('never.seen') AS rolled_back_event;
ROLLBACK;
SELECT id, topic, app, payload, record_id IS NOT NULL AS has_record FROM lowcode.events ORDER BY id;

-- ------------------------------------------------------------ polling and acking
-- Each consumer gets its events once: billing shop's, search only shipments, audit all;
-- search was created after the first events but after the first emit: from 'now'.
SELECT * FROM pg_temp.poll('billing');
CREATE TEMP TABLE billing_first AS SELECT id FROM got;
SELECT * FROM pg_temp.poll('search');
SELECT * FROM pg_temp.poll('audit');
-- The delivery ids name the poll (its lease) and the position in it; event_id stays the same.
SELECT id - min(id) OVER () AS position_offset, event_id FROM got ORDER BY id;
-- In flight: polling again gives nothing until they are acked or time out.
SELECT count(*) AS audit_again FROM lowcode.poll_events('audit');
-- No per-event row on the happy path: one lease per poll.
SELECT consumer, cardinality(events) AS events, open FROM lowcode.leases ORDER BY id;
SELECT count(*) AS delivery_rows FROM lowcode.deliveries;
-- ack: returns how many were in flight; acking again counts 0.
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got ORDER BY id LIMIT 2));
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got ORDER BY id LIMIT 2));
SELECT consumer, events, open FROM lowcode.leases WHERE consumer = 'audit';
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got));
SELECT count(*) AS audit_leases FROM lowcode.leases WHERE consumer = 'audit';
-- Someone else's delivery ids acknowledge nothing for this consumer.
SELECT lowcode.ack_events('search', ARRAY(SELECT id FROM got));

-- ------------------------------------------------------------ visibility timeouts, stale acks
-- billing's lease times out: its events come back, attempt 2, with new delivery ids; the
-- stale ids acknowledge nothing (the redelivery is someone else's now).
UPDATE lowcode.leases SET expires_at = now() - interval '1 second' WHERE consumer = 'billing';
SELECT * FROM pg_temp.poll('billing');
SELECT * FROM pg_temp.rows('billing');
SELECT lowcode.ack_events('billing', ARRAY(SELECT id FROM billing_first)) AS stale_acks;
SELECT lowcode.ack_events('billing', ARRAY(SELECT id FROM got));
SELECT * FROM pg_temp.rows('billing');
-- visibility => 0 seconds: immediately due again.
SELECT lowcode.emit('quick.1');
SELECT * FROM pg_temp.poll('audit', 10, '0 seconds');
SELECT * FROM pg_temp.poll('audit', 10, '0 seconds');
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got));
-- max limits how many are handed out; the batch goes on where the last poll left it.
SELECT lowcode.emit('bulk.1');
SELECT lowcode.emit('bulk.2');
SELECT lowcode.emit('bulk.3');
SELECT * FROM pg_temp.poll('audit', 2);
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got));
SELECT * FROM pg_temp.poll('audit', 2);
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got));

-- ------------------------------------------------------------ nack, backoff, dead letters
-- nack with retry_after: a row of its own, invisible until then, the error kept.
SELECT lowcode.submit('shop', 'order', '{"sku": "B-2"}') AS o2 \gset
SELECT lowcode.transition(:o2, 'ship');
SELECT * FROM pg_temp.poll('search');
SELECT lowcode.nack_event('search', (SELECT id FROM got), 'search index busy', '10 minutes');
SELECT * FROM pg_temp.rows('search');
SELECT ceil(extract(epoch FROM visible_at - now()) / 60) AS minutes FROM lowcode.deliveries WHERE consumer = 'search';
-- nack without retry_after: exponential backoff from the attempt (1 → 1 s, 2 → 2 s ...).
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search';
SELECT * FROM pg_temp.poll('search');
SELECT lowcode.nack_event('search', (SELECT id FROM got), 'still busy');
SELECT ceil(extract(epoch FROM visible_at - now())) AS seconds, attempt, last_error FROM lowcode.deliveries WHERE consumer = 'search';
-- The third attempt is search's last (max_attempts 3): its nack makes a dead letter.
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search';
SELECT * FROM pg_temp.poll('search');
SELECT lowcode.nack_event('search', (SELECT id FROM got), 'gave up');
SELECT * FROM pg_temp.rows('search');
SELECT count(*) AS dead_not_polled FROM lowcode.poll_events('search');
-- A consumer's own backoff schedule (audit: 10 s, then 1 minute for every later retry).
SELECT lowcode.emit('slow.1');
SELECT * FROM pg_temp.poll('audit');
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM got WHERE topic <> 'slow.1'));
SELECT lowcode.nack_event('audit', (SELECT id FROM got WHERE topic = 'slow.1'), 'first');
SELECT ceil(extract(epoch FROM visible_at - now())) AS seconds FROM lowcode.deliveries WHERE consumer = 'audit';
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'audit';
SELECT * FROM pg_temp.poll('audit');
SELECT lowcode.nack_event('audit', (SELECT id FROM got), 'second');
SELECT ceil(extract(epoch FROM visible_at - now())) AS seconds FROM lowcode.deliveries WHERE consumer = 'audit';
-- A delivery that is not in flight cannot be nacked; nor can one of another consumer.
SELECT pg_temp.err(format($$ SELECT lowcode.nack_event('audit', %s, 'late') $$, (SELECT id FROM got)));
SELECT pg_temp.err($$ SELECT lowcode.nack_event('audit', 42, 'nope') $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('ghost', 1, 'nope') $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('audit', NULL, 'x') $$);
-- An event not acknowledged within max_attempts visibility timeouts dies too.
SELECT lowcode.create_consumer('flaky', '{"from": "beginning", "max_attempts": 2, "topics": ["bulk.*"]}');
SELECT * FROM pg_temp.poll('flaky');
UPDATE lowcode.leases SET expires_at = now() - interval '1 second' WHERE consumer = 'flaky';
SELECT * FROM pg_temp.poll('flaky');
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'flaky';
SELECT * FROM pg_temp.poll('flaky');
SELECT * FROM pg_temp.rows('flaky');

-- ------------------------------------------------------------ replay, lag, retention
-- replay_dead_letters(topic): back in the queue with fresh attempts.
SELECT lowcode.replay_dead_letters('order.shipped');
SELECT * FROM pg_temp.poll('search');
SELECT lowcode.ack_events('search', ARRAY(SELECT id FROM got));
SELECT lowcode.replay_dead_letters('bulk.1', 'billing');
SELECT lowcode.replay_dead_letters('bulk.1', 'flaky');
SELECT * FROM pg_temp.rows('flaky');
-- Lag: committed events not handed out yet, in flight, retrying, dead.
SELECT lowcode.emit('late.1');
SELECT lowcode.emit('late.2');
SELECT name, app, lag_events, lag_seconds >= 0 AS has_age, in_flight, retrying, dead FROM lowcode.consumer_status ORDER BY name;
SELECT lag_events FROM lowcode.consumer_lag('audit');
SELECT pg_temp.err($$ SELECT * FROM lowcode.consumer_lag('ghost') $$);
-- Retention: what is kept, and why.
SELECT oldest_event, kept_because FROM lowcode.outbox_retention;
UPDATE lowcode.events SET created_at = now() - interval '2 days';
SELECT lowcode.purge_events('1 day');
SELECT oldest_event, kept_because FROM lowcode.outbox_retention;
-- Once every consumer has passed an event and nothing refers to it, it goes.
UPDATE lowcode.leases SET expires_at = now() - interval '1 second' WHERE consumer = 'search';
SELECT lowcode.ack_events('search', ARRAY(SELECT id FROM lowcode.poll_events('search')));
SELECT lowcode.drop_consumer('flaky');
SELECT lowcode.drop_consumer('flaky');
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM lowcode.poll_events('audit', 100, '0 seconds')));
SELECT lowcode.ack_events('audit', ARRAY(SELECT id FROM lowcode.poll_events('audit', 100, '0 seconds')));
SELECT lowcode.ack_events('billing', ARRAY(SELECT id FROM lowcode.poll_events('billing')));
SELECT count(*) AS search_polled FROM lowcode.poll_events('search');
UPDATE lowcode.events SET created_at = now() - interval '2 days';
SELECT lowcode.purge_events('1 day') > 0 AS purged;
SELECT id, topic FROM lowcode.events ORDER BY id;
SELECT oldest_event, kept_because FROM lowcode.outbox_retention;
SELECT lowcode.ack_events('hr_feed', ARRAY(SELECT id FROM lowcode.poll_events('hr_feed')));
SELECT lowcode.purge_events('1 day') AS purged_after_hr_feed;
SELECT oldest_event, kept_because FROM lowcode.outbox_retention;

-- ------------------------------------------------------------ who may consume
-- A role granted consume in shop polls shop's consumers, never hr's or the all-apps one.
SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_o_shopper;
RESET client_min_messages;
CREATE ROLE lc_o_shopper;
SELECT lowcode.grant('shop', 'lc_o_shopper', ARRAY['consume']);
SET ROLE lc_o_shopper;
SELECT pg_temp.err($$ SELECT count(*) FROM lowcode.poll_events('hr_feed') $$);
SELECT pg_temp.err($$ SELECT count(*) FROM lowcode.poll_events('audit') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_consumer('mine', '{"app": "shop"}') $$);
SELECT name FROM lowcode.consumer_status ORDER BY name;
RESET ROLE;
SELECT lowcode.submit('shop', 'order', '{"sku": "C-3"}') AS o3 \gset
SET ROLE lc_o_shopper;
SELECT * FROM pg_temp.poll('billing');
SELECT lowcode.ack_events('billing', ARRAY(SELECT id FROM got));
SELECT pg_temp.err($$ SELECT * FROM lowcode.outbox_retention $$);
RESET ROLE;
SELECT lowcode.submit('hr', 'leave', '{}') AS h2 \gset
SELECT * FROM pg_temp.poll('hr_feed');

-- ------------------------------------------------------------ wake-ups
-- Writers never NOTIFY; signal_events does, once per batch of new events, in its own transaction.
SELECT lowcode.signal_events() > 0 AS signalled;
SELECT lowcode.signal_events() AS nothing_new;

-- ------------------------------------------------------------ one topic matcher, one retry policy
-- Consumers (poll_events, consumer_lag) and webhooks match topics with the same Rust function:
-- exact names, 'prefix.*', '*'; no list or an empty one: every topic.
SELECT t.topic, p.topics, lowcode.topic_matches(t.topic, p.topics) AS matches
  FROM (VALUES ('order.shipped'), ('order'), ('orders.x')) t(topic),
       (VALUES (NULL::text[]), ('{}'), ('{*}'), ('{order.*}'), ('{order.shipped}')) p(topics)
 ORDER BY 1, p.topics::text COLLATE "C" NULLS FIRST;
-- Timers (30 s doubling, 5 attempts), consumers (their schedule, or 1 s doubling to 1 h, up to
-- max_attempts): NULL is "no more attempts".
SELECT a AS tried, lowcode.retry_delay('timer', a) AS timer,
       lowcode.retry_delay('consumer', a, 3) AS consumer_3,
       lowcode.retry_delay('consumer', a, 10, '{10 seconds, 1 minute}') AS scheduled
  FROM generate_series(1, 6) a;
SELECT lowcode.retry_delay('consumer', 20) AS capped;
SELECT pg_temp.err($$ SELECT lowcode.retry_delay('sometimes', 1) $$);
SELECT lowcode.create_consumer('every', '{"app": "shop", "topics": ["*"], "from": "beginning"}');
SELECT lowcode.create_consumer('empty', '{"app": "shop", "topics": [], "from": "beginning"}');
SELECT (SELECT count(*) FROM lowcode.poll_events('every', 1000)) AS every_got,
       (SELECT count(*) FROM lowcode.poll_events('empty', 1000)) AS empty_got,
       (SELECT count(*) FROM lowcode.events WHERE app = 'shop') AS shop_events;
SELECT lowcode.drop_consumer('every'), lowcode.drop_consumer('empty');

-- ------------------------------------------------------------ bad arguments
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('') $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events(NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 0) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 70000) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 10, NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 10, '-5 minutes') $$);
SELECT pg_temp.err($$ SELECT lowcode.emit('') $$);
SELECT pg_temp.err($$ SELECT lowcode.ack_events('ghost', ARRAY[1]) $$);
DROP ROLE lc_o_shopper;
