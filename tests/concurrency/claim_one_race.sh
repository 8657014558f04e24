#!/usr/bin/env bash
# claim_one_race — the inbox's Claim button: 300 pool tasks, 8 people (an app server acting for
# each through lowcode.actor) click Claim on every task, in the same order and at the same
# moment, each click its own transaction: lowcode.claim_task(task_id).
# Invariants: every task won exactly once (claim_task returned true once per task; the task
# row, the history 'task_claimed' rows and the clickers' own tally agree); every other click
# got false, none an error; nobody ever waited for a lock (lock_timeout 100ms); with
# "events": true, one <app>.task.claimed event per task.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

TASKS=300
PEOPLE=8

sql >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_inbox_app;
RESET client_min_messages;
CREATE ROLE lc_inbox_app;
SELECT lowcode.create_app('inbox');
SELECT lowcode.grant('inbox', 'lc_inbox_app', ARRAY['claim', 'act_as']);
SELECT lowcode.define_form('inbox', 'fault', '{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}');
SELECT lowcode.define_workflow('inbox', 'fault', '{
  "states": {"open": {"initial": true}},
  "rules": [{"name": "pool", "on": "created", "then": [{"task": {"name": "fix", "pool": "engineers", "events": true}}]}]}');
-- What each person's click returned, written in the transaction of the click.
CREATE TABLE clicks (person text NOT NULL, task_id bigint NOT NULL, won boolean NOT NULL);
GRANT INSERT ON clicks TO lc_inbox_app;
SQL
val "SELECT count(lowcode.submit('inbox', 'fault', jsonb_build_object('n', g))) FROM generate_series(1, $TASKS) g" >/dev/null
expect "open tasks" "$TASKS" "SELECT count(*) FROM lowcode.tasks WHERE status = 'open'"
# The inbox the people see (as the superuser lists it: the app server need not read tasks).
sql -c "CREATE TABLE inbox AS SELECT id FROM lowcode.tasks" -c "GRANT SELECT ON inbox TO lc_inbox_app" >/dev/null

barrier_start "$PEOPLE" 1
t0=$(now_ms)
for p in $(seq 1 "$PEOPLE"); do
    session "person_$p" -c "$(barrier_sql 1)" -c "SET lock_timeout = '100ms'" -c "SET ROLE lc_inbox_app" -c "
        DO \$\$
        DECLARE t bigint; w boolean;
        BEGIN
            FOR t IN SELECT id FROM public.inbox ORDER BY id LOOP
                PERFORM set_config('lowcode.actor', 'p$p', true);
                w := lowcode.claim_task(t);
                INSERT INTO public.clicks VALUES ('p$p', t, w);
                COMMIT;
            END LOOP;
        END \$\$"
done
wait_sessions
took=$(($(now_ms) - t0))

expect "clicks recorded" "$((TASKS * PEOPLE))" "SELECT count(*) FROM clicks"
expect "tasks not won exactly once" 0 "
    SELECT count(*) FROM (SELECT task_id FROM clicks GROUP BY task_id HAVING count(*) FILTER (WHERE won) <> 1) x"
expect "tasks still open" 0 "SELECT count(*) FROM lowcode.tasks WHERE status = 'open'"
expect "winners the task rows disagree with" 0 "
    SELECT count(*) FROM clicks c JOIN lowcode.tasks t ON t.id = c.task_id WHERE c.won AND t.claimed_by <> c.person"
expect "task_claimed history rows" "$TASKS" "SELECT count(*) FROM lowcode.history WHERE action = 'task_claimed'"
expect "task.claimed events" "$TASKS" "SELECT count(*) FROM lowcode.events WHERE topic = 'inbox.task.claimed'"
winners="$(val "SELECT count(DISTINCT person) FROM clicks WHERE won")"
[ "$winners" -ge 2 ] || fail "only $winners person won tasks: the clicks did not run concurrently"
[ "$took" -lt 120000 ] || fail "clicking took ${took} ms (bounded at 120 s)"
sql -c "DROP OWNED BY lc_inbox_app" -c "DROP ROLE lc_inbox_app" >/dev/null

echo "$PEOPLE people clicked Claim on each of $TASKS tasks: each won exactly once, the other clicks got false, in ${took} ms;" \
    "wins per person: $(val "SELECT string_agg(person || '=' || n, ' ' ORDER BY person) FROM (SELECT person, count(*) FILTER (WHERE won) n FROM clicks GROUP BY person) s")"
