-- scenario 8, the baseline of s8_complete.sql: the same task completed by one hand-written
-- statement writing the same rows into plain tables (bench/s8_actions.sql): the task's status,
-- outcome, result, completed_by, completed_at and met_deadline, its pending deadline timer
-- cancelled, and its 'task_completed' history row (lowcode's detail; the record joined for its
-- app, form, revision and state, as lowcode does).
\set n :n + 1
\if :n > :task_per
SELECT bench.s8_exhausted('task');
\endif
\set task :task_first + :client_id * :task_per + :n - 1
WITH t AS (
    UPDATE bench.s8_tasks_plain x
       SET status = 'completed', outcome = 'done', result = '{}', completed_by = current_user,
           completed_at = now(), met_deadline = (x.due_at IS NULL OR now() <= x.due_at)
     WHERE x.id = :task AND x.status = 'claimed' AND x.claimed_by = current_user
    RETURNING x.id, x.record_id, x.name, x.outcome, x.result, x.met_deadline
), deadline AS (
    UPDATE bench.s8_timers_plain m SET status = 'cancelled'
      FROM t
     WHERE m.task_id = t.id AND m.status = 'pending'
)
INSERT INTO bench.s8_history_plain (record_id, app, form, action, revision, actor, from_state, to_state, detail)
SELECT r.id, r.app, r.form, 'task_completed', r.revision, current_user, r.state, r.state,
       jsonb_build_object('task', t.id, 'name', t.name, 'outcome', t.outcome, 'data', t.result,
                          'met_deadline', t.met_deadline)
  FROM t JOIN bench.s8_records_plain r ON r.id = t.record_id;
