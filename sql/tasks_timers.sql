-- People's side of the workflow: claiming and completing tasks, approval decisions,
-- withdrawing, and the timer runner. All of it is Rust now; this file says where.

-- lowcode.claim_task is Rust (src/tasks.rs): one prepared statement claims and records.
-- lowcode.complete_task is Rust (src/tasks.rs): one statement completes, cancels the deadline,
-- records and announces; then the rules of task_completed:<task> run.

-- lowcode.release_task and lowcode.reassign_task are Rust (src/tasks.rs): the checks, then
-- one statement changes the task and writes its history row.

-- ---------------------------------------------------------------- approvals

-- lowcode.decide and lowcode.withdraw are Rust (src/approvals.rs): the locks and checks, then
-- one statement writes the decision (or the withdrawal), then the record moves.

-- ---------------------------------------------------------------- timers

-- lowcode.run_due_timers is Rust (src/timers.rs): one statement marks a batch fired, then
-- their rules run in a subtransaction (one per timer when one of them fails), and each failure
-- is put back, retried later or marked failed (crates/core/src/retry.rs timer_failure).
