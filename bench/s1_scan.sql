-- bench/s1_scan.sql — scenario 1, one repetition (psql -v rep=N): every query of
-- bench.s1_plan, timed server side, parallel query off.
\set ON_ERROR_STOP on
SET max_parallel_workers_per_gather = 0;
-- LIMIT n must read the first n rows: no scan may start where another left off.
SET synchronize_seqscans = off;
SELECT bench.s1_rep(:rep);
