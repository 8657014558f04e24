#!/usr/bin/env bash
# outbox_crash — the server crashes (pg_ctl stop -m immediate: no shutdown checkpoint, WAL
# replayed at restart) while a producer emits and 3 pollers poll and ack. After recovery the
# pollers carry on. Invariants: every committed event is delivered; each poll's record of what
# it got and each ack's count commit with the poll / ack itself, so after the crash the
# deliveries acknowledged add up to exactly the events (nothing acked twice), and events handed
# out again were only those in flight at the crash (at a later attempt, after their visibility).
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

POLLERS=3

sql >/dev/null <<'SQL'
CREATE TABLE received (poller text NOT NULL, event_id bigint NOT NULL, delivery bigint NOT NULL, attempt int NOT NULL);
CREATE TABLE acks (poller text NOT NULL, named int NOT NULL, acked int NOT NULL);
SELECT lowcode.create_consumer('c');
CREATE PROCEDURE consume(poller text, seconds int) LANGUAGE plpgsql AS $$
DECLARE ids bigint[]; deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        WITH got AS (SELECT * FROM lowcode.poll_events('c', 50, '2 seconds')),
             kept AS (INSERT INTO received SELECT poller, event_id, id, attempt FROM got RETURNING delivery)
        SELECT array_agg(delivery) INTO ids FROM kept;
        COMMIT;
        IF ids IS NULL THEN
            PERFORM pg_sleep(0.01);
        ELSE
            INSERT INTO acks VALUES (poller, cardinality(ids), lowcode.ack_events('c', ids));
            COMMIT;
        END IF;
    END LOOP;
END $$;
CREATE PROCEDURE produce(seconds int) LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        PERFORM lowcode.emit('crash', '{}') FROM generate_series(1, 20);
        COMMIT;
    END LOOP;
END $$;
SQL

session producer -c "CALL produce(30)"
for p in $(seq 1 "$POLLERS"); do
    session "poller_$p" -c "CALL consume('p$p', 30)"
done
for _ in $(seq 1 100); do
    [ "$(val "SELECT count(*) FROM received")" -ge 2000 ] && break
    sleep 0.1
done
before="$(val "SELECT count(*) FROM received")"
[ "$before" -ge 2000 ] || fail "only $before deliveries before the crash: the pollers did not get going"
val "CHECKPOINT" >/dev/null
# One poll is surely in flight at the crash: taken, recorded, never acked.
val "WITH got AS (SELECT * FROM lowcode.poll_events('c', 50, '2 seconds'))
     INSERT INTO received SELECT 'holder', event_id, id, attempt FROM got" >/dev/null
sleep 0.5
log_lines=$(wc -l <"$LC_LOGFILE")
lc_as_pg "$pg_bin/pg_ctl" stop -D "$LC_DATA" -m immediate -w -t 60 >/dev/null || fail "pg_ctl stop -m immediate failed"
wait "${conc_pids[@]}" 2>/dev/null || true
conc_pids=()
conc_names=()
lc_as_pg "$pg_bin/pg_ctl" start -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 >/dev/null ||
    fail "the cluster did not restart after the crash (see $LC_LOGFILE)"
tail -n +"$((log_lines + 1))" "$LC_LOGFILE" | grep -qE 'not properly shut down|was interrupted' ||
    fail "the restart did not go through crash recovery"
for _ in $(seq 1 100); do
    lc_as_pg "$pg_bin/pg_isready" -q -h "$PGHOST" -p "$PGPORT" && break
    sleep 0.1
done
events="$(val "SELECT count(*) FROM lowcode.events")"
in_flight="$(val "SELECT coalesce(sum(open), 0) FROM lowcode.leases")"

# The pollers carry on until everything is delivered (in-flight ones after their 2 s visibility).
for p in $(seq 1 "$POLLERS"); do
    session "after_$p" -c "CALL consume('a$p', 5)"
done
wait_sessions
expect "every committed event delivered" 0 \
    "SELECT count(*) FROM lowcode.events e WHERE NOT EXISTS (SELECT FROM received r WHERE r.event_id = e.id)"
expect "acks acknowledged what they named" 0 "SELECT count(*) FROM acks WHERE acked <> named"
expect "deliveries acknowledged = events (nothing acked twice)" "$events" "SELECT sum(acked) FROM acks"
expect "events handed out twice were in flight at the crash, and came back at a later attempt" 0 "
    SELECT count(*) FROM (SELECT event_id FROM received GROUP BY 1 HAVING count(*) > 1 AND max(attempt) < 2) d"
twice="$(val "SELECT count(*) FROM (SELECT event_id FROM received GROUP BY 1 HAVING count(*) > 1) d")"
[ "$in_flight" -ge 50 ] || fail "only $in_flight deliveries in flight at the crash: the holder's poll is lost"
[ "$twice" -ge 50 ] || fail "only $twice events came again: the holder's 50 in-flight events were not redelivered"
[ "$twice" -le "$in_flight" ] || fail "$twice events delivered twice, but only $in_flight were in flight at the crash"
expect "nothing left in flight" 0 "SELECT count(*) FROM lowcode.leases"
echo "crash mid-poll after $before deliveries: $events committed events, all delivered; $in_flight were in flight" \
    "at the crash and $twice came again (attempt 2); acknowledged exactly $events"
