#!/usr/bin/env bash
# claim_race — 2,000 pool tasks, 8 claimers looping lowcode.claim_task until it returns
# NULL, each claim its own transaction, all starting at the same moment.
# Invariants: every task claimed exactly once (tasks, history 'task_claimed' rows and the
# claimers' own tally agree, per task and per worker); no claimer ever waits for a lock
# (lock_timeout 100ms after the start) and the whole run is bounded in time.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

TASKS=2000
WORKERS=8

sql >/dev/null <<'SQL'
SELECT lowcode.create_app('claims');
SELECT lowcode.define_form('claims', 'job', '{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}');
SELECT lowcode.define_workflow('claims', 'job', '{
  "states": {"open": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "open", "to": "done"}],
  "rules": [{"name": "queue", "on": "created", "then": [{"task": {"name": "work", "pool": "crew"}}]}]}');
-- What each claimer says it got, written in the transaction of the claim.
CREATE TABLE claims (worker text NOT NULL, task_id bigint NOT NULL);
SQL
val "SELECT count(lowcode.submit('claims', 'job', jsonb_build_object('n', g))) FROM generate_series(1, $TASKS) g" >/dev/null
expect "open tasks in the pool" "$TASKS" "SELECT count(*) FROM lowcode.tasks WHERE pool = 'crew' AND status = 'open'"

barrier_start "$WORKERS" 1
t0=$(now_ms)
for w in $(seq 1 "$WORKERS"); do
    session "claimer_$w" -c "$(barrier_sql 1)" -c "SET lock_timeout = '100ms'" -c "
        DO \$\$
        DECLARE t bigint;
        BEGIN
            LOOP
                t := lowcode.claim_task('crew', 'w$w');
                EXIT WHEN t IS NULL;
                INSERT INTO claims VALUES ('w$w', t);
                COMMIT;
            END LOOP;
        END \$\$"
done
wait_sessions
took=$(($(now_ms) - t0))

# Every task claimed, and by exactly one claimer.
expect "tasks still open" 0 "SELECT count(*) FROM lowcode.tasks WHERE status = 'open'"
expect "claimed tasks" "$TASKS" "SELECT count(*) FROM lowcode.tasks WHERE status = 'claimed' AND claimed_by IS NOT NULL"
dup="$(val "SELECT string_agg(format('task %s claimed by %s', task_id, ws), '; ') FROM (
              SELECT task_id, string_agg(worker, ',' ORDER BY worker) ws FROM claims
               GROUP BY task_id HAVING count(*) > 1 ORDER BY task_id LIMIT 10) d")"
[ -z "$dup" ] || fail "tasks handed to two claimers: $dup"
expect "claims the claimers got" "$TASKS" "SELECT count(*) FROM claims"
expect "tasks with a task_claimed history row count <> 1" 0 "
    SELECT count(*) FROM lowcode.tasks t
      LEFT JOIN (SELECT (detail ->> 'task')::bigint id, count(*) n FROM lowcode.history
                  WHERE action = 'task_claimed' GROUP BY 1) h ON h.id = t.id
     WHERE h.n IS DISTINCT FROM 1"
expect "task_claimed history rows" "$TASKS" "SELECT count(*) FROM lowcode.history WHERE action = 'task_claimed'"
# Each claimer's tally = the tasks it holds = its history rows.
bad="$(val "
    WITH c AS (SELECT worker, count(*) n FROM claims GROUP BY worker),
         t AS (SELECT claimed_by worker, count(*) n FROM lowcode.tasks GROUP BY claimed_by),
         h AS (SELECT detail ->> 'worker' worker, count(*) n FROM lowcode.history
                WHERE action = 'task_claimed' GROUP BY 1)
    SELECT string_agg(format('%s: claims %s, tasks %s, history %s', worker, c.n, t.n, h.n), '; ')
      FROM c FULL JOIN t USING (worker) FULL JOIN h USING (worker)
     WHERE c.n IS DISTINCT FROM t.n OR c.n IS DISTINCT FROM h.n")"
[ -z "$bad" ] || fail "per-worker counts disagree: $bad"
# Each claimer's own claims match what the task row says.
expect "claims whose task names another worker" 0 "
    SELECT count(*) FROM claims c JOIN lowcode.tasks t ON t.id = c.task_id WHERE t.claimed_by <> c.worker"
workers="$(val "SELECT count(DISTINCT worker) FROM claims")"
[ "$workers" -ge 2 ] || fail "only $workers claimer got tasks: the claims did not run concurrently"
[ "$took" -lt 60000 ] || fail "claiming took ${took} ms (bounded at 60 s)"

echo "claimed $TASKS tasks exactly once with $WORKERS concurrent claimers in ${took} ms;" \
    "per worker: $(val "SELECT string_agg(worker || '=' || n, ' ' ORDER BY worker) FROM (SELECT worker, count(*) n FROM claims GROUP BY worker) s")"
