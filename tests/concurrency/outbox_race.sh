#!/usr/bin/env bash
# outbox_race — a producer emits 5,000 events in 50 transactions while 2 consumers, each
# with 3 concurrent pollers, poll batches of 100 (one transaction), record what they got
# (same transaction) and ack it by delivery id (next transaction).
# Invariants: every event delivered to each consumer once, at attempt 1, and acked once; no
# event handed to two pollers of the same consumer (all acks came well within the visibility
# timeout, so a second hand-out would be a double delivery); no retry rows were made.
# Then visibility expiry and stale acks: a poller takes events and does not ack; another
# poller of the same consumer gets nothing until the visibility passes, then the same events
# at attempt 2 with new delivery ids; the first poller's late ack, made *before* the second
# poller acks, acknowledges nothing, and the second poller's ack then acknowledges them all.
# Then kill -9 of a consumer client in the middle of a poll's transaction (nothing handed
# out, so its events come at attempt 1) and after a poll committed (its events come back
# after the visibility timeout, at attempt 2).
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

EVENTS=5000
BATCHES=50
POLLERS=3
CONSUMERS="c1 c2"

sql >/dev/null <<'SQL'
CREATE TABLE received (consumer text NOT NULL, poller text NOT NULL, event_id bigint NOT NULL,
                       delivery bigint NOT NULL, attempt int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE producer_done (done boolean);
-- How many deliveries each ack named and how many it acknowledged.
CREATE TABLE acks (consumer text NOT NULL, poller text NOT NULL, named int NOT NULL, acked int NOT NULL);
-- Both consumers exist before the first event, so each must see all of them.
SELECT lowcode.create_consumer('c1'), lowcode.create_consumer('c2');
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
                         kept AS (INSERT INTO received (consumer, poller, event_id, delivery, attempt)
                                  SELECT '$c', 'p$p', event_id, id, attempt FROM got RETURNING delivery)
                    SELECT array_agg(delivery) INTO ids FROM kept;
                    COMMIT;
                    IF ids IS NULL THEN
                        EXIT WHEN EXISTS (SELECT FROM producer_done)
                              AND (SELECT count(DISTINCT event_id) FROM received WHERE consumer = '$c')
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
    expect "$c: acks that acknowledged fewer deliveries than they named" 0 "
        SELECT count(*) FROM acks WHERE consumer = '$c' AND acked <> named"
    expect "$c: acknowledged in all" "$EVENTS" "SELECT sum(acked) FROM acks WHERE consumer = '$c'"
    expect "$c: deliveries not at attempt 1" 0 "SELECT count(*) FROM received WHERE consumer = '$c' AND attempt <> 1"
    pollers="$(val "SELECT count(DISTINCT poller) FROM received WHERE consumer = '$c'")"
    [ "$pollers" -ge 2 ] || fail "$c: only $pollers poller got events: the pollers did not run concurrently"
done
expect "rows of their own (none on the happy path)" 0 "SELECT count(*) FROM lowcode.deliveries"
expect "leases left" 0 "SELECT count(*) FROM lowcode.leases"
echo "delivered $EVENTS events (emitted in $BATCHES transactions meanwhile) exactly once to each of 2 consumers" \
    "with $POLLERS pollers each in ${took} ms; per poller: $(val "SELECT string_agg(consumer || '/' || poller || '=' || n, ' '
        ORDER BY consumer, poller) FROM (SELECT consumer, poller, count(*) n FROM received GROUP BY 1, 2) s")"

# ------------------------------------------------------------------ visibility expiry, stale acks
val "SELECT count(lowcode.emit('late', jsonb_build_object('n', g))) FROM generate_series(1, 10) g" >/dev/null
sql >/dev/null <<'SQL'
CREATE TABLE first_poll AS SELECT * FROM lowcode.poll_events('c1', 100, '1 second');
SQL
want="$(val "SELECT string_agg(id || ':1', ',' ORDER BY id) FROM lowcode.events WHERE topic = 'late'")"
expect "visibility: the first poller gets the 10 new events at attempt 1" "$want" \
    "SELECT string_agg(event_id || ':' || attempt, ',' ORDER BY event_id) FROM first_poll"
t1=$(now_ms)
during="$(val "SELECT count(*) FROM lowcode.poll_events('c1', 100, '1 second')")"
[ "$during" = 0 ] || [ $(($(now_ms) - t1)) -ge 900 ] ||
    fail "visibility: another poller got $during events while they were in flight"
sleep 1.2
sql >/dev/null <<'SQL'
CREATE TABLE second_poll AS SELECT * FROM lowcode.poll_events('c1', 100, '30 seconds');
SQL
want2="$(val "SELECT string_agg(id || ':2', ',' ORDER BY id) FROM lowcode.events WHERE topic = 'late'")"
expect "visibility: after it passed, the events come back at attempt 2" "$want2" \
    "SELECT string_agg(event_id || ':' || attempt, ',' ORDER BY event_id) FROM second_poll"
expect "redeliveries have new delivery ids" 0 "SELECT count(*) FROM first_poll f JOIN second_poll s ON s.id = f.id"
# The late ack comes first: it must not acknowledge the redelivery the second poller holds.
expect "late ack by the first poller, before the second poller acks" 0 \
    "SELECT lowcode.ack_events('c1', array_agg(id)) FROM first_poll"
expect "the redelivery is still in flight" 10 \
    "SELECT count(*) FROM lowcode.deliveries WHERE consumer = 'c1' AND status = 'pending' AND lease_id IS NOT NULL"
expect "ack by the second poller" 10 "SELECT lowcode.ack_events('c1', array_agg(id)) FROM second_poll"
expect "c1's retry rows are gone once acked" 0 "SELECT count(*) FROM lowcode.deliveries WHERE consumer = 'c1'"
expect "c2 still gets the late events once, at attempt 1" "10:1" "
    SELECT count(*) || ':' || max(attempt) FROM lowcode.poll_events('c2', 100)"
echo "visibility expiry: 10 unacked events came back to another poller at attempt 2 after 1 s, not before;" \
    "the first poller's late ack, made before the second poller's, acknowledged none"

# ------------------------------------------------------------------ kill -9 of a consumer
# A consumer whose client dies in the middle of a poll's transaction handed nothing out: the
# events come at attempt 1. One that dies after its poll committed (before acking) gets them
# back after the visibility timeout, at attempt 2.
# kill9 MARKER — kill -9 the psql client running the query marked MARKER; wait for its backend to go.
kill9() {
    pkill -9 -f "$1" || fail "no client running $1 to kill"
    for _ in $(seq 1 100); do
        [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$1%' AND pid <> pg_backend_pid()")" = 0 ] && return 0
        sleep 0.1
    done
    fail "the backend of the killed client running $1 did not end"
}
# wait_for MARKER — until a session runs the query marked MARKER.
wait_for() {
    for _ in $(seq 1 100); do
        [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$1%' AND state = 'active' AND pid <> pg_backend_pid()")" = 1 ] &&
            return 0
        sleep 0.1
    done
    fail "no session got to $1"
}
sql >/dev/null <<'SQL'
SELECT lowcode.create_consumer('k1'), lowcode.create_consumer('k2');
SELECT count(lowcode.emit('kill', jsonb_build_object('n', g))) FROM generate_series(1, 20) g;
SQL
session killed_mid -c "BEGIN" -c "SELECT count(*) FROM lowcode.poll_events('k1', 100)" -c "SELECT pg_sleep(30) AS mid_marker"
wait_for mid_marker
kill9 mid_marker
expect "killed in the middle of a poll: its events come at attempt 1" "20:1" \
    "SELECT count(*) || ':' || max(attempt) FROM lowcode.poll_events('k1', 100)"
t2=$(now_ms)
session killed_after -c "SELECT count(*) FROM lowcode.poll_events('k2', 100, '4 seconds')" -c "SELECT pg_sleep(30) AS after_marker"
wait_for after_marker
kill9 after_marker
expect "killed after its poll: nothing while in flight" 0 "SELECT count(*) FROM lowcode.poll_events('k2', 100)"
left=$((4500 - ($(now_ms) - t2)))
[ "$left" -gt 0 ] || fail "killing the client took longer than the 4 s visibility timeout"
sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
expect "killed after its poll: the events come back after the visibility timeout, at attempt 2" "20:2" \
    "SELECT count(*) || ':' || max(attempt) FROM lowcode.poll_events('k2', 100)"
wait "${conc_pids[@]}" 2>/dev/null || true
conc_pids=()
conc_names=()
echo "kill -9 of a consumer: mid-poll nothing was handed out (attempt 1); after a poll, the events came back at attempt 2"
