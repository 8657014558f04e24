-- bench/s3_claims.sql — scenario 3: 100k open tasks in a claim pool, 8 concurrent claimers
-- (pgbench, bench/pgbench/claim.sql), against lowcode.claim_task's own claim statement (the
-- SKIP LOCKED update and its task_claimed history row) on plain mirrors of lowcode.tasks,
-- lowcode.records and lowcode.history (bench/pgbench/claim_raw.sql; tables in bench/setup.sql).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- A fresh pool of n tasks, in lowcode.tasks for the records of bench.hosts and in bench.tasks_raw
-- for their copies in bench.records_raw (same ids, bench/setup.sql).
CREATE FUNCTION bench.s3_prepare(pool text, n int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO lowcode.tasks (record_id, name, pool, title, app, form)
    SELECT h.id, 'fix', pool, 'fix', 'insp', 'fault_wf'
      FROM generate_series(0, n - 1) g JOIN bench.hosts h ON h.id = (SELECT min(id) FROM bench.hosts) + g % 1000
     ORDER BY g;
    INSERT INTO bench.tasks_raw (record_id, name, pool, title)
    SELECT h.id, 'fix', pool, 'fix'
      FROM generate_series(0, n - 1) g JOIN bench.records_raw h ON h.id = (SELECT min(id) FROM bench.hosts) + g % 1000
     ORDER BY g;
$$;

-- After a run: claims per second, and (both variants) was each claimed task claimed exactly once
-- (one task_claimed history row, by the worker that holds it, every other task still open)?
-- elapsed_s is pgbench's measured time; if the pool ran dry before it ended, the span between
-- the first and the last claim counts instead.
CREATE FUNCTION bench.s3_check(variant text, pool text, n int, rep int, elapsed_s float8) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    claimed bigint; still_open bigint; span float8; claim_rows bigint; distinct_tasks bigint;
    mismatched bigint; ok int;
BEGIN
    IF variant = 'lowcode claim_task' THEN
        SELECT count(*) FILTER (WHERE status = 'claimed'), count(*) FILTER (WHERE status = 'open'),
               extract(epoch FROM max(claimed_at) - min(claimed_at))
          INTO claimed, still_open, span
          FROM lowcode.tasks t WHERE t.pool = s3_check.pool;
        SELECT count(*), count(DISTINCT t.id),
               count(*) FILTER (WHERE t.claimed_by IS DISTINCT FROM h.detail ->> 'worker')
          INTO claim_rows, distinct_tasks, mismatched
          FROM lowcode.history h JOIN lowcode.tasks t ON t.id = (h.detail ->> 'task')::bigint
         WHERE h.action = 'task_claimed' AND t.pool = s3_check.pool;
    ELSE
        SELECT count(*) FILTER (WHERE status = 'claimed'), count(*) FILTER (WHERE status = 'open'),
               extract(epoch FROM max(claimed_at) - min(claimed_at))
          INTO claimed, still_open, span
          FROM bench.tasks_raw t WHERE t.pool = s3_check.pool;
        SELECT count(*), count(DISTINCT t.id),
               count(*) FILTER (WHERE t.claimed_by IS DISTINCT FROM h.detail ->> 'worker')
          INTO claim_rows, distinct_tasks, mismatched
          FROM bench.history_raw h JOIN bench.tasks_raw t ON t.id = (h.detail ->> 'task')::bigint
         WHERE h.action = 'task_claimed' AND t.pool = s3_check.pool;
    END IF;
    ok := CASE WHEN claim_rows = claimed AND distinct_tasks = claimed AND mismatched = 0
                    AND claimed + still_open = n THEN 1 ELSE 0 END;
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('3', 'claims', variant, rep, 'exactly_once', ok),
        ('3', 'claims', variant, rep, 'claimed', claimed),
        ('3', 'claims', variant, rep, 'per_s',
            CASE WHEN claimed >= n AND span > 0 THEN claimed / span ELSE claimed / elapsed_s END);
END $$;
