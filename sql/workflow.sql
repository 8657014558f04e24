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
-- How renderers show a form (lowcode.set_form_ui): labels, order, widgets, help, per locale.
-- (Last, as ALTER EXTENSION UPDATE adds it.)
ALTER TABLE lowcode.forms ADD COLUMN ui jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(ui) = 'object');

-- What each workflow version's `call` actions may run, and as whom: the function each call
-- name resolved to when the version was published (with the publisher's search_path), and
-- the publisher. Written only by lowcode.grant_calls (Rust), which records the role at the
-- keyboard and never takes it as an argument; read only by the engine. In a trusted install
-- this table stays with the superuser that ran CREATE EXTENSION and the installing role has
-- no privilege on it (sql/hardening.sql): the database owner, who owns every other table,
-- cannot make a call run some other function, or as some other role.
CREATE TABLE lowcode.call_grants (
    workflow_version_id  bigint NOT NULL,
    name                 text NOT NULL,
    function             regprocedure NOT NULL,
    run_as               regrole NOT NULL,
    PRIMARY KEY (workflow_version_id, name)
);
COMMENT ON TABLE lowcode.call_grants IS 'The function each call action of a workflow version runs and the role it runs as (its publisher); written by lowcode.grant_calls only, not writable by the installing role of a trusted install.';
-- The installing role may read the grants (pg_dump) and write back only grants to roles whose
-- rights it has anyway (pg_restore of its own database): never one that runs a call as
-- anyone else. (A trigger, not a policy: pg_dump reads with row_security off.)
CREATE FUNCTION lowcode.call_grants_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(NEW.run_as::pg_catalog.oid, 'USAGE') THEN
        RAISE EXCEPTION 'lowcode: role "%" may not grant a workflow call that runs as "%"', current_user, NEW.run_as
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'calls are granted by lowcode.define_workflow, as the role at the keyboard; restore this table as a superuser';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.call_grants_check() IS 'Trigger: a row of lowcode.call_grants written by SQL (pg_restore) may name only a role whose rights the writer has.';
CREATE TRIGGER call_grants_check BEFORE INSERT OR UPDATE ON lowcode.call_grants
    FOR EACH ROW EXECUTE FUNCTION lowcode.call_grants_check();


-- A workflow's transitions are read from its definition too (the engine compiles the same
-- definition), listed here by name for SQL readers.
CREATE VIEW lowcode.transitions AS
SELECT w.id AS workflow_version_id, x.t ->> 'name' AS name,
       CASE pg_catalog.jsonb_typeof(x.t -> 'from')
            WHEN 'array' THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(x.t -> 'from'))
            ELSE ARRAY[x.t ->> 'from'] END AS from_states,
       x.t ->> 'to' AS to_state,
       ARRAY(SELECT pg_catalog.jsonb_array_elements_text(COALESCE(x.t -> 'roles', '[]'))) AS roles,
       x.t -> 'when' AS condition
  FROM lowcode.workflow_versions w,
       pg_catalog.jsonb_array_elements(COALESCE(w.definition -> 'transitions', '[]')) AS x(t);
COMMENT ON VIEW lowcode.transitions IS 'The named transitions of each workflow version (from states, to state, roles, condition), read from its definition.';

-- A workflow's rules are read from its definition (one home: the engine compiles the same
-- definition), listed here by position for SQL readers.
CREATE VIEW lowcode.rules AS
SELECT w.id AS workflow_version_id, x.ord::int AS position, x.r ->> 'name' AS name,
       x.r ->> 'on' AS event, x.r -> 'when' AS condition, x.r ->> 'outcome' AS outcome,
       x.r -> 'then' AS actions
  FROM lowcode.workflow_versions w,
       pg_catalog.jsonb_array_elements(coalesce(w.definition -> 'rules', '[]')) WITH ORDINALITY AS x(r, ord);
COMMENT ON VIEW lowcode.rules IS 'The rules of each workflow version by position (name, the event they listen to, when, outcome, actions), read from its definition.';

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
    decided_at   timestamptz,
    -- The app of its record, as every runtime table has it: what a scaled-out install
    -- distributes the runtime by (docs/scale-out.md).
    app          text NOT NULL
);
CREATE INDEX approvals_record_idx ON lowcode.approvals (record_id) WHERE status = 'pending';
COMMENT ON TABLE lowcode.approvals IS 'Approval steps: sequential, all (会签), any (或签) or ratio (required of approvers); rejection sends the record back.';

CREATE TABLE lowcode.tasks (
    id            bigserial PRIMARY KEY,
    -- No foreign key and no CHECKs (kind: task or approval; status: open, claimed, completed
    -- or cancelled): only the engine writes tasks, with its record locked or written by the
    -- same statement, and the key's check and the CHECKs were a quarter of a submit's own
    -- work (PostgreSQL parses a table's CHECKs again for every statement). A record's tasks
    -- go with it (records_after, records_truncated).
    record_id     bigint NOT NULL,
    name          text NOT NULL,
    kind          text NOT NULL DEFAULT 'task',
    approval_id   bigint REFERENCES lowcode.approvals (id) ON DELETE CASCADE,
    pool          text,
    role          text,
    assignee      text,
    title         text,
    status        text NOT NULL DEFAULT 'open',
    due_at        timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    claimed_at    timestamptz,
    completed_by  text,
    completed_at  timestamptz,
    outcome       text,
    result        jsonb,
    met_deadline  boolean,
    -- The app and form of its record (inboxes list tasks across apps without a join).
    app           text NOT NULL,
    form          text NOT NULL,
    -- What complete_task accepts: one of these outcomes (NULL: any), data that conforms to
    -- result_schema (NULL: any); events: <app>.task.created / claimed / completed are written.
    outcomes      text[],
    result_schema jsonb,
    events        boolean NOT NULL DEFAULT false
);
CREATE INDEX tasks_claimable_idx ON lowcode.tasks (pool, id) WHERE status = 'open';
CREATE INDEX tasks_record_idx ON lowcode.tasks (record_id);
CREATE INDEX tasks_approval_idx ON lowcode.tasks (approval_id) WHERE approval_id IS NOT NULL;
COMMENT ON TABLE lowcode.tasks IS 'Work for people: assigned to a user, offered to a role, or put in a claim pool (first claim wins), with its app and form. Completing records whether the deadline was met, checks the outcome against outcomes and the data against result_schema; with events, <app>.task.created, .claimed and .completed go to the outbox.';

CREATE TABLE lowcode.decisions (
    id           bigserial PRIMARY KEY,
    approval_id  bigint NOT NULL REFERENCES lowcode.approvals (id) ON DELETE CASCADE,
    task_id      bigint NOT NULL REFERENCES lowcode.tasks (id) ON DELETE CASCADE,
    approver     text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    -- The app of its record (see approvals).
    app          text NOT NULL
);
COMMENT ON TABLE lowcode.decisions IS 'Every approve / reject decision with its approver and comment.';

CREATE TABLE lowcode.timers (
    id         bigserial PRIMARY KEY,
    -- No foreign keys and no CHECK (status: pending, fired, cancelled or failed), as for
    -- tasks: the engine writes a deadline with its task in one statement, a timer with its
    -- record locked, and both go with their record (records_after, records_truncated).
    record_id  bigint NOT NULL,
    name       text NOT NULL,
    event      text NOT NULL,
    -- The task whose deadline this is.
    task_id    bigint,
    in_state   text,
    fire_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'pending',
    fired_at   timestamptz,
    error      text,
    -- Failed firings so far: a transient error (connection, resources, I/O, cancel) puts the
    -- timer back with a backoff; the fifth failure, or any other error, marks it failed.
    attempts   int NOT NULL DEFAULT 0,
    -- The app of its record (see approvals).
    app        text NOT NULL
);
CREATE INDEX timers_due_idx ON lowcode.timers (fire_at) WHERE status = 'pending';
-- A task's deadline, cancelled when the task is completed, released or reassigned: found
-- without reading every pending timer.
CREATE INDEX timers_task_idx ON lowcode.timers (task_id) WHERE status = 'pending';
-- A record's timers: the pending ones of a state it leaves, all of them when it is deleted.
CREATE INDEX timers_record_idx ON lowcode.timers (record_id);
COMMENT ON TABLE lowcode.timers IS 'Timers and task deadlines: fire an event at fire_at (lowcode.run_due_timers); a timer set in a state is cancelled when the record leaves it. A transient failure is retried with backoff (attempts, error), up to 5 attempts.';

-- TRUNCATE lowcode.records takes the records' timers with them, as a DELETE does
-- (records_after). (Their tasks go already: approvals refer to records and tasks to
-- approvals, so PostgreSQL truncates records only together with both.)
CREATE FUNCTION lowcode.records_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE lowcode.timers;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION lowcode.records_truncated() IS 'Trigger: TRUNCATE lowcode.records truncates lowcode.timers too (timers have no foreign key to records; tasks are truncated with approvals, which refer to records).';
CREATE TRIGGER records_truncated AFTER TRUNCATE ON lowcode.records
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.records_truncated();

SELECT pg_catalog.pg_extension_config_dump('lowcode.workflow_versions', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.call_grants', '');
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
    finals       text[];
    other_rule   text;
    other_topic  text;
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
    -- An app emits its own topics only (rules.rs checks again when the rule runs).
    SELECT r ->> 'name', a -> 'emit' ->> 'topic' INTO other_rule, other_topic
      FROM pg_catalog.jsonb_array_elements(coalesce(definition -> 'rules', '[]')) r,
           pg_catalog.jsonb_array_elements(coalesce(r -> 'then', '[]')) a
     WHERE a ? 'emit'
       AND pg_catalog.split_part(a -> 'emit' ->> 'topic', '.', 1) <> app
       AND EXISTS (SELECT FROM lowcode.apps o WHERE o.name = pg_catalog.split_part(a -> 'emit' ->> 'topic', '.', 1))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'lowcode: %.%: rule "%": emit: topic "%" belongs to app "%"; an app emits its own topics only',
                        app, form, other_rule, other_topic, pg_catalog.split_part(other_topic, '.', 1)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('name the topic "%s.%s" or without another app''s name first', app, other_topic);
    END IF;
    SELECT w.* INTO current
      FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
     WHERE f.app = app AND f.name = form;
    IF FOUND AND current.definition = definition THEN
        RETURN current.version;
    END IF;
    SELECT coalesce(max(w.version), 0) + 1 INTO new_version
      FROM lowcode.workflow_versions w WHERE w.app = app AND w.form = form;
    -- (A value, not a subquery, in the VALUES: Citus refuses subqueries in an INSERT into a
    -- reference table.)
    finals := ARRAY(SELECT jsonb_array_elements_text(checked -> 'finals'));
    INSERT INTO lowcode.workflow_versions (app, form, version, definition, initial_state, final_states, diagram,
                                           published_by, calls_run_as)
    VALUES (app, form, new_version, definition, checked ->> 'initial',
            finals, checked ->> 'diagram', lowcode.actor(app),
            lowcode.invoker_name())
    RETURNING * INTO current;
    -- The calls run these functions, as the role at the keyboard (never an argument).
    PERFORM lowcode.grant_calls(current.id, coalesce(pg_catalog.array_agg(c.name), '{}'),
                                coalesce(pg_catalog.array_agg(lowcode.call_function(c.name)), '{}'))
       FROM (SELECT DISTINCT a ->> 'call' AS name
               FROM pg_catalog.jsonb_array_elements(coalesce(definition -> 'rules', '[]')) r,
                    pg_catalog.jsonb_array_elements(coalesce(r -> 'then', '[]')) a
              WHERE a ? 'call') c;
    UPDATE lowcode.forms f SET workflow_version_id = current.id WHERE f.app = app AND f.name = form;
    -- (Every session runs the new version from its next statement: the forms_written trigger.)
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

-- The engine itself is Rust: lowcode.fire and the rule actions (src/rules.rs), history
-- (lowcode.log, src/journal.rs), events (lowcode.emit, src/outbox.rs).

-- An approval's decision tasks are written by Rust (src/actions/approval.rs approver_tasks),
-- for the approval action and for a sequential approval's next approver.

-- ---------------------------------------------------------------- transitions

-- lowcode.transition is Rust (src/transitions.rs): the checks, then one prepared UPDATE.
