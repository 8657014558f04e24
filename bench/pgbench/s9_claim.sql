-- scenario 9 (bench/s9_growth.sql): claim the oldest open task of pool s9 (first claim wins)
-- and complete it (its deadline cancelled, its history row).
SELECT lowcode.complete_task(lowcode.claim_task('s9'), 'done', '{}');
