#!/usr/bin/env bash
# outbox_race — a producer emits 5,000 events in 50 transactions while 2 consumers, each
# with 3 concurrent pollers, poll batches of 100 (one transaction), record what they got
# (same transaction) and ack it (next transaction).
# Invariants: every event delivered to each consumer, acked once, at attempt 1; no event
# handed to two pollers of the same consumer (all acks came well within the visibility
# timeout, so a second hand-out would be a double delivery).
# Then visibility expiry: a poller takes events and does not ack; another poller of the
# same consumer gets nothing until the visibility passes, then the same events at
# attempt 2; the first poller's late ack, sent while the second holds them, acknowledges
# them (once: the second poller's ack then acknowledges none, and none comes back).
# (That an event committed late is never skipped: outbox_late_commit.)
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

EVENTS=5000
BATCHES=50
POLLERS=3
CONSUMERS="c1 c2"

sql >/dev/null <<'SQL'
CREATE TABLE received (consumer text NOT NULL, poller text NOT NULL, event_id bigint NOT NULL,
                       attempt int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE producer_done (done boolean);
-- How many events each ack named and how many it acknowledged.
CREATE TABLE acks (consumer text NOT NULL, poller text NOT NULL, named int NOT NULL, acked int NOT NULL);
-- Both consumers exist before the first event, so each must see all of them.
SELECT count(*) FROM lowcode.poll_events('c1', 1) a, lowcode.poll_events('c2', 1) b;
SQL

barrier_start 7 1
t0=$(now_ms)
session producer -c "$(barrier_sql 1)" -c "
    DO \$\$
    BEGIN
        FOR b IN 1..$BATCHES LOOP
            PERFORM lowcode.emit('race.' || b, jsonb_build_object('batch', b, 'n', g))
               FROM generate_series(1, $EVENTS / $BATCHES) g;
            COMMIT;
        END LOOP;
        INSERT INTO producer_done VALUES (true);
    END \$\$"
for c in $CONSUMERS; do
    for p in $(seq 1 "$POLLERS"); do
        session "poller_${c}_$p" -c "$(barrier_sql 1)" -c "
            DO \$\$
            DECLARE ids bigint[]; deadline timestamptz := clock_timestamp() + interval '60 s';
            BEGIN
                LOOP
                    WITH got AS (SELECT * FROM lowcode.poll_events('$c', 100)),
                         kept AS (INSERT INTO received (consumer, poller, event_id, attempt)
                                  SELECT '$c', 'p$p', id, attempt FROM got RETURNING event_id)
                    SELECT array_agg(event_id) INTO ids FROM kept;
                    COMMIT;
                    IF ids IS NULL THEN
                        EXIT WHEN EXISTS (SELECT FROM producer_done)
                              AND (SELECT count(*) FROM lowcode.deliveries d
                                    WHERE d.consumer = '$c' AND d.status = 'acked')
                                = (SELECT count(*) FROM lowcode.events);
                        IF clock_timestamp() > deadline THEN
                            RAISE EXCEPTION 'poller $c/p$p: events still undelivered after 60 s';
                        END IF;
                        PERFORM pg_sleep(0.01);
                    ELSE
                        INSERT INTO acks VALUES ('$c', 'p$p', cardinality(ids), lowcode.ack_events('$c', ids));
                        COMMIT;
                    END IF;
                END LOOP;
            END \$\$"
    done
done
wait_sessions
took=$(($(now_ms) - t0))

expect "events emitted" "$EVENTS" "SELECT count(*) FROM lowcode.events"
for c in $CONSUMERS; do
    expect "$c: events never received" 0 "
        SELECT count(*) FROM lowcode.events e
         WHERE NOT EXISTS (SELECT FROM received r WHERE r.consumer = '$c' AND r.event_id = e.id)"
    dup="$(val "SELECT string_agg(format('event %s to %s', event_id, ps), '; ') FROM (
                  SELECT event_id, string_agg(poller || ' (attempt ' || attempt || ')', ', ' ORDER BY at) ps
                    FROM received WHERE consumer = '$c' GROUP BY event_id HAVING count(*) > 1
                   ORDER BY event_id LIMIT 10) d")"
    [ -z "$dup" ] || fail "$c: events handed out twice: $dup"
    expect "$c: acks that acknowledged fewer events than they named" 0 "
        SELECT count(*) FROM acks WHERE consumer = '$c' AND acked <> named"
    expect "$c: deliveries not acked at attempt 1" 0 "
        SELECT count(*) FROM lowcode.events e
          LEFT JOIN lowcode.deliveries d ON d.event_id = e.id AND d.consumer = '$c'
         WHERE d.status IS DISTINCT FROM 'acked' OR d.attempt <> 1"
    pollers="$(val "SELECT count(DISTINCT poller) FROM received WHERE consumer = '$c'")"
    [ "$pollers" -ge 2 ] || fail "$c: only $pollers poller got events: the pollers did not run concurrently"
done
echo "delivered $EVENTS events (emitted in $BATCHES transactions meanwhile) exactly once to each of 2 consumers" \
    "with $POLLERS pollers each in ${took} ms; per poller: $(val "SELECT string_agg(consumer || '/' || poller || '=' || n, ' '
        ORDER BY consumer, poller) FROM (SELECT consumer, poller, count(*) n FROM received GROUP BY 1, 2) s")"

# ------------------------------------------------------------------ visibility expiry
val "SELECT count(lowcode.emit('late', jsonb_build_object('n', g))) FROM generate_series(1, 10) g" >/dev/null
first="$(val "SELECT string_agg(id || ':' || attempt, ',' ORDER BY id) FROM lowcode.poll_events('c1', 100, '1 second')")"
want="$(val "SELECT string_agg(id || ':1', ',' ORDER BY id) FROM lowcode.events WHERE topic = 'late'")"
[ "$first" = "$want" ] || fail "visibility: the first poller should get the 10 new events at attempt 1: got $first, want $want"
t1=$(now_ms)
during="$(val "SELECT count(*) FROM lowcode.poll_events('c1', 100, '1 second')")"
[ "$during" = 0 ] || [ $(($(now_ms) - t1)) -ge 900 ] ||
    fail "visibility: another poller got $during events while they were in flight"
sleep 1.2
again="$(val "SELECT string_agg(id || ':' || attempt, ',' ORDER BY id) FROM lowcode.poll_events('c1', 100, '30 seconds')")"
want2="$(val "SELECT string_agg(id || ':2', ',' ORDER BY id) FROM lowcode.events WHERE topic = 'late'")"
[ "$again" = "$want2" ] || fail "visibility: after it passed, the events should come back at attempt 2: got $again, want $want2"
# The first poller's ack comes late, while the second poller holds the events. An ack says the
# consumer has processed the events, whoever sends it (ack_events takes no receipt): it
# acknowledges all 10, the second poller's ack then acknowledges none, and they never come back.
expect "late ack by the first poller, while the second holds the events" 10 \
    "SELECT lowcode.ack_events('c1', array_agg(id)) FROM lowcode.events WHERE topic = 'late'"
expect "the second poller's ack after it" 0 "SELECT lowcode.ack_events('c1', array_agg(id)) FROM lowcode.events WHERE topic = 'late'"
expect "acked events do not come back" 0 "
    UPDATE lowcode.deliveries SET visible_at = now() WHERE consumer = 'c1';
    SELECT count(*) FROM lowcode.poll_events('c1', 100)"
expect "c2 still gets the late events once, at attempt 1" "10:1" "
    SELECT count(*) || ':' || max(attempt) FROM lowcode.poll_events('c2', 100)"
echo "visibility expiry: 10 unacked events came back to another poller at attempt 2 after 1 s, not before"
