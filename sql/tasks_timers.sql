-- People's side of the workflow: claiming and completing tasks, approval decisions,
-- withdrawing, and the timer runner.

CREATE FUNCTION lowcode.task_for_update(task bigint) RETURNS lowcode.tasks
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    t lowcode.tasks;
BEGIN
    IF task IS NULL THEN
        RAISE EXCEPTION 'lowcode: argument "task" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO t FROM lowcode.tasks x WHERE x.id = task FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: task % does not exist', task USING ERRCODE = 'undefined_object';
    END IF;
    RETURN t;
END $$;
COMMENT ON FUNCTION lowcode.task_for_update(bigint) IS 'Internal: locks a task, or raises when it does not exist.';

CREATE FUNCTION lowcode.require_claimer(t lowcode.tasks, doing text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    app text := (SELECT r.app FROM lowcode.records r WHERE r.id = t.record_id);
BEGIN
    PERFORM lowcode.authorize(app, CASE WHEN t.kind = 'approval' THEN 'decide' ELSE 'claim' END,
                              format('work on task %s ("%s", record %s)', t.id, t.name, t.record_id));
    IF t.status <> 'claimed' THEN
        RAISE EXCEPTION 'lowcode: task % ("%", record %) is %, so it cannot be %', t.id, t.name, t.record_id, t.status, doing
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF t.claimed_by IS DISTINCT FROM lowcode.actor(app) THEN
        RAISE EXCEPTION 'lowcode: task % ("%", record %) belongs to %, not %', t.id, t.name, t.record_id, t.claimed_by, lowcode.actor(app)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the worker who claimed it (SET lowcode.actor) completes, releases or decides it';
    END IF;
    RETURN app;
END $$;
COMMENT ON FUNCTION lowcode.require_claimer(lowcode.tasks, text) IS 'Internal: raises unless the invoker may work on the app''s tasks (claim; decide for approvals) and the task is claimed by the current actor; returns the task''s app.';

-- lowcode.claim_task is Rust (src/tasks.rs): one prepared statement claims and records.
-- lowcode.complete_task is Rust (src/tasks.rs): one statement completes, cancels the deadline,
-- records and announces; then the rules of task_completed:<task> run.

-- lowcode.release_task and lowcode.reassign_task are Rust (src/tasks.rs): the checks, then
-- one statement changes the task and writes its history row.

-- ---------------------------------------------------------------- approvals

CREATE FUNCTION lowcode.decide(task bigint, decision text, comment text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    t        lowcode.tasks;
    a        lowcode.approvals;
    verdict  text;
    previous jsonb;
    app      text;
BEGIN
    -- Lock order: the approval, then the task. A verdict cancels the other approvers'
    -- tasks, so a decider must not hold its own task's lock while it queues for the
    -- approval (that deadlocked concurrent deciders of an "any" approval).
    SELECT * INTO t FROM lowcode.tasks x WHERE x.id = task;
    IF NOT FOUND THEN
        t := lowcode.task_for_update(task);   -- raises the usual NULL / unknown-task error
    END IF;
    IF decision IS NULL OR decision NOT IN ('approve', 'reject') THEN
        RAISE EXCEPTION 'lowcode: decide: decision must be ''approve'' or ''reject'', not %', coalesce(quote_literal(decision), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t.kind <> 'approval' THEN
        RAISE EXCEPTION 'lowcode: task % is not an approval: complete it with lowcode.complete_task', t.id
            USING ERRCODE = 'wrong_object_type';
    END IF;
    -- Decisions on one approval are serialized by its row lock.
    SELECT * INTO a FROM lowcode.approvals x WHERE x.id = t.approval_id FOR UPDATE;
    SELECT * INTO t FROM lowcode.tasks x WHERE x.id = t.id FOR UPDATE;
    app := lowcode.require_claimer(t, 'decided');
    IF a.status <> 'pending' THEN
        RAISE EXCEPTION 'lowcode: approval "%" of record % is already %', a.name, a.record_id, a.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO lowcode.decisions (approval_id, task_id, approver, decision, comment)
    VALUES (a.id, t.id, lowcode.actor(app), decision, comment);
    UPDATE lowcode.tasks x SET status = 'completed', outcome = decision, result = jsonb_build_object('comment', comment),
                               completed_by = lowcode.actor(app), completed_at = now(),
                               met_deadline = (x.due_at IS NULL OR now() <= x.due_at)
     WHERE x.id = t.id;
    UPDATE lowcode.timers x SET status = 'cancelled' WHERE x.task_id = t.id AND x.status = 'pending';
    IF decision = 'approve' THEN
        a.approved := a.approved + 1;
    ELSE
        a.rejected := a.rejected + 1;
    END IF;
    verdict := CASE
        WHEN a.approved >= a.required THEN 'approved'
        WHEN a.mode IN ('sequential', 'all', 'any') AND a.rejected > 0 THEN 'rejected'
        WHEN a.mode = 'ratio' AND a.rejected > cardinality(a.approvers) - a.required THEN 'rejected'
        ELSE 'pending' END;
    UPDATE lowcode.approvals x SET approved = a.approved, rejected = a.rejected, status = verdict,
                                   decided_at = CASE WHEN verdict <> 'pending' THEN now() END
     WHERE x.id = a.id;
    PERFORM lowcode.log(a.record_id, 'approval_decision',
        jsonb_build_object('approval', a.id, 'name', a.name, 'decision', decision, 'comment', comment, 'verdict', verdict));
    IF verdict = 'pending' THEN
        IF a.mode = 'sequential' THEN
            PERFORM lowcode.approval_task(a, a.approvers[a.approved + 1]);
        END IF;
        RETURN verdict;
    END IF;
    UPDATE lowcode.tasks x SET status = 'cancelled' WHERE x.approval_id = a.id AND x.status IN ('open', 'claimed');
    UPDATE lowcode.timers x SET status = 'cancelled'
      FROM lowcode.tasks y WHERE x.task_id = y.id AND y.approval_id = a.id AND x.status = 'pending';
    previous := lowcode.with_cause(jsonb_build_object('approval', a.name, 'verdict', verdict));
    UPDATE lowcode.records x SET state = CASE verdict WHEN 'approved' THEN a.on_approve ELSE a.on_reject END
     WHERE x.id = a.record_id AND x.state IS DISTINCT FROM CASE verdict WHEN 'approved' THEN a.on_approve ELSE a.on_reject END;
    PERFORM lowcode.with_cause(previous);
    PERFORM lowcode.fire(a.record_id, verdict || ':' || a.name,
                         jsonb_build_object('approval', a.id, 'outcome', verdict));
    RETURN verdict;
END $$;
COMMENT ON FUNCTION lowcode.decide(bigint, text, text) IS 'Approve or reject an approval task you hold. Returns the approval''s verdict so far: pending, approved (record moves to on_approve) or rejected (record is sent back to on_reject).';

CREATE FUNCTION lowcode.withdraw(record bigint) RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r         lowcode.records;
    a         lowcode.approvals;
    back_to   text;
    previous  jsonb;
BEGIN
    IF record IS NULL THEN
        RAISE EXCEPTION 'lowcode: withdraw: argument "record" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Lock order: the pending approval, then the record, as decide does (approval, task,
    -- then the record on a verdict); the other order deadlocked a withdraw racing the last decision.
    PERFORM FROM lowcode.approvals x WHERE x.record_id = record AND x.status = 'pending' FOR UPDATE;
    r := lowcode.record_for_update(record);
    IF NOT lowcode.may_read(r.app, r.owner) THEN
        RAISE EXCEPTION 'lowcode: record % does not exist', record USING ERRCODE = 'undefined_object';
    END IF;
    IF r.created_by IS DISTINCT FROM lowcode.actor(r.app) THEN
        RAISE EXCEPTION 'lowcode: %.%: only the submitter (%) can withdraw record %', r.app, r.form, r.created_by, r.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO a FROM lowcode.approvals x WHERE x.record_id = record AND x.status = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: %.%: record % has no pending approval to withdraw from', r.app, r.form, r.id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE lowcode.approvals x SET status = 'withdrawn', decided_at = now() WHERE x.id = a.id;
    UPDATE lowcode.tasks x SET status = 'cancelled' WHERE x.approval_id = a.id AND x.status IN ('open', 'claimed');
    UPDATE lowcode.timers x SET status = 'cancelled'
      FROM lowcode.tasks y WHERE x.task_id = y.id AND y.approval_id = a.id AND x.status = 'pending';
    back_to := coalesce(a.on_withdraw, (SELECT w.initial_state FROM lowcode.forms f
                                          JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
                                         WHERE f.app = r.app AND f.name = r.form));
    previous := lowcode.with_cause(jsonb_build_object('approval', a.name, 'verdict', 'withdrawn'));
    UPDATE lowcode.records x SET state = back_to WHERE x.id = record AND x.state IS DISTINCT FROM back_to;
    PERFORM lowcode.with_cause(previous);
    PERFORM lowcode.fire(record, 'withdrawn:' || a.name, jsonb_build_object('approval', a.id));
    RETURN (SELECT x.state FROM lowcode.records x WHERE x.id = record);
END $$;
COMMENT ON FUNCTION lowcode.withdraw(bigint) IS 'The submitter takes a record back out of its pending approval: tasks are cancelled and the record returns to on_withdraw (default: the initial state).';

-- ---------------------------------------------------------------- timers

-- Firing a batch of timers is Rust (lowcode.fire_timers, src/timers.rs).

CREATE FUNCTION lowcode.run_due_timers(max int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    t        lowcode.timers;
    batch    lowcode.timers[];
    fired    int := 0;
    message  text;
    state    text;
    sort_was text;
    wait     interval;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'run timers');
    -- One statement locks the due timers and marks them fired (batch holds them as they were
    -- before). It never waits: timers that another run holds are skipped, and so are timers
    -- whose record someone else is changing (a transition that cancels the timer waits for
    -- us while holding the record: waiting for the record here would be a deadlock); the
    -- next run fires those, unless that change cancelled them.
    -- Planned without a full sort, so that it reads about max timers through timers_due_idx
    -- (in fire_at order, ties sorted by id) instead of sorting every due timer: with a
    -- backlog of due timers the statistics often promise one.
    sort_was := current_setting('enable_sort');
    PERFORM set_config('enable_sort', 'off', true);
    WITH due AS (
        SELECT x AS t FROM lowcode.timers x
         WHERE x.status = 'pending' AND x.fire_at <= now()
         ORDER BY x.fire_at, x.id
         LIMIT max
           FOR UPDATE SKIP LOCKED
    ), free AS (
        SELECT d.t FROM due d JOIN lowcode.records r ON r.id = (d.t).record_id
           FOR NO KEY UPDATE OF r SKIP LOCKED
    ), marked AS (
        UPDATE lowcode.timers x SET status = 'fired', fired_at = now()
          FROM free WHERE x.id = (free.t).id
        RETURNING free.t
    )
    SELECT array_agg(m.t ORDER BY (m.t).fire_at, (m.t).id) INTO batch FROM marked m;
    PERFORM set_config('enable_sort', sort_was, true);
    IF batch IS NULL THEN
        RETURN 0;
    END IF;
    -- Then their rules, in due order. First all of them in one subtransaction: nearly always
    -- none fails. If one does, that subtransaction is undone and they run again below, each in
    -- a subtransaction of its own, so that only the failing ones are undone.
    BEGIN
        PERFORM lowcode.fire_timers(ARRAY(SELECT b.id FROM unnest(batch) b));
        RETURN cardinality(batch);
    EXCEPTION WHEN OTHERS THEN
        NULL;                              -- one of them failed: one by one, below
    END;
    FOREACH t IN ARRAY batch LOOP
        BEGIN
            PERFORM lowcode.fire_timers(ARRAY[t.id]);
            fired := fired + 1;
        EXCEPTION WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN
            -- Lost a race with a concurrent change of the record (e.g. a transition that
            -- cancels this timer): its effects are undone and it stays pending for the next run.
            UPDATE lowcode.timers x SET status = t.status, fired_at = t.fired_at WHERE x.id = t.id;
        WHEN OTHERS THEN
            -- One failing rule must not stop the others: its effects are undone. A transient
            -- error (a connection, resources, I/O, a cancelled statement: classes 08, 53, 58 and
            -- 57014) is tried again later, after 30 s, 1 min, 2 min, 4 min; the fifth failure, or
            -- any other error, marks the timer failed with the error.
            -- (The one retry policy, crates/core/src/retry.rs: NULL after the fifth attempt.)
            GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            wait := lowcode.retry_delay('timer', t.attempts + 1);
            IF (left(state, 2) IN ('08', '53', '58') OR state = '57014') AND wait IS NOT NULL THEN
                UPDATE lowcode.timers x
                   SET status = 'pending', fired_at = NULL, error = message, attempts = t.attempts + 1,
                       fire_at = now() + wait
                 WHERE x.id = t.id;
            ELSE
                UPDATE lowcode.timers x SET status = 'failed', fired_at = now(), error = message, attempts = t.attempts + 1
                 WHERE x.id = t.id;
            END IF;
        END;
    END LOOP;
    RETURN fired;
END $$;
COMMENT ON FUNCTION lowcode.run_due_timers(int) IS 'Fire up to max due timers and deadlines (lowcode administrators; runs as the extension''s owner). Safe to run from several schedulers at once (SKIP LOCKED). A timer whose rules fail with a transient error (connection, resources, I/O, cancel) is retried with backoff, up to 5 attempts; any other error marks it failed with the error; the others still fire.';
