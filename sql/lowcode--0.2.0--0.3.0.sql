-- lowcode 0.2.0 → 0.3.0, written by hand (`ALTER EXTENSION lowcode UPDATE TO '0.3.0'`).
--
-- 0.2.0 is frozen in sql/releases/lowcode--0.2.0.sql. Every change to lowcode's SQL after it
-- goes here as well as into sql/*.sql (in the order of sql/*.sql; a script that adds objects
-- ends with sql/hardening.sql's search paths, ownership, privileges and guard, so that an
-- updated database equals a fresh install). tests/system/upgrade.sh updates a lived-in 0.2.0
-- database with this script and compares its catalog with a fresh install; upgrade_oldest.sh
-- does the same from 0.1.0 through every update script.
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------- definitions (sql/catalog.sql, sql/definitions.sql)
ALTER TABLE lowcode.form_versions ADD COLUMN property_order jsonb;
ALTER TABLE lowcode.forms ADD COLUMN ui jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(ui) = 'object');
COMMENT ON TABLE lowcode.form_versions IS 'Immutable published versions of each form: the JSON Schema as given, what validates (bundled: the schema, or {"$lowcode:bundle": 1, "schema": ..., "resources": {uri: copy}} with a copy of every registered schema its $refs reach), its draft, and the author''s property order when the schema was given as text.';
COMMENT ON TABLE lowcode.forms IS 'Forms of each app, the version new submissions are validated against, its title (the schema''s title) and its UI schema (lowcode.set_form_ui).';

-- Records name their form and version without foreign keys (a share lock on the form's row per
-- insert); a guard refuses to delete what records use (sql/catalog.sql, forms_in_use).
-- (0.2.0's guard refuses every drop of lowcode's objects: it steps aside for these.)
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
ALTER TABLE lowcode.records DROP CONSTRAINT records_form_version_id_fkey,
    DROP CONSTRAINT records_app_form_fkey;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;

-- Records name their form and its version without foreign keys: records_before takes both
-- from the validation it has just run (a version of the form being written), and a key would
-- take a share lock on the form's row and its version's row for every insert, which turns the
-- rows of a busy form into multixacts. No lowcode function deletes a form or a version; a
-- DELETE by hand (of an app, a form or a version) still cannot leave records without their
-- form: it waits for every transaction writing records and is refused while records use it.
CREATE FUNCTION lowcode.forms_in_use() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE lowcode.records IN SHARE MODE;
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        IF EXISTS (SELECT FROM lowcode.records) THEN
            RAISE EXCEPTION 'lowcode: cannot truncate lowcode.%: records use its rows', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'delete the records first';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'forms' THEN
        PERFORM FROM lowcode.records r
          WHERE r.app OPERATOR(pg_catalog.=) OLD.app AND r.form OPERATOR(pg_catalog.=) OLD.name
          LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'lowcode: %.%: form has records and cannot be deleted', OLD.app, OLD.name
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'delete its records first';
        END IF;
    ELSE
        PERFORM FROM lowcode.records r
          WHERE r.app OPERATOR(pg_catalog.=) OLD.app AND r.form OPERATOR(pg_catalog.=) OLD.form
            AND r.form_version_id OPERATOR(pg_catalog.=) OLD.id
          LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'lowcode: %.%: version % has records and cannot be deleted', OLD.app, OLD.form, OLD.version
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'delete its records first';
        END IF;
    END IF;
    RETURN OLD;
END $$;
COMMENT ON FUNCTION lowcode.forms_in_use() IS 'Trigger: refuses to delete or truncate forms and form versions that records use (records name them without foreign keys), after waiting for every transaction writing records.';
CREATE TRIGGER forms_in_use BEFORE DELETE ON lowcode.forms
    FOR EACH ROW EXECUTE FUNCTION lowcode.forms_in_use();
CREATE TRIGGER forms_in_use BEFORE DELETE ON lowcode.form_versions
    FOR EACH ROW EXECUTE FUNCTION lowcode.forms_in_use();
CREATE TRIGGER forms_in_use_truncate BEFORE TRUNCATE ON lowcode.forms
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.forms_in_use();
CREATE TRIGGER forms_in_use_truncate BEFORE TRUNCATE ON lowcode.form_versions
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.forms_in_use();

-- The Rust functions of 0.3.0 (src/forms_api.rs, src/tasks.rs, src/worker.rs, src/worker_registry.rs).
CREATE FUNCTION lowcode.claim_task(
	"task" bigint,
	"worker" TEXT DEFAULT NULL
) RETURNS bool
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'claim_task_by_id_wrapper';

CREATE FUNCTION lowcode.submit(
	"app" TEXT,
	"form" TEXT,
	"data" jsonb,
	"expected_version" INT
) RETURNS bigint
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'submit_expecting_wrapper';

CREATE FUNCTION lowcode.call_at(
	"app" TEXT,
	"call" TEXT,
	"args" jsonb DEFAULT '{}'
) RETURNS jsonb
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'call_at_wrapper';

CREATE FUNCTION lowcode.apps_granted(
	"privilege" TEXT
) RETURNS TEXT[]
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'apps_granted_wrapper';

CREATE FUNCTION lowcode.claimable_tasks(
	"pool" TEXT DEFAULT NULL
) RETURNS TABLE (
	"id" bigint, 
	"app" TEXT, 
	"form" TEXT, 
	"record_id" bigint, 
	"record_state" TEXT, 
	"name" TEXT, 
	"title" TEXT, 
	"pool" TEXT, 
	"due_at" timestamp with time zone, 
	"created_at" timestamp with time zone 
)
STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'claimable_tasks_wrapper';

CREATE FUNCTION lowcode.my_tasks() RETURNS TABLE (
	"id" bigint, 
	"app" TEXT, 
	"form" TEXT, 
	"record_id" bigint, 
	"record_state" TEXT, 
	"name" TEXT, 
	"title" TEXT, 
	"pool" TEXT, 
	"due_at" timestamp with time zone, 
	"created_at" timestamp with time zone, 
	"status" TEXT, 
	"claimed_at" timestamp with time zone, 
	"outcomes" TEXT[] 
)
STRICT STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'my_tasks_wrapper';

CREATE FUNCTION lowcode.check_task_result(
	"subject" TEXT,
	"schema" jsonb,
	"data" jsonb
) RETURNS void
STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_task_result_wrapper';

CREATE FUNCTION lowcode.form_schema(
	"app" TEXT,
	"form" TEXT,
	"version" INT DEFAULT NULL
) RETURNS jsonb
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'form_schema_wrapper';

CREATE FUNCTION lowcode.check_form_ui(
	"app" TEXT,
	"form" TEXT,
	"ui" jsonb
) RETURNS void
STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_form_ui_wrapper';

CREATE FUNCTION lowcode.property_order(
	"schema" TEXT
) RETURNS jsonb
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'property_order_wrapper';

CREATE FUNCTION lowcode.worker_databases() RETURNS TABLE (
	"database" TEXT,
	"state" TEXT,
	"pid" INT,
	"arrived" timestamp with time zone,
	"last_visit" timestamp with time zone,
	"next_due" timestamp with time zone,
	"visits" bigint,
	"detail" TEXT
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_databases_wrapper';

CREATE FUNCTION lowcode.worker_note_changed() RETURNS void
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_note_changed_wrapper';

CREATE FUNCTION lowcode.worker_note_due("fire_at" timestamp with time zone) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_note_due_wrapper';

CREATE FUNCTION lowcode.define_form_version(app text, form text, schema jsonb, property_order jsonb) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    checked  jsonb;
    current  lowcode.form_versions;
    new_version  int;
BEGIN
    PERFORM lowcode.check_name('app', app);
    PERFORM lowcode.check_name('form', form);
    IF schema IS NULL THEN
        RAISE EXCEPTION 'lowcode: %.%: argument "schema" must not be NULL', app, form
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM FROM lowcode.apps a WHERE a.name = app FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown app "%"', app
            USING ERRCODE = 'undefined_object',
                  HINT = format('create it with lowcode.create_app(%L, ''a title'')', app);
    END IF;
    PERFORM lowcode.authorize(app, 'admin', format('define form %s', form));
    checked := lowcode.compile_schema(app || '.' || form, schema);

    -- One definer at a time per form: the row lock orders concurrent define_form calls.
    INSERT INTO lowcode.forms (app, name) VALUES (app, form) ON CONFLICT DO NOTHING;
    PERFORM FROM lowcode.forms f WHERE f.app = app AND f.name = form FOR UPDATE;
    SELECT v.* INTO current
      FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id
     WHERE f.app = app AND f.name = form;
    IF FOUND AND current.schema = schema THEN
        RETURN current.version;            -- identical schema: nothing to publish
    END IF;
    new_version := coalesce(current.version, 0) + 1;
    INSERT INTO lowcode.form_versions (app, form, version, schema, bundled, draft, published_by, property_order)
    VALUES (app, form, new_version, schema, checked -> 'bundled', checked ->> 'draft', lowcode.actor(app), property_order)
    RETURNING * INTO current;
    -- The schema's own title (a JSON Schema keyword) is the form's.
    UPDATE lowcode.forms f SET current_version_id = current.id,
                               title = CASE WHEN jsonb_typeof(schema -> 'title') = 'string' THEN schema ->> 'title' ELSE f.title END
     WHERE f.app = app AND f.name = form;
    -- (Every backend looks the current version up again: the forms_written trigger.)
    RETURN new_version;
END $$;
COMMENT ON FUNCTION lowcode.define_form_version(text, text, jsonb, jsonb) IS 'Internal: define_form, with the author''s property order when the schema was given as text.';

CREATE OR REPLACE FUNCTION lowcode.define_form(app text, form text, schema jsonb) RETURNS int
LANGUAGE sql AS $$ SELECT lowcode.define_form_version(app, form, schema, NULL) $$;
COMMENT ON FUNCTION lowcode.define_form(text, text, jsonb) IS 'Define or change a form with a JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12; default 2020-12); its "title" is the form''s title. Returns the version new submissions are validated against: the current one when the schema is unchanged, else a new one. Every session enforces it from its next statement.';

CREATE FUNCTION lowcode.define_form(app text, form text, schema text) RETURNS int
LANGUAGE sql AS $$ SELECT lowcode.define_form_version(app, form, schema::jsonb, lowcode.property_order(schema)) $$;
COMMENT ON FUNCTION lowcode.define_form(text, text, text) IS 'define_form with the schema as JSON text (a quoted literal is taken as text): the same, and form_schema keeps the fields in the order written (jsonb sorts keys).';

CREATE FUNCTION lowcode.set_form_ui(app text, form text, ui jsonb) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.check_name('app', app);
    PERFORM lowcode.check_name('form', form);
    PERFORM lowcode.authorize(app, 'admin', format('set the UI of form %s', form));
    PERFORM lowcode.check_form_ui(app, form, coalesce(ui, '{}'));
    UPDATE lowcode.forms f SET ui = coalesce(set_form_ui.ui, '{}') WHERE f.app = app AND f.name = form;
END $$;
COMMENT ON FUNCTION lowcode.set_form_ui(text, text, jsonb) IS 'Set how renderers show a form (app admins), without a new schema version: {"title", "description", "order": {"": [fields], "<object field>": [...]}, "fields": {"<dotted path>": {"label", "help", "placeholder", "widget", "enum_labels"}}}, every text a string or one per locale ({"en": ..., "zh-CN": ...}). NULL: none. lowcode.form_schema returns it.';

-- ---------------------------------------------------------------- workflows and tasks (sql/workflow.sql, sql/tasks_timers.sql)
ALTER TABLE lowcode.tasks ADD COLUMN app text, ADD COLUMN form text, ADD COLUMN outcomes text[],
                          ADD COLUMN result_schema jsonb, ADD COLUMN events boolean NOT NULL DEFAULT false;
UPDATE lowcode.tasks t SET app = r.app, form = r.form FROM lowcode.records r WHERE r.id = t.record_id;
ALTER TABLE lowcode.tasks ALTER COLUMN app SET NOT NULL, ALTER COLUMN form SET NOT NULL;
COMMENT ON TABLE lowcode.tasks IS 'Work for people: assigned to a user, offered to a role, or put in a claim pool (first claim wins), with its app and form. Completing records whether the deadline was met, checks the outcome against outcomes and the data against result_schema; with events, <app>.task.created, .claimed and .completed go to the outbox.';
CREATE INDEX timers_task_idx ON lowcode.timers (task_id) WHERE status = 'pending';
-- A deadline is written with its task in one statement, and both go with their record
-- (record_id's key cascades): the key on task_id only cost each submit a check.
-- (0.2.0's guard refuses every drop of lowcode's objects: it steps aside for this one.)
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
ALTER TABLE lowcode.timers DROP CONSTRAINT timers_task_id_fkey;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;

-- Approvals are Rust since 0.3.0 (src/approvals.rs, src/actions/approval.rs): their
-- PL/pgSQL helpers go (0.2.0's guard refuses every drop of lowcode's objects: it steps aside).
CREATE OR REPLACE FUNCTION lowcode.decide(
	"task" bigint,
	"decision" TEXT,
	"comment" TEXT DEFAULT NULL
) RETURNS TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'decide_wrapper';
CREATE OR REPLACE FUNCTION lowcode.withdraw(
	"record" bigint
) RETURNS TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'withdraw_wrapper';
-- Rust since 0.3.0 (src/timers.rs); replaced in place, so its grants stay.
CREATE OR REPLACE FUNCTION lowcode.run_due_timers(
	"max" INT DEFAULT 1000
) RETURNS INT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'run_due_timers_wrapper';
COMMENT ON FUNCTION lowcode.run_due_timers(int) IS 'Fire up to max due timers and deadlines (lowcode administrators; runs as the extension''s owner). Safe to run from several schedulers at once (SKIP LOCKED). A timer whose rules fail with a transient error (connection, resources, I/O, cancel) is retried with backoff, up to 5 attempts; any other error marks it failed with the error; the others still fire.';
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.approval_task(lowcode.approvals, text);
DROP FUNCTION lowcode.require_claimer(lowcode.tasks, text);
DROP FUNCTION lowcode.task_for_update(bigint);
DROP FUNCTION lowcode.record_for_update(bigint);
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
-- Deciding or withdrawing cancels the approval's tasks: found by their approval.
CREATE INDEX tasks_approval_idx ON lowcode.tasks (approval_id) WHERE approval_id IS NOT NULL;
-- Tasks and timers lose their key to records and their CHECKs: only the engine writes them,
-- and the key's check and the CHECKs (parsed again by PostgreSQL for every statement) were a
-- quarter of a submit's own work. A record's tasks and timers go with it: records_after on
-- DELETE (Rust), records_truncated on TRUNCATE; a deleted record's timers are found by
-- timers_record_idx, now over all of them.
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
ALTER TABLE lowcode.tasks DROP CONSTRAINT tasks_record_id_fkey, DROP CONSTRAINT tasks_kind_check,
    DROP CONSTRAINT tasks_status_check;
ALTER TABLE lowcode.timers DROP CONSTRAINT timers_record_id_fkey, DROP CONSTRAINT timers_status_check;
DROP INDEX lowcode.timers_record_idx;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
-- A record's timers: the pending ones of a state it leaves, all of them when it is deleted.
CREATE INDEX timers_record_idx ON lowcode.timers (record_id);
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
-- A deletion takes the record's tasks before the record, as a completion does.
CREATE OR REPLACE FUNCTION lowcode.delete_record(id bigint) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r      lowcode.records;
    routed jsonb;
    on_app text;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'lowcode: delete_record: argument "id" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- On a distributed runtime, on the node of the record's app (lowcode.runtime_at), where
    -- every statement below names the app.
    routed := lowcode.runtime_at('delete_record', NULL, id);
    IF routed ? 'r' THEN
        RETURN;
    END IF;
    on_app := routed ->> 'app';
    IF on_app IS NULL THEN
        SELECT * INTO r FROM lowcode.records x WHERE x.id = id;
    ELSE
        -- (The app as a value: Citus runs the statement on the app's shard here.)
        SELECT * INTO r FROM lowcode.records x WHERE x.app = on_app AND x.id = id;
    END IF;
    IF NOT FOUND OR NOT lowcode.may_read(r.app, r.owner) THEN
        RAISE EXCEPTION 'lowcode: record % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.authorize(r.app, 'delete', format('delete record %s of form %s', id, r.form));
    -- Its tasks first, then the record, the order in which completing a task takes them (the
    -- task, then the record for the rules of its completion): a deletion racing a completion
    -- waits for it, and deletes what its rules gave the record, instead of deadlocking.
    PERFORM FROM lowcode.tasks t WHERE t.app = r.app AND t.record_id OPERATOR(pg_catalog.=) id ORDER BY t.id FOR UPDATE;
    DELETE FROM lowcode.records x WHERE x.app = r.app AND x.id = id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: record % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.delete_record(bigint) IS 'Delete a record; its history stays.';

-- Rust since 0.3.0 (src/transitions.rs); replaced in place, so its grants stay.
CREATE OR REPLACE FUNCTION lowcode.transition(
	"record" bigint,
	"name" TEXT,
	"payload" jsonb DEFAULT '{}'
) RETURNS TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'transition_wrapper';

-- Rust since 0.3.0 (src/records.rs); replaced in place, so its grants stay.
CREATE OR REPLACE FUNCTION lowcode.update_record(
	"id" bigint,
	"data" jsonb,
	"expected_revision" INT DEFAULT NULL
) RETURNS INT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'update_record_wrapper';

-- Rust since 0.3.0 (src/tasks.rs); replaced in place, so its grants stay.
CREATE OR REPLACE FUNCTION lowcode.complete_task(
	"task" bigint,
	"outcome" TEXT,
	"data" jsonb DEFAULT '{}'
) RETURNS void
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'complete_task_wrapper';
COMMENT ON FUNCTION lowcode.complete_task(bigint, text, jsonb) IS 'Complete a task you claimed with an outcome (one of the task''s outcomes, when it declares them) and result data (checked against its result schema, 23514): records whether the deadline was met and fires task_completed:<task>.';

-- Rust since 0.3.0 (src/tasks.rs); replaced in place, so their grants stay.
CREATE OR REPLACE FUNCTION lowcode.release_task(
	"task" bigint
) RETURNS void
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'release_task_wrapper';
COMMENT ON FUNCTION lowcode.release_task(bigint) IS 'Give a claimed pool task back to its pool.';
CREATE OR REPLACE FUNCTION lowcode.reassign_task(
	"task" bigint,
	"to_worker" TEXT
) RETURNS void
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'reassign_task_wrapper';
COMMENT ON FUNCTION lowcode.reassign_task(bigint, text) IS 'Hand an open or claimed task (or an approval decision) to another worker.';

-- (sql/comments.sql) The new Rust functions.
COMMENT ON FUNCTION lowcode.claim_task(bigint, text) IS 'Claim the task a person chose (an inbox''s Claim button) for worker (default: the actor). True when this call won it; false when someone has it already or is claiming it this moment (first wins, never blocks). 42704 when the task does not exist, 42501 when it is not the caller''s to claim (its app; a task for a role whose member the claimer is not).';
COMMENT ON FUNCTION lowcode.claimable_tasks(text) IS 'An inbox: the open tasks the actor may claim (of pool, or of every pool and role), oldest first, with app, form, record and its state, title, due time. A task for a role is listed for the role''s members (the actor''s own membership when an app server acts for it).';
COMMENT ON FUNCTION lowcode.my_tasks() IS 'An inbox: the tasks the actor holds (claimed by or assigned to it, not completed), soonest due first, with the outcomes completing them accepts.';
COMMENT ON FUNCTION lowcode.check_task_result(text, jsonb, jsonb) IS 'Internal: raises 23514 (every issue as JSON in DETAIL) unless data conforms to a task''s result schema.';
COMMENT ON FUNCTION lowcode.form_schema(text, text, int) IS 'A form for a renderer: {app, form, version, version_id, draft, title, schema, order, ui}. schema is a standard JSON Schema document (explicit $schema; registered $refs embedded under $defs with their $id), order the fields'' order per object ("": the form; the author''s when it was defined from text, the UI schema''s over it), ui the form''s UI schema. The current version, or version.';
COMMENT ON FUNCTION lowcode.submit(text, text, jsonb, int) IS 'Submit as a page built from expected_version of the form does: 40001 (nothing written) when the form''s current version is another one, also when it changes meanwhile; otherwise as submit(app, form, data).';
COMMENT ON FUNCTION lowcode.apps_granted(text) IS 'The apps where the invoker holds privilege, as an array: what the row-level security policies of a distributed runtime test (lowcode.distribute(runtime => true); Citus refuses subqueries in policies on distributed tables). Read once per command, kept for the rest of it.';
COMMENT ON FUNCTION lowcode.call_at(text, text, jsonb) IS 'Run call (transition, update_record, claim_task, complete_task, release_task, reassign_task, decide or withdraw, delete_record or read_records, or an outbox call: create_consumer, drop_consumer, poll_events, ack_events, nack_event, consumer_lag, replay_dead_letters with its consumer; args: its arguments by name) on the node of app''s records, authorized like the call itself; returns its result as JSON. On a distributed runtime (lowcode.distribute(runtime => true)) the calls that take only an id send themselves as this; a caller that knows the app saves their lookup.';
COMMENT ON FUNCTION lowcode.check_form_ui(text, text, jsonb) IS 'Internal: raises 22023 (where in it, what is wrong) unless ui is a UI schema for the current version of the form.';
COMMENT ON FUNCTION lowcode.property_order(text) IS 'Internal: the author''s property order of a schema written as JSON text, per object field ("": the form itself).';

-- An UPDATE through a typed view is Rust since 0.3.0 (src/views.rs): view_change goes.
COMMENT ON FUNCTION lowcode.view_write() IS 'INSTEAD OF trigger of published views: INSERT submits, UPDATE applies the changed columns with update_record (refused with 40001 when another transaction changed the record meanwhile), DELETE deletes the record.';
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.view_change(text, text, jsonb, jsonb);
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;

-- lowcode.rules was a table define_workflow wrote and nothing read: now a view of the
-- definitions (the one home of a rule).
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
-- (out of the extension first: that also takes it off the list of tables pg_dump dumps)
ALTER EXTENSION lowcode DROP TABLE lowcode.rules;
DROP TABLE lowcode.rules;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
-- A workflow's rules are read from its definition (one home: the engine compiles the same
-- definition), listed here by position for SQL readers.
CREATE VIEW lowcode.rules AS
SELECT w.id AS workflow_version_id, x.ord::int AS position, x.r ->> 'name' AS name,
       x.r ->> 'on' AS event, x.r -> 'when' AS condition, x.r ->> 'outcome' AS outcome,
       x.r -> 'then' AS actions
  FROM lowcode.workflow_versions w,
       pg_catalog.jsonb_array_elements(coalesce(w.definition -> 'rules', '[]')) WITH ORDINALITY AS x(r, ord);
COMMENT ON VIEW lowcode.rules IS 'The rules of each workflow version by position (name, the event they listen to, when, outcome, actions), read from its definition.';

GRANT SELECT ON lowcode.rules TO PUBLIC;

-- lowcode.transitions, likewise: the engine reads a transition from the compiled definition
-- (src/transitions.rs); the table was a second copy of it.
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
ALTER EXTENSION lowcode DROP TABLE lowcode.transitions;
DROP TABLE lowcode.transitions;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
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
GRANT SELECT ON lowcode.transitions TO PUBLIC;
CREATE OR REPLACE FUNCTION lowcode.define_workflow(app text, form text, definition jsonb) RETURNS int
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

-- ---------------------------------------------------------------- scale-out (sql/scale_out.sql)
-- A role named by a grant or a hidden field, found by to_regrole (on Citus, a join of a
-- reference table with pg_roles runs as the invoker, who may not read pg_authid).
CREATE OR REPLACE FUNCTION lowcode.hidden(app text, form text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    IF lowcode.is_admin() THEN
        RETURN '{}';
    END IF;
    RETURN coalesce((SELECT pg_catalog.array_agg(DISTINCT h.field ORDER BY h.field)
                       FROM lowcode.hidden_fields h
                      WHERE h.app OPERATOR(pg_catalog.=) $1 AND h.form OPERATOR(pg_catalog.=) $2
                        -- (the role by to_regrole, not a join with pg_roles: src/privileges.rs)
                        AND pg_catalog.pg_has_role(lowcode.invoker(), pg_catalog.to_regrole(pg_catalog.quote_ident(h.role)), 'MEMBER')), '{}');
END $$;
COMMENT ON FUNCTION lowcode.hidden(text, text) IS 'The fields of app.form hidden from the invoker (through any role it is a member of); none for lowcode administrators.';

-- A unique field combination's index: one place writes its CREATE INDEX (sql/definitions.sql).
CREATE FUNCTION lowcode.unique_index_ddl(index_name text, app text, form text, fields text[], with_app boolean)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON lowcode.records (%s%s) WHERE app OPERATOR(pg_catalog.=) %L AND form OPERATOR(pg_catalog.=) %L',
                             index_name, CASE WHEN with_app THEN 'app, ' ELSE '' END,
                             (SELECT pg_catalog.string_agg(pg_catalog.format('(data OPERATOR(pg_catalog.->>) %L)', u.f), ', ' ORDER BY u.i)
                                FROM pg_catalog.unnest(fields) WITH ORDINALITY AS u(f, i)),
                             app, form)
$$;
COMMENT ON FUNCTION lowcode.unique_index_ddl(text, text, text, text[], boolean) IS 'The CREATE UNIQUE INDEX IF NOT EXISTS of a lowcode.uniques row (Citus copying the rows into a reference table fires the trigger again): its fields of its form''s records; with_app, the app first (a distributed runtime: Citus asks a unique index for the distribution column).';

CREATE OR REPLACE FUNCTION lowcode.uniques_index() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    worker       boolean := false;
    distributed  boolean := false;
BEGIN
    -- With Citus, the coordinator's copy of lowcode.uniques makes the index (Citus gives it
    -- to the shards); a worker's copies have nothing to do.
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT g.groupid OPERATOR(pg_catalog.<>) 0, EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''lowcode.records''::pg_catalog.regclass)
                   FROM pg_catalog.pg_dist_local_group g'
           INTO worker, distributed;
        IF worker THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('DROP INDEX IF EXISTS lowcode.%I', OLD.index_name);
        RETURN OLD;
    END IF;
    EXECUTE lowcode.unique_index_ddl(NEW.index_name, NEW.app, NEW.form, NEW.fields, distributed);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.uniques_index() IS 'Trigger: creates (or drops) the unique index a lowcode.uniques row stands for; also runs when pg_restore brings the row back.';

-- Scale-out on Citus (docs/scale-out.md). lowcode.distribute() makes lowcode's definitions
-- Citus reference tables: every node then holds every app, form, version, schema, workflow
-- and grant, so validation (lowcode.conforms in a CHECK on the shards of a table distributed
-- by tenant, a submit on any node) finds the same definitions everywhere. The runtime tables
-- (records, history, tasks, timers, the outbox) stay on the coordinator for now.
--
-- Each node's backends cache the current version of each form (src/definitions_cache.rs): a
-- write to lowcode.forms tells every backend of the node it runs on. On Citus that write runs
-- on every node holding a copy of the table, and so does this trigger.

CREATE FUNCTION lowcode.forms_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lowcode.forms_changed();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION lowcode.forms_written() IS 'Trigger: a statement wrote lowcode.forms (a new current version, a workflow attached, a form created or removed, a restore): every backend of this node looks the current versions up again from its next statement.';
CREATE TRIGGER forms_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lowcode.forms
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.forms_written();

-- An id for a row written on a shard without one. Citus makes shards without their table's
-- sequence defaults (it draws ids on the coordinator); on a distributed runtime the engine
-- writes an app's shards itself, on the app's node (src/placement.rs), so the shards of the
-- runtime tables draw from the node's sequence here, as the table's default would.
CREATE FUNCTION lowcode.fill_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.id := pg_catalog.nextval(TG_ARGV[0]::pg_catalog.regclass);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.fill_id() IS 'Trigger of a distributed runtime table (lowcode.distribute(runtime => true)), for rows written without an id: the next value of the sequence named by its argument (Citus makes shards without the table''s sequence default).';

-- The runtime's keys and policies as Citus asks for them: keys that include the app (a unique
-- key or a foreign key of a distributed table includes its distribution column), and no
-- policies (the ones with subqueries; distribute() gives the distributed tables theirs).
-- Runs on every node, on that node's own tables (the workers' are the ones their CREATE
-- EXTENSION made, which Citus keeps as they are), with lowcode's guard off in the caller's
-- transaction; does nothing where it has run.
CREATE FUNCTION lowcode.runtime_keys() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    runtime_tables CONSTANT text[] := ARRAY['records', 'history', 'approvals', 'tasks', 'decisions',
                                            'timers', 'events', 'consumers', 'deliveries', 'leases',
                                            'webhook_attempts'];
    k  record;
BEGIN
    IF (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attname)
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                                        AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
         WHERE i.indrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass AND i.indisprimary)
       OPERATOR(pg_catalog.=) ARRAY['app', 'id'] THEN
        RETURN false;
    END IF;
    -- Citus places a row by its app: an event of no record has none.
    IF EXISTS (SELECT FROM lowcode.events e WHERE e.app IS NULL) THEN
        RAISE EXCEPTION 'lowcode: distribute: % outbox events name no app', (SELECT pg_catalog.count(*) FROM lowcode.events e WHERE e.app IS NULL)
            USING ERRCODE = 'not_null_violation',
                  HINT = 'the runtime is distributed by app: let every consumer pass them, then lowcode.purge_events()';
    END IF;
    -- A consumer lives beside its app's events: one of every app would read every node.
    IF EXISTS (SELECT FROM lowcode.consumers c WHERE c.app IS NULL) THEN
        RAISE EXCEPTION 'lowcode: distribute: consumers of every app (%) cannot be distributed by app',
                        (SELECT pg_catalog.string_agg(c.name, ', ' ORDER BY c.name) FROM lowcode.consumers c WHERE c.app IS NULL)
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'drop them (lowcode.drop_consumer) and make one consumer per app';
    END IF;
    DROP POLICY IF EXISTS readers ON lowcode.records;
    DROP POLICY IF EXISTS workers ON lowcode.tasks;
    FOR k IN SELECT c.conrelid::pg_catalog.regclass AS rel, c.conname
               FROM pg_catalog.pg_constraint c
              WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                AND c.confrelid OPERATOR(pg_catalog.=) ANY (ARRAY(
                      SELECT pg_catalog.format('lowcode.%I', r)::pg_catalog.regclass::pg_catalog.oid
                        FROM pg_catalog.unnest(runtime_tables OPERATOR(pg_catalog.||) 'webhooks'::pg_catalog.text) r)) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', k.rel, k.conname);
    END LOOP;
    FOR k IN SELECT c.conrelid::pg_catalog.regclass AS rel, c.conname
               FROM pg_catalog.pg_constraint c
              WHERE c.contype OPERATOR(pg_catalog.=) 'p'
                AND c.conrelid OPERATOR(pg_catalog.=) ANY (ARRAY(
                      SELECT pg_catalog.format('lowcode.%I', r)::pg_catalog.regclass::pg_catalog.oid
                        FROM pg_catalog.unnest(runtime_tables) r)) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (app, %s)',
                                  k.rel, k.conname, k.conname,
                                  CASE k.rel WHEN 'lowcode.consumers'::pg_catalog.regclass THEN 'name'
                                             WHEN 'lowcode.deliveries'::pg_catalog.regclass THEN 'consumer, event_id'
                                             ELSE 'id' END);
    END LOOP;
    ALTER TABLE lowcode.consumers ALTER COLUMN app SET NOT NULL;
    ALTER TABLE lowcode.deliveries ADD FOREIGN KEY (app, consumer) REFERENCES lowcode.consumers (app, name) ON DELETE CASCADE,
                                   ADD FOREIGN KEY (app, event_id) REFERENCES lowcode.events (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.leases ADD FOREIGN KEY (app, consumer) REFERENCES lowcode.consumers (app, name) ON DELETE CASCADE;
    ALTER TABLE lowcode.events ALTER COLUMN app SET NOT NULL;
    ALTER TABLE lowcode.approvals ADD FOREIGN KEY (app, record_id) REFERENCES lowcode.records (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.tasks ADD FOREIGN KEY (app, approval_id) REFERENCES lowcode.approvals (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.decisions ADD FOREIGN KEY (app, approval_id) REFERENCES lowcode.approvals (app, id) ON DELETE CASCADE,
                                  ADD FOREIGN KEY (app, task_id) REFERENCES lowcode.tasks (app, id) ON DELETE CASCADE;
    -- A unique field combination's index (lowcode.add_unique) names the app first.
    FOR k IN SELECT u.* FROM lowcode.uniques u LOOP
        EXECUTE pg_catalog.format('DROP INDEX IF EXISTS lowcode.%I', k.index_name);
        EXECUTE lowcode.unique_index_ddl(k.index_name, k.app, k.form, k.fields, true);
    END LOOP;
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.runtime_keys() IS 'Internal (lowcode.distribute(runtime => true), on every node): gives lowcode''s runtime tables keys and foreign keys that include the app and the add_unique indexes the app first, and drops the policies with subqueries; false where it has run already.';

-- The definitions, in foreign-key order (a reference table may only refer to reference tables);
-- with runtime, the runtime tables too, distributed by app.
CREATE FUNCTION lowcode.distribute(runtime boolean DEFAULT false) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    definitions CONSTANT text[] := ARRAY['apps', 'forms', 'form_versions', 'workflow_versions',
                                         'grants', 'hidden_fields', 'schemas', 'uniques', 'call_grants'];
    -- Everything about a record, on the node of its app: records first, the others colocated;
    -- the outbox's consumers with their app's events and its epochs, a webhook's attempts with
    -- its app's.
    runtime_tables CONSTANT text[] := ARRAY['records', 'history', 'approvals', 'tasks', 'decisions',
                                            'timers', 'events', 'outbox_epochs', 'consumers', 'deliveries',
                                            'leases', 'webhook_attempts'];
    t     text;
    k     record;
    made  text[] := '{}';
    -- The caller's values of the settings set below, given back at the end.
    unsafe_triggers  text := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
    local_fk         text := pg_catalog.current_setting('citus.enable_local_reference_table_foreign_keys', true);
    unreached        text;
    guards           text[];
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'lowcode: distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE EXTENSION citus (with shared_preload_libraries = ''citus,lowcode''), add the worker nodes, then SELECT lowcode.distribute() on the coordinator';
    END IF;
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'lowcode: distribute: role "%" may not distribute lowcode''s tables', CURRENT_USER
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a superuser runs it (Citus copies lowcode''s tables, their triggers and grants onto every node)';
    END IF;
    -- The node's background worker waits while this changes lowcode's tables (each of its
    -- transactions takes ROW SHARE on lowcode.worker_state first, src/background.rs), and so
    -- on every worker below: a timer round holding the timers and waiting for the records,
    -- altered here, while this waited for the timers, was a deadlock. (A table of lowcode's,
    -- which only its owner can lock so: an advisory lock, any role could hold.)
    LOCK TABLE lowcode.worker_state IN EXCLUSIVE MODE;
    -- lowcode's tables have triggers (forms_written, forms_in_use, uniques_index,
    -- call_grants_check, form_versions_immutable; records_before and records_after): Citus
    -- copies them onto every node's copy or shard of the table, where they fire too; each of
    -- them reads or writes only that node (the runtime's: the shards of the same app).
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- The definitions refer only to each other: made reference tables in key order, their keys
    -- stay as they are (with this on, Citus would drop and re-add them, which lowcode's guard
    -- refuses, to fit local tables that refer to them: there are none).
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    FOREACH t IN ARRAY definitions LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                               WHERE p.logicalrelid OPERATOR(pg_catalog.=) pg_catalog.format('lowcode.%I', t)::pg_catalog.regclass);
        EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING pg_catalog.format('lowcode.%I', t)::pg_catalog.regclass;
        made := made OPERATOR(pg_catalog.||) t;
    END LOOP;
    -- A node added since has no copies yet: Citus makes them (blocking writes to the
    -- definitions while it copies; they are small).
    PERFORM pg_catalog.replicate_reference_tables('block_writes');
    -- Ids that do not collide across nodes. lowcode's tables belong to the extension, whose
    -- script made them (and their sequences) on every node, so Citus does not give their
    -- sequences its per-node ranges as it does for the sequences of tables it creates: each
    -- node's would start at 1. Each node but the coordinator (group 0) moves its sequences to
    -- the start of its range, group id << 48, as Citus does; a sequence already in its range
    -- (distribute() run again, a node that has written since) is left alone. (Leases: group
    -- id << 32, as a delivery id is a lease id * 65536 + its position.)
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s (%s)', n.nodename, n.nodeport, r.result), ', '
                                 ORDER BY n.nodeid)
      INTO unreached
      FROM pg_catalog.run_command_on_all_nodes($node$
                 SELECT pg_catalog.count(pg_catalog.setval(s.oid::pg_catalog.regclass,
                                         g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) b.bits, false))
                   FROM pg_catalog.pg_class s, pg_catalog.pg_dist_local_group g,
                        LATERAL (SELECT CASE s.relname WHEN 'leases_id_seq' THEN 32 ELSE 48 END AS bits) b
                  WHERE s.relkind OPERATOR(pg_catalog.=) 'S'
                    AND s.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                    AND g.groupid OPERATOR(pg_catalog.>) 0
                    AND COALESCE(pg_catalog.pg_sequence_last_value(s.oid), 0)
                        OPERATOR(pg_catalog.<) (g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) b.bits)
               $node$) r
      JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) r.nodeid
     WHERE NOT r.success;
    IF unreached IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: distribute: could not give every node its id range: %', unreached
            USING ERRCODE = 'connection_failure',
                  HINT = 'every node must be reachable from the coordinator (citus_check_cluster_node_health()); run lowcode.distribute() again';
    END IF;
    IF runtime AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                                WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass) THEN
        -- Changes to lowcode's tables, which its guard refuses outside the extension's
        -- scripts, to superusers too: it is off for this transaction only (other sessions see
        -- it on throughout: a catalog change is theirs at commit, and by then it is on
        -- again). On the workers, what Citus replays of this (the new policies) the guard
        -- lets through as a superuser's work on the coordinator.
        guards := ARRAY(SELECT e.evtname::pg_catalog.text FROM pg_catalog.pg_event_trigger e
                         WHERE e.evtname OPERATOR(pg_catalog.=) ANY (ARRAY['lowcode_guard', 'lowcode_guard_drop'])
                           AND e.evtenabled OPERATOR(pg_catalog.<>) 'D');
        FOREACH t IN ARRAY guards LOOP
            EXECUTE pg_catalog.format('ALTER EVENT TRIGGER %I DISABLE', t);
        END LOOP;
        -- Keys with the app, and no policies with subqueries: here, and on every worker's
        -- copies of the tables first (their policies would be in the way of Citus's).
        PERFORM lowcode.runtime_keys();
        SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s (%s)', w.nodename, w.nodeport, w.result), ', ')
          INTO unreached
          FROM pg_catalog.run_command_on_workers($node$
                   BEGIN;
                   LOCK TABLE lowcode.worker_state IN EXCLUSIVE MODE;
                   SET LOCAL citus.enable_ddl_propagation = off;
                   ALTER EVENT TRIGGER lowcode_guard DISABLE;
                   ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
                   SELECT lowcode.runtime_keys();
                   ALTER EVENT TRIGGER lowcode_guard ENABLE;
                   ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
                   COMMIT;
               $node$) w
         WHERE NOT w.success;
        IF unreached IS NOT NULL THEN
            RAISE EXCEPTION 'lowcode: distribute: could not prepare every node for the runtime: %', unreached
                USING ERRCODE = 'connection_failure',
                      HINT = 'every node must be reachable from the coordinator (citus_check_cluster_node_health()); run lowcode.distribute(runtime => true) again';
        END IF;
        -- The webhooks on every node: each node's worker delivers those of its apps.
        PERFORM pg_catalog.create_reference_table('lowcode.webhooks'::pg_catalog.regclass);
        made := made OPERATOR(pg_catalog.||) 'webhooks'::pg_catalog.text;
        FOREACH t IN ARRAY runtime_tables LOOP
            PERFORM pg_catalog.create_distributed_table(pg_catalog.format('lowcode.%I', t)::pg_catalog.regclass, 'app',
                        colocate_with => CASE t WHEN 'records' THEN 'none' ELSE 'lowcode.records' END);
            made := made OPERATOR(pg_catalog.||) t;
            -- Its shards (these and those Citus makes later, in a shard move) get the trigger;
            -- an event's also marks its app's epoch (lowcode.outbox_epochs: which node's
            -- transaction ids its events have, since a shard move).
            CONTINUE WHEN t OPERATOR(pg_catalog.=) ANY (ARRAY['outbox_epochs', 'consumers', 'deliveries']);
            IF t OPERATOR(pg_catalog.=) 'events' THEN
                CREATE TRIGGER outbox_epoch BEFORE INSERT ON lowcode.events FOR EACH ROW WHEN (NEW.id IS NULL)
                    EXECUTE FUNCTION lowcode.outbox_epoch_mark();
                CONTINUE;
            END IF;
            EXECUTE pg_catalog.format('CREATE TRIGGER fill_id BEFORE INSERT ON lowcode.%I FOR EACH ROW WHEN (NEW.id IS NULL) '
                                      'EXECUTE FUNCTION lowcode.fill_id(%L)',
                                      t, pg_catalog.pg_get_serial_sequence(pg_catalog.format('lowcode.%I', t), 'id'));
        END LOOP;
        -- The policies of sql/privileges.sql, with the apps as an array (read once per
        -- command) instead of a subquery.
        CREATE POLICY readers ON lowcode.records FOR SELECT USING (
            app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('read_all'))
            OR (owner OPERATOR(pg_catalog.=) lowcode.invoker_name()
                AND app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('read_own'))));
        CREATE POLICY workers ON lowcode.tasks FOR SELECT USING (
            lowcode.invoker_name() OPERATOR(pg_catalog.=) ANY (ARRAY[claimed_by, assignee])
            OR app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('claim') OPERATOR(pg_catalog.||) lowcode.apps_granted('decide')
                                               OPERATOR(pg_catalog.||) lowcode.apps_granted('read_all')));
        COMMENT ON POLICY readers ON lowcode.records IS 'A role reads the records of apps where it holds read_all, and its own where it holds read_own (distributed runtime: the apps as an array, lowcode.apps_granted).';
        COMMENT ON POLICY workers ON lowcode.tasks IS 'A role sees the tasks of apps where it may claim, decide or read_all, and the tasks it holds (distributed runtime: the apps as an array, lowcode.apps_granted).';
        -- A submission runs on the node of its app: one round trip, one local transaction
        -- there (inside a transaction block too: force_delegation), on the app's shards as on
        -- one node's tables (src/placement.rs).
        PERFORM pg_catalog.create_distributed_function('lowcode.submit(text, text, jsonb)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        PERFORM pg_catalog.create_distributed_function('lowcode.submit(text, text, jsonb, int)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        -- And the calls that take only an id, once they know their app (src/placement.rs).
        PERFORM pg_catalog.create_distributed_function('lowcode.call_at(text, text, jsonb)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        FOREACH t IN ARRAY guards LOOP
            EXECUTE pg_catalog.format('ALTER EVENT TRIGGER %I ENABLE', t);
        END LOOP;
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', local_fk, true);
    RETURN made;
END $$;
COMMENT ON FUNCTION lowcode.distribute(boolean) IS 'On a Citus coordinator (superusers): makes lowcode''s definitions (apps, forms, versions, schemas, workflows, grants) reference tables, copied to every node, so that every node validates against the same forms, and gives each node''s lowcode sequences a range of their own (group id << 48, as Citus does), so that ids do not collide across nodes. With runtime => true, also distributes the runtime (records, history, approvals, tasks, decisions, timers, events, the outbox''s consumers, deliveries and leases, webhook attempts) by app, colocated, with keys that include the app and policies without subqueries, makes the webhooks a reference table (every node''s worker delivers those of its apps), and runs lowcode.submit, the calls by id and the outbox calls on the node of their app (docs/scale-out.md says what works there so far). Idempotent: run it again after adding a node (the new node gets its copies) or updating lowcode. Returns the tables it made reference or distributed tables.';

-- ---------------------------------------------------------------- the worker pool (sql/worker.sql)
-- A bounded pool of workers serves every database (src/worker.rs, crates/core/src/dispatch.rs): the
-- writers of timers note their due time for it (src/worker_registry.rs).
COMMENT ON FUNCTION lowcode.worker_databases() IS 'Internal: what lowcode''s worker pool knows about each database (state, worker pid, visits, next due time), read by lowcode.worker_status.';
COMMENT ON FUNCTION lowcode.worker_note_changed() IS 'Internal: lowcode was installed here or its webhooks changed: the worker pool looks at this database after the commit.';
COMMENT ON FUNCTION lowcode.worker_note_due(timestamptz) IS 'Internal: a timer written in this transaction is due then: the worker pool knows it after the commit.';
COMMENT ON TABLE lowcode.worker_state IS 'What lowcode''s workers did in this database (one row, written by each worker that visits it): the pid of the latest, the role it acts as (the extension''s owner), when its visit began, the last timer run and the timers fired, the last error. Not dumped: it describes running processes.';

-- A webhook's max_attempts is its consumer's (webhook:<name>), which the worker reads; the
-- webhook's own copy went.
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
ALTER TABLE lowcode.webhooks DROP COLUMN max_attempts;
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
COMMENT ON TABLE lowcode.webhooks IS 'Webhooks (lowcode.create_webhook): where the worker POSTs the events of their topics (NULL: all), signed with secret; headers, timeout_ms, backoff (NULL: 1 s, 2 s, 4 s ... jittered), rate_limit per second; status active, paused or disabled (410 Gone). Its outbox consumer webhook:<name> keeps its max_attempts (before a dead letter). The secret and headers are readable by lowcode administrators only.';
CREATE OR REPLACE FUNCTION lowcode.create_webhook(name text, url text, topics text[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o       jsonb := coalesce(options, '{}');
    secret  text;
    unknown text;
    backoff interval[];
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'create webhooks');
    IF name IS NULL OR url IS NULL THEN
        RAISE EXCEPTION 'lowcode: create_webhook: arguments "name" and "url" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(o) k
     WHERE k NOT IN ('app', 'secret', 'headers', 'timeout', 'max_attempts', 'backoff', 'rate_limit');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: webhook %: unknown option(s) %', name, unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'options: app, secret, headers, timeout, max_attempts, backoff, rate_limit';
    END IF;
    secret := coalesce(o->>'secret',
                       'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'));
    PERFORM lowcode.webhook_check(url, secret);
    -- (Checked here: a failing row would be logged with its secret.)
    IF NOT coalesce((o->>'max_attempts')::int BETWEEN 1 AND 100, true) THEN
        RAISE EXCEPTION 'lowcode: webhook %: max_attempts must be between 1 and 100, not %', name, o->>'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- (Apart: on a distributed runtime lowcode.webhooks is a reference table, whose INSERT may
    -- have no subquery.)
    backoff := (SELECT array_agg(b::interval ORDER BY i) FROM jsonb_array_elements_text(o->'backoff') WITH ORDINALITY x(b, i));
    INSERT INTO lowcode.webhooks (name, url, topics, secret, headers, timeout_ms, backoff, rate_limit, app)
    VALUES (name, url, topics, secret, coalesce(o->'headers', '{}'),
            coalesce((extract(epoch FROM (o->>'timeout')::interval) * 1000)::int, 10000),
            backoff, (o->>'rate_limit')::int, o->>'app');
    PERFORM lowcode.webhook_consumer(name, o->>'app', topics, coalesce((o->>'max_attempts')::int, 8), true);
    RETURN secret;
END $$;
COMMENT ON FUNCTION lowcode.create_webhook(text, text, text[], jsonb) IS 'Create a webhook (lowcode administrators): the worker POSTs every event of topics (exact or prefix.*; NULL: all) from now on to url, which lowcode.webhook_allow must allow. options: app (only that app''s events; default every app), secret (whsec_...; default a new one), headers (object), timeout (interval, default 10 s), max_attempts (default 8), backoff (array of intervals), rate_limit (per second). Returns the secret: the only time it is shown.';

CREATE OR REPLACE FUNCTION lowcode.resume_webhook(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'resume webhooks');
    UPDATE lowcode.webhooks w SET status = 'active', disabled_reason = NULL WHERE w.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: webhook "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.resume_webhook(text) IS 'Send to a paused or disabled (410 Gone) webhook again (lowcode administrators), from the events that waited.';

-- worker_status: more columns (last_visit, next_due, visits) and the pool's states. (0.2.0's
-- guard refuses every drop of lowcode's objects, also from its own scripts: it steps aside
-- for this one. Event triggers never fire for ALTER EVENT TRIGGER.)
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.worker_status();
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
CREATE FUNCTION lowcode.worker_status()
RETURNS TABLE (database name, state text, pid int, acting_as name, started_at timestamptz, last_timer_run timestamptz,
               timers_fired bigint, last_error text, last_error_at timestamptz, detail text,
               last_visit timestamptz, next_due timestamptz, visits bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    launcher int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read the worker''s status');
    IF NOT lowcode.worker_preloaded() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'lowcode is not in shared_preload_libraries: timers fire only when something calls lowcode.run_due_timers(), and webhooks are not delivered'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    IF pg_is_in_recovery() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'this server is a standby (read-only): timers fire and webhooks are delivered on the primary; the launcher starts here if it is promoted'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    SELECT p.pid INTO launcher FROM lowcode.worker_processes() p WHERE p.kind = 'lowcode launcher' LIMIT 1;
    IF launcher IS NULL THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'the lowcode launcher is not running (starting, restarting after a crash, or out of max_worker_processes: see the server log)'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.database::name, d.state, d.pid, s.acting_as, d.arrived, s.last_timer_run, s.timers_fired,
           s.last_error, s.last_error_at, d.detail || format(' (launcher pid %s)', launcher),
           d.last_visit, d.next_due, d.visits
      FROM lowcode.worker_databases() d
      LEFT JOIN lowcode.worker_state s ON d.database = current_database()
     ORDER BY d.database = current_database() DESC, d.database;
END $$;
COMMENT ON FUNCTION lowcode.worker_status() IS 'lowcode''s background workers (lowcode administrators): one row per database that has lowcode (this one first): state on (a worker is there now, pid), starting, waiting (work is due and no worker is free, and why: lowcode.worker_max or max_worker_processes), idle (nothing due: a worker comes when something is) or off (and why); when the current or last visit began (started_at) and ended (last_visit), visits, when something is due next; for this database also the role the worker acts as, its last timer run, timers fired and last error.';

-- This database has lowcode 0.3.0: the worker pool looks at it after the commit.
SELECT lowcode.worker_note_changed();

-- ---------------------------------------------------------------- the one topic matcher and the one retry policy (src/api.rs, crates/core/src/topics.rs, retry.rs)
-- topic_matches was SQL and disagreed with webhook delivery on '*' and on an empty list; it is
-- now the Rust matcher both use. nack_event takes its waits from retry_delay, run_due_timers
-- (Rust since 0.3.0, above) from the same policy. (hardening below pins and grants them again.)
CREATE OR REPLACE FUNCTION lowcode.topic_matches(
	"topic" TEXT,
	"topics" TEXT[]
) RETURNS bool
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'topic_matches_wrapper';
COMMENT ON FUNCTION lowcode.topic_matches(text, text[]) IS 'Internal: whether topic is one of topics, exactly, by a prefix ''order.*'' or ''*''; NULL or empty topics match all (the one topic matcher, also used by webhook delivery).';
CREATE FUNCTION lowcode.retry_delay(
	"policy" TEXT,
	"tried" INT,
	"max_attempts" INT DEFAULT NULL,
	"schedule" interval[] DEFAULT NULL
) RETURNS interval
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'retry_delay_wrapper';
COMMENT ON FUNCTION lowcode.retry_delay(text, int, int, interval[]) IS 'Internal: the wait before the next attempt of work tried tried times under policy (timer, consumer, webhook), following schedule when it has entries; NULL when max_attempts (NULL: the policy''s own limit) were made. The one retry policy of timers, consumers and webhooks.';
CREATE OR REPLACE FUNCTION lowcode.nack_event(consumer text, id bigint, error text, retry_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    l      lowcode.leases;
    p      int := (id % 65536)::int;
    ev     bigint;
    tried  int;
    wait   interval;
    dead   boolean;
    routed jsonb;
    capp   text;
BEGIN
    IF consumer IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'lowcode: nack_event: arguments "consumer" and "id" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    routed := lowcode.outbox_at('nack_event', consumer, NULL,
                                jsonb_build_object('id', id, 'error', error, 'retry_after', retry_after));
    IF routed ? 'r' THEN
        RETURN routed ->> 'r';
    END IF;
    c := lowcode.consumer_for(consumer, 'nack events', routed ->> 'app');
    capp := coalesce(c.app, '');
    SELECT * INTO l FROM lowcode.leases x WHERE x.app = capp AND x.id = nack_event.id / 65536 AND x.consumer = c.name FOR UPDATE;
    IF NOT FOUND OR p < 1 OR p > cardinality(l.events) OR l.events[p] IS NULL THEN
        RAISE EXCEPTION 'lowcode: delivery % is not in flight for consumer "%"', id, consumer
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'nack the id poll_events returned, before its visibility timeout ends';
    END IF;
    ev := l.events[p];
    tried := l.attempts[p];
    -- The wait: the one retry policy (crates/core/src/retry.rs), the consumer's backoff.
    wait := lowcode.retry_delay('consumer', tried, NULL, c.backoff);
    dead := tried >= c.max_attempts;
    INSERT INTO lowcode.deliveries AS d (app, consumer, event_id, status, attempt, visible_at, last_error)
    VALUES (capp, c.name, ev, CASE WHEN dead THEN 'dead' ELSE 'pending' END, tried,
            now() + coalesce(retry_after, wait, interval '0'),
            error)
    ON CONFLICT ON CONSTRAINT deliveries_pkey DO UPDATE
       SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, visible_at = EXCLUDED.visible_at,
           last_error = EXCLUDED.last_error, lease_id = NULL;
    IF l.open = 1 THEN
        DELETE FROM lowcode.leases x WHERE x.app = capp AND x.id = l.id;
    ELSE
        UPDATE lowcode.leases x SET events[p] = NULL, open = l.open - 1 WHERE x.app = capp AND x.id = l.id;
    END IF;
    RETURN CASE WHEN dead THEN 'dead' ELSE 'retry' END;
END $$;
COMMENT ON FUNCTION lowcode.nack_event(text, bigint, text, interval) IS 'Report a failed delivery (the id poll_events returned): retried after retry_after or the consumer''s backoff; after its max_attempts it becomes a dead letter with this error. Returns retry or dead.';

-- ---------------------------------------------------------------- validation issues (src/api.rs)
-- validate(): params and schema_path per issue (the 0.2.0 C symbol stays for databases not
-- updated yet). The guard steps aside for the drop, as above.
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.validate(text, text, jsonb);
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
CREATE FUNCTION lowcode.validate("app" TEXT, "form" TEXT, "data" jsonb) RETURNS TABLE (
	"path" TEXT,
	"keyword" TEXT,
	"message" TEXT,
	"field" TEXT,
	"params" jsonb,
	"schema_path" TEXT
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'validate_issues_wrapper';
COMMENT ON FUNCTION lowcode.validate(text, text, jsonb) IS 'Every problem of data against the form''s current version: path (the instance location), keyword, message, field (the JSON pointer of the field the message belongs to, e.g. the missing one for required), params (the rule''s parameters: limit, missing, pattern, format, expected, allowed, multiple_of, unexpected; for a client''s own or translated message) and schema_path (where the rule is in the schema); no rows when it is valid. Raises nothing for invalid data.';

-- ---------------------------------------------------------------- the app in every runtime table (sql/workflow.sql)
-- Approvals, decisions and timers name their record's app, as records, history, tasks and
-- events do: the key a scaled-out install distributes the runtime by (docs/scale-out.md).
ALTER TABLE lowcode.approvals ADD COLUMN app text;
UPDATE lowcode.approvals a SET app = r.app FROM lowcode.records r WHERE r.id = a.record_id;
ALTER TABLE lowcode.approvals ALTER COLUMN app SET NOT NULL;
ALTER TABLE lowcode.decisions ADD COLUMN app text;
UPDATE lowcode.decisions d SET app = a.app FROM lowcode.approvals a WHERE a.id = d.approval_id;
ALTER TABLE lowcode.decisions ALTER COLUMN app SET NOT NULL;
ALTER TABLE lowcode.timers ADD COLUMN app text;
-- (0.2.0's timers had a key to their record: every one has it.)
UPDATE lowcode.timers t SET app = r.app FROM lowcode.records r WHERE r.id = t.record_id;
ALTER TABLE lowcode.timers ALTER COLUMN app SET NOT NULL;

-- ---------------------------------------------------------------- the tasks policy (sql/privileges.sql)
-- A task's app is its record's (the engine writes both): the policy reads it from the task
-- instead of looking the record up for every row.
ALTER POLICY workers ON lowcode.tasks USING (
    lowcode.invoker_name() OPERATOR(pg_catalog.=) ANY (ARRAY[claimed_by, assignee])
    OR app OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT lowcode.apps_where('claim') UNION SELECT lowcode.apps_where('decide')
                                             UNION SELECT lowcode.apps_where('read_all'))));

-- ---------------------------------------------------------------- the outbox of a distributed runtime (sql/outbox.sql, sql/worker.sql); delete_record and read_records there (sql/definitions.sql, sql/privileges.sql)
-- An outbox call runs on the node of its consumer's app (lowcode.outbox_at): deliveries,
-- leases and webhook attempts name the app ("" for a consumer or webhook of every app), so
-- that lowcode.distribute() can keep them with the app's events, and a webhook names the app
-- whose events it sends, so that the worker of that app's node delivers it.
ALTER TABLE lowcode.deliveries ADD COLUMN app text NOT NULL DEFAULT '';
ALTER TABLE lowcode.leases ADD COLUMN app text NOT NULL DEFAULT '';
ALTER TABLE lowcode.webhooks ADD COLUMN app text;
ALTER TABLE lowcode.webhook_attempts ADD COLUMN app text NOT NULL DEFAULT '';
UPDATE lowcode.deliveries d SET app = c.app FROM lowcode.consumers c WHERE c.name = d.consumer AND c.app IS NOT NULL;
UPDATE lowcode.leases l SET app = c.app FROM lowcode.consumers c WHERE c.name = l.consumer AND c.app IS NOT NULL;
UPDATE lowcode.webhooks w SET app = c.app FROM lowcode.consumers c WHERE c.name = 'webhook:' || w.name AND c.app IS NOT NULL;
UPDATE lowcode.webhook_attempts a SET app = w.app FROM lowcode.webhooks w WHERE w.name = a.webhook AND w.app IS NOT NULL;
-- (0.2.0's guard refuses every drop of lowcode's objects: it steps aside for this one.)
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.consumer_for(text, text);
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
CREATE FUNCTION lowcode.outbox_at(
	"call" TEXT,
	"consumer" TEXT,
	"app" TEXT,
	"args" jsonb
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'outbox_at_wrapper';
COMMENT ON FUNCTION lowcode.outbox_at(text, text, text, jsonb) IS 'Internal: where an outbox call runs. NULL on one node (here); with the runtime distributed, {"app": ...} on the node of the consumer''s app, or {"r": ...}: the call ran there (lowcode.call_at) and returned this.';
CREATE FUNCTION lowcode.runtime_at(
	"call" TEXT,
	"app" TEXT,
	"record" bigint,
	"args" jsonb DEFAULT '{}'
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'runtime_at_wrapper';
COMMENT ON FUNCTION lowcode.runtime_at(text, text, bigint, jsonb) IS 'Internal: where a call about an app''s records written in SQL (delete_record, read_records) runs. NULL on one node (here); with the runtime distributed, {"app": ...} on the node of the app (given, or that of record), or {"r": ...}: the call ran there (lowcode.call_at) and returned this.';
CREATE OR REPLACE FUNCTION lowcode.read_records(app text, form text) RETURNS SETOF lowcode.records
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    -- On a distributed runtime, read on the node of the app (lowcode.runtime_at), where the
    -- fields hidden from the invoker are masked.
    routed jsonb := lowcode.runtime_at('read_records', app, NULL, jsonb_build_object('form', form));
BEGIN
    IF routed ? 'r' THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::lowcode.records, routed -> 'r');
        RETURN;
    END IF;
    RETURN QUERY
    -- (The record as lowcode.records: on a distributed runtime Citus names the app's shard,
    -- whose row type masked does not take.)
    SELECT (lowcode.masked(ROW(r.*)::lowcode.records)).*
      FROM lowcode.records r
     WHERE r.app = app AND r.form = form
       -- lowcode.may_read, with the app's privileges worked out once, not per row
       AND ((SELECT lowcode.may(app, 'read_all'))
            OR (r.owner = lowcode.invoker_name() AND (SELECT lowcode.may(app, 'read_own'))))
     ORDER BY r.id;
END $$;
COMMENT ON FUNCTION lowcode.read_records(text, text) IS 'The records of a form that the invoker may read, oldest first, without fields hidden from it.';
CREATE FUNCTION lowcode.app_of_record(
	"record" bigint
) RETURNS TEXT
LANGUAGE c
AS 'MODULE_PATHNAME', 'app_of_record_wrapper';
COMMENT ON FUNCTION lowcode.app_of_record(bigint) IS 'Internal: on a distributed runtime, the app of a record (or of its history, once it is deleted), found on the nodes that answer; NULL on one node and when there is none. get_record and record_history read the app''s shards only.';
CREATE OR REPLACE FUNCTION lowcode.get_record(id bigint) RETURNS lowcode.records
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    r lowcode.records;
    -- On a distributed runtime, read on the shards of the record's app only (found on the
    -- nodes that answer: another node down does not matter).
    on_app text := lowcode.app_of_record(id);
BEGIN
    IF on_app IS NULL THEN
        SELECT * INTO r FROM lowcode.records x WHERE x.id = id;
    ELSE
        SELECT * INTO r FROM lowcode.records x WHERE x.app = on_app AND x.id = id;
    END IF;
    IF NOT FOUND OR NOT lowcode.may_read(r.app, r.owner) THEN
        -- The same answer whether it does not exist or may not be read.
        RAISE EXCEPTION 'lowcode: record % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    RETURN lowcode.masked(r);
END $$;
COMMENT ON FUNCTION lowcode.get_record(bigint) IS 'One record as the invoker may see it (without fields hidden from it); "does not exist" when it may not read it.';
CREATE OR REPLACE FUNCTION lowcode.record_history(record bigint) RETURNS SETOF lowcode.history
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    r      lowcode.records;
    hide   text[];
    -- On a distributed runtime, read on the shards of the record's app only (found on the
    -- nodes that answer: another node down does not matter). NULL on one node.
    on_app text := lowcode.app_of_record(record);
BEGIN
    IF NOT lowcode.is_admin() THEN
        -- A deleted record's history is for those who read all of the app.
        IF on_app IS NULL THEN
            SELECT * INTO r FROM lowcode.records x WHERE x.id = record;
        ELSE
            SELECT * INTO r FROM lowcode.records x WHERE x.app = on_app AND x.id = record;
        END IF;
        IF NOT FOUND THEN
            IF on_app IS NULL THEN
                SELECT h.app, h.form INTO r.app, r.form FROM lowcode.history h WHERE h.record_id = record LIMIT 1;
            ELSE
                SELECT h.app, h.form INTO r.app, r.form FROM lowcode.history h WHERE h.app = on_app AND h.record_id = record LIMIT 1;
            END IF;
        END IF;
        IF r.app IS NULL OR NOT lowcode.may_read(r.app, r.owner) THEN
            RAISE EXCEPTION 'lowcode: record % does not exist', record USING ERRCODE = 'undefined_object';
        END IF;
        hide := lowcode.hidden(r.app, r.form);
    END IF;
    -- (The app named in the statement on a distributed runtime, where Citus then reads its
    -- shards only.)
    RETURN QUERY EXECUTE
        'SELECT h.id, h.record_id, h.app, h.form, h.action, h.revision, h.actor, h.at, h.from_state, h.to_state,
                CASE WHEN pg_catalog.cardinality($2) > 0 AND pg_catalog.jsonb_typeof(h.before) = ''object''
                     THEN h.before OPERATOR(pg_catalog.-) $2 ELSE h.before END,
                CASE WHEN pg_catalog.cardinality($2) > 0 AND pg_catalog.jsonb_typeof(h.after) = ''object''
                     THEN h.after OPERATOR(pg_catalog.-) $2 ELSE h.after END,
                h.detail
           FROM lowcode.history h WHERE h.record_id OPERATOR(pg_catalog.=) $1'
        || CASE WHEN on_app IS NULL THEN '' ELSE ' AND h.app OPERATOR(pg_catalog.=) $3' END
        || ' ORDER BY h.id'
        USING record, hide, on_app;
END $$;
COMMENT ON FUNCTION lowcode.record_history(bigint) IS 'A record''s history, oldest first, for those who may read the record (without the fields hidden from them); a deleted record''s history for those who read all of its app.';
-- Outbox epochs: a consumer reads an app's events node by node across shard moves (sql/outbox.sql).
-- On a distributed runtime an app's events may be written on several nodes over time (its
-- shards moved by citus_move_shard_placement or the rebalancer), each with transaction ids of
-- its own, which say nothing about another node's. An epoch is a stretch of an app's events
-- written on one node: that node's group (origin; the ids it draws are origin << 48 on), and
-- the first id of the stretch. Epochs follow one another in commit order (a shard move lets
-- the old node's writes end before the new node's begin), and within one the events are in
-- that node's commit batches, as on one node: a consumer reads epoch by epoch. The first event
-- of a stretch writes its epoch (lowcode.outbox_epoch_mark, a trigger lowcode.distribute()
-- puts on lowcode.events). Empty on one node, where every event is of epoch 0.
CREATE TABLE lowcode.outbox_epochs (
    app         text NOT NULL,
    epoch       int NOT NULL CHECK (epoch > 0),
    origin      int NOT NULL,
    first_id    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, epoch)
);
COMMENT ON TABLE lowcode.outbox_epochs IS 'Epochs of an app''s outbox events on a distributed runtime: each a stretch of its events written on one node (origin: its group; first_id: the first event''s id), in commit order; consumers read them one after the other. Empty on one node (every event is of epoch 0).';
ALTER TABLE lowcode.consumers ADD COLUMN epoch int NOT NULL DEFAULT 0;
CREATE OR REPLACE FUNCTION lowcode.events_restored() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'events' THEN
        NEW.txid := pg_current_xact_id();
    ELSE
        NEW.cursor_xid := '0';
        NEW.batch_from := '1:1:';
        NEW.batch_to := '1:1:';
        NEW.pos_txid := '0';
        NEW.pos_id := 0;
        NEW.epoch := 0;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.events_restored() IS 'Trigger, only while lowcode.replaying(): re-bases restored events and consumer cursors on this cluster''s transaction ids.';
CREATE FUNCTION lowcode.outbox_epoch(app text, epoch int,
    OUT origin int, OUT first_id bigint, OUT until_id bigint, OUT next_epoch int, OUT live boolean, OUT seal pg_snapshot)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    here int;
    top  xid8;
BEGIN
    IF app IS NULL OR epoch IS NULL THEN
        RETURN;
    END IF;
    IF epoch = 0 THEN
        origin := 0;
        first_id := 0;
    ELSE
        SELECT x.origin, x.first_id INTO origin, first_id FROM lowcode.outbox_epochs x WHERE x.app = app AND x.epoch = epoch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'lowcode: app "%" has no outbox epoch %', app, epoch USING ERRCODE = 'internal_error';
        END IF;
    END IF;
    SELECT x.epoch INTO next_epoch FROM lowcode.outbox_epochs x WHERE x.app = app AND x.epoch > epoch ORDER BY x.epoch LIMIT 1;
    SELECT x.first_id INTO until_id FROM lowcode.outbox_epochs x
     WHERE x.app = app AND x.epoch > epoch AND x.origin = origin ORDER BY x.epoch LIMIT 1;
    -- (This node's group: Citus's catalog, read only on a distributed runtime.)
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO here;
    live := next_epoch IS NULL AND origin = here;
    IF NOT live THEN
        SELECT e.txid INTO top FROM lowcode.events e
         WHERE e.app = app AND e.id >= first_id AND (until_id IS NULL OR e.id < until_id) AND (e.id >> 48) = origin
         ORDER BY e.txid DESC LIMIT 1;
        seal := CASE WHEN top IS NULL THEN '1:1:'
                     ELSE ((top::text::numeric + 1)::text || ':' || (top::text::numeric + 1)::text || ':') END::pg_snapshot;
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.outbox_epoch(text, int) IS 'Internal (the outbox of a distributed runtime): an epoch of an app''s events: its node, its ids, the next epoch, whether it is live (the last, written on this node), and for one that is not, a snapshot that sees all of it.';
CREATE FUNCTION lowcode.outbox_epoch_mark() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'outbox_epoch_mark_wrapper';
COMMENT ON FUNCTION lowcode.outbox_epoch_mark() IS 'Trigger on lowcode.events of a distributed runtime (lowcode.distribute), for an event written on its app''s node: draws its id from the node''s sequence and, after a shard move, begins the app''s next outbox epoch (lowcode.outbox_epochs) with it.';
CREATE OR REPLACE FUNCTION lowcode.create_consumer(name text, options jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    app      text := options ->> 'app';
    topics   text[];
    backoff  interval[] := '{}';
    attempts int := coalesce((options ->> 'max_attempts')::int, 5);
    start    pg_snapshot;
    routed   jsonb;
    epoch    int := 0;
    span     record;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'lowcode: create_consumer: name must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    PERFORM lowcode.check_options('create_consumer', options, ARRAY['app', 'topics', 'max_attempts', 'backoff', 'from']);
    IF app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('create consumer %s of every app', name));
    ELSE
        IF NOT EXISTS (SELECT FROM lowcode.apps a WHERE a.name = app) THEN
            RAISE EXCEPTION 'lowcode: unknown app "%"', app USING ERRCODE = 'undefined_object';
        END IF;
        PERFORM lowcode.authorize(app, 'admin', format('create consumer %s', name));
    END IF;
    -- On a distributed runtime, made on the node of its app (its snapshots are that node's);
    -- authorized first, here (which consumers exist is for those who may make them).
    routed := lowcode.outbox_at('create_consumer', name, app, jsonb_build_object('options', options));
    IF routed ? 'r' THEN
        RETURN;
    END IF;
    IF options ? 'topics' THEN
        IF jsonb_typeof(options -> 'topics') <> 'array'
           OR EXISTS (SELECT FROM jsonb_array_elements(options -> 'topics') t WHERE jsonb_typeof(t) <> 'string' OR t #>> '{}' = '') THEN
            RAISE EXCEPTION 'lowcode: consumer "%": topics must be an array of topic names or prefixes like ''order.*''', name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        topics := ARRAY(SELECT jsonb_array_elements_text(options -> 'topics'));
    END IF;
    IF attempts < 1 THEN
        RAISE EXCEPTION 'lowcode: consumer "%": max_attempts must be at least 1', name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'backoff' THEN
        BEGIN
            backoff := ARRAY(SELECT b::interval FROM jsonb_array_elements_text(options -> 'backoff') b);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'lowcode: consumer "%": backoff must be an array of intervals, e.g. ["10 seconds", "1 minute"]', name
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    -- 'now' (default): the events committed from now on; 'beginning': every event still kept.
    start := CASE coalesce(options ->> 'from', 'now')
                 WHEN 'now' THEN lowcode.batch_snapshot()
                 WHEN 'beginning' THEN '1:1:'::pg_snapshot END;
    IF start IS NULL THEN
        RAISE EXCEPTION 'lowcode: consumer "%": from must be ''now'' or ''beginning'', not %', name, options -> 'from'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- On a distributed runtime, 'now' is in the app's last epoch (lowcode.outbox_epochs): if it
    -- was written on another node (its shards moved here since), all of it is passed.
    IF routed ->> 'app' IS NOT NULL AND options ->> 'from' IS DISTINCT FROM 'beginning' THEN
        epoch := coalesce((SELECT x.epoch FROM lowcode.outbox_epochs x WHERE x.app = app ORDER BY x.epoch DESC LIMIT 1), 0);
        span := lowcode.outbox_epoch(app, epoch);
        IF NOT span.live THEN
            start := span.seal;
        END IF;
    END IF;
    INSERT INTO lowcode.consumers (name, app, topics, max_attempts, backoff, batch_from, batch_to, pos_txid, cursor_xid, epoch)
    VALUES (name, app, topics, attempts, backoff, start, start, pg_snapshot_xmax(start), pg_snapshot_xmin(start), epoch);
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'lowcode: consumer "%" already exists', name
        USING ERRCODE = 'duplicate_object', HINT = 'drop it first with lowcode.drop_consumer';
END $$;
COMMENT ON FUNCTION lowcode.create_consumer(text, jsonb) IS 'Create an outbox consumer. options: app (whose events it reads; NULL: every app, administrators only), topics (names or prefixes ''order.*''), max_attempts (5), backoff (intervals before each retry; default 1 s doubling to 1 h), from (''now'' or ''beginning''). An app''s admin creates its consumers; roles granted consume in the app poll them.';
CREATE OR REPLACE FUNCTION lowcode.drop_consumer(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    routed jsonb := lowcode.outbox_at('drop_consumer', name, NULL, '{}');
    on_app text := routed ->> 'app';
BEGIN
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::boolean;
    END IF;
    IF on_app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
    ELSE
        -- (The app as a value: Citus runs the statement on the app's shard here.)
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = on_app AND x.name = name FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('drop consumer %s', name));
    ELSE
        PERFORM lowcode.authorize(c.app, 'admin', format('drop consumer %s', name));
    END IF;
    DELETE FROM lowcode.consumers x WHERE x.name = name AND (c.app IS NULL OR x.app = c.app);
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_consumer(text) IS 'Drop an outbox consumer with its retries, dead letters and events in flight; true if there was one. Events it alone held back can then be purged.';
CREATE FUNCTION lowcode.consumer_for(name text, doing text, app text) RETURNS lowcode.consumers
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c lowcode.consumers;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'lowcode: %: consumer must not be empty', doing USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- (On a distributed runtime the app's node, which lowcode.outbox_at found, holds it.)
    IF app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
    ELSE
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = app AND x.name = name FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown consumer "%"', name
            USING ERRCODE = 'undefined_object',
                  HINT = format('create it with lowcode.create_consumer(%L, ''{"app": "<app>", "topics": ["<topic>"]}'')', name);
    END IF;
    IF c.app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('%s (consumer %s of every app)', doing, name));
    ELSE
        PERFORM lowcode.authorize(c.app, 'consume', format('%s (consumer %s)', doing, name));
    END IF;
    RETURN c;
END $$;
COMMENT ON FUNCTION lowcode.consumer_for(text, text, text) IS 'Internal: locks a consumer for poll, ack or nack (of app, when lowcode.outbox_at names it), after checking the invoker may consume its app''s events; 42704 for an unknown consumer.';
CREATE OR REPLACE FUNCTION lowcode.poll_events(consumer text, max int DEFAULT 100, visibility interval DEFAULT '30 seconds')
RETURNS TABLE (id bigint, topic text, payload jsonb, attempt int, created_at timestamptz, event_id bigint, record_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c         lowcode.consumers;
    lease     bigint;
    ids       bigint[] := '{}';
    tries     int[] := '{}';
    got       bigint[];
    advanced  boolean := false;
    last_txid xid8;
    last_id   bigint;
    routed    jsonb;
    capp      text;
    -- The consumer's epoch, on a distributed runtime whose app's events are of several.
    epoched   boolean := false;
    span      record;
BEGIN
    IF max IS NULL OR max < 1 OR max > 65535 THEN
        RAISE EXCEPTION 'lowcode: poll_events: max must be between 1 and 65535, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF visibility IS NULL OR visibility < interval '0' THEN
        RAISE EXCEPTION 'lowcode: poll_events: visibility must be an interval of 0 or more, not %', coalesce(visibility::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- On a distributed runtime, on the node of the consumer's app (lowcode.outbox_at).
    routed := lowcode.outbox_at('poll_events', consumer, NULL, jsonb_build_object('max', max, 'visibility', visibility));
    IF routed ? 'r' THEN
        RETURN QUERY SELECT * FROM jsonb_to_recordset(routed -> 'r')
            AS r(id bigint, topic text, payload jsonb, attempt int, created_at timestamptz, event_id bigint, record_id bigint);
        RETURN;
    END IF;
    -- One poll of a consumer at a time: its cursor is one row.
    c := lowcode.consumer_for(consumer, 'poll events', routed ->> 'app');
    -- (Every statement names the app: on a distributed runtime each is then one shard's.)
    capp := coalesce(c.app, '');
    -- Leases whose visibility timeout ended: their first deliveries get rows of their own (the
    -- retried ones have theirs) and come back now.
    INSERT INTO lowcode.deliveries (app, consumer, event_id, attempt, visible_at, last_error)
    SELECT capp, c.name, u.e, u.a, now(), 'not acknowledged within its visibility timeout'
      FROM lowcode.leases l, unnest(l.events, l.attempts) AS u(e, a)
     WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now() AND u.e IS NOT NULL AND u.a = 1
    ON CONFLICT DO NOTHING;
    UPDATE lowcode.deliveries d SET lease_id = NULL,
           last_error = coalesce(d.last_error, 'not acknowledged within its visibility timeout')
      FROM lowcode.leases l
     WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now()
       AND d.app = capp AND d.consumer = c.name AND d.lease_id = l.id;
    DELETE FROM lowcode.leases l WHERE l.app = capp AND l.consumer = c.name AND l.expires_at <= now();
    -- Deliveries that used their last attempt and were not acknowledged in time die.
    UPDATE lowcode.deliveries d SET status = 'dead', lease_id = NULL
     WHERE d.app = capp AND d.consumer = c.name AND d.status = 'pending' AND d.attempt >= c.max_attempts AND d.visible_at <= now();
    lease := nextval('lowcode.leases_id_seq');
    -- Retries first, in the order they became due.
    WITH due AS (
        SELECT d.event_id FROM lowcode.deliveries d
         WHERE d.app = capp AND d.consumer = c.name AND d.status = 'pending' AND d.visible_at <= now()
         ORDER BY d.visible_at, d.event_id
         LIMIT max
    ), taken AS (
        UPDATE lowcode.deliveries d SET attempt = d.attempt + 1, visible_at = now() + visibility, lease_id = lease
          FROM due WHERE d.app = capp AND d.consumer = c.name AND d.event_id = due.event_id
        RETURNING d.event_id, d.attempt
    )
    SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}'), coalesce(array_agg(t.attempt ORDER BY t.event_id), '{}')
      INTO ids, tries FROM taken t;
    -- On a distributed runtime, the batches are of the consumer's epoch (lowcode.outbox_epochs):
    -- the events its app wrote on one node, in that node's transaction ids.
    epoched := routed ->> 'app' IS NOT NULL;
    span := lowcode.outbox_epoch(CASE WHEN epoched THEN c.app END, c.epoch);
    -- Then the batch, from where the last poll left it; when it is done, the next batch: the
    -- events committed between its snapshot and a new one.
    WHILE cardinality(ids) < max LOOP
        SELECT array_agg(b.id ORDER BY b.txid, b.id), (array_agg(b.txid ORDER BY b.txid DESC, b.id DESC))[1],
               (array_agg(b.id ORDER BY b.txid DESC, b.id DESC))[1]
          INTO got, last_txid, last_id
          FROM (SELECT e.id, e.txid FROM lowcode.events e
                 WHERE (e.txid, e.id) > (c.pos_txid, c.pos_id)
                   AND (NOT epoched OR (e.id >= span.first_id AND (span.until_id IS NULL OR e.id < span.until_id)
                                         AND (e.id >> 48) = span.origin))
                   AND e.txid < pg_snapshot_xmax(c.batch_to)
                   AND pg_visible_in_snapshot(e.txid, c.batch_to)
                   AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
                   AND (c.app IS NULL OR e.app = c.app)
                   AND (c.topics IS NULL OR lowcode.topic_matches(e.topic, c.topics))
                   -- (a consumer re-reading a restored outbox has rows for its dead letters)
                   AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.app = capp AND d.consumer = c.name AND d.event_id = e.id)
                 ORDER BY e.txid, e.id
                 LIMIT max - cardinality(ids)) b;
        IF got IS NOT NULL THEN
            ids := ids || got;
            tries := tries || array_fill(1, ARRAY[cardinality(got)]);
            c.pos_txid := last_txid;
            c.pos_id := last_id;
        END IF;
        EXIT WHEN cardinality(ids) >= max OR advanced;
        -- An epoch that is not live, read up to its seal: done; the next one (when its first
        -- event is written) is read from its start.
        IF epoched AND NOT span.live AND c.batch_to::text = span.seal::text THEN
            EXIT WHEN span.next_epoch IS NULL;
            c.epoch := span.next_epoch;
            span := lowcode.outbox_epoch(c.app, c.epoch);
            c.batch_from := '1:1:';
            c.batch_to := CASE WHEN span.live THEN lowcode.batch_snapshot() ELSE span.seal END;
            c.pos_txid := '0';
            c.pos_id := 0;
            CONTINUE;
        END IF;
        -- This batch is done: the next one starts where it ended. Its first events are those of
        -- transactions that were still running at the old snapshot and have committed since
        -- (of an epoch that is not live: all of its events are committed).
        advanced := true;
        c.batch_from := c.batch_to;
        c.batch_to := CASE WHEN NOT epoched OR span.live THEN lowcode.batch_snapshot() ELSE span.seal END;
        -- (ORDER BY … LIMIT 1, not min(): PostgreSQL 14 has no min(xid8).)
        c.pos_txid := coalesce((SELECT x FROM pg_snapshot_xip(c.batch_from) x
                                 WHERE pg_visible_in_snapshot(x, c.batch_to) ORDER BY x LIMIT 1),
                               pg_snapshot_xmax(c.batch_from));
        c.pos_id := 0;
    END LOOP;
    -- Every event of the batch is handed out: the consumer has passed them (those in flight are
    -- kept by their lease until acknowledged), and its next poll starts the next batch.
    IF cardinality(ids) < max THEN
        c.batch_from := c.batch_to;
    END IF;
    UPDATE lowcode.consumers x
       SET batch_from = c.batch_from, batch_to = c.batch_to, pos_txid = c.pos_txid, pos_id = c.pos_id,
           cursor_xid = pg_snapshot_xmin(c.batch_from), epoch = c.epoch
     WHERE x.name = c.name AND (c.app IS NULL OR x.app = c.app);
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO lowcode.leases (id, app, consumer, events, attempts, open, expires_at)
    VALUES (lease, capp, c.name, ids, tries, cardinality(ids), now() + visibility);
    RETURN QUERY
    SELECT lease * 65536 + u.i, e.topic, e.payload, u.a, e.created_at, e.id, e.record_id
      FROM unnest(ids, tries) WITH ORDINALITY AS u(e_id, a, i)
      JOIN lowcode.events e ON e.id = u.e_id AND (c.app IS NULL OR e.app = c.app)
     ORDER BY u.i;
END $$;
COMMENT ON FUNCTION lowcode.poll_events(text, int, interval) IS 'Take up to max events for a consumer: retries that are due first, then the next events of its batch (events committed since its last snapshot, in commit batches). Each is in flight for visibility; unacknowledged, it comes back (at least once). id is the delivery id to ack or nack; event_id stays the same across retries. An unknown consumer is an error (42704).';
CREATE OR REPLACE FUNCTION lowcode.ack_events(consumer text, ids bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    routed jsonb := lowcode.outbox_at('ack_events', consumer, NULL, jsonb_build_object('ids', ids));
    c      lowcode.consumers;
    capp   text;
    l      lowcode.leases;
    pos    int[];
    acked  int := 0;
BEGIN
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::int;
    END IF;
    c := lowcode.consumer_for(consumer, 'acknowledge events', routed ->> 'app');
    capp := coalesce(c.app, '');
    -- A delivery id names its lease and position: a late ack from a poll whose lease already
    -- ended finds no lease and acknowledges nothing (the redelivery has another id).
    FOR l IN
        SELECT x.* FROM lowcode.leases x
         WHERE x.app = capp AND x.id = ANY (ARRAY(SELECT DISTINCT i / 65536 FROM unnest(ids) i WHERE i > 0))
           AND x.consumer = c.name
         ORDER BY x.id
           FOR UPDATE
    LOOP
        pos := ARRAY(SELECT DISTINCT (i % 65536)::int FROM unnest(ids) i
                      WHERE i / 65536 = l.id AND l.events[(i % 65536)::int] IS NOT NULL);
        CONTINUE WHEN cardinality(pos) = 0;
        DELETE FROM lowcode.deliveries d
         WHERE d.app = capp AND d.consumer = c.name AND d.lease_id = l.id
           AND d.event_id = ANY (ARRAY(SELECT l.events[p] FROM unnest(pos) p));
        IF l.open = cardinality(pos) THEN
            DELETE FROM lowcode.leases x WHERE x.app = capp AND x.id = l.id;
        ELSE
            UPDATE lowcode.leases x
               SET events = ARRAY(SELECT CASE WHEN i = ANY (pos) THEN NULL ELSE l.events[i] END
                                    FROM generate_subscripts(l.events, 1) i ORDER BY i),
                   open = l.open - cardinality(pos)
             WHERE x.app = capp AND x.id = l.id;
        END IF;
        acked := acked + cardinality(pos);
    END LOOP;
    RETURN acked;
END $$;
COMMENT ON FUNCTION lowcode.ack_events(text, bigint[]) IS 'Acknowledge deliveries (the ids poll_events returned) a consumer has processed; returns how many were in flight. Acking twice, or a delivery whose lease ended, counts 0.';
CREATE OR REPLACE FUNCTION lowcode.replay_dead_letters(topic text, consumer text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    replayed int;
    routed   jsonb;
    c        lowcode.consumers;
BEGIN
    IF consumer IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'replay dead letters of every consumer');
        PERFORM lowcode.outbox_at('replay_dead_letters', NULL, NULL, '{}');
    ELSE
        routed := lowcode.outbox_at('replay_dead_letters', consumer, NULL, jsonb_build_object('topic', topic));
        IF routed ? 'r' THEN
            RETURN (routed ->> 'r')::int;
        END IF;
        c := lowcode.consumer_for(consumer, 'replay dead letters', routed ->> 'app');
    END IF;
    UPDATE lowcode.deliveries d SET status = 'pending', attempt = 0, visible_at = now(), lease_id = NULL
      FROM lowcode.events e
     WHERE e.id = d.event_id AND d.status = 'dead' AND e.topic = topic
       AND (consumer IS NULL OR (d.consumer = consumer AND d.app = coalesce(c.app, '')
                                 AND (c.app IS NULL OR e.app = c.app)));
    GET DIAGNOSTICS replayed = ROW_COUNT;
    RETURN replayed;
END $$;
COMMENT ON FUNCTION lowcode.replay_dead_letters(text, text) IS 'Put a topic''s dead letters (of one consumer, or of all: administrators) back in the queue with fresh attempts; returns how many.';
CREATE OR REPLACE FUNCTION lowcode.consumer_lag(consumer text)
RETURNS TABLE (name text, app text, topics text[], lag_events bigint, lag_seconds double precision,
               in_flight bigint, retrying bigint, dead bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers;
    routed jsonb := lowcode.outbox_at('consumer_lag', consumer, NULL, '{}');
    on_app text := routed ->> 'app';
BEGIN
    IF routed ? 'r' THEN
        RETURN QUERY SELECT * FROM jsonb_to_recordset(routed -> 'r')
            AS r(name text, app text, topics text[], lag_events bigint, lag_seconds double precision,
                 in_flight bigint, retrying bigint, dead bigint);
        RETURN;
    END IF;
    IF on_app IS NULL THEN
        SELECT * INTO c FROM lowcode.consumers x WHERE x.name = consumer;
    ELSE
        SELECT * INTO c FROM lowcode.consumers x WHERE x.app = on_app AND x.name = consumer;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown consumer "%"', consumer USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT (lowcode.is_admin() OR (c.app IS NOT NULL AND lowcode.may(c.app, 'consume'))) THEN
        PERFORM lowcode.refuse(c.app, 'consume', format('see the lag of consumer %s', consumer));
    END IF;
    RETURN QUERY
    SELECT c.name, c.app, c.topics, count(*), extract(epoch FROM clock_timestamp() - min(e.created_at))::double precision,
           (SELECT coalesce(sum(l.open), 0)::bigint FROM lowcode.leases l WHERE l.app = coalesce(c.app, '') AND l.consumer = c.name),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.app = coalesce(c.app, '') AND d.consumer = c.name AND d.status = 'pending'),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.app = coalesce(c.app, '') AND d.consumer = c.name AND d.status = 'dead')
      FROM lowcode.events e
      -- (On a distributed runtime: the epoch of each event, lowcode.outbox_epochs; the events
      -- of epochs after the consumer's are all ahead of it.)
      LEFT JOIN LATERAL (SELECT x.epoch FROM lowcode.outbox_epochs x
                          WHERE on_app IS NOT NULL AND x.app = on_app AND x.origin = (e.id >> 48) AND x.first_id <= e.id
                          ORDER BY x.epoch DESC LIMIT 1) k ON true
     WHERE (on_app IS NOT NULL AND coalesce(k.epoch, 0) > c.epoch
            OR (on_app IS NULL OR coalesce(k.epoch, 0) = c.epoch)
               AND e.txid >= pg_snapshot_xmin(c.batch_from)
               AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
               AND NOT (pg_visible_in_snapshot(e.txid, c.batch_to) AND (e.txid, e.id) <= (c.pos_txid, c.pos_id)))
       AND (c.app IS NULL OR e.app = c.app)
       AND (c.topics IS NULL OR lowcode.topic_matches(e.topic, c.topics));
END $$;
COMMENT ON FUNCTION lowcode.consumer_lag(text) IS 'How far a consumer is behind: committed events it has not been handed yet (lag_events, and the age of the oldest in seconds), deliveries in flight, retries waiting, dead letters.';
CREATE OR REPLACE FUNCTION lowcode.purge_events(older_than interval) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    passed  xid8;
    leased  bigint;
    gone    int;
    routed  jsonb;
    on_app  text;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'purge events');
    -- On a distributed runtime, app by app on the app's node (lowcode.outbox_at): each node's
    -- transaction ids are its own, and an app's consumers read its events epoch by epoch.
    routed := lowcode.outbox_at('purge_events', NULL, NULL, jsonb_build_object('older_than', older_than));
    IF routed ? 'r' THEN
        RETURN (routed ->> 'r')::int;
    END IF;
    on_app := routed ->> 'app';
    IF on_app IS NOT NULL THEN
        -- An event of the app that every consumer of the app has passed: of an epoch before
        -- the consumer's, or of its epoch and a transaction older than its cursor_xid.
        DELETE FROM lowcode.events e
         WHERE e.app = on_app
           AND e.created_at < now() - older_than
           AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.app = on_app AND d.event_id = e.id)
           AND NOT EXISTS (SELECT FROM lowcode.leases l WHERE l.app = on_app AND e.id = ANY (l.events))
           AND NOT EXISTS (
                 SELECT FROM lowcode.consumers c
                  CROSS JOIN LATERAL (SELECT coalesce((SELECT x.epoch FROM lowcode.outbox_epochs x
                                                        WHERE x.app = on_app AND x.origin = (e.id >> 48) AND x.first_id <= e.id
                                                        ORDER BY x.epoch DESC LIMIT 1), 0) AS epoch) k
                  WHERE c.app = on_app
                    AND NOT (k.epoch < c.epoch OR (k.epoch = c.epoch AND e.txid < c.cursor_xid)));
        GET DIAGNOSTICS gone = ROW_COUNT;
        RETURN gone;
    END IF;
    -- Every consumer has passed the events of transactions older than its cursor_xid; events
    -- in flight or with retries or dead letters stay.
    SELECT c.cursor_xid INTO passed FROM lowcode.consumers c ORDER BY c.cursor_xid LIMIT 1;
    SELECT min(e) INTO leased FROM lowcode.leases l, unnest(l.events) e;
    DELETE FROM lowcode.events e
     WHERE e.txid < coalesce(passed, pg_snapshot_xmin(pg_current_snapshot()))
       AND e.created_at < now() - older_than
       AND e.id < coalesce(leased, 9223372036854775807)
       AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id);
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;
COMMENT ON FUNCTION lowcode.purge_events(interval) IS 'Delete events older than older_than that every consumer has passed; events in flight, retried or dead stay. Returns how many. On a distributed runtime, app by app on the app''s node.';
CREATE OR REPLACE FUNCTION lowcode.drop_webhook(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'drop webhooks');
    -- (Its attempts: by their key on one node; on a distributed runtime, where the attempts are
    -- on the app's node and the webhooks on every node, without one.)
    DELETE FROM lowcode.webhook_attempts a WHERE a.webhook = name;
    DELETE FROM lowcode.webhooks w WHERE w.name = name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM lowcode.webhook_consumer(name, NULL, NULL, NULL, false);
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_webhook(text) IS 'Drop a webhook, its consumer and its attempts (lowcode administrators); false if there was none.';
-- A webhook made, changed or dropped: this node's worker reads the webhooks again. (On a
-- distributed runtime lowcode.webhooks is a reference table: the trigger fires on every node's
-- copy, so every node's worker hears of it.)
CREATE FUNCTION lowcode.webhooks_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lowcode.worker_note_changed();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION lowcode.webhooks_written() IS 'Trigger: lowcode.webhooks changed; the worker of this node reads them again (lowcode.worker_note_changed).';
CREATE TRIGGER webhooks_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lowcode.webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.webhooks_written();

-- ---------------------------------------------------------------- hardening (sql/hardening.sql, all of it, in its order)
-- Search paths, SECURITY DEFINER, owners and privileges of every function (new and replaced
-- ones included), then both guards written again with the privileges and indexes above
-- (guard_drop also refuses dropping the triggers and policies of lowcode's tables where
-- pg_event_trigger_dropped_objects() gives them no schema: PolarDB 15.8).
-- Every lowcode function written in SQL or PL/pgSQL runs with a fixed search_path, so a
-- function or operator that looks like a built-in (say evil.jsonb_build_object, or an
-- evil.|| for jsonb) in a schema ahead on the caller's search_path is never called by lowcode.
-- lowcode's own objects are always schema-qualified in its code. (Workflow `call` actions and
-- migration transforms are the user's own SQL: name functions there with their schema.)
-- Left out, on purpose:
--   - the privilege predicates that views and policies inline, and the outbox's topic filter
--     that polls inline (a function with a SET clause is never inlined); their bodies qualify
--     every function and operator (sql/privileges.sql, sql/outbox.sql);
--   - plan_migration, apply_migration and transform_expression, which run the DBA's transform
--     with the caller's search_path (they are for lowcode administrators only);
--   - C functions (the Rust code): their queries qualify every name.
DO $pin$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_proc'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'lowcode')
           AND d.deptype = 'e'
           AND p.prolang IN (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
           AND p.proconfig IS NULL
           AND p.oid NOT IN (
                 'lowcode.invoker_name()'::regprocedure, 'lowcode.may_read(text, text)'::regprocedure,
                 'lowcode.may_update(text, text)'::regprocedure,
                 'lowcode.actor(text)'::regprocedure, 'lowcode.actor()'::regprocedure,
                 'lowcode.plan_migration(text, text, jsonb, text)'::regprocedure,
                 'lowcode.apply_migration(text, text, jsonb, text, jsonb)'::regprocedure,
                 'lowcode.transform_expression(text)'::regprocedure)
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', fn);
    END LOOP;
END
$pin$;

-- App privileges (sql/privileges.sql). The functions app roles, schedulers and consumers call
-- run as the extension's owner, so that a role needs no privilege on lowcode's tables: each of
-- them checks the invoker's app privileges itself (lowcode.authorize, may_read, may_update)
-- before it reads or writes, and the engine they drive (triggers, rules, tasks, history,
-- events) writes as the owner. A superuser who calls one of them runs it with the owner's
-- rights, not its own. Workflow `call` actions run as the role that published the workflow
-- (lowcode.call_as). Functions not listed run as the caller: validation only reads what
-- everyone may read, and migrations run the DBA's own transform (lowcode administrators only).
ALTER FUNCTION lowcode.create_app(text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.define_form(text, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.define_form(text, text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.set_form_ui(text, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.register_schema(text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.submit(text, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.update_record(bigint, jsonb, int) SECURITY DEFINER;
ALTER FUNCTION lowcode.delete_record(bigint) SECURITY DEFINER;
ALTER FUNCTION lowcode.record_history(bigint) SECURITY DEFINER;
ALTER FUNCTION lowcode.get_record(bigint) SECURITY DEFINER;
ALTER FUNCTION lowcode.read_records(text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.add_unique(text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.drop_unique(text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.publish(text) SECURITY DEFINER;
ALTER FUNCTION lowcode.view_write() SECURITY DEFINER;
ALTER FUNCTION lowcode.define_workflow(text, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.transition(bigint, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.claim_task(text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.claim_task(bigint, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.claimable_tasks(text) SECURITY DEFINER;
ALTER FUNCTION lowcode.my_tasks() SECURITY DEFINER;
ALTER FUNCTION lowcode.complete_task(bigint, text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.release_task(bigint) SECURITY DEFINER;
ALTER FUNCTION lowcode.reassign_task(bigint, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.decide(bigint, text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.withdraw(bigint) SECURITY DEFINER;
ALTER FUNCTION lowcode.grant(text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.revoke(text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.hide_fields(text, text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.show_fields(text, text, text, text[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.run_due_timers(int) SECURITY DEFINER;
ALTER FUNCTION lowcode.poll_events(text, int, interval) SECURITY DEFINER;
ALTER FUNCTION lowcode.ack_events(text, bigint[]) SECURITY DEFINER;
ALTER FUNCTION lowcode.nack_event(text, bigint, text, interval) SECURITY DEFINER;
ALTER FUNCTION lowcode.replay_dead_letters(text, text) SECURITY DEFINER;
ALTER FUNCTION lowcode.purge_events(interval) SECURITY DEFINER;
ALTER FUNCTION lowcode.create_consumer(text, jsonb) SECURITY DEFINER;
ALTER FUNCTION lowcode.drop_consumer(text) SECURITY DEFINER;
ALTER FUNCTION lowcode.consumer_lag(text) SECURITY DEFINER;
ALTER FUNCTION lowcode.signal_events() SECURITY DEFINER;
ALTER FUNCTION lowcode.call_at(text, text, jsonb) SECURITY DEFINER;
-- The SECURITY DEFINER entry points written in Rust pin their search_path too (the loop above
-- pins the SQL and PL/pgSQL ones).
ALTER FUNCTION lowcode.submit(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.submit(text, text, jsonb, int) SECURITY DEFINER;
ALTER FUNCTION lowcode.submit(text, text, jsonb, int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.view_write() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claim_task(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claim_task(bigint, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claimable_tasks(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.my_tasks() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.complete_task(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.release_task(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.reassign_task(bigint, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.update_record(bigint, jsonb, int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.transition(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.decide(bigint, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.withdraw(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.run_due_timers(int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.call_at(text, text, jsonb) SET search_path = pg_catalog, pg_temp;

-- Installable by a database owner who is not a superuser (trusted = true in lowcode.control):
-- PostgreSQL then runs this script as the bootstrap superuser, and every object it creates
-- belongs to that superuser, so the SECURITY DEFINER functions above would run with superuser
-- rights. Instead the schema, the tables (with their sequences) and views, and the SECURITY
-- DEFINER functions are handed to the role that runs CREATE EXTENSION (@extowner@): lowcode's
-- engine then has exactly that role's rights, and that role can pg_dump and pg_restore its
-- tables. Every other function stays with the superuser that ran this script: the installing
-- role cannot replace what runs as its caller (a superuser's call of a SECURITY INVOKER
-- function, a trigger fired by a superuser's write), and the owner of a C function could
-- change how it is called (STRICT, argument handling) and crash the server. When a superuser
-- installs lowcode, @extowner@ is that superuser and nothing changes. (An upgrade script that
-- adds objects must end with this and the grants below too, in this order, so that owners and
-- privileges come out exactly as in a fresh install.)
DO $reassign$
DECLARE
    owner  text := $o$@extowner@$o$;
    o      record;
BEGIN
    EXECUTE format('ALTER SCHEMA lowcode OWNER TO %s', owner);
    FOR o IN
        SELECT c.oid::regclass AS rel, c.relkind
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'lowcode')
           AND d.deptype = 'e'
           AND c.relkind IN ('r', 'p', 'v', 'm')   -- a serial column's sequence follows its table
           AND c.oid OPERATOR(pg_catalog.<>) 'lowcode.call_grants'::pg_catalog.regclass   -- the publishers' grants stay out of its reach
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %s', o.rel, owner);
    END LOOP;
    FOR o IN
        SELECT p.oid::regprocedure AS fn
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_proc'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'lowcode')
           AND d.deptype = 'e'
           AND p.prosecdef
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %s', o.fn, owner);
    END LOOP;
END
$reassign$;

-- Only the documented API (README, "The SQL API") is executable by PUBLIC; everything else is
-- lowcode's engine, for the extension's owner (and so for lowcode administrators, its members).
-- tests/pg_regress/sql/api_surface.sql lists what a fresh role may execute, and
-- tests/system/api_surface.sh checks that list against the README, so a new helper cannot
-- leak by default.
-- lowcode.call_grants stays the superuser's: its owner may read it and restore what the
-- policy on it lets it (sql/workflow.sql).
GRANT SELECT, INSERT ON lowcode.call_grants TO @extowner@;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA lowcode FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lowcode TO @extowner@;
GRANT EXECUTE ON FUNCTION
    -- definitions and records
    lowcode.create_app(text, text), lowcode.define_form(text, text, jsonb), lowcode.register_schema(text, jsonb),
    lowcode.define_form(text, text, text), lowcode.set_form_ui(text, text, jsonb), lowcode.form_schema(text, text, int),
    lowcode.submit(text, text, jsonb), lowcode.submit(text, text, jsonb, int), lowcode.update_record(bigint, jsonb, int), lowcode.delete_record(bigint),
    lowcode.validate(text, text, jsonb), lowcode.is_valid(text, text, jsonb), lowcode.conforms(text, text, jsonb),
    lowcode.conforms_to_version(bigint, jsonb),
    lowcode.add_unique(text, text, text[]), lowcode.drop_unique(text, text, text[]), lowcode.publish(text),
    lowcode.record_history(bigint), lowcode.get_record(bigint), lowcode.read_records(text, text),
    lowcode.cache_stats(), lowcode.cache_clear(),
    -- privileges, and the predicates the typed views and row-level security policies call
    lowcode.grant(text, text, text[]), lowcode.revoke(text, text, text[]),
    lowcode.hide_fields(text, text, text, text[]), lowcode.show_fields(text, text, text, text[]),
    lowcode.invoker(), lowcode.invoker_name(), lowcode.actor(), lowcode.actor(text), lowcode.is_admin(),
    lowcode.may(text, text), lowcode.may_read(text, text), lowcode.may_update(text, text),
    lowcode.apps_where(text), lowcode.apps_granted(text), lowcode.hidden(text, text),
    -- workflows
    lowcode.define_workflow(text, text, jsonb), lowcode.workflow_diagram(text, text),
    lowcode.transition(bigint, text, jsonb), lowcode.claim_task(text, text),
    lowcode.claim_task(bigint, text), lowcode.claimable_tasks(text), lowcode.my_tasks(),
    lowcode.complete_task(bigint, text, jsonb), lowcode.release_task(bigint), lowcode.reassign_task(bigint, text),
    lowcode.decide(bigint, text, text), lowcode.withdraw(bigint), lowcode.run_due_timers(int),
    lowcode.call_at(text, text, jsonb),
    -- the outbox
    lowcode.create_consumer(text, jsonb), lowcode.drop_consumer(text), lowcode.consumer_lag(text),
    lowcode.poll_events(text, int, interval), lowcode.ack_events(text, bigint[]),
    lowcode.nack_event(text, bigint, text, interval), lowcode.replay_dead_letters(text, text),
    lowcode.purge_events(interval), lowcode.signal_events(),
    -- the background worker and webhooks (sql/worker.sql)
    lowcode.worker_status(), lowcode.create_webhook(text, text, text[], jsonb), lowcode.drop_webhook(text),
    lowcode.pause_webhook(text), lowcode.resume_webhook(text), lowcode.webhook_deliveries(text, int),
    -- apps as code and migrations
    lowcode.export_app(text, jsonb), lowcode.import_app(jsonb, jsonb), lowcode.diff_app(text, jsonb),
    lowcode.plan_migration(text, text, jsonb, text), lowcode.apply_migration(text, text, jsonb, text, jsonb)
TO PUBLIC;

-- lowcode changes only through its extension scripts (CREATE / ALTER EXTENSION). In a trusted
-- install the installing role owns the schema, the tables and the SECURITY DEFINER entry
-- points; without this guard it could replace an entry point's body or make it SECURITY
-- INVOKER (ALTER FUNCTION, ALTER ROUTINE, ALTER PROCEDURE, CREATE OR REPLACE), give it a
-- search_path of its own, move or rename it, take it out of the extension, add a trigger, rule,
-- policy, index or cast to a table, disable or drop one of lowcode's own, or grant the engine's
-- internals to others, and run code as whoever calls lowcode next — a superuser included.
--
-- The event triggers fire for every command tag PostgreSQL lets an event trigger see (no WHEN
-- TAG list to keep up to date by hand: tests/system/attacks.sh reads the tags from
-- PostgreSQL's cmdtaglist.h and tries each one); the functions decide by the object:
--   * anything in schema lowcode (functions, procedures, aggregates, tables, views,
--     sequences, types ...), the schema itself, the triggers, rules and policies on lowcode's
--     tables, casts from or to its types, and ALTER EXTENSION lowcode ADD / DROP: refused
--     outside an extension script; so is dropping any of them but with the extension;
--   * except the index of a lowcode.uniques row, which its trigger makes and drops
--     (add_unique, drop_unique, pg_restore);
--   * GRANT and REVOKE do not name their objects to an event trigger: after one, every
--     privilege on lowcode's functions, tables, sequences and schema must be one the extension
--     scripts gave; taking privileges away is the owner's business (pg_restore re-applies
--     privileges as REVOKE ALL, then GRANT).
-- They run as whoever runs the DDL, so they call no lowcode function and read lowcode's tables
-- only for DDL on lowcode's own objects (which only its owner can run): the privileges and the
-- index names the extension scripts left are written into their bodies, below, once every
-- privilege of this script is in place.
CREATE OR REPLACE FUNCTION lowcode.guard_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE OR REPLACE FUNCTION lowcode.guard_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
REVOKE EXECUTE ON FUNCTION lowcode.guard_ddl(), lowcode.guard_drop() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lowcode.guard_ddl(), lowcode.guard_drop() TO @extowner@;
DO $guard$
DECLARE
    -- Every privilege on lowcode's functions, tables, sequences and schema, as
    -- "kind object:grantee oid:privilege".
    entries   CONSTANT text := $q$
        SELECT lc_x.kind OPERATOR(pg_catalog.||) lc_x.object OPERATOR(pg_catalog.||) ':'
               OPERATOR(pg_catalog.||) lc_a.grantee::pg_catalog.text OPERATOR(pg_catalog.||) ':'
               OPERATOR(pg_catalog.||) lc_a.privilege_type
          FROM (SELECT 'f ' AS kind, lc_p.oid::pg_catalog.regprocedure::pg_catalog.text AS object,
                       coalesce(lc_p.proacl, pg_catalog.acldefault('f', lc_p.proowner)) AS acl
                  FROM pg_catalog.pg_proc lc_p
                 WHERE lc_p.pronamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                UNION ALL
                -- (A Citus shard, <table>_<shard id>, counts as its table: it has exactly its
                -- table's privileges, which Citus copies onto it.)
                SELECT 'r ', coalesce(lc_b.oid, lc_c.oid)::pg_catalog.regclass::pg_catalog.text,
                       coalesce(lc_c.relacl, pg_catalog.acldefault(CASE lc_c.relkind WHEN 'S' THEN 's' ELSE 'r' END::pg_catalog."char", lc_c.relowner))
                  FROM pg_catalog.pg_class lc_c
                  LEFT JOIN pg_catalog.pg_class lc_b
                    ON lc_c.relname OPERATOR(pg_catalog.~) '_[0-9]+$'
                   AND lc_b.relnamespace OPERATOR(pg_catalog.=) lc_c.relnamespace
                   AND lc_b.relname OPERATOR(pg_catalog.=) pg_catalog.regexp_replace(lc_c.relname, '_[0-9]+$', '')
                   AND lc_b.relkind OPERATOR(pg_catalog.<>) 'i'
                 WHERE lc_c.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                   AND lc_c.relkind OPERATOR(pg_catalog.<>) 'i'
                UNION ALL
                SELECT 'n ', lc_n.nspname::pg_catalog.text, coalesce(lc_n.nspacl, pg_catalog.acldefault('n', lc_n.nspowner))
                  FROM pg_catalog.pg_namespace lc_n
                 WHERE lc_n.oid OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace) lc_x,
               pg_catalog.aclexplode(lc_x.acl) lc_a
         ORDER BY 1 $q$;
    expected  text[];
    own       text[];
    path      text := pg_catalog.current_setting('search_path');
BEGIN
    -- (Names as the guard, whose search_path is pinned, will print them.)
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    EXECUTE 'SELECT ARRAY(' OPERATOR(pg_catalog.||) entries OPERATOR(pg_catalog.||) ')' INTO expected;
    own := ARRAY(SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class c
                  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                    AND c.relkind OPERATOR(pg_catalog.=) 'i'
                    AND c.relname OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT u.index_name FROM lowcode.uniques u))
                  ORDER BY 1);
    EXECUTE pg_catalog.format($def$
CREATE OR REPLACE FUNCTION lowcode.guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    c        record;
    ext      oid := (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode');
    ours     oid := (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode');
    in_ours  boolean;
    super    boolean := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
    shard_name text;
BEGIN
    IF ours IS NULL THEN
        RETURN;                            -- lowcode is being dropped
    END IF;
    FOR c IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        CONTINUE WHEN c.in_extension;
        -- CREATE EXTENSION lowcode making its schema: PostgreSQL reports it here when another
        -- extension's event triggers (Citus's) were there before lowcode's.
        CONTINUE WHEN c.command_tag OPERATOR(pg_catalog.=) 'CREATE SCHEMA' AND c.objid OPERATOR(pg_catalog.=) ours;
        -- A Citus shard of one of lowcode's tables (lowcode.distribute, a shard move or copy: a
        -- superuser's work), named <table>_<shard id>: the shard, its indexes, constraints,
        -- triggers and policies (<name>_<shard id>, or <name> on <shard>), as Citus copies them
        -- from the table. (By the name the command reports: inside a function the new shard's
        -- catalog row is not visible here yet.)
        -- On a Citus worker: what a superuser's command on the coordinator (where this guard
        -- ruled already: lowcode.distribute) makes Citus run here, on the node's copies of
        -- lowcode's tables (a policy on a distributed table).
        CONTINUE WHEN super AND pg_catalog.starts_with(pg_catalog.current_setting('application_name'), 'citus_internal gpid=');
        IF super AND c.object_identity IS NOT NULL THEN
            shard_name := pg_catalog.regexp_replace(c.object_identity, '^.* on ', '');
            CONTINUE WHEN pg_catalog.starts_with(shard_name, 'lowcode.')
                AND shard_name OPERATOR(pg_catalog.~) '_[0-9]+$'
                AND EXISTS (
                    SELECT FROM pg_catalog.pg_class b
                      LEFT JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) b.oid
                      JOIN pg_catalog.pg_depend d ON d.objid OPERATOR(pg_catalog.=) COALESCE(i.indrelid, b.oid)
                     WHERE b.relnamespace OPERATOR(pg_catalog.=) ours
                       AND b.relname OPERATOR(pg_catalog.=)
                           pg_catalog.regexp_replace(pg_catalog.substr(shard_name, 9), '_[0-9]+$', '')
                       AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                       AND d.refobjid OPERATOR(pg_catalog.=) ext AND d.deptype OPERATOR(pg_catalog.=) 'e');
        END IF;
        IF c.command_tag OPERATOR(pg_catalog.=) ANY (ARRAY['GRANT', 'REVOKE']) THEN
            -- Refused when a privilege exists that the extension scripts did not give.
            in_ours := EXISTS (SELECT FROM (%1$s) e(entry)
                                WHERE e.entry OPERATOR(pg_catalog.<>) ALL (%2$L::pg_catalog.text[]));
        ELSIF c.command_tag OPERATOR(pg_catalog.=) 'ALTER EXTENSION' THEN
            -- ALTER EXTENSION lowcode UPDATE keeps every object of schema lowcode a member;
            -- ALTER EXTENSION lowcode DROP <object> would hand it to its owner to change.
            in_ours := c.objid OPERATOR(pg_catalog.=) ext
                       AND EXISTS (SELECT FROM pg_catalog.pg_proc p
                                    WHERE p.pronamespace OPERATOR(pg_catalog.=) ours
                                      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                                                       WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                                         AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
                                   UNION ALL
                                   SELECT FROM pg_catalog.pg_class r
                                    WHERE r.relnamespace OPERATOR(pg_catalog.=) ours AND r.relkind OPERATOR(pg_catalog.<>) 'i'
                                      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                                                       WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                                         AND d.objid OPERATOR(pg_catalog.=) r.oid
                                                         AND d.deptype OPERATOR(pg_catalog.=) ANY (ARRAY['e', 'a', 'i']::pg_catalog."char"[])));
        ELSIF c.command_tag OPERATOR(pg_catalog.=) 'CREATE INDEX' THEN
            in_ours := c.schema_name OPERATOR(pg_catalog.=) 'lowcode';
            IF in_ours THEN
                -- Only the index a lowcode.uniques row stands for (made by its trigger).
                in_ours := NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                                         JOIN pg_catalog.pg_class x ON x.oid OPERATOR(pg_catalog.=) i.indexrelid
                                         JOIN lowcode.uniques u ON u.index_name OPERATOR(pg_catalog.=) x.relname
                                        WHERE i.indexrelid OPERATOR(pg_catalog.=) c.objid
                                          AND i.indrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass);
            END IF;
        ELSE
            in_ours := CASE c.classid
                WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN c.objid OPERATOR(pg_catalog.=) ours
                WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                    EXISTS (SELECT FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) t.tgrelid
                             WHERE t.oid OPERATOR(pg_catalog.=) c.objid AND r.relnamespace OPERATOR(pg_catalog.=) ours)
                WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                    EXISTS (SELECT FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) w.ev_class
                             WHERE w.oid OPERATOR(pg_catalog.=) c.objid AND r.relnamespace OPERATOR(pg_catalog.=) ours)
                -- A cast from or to one of lowcode's types (a table's row type is its owner's).
                WHEN 'pg_catalog.pg_cast'::pg_catalog.regclass THEN
                    EXISTS (SELECT FROM pg_catalog.pg_cast k JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) ANY (ARRAY[k.castsource, k.casttarget])
                             WHERE k.oid OPERATOR(pg_catalog.=) c.objid AND t.typnamespace OPERATOR(pg_catalog.=) ours)
                WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
                    EXISTS (SELECT FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) p.polrelid
                             WHERE p.oid OPERATOR(pg_catalog.=) c.objid AND r.relnamespace OPERATOR(pg_catalog.=) ours)
                ELSE false
                END;
            -- Objects that are lowcode's by their schema (whatever kind), or its members also
            -- when the command moved them out of it (ALTER ... SET SCHEMA) or renamed them.
            in_ours := in_ours OR c.schema_name OPERATOR(pg_catalog.=) 'lowcode'
                       OR (c.classid IS NOT NULL AND EXISTS (
                             SELECT FROM pg_catalog.pg_depend d
                              WHERE d.classid OPERATOR(pg_catalog.=) c.classid AND d.objid OPERATOR(pg_catalog.=) c.objid
                                AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                                AND d.refobjid OPERATOR(pg_catalog.=) ext AND d.deptype OPERATOR(pg_catalog.=) 'e'));
        END IF;
        IF in_ours THEN
            RAISE EXCEPTION 'lowcode: %% %% refused: lowcode''s functions, tables, schema and privileges, and the triggers, rules and policies on its tables, change only with its extension scripts',
                            c.command_tag, coalesce(c.object_identity, c.object_type)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'upgrade with ALTER EXTENSION lowcode UPDATE; a superuser who must patch lowcode by hand can ALTER EVENT TRIGGER lowcode_guard DISABLE first';
        END IF;
    END LOOP;
END $fn$ $def$, entries, expected);
    EXECUTE pg_catalog.format($def$
CREATE OR REPLACE FUNCTION lowcode.guard_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    o  record;
BEGIN
    -- Nothing of lowcode's among the dropped objects (the common case, for every role): done.
    -- A trigger, policy, rule or column default has no schema of its own: PostgreSQL reports
    -- its table's there only since a fix back-patched to 15 (PolarDB 15.8 predates it);
    -- address_names starts with the table's schema on every version.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.schema_name OPERATOR(pg_catalog.=) 'lowcode'
                       OR (d.object_type OPERATOR(pg_catalog.=) ANY (ARRAY['trigger', 'policy', 'rule', 'default value'])
                           AND d.address_names[1] OPERATOR(pg_catalog.=) 'lowcode')) THEN
        RETURN;
    END IF;
    -- DROP EXTENSION lowcode (or DROP SCHEMA lowcode CASCADE, DROP OWNED) takes lowcode with it.
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                WHERE d.object_type OPERATOR(pg_catalog.=) 'extension' AND d.object_identity OPERATOR(pg_catalog.=) 'lowcode')
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode') THEN
        RETURN;
    END IF;
    -- On a Citus worker: a superuser's command on the coordinator, replayed here by Citus.
    IF pg_catalog.starts_with(pg_catalog.current_setting('application_name'), 'citus_internal gpid=')
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RETURN;
    END IF;
    FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() d
              WHERE (d.schema_name OPERATOR(pg_catalog.=) 'lowcode'
                     OR (d.object_type OPERATOR(pg_catalog.=) ANY (ARRAY['trigger', 'policy', 'rule', 'default value'])
                         AND d.address_names[1] OPERATOR(pg_catalog.=) 'lowcode'))
                -- the index of a removed lowcode.uniques row (drop_unique) may go
                AND NOT (d.object_type OPERATOR(pg_catalog.=) 'index' AND TG_TAG OPERATOR(pg_catalog.=) 'DROP INDEX'
                         AND d.object_name OPERATOR(pg_catalog.<>) ALL (%1$L::pg_catalog.text[])
                         AND NOT EXISTS (SELECT FROM lowcode.uniques u WHERE u.index_name OPERATOR(pg_catalog.=) d.object_name))
    LOOP
        RAISE EXCEPTION 'lowcode: %% %% refused: lowcode''s objects are dropped only with DROP EXTENSION lowcode', TG_TAG, o.object_identity
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a superuser who must patch lowcode by hand can ALTER EVENT TRIGGER lowcode_guard_drop DISABLE first';
    END LOOP;
END $fn$ $def$, own);
    PERFORM pg_catalog.set_config('search_path', path, true);
END
$guard$;
COMMENT ON FUNCTION lowcode.guard_ddl() IS 'Event trigger: refuses every command that changes lowcode''s functions, tables, schema or privileges, the triggers, rules and policies on its tables or casts of its types, outside its extension scripts (the index of a lowcode.uniques row excepted).';
COMMENT ON FUNCTION lowcode.guard_drop() IS 'Event trigger: refuses dropping any of lowcode''s objects (a trigger on its tables included) other than with the extension itself (the index of a removed lowcode.uniques row excepted: drop_unique).';
COMMENT ON EVENT TRIGGER lowcode_guard IS 'lowcode: its functions, tables, schema and privileges, and the triggers, rules and policies on its tables, change only with its extension scripts (lowcode.guard_ddl).';
COMMENT ON EVENT TRIGGER lowcode_guard_drop IS 'lowcode: its objects are dropped only with the extension (lowcode.guard_drop).';
