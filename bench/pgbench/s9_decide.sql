-- scenario 9 (bench/s9_growth.sql): approve the approval task of a record of severity 3 (the
-- role running the benchmark is its one approver, mode any): call n decides task
-- decide_first + n - 1, made for this run by bench.s9_approvals. Writes: the decision, the
-- task completed, its deadline cancelled, the approval's verdict, the record moved to
-- working (on_approve) and their history rows. (-D decide_first=, n=0 from scripts/bench.sh.)
\set n :n + 1
\set task :decide_first + :n - 1
SELECT lowcode.decide(:task, 'approve');
