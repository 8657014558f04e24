-- Sign-up chain (接龙): someone posts an event with a number of places; people add their name
-- to the list until it is full. The (N+1)th sign-up is refused — also when many people sign
-- up at the same second.
--
-- Shows: a rule that calls your function to enforce a limit across records, made safe under
-- concurrency by locking the event's record; a cancel transition that frees a place; the
-- numbered list (the "chain") as a query; concurrent sign-ups from several sessions (dblink).
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/signup_chain.sql
-- (as a superuser, or a user allowed to use dblink). Every step checks its own outcome and
-- stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;
CREATE EXTENSION IF NOT EXISTS dblink;

-- 1. Two forms: the event, and a sign-up pointing at it.
SELECT lowcode.create_app('chain', 'Sign-up chains');
SELECT lowcode.define_form('chain', 'event', '{
  "type": "object",
  "required": ["title", "capacity"],
  "properties": {
    "title":     {"type": "string", "minLength": 1},
    "capacity":  {"type": "integer", "minimum": 1},
    "starts_at": {"type": "string", "format": "date-time"}
  }}') AS version;
SELECT lowcode.define_form('chain', 'signup', '{
  "type": "object",
  "required": ["event", "name"],
  "properties": {
    "event": {"type": "integer"},
    "name":  {"type": "string", "minLength": 1, "maxLength": 40},
    "note":  {"type": "string", "maxLength": 100}
  }}') AS version;
SELECT lowcode.publish('chain') AS views;

-- 2. The limit. When a sign-up is created, rule "take_place" calls chain.take_place(), in the
--    same transaction as the insert. It first locks the event's record (SELECT ... FOR UPDATE),
--    so sign-ups to one event go through this check one at a time: a second one waits until
--    the first has committed or rolled back, and then counts it. Without the lock, two people
--    could both see "3 of 4 taken" and both join. Raising an error rolls the sign-up back.
CREATE FUNCTION chain.take_place(signup jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    event     lowcode.records;
    capacity  int;
    taken     int;
BEGIN
    SELECT * INTO event FROM lowcode.records
     WHERE id = (signup -> 'data' ->> 'event')::bigint AND app = 'chain' AND form = 'event'
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'chain: there is no event %', signup -> 'data' ->> 'event' USING ERRCODE = 'foreign_key_violation';
    END IF;
    capacity := (event.data ->> 'capacity')::int;
    IF EXISTS (SELECT FROM chain.signup s
                WHERE s.event = event.id AND s.name = signup -> 'data' ->> 'name'
                  AND s.state = 'joined' AND s.id <> (signup ->> 'id')::bigint) THEN
        RAISE EXCEPTION 'chain: % is already on the list for "%"', signup -> 'data' ->> 'name', event.data ->> 'title'
            USING ERRCODE = 'unique_violation';
    END IF;
    -- This sign-up is already inserted (the rule runs after the insert), so it counts itself.
    SELECT count(*) INTO taken FROM chain.signup s WHERE s.event = event.id AND s.state = 'joined';
    IF taken > capacity THEN
        RAISE EXCEPTION 'chain: "%" is full (% places)', event.data ->> 'title', capacity
            USING ERRCODE = 'check_violation', HINT = 'someone has to cancel first';
    END IF;
END $$;

SELECT lowcode.define_workflow('chain', 'signup', '{
  "states": {"joined": {"initial": true}, "cancelled": {"final": true}},
  "transitions": [{"name": "cancel", "from": "joined", "to": "cancelled"}],
  "rules": [{"name": "take_place", "on": "created", "then": [{"call": "chain.take_place"}]}]
  }') AS workflow_version;

-- The chain as people see it: joined names, numbered in the order they signed up.
CREATE VIEW chain.list AS
SELECT e.id AS event, e.title, e.capacity,
       row_number() OVER (PARTITION BY e.id ORDER BY s.id) AS place,
       s.name, s.note
  FROM chain.event e
  JOIN chain.signup s ON s.event = e.id AND s.state = 'joined';

-- A check used below: no event ever has more people than places.
CREATE FUNCTION pg_temp.check_capacity() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE e record;
BEGIN
    FOR e IN SELECT ev.title, ev.capacity, count(s.id) AS joined
               FROM chain.event ev LEFT JOIN chain.signup s ON s.event = ev.id AND s.state = 'joined'
              GROUP BY ev.id, ev.title, ev.capacity LOOP
        IF e.joined > e.capacity THEN
            RAISE EXCEPTION '"%" has % people for % places', e.title, e.joined, e.capacity;
        END IF;
    END LOOP;
    RETURN 'within capacity';
END $$;

-- 3. A hike with 3 places. Three people join; the fourth is refused.
INSERT INTO chain.event (title, capacity, starts_at)
VALUES ('Saturday hike', 3, '2026-04-04T08:00:00+08:00') RETURNING id AS hike \gset
INSERT INTO chain.signup (event, name, note) VALUES (:hike, 'xiaoming', 'bringing snacks');
INSERT INTO chain.signup (event, name) VALUES (:hike, 'xiaohong');
INSERT INTO chain.signup (event, name) VALUES (:hike, 'dawei');
DO $$
BEGIN
    INSERT INTO chain.signup (event, name) SELECT id, 'lili' FROM chain.event WHERE title = 'Saturday hike';
    RAISE EXCEPTION 'the 4th sign-up for 3 places should be refused';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
-- Nor can anyone sign up twice.
DO $$
BEGIN
    INSERT INTO chain.signup (event, name) SELECT id, 'dawei' FROM chain.event WHERE title = 'Saturday hike';
    RAISE EXCEPTION 'signing up twice should be refused';
EXCEPTION WHEN unique_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
SELECT place, name, note FROM chain.list WHERE event = :hike ORDER BY place;
SELECT pg_temp.check_capacity();

-- dawei cancels, which frees a place; now lili gets in.
SELECT lowcode.transition(id, 'cancel') AS state FROM chain.signup WHERE event = :hike AND name = 'dawei';
INSERT INTO chain.signup (event, name) VALUES (:hike, 'lili');
SELECT place, name, note FROM chain.list WHERE event = :hike ORDER BY place;
DO $$
BEGIN
    IF (SELECT array_agg(name ORDER BY place) FROM chain.list WHERE title = 'Saturday hike')
       IS DISTINCT FROM ARRAY['xiaoming', 'xiaohong', 'lili'] THEN
        RAISE EXCEPTION 'the hike list should be xiaoming, xiaohong, lili';
    END IF;
END $$;
SELECT pg_temp.check_capacity();

-- 4. The badminton court has 4 places and 2 are taken. The chain is posted in a group chat
--    and four more people sign up within the same second, each from their own session
--    (dblink opens them here). Each session holds its transaction open a moment after
--    signing up, so they really overlap. Exactly two of the four must get in.
INSERT INTO chain.event (title, capacity) VALUES ('Badminton, court 2', 4) RETURNING id AS court \gset
INSERT INTO chain.signup (event, name) VALUES (:court, 'ana'), (:court, 'ben');

-- Where this database is, so that the extra sessions connect to it. lock_timeout makes a
-- session that waits for a lock too long fail instead of hanging.
SELECT format('dbname=%s port=%s host=%s user=%s options=-clock_timeout=10s', current_database(), current_setting('port'),
              coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''), 'localhost'),
              current_user) AS here \gset
SELECT dblink_connect('p1', :'here'), dblink_connect('p2', :'here'),
       dblink_connect('p3', :'here'), dblink_connect('p4', :'here');
SELECT dblink_send_query(p, format('SELECT lowcode.submit(''chain'', ''signup'', %L) AS signup, pg_sleep(0.2)::text',
                                   jsonb_build_object('event', :court, 'name', 'player_' || p))) AS sent
  FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4']) AS p;

-- Collect the answers: a sign-up id, or no row (fail_on_error = false) and the error message.
CREATE TEMP TABLE rush AS
SELECT p AS session, r.signup,
       CASE WHEN r.signup IS NULL THEN regexp_replace(dblink_error_message(p), E'\nCONTEXT:.*', '') END AS refused
  FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4']) AS p
  LEFT JOIN LATERAL dblink_get_result(p, false) AS r(signup bigint, slept text) ON true;
-- (dblink wants one more, empty, result from each connection before it is used again.)
SELECT count(*) AS should_be_0
  FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4']) AS p,
       LATERAL dblink_get_result(p) AS r(signup bigint, slept text);
SELECT dblink_disconnect(p) FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4']) AS p;

SELECT * FROM rush ORDER BY signup NULLS LAST, session;
SELECT place, name FROM chain.list WHERE event = :court ORDER BY place;
DO $$
DECLARE
    got_in  int := (SELECT count(signup) FROM rush);
    joined  int := (SELECT count(*) FROM chain.list WHERE title = 'Badminton, court 2');
BEGIN
    IF got_in <> 2 THEN
        RAISE EXCEPTION '2 places were left, but % of the 4 concurrent sign-ups got in', got_in;
    END IF;
    IF joined <> 4 THEN
        RAISE EXCEPTION 'the court should be exactly full (4), not %', joined;
    END IF;
    IF (SELECT count(*) FROM rush WHERE refused LIKE '%is full (4 places)%') <> 2 THEN
        RAISE EXCEPTION 'the other two should be refused because the court is full: %',
            (SELECT string_agg(coalesce(refused, 'ok'), '; ') FROM rush);
    END IF;
    -- Refused sign-ups left nothing behind: not even a history row.
    IF (SELECT count(*) FROM lowcode.history WHERE app = 'chain' AND form = 'signup' AND action = 'created'
                                              AND after ->> 'event' = (SELECT id::text FROM chain.event WHERE capacity = 4)) <> 4 THEN
        RAISE EXCEPTION 'only the 4 accepted sign-ups should be in the history';
    END IF;
END $$;
SELECT pg_temp.check_capacity();

-- 5. All events at a glance.
SELECT e.title, e.capacity, count(s.id) FILTER (WHERE s.state = 'joined') AS joined,
       count(s.id) FILTER (WHERE s.state = 'cancelled') AS cancelled,
       e.capacity - count(s.id) FILTER (WHERE s.state = 'joined') AS places_left
  FROM chain.event e LEFT JOIN chain.signup s ON s.event = e.id
 GROUP BY e.id, e.title, e.capacity
 ORDER BY e.id;
