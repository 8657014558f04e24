-- The workflow engine: state machines, rules, tasks, approvals and timers, run inside the
-- transaction of the write that caused them. Definitions are checked in Rust
-- (lowcode.check_workflow); everything here trusts what it accepted.
--
-- Events reach rules from the records trigger, whatever the entry point (submit, a typed
-- view, COPY, a plain UPDATE): created, updated, entered:<state>, left:<state>; and from the
-- runtime: task_completed:<task>, deadline_passed:<task>, timer:<name>,
-- approved:<approval>, rejected:<approval>, withdrawn:<approval>.

-- ---------------------------------------------------------------- tables

CREATE TABLE lowcode.workflow_versions (
    id             bigserial PRIMARY KEY,
    app            text NOT NULL,
    form           text NOT NULL,
    version        int NOT NULL CHECK (version > 0),
    definition     jsonb NOT NULL,
    initial_state  text NOT NULL,
    final_states   text[] NOT NULL,
    diagram        text NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    published_by   text NOT NULL DEFAULT current_user,
    -- The role (not the actor label) that published this version: its `call` actions run as
    -- that role, whoever fires the rule. NULL (versions from before 0.2.0 whose publisher is
    -- not a role): its calls are refused until the workflow is defined again.
    calls_run_as   text,
    UNIQUE (app, form, version),
    FOREIGN KEY (app, form) REFERENCES lowcode.forms (app, name) ON DELETE CASCADE
);
COMMENT ON TABLE lowcode.workflow_versions IS 'Immutable versions of each form''s workflow definition, with its initial and final states, its Mermaid diagram, and the role its call actions run as (calls_run_as: the role that published it).';

-- Not a foreign key, for the same reason as forms.current_version_id (pg_restore ordering).
ALTER TABLE lowcode.forms ADD COLUMN workflow_version_id bigint;

CREATE TABLE lowcode.transitions (
    workflow_version_id  bigint NOT NULL REFERENCES lowcode.workflow_versions (id) ON DELETE CASCADE,
    name                 text NOT NULL,
    from_states          text[] NOT NULL,
    to_state             text NOT NULL,
    roles                text[] NOT NULL DEFAULT '{}',
    condition            jsonb,
    PRIMARY KEY (workflow_version_id, name)
);
COMMENT ON TABLE lowcode.transitions IS 'The named transitions of each workflow version (derived from its definition).';

CREATE TABLE lowcode.rules (
    workflow_version_id  bigint NOT NULL REFERENCES lowcode.workflow_versions (id) ON DELETE CASCADE,
    position             int NOT NULL,
    name                 text NOT NULL,
    event                text NOT NULL,
    condition            jsonb,
    outcome              text,
    actions              jsonb NOT NULL,
    PRIMARY KEY (workflow_version_id, position)
);
CREATE INDEX rules_event_idx ON lowcode.rules (workflow_version_id, event);
COMMENT ON TABLE lowcode.rules IS 'The rules of each workflow version, indexed by the event they listen to (derived from its definition).';

CREATE TABLE lowcode.approvals (
    id           bigserial PRIMARY KEY,
    record_id    bigint NOT NULL REFERENCES lowcode.records (id) ON DELETE CASCADE,
    name         text NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('sequential', 'all', 'any', 'ratio')),
    approvers    text[] NOT NULL,
    required     int NOT NULL,
    on_approve   text NOT NULL,
    on_reject    text NOT NULL,
    on_withdraw  text,
    due          interval,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    approved     int NOT NULL DEFAULT 0,
    rejected     int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz
);
CREATE INDEX approvals_record_idx ON lowcode.approvals (record_id) WHERE status = 'pending';
COMMENT ON TABLE lowcode.approvals IS 'Approval steps: sequential, all (会签), any (或签) or ratio (required of approvers); rejection sends the record back.';

CREATE TABLE lowcode.tasks (
    id            bigserial PRIMARY KEY,
    record_id     bigint NOT NULL REFERENCES lowcode.records (id) ON DELETE CASCADE,
    name          text NOT NULL,
    kind          text NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'approval')),
    approval_id   bigint REFERENCES lowcode.approvals (id) ON DELETE CASCADE,
    pool          text,
    role          text,
    assignee      text,
    title         text,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'completed', 'cancelled')),
    due_at        timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    claimed_at    timestamptz,
    completed_by  text,
    completed_at  timestamptz,
    outcome       text,
    result        jsonb,
    met_deadline  boolean
);
CREATE INDEX tasks_claimable_idx ON lowcode.tasks (pool, id) WHERE status = 'open';
CREATE INDEX tasks_record_idx ON lowcode.tasks (record_id);
COMMENT ON TABLE lowcode.tasks IS 'Work for people: assigned to a user, offered to a role, or put in a claim pool (first claim wins). Completing records whether the deadline was met.';

CREATE TABLE lowcode.decisions (
    id           bigserial PRIMARY KEY,
    approval_id  bigint NOT NULL REFERENCES lowcode.approvals (id) ON DELETE CASCADE,
    task_id      bigint NOT NULL REFERENCES lowcode.tasks (id) ON DELETE CASCADE,
    approver     text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lowcode.decisions IS 'Every approve / reject decision with its approver and comment.';

CREATE TABLE lowcode.timers (
    id         bigserial PRIMARY KEY,
    record_id  bigint NOT NULL REFERENCES lowcode.records (id) ON DELETE CASCADE,
    name       text NOT NULL,
    event      text NOT NULL,
    task_id    bigint REFERENCES lowcode.tasks (id) ON DELETE CASCADE,
    in_state   text,
    fire_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'cancelled', 'failed')),
    fired_at   timestamptz,
    error      text,
    -- Failed firings so far: a transient error (connection, resources, I/O, cancel) puts the
    -- timer back with a backoff; the fifth failure, or any other error, marks it failed.
    attempts   int NOT NULL DEFAULT 0
);
CREATE INDEX timers_due_idx ON lowcode.timers (fire_at) WHERE status = 'pending';
CREATE INDEX timers_record_idx ON lowcode.timers (record_id) WHERE status = 'pending';
COMMENT ON TABLE lowcode.timers IS 'Timers and task deadlines: fire an event at fire_at (lowcode.run_due_timers); a timer set in a state is cancelled when the record leaves it. A transient failure is retried with backoff (attempts, error), up to 5 attempts.';

SELECT pg_catalog.pg_extension_config_dump('lowcode.workflow_versions', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.transitions', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.rules', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.approvals', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.decisions', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.timers', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.workflow_versions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.approvals_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.tasks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.decisions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.timers_id_seq', '');

-- ---------------------------------------------------------------- definitions

CREATE FUNCTION lowcode.define_workflow(app text, form text, definition jsonb) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    checked      jsonb;
    current      lowcode.workflow_versions;
    new_version  int;
BEGIN
    PERFORM lowcode.check_name('app', app);
    PERFORM lowcode.check_name('form', form);
    PERFORM FROM lowcode.forms f WHERE f.app = app AND f.name = form FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT FROM lowcode.apps a WHERE a.name = app) THEN
            RAISE EXCEPTION 'lowcode: unknown app "%"', app USING ERRCODE = 'undefined_object',
                HINT = format('create it with lowcode.create_app(%L, ''a title'')', app);
        END IF;
        RAISE EXCEPTION 'lowcode: unknown form "%.%"', app, form USING ERRCODE = 'undefined_object',
            HINT = format('define it first with lowcode.define_form(%L, %L, ''<json schema>'')', app, form);
    END IF;
    PERFORM lowcode.authorize(app, 'admin', format('define the workflow of form %s', form));
    checked := lowcode.check_workflow(app || '.' || form, definition);
    -- Every `call` names a function the publishing role may execute: the calls will run as it.
    PERFORM lowcode.check_calls(app, form, definition);
    SELECT w.* INTO current
      FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
     WHERE f.app = app AND f.name = form;
    IF FOUND AND current.definition = definition THEN
        RETURN current.version;
    END IF;
    SELECT coalesce(max(w.version), 0) + 1 INTO new_version
      FROM lowcode.workflow_versions w WHERE w.app = app AND w.form = form;
    INSERT INTO lowcode.workflow_versions (app, form, version, definition, initial_state, final_states, diagram,
                                           published_by, calls_run_as)
    VALUES (app, form, new_version, definition, checked ->> 'initial',
            ARRAY(SELECT jsonb_array_elements_text(checked -> 'finals')), checked ->> 'diagram', lowcode.actor(app),
            lowcode.invoker_name())
    RETURNING * INTO current;
    INSERT INTO lowcode.transitions (workflow_version_id, name, from_states, to_state, roles, condition)
    SELECT current.id, t ->> 'name',
           CASE jsonb_typeof(t -> 'from') WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(t -> 'from'))
                ELSE ARRAY[t ->> 'from'] END,
           t ->> 'to',
           coalesce(ARRAY(SELECT jsonb_array_elements_text(t -> 'roles')), '{}'),
           t -> 'when'
      FROM jsonb_array_elements(coalesce(definition -> 'transitions', '[]')) t;
    INSERT INTO lowcode.rules (workflow_version_id, position, name, event, condition, outcome, actions)
    SELECT current.id, ord, r ->> 'name', r ->> 'on', r -> 'when', r ->> 'outcome', r -> 'then'
      FROM jsonb_array_elements(coalesce(definition -> 'rules', '[]')) WITH ORDINALITY AS x(r, ord);
    UPDATE lowcode.forms f SET workflow_version_id = current.id WHERE f.app = app AND f.name = form;
    RETURN new_version;
END $$;
COMMENT ON FUNCTION lowcode.define_workflow(text, text, jsonb) IS 'Attach a workflow (states, transitions, rules) to a form. The definition is checked (see README: workflow format); a bad one is refused with the path of the problem. Returns the workflow version.';

CREATE FUNCTION lowcode.workflow_diagram(app text, form text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    diagram text;
BEGIN
    IF app IS NULL OR form IS NULL THEN
        RAISE EXCEPTION 'lowcode: workflow_diagram: arguments "app" and "form" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT w.diagram INTO diagram
      FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
     WHERE f.app = app AND f.name = form;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT FROM lowcode.forms f WHERE f.app = app AND f.name = form) THEN
            RAISE EXCEPTION 'lowcode: unknown form "%.%"', app, form USING ERRCODE = 'undefined_object',
                HINT = format('define it first with lowcode.define_form(%L, %L, ''<json schema>'')', app, form);
        END IF;
        RAISE EXCEPTION 'lowcode: %.% has no workflow', app, form USING ERRCODE = 'undefined_object',
            HINT = 'attach one with lowcode.define_workflow';
    END IF;
    RETURN diagram;
END $$;
COMMENT ON FUNCTION lowcode.workflow_diagram(text, text) IS 'The form''s current workflow as a Mermaid stateDiagram-v2.';

-- ---------------------------------------------------------------- engine

-- A `call` action's function: name(jsonb), resolved with the session's default search_path
-- (lowcode's own code runs with a pinned one, see sql/hardening.sql), as the user wrote it.
CREATE FUNCTION lowcode.call_function(name text) RETURNS regprocedure
LANGUAGE plpgsql STABLE AS $$
DECLARE
    own_path  text := pg_catalog.current_setting('search_path');
    fn        regprocedure;
BEGIN
    PERFORM pg_catalog.set_config('search_path',
                                  (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'search_path'), true);
    BEGIN
        fn := pg_catalog.to_regprocedure(name || '(jsonb)');
    EXCEPTION WHEN syntax_error OR invalid_name OR invalid_text_representation THEN
        fn := NULL;                        -- not a function name at all
    END;
    PERFORM pg_catalog.set_config('search_path', own_path, true);
    RETURN fn;
END $$;
COMMENT ON FUNCTION lowcode.call_function(text) IS 'Internal: the function name(jsonb) a workflow call action names, resolved with the session''s default search_path; NULL when there is none.';

CREATE FUNCTION lowcode.check_calls(app text, form text, definition jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c   record;
    fn  regprocedure;
BEGIN
    FOR c IN
        SELECT r ->> 'name' AS rule, a ->> 'call' AS name
          FROM jsonb_array_elements(coalesce(definition -> 'rules', '[]')) r,
               jsonb_array_elements(coalesce(r -> 'then', '[]')) a
         WHERE a ? 'call'
    LOOP
        fn := lowcode.call_function(c.name);
        IF fn IS NULL THEN
            RAISE EXCEPTION 'lowcode: %.%: rule "%": function %(jsonb) does not exist', app, form, c.rule, c.name
                USING ERRCODE = 'undefined_function',
                      HINT = 'create the function first, and name it with its schema';
        END IF;
        IF NOT pg_catalog.has_function_privilege(lowcode.invoker(), fn, 'EXECUTE') THEN
            RAISE EXCEPTION 'lowcode: app "%": form "%": rule "%": role "%" may not execute %, and the workflow''s calls run as the role that defines it',
                            app, form, c.rule, lowcode.invoker_name(), fn
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, lowcode.invoker_name());
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION lowcode.check_calls(text, text, jsonb) IS 'Internal: refuses a workflow whose call actions name a function that does not exist or that the defining role may not execute.';

CREATE FUNCTION lowcode.log(record bigint, action text, detail jsonb) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail)
    SELECT r.id, r.app, r.form, action, r.revision, lowcode.actor(r.app), r.state, r.state, coalesce(detail, '{}')
      FROM lowcode.records r WHERE r.id = record;
END $$;
COMMENT ON FUNCTION lowcode.log(bigint, text, jsonb) IS 'Internal: adds a history row for a task action, approval decision, timer firing or rule action.';

CREATE FUNCTION lowcode.fire(record bigint, event text, context jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r        lowcode.records;
    wf       bigint;
    rule     lowcode.rules;
    action   jsonb;
    chain    text;
    -- Whether an action of the rule may have changed (or deleted) the record: set and
    -- transition write it (and the rules they trigger may do anything), call may do anything.
    dirty    boolean;
    limit_   int := coalesce(nullif(current_setting('lowcode.max_cascade', true), ''), '32')::int;
BEGIN
    SELECT * INTO r FROM lowcode.records x WHERE x.id = record;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT f.workflow_version_id INTO wf FROM lowcode.forms f WHERE f.app = r.app AND f.name = r.form;
    IF wf IS NULL THEN
        RETURN;
    END IF;
    FOR rule IN
        SELECT * FROM lowcode.rules x
         WHERE x.workflow_version_id = wf
           AND (x.event = event OR x.event = split_part(event, ':', 1) || ':*')
         ORDER BY x.position
    LOOP
        IF rule.outcome IS NOT NULL AND rule.outcome IS DISTINCT FROM context ->> 'outcome' THEN
            CONTINUE;
        END IF;
        IF rule.condition IS NOT NULL AND NOT lowcode.matches(rule.condition, r.data) THEN
            CONTINUE;
        END IF;
        chain := lowcode.rule_chain();
        IF array_length(string_to_array(chain, ' → '), 1) >= limit_ THEN
            RAISE EXCEPTION 'lowcode: %.%: rules cascade more than % deep on record %', r.app, r.form, limit_, r.id
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = format('rules in the loop: %s → %s', chain, rule.name),
                      HINT = 'a rule''s actions trigger the rule again; add a "when" condition that stops it (lowcode.max_cascade sets the limit)';
        END IF;
        PERFORM lowcode.set_rule_chain(CASE WHEN chain = '' THEN rule.name ELSE chain || ' → ' || rule.name END);
        dirty := false;
        -- (An index loop, not FOR ... IN SELECT jsonb_array_elements: no cursor per rule.)
        FOR i IN 0 .. jsonb_array_length(rule.actions) - 1 LOOP
            action := rule.actions -> i;
            PERFORM lowcode.run_action(record, rule.name, event, action, context);
            IF action ?| ARRAY['set', 'transition', 'call'] THEN
                dirty := true;
                EXIT WHEN NOT EXISTS (SELECT FROM lowcode.records x WHERE x.id = record);
            END IF;
        END LOOP;
        PERFORM lowcode.set_rule_chain(chain);
        IF dirty THEN
            SELECT * INTO r FROM lowcode.records x WHERE x.id = record;
            EXIT WHEN NOT FOUND;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION lowcode.fire(bigint, text, jsonb) IS 'Internal: runs the rules of the record''s workflow that listen to event (and whose when / outcome match), in definition order. Cascades are bounded by lowcode.max_cascade (default 32).';

CREATE FUNCTION lowcode.run_action(record bigint, rule text, event text, action jsonb, context jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r        lowcode.records;
    -- The action's one key, as a simple expression (in jsonb's key order: shorter keys first);
    -- the general query below only when action is not an object with exactly that key.
    kind     text := CASE WHEN action ? 'set' THEN 'set' WHEN action ? 'call' THEN 'call'
                          WHEN action ? 'emit' THEN 'emit' WHEN action ? 'task' THEN 'task'
                          WHEN action ? 'timer' THEN 'timer' WHEN action ? 'notify' THEN 'notify'
                          WHEN action ? 'approval' THEN 'approval' WHEN action ? 'transition' THEN 'transition' END;
    arg      jsonb;
    previous jsonb;
    task_id  bigint;
    appr     lowcode.approvals;
    fn       regprocedure;
    run_as   text;
    own_path text;
    result   jsonb;
    payload  jsonb;
    fire_at  timestamptz;
BEGIN
    IF kind IS NULL OR jsonb_typeof(action) <> 'object' OR action - kind <> '{}' THEN
        kind := (SELECT k FROM jsonb_object_keys(action) k LIMIT 1);
    END IF;
    arg := action -> kind;
    SELECT * INTO r FROM lowcode.records x WHERE x.id = record;
    -- This action is the cause of the history rows it makes; the previous cause comes back after.
    previous := lowcode.with_cause(jsonb_build_object('rule', rule, 'action', kind));
    CASE kind
    WHEN 'set' THEN
        -- Checked here too (the records trigger checks again) so the error names the rule.
        IF NOT lowcode.is_valid(r.app, r.form, r.data || arg) THEN
            RAISE EXCEPTION 'lowcode: %.%: rule "%" on record %: its "set" action would make the data invalid', r.app, r.form, rule, r.id
                USING ERRCODE = 'check_violation',
                      DETAIL = (SELECT jsonb_agg(to_jsonb(v))::text FROM lowcode.validate(r.app, r.form, r.data || arg) v),
                      HINT = 'make the rule''s "set" agree with the form''s schema';
        END IF;
        UPDATE lowcode.records x SET data = x.data || arg WHERE x.id = record;
    WHEN 'transition' THEN
        IF r.state IS DISTINCT FROM arg #>> '{}' THEN
            UPDATE lowcode.records x SET state = arg #>> '{}' WHERE x.id = record;
        END IF;
    WHEN 'task' THEN
        INSERT INTO lowcode.tasks (record_id, name, pool, role, assignee, title, status, claimed_by, claimed_at, due_at)
        VALUES (record, arg ->> 'name', coalesce(arg ->> 'pool', arg ->> 'role'), arg ->> 'role', arg ->> 'assignee',
                coalesce(arg ->> 'title', arg ->> 'name'),
                CASE WHEN arg ? 'assignee' THEN 'claimed' ELSE 'open' END,
                arg ->> 'assignee', CASE WHEN arg ? 'assignee' THEN now() END,
                now() + (arg ->> 'due')::interval)
        RETURNING id INTO task_id;
        IF arg ? 'due' THEN
            INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at)
            VALUES (record, arg ->> 'name', 'deadline_passed:' || (arg ->> 'name'), task_id,
                    now() + (arg ->> 'due')::interval);
        END IF;
        -- lowcode.log, inline and from r: inserting the task and its deadline did not change the record.
        INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail)
        SELECT r.id, r.app, r.form, 'task_created', r.revision, lowcode.actor(r.app), r.state, r.state,
               jsonb_build_object('task', task_id, 'name', arg ->> 'name', 'rule', rule)
         WHERE r.id IS NOT NULL;
    WHEN 'approval' THEN
        INSERT INTO lowcode.approvals (record_id, name, mode, approvers, required, on_approve, on_reject, on_withdraw, due)
        VALUES (record, arg ->> 'name', arg ->> 'mode', ARRAY(SELECT jsonb_array_elements_text(arg -> 'approvers')),
                CASE arg ->> 'mode' WHEN 'ratio' THEN (arg ->> 'required')::int
                                    WHEN 'any' THEN 1
                                    ELSE jsonb_array_length(arg -> 'approvers') END,
                arg ->> 'on_approve', arg ->> 'on_reject', arg ->> 'on_withdraw', (arg ->> 'due')::interval)
        RETURNING * INTO appr;
        IF appr.mode = 'sequential' THEN
            PERFORM lowcode.approval_task(appr, appr.approvers[1]);
        ELSE
            PERFORM lowcode.approval_task(appr, a) FROM unnest(appr.approvers) a;
        END IF;
        INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail)
        SELECT r.id, r.app, r.form, 'approval_requested', r.revision, lowcode.actor(r.app), r.state, r.state,
               jsonb_build_object('approval', appr.id, 'name', appr.name, 'mode', appr.mode,
                                  'approvers', to_jsonb(appr.approvers), 'rule', rule)
         WHERE r.id IS NOT NULL;
    WHEN 'notify' THEN
        payload := jsonb_build_object('record', r.id, 'app', r.app, 'form', r.form, 'state', r.state,
                                      'event', event, 'rule', rule);
        PERFORM pg_notify(arg ->> 'channel', (payload || coalesce(arg -> 'payload', '{}'))::text);
    WHEN 'emit' THEN
        payload := jsonb_build_object('record', r.id, 'app', r.app, 'form', r.form, 'state', r.state,
                                      'event', event, 'rule', rule);
        PERFORM lowcode.emit(arg ->> 'topic', payload || jsonb_build_object('data', r.data) || coalesce(arg -> 'payload', '{}'), record);
    WHEN 'timer' THEN
        IF arg ? 'after' THEN
            fire_at := now() + (arg ->> 'after')::interval;
        ELSIF jsonb_typeof(r.data -> (arg ->> 'at_field')) = 'string' THEN
            BEGIN
                fire_at := (r.data ->> (arg ->> 'at_field'))::timestamptz;
            EXCEPTION WHEN data_exception THEN
                fire_at := NULL;
            END;
        END IF;
        IF fire_at IS NULL THEN
            RAISE EXCEPTION 'lowcode: %.%: rule "%" on record %: timer "%" needs field "%" to hold a date-time', r.app, r.form, rule, r.id, arg ->> 'name', arg ->> 'at_field'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = CASE WHEN r.data ? (arg ->> 'at_field')
                                    THEN format('"%s" is %s', arg ->> 'at_field', r.data -> (arg ->> 'at_field'))
                                    ELSE format('the record has no "%s"', arg ->> 'at_field') END;
        END IF;
        UPDATE lowcode.timers t SET status = 'cancelled'
         WHERE t.record_id = record AND t.name = arg ->> 'name' AND t.status = 'pending' AND t.task_id IS NULL;
        INSERT INTO lowcode.timers (record_id, name, event, in_state, fire_at)
        VALUES (record, arg ->> 'name', 'timer:' || (arg ->> 'name'), r.state, fire_at);
    WHEN 'call' THEN
        fn := lowcode.call_function(arg #>> '{}');
        IF fn IS NULL THEN
            RAISE EXCEPTION 'lowcode: %.%: rule "%": function %(jsonb) does not exist', r.app, r.form, rule, arg #>> '{}'
                USING ERRCODE = 'undefined_function';
        END IF;
        -- The user's function runs as the role that published the workflow version, with its
        -- rights and no more, whoever fired the rule (lowcode.call_as), and with the session's
        -- default search_path (lowcode's own code runs with a pinned one); then lowcode's comes back.
        SELECT w.calls_run_as INTO run_as
          FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
         WHERE f.app = r.app AND f.name = r.form;
        IF run_as IS NULL THEN
            RAISE EXCEPTION 'lowcode: %.%: rule "%": this workflow version has no role to run its calls as', r.app, r.form, rule
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'it was published before lowcode 0.2.0 by a label that is not a role: define the workflow again (lowcode.define_workflow) as the role its calls should run as';
        END IF;
        own_path := current_setting('search_path');
        PERFORM set_config('search_path',
                           (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'search_path'), true);
        IF (SELECT prorettype FROM pg_proc WHERE oid = fn) = 'jsonb'::regtype THEN
            result := lowcode.call_as(run_as, format('SELECT %s($1)', fn::regproc), to_jsonb(r));
            PERFORM set_config('search_path', own_path, true);
            IF jsonb_typeof(result) = 'object' THEN
                IF NOT lowcode.is_valid(r.app, r.form, r.data || result) THEN
                    RAISE EXCEPTION 'lowcode: %.%: rule "%" on record %: %(jsonb) returned data that would make the record invalid', r.app, r.form, rule, r.id, arg #>> '{}'
                        USING ERRCODE = 'check_violation',
                              DETAIL = (SELECT jsonb_agg(to_jsonb(v))::text FROM lowcode.validate(r.app, r.form, r.data || result) v),
                              HINT = format('make %s return data that agrees with the form''s schema', arg #>> '{}');
                END IF;
                UPDATE lowcode.records x SET data = x.data || result WHERE x.id = record;
            END IF;
        ELSE
            PERFORM lowcode.call_as(run_as, format('SELECT CASE WHEN %s($1) IS NULL THEN NULL::jsonb END', fn::regproc), to_jsonb(r));
            PERFORM set_config('search_path', own_path, true);
        END IF;
    END CASE;
    IF kind = 'call' THEN
        -- The function may have changed the record: lowcode.log reads it again.
        PERFORM lowcode.log(record, 'rule_action', jsonb_build_object('rule', rule, 'action', action));
    ELSIF kind IN ('notify', 'emit', 'timer') THEN
        -- These leave the record as r has it (lowcode.log, inline).
        INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail)
        SELECT r.id, r.app, r.form, 'rule_action', r.revision, lowcode.actor(r.app), r.state, r.state,
               jsonb_build_object('rule', rule, 'action', action)
         WHERE r.id IS NOT NULL;
    END IF;
    PERFORM lowcode.with_cause(previous);
END $$;
COMMENT ON FUNCTION lowcode.run_action(bigint, text, text, jsonb, jsonb) IS 'Internal: runs one rule action (set, transition, task, approval, notify, emit, timer, call) on a record.';

CREATE FUNCTION lowcode.approval_task(appr lowcode.approvals, approver text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    task_id  bigint;
    due_at   timestamptz := now() + appr.due;
BEGIN
    INSERT INTO lowcode.tasks (record_id, name, kind, approval_id, assignee, title, status, claimed_by, claimed_at, due_at)
    VALUES (appr.record_id, appr.name, 'approval', appr.id, approver, appr.name, 'claimed', approver, now(), due_at)
    RETURNING id INTO task_id;
    IF due_at IS NOT NULL THEN
        INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at)
        VALUES (appr.record_id, appr.name, 'deadline_passed:' || appr.name, task_id, due_at);
    END IF;
    RETURN task_id;
END $$;
COMMENT ON FUNCTION lowcode.approval_task(lowcode.approvals, text) IS 'Internal: creates an approver''s decision task (and its deadline).';

-- The records trigger that turns writes into workflow events.
CREATE FUNCTION lowcode.records_workflow() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    wf      bigint;
    finals  text[];
    moved   boolean := TG_OP = 'UPDATE' AND NEW.state IS DISTINCT FROM OLD.state;
    events  text[];
    event   text;
BEGIN
    IF lowcode.replaying()
       -- Migrations rewrite records; they are not events of the app's process. (The cause is
       -- the engine's own state: only lowcode.apply_migration sets a migration cause.)
       OR lowcode.cause() ? 'migration' THEN
        RETURN NULL;
    END IF;
    SELECT w.id, w.final_states INTO wf, finals
      FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
     WHERE f.app = NEW.app AND f.name = NEW.form;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF moved THEN
        UPDATE lowcode.timers t SET status = 'cancelled'
         WHERE t.record_id = NEW.id AND t.status = 'pending' AND t.in_state = OLD.state;
        -- A finished record has no work left: its open tasks, pending approvals and timers end.
        IF NEW.state = ANY (finals) THEN
            UPDATE lowcode.tasks t SET status = 'cancelled'
             WHERE t.record_id = NEW.id AND t.status IN ('open', 'claimed');
            UPDATE lowcode.approvals a SET status = 'withdrawn', decided_at = now()
             WHERE a.record_id = NEW.id AND a.status = 'pending';
            UPDATE lowcode.timers t SET status = 'cancelled' WHERE t.record_id = NEW.id AND t.status = 'pending';
        END IF;
    END IF;
    -- This write's events, in the order they fire ...
    events := CASE WHEN TG_OP = 'INSERT' THEN ARRAY['created', 'entered:' || NEW.state]
                   ELSE array_remove(ARRAY[CASE WHEN NEW.data IS DISTINCT FROM OLD.data THEN 'updated' END,
                                           CASE WHEN moved THEN 'left:' || OLD.state END,
                                           CASE WHEN moved THEN 'entered:' || NEW.state END], NULL) END;
    -- ... less those the workflow version has no rule for (the event or its <kind>:* wildcard),
    -- found with one query: most writes have none to run.
    events := ARRAY(SELECT e FROM unnest(events) WITH ORDINALITY AS u(e, i)
                     WHERE EXISTS (SELECT FROM lowcode.rules x
                                    WHERE x.workflow_version_id = wf
                                      AND x.event IN (e, split_part(e, ':', 1) || ':*'))
                     ORDER BY i);
    FOREACH event IN ARRAY events LOOP
        PERFORM lowcode.fire(NEW.id, event);
    END LOOP;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION lowcode.records_workflow() IS 'Trigger: fires created / updated / left:<state> / entered:<state> for records of forms with a workflow, and cancels timers of the state a record leaves.';
CREATE TRIGGER records_workflow AFTER INSERT OR UPDATE ON lowcode.records
    FOR EACH ROW EXECUTE FUNCTION lowcode.records_workflow();

-- ---------------------------------------------------------------- transitions

CREATE FUNCTION lowcode.transition(record bigint, name text, payload jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r         lowcode.records;
    t         lowcode.transitions;
    wf        bigint;
    new_data  jsonb;
    previous  jsonb;
BEGIN
    IF record IS NULL OR name IS NULL THEN
        RAISE EXCEPTION 'lowcode: transition: arguments "record" and "name" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    r := lowcode.record_for_update(record);
    IF NOT lowcode.may_read(r.app, r.owner) THEN
        RAISE EXCEPTION 'lowcode: record % does not exist', record USING ERRCODE = 'undefined_object';
    END IF;
    SELECT f.workflow_version_id INTO wf FROM lowcode.forms f WHERE f.app = r.app AND f.name = r.form;
    SELECT * INTO t FROM lowcode.transitions x WHERE x.workflow_version_id = wf AND x.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: %.%: no transition "%"', r.app, r.form, name
            USING ERRCODE = 'undefined_object',
                  HINT = coalesce('transitions: ' || (SELECT string_agg(x.name, ', ' ORDER BY x.name)
                                   FROM lowcode.transitions x WHERE x.workflow_version_id = wf),
                                  'the form has no workflow; attach one with lowcode.define_workflow');
    END IF;
    IF r.state <> ALL (t.from_states) THEN
        RAISE EXCEPTION 'lowcode: %.%: record % is in state "%", and transition "%" starts from %', r.app, r.form, r.id, r.state, name,
                        (SELECT string_agg(format('"%s"', s), ' or ') FROM unnest(t.from_states) s)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- A transition that names roles is for their members; one that names none, for those
    -- who may change the record.
    IF cardinality(t.roles) > 0 AND NOT EXISTS (
        SELECT FROM unnest(t.roles) ro JOIN pg_roles pr ON pr.rolname = ro
         WHERE pg_has_role(lowcode.invoker(), pr.oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'lowcode: %.%: transition "%" of record % needs role %', r.app, r.form, name, r.id, array_to_string(t.roles, ' or ')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('GRANT %I TO %I', t.roles[1], lowcode.invoker_name());
    END IF;
    IF cardinality(t.roles) = 0 AND NOT lowcode.may_update(r.app, r.owner) THEN
        PERFORM lowcode.refuse(r.app, CASE WHEN r.owner = lowcode.invoker_name() THEN 'update_own' ELSE 'update_all' END,
                               format('fire transition "%s" of record %s', name, r.id));
    END IF;
    new_data := r.data || lowcode.keep_hidden(r, coalesce(payload, '{}'), format('fire transition "%s" of record %s', name, r.id));
    IF t.condition IS NOT NULL AND NOT lowcode.matches(t.condition, new_data) THEN
        RAISE EXCEPTION 'lowcode: %.%: transition "%" of record % is not allowed: its condition is not met', r.app, r.form, name, r.id
            USING ERRCODE = 'check_violation',
                  DETAIL = lowcode.condition_issues(t.condition, new_data)::text;
    END IF;
    -- Checked here too (the records trigger checks again) so the error names the transition.
    IF new_data IS DISTINCT FROM r.data AND NOT lowcode.is_valid(r.app, r.form, new_data) THEN
        RAISE EXCEPTION 'lowcode: %.%: transition "%" of record %: the payload would make the data invalid', r.app, r.form, name, r.id
            USING ERRCODE = 'check_violation',
                  DETAIL = (SELECT jsonb_agg(to_jsonb(v))::text FROM lowcode.validate(r.app, r.form, new_data) v);
    END IF;
    previous := lowcode.with_cause(jsonb_build_object('transition', name));
    UPDATE lowcode.records x SET data = new_data, state = t.to_state WHERE x.id = record;
    PERFORM lowcode.with_cause(previous);
    RETURN (SELECT x.state FROM lowcode.records x WHERE x.id = record);
END $$;
COMMENT ON FUNCTION lowcode.transition(bigint, text, jsonb) IS 'Fire a named transition on a record: checks the state it starts from, the roles allowed to fire it and its condition (on the data merged with payload), then moves the record. Returns the record''s state after the rules it triggered.';
