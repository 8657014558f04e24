#!/usr/bin/env bash
# timers_race — 5,000 due timers (one per record, set by a rule, moved into the past),
# 4 schedulers calling lowcode.run_due_timers(100) at once, each call its own
# transaction, until it returns 0.
# Invariants: every timer fired exactly once — status 'fired', one 'timer_fired' history
# row per timer, one ping.fired event (from the timer:ping rule) per record and one row
# in the rule's own table per record — and the schedulers' return values add up to 5,000.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

TIMERS=5000
RUNNERS=4

sql >/dev/null <<'SQL'
SELECT lowcode.create_app('clock');
SELECT lowcode.define_form('clock', 'job', '{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}');
-- The rule calls this too, so every firing leaves a row we can count ourselves.
CREATE TABLE rings (record_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION public.ring(r jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.rings (record_id) VALUES ((r ->> 'id')::bigint)
$$;
SELECT lowcode.define_workflow('clock', 'job', '{
  "states": {"waiting": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "waiting", "to": "done"}],
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "ping", "after": "1 hour"}}]},
            {"name": "ring", "on": "timer:ping", "then": [{"emit": {"topic": "ping.fired"}}, {"call": "public.ring"}]}]}');
-- What each scheduler call returned.
CREATE TABLE runs (runner text NOT NULL, fired int NOT NULL);
SQL
ts=$(now_ms)
val "SELECT count(lowcode.submit('clock', 'job', jsonb_build_object('n', g))) FROM generate_series(1, $TIMERS) g" >/dev/null
echo "set up $TIMERS records with a timer each in $(($(now_ms) - ts)) ms"
expect "timers made due" "$TIMERS" "WITH u AS (UPDATE lowcode.timers SET fire_at = now() - interval '1 second'
                                             WHERE status = 'pending' RETURNING 1) SELECT count(*) FROM u"

barrier_start "$RUNNERS" 1
t0=$(now_ms)
for i in $(seq 1 "$RUNNERS"); do
    session "runner_$i" -c "$(barrier_sql 1)" -c "SET lock_timeout = '5s'" -c "
        DO \$\$
        DECLARE n int;
        BEGIN
            LOOP
                n := lowcode.run_due_timers(100);
                INSERT INTO runs VALUES ('r$i', n);
                COMMIT;
                EXIT WHEN n = 0;
            END LOOP;
        END \$\$"
done
wait_sessions
took=$(($(now_ms) - t0))

expect "timers not fired" 0 "SELECT count(*) FROM lowcode.timers WHERE status <> 'fired'"
bad="$(val "SELECT string_agg(DISTINCT error, '; ') FROM lowcode.timers WHERE status = 'failed'")"
[ -z "$bad" ] || fail "timers failed: $bad"
expect "timers fired" "$TIMERS" "SELECT count(*) FROM lowcode.timers WHERE status = 'fired' AND fired_at IS NOT NULL"
expect "sum of run_due_timers results" "$TIMERS" "SELECT sum(fired) FROM runs"
expect "timers whose timer_fired history count <> 1" 0 "
    SELECT count(*) FROM lowcode.timers t
      LEFT JOIN (SELECT (detail ->> 'timer')::bigint id, count(*) n FROM lowcode.history
                  WHERE action = 'timer_fired' GROUP BY 1) h ON h.id = t.id
     WHERE h.n IS DISTINCT FROM 1"
expect "timer_fired history rows" "$TIMERS" "SELECT count(*) FROM lowcode.history WHERE action = 'timer_fired'"
expect "records without exactly one ping.fired event" 0 "
    SELECT count(*) FROM lowcode.records r
      LEFT JOIN (SELECT record_id, count(*) n FROM lowcode.events WHERE topic = 'ping.fired' GROUP BY 1) e
             ON e.record_id = r.id
     WHERE e.n IS DISTINCT FROM 1"
expect "ping.fired events" "$TIMERS" "SELECT count(*) FROM lowcode.events WHERE topic = 'ping.fired'"
expect "records the rule's function saw other than once" 0 "
    SELECT count(*) FROM lowcode.records r
      LEFT JOIN (SELECT record_id, count(*) n FROM rings GROUP BY 1) g ON g.record_id = r.id
     WHERE g.n IS DISTINCT FROM 1"
expect "rows written by the rule" "$TIMERS" "SELECT count(*) FROM rings"
runners="$(val "SELECT count(DISTINCT runner) FROM runs WHERE fired > 0")"
[ "$runners" -ge 2 ] || fail "only $runners scheduler fired timers: the schedulers did not run concurrently"

echo "fired $TIMERS timers exactly once with $RUNNERS concurrent schedulers in ${took} ms;" \
    "per scheduler: $(val "SELECT string_agg(runner || '=' || n, ' ' ORDER BY runner) FROM (SELECT runner, sum(fired) n FROM runs GROUP BY runner) s")"
