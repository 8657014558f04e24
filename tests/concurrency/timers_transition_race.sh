#!/usr/bin/env bash
# timers_transition_race — a timer bound to a state fires (its rule moves the record to
# "expired") at the same moment as a person moves the record out of that state (which
# cancels the timer), on RECORDS records, one barrier per record.
# A scheduler that locked the timer must never wait for the record (the transition, which
# holds the record, waits for the timer to cancel it: a deadlock), and a timer that loses
# a race must not be left permanently failed.
# Invariants: no timer 'failed', none left pending; for every record exactly one side
# won — either the timer fired (record expired, one timer_fired row, one event) or the
# transition did (record in "working", timer cancelled, no event); a losing transition
# gets 55000 (the record already left "waiting"), never a deadlock.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

RECORDS=20

sql >/dev/null <<SQL
SELECT lowcode.create_app('tt');
SELECT lowcode.define_form('tt', 'f', '{"type": "object"}');
SELECT lowcode.define_workflow('tt', 'f', '{
  "states": {"waiting": {"initial": true}, "working": {}, "expired": {"final": true}, "done": {"final": true}},
  "transitions": [{"name": "start", "from": "waiting", "to": "working"}, {"name": "finish", "from": "working", "to": "done"}],
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "expiry", "after": "1 hour"}}]},
            {"name": "expire", "on": "timer:expiry", "then": [{"transition": "expired"}, {"emit": {"topic": "tt.expired"}}]}]}');
SELECT lowcode.submit('tt', 'f', '{}') FROM generate_series(1, $RECORDS);
UPDATE lowcode.timers SET fire_at = now() - interval '1 second';
CREATE TABLE outcomes (who text, record_id bigint, result text, sqlstate text, message text);
SQL

keys="$(val "SELECT string_agg((1000 + id)::text, ' ' ORDER BY id) FROM lowcode.records")"
# shellcheck disable=SC2086
barrier_start 2 $keys
race_records scheduler "SET deadlock_timeout = '100ms'" "lowcode.run_due_timers(1)::text"
race_records person "SET deadlock_timeout = '100ms'" "lowcode.transition(rec, 'start')"
wait_sessions
# Timers left pending by a lost race fire (or stay cancelled) on the next run.
val "SELECT lowcode.run_due_timers()" >/dev/null

bad="$(val "SELECT string_agg(DISTINCT format('%s %s', sqlstate, message), '; ') FROM outcomes WHERE who = 'scheduler' AND result = 'error'")"
[ -z "$bad" ] || fail "run_due_timers raised: $bad"
bad="$(val "SELECT string_agg(format('timer %s of record %s: %s', id, record_id, error), '; ') FROM lowcode.timers WHERE status = 'failed'")"
[ -z "$bad" ] || fail "timers marked failed after losing a race: $bad"
expect "timers still pending" 0 "SELECT count(*) FROM lowcode.timers WHERE status = 'pending'"
bad="$(val "SELECT string_agg(DISTINCT format('%s %s', sqlstate, message), '; ') FROM outcomes
             WHERE who = 'person' AND result = 'error' AND sqlstate <> '55000'")"
[ -z "$bad" ] || fail "the transition failed with an unexpected error (a deadlock?): $bad"
bad="$(val "
    SELECT string_agg(format('record %s: state %s, timer %s, %s events, %s timer_fired, transition %s',
                             r.id, r.state, t.status, e.n, h.n, coalesce(o.sqlstate, o.result)), '; ')
      FROM lowcode.records r
      JOIN lowcode.timers t ON t.record_id = r.id
      JOIN outcomes o ON o.record_id = r.id AND o.who = 'person'
      CROSS JOIN LATERAL (SELECT count(*) n FROM lowcode.events e WHERE e.record_id = r.id) e
      CROSS JOIN LATERAL (SELECT count(*) n FROM lowcode.history h WHERE h.record_id = r.id AND h.action = 'timer_fired') h
     WHERE NOT ((r.state = 'expired' AND t.status = 'fired' AND e.n = 1 AND h.n = 1 AND o.result = 'error')
             OR (r.state = 'working' AND t.status = 'cancelled' AND e.n = 0 AND h.n = 0 AND o.result = 'working'))")"
[ -z "$bad" ] || fail "records where not exactly one side won: $bad"
expect "timers" "$RECORDS" "SELECT count(*) FROM lowcode.timers"
echo "$RECORDS timer-vs-transition races: $(val "SELECT string_agg(state || '=' || n, ' ' ORDER BY state) FROM (
        SELECT state, count(*) n FROM lowcode.records GROUP BY 1) s");" \
    "transition errors: $(val "SELECT coalesce(string_agg(sqlstate || '=' || n, ' ' ORDER BY sqlstate), 'none') FROM (
        SELECT sqlstate, count(*) n FROM outcomes WHERE who = 'person' AND result = 'error' GROUP BY 1) s");" \
    "no timer failed or left pending"
