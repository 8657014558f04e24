-- the physical baseline: lowcode.claim_task's statement (sql/tasks_timers.sql) on plain mirrors of
-- lowcode.tasks, lowcode.records and lowcode.history (bench/setup.sql): the pool as a range
-- so that only the claim index gives ORDER BY (pool, id), the oldest open task taken with
-- SKIP LOCKED, and its task_claimed history row written by the same statement. (No privilege
-- or role checks: the engine's part.) Worker w<client>, pool from pgbench -D pool=...
WITH claim AS (
    UPDATE bench.tasks_raw x
       SET status = 'claimed', claimed_by = 'w' || :client_id, claimed_at = now()
     WHERE x.id = (
           SELECT c.id FROM bench.tasks_raw c
            WHERE c.pool >= :pool AND c.pool <= :pool AND c.status = 'open'
            ORDER BY c.pool, c.id
            LIMIT 1
              FOR UPDATE SKIP LOCKED)
    RETURNING x.id, x.record_id, x.name, x.claimed_by
), logged AS (
    INSERT INTO bench.history_raw (record_id, app, form, action, revision, actor, from_state, to_state, detail)
    SELECT r.id, r.app, r.form, 'task_claimed', r.revision, current_user, r.state, r.state,
           jsonb_build_object('task', c.id, 'name', c.name, 'worker', c.claimed_by)
      FROM claim c JOIN bench.records_raw r ON r.id = c.record_id
)
SELECT c.id FROM claim c;
