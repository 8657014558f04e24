#!/usr/bin/env bash
# outbox_late_commit — the outbox's central claim: an event committed late is never skipped, and
# a long transaction holds back only its own events.
# 1. Late commit: transaction L emits an event (its id is small: taken first) and stays open
#    while 200 other events are emitted, committed and consumed; then L commits. The consumer
#    gets L's event exactly once (a cursor on event ids or on committed xids would skip it).
# 2. Long transactions: L2 in this database emits an event and stays open 30 s; L3 in another
#    database holds a transaction id 30 s. Meanwhile 10,000 events are written (100 per
#    transaction) and consumed: all of them reach the consumer while L2 and L3 are still open
#    (a consumer waiting for the oldest running transaction would get none). When L2 commits,
#    its event arrives, once.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

LONG_SECONDS=30
EVENTS=10000

sql >/dev/null <<'SQL'
CREATE TABLE received (event_id bigint NOT NULL, topic text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
SELECT lowcode.create_consumer('c');
-- consume(seconds, until_topic): poll and ack until until_topic arrived (or time runs out).
CREATE PROCEDURE consume(seconds int, until_topic text) LANGUAGE plpgsql AS $$
DECLARE ids bigint[]; deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    LOOP
        WITH got AS (SELECT * FROM lowcode.poll_events('c', 100)),
             kept AS (INSERT INTO received (event_id, topic) SELECT event_id, topic FROM got RETURNING 1)
        SELECT array_agg(id) INTO ids FROM got;
        COMMIT;
        IF ids IS NOT NULL THEN
            PERFORM lowcode.ack_events('c', ids);
            COMMIT;
        END IF;
        EXIT WHEN EXISTS (SELECT FROM received WHERE topic = until_topic);
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'consume: % did not arrive in % s', until_topic, seconds;
        END IF;
        IF ids IS NULL THEN
            PERFORM pg_sleep(0.01);
        END IF;
    END LOOP;
END $$;
SQL

# ------------------------------------------------------------------ 1. a late commit
session late -c "BEGIN" -c "SELECT lowcode.emit('late.event')" -c "SELECT pg_sleep(3)" -c "COMMIT"
for _ in $(seq 1 100); do
    [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'")" = 1 ] && break
    sleep 0.05
done
val "SELECT count(lowcode.emit('early', jsonb_build_object('n', g))) FROM generate_series(1, 100) g" >/dev/null
val "SELECT count(lowcode.emit('early', jsonb_build_object('n', g))) FROM generate_series(101, 200) g" >/dev/null
sql -c "CALL consume(10, 'early')" >/dev/null
# Wait until everything committed so far is consumed, while "late" is still open.
for _ in $(seq 1 100); do
    [ "$(val "SELECT count(*) FROM received WHERE topic = 'early'")" = 200 ] && break
    sql -c "CALL consume(10, 'early')" >/dev/null
done
expect "the 200 early events consumed while the late transaction is open" "200|0" \
    "SELECT count(*) FILTER (WHERE topic = 'early'), count(*) FILTER (WHERE topic = 'late.event') FROM received"
wait_sessions
expect "the late transaction's event has the smallest id" t \
    "SELECT min(id) FILTER (WHERE topic = 'late.event') < min(id) FILTER (WHERE topic = 'early') FROM lowcode.events"
sql -c "CALL consume(10, 'late.event')" >/dev/null
expect "the late event delivered once, after its commit" 1 "SELECT count(*) FROM received WHERE topic = 'late.event'"
expect "nothing delivered twice" 0 "SELECT count(*) FROM (SELECT event_id FROM received GROUP BY 1 HAVING count(*) > 1) d"
echo "late commit: an event committed 3 s late, behind 200 consumed ones, was delivered once"

# ------------------------------------------------------------------ 2. long transactions
sql -c "CREATE DATABASE lc_conc_other" >/dev/null
session long_here -c "BEGIN" -c "SELECT lowcode.emit('long.event')" -c "SELECT pg_sleep($LONG_SECONDS)" -c "COMMIT"
PGDATABASE=lc_conc_other session long_elsewhere -c "BEGIN" -c "SELECT pg_current_xact_id()" -c "SELECT pg_sleep($LONG_SECONDS)" -c "COMMIT"
for _ in $(seq 1 100); do
    [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($LONG_SECONDS)' AND backend_xid IS NOT NULL")" = 2 ] && break
    sleep 0.05
done
t0=$(now_ms)
session producer -c "
    DO \$\$
    BEGIN
        FOR b IN 1..$((EVENTS / 100)) LOOP
            PERFORM lowcode.emit('bulk', jsonb_build_object('batch', b)) FROM generate_series(1, 100);
            COMMIT;
        END LOOP;
        PERFORM lowcode.emit('bulk.done');
    END \$\$"
sql -c "CALL consume($LONG_SECONDS, 'bulk.done')" >/dev/null
took=$(($(now_ms) - t0))
expect "all $EVENTS events consumed while both long transactions are open" "$EVENTS|2" "
    SELECT (SELECT count(*) FROM received WHERE topic = 'bulk'),
           (SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($LONG_SECONDS)' AND backend_xid IS NOT NULL)"
expect "the long transaction's event not yet" 0 "SELECT count(*) FROM received WHERE topic = 'long.event'"
wait_sessions
sql -c "CALL consume(10, 'long.event')" >/dev/null
expect "the long transaction's event delivered once, after its commit" 1 "SELECT count(*) FROM received WHERE topic = 'long.event'"
expect "nothing delivered twice" 0 "SELECT count(*) FROM (SELECT event_id FROM received GROUP BY 1 HAVING count(*) > 1) d"
expect "every event delivered" 0 "SELECT count(*) FROM lowcode.events e WHERE NOT EXISTS (SELECT FROM received r WHERE r.event_id = e.id)"
sql -c "DROP DATABASE lc_conc_other" >/dev/null
echo "long transactions: $EVENTS events written and consumed in ${took} ms while a transaction here" \
    "(with an event) and one in another database stayed open ${LONG_SECONDS} s; the long one's event came at its commit, once"
