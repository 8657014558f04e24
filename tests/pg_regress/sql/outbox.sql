-- The transactional outbox: emit (action and function), independent consumers, acks,
-- visibility timeouts, nacks with retry and backoff, dead letters, replay, purge, misuse.
-- poll_events hands out only events of transactions that finished before the poll started,
-- so every emit and poll below is its own statement (its own transaction).
CREATE EXTENSION lowcode;
-- err(sql): run sql, show SQLSTATE, message, DETAIL and HINT of the error it raises.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;
-- deliveries(consumer): that consumer's delivery states, by event.
CREATE FUNCTION pg_temp.deliveries(who text)
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

-- The emit action: the payload names the record, form, state, event and rule, with the data.
SELECT lowcode.submit('shop', 'order', '{"sku": "A-1", "qty": 2}') AS o1 \gset
SELECT id, topic, payload, record_id = :o1 AS for_o1 FROM lowcode.events ORDER BY id;
-- lowcode.emit directly, with and without a record.
SELECT lowcode.emit('inventory.low', '{"sku": "A-1", "left": 3}');
SELECT lowcode.emit('audit.ping');
SELECT lowcode.transition(:o1, 'ship');
-- An emit in a transaction that rolls back leaves no event.
BEGIN;
SELECT lowcode.emit('never.seen') AS rolled_back_event;
ROLLBACK;
SELECT id, topic, payload FROM lowcode.events WHERE id > 1 ORDER BY id;

-- Two consumers each get every event; attempts start at 1.
SELECT id, topic, attempt FROM lowcode.poll_events('billing');
SELECT id, topic, attempt FROM lowcode.poll_events('search');
-- In flight: polling again gives nothing until they are acked or time out.
SELECT count(*) AS billing_again FROM lowcode.poll_events('billing');
SELECT name, max_attempts FROM lowcode.consumers ORDER BY name;

-- ack: returns how many were pending; acking again, or someone else's, counts 0.
SELECT lowcode.ack_events('billing', ARRAY[1, 2, 3]);
SELECT lowcode.ack_events('billing', ARRAY[1, 2, 3]);
SELECT lowcode.ack_events('nobody', ARRAY[4]);
SELECT * FROM pg_temp.deliveries('billing');

-- An un-acked event comes back after its visibility timeout, with attempt 2.
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'billing' AND event_id = 4;
SELECT id, topic, attempt FROM lowcode.poll_events('billing');
-- visibility => 0 seconds: immediately visible again (search's first four are still in flight).
SELECT lowcode.emit('quick.1');
SELECT id, topic, attempt FROM lowcode.poll_events('search', 10, '0 seconds');
SELECT id, topic, attempt FROM lowcode.poll_events('search', 10, '0 seconds');
SELECT lowcode.ack_events('search', ARRAY[6]);
-- max limits how many are handed out.
SELECT lowcode.emit('bulk.1');
SELECT lowcode.emit('bulk.2');
SELECT lowcode.emit('bulk.3');
SELECT id, topic, attempt FROM lowcode.poll_events('billing', 2);
SELECT id, topic, attempt FROM lowcode.poll_events('billing', 2);
SELECT lowcode.ack_events('billing', ARRAY[4, 5, 6, 7, 8]);

-- nack with retry_after: invisible until then, the error kept.
SELECT lowcode.nack_event('search', 1, 'search index busy', '10 minutes');
SELECT * FROM pg_temp.deliveries('search') WHERE event = 1;
SELECT ceil(extract(epoch FROM visible_at - now()) / 60) AS minutes
  FROM lowcode.deliveries WHERE consumer = 'search' AND event_id = 1;
-- nack without retry_after: exponential backoff from the attempt (attempt 1 → 1 s, 2 → 2 s ...).
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search' AND event_id = 1;
SELECT id, attempt FROM lowcode.poll_events('search', 1);
SELECT lowcode.nack_event('search', 1, 'still busy');
SELECT ceil(extract(epoch FROM visible_at - now())) AS seconds, attempt, last_error
  FROM lowcode.deliveries WHERE consumer = 'search' AND event_id = 1;
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search' AND event_id = 1;
SELECT id, attempt FROM lowcode.poll_events('search', 1);
SELECT lowcode.nack_event('search', 1, 'busy again');
SELECT ceil(extract(epoch FROM visible_at - now())) AS seconds, attempt
  FROM lowcode.deliveries WHERE consumer = 'search' AND event_id = 1;
-- nack of an event that is not in flight.
SELECT pg_temp.err($$ SELECT lowcode.nack_event('billing', 1, 'late') $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('billing', 999, 'nope') $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('ghost', 1, 'nope') $$);

-- After max_attempts an event becomes a dead letter (last error kept) and is not polled.
UPDATE lowcode.consumers SET max_attempts = 2 WHERE name = 'search';
SELECT * FROM pg_temp.deliveries('search') WHERE event = 1;
SELECT lowcode.nack_event('search', 1, 'gave up');
SELECT * FROM pg_temp.deliveries('search') WHERE event = 1;
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search';
SELECT id, topic, attempt FROM lowcode.poll_events('search');
-- An event never acked within max_attempts visibility timeouts also goes dead.
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search' AND status = 'pending';
SELECT id, topic, attempt FROM lowcode.poll_events('search');
UPDATE lowcode.deliveries SET visible_at = now() - interval '1 second' WHERE consumer = 'search' AND status = 'pending';
SELECT id, topic, attempt FROM lowcode.poll_events('search');
SELECT * FROM pg_temp.deliveries('search');
-- billing was not affected.
SELECT * FROM pg_temp.deliveries('billing');

-- replay_dead_letters(topic): back in the queue with fresh attempts.
SELECT lowcode.replay_dead_letters('order.placed');
SELECT lowcode.replay_dead_letters('order.placed');
SELECT id, topic, attempt FROM lowcode.poll_events('search');
SELECT lowcode.ack_events('search', ARRAY[1]);
-- replay for one consumer only.
SELECT lowcode.replay_dead_letters('inventory.low', 'billing');
SELECT lowcode.replay_dead_letters('inventory.low', 'search');
SELECT * FROM pg_temp.deliveries('search') WHERE topic = 'inventory.low';

-- purge_events: deletes only events every consumer acked; dead letters and unacked stay.
UPDATE lowcode.events SET created_at = now() - interval '2 days';
SELECT lowcode.purge_events('1 day');
SELECT e.id, e.topic,
       (SELECT string_agg(d.consumer || ':' || d.status, ', ' ORDER BY d.consumer) FROM lowcode.deliveries d WHERE d.event_id = e.id) AS deliveries
  FROM lowcode.events e ORDER BY e.id;
-- Events newer than older_than stay even when acked.
SELECT lowcode.ack_events('search', ARRAY(SELECT event_id FROM lowcode.deliveries WHERE consumer = 'search' AND status = 'pending'));
SELECT id, topic, attempt FROM lowcode.poll_events('search');
SELECT lowcode.ack_events('search', ARRAY(SELECT event_id FROM lowcode.deliveries WHERE consumer = 'search' AND status = 'pending'));
UPDATE lowcode.events SET created_at = now() WHERE id = 2;
SELECT lowcode.purge_events('1 day');
SELECT id, topic FROM lowcode.events ORDER BY id;

-- A new consumer starts from the oldest event still kept.
SELECT id, topic, attempt FROM lowcode.poll_events('analytics');

-- Bad arguments.
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('') $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events(NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 0) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 10, NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('billing', 10, '-5 minutes') $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('billing', NULL, 'x') $$);
SELECT pg_temp.err($$ SELECT lowcode.emit('') $$);
SELECT pg_temp.err($$ SELECT lowcode.emit(NULL) $$);
SELECT count(*) AS consumers_named_empty FROM lowcode.consumers WHERE name = '';
