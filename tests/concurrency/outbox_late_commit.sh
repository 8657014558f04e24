#!/usr/bin/env bash
# outbox_late_commit — the outbox's central claim: an event committed late is never skipped.
#
# Transaction A emits an event (the lower id) and stays open. Meanwhile transaction B emits an
# event (a higher id) and commits, and the consumer polls. Then A commits and the consumer
# polls again. Invariants:
#   - while A runs, the consumer gets nothing: B's event waits for A (an event is handed out
#     only once no transaction that could still commit an earlier event is running);
#   - once A has committed, the consumer gets both events, A's first: A's event was not
#     skipped although a later event was committed (and could have been delivered) before it.
# A poll that took everything visible (B's event) and moved the consumer's cursor past A's
# transaction would skip A's event for ever: this test fails then.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

sql >/dev/null <<'SQL'
CREATE TABLE go (go boolean);
-- The consumer exists (with its cursor) before either event.
SELECT count(*) FROM lowcode.poll_events('late', 100);
SQL

# A: emit, then wait (inside the transaction) until the test says go, then commit.
session a -c "BEGIN" -c "SELECT lowcode.emit('late.a', '{\"by\": \"A\"}')" -c "
    DO \$\$
    DECLARE deadline timestamptz := clock_timestamp() + interval '30 s';
    BEGIN
        WHILE NOT EXISTS (SELECT FROM go) LOOP
            IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'A: no go within 30 s'; END IF;
            PERFORM pg_sleep(0.01);
        END LOOP;
    END \$\$" -c "COMMIT"

# Wait until A has emitted (its transaction has an id) and is waiting.
for _ in $(seq 1 400); do
    [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND backend_xid IS NOT NULL AND query LIKE '%NOT EXISTS (SELECT FROM go)%'")" = 1 ] && break
    sleep 0.025
done
[ "$(val "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND backend_xid IS NOT NULL AND query LIKE '%NOT EXISTS (SELECT FROM go)%'")" = 1 ] ||
    fail "transaction A did not get to its wait"

# B: emit and commit while A is open; then the consumer polls.
val "SELECT lowcode.emit('late.b', '{\"by\": \"B\"}')" >/dev/null
during="$(val "SELECT coalesce(string_agg(topic, ',' ORDER BY id), '') FROM lowcode.poll_events('late', 100)")"

val "INSERT INTO go VALUES (true)" >/dev/null
wait_sessions

after="$(val "SELECT coalesce(string_agg(topic || ':' || attempt, ',' ORDER BY id), '') FROM lowcode.poll_events('late', 100)")"
expect "A's event has the lower id" "late.a,late.b" "SELECT string_agg(topic, ',' ORDER BY id) FROM lowcode.events"
[ "$after" = "late.a:1,late.b:1" ] ||
    fail "after A committed the consumer got '$after': A's event (committed late, lower id) was skipped$([ -n "$during" ] && echo " — the poll while A was open already took '$during' and moved past A")"
[ -z "$during" ] || fail "while A was open the consumer got '$during': B's event went ahead of A's, which was still uncommitted"
expect "each event delivered once" "2|1" "SELECT count(*), max(attempt) FROM lowcode.deliveries WHERE consumer = 'late'"
echo "an event committed after a later one was delivered, in id order, once: while A was open the poll got nothing; then $after"
