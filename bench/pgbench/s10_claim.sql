-- scenario 10 (bench/s10_mixed.sql): claim the oldest open task of pool s10 and complete it
-- (nothing when the pool is empty).
SELECT lowcode.complete_task(t, 'done', '{}') FROM lowcode.claim_task('s10') AS t WHERE t IS NOT NULL;
