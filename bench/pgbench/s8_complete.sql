-- scenario 8 (bench/s8_actions.sql): lowcode.complete_task on this client's own tasks 'check'
-- (claimed by this role, each with a pending deadline; no rule listens to task_completed and
-- the task emits no events): call n completes task n of the client's block, outcome 'done'.
-- Writes: the task (status, outcome, result, completed_by/_at, met_deadline), its deadline
-- timer (cancelled) and its 'task_completed' history row. (-D task_first=, task_per=, n=0.)
\set n :n + 1
\if :n > :task_per
SELECT bench.s8_exhausted('task');
\endif
\set task :task_first + :client_id * :task_per + :n - 1
SELECT lowcode.complete_task(:task, 'done', '{}');
