-- People's side of the workflow: claiming and completing tasks, approval decisions,
-- withdrawing, and the timer runner.

-- lowcode.claim_task is Rust (src/tasks.rs): one prepared statement claims and records.
-- lowcode.complete_task is Rust (src/tasks.rs): one statement completes, cancels the deadline,
-- records and announces; then the rules of task_completed:<task> run.

-- lowcode.release_task and lowcode.reassign_task are Rust (src/tasks.rs): the checks, then
-- one statement changes the task and writes its history row.

-- ---------------------------------------------------------------- approvals

-- lowcode.decide and lowcode.withdraw are Rust (src/approvals.rs): the locks and checks, then
-- one statement writes the decision (or the withdrawal), then the record moves.

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
