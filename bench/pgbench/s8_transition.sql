-- scenario 8 (bench/s8_actions.sql): lowcode.transition on this client's own records of form
-- fault_s8 (no rule listens): call n moves record (n - 1) mod per of the client's block, with
-- 'start' (open → working) on even passes over the block and 'pause' (working → open) on odd
-- ones. Writes: the record (state, revision, updated_at/_by) and its 'transition' history row.
-- (-D move_first=, per=, n=0 from scripts/bench.sh.)
\set n :n + 1
\set rec :move_first + :client_id * :per + (:n - 1) % :per
\if ((:n - 1) / :per) % 2 = 0
SELECT lowcode.transition(:rec, 'start');
\else
SELECT lowcode.transition(:rec, 'pause');
\endif
