-- lowcode 0.1.0 → 0.2.0, written by hand (`ALTER EXTENSION lowcode UPDATE TO '0.2.0'`).
--
-- tests/system/upgrade.sh installs the frozen 0.1.0 script (sql/releases/lowcode--0.1.0.sql)
-- with this library, fills it with a lived-in app, runs this script and checks that the
-- catalog equals a fresh 0.2.0 install and that the app carries on. The 0.2.0 library keeps
-- every C function 0.1.0's SQL calls, so a server can hold databases on 0.1.0 and 0.2.0 at
-- once (docs/operations.md, "Upgrading"). Function bodies below are those of sql/*.sql;
-- scripts/upgrade-diff.sh lists which functions differ from the frozen release.
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------- tables

-- Workflow calls run as the role that published the workflow version (issue: a rule's call
-- ran with the rights of whoever fired it, a superuser's timer run included). Versions
-- published before: as the role named by published_by where it is one (it may be an act_as
-- label); else their calls are refused until the workflow is defined again.
ALTER TABLE lowcode.workflow_versions ADD COLUMN calls_run_as text;
UPDATE lowcode.workflow_versions w SET calls_run_as = w.published_by
 WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) w.published_by);
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
SELECT pg_catalog.pg_extension_config_dump('lowcode.call_grants', '');
-- Versions published before 0.2.0 get grants for the calls whose function resolves by the
-- name written (a schema-qualified name), as the role calls_run_as names; the others are
-- refused until the workflow is defined again.
INSERT INTO lowcode.call_grants (workflow_version_id, name, function, run_as)
SELECT DISTINCT w.id, a ->> 'call', pg_catalog.to_regprocedure((a ->> 'call') OPERATOR(pg_catalog.||) '(pg_catalog.jsonb)'),
       w.calls_run_as::pg_catalog.regrole
  FROM lowcode.workflow_versions w,
       pg_catalog.jsonb_array_elements(coalesce(w.definition -> 'rules', '[]')) r,
       pg_catalog.jsonb_array_elements(coalesce(r -> 'then', '[]')) a
 WHERE a ? 'call' AND w.calls_run_as IS NOT NULL
   AND pg_catalog.to_regprocedure((a ->> 'call') OPERATOR(pg_catalog.||) '(pg_catalog.jsonb)') IS NOT NULL;
-- Timers retry transient errors with backoff: each counts its failed attempts.
ALTER TABLE lowcode.timers ADD COLUMN attempts int NOT NULL DEFAULT 0;

-- validate() gains a field column (the JSON pointer of the field a message belongs to); the
-- 0.1.0 library symbol stays for databases not updated yet.
DROP FUNCTION lowcode.validate(text, text, jsonb);

-- Outbox v2. Events carry their app; batches are read in (txid, id) order.
ALTER TABLE lowcode.events ADD COLUMN app text;
UPDATE lowcode.events e SET app = r.app FROM lowcode.records r WHERE r.id = e.record_id;
DROP INDEX lowcode.events_txid_idx;
CREATE INDEX events_batch_idx ON lowcode.events (txid, id);
-- Consumers keep their cursor as snapshots: everything before their 0.1.0 cursor_xid has
-- delivery rows already, so the first batch starts there (nothing skipped, nothing twice).
ALTER TABLE lowcode.consumers
    ADD COLUMN app text,
    ADD COLUMN topics text[],
    ADD COLUMN backoff interval[] NOT NULL DEFAULT '{}',
    ADD COLUMN batch_from pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    ADD COLUMN batch_to pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    ADD COLUMN pos_txid xid8 NOT NULL DEFAULT '0',
    ADD COLUMN pos_id bigint NOT NULL DEFAULT 0;
UPDATE lowcode.consumers c
   SET batch_from = (greatest(c.cursor_xid, '1')::text || ':' || greatest(c.cursor_xid, '1')::text || ':')::pg_snapshot,
       batch_to = (greatest(c.cursor_xid, '1')::text || ':' || greatest(c.cursor_xid, '1')::text || ':')::pg_snapshot,
       pos_txid = greatest(c.cursor_xid, '1'), pos_id = 0;
-- Deliveries keep only what is off the happy path: acknowledged rows go, pending ones (never
-- polled, in flight, retried) and dead letters stay and come back as retries.
DELETE FROM lowcode.deliveries WHERE status = 'acked';
ALTER TABLE lowcode.deliveries ADD COLUMN lease_id bigint;
DROP INDEX lowcode.deliveries_order_idx;
DROP INDEX lowcode.deliveries_retried_idx;
CREATE INDEX deliveries_ready_idx ON lowcode.deliveries (consumer, visible_at) WHERE status = 'pending';
CREATE INDEX deliveries_event_idx ON lowcode.deliveries (event_id);
CREATE TABLE lowcode.leases (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL REFERENCES lowcode.consumers (name) ON DELETE CASCADE,
    events      bigint[] NOT NULL,
    attempts    int[] NOT NULL,
    open        int NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX leases_consumer_idx ON lowcode.leases (consumer, expires_at);
SELECT pg_catalog.pg_extension_config_dump('lowcode.leases_id_seq', '');
CREATE TABLE lowcode.outbox_signal (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_event   bigint NOT NULL DEFAULT 0,
    signalled_at timestamptz
);
INSERT INTO lowcode.outbox_signal DEFAULT VALUES;
-- A new app privilege: consume (poll an app's outbox consumers).
ALTER TABLE lowcode.grants DROP CONSTRAINT grants_privilege_check;
ALTER TABLE lowcode.grants ADD CONSTRAINT grants_privilege_check
    CHECK (privilege IN ('submit', 'read_own', 'read_all', 'update_own', 'update_all',
                         'delete', 'claim', 'decide', 'act_as', 'admin', 'consume'));
COMMENT ON TABLE lowcode.workflow_versions IS 'Immutable versions of each form''s workflow definition, with its initial and final states, its Mermaid diagram, and the role its call actions run as (calls_run_as: the role that published it).';
COMMENT ON TABLE lowcode.timers IS 'Timers and task deadlines: fire an event at fire_at (lowcode.run_due_timers); a timer set in a state is cancelled when the record leaves it. A transient failure is retried with backoff (attempts, error), up to 5 attempts.';
COMMENT ON TABLE lowcode.history IS 'Every change to every record: who (lowcode.actor(app): the lowcode.actor setting where the role may act_as in the app, else the invoking role), when, what (action), the state change and the data before and after. Kept when the record is deleted.';
COMMENT ON TABLE lowcode.form_versions IS 'Immutable published versions of each form: the JSON Schema as given, what validates (bundled: the schema, or {"$lowcode:bundle": 1, "schema": ..., "resources": {uri: copy}} with a copy of every registered schema its $refs reach), and its draft.';
COMMENT ON TABLE lowcode.events IS 'Outbox events (topic, JSON payload, app) for other systems, written in the transaction that caused them; kept until every consumer has passed them (lowcode.purge_events).';
COMMENT ON TABLE lowcode.consumers IS 'Consumers of the outbox (lowcode.create_consumer): the app and topics each reads, its retry policy, and its cursor (two snapshots and a position in the batch between them).';
COMMENT ON TABLE lowcode.deliveries IS 'The events of a consumer that are not on the happy path: nacked or not acknowledged in time (pending, with attempt and backoff), or dead letters (dead, with the last error).';
COMMENT ON TABLE lowcode.leases IS 'Events in flight: one row per poll, until each of its events is acknowledged or nacked, or its visibility timeout ends (then the rest get rows in lowcode.deliveries and come back).';
COMMENT ON TABLE lowcode.outbox_signal IS 'The newest event lowcode.signal_events has announced (one row).';

-- ---------------------------------------------------------------- the engine's state
-- The cause of a change and the chain of running rules were settings (lowcode.cause,
-- lowcode.rule_chain) that any role could SET; they are the library's own state now.
DROP FUNCTION lowcode.with_cause(jsonb);
-- Calls no longer run as the invoker: they run as the publisher (lowcode.call_grants).
DROP FUNCTION lowcode.call_as_invoker(text, jsonb);

CREATE FUNCTION lowcode.grant_calls(
	"version" bigint, /* i64 */
	"names" TEXT[], /* Vec < String > */
	"functions" oid[] /* Vec < Option < pg_sys :: Oid > > */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'grant_calls_wrapper';

CREATE FUNCTION lowcode.cause() RETURNS jsonb /* Option < JsonB > */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cause_wrapper';

CREATE FUNCTION lowcode.with_cause(
	"cause" jsonb /* Option < JsonB > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'with_cause_wrapper';

CREATE FUNCTION lowcode.rule_chain() RETURNS TEXT /* String */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rule_chain_wrapper';

CREATE FUNCTION lowcode.set_rule_chain(
	"chain" TEXT /* Option < & str > */
) RETURNS TEXT /* String */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_rule_chain_wrapper';

CREATE FUNCTION lowcode.validate(
	"app" TEXT, /* Option < & str > */
	"form" TEXT, /* Option < & str > */
	"data" jsonb /* Option < JsonbBytes > */
) RETURNS TABLE (
	"path" TEXT,  /* String */
	"keyword" TEXT,  /* String */
	"message" TEXT,  /* String */
	"field" TEXT  /* String */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'validate_fields_wrapper';

CREATE FUNCTION lowcode.check_registered_schema(
	"uri" TEXT, /* Option < & str > */
	"schema" jsonb /* Option < JsonbBytes > */
) RETURNS void
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_registered_schema_wrapper';

-- ---------------------------------------------------------------- the engine in Rust
-- The records triggers, rules and actions (PL/pgSQL in 0.1.0) are the library's now: one
-- trigger per timing (src/records.rs), the rules (src/rules.rs), the history writer
-- (lowcode.log) and the outbox writer (lowcode.emit).
DROP TRIGGER records_check ON lowcode.records;
DROP TRIGGER records_history ON lowcode.records;
DROP TRIGGER records_workflow ON lowcode.records;
DROP FUNCTION lowcode.records_check();
DROP FUNCTION lowcode.records_history();
DROP FUNCTION lowcode.records_workflow();
DROP FUNCTION lowcode.run_action(bigint, text, text, jsonb, jsonb);
DROP FUNCTION lowcode.fire(bigint, text, jsonb);
DROP FUNCTION lowcode.log(bigint, text, jsonb);
DROP FUNCTION lowcode.emit(text, jsonb, bigint);
DROP FUNCTION lowcode.fire_timer(lowcode.timers);

CREATE FUNCTION lowcode.emit(
	"topic" TEXT, /* Option < & str > */
	"payload" jsonb DEFAULT '{}', /* Option < JsonB > */
	"record" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bigint /* i64 */
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'emit_wrapper';

CREATE FUNCTION lowcode.fire(
	"record" bigint, /* Option < i64 > */
	"event" TEXT, /* Option < & str > */
	"context" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fire_wrapper';

CREATE FUNCTION lowcode.log(
	"record" bigint, /* Option < i64 > */
	"action" TEXT, /* Option < & str > */
	"detail" jsonb /* Option < pgrx :: JsonB > */
) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'log_wrapper';

CREATE FUNCTION lowcode.records_after()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'records_after_wrapper';

CREATE FUNCTION lowcode.records_before()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'records_before_wrapper';

CREATE TRIGGER records_before BEFORE INSERT OR UPDATE ON lowcode.records
    FOR EACH ROW EXECUTE FUNCTION lowcode.records_before();
CREATE TRIGGER records_after AFTER INSERT OR UPDATE OR DELETE ON lowcode.records
    FOR EACH ROW EXECUTE FUNCTION lowcode.records_after();
COMMENT ON TABLE lowcode.records IS 'Every submission of every form. data is validated against the form version it names on every insert and update (trigger records_before).';

CREATE OR REPLACE FUNCTION lowcode.is_admin() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'is_admin_wrapper';

CREATE OR REPLACE FUNCTION lowcode.may(
	"app" TEXT, /* Option < & str > */
	"privilege" TEXT /* Option < & str > */
) RETURNS bool /* bool */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'may_wrapper';

CREATE OR REPLACE FUNCTION lowcode.authorize(
	"app" TEXT, /* Option < & str > */
	"privilege" TEXT, /* Option < & str > */
	"doing" TEXT /* Option < & str > */
) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authorize_wrapper';

CREATE OR REPLACE FUNCTION lowcode.refuse(
	"app" TEXT, /* Option < & str > */
	"privilege" TEXT, /* Option < & str > */
	"doing" TEXT /* Option < & str > */
) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'refuse_wrapper';

CREATE OR REPLACE FUNCTION lowcode.replaying() RETURNS bool /* bool */
STRICT STABLE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'replaying_sql_wrapper';

CREATE OR REPLACE FUNCTION lowcode.submit(
	"app" TEXT, /* Option < & str > */
	"form" TEXT, /* Option < & str > */
	"data" jsonb /* Option < crate :: jsonb :: JsonbBytes > */
) RETURNS bigint /* i64 */
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'submit_wrapper';

CREATE OR REPLACE FUNCTION lowcode.apps_where(
	"privilege" TEXT /* Option < & str > */
) RETURNS SETOF TEXT /* String */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'apps_where_wrapper';

CREATE OR REPLACE FUNCTION lowcode.view_write()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'view_write_wrapper';

CREATE OR REPLACE FUNCTION lowcode.fire_timers(
	"timers" bigint[] /* :: std :: option :: Option < Vec < i64 > > */
) RETURNS INT /* i32 */
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fire_timers_wrapper';

CREATE OR REPLACE FUNCTION lowcode.claim_task(
	"pool" TEXT, /* Option < & str > */
	"worker" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS bigint /* Option < i64 > */
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_task_wrapper';

-- ---------------------------------------------------------------- functions
-- New and changed functions, as in sql/*.sql. require_claimer now returns the task's app.
DROP FUNCTION lowcode.require_claimer(lowcode.tasks, text);
-- poll_events returns event_id and record_id too (its id is a delivery id now).
DROP FUNCTION lowcode.poll_events(text, int, interval);

CREATE OR REPLACE FUNCTION lowcode.create_app(app text, title text DEFAULT '') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lowcode.check_name('app', app);
    PERFORM lowcode.authorize(app, 'lowcode_admin', 'create apps');
    IF EXISTS (SELECT FROM lowcode.apps a WHERE a.name = create_app.app) THEN
        RAISE EXCEPTION 'lowcode: app "%" already exists', app
            USING ERRCODE = 'duplicate_object',
                  HINT = 'define forms in it with lowcode.define_form';
    END IF;
    INSERT INTO lowcode.apps (name, title, created_by)
    VALUES (app, coalesce(title, ''), lowcode.actor(app));
    RETURN app;
END $$;
COMMENT ON FUNCTION lowcode.create_app(text, text) IS 'Create an app: a namespace of forms (and, once published, a schema of typed views). Names: lowercase letters, digits and _, up to 63 characters.';

CREATE OR REPLACE FUNCTION lowcode.define_form(app text, form text, schema jsonb) RETURNS int
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
    INSERT INTO lowcode.form_versions (app, form, version, schema, bundled, draft, published_by)
    VALUES (app, form, new_version, schema, checked -> 'bundled', checked ->> 'draft', lowcode.actor(app))
    RETURNING * INTO current;
    UPDATE lowcode.forms f SET current_version_id = current.id
     WHERE f.app = app AND f.name = form;
    PERFORM lowcode.forms_changed();
    RETURN new_version;
END $$;
COMMENT ON FUNCTION lowcode.define_form(text, text, jsonb) IS 'Define or change a form with a JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12; default 2020-12). Returns the version new submissions are validated against: the current one when the schema is unchanged, else a new one. Every session enforces it from its next statement.';

CREATE OR REPLACE FUNCTION lowcode.register_schema(uri text, schema jsonb) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    existing jsonb;
BEGIN
    IF uri IS NULL OR schema IS NULL THEN
        RAISE EXCEPTION 'lowcode: register_schema: arguments "uri" and "schema" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF uri = '' OR position('#' IN uri) > 0 THEN
        RAISE EXCEPTION 'lowcode: invalid schema URI "%": it must be non-empty and have no fragment', uri
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('register schema %s', uri));
    SELECT s.schema INTO existing FROM lowcode.schemas s WHERE s.uri = uri;
    IF FOUND THEN
        IF existing = schema THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'lowcode: schema "%" is already registered with different content', uri
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'registered schemas are immutable so published forms never change meaning; register the new one under a new URI (e.g. with a version in it)';
    END IF;
    -- Its $refs resolve as a form will resolve them: against its URI, against its $id.
    PERFORM lowcode.check_registered_schema(uri, schema);
    INSERT INTO lowcode.schemas (uri, schema, registered_by) VALUES (uri, schema, lowcode.actor(NULL));
END $$;
COMMENT ON FUNCTION lowcode.register_schema(text, jsonb) IS 'Register a shared schema (a phone number, an address, a library of $defs) that forms reference with {"$ref": uri}, uri#/json/pointer or uri#anchor. uri is its base URI: its relative $refs name other registered schemas (register those first). Immutable once registered; re-registering identical content is a no-op.';

CREATE OR REPLACE FUNCTION lowcode.view_change(app text, form text, old_row jsonb, new_row jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    own      text[] := ARRAY['id', 'state', 'revision', 'created_at', 'updated_at'];
    rec_id   bigint := (old_row ->> 'id')::bigint;
    data     jsonb;
    cur_revision  int;
    writer        bigint;
    current8      numeric;
    hide          text[];
BEGIN
    IF new_row -> 'id' IS DISTINCT FROM old_row -> 'id' OR new_row -> 'state' IS DISTINCT FROM old_row -> 'state'
       OR new_row -> 'revision' IS DISTINCT FROM old_row -> 'revision' THEN
        RAISE EXCEPTION 'lowcode: %.%: id, state and revision cannot be set through the view', app, form
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'change state with lowcode.transition; revision counts itself';
    END IF;
    -- Lock the record. If another transaction changed it after this statement read OLD, NEW
    -- was computed from stale values (SET balance = balance - 40): refuse, as REPEATABLE READ
    -- would, rather than silently lose that change. Changes by this transaction (e.g. a rule
    -- run by an earlier row of the same statement) are kept by applying only what changed.
    SELECT r.data, r.revision, r.xmin::text::bigint INTO data, cur_revision, writer
      FROM lowcode.records r WHERE r.id = rec_id FOR UPDATE;
    IF jsonb_typeof(data) <> 'object' THEN
        RAISE EXCEPTION 'lowcode: %.%: record % holds a JSON %, not an object, so its view columns cannot be updated', app, form, rec_id, jsonb_typeof(data)
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'replace its data with lowcode.update_record';
    END IF;
    IF cur_revision <> (old_row ->> 'revision')::int THEN
        -- We hold the row lock, so its last writer is this transaction (or one of its
        -- subtransactions: 'in progress') or one that has committed. xmin is a 32-bit xid:
        -- widen it to xid8 relative to ours (it is within 2^31 of it).
        current8 := pg_current_xact_id()::text::numeric;
        IF pg_xact_status((current8 + (writer - current8 % 4294967296 + 6442450944) % 4294967296
                           - 2147483648)::text::xid8) IS DISTINCT FROM 'in progress' THEN
            RAISE EXCEPTION 'lowcode: %.%: record % was changed by another transaction while this UPDATE ran', app, form, rec_id
                USING ERRCODE = 'serialization_failure',
                      HINT = 'run the statement again: it will see the other change';
        END IF;
    END IF;
    -- Apply only the columns that changed, so fields the view does not show are kept.
    -- Fields hidden from the writer show as NULL: unless it set one (update_record refuses
    -- that), they are left out here and update_record keeps their stored values.
    hide := lowcode.hidden(app, form);
    SELECT coalesce(
             (SELECT jsonb_object_agg(k, v) FROM jsonb_each(data) AS d(k, v)
               WHERE k <> ALL (hide)
                 AND k NOT IN (SELECT key FROM jsonb_each(new_row)
                                WHERE key <> ALL (own)
                                  AND value IS DISTINCT FROM old_row -> key)),
             '{}')
           || coalesce(
             (SELECT jsonb_object_agg(key, value) FROM jsonb_each(new_row)
               WHERE key <> ALL (own) AND value <> 'null'
                 AND value IS DISTINCT FROM old_row -> key),
             '{}')
      INTO data;
    PERFORM lowcode.update_record(rec_id, data);
    RETURN rec_id;
END $$;
COMMENT ON FUNCTION lowcode.view_change(text, text, jsonb, jsonb) IS 'Internal: an UPDATE through a typed view (lowcode.view_write): applies the changed columns with update_record; returns the record id.';

CREATE OR REPLACE FUNCTION lowcode.update_record(id bigint, data jsonb, expected_revision int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r lowcode.records;
BEGIN
    IF id IS NULL OR data IS NULL THEN
        RAISE EXCEPTION 'lowcode: update_record: arguments "id" and "data" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    r := lowcode.record_for_update(id);
    IF NOT lowcode.may_update(r.app, r.owner) THEN
        PERFORM lowcode.refuse(r.app, CASE WHEN r.owner = lowcode.invoker_name() THEN 'update_own' ELSE 'update_all' END,
                               format('update record %s of form %s', id, r.form));
    END IF;
    IF expected_revision IS NOT NULL AND r.revision <> expected_revision THEN
        RAISE EXCEPTION 'lowcode: %.%: record % is at revision %, not %', r.app, r.form, id, r.revision, expected_revision
            USING ERRCODE = 'serialization_failure',
                  HINT = 'someone changed it since you read it: read it again and re-apply your change';
    END IF;
    UPDATE lowcode.records x
       SET data = lowcode.keep_hidden(r, update_record.data, format('update record %s', id))
     WHERE x.id = id
    RETURNING x.revision INTO r.revision;
    RETURN r.revision;
END $$;
COMMENT ON FUNCTION lowcode.update_record(bigint, jsonb, int) IS 'Replace a record''s data (validated like submit). Fields hidden from the caller keep their stored values (naming one is refused with 42501). With expected_revision, refuses (SQLSTATE 40001) when someone else changed it first. Returns the new revision.';

CREATE OR REPLACE FUNCTION lowcode.define_workflow(app text, form text, definition jsonb) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    checked      jsonb;
    current      lowcode.workflow_versions;
    new_version  int;
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
    INSERT INTO lowcode.workflow_versions (app, form, version, definition, initial_state, final_states, diagram,
                                           published_by, calls_run_as)
    VALUES (app, form, new_version, definition, checked ->> 'initial',
            ARRAY(SELECT jsonb_array_elements_text(checked -> 'finals')), checked ->> 'diagram', lowcode.actor(app),
            lowcode.invoker_name())
    RETURNING * INTO current;
    -- The calls run these functions, as the role at the keyboard (never an argument).
    PERFORM lowcode.grant_calls(current.id, coalesce(pg_catalog.array_agg(c.name), '{}'),
                                coalesce(pg_catalog.array_agg(lowcode.call_function(c.name)), '{}'))
       FROM (SELECT DISTINCT a ->> 'call' AS name
               FROM pg_catalog.jsonb_array_elements(coalesce(definition -> 'rules', '[]')) r,
                    pg_catalog.jsonb_array_elements(coalesce(r -> 'then', '[]')) a
              WHERE a ? 'call') c;
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
    -- Every session runs the new version from its next statement (the form's cached lookup).
    PERFORM lowcode.forms_changed();
    RETURN new_version;
END $$;
COMMENT ON FUNCTION lowcode.define_workflow(text, text, jsonb) IS 'Attach a workflow (states, transitions, rules) to a form. The definition is checked (see README: workflow format); a bad one is refused with the path of the problem. Returns the workflow version.';

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

CREATE OR REPLACE FUNCTION lowcode.transition(record bigint, name text, payload jsonb DEFAULT '{}') RETURNS text
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

CREATE OR REPLACE FUNCTION lowcode.complete_task(task bigint, outcome text, data jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    t    lowcode.tasks := lowcode.task_for_update(task);
    app  text;
BEGIN
    IF t.kind = 'approval' THEN
        RAISE EXCEPTION 'lowcode: task % is an approval: decide it with lowcode.decide', t.id
            USING ERRCODE = 'wrong_object_type';
    END IF;
    app := lowcode.require_claimer(t, 'completed');
    UPDATE lowcode.tasks x
       SET status = 'completed', outcome = complete_task.outcome, result = coalesce(data, '{}'),
           completed_by = lowcode.actor(app), completed_at = now(),
           met_deadline = (x.due_at IS NULL OR now() <= x.due_at)
     WHERE x.id = t.id;
    UPDATE lowcode.timers x SET status = 'cancelled' WHERE x.task_id = t.id AND x.status = 'pending';
    PERFORM lowcode.log(t.record_id, 'task_completed',
        jsonb_build_object('task', t.id, 'name', t.name, 'outcome', outcome, 'data', coalesce(data, '{}'),
                           'met_deadline', t.due_at IS NULL OR now() <= t.due_at));
    PERFORM lowcode.fire(t.record_id, 'task_completed:' || t.name,
        jsonb_build_object('task', t.id, 'outcome', outcome, 'data', coalesce(data, '{}')));
END $$;
COMMENT ON FUNCTION lowcode.complete_task(bigint, text, jsonb) IS 'Complete a task you claimed with an outcome (and result data): records whether the deadline was met and fires task_completed:<task>.';

CREATE OR REPLACE FUNCTION lowcode.decide(task bigint, decision text, comment text DEFAULT NULL) RETURNS text
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

CREATE OR REPLACE FUNCTION lowcode.withdraw(record bigint) RETURNS text
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

CREATE OR REPLACE FUNCTION lowcode.run_due_timers(max int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    t        lowcode.timers;
    batch    lowcode.timers[];
    fired    int := 0;
    message  text;
    state    text;
    sort_was text;
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
            GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            IF (left(state, 2) IN ('08', '53', '58') OR state = '57014') AND t.attempts + 1 < 5 THEN
                UPDATE lowcode.timers x
                   SET status = 'pending', fired_at = NULL, error = message, attempts = t.attempts + 1,
                       fire_at = now() + interval '30 seconds' * power(2, t.attempts)
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
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.events_restored() IS 'Trigger, only while lowcode.replaying(): re-bases restored events and consumer cursors on this cluster''s transaction ids.';

CREATE FUNCTION lowcode.create_consumer(name text, options jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    app      text := options ->> 'app';
    topics   text[];
    backoff  interval[] := '{}';
    attempts int := coalesce((options ->> 'max_attempts')::int, 5);
    start    pg_snapshot;
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
    INSERT INTO lowcode.consumers (name, app, topics, max_attempts, backoff, batch_from, batch_to, pos_txid, cursor_xid)
    VALUES (name, app, topics, attempts, backoff, start, start, pg_snapshot_xmax(start), pg_snapshot_xmin(start));
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'lowcode: consumer "%" already exists', name
        USING ERRCODE = 'duplicate_object', HINT = 'drop it first with lowcode.drop_consumer';
END $$;
COMMENT ON FUNCTION lowcode.create_consumer(text, jsonb) IS 'Create an outbox consumer. options: app (whose events it reads; NULL: every app, administrators only), topics (names or prefixes ''order.*''), max_attempts (5), backoff (intervals before each retry; default 1 s doubling to 1 h), from (''now'' or ''beginning''). An app''s admin creates its consumers; roles granted consume in the app poll them.';

CREATE FUNCTION lowcode.drop_consumer(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c lowcode.consumers;
BEGIN
    SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.app IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', format('drop consumer %s', name));
    ELSE
        PERFORM lowcode.authorize(c.app, 'admin', format('drop consumer %s', name));
    END IF;
    DELETE FROM lowcode.consumers x WHERE x.name = name;
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_consumer(text) IS 'Drop an outbox consumer with its retries, dead letters and events in flight; true if there was one. Events it alone held back can then be purged.';

CREATE FUNCTION lowcode.consumer_for(name text, doing text) RETURNS lowcode.consumers
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c lowcode.consumers;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'lowcode: %: consumer must not be empty', doing USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM lowcode.consumers x WHERE x.name = name FOR UPDATE;
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
COMMENT ON FUNCTION lowcode.consumer_for(text, text) IS 'Internal: locks a consumer for poll, ack or nack, after checking the invoker may consume its app''s events; 42704 for an unknown consumer.';

CREATE FUNCTION lowcode.batch_snapshot() RETURNS pg_snapshot
LANGUAGE plpgsql AS $$
DECLARE
    s   pg_snapshot := pg_current_snapshot();
    me  xid8 := pg_current_xact_id_if_assigned();
BEGIN
    -- (A snapshot taken before this transaction had an id already counts it as running.)
    IF me IS NULL OR me >= pg_snapshot_xmax(s) THEN
        RETURN s;
    END IF;
    RETURN (least(pg_snapshot_xmin(s), me)::text || ':' || pg_snapshot_xmax(s)::text || ':' ||
            coalesce((SELECT string_agg(x::text, ',' ORDER BY x)
                        FROM (SELECT pg_snapshot_xip(s) AS x UNION SELECT me) u), ''))::pg_snapshot;
END $$;
COMMENT ON FUNCTION lowcode.batch_snapshot() IS 'Internal: the current snapshot, with the calling transaction counted as still running.';

CREATE FUNCTION lowcode.topic_matches(topic text, topics text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT $2 IS NULL OR EXISTS (SELECT FROM pg_catalog.unnest($2) t
                                  WHERE t OPERATOR(pg_catalog.=) $1
                                     OR (pg_catalog.right(t, 2) OPERATOR(pg_catalog.=) '.*'
                                         AND pg_catalog.starts_with($1, pg_catalog.left(t, -1))))
$$;
COMMENT ON FUNCTION lowcode.topic_matches(text, text[]) IS 'Internal: whether topic is one of topics, exactly or by a prefix ''order.*''; NULL topics match all.';

CREATE FUNCTION lowcode.poll_events(consumer text, max int DEFAULT 100, visibility interval DEFAULT '30 seconds')
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
BEGIN
    IF max IS NULL OR max < 1 OR max > 65535 THEN
        RAISE EXCEPTION 'lowcode: poll_events: max must be between 1 and 65535, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF visibility IS NULL OR visibility < interval '0' THEN
        RAISE EXCEPTION 'lowcode: poll_events: visibility must be an interval of 0 or more, not %', coalesce(visibility::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One poll of a consumer at a time: its cursor is one row.
    c := lowcode.consumer_for(consumer, 'poll events');
    -- Leases whose visibility timeout ended: their first deliveries get rows of their own (the
    -- retried ones have theirs) and come back now.
    INSERT INTO lowcode.deliveries (consumer, event_id, attempt, visible_at, last_error)
    SELECT c.name, u.e, u.a, now(), 'not acknowledged within its visibility timeout'
      FROM lowcode.leases l, unnest(l.events, l.attempts) AS u(e, a)
     WHERE l.consumer = c.name AND l.expires_at <= now() AND u.e IS NOT NULL AND u.a = 1
    ON CONFLICT DO NOTHING;
    UPDATE lowcode.deliveries d SET lease_id = NULL,
           last_error = coalesce(d.last_error, 'not acknowledged within its visibility timeout')
      FROM lowcode.leases l
     WHERE l.consumer = c.name AND l.expires_at <= now() AND d.consumer = c.name AND d.lease_id = l.id;
    DELETE FROM lowcode.leases l WHERE l.consumer = c.name AND l.expires_at <= now();
    -- Deliveries that used their last attempt and were not acknowledged in time die.
    UPDATE lowcode.deliveries d SET status = 'dead', lease_id = NULL
     WHERE d.consumer = c.name AND d.status = 'pending' AND d.attempt >= c.max_attempts AND d.visible_at <= now();
    lease := nextval('lowcode.leases_id_seq');
    -- Retries first, in the order they became due.
    WITH due AS (
        SELECT d.event_id FROM lowcode.deliveries d
         WHERE d.consumer = c.name AND d.status = 'pending' AND d.visible_at <= now()
         ORDER BY d.visible_at, d.event_id
         LIMIT max
    ), taken AS (
        UPDATE lowcode.deliveries d SET attempt = d.attempt + 1, visible_at = now() + visibility, lease_id = lease
          FROM due WHERE d.consumer = c.name AND d.event_id = due.event_id
        RETURNING d.event_id, d.attempt
    )
    SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}'), coalesce(array_agg(t.attempt ORDER BY t.event_id), '{}')
      INTO ids, tries FROM taken t;
    -- Then the batch, from where the last poll left it; when it is done, the next batch: the
    -- events committed between its snapshot and a new one.
    WHILE cardinality(ids) < max LOOP
        SELECT array_agg(b.id ORDER BY b.txid, b.id), (array_agg(b.txid ORDER BY b.txid DESC, b.id DESC))[1],
               (array_agg(b.id ORDER BY b.txid DESC, b.id DESC))[1]
          INTO got, last_txid, last_id
          FROM (SELECT e.id, e.txid FROM lowcode.events e
                 WHERE (e.txid, e.id) > (c.pos_txid, c.pos_id)
                   AND e.txid < pg_snapshot_xmax(c.batch_to)
                   AND pg_visible_in_snapshot(e.txid, c.batch_to)
                   AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
                   AND (c.app IS NULL OR e.app = c.app)
                   AND (c.topics IS NULL OR lowcode.topic_matches(e.topic, c.topics))
                   -- (a consumer re-reading a restored outbox has rows for its dead letters)
                   AND NOT EXISTS (SELECT FROM lowcode.deliveries d WHERE d.consumer = c.name AND d.event_id = e.id)
                 ORDER BY e.txid, e.id
                 LIMIT max - cardinality(ids)) b;
        IF got IS NOT NULL THEN
            ids := ids || got;
            tries := tries || array_fill(1, ARRAY[cardinality(got)]);
            c.pos_txid := last_txid;
            c.pos_id := last_id;
        END IF;
        EXIT WHEN cardinality(ids) >= max OR advanced;
        -- This batch is done: the next one starts where it ended. Its first events are those of
        -- transactions that were still running at the old snapshot and have committed since.
        advanced := true;
        c.batch_from := c.batch_to;
        c.batch_to := lowcode.batch_snapshot();
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
           cursor_xid = pg_snapshot_xmin(c.batch_from)
     WHERE x.name = c.name;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO lowcode.leases (id, consumer, events, attempts, open, expires_at)
    VALUES (lease, c.name, ids, tries, cardinality(ids), now() + visibility);
    RETURN QUERY
    SELECT lease * 65536 + u.i, e.topic, e.payload, u.a, e.created_at, e.id, e.record_id
      FROM unnest(ids, tries) WITH ORDINALITY AS u(e_id, a, i)
      JOIN lowcode.events e ON e.id = u.e_id
     ORDER BY u.i;
END $$;
COMMENT ON FUNCTION lowcode.poll_events(text, int, interval) IS 'Take up to max events for a consumer: retries that are due first, then the next events of its batch (events committed since its last snapshot, in commit batches). Each is in flight for visibility; unacknowledged, it comes back (at least once). id is the delivery id to ack or nack; event_id stays the same across retries. An unknown consumer is an error (42704).';

CREATE OR REPLACE FUNCTION lowcode.ack_events(consumer text, ids bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c      lowcode.consumers := lowcode.consumer_for(consumer, 'acknowledge events');
    l      lowcode.leases;
    pos    int[];
    acked  int := 0;
BEGIN
    -- A delivery id names its lease and position: a late ack from a poll whose lease already
    -- ended finds no lease and acknowledges nothing (the redelivery has another id).
    FOR l IN
        SELECT x.* FROM lowcode.leases x
         WHERE x.id = ANY (ARRAY(SELECT DISTINCT i / 65536 FROM unnest(ids) i WHERE i > 0))
           AND x.consumer = c.name
         ORDER BY x.id
           FOR UPDATE
    LOOP
        pos := ARRAY(SELECT DISTINCT (i % 65536)::int FROM unnest(ids) i
                      WHERE i / 65536 = l.id AND l.events[(i % 65536)::int] IS NOT NULL);
        CONTINUE WHEN cardinality(pos) = 0;
        DELETE FROM lowcode.deliveries d
         WHERE d.consumer = c.name AND d.lease_id = l.id
           AND d.event_id = ANY (ARRAY(SELECT l.events[p] FROM unnest(pos) p));
        IF l.open = cardinality(pos) THEN
            DELETE FROM lowcode.leases x WHERE x.id = l.id;
        ELSE
            UPDATE lowcode.leases x
               SET events = ARRAY(SELECT CASE WHEN i = ANY (pos) THEN NULL ELSE l.events[i] END
                                    FROM generate_subscripts(l.events, 1) i ORDER BY i),
                   open = l.open - cardinality(pos)
             WHERE x.id = l.id;
        END IF;
        acked := acked + cardinality(pos);
    END LOOP;
    RETURN acked;
END $$;
COMMENT ON FUNCTION lowcode.ack_events(text, bigint[]) IS 'Acknowledge deliveries (the ids poll_events returned) a consumer has processed; returns how many were in flight. Acking twice, or a delivery whose lease ended, counts 0.';

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
    dead   boolean;
BEGIN
    IF consumer IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'lowcode: nack_event: arguments "consumer" and "id" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    c := lowcode.consumer_for(consumer, 'nack events');
    SELECT * INTO l FROM lowcode.leases x WHERE x.id = nack_event.id / 65536 AND x.consumer = c.name FOR UPDATE;
    IF NOT FOUND OR p < 1 OR p > cardinality(l.events) OR l.events[p] IS NULL THEN
        RAISE EXCEPTION 'lowcode: delivery % is not in flight for consumer "%"', id, consumer
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'nack the id poll_events returned, before its visibility timeout ends';
    END IF;
    ev := l.events[p];
    tried := l.attempts[p];
    dead := tried >= c.max_attempts;
    INSERT INTO lowcode.deliveries AS d (consumer, event_id, status, attempt, visible_at, last_error)
    VALUES (c.name, ev, CASE WHEN dead THEN 'dead' ELSE 'pending' END, tried,
            now() + coalesce(retry_after,
                             CASE WHEN cardinality(c.backoff) > 0 THEN c.backoff[least(tried, cardinality(c.backoff))]
                                  ELSE least(interval '1 second' * power(2, tried - 1), interval '1 hour') END),
            error)
    ON CONFLICT ON CONSTRAINT deliveries_pkey DO UPDATE
       SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, visible_at = EXCLUDED.visible_at,
           last_error = EXCLUDED.last_error, lease_id = NULL;
    IF l.open = 1 THEN
        DELETE FROM lowcode.leases x WHERE x.id = l.id;
    ELSE
        UPDATE lowcode.leases x SET events[p] = NULL, open = l.open - 1 WHERE x.id = l.id;
    END IF;
    RETURN CASE WHEN dead THEN 'dead' ELSE 'retry' END;
END $$;
COMMENT ON FUNCTION lowcode.nack_event(text, bigint, text, interval) IS 'Report a failed delivery (the id poll_events returned): retried after retry_after or the consumer''s backoff; after its max_attempts it becomes a dead letter with this error. Returns retry or dead.';

CREATE OR REPLACE FUNCTION lowcode.replay_dead_letters(topic text, consumer text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    replayed int;
BEGIN
    IF consumer IS NULL THEN
        PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'replay dead letters of every consumer');
    ELSE
        PERFORM lowcode.consumer_for(consumer, 'replay dead letters');
    END IF;
    UPDATE lowcode.deliveries d SET status = 'pending', attempt = 0, visible_at = now(), lease_id = NULL
      FROM lowcode.events e
     WHERE e.id = d.event_id AND d.status = 'dead' AND e.topic = topic
       AND (consumer IS NULL OR d.consumer = consumer);
    GET DIAGNOSTICS replayed = ROW_COUNT;
    RETURN replayed;
END $$;
COMMENT ON FUNCTION lowcode.replay_dead_letters(text, text) IS 'Put a topic''s dead letters (of one consumer, or of all: administrators) back in the queue with fresh attempts; returns how many.';

CREATE FUNCTION lowcode.consumer_lag(consumer text)
RETURNS TABLE (name text, app text, topics text[], lag_events bigint, lag_seconds double precision,
               in_flight bigint, retrying bigint, dead bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    c lowcode.consumers;
BEGIN
    SELECT * INTO c FROM lowcode.consumers x WHERE x.name = consumer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown consumer "%"', consumer USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT (lowcode.is_admin() OR (c.app IS NOT NULL AND lowcode.may(c.app, 'consume'))) THEN
        PERFORM lowcode.refuse(c.app, 'consume', format('see the lag of consumer %s', consumer));
    END IF;
    RETURN QUERY
    SELECT c.name, c.app, c.topics, count(*), extract(epoch FROM clock_timestamp() - min(e.created_at))::double precision,
           (SELECT coalesce(sum(l.open), 0)::bigint FROM lowcode.leases l WHERE l.consumer = c.name),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.consumer = c.name AND d.status = 'pending'),
           (SELECT count(*) FROM lowcode.deliveries d WHERE d.consumer = c.name AND d.status = 'dead')
      FROM lowcode.events e
     WHERE e.txid >= pg_snapshot_xmin(c.batch_from)
       AND NOT pg_visible_in_snapshot(e.txid, c.batch_from)
       AND NOT (pg_visible_in_snapshot(e.txid, c.batch_to) AND (e.txid, e.id) <= (c.pos_txid, c.pos_id))
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
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'purge events');
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
COMMENT ON FUNCTION lowcode.purge_events(interval) IS 'Delete events older than older_than that every consumer has passed; events in flight, retried or dead stay. Returns how many.';

CREATE FUNCTION lowcode.signal_events() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    newest  bigint;
    before  bigint;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'signal events');
    SELECT max(e.id) INTO newest FROM lowcode.events e;
    SELECT s.last_event INTO before FROM lowcode.outbox_signal s FOR UPDATE SKIP LOCKED;
    IF NOT FOUND OR newest IS NULL OR newest <= before THEN
        RETURN 0;
    END IF;
    UPDATE lowcode.outbox_signal s SET last_event = newest, signalled_at = now();
    PERFORM pg_notify('lowcode_events', newest::text);
    RETURN newest - before;
END $$;
COMMENT ON FUNCTION lowcode.signal_events() IS 'NOTIFY lowcode_events (payload: the newest event id) when events were committed since the last signal; returns how many. Called by a ticker in its own transaction, never by writers.';

CREATE FUNCTION lowcode.acting_as(app text, label text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF lowcode.is_admin() OR (app IS NOT NULL AND lowcode.may(app, 'act_as')) THEN
        RETURN label;
    END IF;
    RAISE EXCEPTION 'lowcode: app "%": role "%" may not act as "%" (lowcode.actor)', coalesce(app, '(none)'), lowcode.invoker_name(), label
        USING ERRCODE = 'insufficient_privilege',
              HINT = CASE WHEN app IS NULL
                          THEN 'outside an app, lowcode.actor is honoured for lowcode administrators only; RESET lowcode.actor to act as yourself'
                          ELSE format('lowcode.actor is honoured for roles granted act_as in app %s (SELECT lowcode.grant(%L, %L, ARRAY[''act_as''])); RESET lowcode.actor to act as yourself',
                                      app, app, lowcode.invoker_name()) END;
END $$;
COMMENT ON FUNCTION lowcode.acting_as(text, text) IS 'Internal: label, when the invoker may act for others in app (act_as there, or a lowcode administrator); else raises insufficient_privilege.';

CREATE FUNCTION lowcode.actor(app text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN coalesce(pg_catalog.current_setting('lowcode.actor', true), '')
                     OPERATOR(pg_catalog.=) ANY (ARRAY['', lowcode.invoker_name()])
                THEN lowcode.invoker_name()
                ELSE lowcode.acting_as($1, pg_catalog.current_setting('lowcode.actor', true)) END
$$;
COMMENT ON FUNCTION lowcode.actor(text) IS 'Who is acting in app: the lowcode.actor setting (SET LOCAL lowcode.actor = ''alice'' per request, honoured for roles granted act_as in that app and for lowcode administrators) or else the invoking role.';

CREATE OR REPLACE FUNCTION lowcode.actor() RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT lowcode.actor(NULL) $$;
COMMENT ON FUNCTION lowcode.actor() IS 'Who is acting outside any one app: the lowcode.actor setting for lowcode administrators, else the invoking role.';

CREATE FUNCTION lowcode.keep_hidden(r lowcode.records, input jsonb, doing text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    hide  text[] := lowcode.hidden(r.app, r.form);
    bad   text;
    kept  jsonb;
BEGIN
    IF cardinality(hide) = 0 THEN
        RETURN input;
    END IF;
    IF jsonb_typeof(input) = 'object' THEN
        SELECT k INTO bad FROM jsonb_object_keys(input) k WHERE k = ANY (hide) ORDER BY k LIMIT 1;
    ELSIF jsonb_typeof(r.data) = 'object' THEN
        -- Replacing the object with something else would remove the hidden fields.
        SELECT k INTO bad FROM jsonb_object_keys(r.data) k WHERE k = ANY (hide) ORDER BY k LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: app "%": form "%": field "%" is hidden from role "%", which may not set or remove it (%)',
                        r.app, r.form, bad, lowcode.invoker_name(), doing
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'leave hidden fields out of the data: their stored values are kept';
    END IF;
    IF jsonb_typeof(r.data) <> 'object' OR jsonb_typeof(input) <> 'object' THEN
        RETURN input;
    END IF;
    SELECT jsonb_object_agg(d.key, d.value) INTO kept FROM jsonb_each(r.data) d WHERE d.key = ANY (hide);
    RETURN input || coalesce(kept, '{}');
END $$;
COMMENT ON FUNCTION lowcode.keep_hidden(lowcode.records, jsonb, text) IS 'Internal: the data a write by the invoker stores: input with the stored values of the fields hidden from the invoker put back; refuses (42501, naming the field) input that sets or removes a hidden field.';

CREATE OR REPLACE FUNCTION lowcode.grant(app text, role text, privileges text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    known  text[] := ARRAY['submit', 'read_own', 'read_all', 'update_own', 'update_all',
                           'delete', 'claim', 'decide', 'act_as', 'admin', 'consume'];
    bad    text;
BEGIN
    PERFORM lowcode.check_role(app, role);
    SELECT p INTO bad FROM unnest(privileges) p WHERE p IS NULL OR p <> ALL (known) LIMIT 1;
    IF FOUND OR privileges IS NULL THEN
        RAISE EXCEPTION 'lowcode: app "%": unknown privilege %', app, coalesce(quote_literal(bad), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'privileges: ' || array_to_string(known, ', ');
    END IF;
    INSERT INTO lowcode.grants (app, role, privilege, granted_by)
    SELECT app, role, p, lowcode.actor(app) FROM unnest(privileges) p
    ON CONFLICT DO NOTHING;
    RETURN lowcode.privileges_of(app, role);
END $$;
COMMENT ON FUNCTION lowcode.grant(text, text, text[]) IS 'Give a PostgreSQL role (and its members) privileges in an app: submit, read_own, read_all, update_own, update_all, delete, claim, decide, act_as, consume, admin. Returns the role''s privileges in the app.';

CREATE OR REPLACE FUNCTION lowcode.export_app(app text, options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    a        lowcode.apps;
    all_versions boolean := coalesce(options ->> 'versions', 'current') = 'all';
    forms    jsonb;
    refs     text[];
BEGIN
    SELECT * INTO a FROM lowcode.apps x WHERE x.name = app;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown app "%"', app USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.check_options('export_app', options, ARRAY['versions']);
    IF coalesce(options ->> 'versions', 'current') NOT IN ('current', 'all') THEN
        RAISE EXCEPTION 'lowcode: export_app: "versions" must be "current" or "all", not "%"', options ->> 'versions'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(
             jsonb_build_object('name', f.name, 'title', f.title, 'schema', v.schema, 'workflow', w.definition)
             || CASE WHEN all_versions THEN jsonb_build_object('versions',
                    (SELECT jsonb_agg(jsonb_build_object('version', x.version, 'schema', x.schema) ORDER BY x.version)
                       FROM lowcode.form_versions x WHERE x.app = f.app AND x.form = f.name))
                ELSE '{}' END
             ORDER BY f.name), '[]')
      INTO forms
      FROM lowcode.forms f
      JOIN lowcode.form_versions v ON v.id = f.current_version_id
      LEFT JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
     WHERE f.app = app;
    -- Registered schemas the forms use: those each version keeps a copy of (every one its
    -- $refs reach, also by relative URI or $id), those named in the schemas of versions from
    -- before such copies were kept, and the registered schemas those name in turn.
    WITH RECURSIVE used(uri) AS (
        SELECT s.uri FROM lowcode.schemas s
         WHERE EXISTS (SELECT FROM lowcode.form_versions x
                        WHERE x.app = app
                          AND (position(s.uri IN x.schema::text) > 0
                               OR (x.bundled ? '$lowcode:bundle' AND jsonb_typeof(x.bundled -> 'resources') = 'object'
                                   AND x.bundled -> 'resources' ? s.uri))
                          AND (all_versions OR x.id IN (SELECT y.current_version_id FROM lowcode.forms y WHERE y.app = app)))
        UNION
        SELECT s2.uri FROM used u
          JOIN lowcode.schemas s1 ON s1.uri = u.uri
          JOIN lowcode.schemas s2 ON position(s2.uri IN s1.schema::text) > 0
    )
    SELECT array_agg(DISTINCT used.uri ORDER BY used.uri) INTO refs FROM used;
    RETURN jsonb_build_object(
        'lowcode', lowcode.definition_format(),
        'app', a.name,
        'title', a.title,
        'forms', forms,
        'schemas', coalesce((SELECT jsonb_agg(jsonb_build_object('uri', s.uri, 'schema', s.schema) ORDER BY s.uri)
                               FROM lowcode.schemas s WHERE s.uri = ANY (refs)), '[]'));
END $$;
COMMENT ON FUNCTION lowcode.export_app(text, jsonb) IS 'The app as a JSON definition: forms (current schema, or every version with {"versions": "all"}), workflows and the registered schemas they reference. Deterministic: the same app exports byte-identical JSON (jsonb_pretty it for git).';

CREATE OR REPLACE FUNCTION lowcode.import_app(definition jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    app      text := definition ->> 'app';
    format   int;
    summary  jsonb := '[]';
    f        jsonb;
    v        jsonb;
    s        jsonb;
    before   int;
    after    int;
    dry      boolean := coalesce((options ->> 'dry_run')::boolean, false);
    pending  jsonb;
    pos      bigint;
    retries  int := 0;
    wf_before  jsonb;
    stranded   jsonb;
BEGIN
    PERFORM lowcode.check_options('import_app', options, ARRAY['dry_run']);
    IF definition IS NULL OR jsonb_typeof(definition) <> 'object' OR app IS NULL THEN
        RAISE EXCEPTION 'lowcode: import_app: the definition must be an object made by lowcode.export_app'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    format := CASE WHEN jsonb_typeof(definition -> 'lowcode') = 'number' THEN (definition ->> 'lowcode')::numeric::int END;
    IF format IS NULL THEN
        RAISE EXCEPTION 'lowcode: import_app: the definition has no "lowcode" format version'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF format > lowcode.definition_format() THEN
        RAISE EXCEPTION 'lowcode: import_app: definition format % is newer than this lowcode understands (%)', format, lowcode.definition_format()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'upgrade lowcode (ALTER EXTENSION lowcode UPDATE) on this database first';
    END IF;
    BEGIN
        IF NOT EXISTS (SELECT FROM lowcode.apps a WHERE a.name = app) THEN
            PERFORM lowcode.create_app(app, coalesce(definition ->> 'title', ''));
            summary := summary || jsonb_build_object('kind', 'app', 'name', app, 'change', 'created');
        ELSE
            UPDATE lowcode.apps a SET title = coalesce(definition ->> 'title', '')
             WHERE a.name = app AND a.title IS DISTINCT FROM coalesce(definition ->> 'title', '');
            IF FOUND THEN
                summary := summary || jsonb_build_object('kind', 'app', 'name', app, 'change', 'retitled');
            END IF;
        END IF;
        pending := coalesce(definition -> 'schemas', '[]');
        WHILE jsonb_array_length(pending) > 0 LOOP
            -- A schema may reference another one: register those that reference no other
            -- pending schema first (else the first one left, which raises a clear error).
            SELECT e.x, e.i INTO s, pos FROM jsonb_array_elements(pending) WITH ORDINALITY AS e(x, i)
             WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(pending) y
                                WHERE y ->> 'uri' IS DISTINCT FROM e.x ->> 'uri'
                                  AND position(y ->> 'uri' IN (e.x -> 'schema')::text) > 0)
             ORDER BY e.i LIMIT 1;
            IF NOT FOUND THEN
                s := pending -> 0;
                pos := 1;
            END IF;
            pending := pending - (pos - 1)::int;
            IF NOT EXISTS (SELECT FROM lowcode.schemas y WHERE y.uri = s ->> 'uri') THEN
                -- A schema whose $refs name another pending one only relatively (or through
                -- its $id) cannot be registered before it: try it again after the others.
                IF retries < jsonb_array_length(pending) THEN
                    BEGIN
                        PERFORM lowcode.register_schema(s ->> 'uri', s -> 'schema');
                    EXCEPTION WHEN invalid_parameter_value THEN
                        pending := pending || jsonb_build_array(s);
                        retries := retries + 1;
                        CONTINUE;
                    END;
                ELSE
                    PERFORM lowcode.register_schema(s ->> 'uri', s -> 'schema');   -- its clear error
                END IF;
                retries := 0;
                summary := summary || jsonb_build_object('kind', 'registered_schema', 'name', s ->> 'uri', 'change', 'registered');
            ELSE
                PERFORM lowcode.register_schema(s ->> 'uri', s -> 'schema');   -- identical, or a clear error
            END IF;
        END LOOP;
        FOR f IN SELECT x FROM jsonb_array_elements(coalesce(definition -> 'forms', '[]')) x LOOP
            SELECT v2.version INTO before FROM lowcode.forms y JOIN lowcode.form_versions v2 ON v2.id = y.current_version_id
             WHERE y.app = app AND y.name = f ->> 'name';
            IF f ? 'versions' THEN
                -- Replay the history a new form had; for an existing form, only the versions
                -- that come after its current schema in that history (none if it is not in it).
                FOR v IN SELECT x FROM jsonb_array_elements(f -> 'versions') x
                          WHERE before IS NULL
                             OR (x ->> 'version')::int > (
                                  SELECT max((y ->> 'version')::int) FROM jsonb_array_elements(f -> 'versions') y
                                   WHERE y -> 'schema' = (SELECT v2.schema FROM lowcode.forms z
                                                            JOIN lowcode.form_versions v2 ON v2.id = z.current_version_id
                                                           WHERE z.app = app AND z.name = f ->> 'name'))
                          ORDER BY (x ->> 'version')::int LOOP
                    IF NOT EXISTS (SELECT FROM lowcode.form_versions y WHERE y.app = app AND y.form = f ->> 'name'
                                                                          AND y.schema = v -> 'schema') THEN
                        after := lowcode.define_form(app, f ->> 'name', v -> 'schema');
                    END IF;
                END LOOP;
            END IF;
            after := lowcode.define_form(app, f ->> 'name', f -> 'schema');
            IF before IS DISTINCT FROM after THEN
                summary := summary || jsonb_build_object('kind', 'form', 'name', f ->> 'name',
                    'change', CASE WHEN before IS NULL THEN 'created' ELSE 'new version' END, 'version', after);
            END IF;
            UPDATE lowcode.forms y SET title = coalesce(f ->> 'title', '') WHERE y.app = app AND y.name = f ->> 'name'
               AND y.title IS DISTINCT FROM coalesce(f ->> 'title', '');
            IF FOUND AND before IS NOT NULL THEN
                summary := summary || jsonb_build_object('kind', 'form', 'name', f ->> 'name', 'change', 'retitled');
            END IF;
            IF jsonb_typeof(f -> 'workflow') = 'object' THEN
                SELECT w.version, w.definition INTO before, wf_before
                  FROM lowcode.forms y JOIN lowcode.workflow_versions w ON w.id = y.workflow_version_id
                 WHERE y.app = app AND y.name = f ->> 'name';
                -- A new workflow must not strand records in states it lacks: moving them is a
                -- migration (apply_migration with options.workflow and a state_map).
                IF wf_before IS DISTINCT FROM f -> 'workflow' AND jsonb_typeof(f #> '{workflow,states}') = 'object' THEN
                    SELECT jsonb_object_agg(r.state, r.n) INTO stranded
                      FROM (SELECT x.state, count(*) AS n FROM lowcode.records x
                             WHERE x.app = app AND x.form = f ->> 'name' GROUP BY x.state) r
                     WHERE NOT (f #> '{workflow,states}') ? r.state;
                    IF stranded IS NOT NULL THEN
                        RAISE EXCEPTION 'lowcode: %.%: records are in states the new workflow lacks', app, f ->> 'name'
                            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = stranded::text,
                                  HINT = format('move them first with lowcode.apply_migration(%L, %L, <schema>, NULL, ''{"workflow": <the new workflow>, "state_map": {"old_state": "new_state"}}'')',
                                                app, f ->> 'name');
                    END IF;
                END IF;
                after := lowcode.define_workflow(app, f ->> 'name', f -> 'workflow');
                IF before IS DISTINCT FROM after THEN
                    summary := summary || jsonb_build_object('kind', 'workflow', 'name', f ->> 'name',
                        'change', CASE WHEN before IS NULL THEN 'created' ELSE 'new version' END, 'version', after);
                END IF;
            END IF;
        END LOOP;
        -- Typed views of an app that has them follow its forms (a dry run tries this too).
        IF jsonb_array_length(summary) > 0 AND to_regnamespace(app) IS NOT NULL THEN
            PERFORM lowcode.publish(app);
        END IF;
        IF dry THEN
            -- Undo everything: a dry run only reports.
            RAISE EXCEPTION USING ERRCODE = 'LC001', MESSAGE = summary::text;
        END IF;
    EXCEPTION WHEN SQLSTATE 'LC001' THEN
        summary := SQLERRM::jsonb;
    END;
    RETURN jsonb_build_object('app', app, 'dry_run', dry, 'changed', jsonb_array_length(summary) > 0, 'changes', summary);
END $$;
COMMENT ON FUNCTION lowcode.import_app(jsonb, jsonb) IS 'Create the app or bring it to the definition (from export_app): publishes new form / workflow versions only where something changed (titles too), never deletes anything, and refuses a workflow that lacks states records are in (move them with apply_migration); re-publishes the typed views of an app that has them; idempotent. {"dry_run": true} reports the changes and makes none. Returns {"changed", "changes": [...]}.';

-- act_as is checked in the app being written: acting_as takes the app.
DROP FUNCTION lowcode.acting_as(text);

-- ---------------------------------------------------------------- outbox views
CREATE VIEW lowcode.outbox_retention AS
SELECT e.id AS oldest_event, e.created_at AS oldest_created_at,
       CASE WHEN EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id AND d.status = 'dead')
                 THEN 'a dead letter of ' || (SELECT string_agg(d.consumer, ', ' ORDER BY d.consumer) FROM lowcode.deliveries d WHERE d.event_id = e.id)
            WHEN EXISTS (SELECT FROM lowcode.deliveries d WHERE d.event_id = e.id)
                 THEN 'retried by ' || (SELECT string_agg(d.consumer, ', ' ORDER BY d.consumer) FROM lowcode.deliveries d WHERE d.event_id = e.id)
            WHEN EXISTS (SELECT FROM lowcode.leases l WHERE e.id = ANY (l.events))
                 THEN 'in flight for ' || (SELECT string_agg(DISTINCT l.consumer, ', ') FROM lowcode.leases l WHERE e.id = ANY (l.events))
            WHEN EXISTS (SELECT FROM lowcode.consumers c WHERE e.txid >= c.cursor_xid)
                 THEN 'not yet passed by ' || (SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM lowcode.consumers c WHERE e.txid >= c.cursor_xid)
            ELSE 'passed by every consumer: purge_events deletes it once it is old enough' END AS kept_because
  FROM (SELECT * FROM lowcode.events ORDER BY id LIMIT 1) e;
COMMENT ON VIEW lowcode.outbox_retention IS 'The oldest event the outbox keeps, and why: a dead letter, a retry, in flight, a consumer that has not passed it, or only its age.';
CREATE VIEW lowcode.consumer_status AS
SELECT l.* FROM lowcode.consumers c, LATERAL lowcode.consumer_lag(c.name) l
 WHERE lowcode.is_admin() OR (c.app IS NOT NULL AND lowcode.may(c.app, 'consume'));
COMMENT ON VIEW lowcode.consumer_status IS 'lowcode.consumer_lag of every consumer the reader may consume.';
GRANT SELECT ON lowcode.consumer_status TO PUBLIC;

-- ---------------------------------------------------------------- the background worker and webhooks (sql/worker.sql, all new)
CREATE FUNCTION lowcode.webhook_check(
	"url" TEXT, /* & str */
	"secret" TEXT /* & str */
) RETURNS void
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'webhook_check_wrapper';

CREATE FUNCTION lowcode.worker_preloaded() RETURNS bool /* bool */
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_preloaded_wrapper';

CREATE FUNCTION lowcode.worker_processes() RETURNS TABLE (
	"pid" INT,  /* i32 */
	"database" TEXT,  /* Option < String > */
	"kind" TEXT  /* String */
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_processes_wrapper';

-- The background worker (src/worker.rs): with shared_preload_libraries = 'lowcode', a
-- launcher starts one worker per database that has lowcode; it fires timers on time and
-- delivers events to webhooks. Without it everything works as before (run_due_timers from a
-- scheduler), and lowcode.worker_status() says the worker is off and why.

COMMENT ON FUNCTION lowcode.worker_preloaded() IS 'Internal: is lowcode in shared_preload_libraries, so that its background worker runs?';
COMMENT ON FUNCTION lowcode.worker_processes() IS 'Internal: lowcode''s background processes running now (pid, database, lowcode launcher or lowcode worker), whoever started them.';
COMMENT ON FUNCTION lowcode.webhook_check(text, text) IS 'Internal: raises unless url is an http(s) URL that lowcode.webhook_allow allows and secret a whsec_ secret (never shown in the error).';

CREATE TABLE lowcode.worker_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pid            int,
    acting_as      name,
    started_at     timestamptz,
    last_timer_run timestamptz,
    timers_fired   bigint NOT NULL DEFAULT 0,
    last_error     text,
    last_error_at  timestamptz
);
COMMENT ON TABLE lowcode.worker_state IS 'What this database''s lowcode worker last did (one row, written by the worker): its pid, the role it acts as (the extension''s owner), when it started, its last timer run and the timers it fired since, its last error. Not dumped: it describes a running process.';

CREATE FUNCTION lowcode.worker_status()
RETURNS TABLE (database name, state text, pid int, acting_as name, started_at timestamptz, last_timer_run timestamptz,
               timers_fired bigint, last_error text, last_error_at timestamptz, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted   text := coalesce(current_setting('lowcode.worker_databases', true), '');
    launcher int;
    mine     boolean := false;
    w        record;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read the worker''s status');
    IF NOT lowcode.worker_preloaded() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'lowcode is not in shared_preload_libraries: timers fire only when something calls lowcode.run_due_timers(), and webhooks are not delivered'::text;
        RETURN;
    END IF;
    SELECT p.pid INTO launcher FROM lowcode.worker_processes() p WHERE p.kind = 'lowcode launcher' LIMIT 1;
    IF launcher IS NULL THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'the lowcode launcher is not running (starting, restarting after a crash, or out of max_worker_processes: see the server log)'::text;
        RETURN;
    END IF;
    FOR w IN SELECT p.database AS datname, p.pid FROM lowcode.worker_processes() p
              WHERE p.kind = 'lowcode worker' ORDER BY p.database LOOP
        IF w.datname = current_database() THEN
            mine := true;
            RETURN QUERY SELECT w.datname::name, 'on'::text, w.pid, s.acting_as, s.started_at, s.last_timer_run, s.timers_fired,
                                s.last_error, s.last_error_at, format('launcher pid %s', launcher)
                           FROM (SELECT 1) one LEFT JOIN lowcode.worker_state s ON s.pid = w.pid;
        ELSE
            RETURN QUERY SELECT w.datname::name, 'on'::text, w.pid, NULL::name, NULL::timestamptz, NULL::timestamptz, NULL::bigint,
                                NULL::text, NULL::timestamptz, 'details only from that database'::text;
        END IF;
    END LOOP;
    IF NOT mine THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, s.started_at, s.last_timer_run, s.timers_fired,
                            s.last_error, s.last_error_at,
                            CASE WHEN wanted <> '' AND NOT current_database() = ANY (string_to_array(replace(wanted, ' ', ''), ','))
                                 THEN format('this database is not in lowcode.worker_databases (%s)', wanted)
                                 WHEN (SELECT count(*) FROM lowcode.worker_processes() p WHERE p.kind = 'lowcode worker')
                                      >= current_setting('lowcode.worker_max')::int
                                 THEN format('lowcode.worker_max (%s) workers already run for other databases', current_setting('lowcode.worker_max'))
                                 ELSE format('no worker yet: the launcher (pid %s) starts one within lowcode.launcher_naptime (%s); see the server log if it does not',
                                             launcher, current_setting('lowcode.launcher_naptime')) END
                       FROM (SELECT 1) one LEFT JOIN lowcode.worker_state s ON true;
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.worker_status() IS 'lowcode''s background worker (lowcode administrators): one row per database it serves (on, pid; for this database also the role it acts as, its last timer run, timers fired and last error), or off for this database and why (not preloaded, launcher not running, not in lowcode.worker_databases, lowcode.worker_max reached).';

-- ---------------------------------------------------------------- webhooks
-- Each webhook is an outbox consumer named webhook:<name>: the worker POSTs its events, signed
-- as Standard Webhooks says, in order, at least once (src/webhook_delivery.rs).

CREATE TABLE lowcode.webhooks (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    url             text NOT NULL,
    topics          text[],
    secret          text NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    timeout_ms      int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 300000),
    max_attempts    int NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 100),
    backoff         interval[],
    rate_limit      int CHECK (rate_limit > 0),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'disabled')),
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lowcode.webhooks IS 'Webhooks (lowcode.create_webhook): where the worker POSTs the events of their topics (NULL: all), signed with secret; headers, timeout_ms, max_attempts before a dead letter, backoff (NULL: 1 s, 2 s, 4 s ... jittered), rate_limit per second; status active, paused or disabled (410 Gone). The secret and headers are readable by lowcode administrators only.';
REVOKE ALL ON lowcode.webhooks FROM PUBLIC;

CREATE TABLE lowcode.webhook_attempts (
    id            bigserial PRIMARY KEY,
    webhook       text NOT NULL REFERENCES lowcode.webhooks (name) ON DELETE CASCADE,
    event_id      bigint NOT NULL,
    attempt       int NOT NULL,
    attempted_at  timestamptz NOT NULL,
    status_code   int,
    latency_ms    float8 NOT NULL,
    error         text,
    outcome       text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead', 'gone')),
    next_try      timestamptz
);
CREATE INDEX webhook_attempts_webhook_idx ON lowcode.webhook_attempts (webhook, id);
COMMENT ON TABLE lowcode.webhook_attempts IS 'Every webhook delivery attempt: the event, its HTTP status (NULL: no answer), latency, error, outcome (delivered, retry, dead, gone) and next try.';

-- The outbox layer: the only SQL here that knows how consumers are made and dropped.
CREATE FUNCTION lowcode.webhook_consumer(name text, app text, topics text[], max_attempts int, making boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF making THEN
        PERFORM lowcode.create_consumer('webhook:' || name,
                                        jsonb_strip_nulls(jsonb_build_object('app', app, 'topics', topics, 'max_attempts', max_attempts, 'from', 'now')));
    ELSE
        PERFORM lowcode.drop_consumer('webhook:' || name);
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.webhook_consumer(text, text, text[], int, boolean) IS 'Internal: creates (from now on; of one app, or NULL: every app) or drops the outbox consumer webhook:<name> of a webhook.';

CREATE FUNCTION lowcode.create_webhook(name text, url text, topics text[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o       jsonb := coalesce(options, '{}');
    secret  text;
    unknown text;
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
    -- (Checked here, not by the table's CHECK alone: a failing row would be logged with its secret.)
    IF NOT coalesce((o->>'max_attempts')::int BETWEEN 1 AND 100, true) THEN
        RAISE EXCEPTION 'lowcode: webhook %: max_attempts must be between 1 and 100, not %', name, o->>'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lowcode.webhooks (name, url, topics, secret, headers, timeout_ms, max_attempts, backoff, rate_limit)
    VALUES (name, url, topics, secret, coalesce(o->'headers', '{}'),
            coalesce((extract(epoch FROM (o->>'timeout')::interval) * 1000)::int, 10000),
            coalesce((o->>'max_attempts')::int, 8),
            (SELECT array_agg(b::interval ORDER BY i) FROM jsonb_array_elements_text(o->'backoff') WITH ORDINALITY x(b, i)),
            (o->>'rate_limit')::int);
    PERFORM lowcode.webhook_consumer(name, o->>'app', topics, coalesce((o->>'max_attempts')::int, 8), true);
    RETURN secret;
END $$;
COMMENT ON FUNCTION lowcode.create_webhook(text, text, text[], jsonb) IS 'Create a webhook (lowcode administrators): the worker POSTs every event of topics (exact or prefix.*; NULL: all) from now on to url, which lowcode.webhook_allow must allow. options: app (only that app''s events; default every app), secret (whsec_...; default a new one), headers (object), timeout (interval, default 10 s), max_attempts (default 8), backoff (array of intervals), rate_limit (per second). Returns the secret: the only time it is shown.';

CREATE FUNCTION lowcode.drop_webhook(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'drop webhooks');
    DELETE FROM lowcode.webhooks w WHERE w.name = name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM lowcode.webhook_consumer(name, NULL, NULL, NULL, false);
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_webhook(text) IS 'Drop a webhook, its consumer and its attempts (lowcode administrators); false if there was none.';

CREATE FUNCTION lowcode.pause_webhook(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'pause webhooks');
    UPDATE lowcode.webhooks w SET status = 'paused' WHERE w.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: webhook "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.pause_webhook(text) IS 'Stop sending to a webhook (lowcode administrators); its events wait in the outbox.';

CREATE FUNCTION lowcode.resume_webhook(name text) RETURNS void
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

CREATE FUNCTION lowcode.webhook_deliveries(name text, max int DEFAULT 100)
RETURNS TABLE (event_id bigint, attempt int, attempted_at timestamptz, status_code int, latency_ms float8,
               error text, outcome text, next_try timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read webhook deliveries');
    RETURN QUERY
    SELECT a.event_id, a.attempt, a.attempted_at, a.status_code, a.latency_ms, a.error, a.outcome, a.next_try
      FROM lowcode.webhook_attempts a WHERE a.webhook = name ORDER BY a.id DESC LIMIT max;
END $$;
COMMENT ON FUNCTION lowcode.webhook_deliveries(text, int) IS 'The latest delivery attempts of a webhook, newest first (lowcode administrators): event, attempt, HTTP status, latency, error, outcome and next try.';

-- ---------------------------------------------------------------- comments of the Rust functions
COMMENT ON FUNCTION lowcode.claim_task(text, text) IS 'Claim the oldest open task of a pool (or of a role you are a member of) for worker (default: the actor; claiming for someone else needs act_as in the task''s app). First claim wins; never blocks on tasks other claimers hold; NULL when nothing is claimable.';
COMMENT ON FUNCTION lowcode.fire_timers(bigint[]) IS 'Internal: fires timers that run_due_timers has marked fired, in due order: a timer_fired history row, then the rules of its event; nothing for a deadline whose task is closed; cancelled when the record has left the timer''s state meanwhile.';
COMMENT ON FUNCTION lowcode.view_write() IS 'INSTEAD OF trigger of published views: INSERT submits, UPDATE applies the changed columns (lowcode.view_change), DELETE deletes the record.';
COMMENT ON FUNCTION lowcode.submit(text, text, jsonb) IS 'Submit data to a form: validated against the form''s current version (SQLSTATE 23514 with every issue as JSON in DETAIL when invalid), stored, recorded in history. Returns the record id.';
COMMENT ON FUNCTION lowcode.apps_where(text) IS 'The apps where the invoker holds privilege. Policies and typed views test app = ANY (ARRAY(SELECT lowcode.apps_where(...))), which PostgreSQL works out once per query, where lowcode.may_read would run for every row.';
COMMENT ON FUNCTION lowcode.replaying() IS 'True while pg_restore (or a session with SET lowcode.replay = on, as the extension owner) restores lowcode''s tables: triggers then keep rows exactly as dumped.';
COMMENT ON FUNCTION lowcode.refuse(text, text, text) IS 'Internal: raises insufficient_privilege (42501), naming the app, the role, what it tried and the privilege that would allow it.';
COMMENT ON FUNCTION lowcode.authorize(text, text, text) IS 'Internal: raises insufficient_privilege (42501) unless the invoker holds privilege in app (''lowcode_admin'': is a lowcode administrator).';
COMMENT ON FUNCTION lowcode.may(text, text) IS 'True when the invoker holds privilege in app (directly, through a role it is a member of, or as the app''s admin), or is a lowcode administrator.';
COMMENT ON FUNCTION lowcode.is_admin() IS 'True for lowcode administrators: superusers and members of the role that owns the extension.';
COMMENT ON FUNCTION lowcode.emit(text, jsonb, bigint) IS 'Internal: writes an outbox event (rules do, through the emit action), with the app of its record.';
COMMENT ON FUNCTION lowcode.fire(bigint, text, jsonb) IS 'Internal: runs the rules of the record''s workflow that listen to event (and whose when / outcome match), in definition order. Cascades are bounded by lowcode.max_cascade (default 32).';
COMMENT ON FUNCTION lowcode.log(bigint, text, jsonb) IS 'Internal: adds a history row for a task action, approval decision, timer firing or rule action.';
COMMENT ON FUNCTION lowcode.records_after() IS 'Trigger: writes the one history row of every insert, update and delete of lowcode.records, then runs the workflow for the write''s events (created, updated, left:<state>, entered:<state>), cancelling timers of a state the record leaves.';
COMMENT ON FUNCTION lowcode.records_before() IS 'Trigger: validates every insert and data change of lowcode.records against the form''s current version, keeps revision and the created/updated columns honest, and starts a record of a form with a workflow in its initial state.';
COMMENT ON FUNCTION lowcode.check_name(text, text) IS 'Internal: raises invalid_name unless name is a valid app or form name (lowercase letters, digits and _, up to 63 characters).';
COMMENT ON FUNCTION lowcode.compile_schema(text, jsonb) IS 'Internal: checks a JSON Schema against its draft''s meta-schema and bundles the registered schemas it references; returns {"bundled", "draft"}.';
COMMENT ON FUNCTION lowcode.view_columns(text, jsonb) IS 'Internal: the typed-view columns (name, SQL type, JSON type) of a form version''s top-level properties.';
COMMENT ON FUNCTION lowcode.forms_changed() IS 'Internal: tells every backend that form definitions changed, so validators are looked up again from their next statement.';
COMMENT ON FUNCTION lowcode.validate(text, text, jsonb) IS 'Every problem of data against the form''s current version: path (the instance location), keyword, message, and field (the JSON pointer of the field the message belongs to, e.g. the missing one for required); no rows when it is valid. Raises nothing for invalid data.';
COMMENT ON FUNCTION lowcode.check_registered_schema(text, jsonb) IS 'Internal: checks a schema to register as a form will reach it (its URI is its base URI; its $refs resolve among the registered schemas); raises about schema "<uri>" otherwise.';
COMMENT ON FUNCTION lowcode.is_valid(text, text, jsonb) IS 'Whether data is valid against the form''s current version.';
COMMENT ON FUNCTION lowcode.conforms(text, text, jsonb) IS 'Whether data is valid against the form''s current version, for CHECK constraints on your own tables (NULL data gives NULL, which CHECK accepts).';
COMMENT ON FUNCTION lowcode.conforms_to_version(bigint, jsonb) IS 'Whether data is valid against one published form version (lowcode.form_versions.id).';
COMMENT ON FUNCTION lowcode.check_record(text, text, jsonb) IS 'Internal: validates a record''s data against the form''s current version and returns that version''s id; raises check_violation (23514) with every issue as JSON in DETAIL.';
COMMENT ON FUNCTION lowcode.cache_stats() IS 'This backend''s compiled-validator cache: size, capacity, hits and misses.';
COMMENT ON FUNCTION lowcode.cache_clear() IS 'Empties this backend''s compiled-validator cache.';
COMMENT ON FUNCTION lowcode.check_workflow(text, jsonb) IS 'Internal: checks a workflow definition (format and meaning) and returns its initial state, final states and Mermaid diagram.';
COMMENT ON FUNCTION lowcode.matches(jsonb, jsonb) IS 'Internal: whether data matches a workflow condition (a JSON Schema).';
COMMENT ON FUNCTION lowcode.condition_issues(jsonb, jsonb) IS 'Internal: why data does not match a workflow condition, as JSON.';
COMMENT ON FUNCTION lowcode.diff_definitions(jsonb, jsonb) IS 'Internal: the changes between two app definitions (export_app format), each marked breaking or not.';
COMMENT ON FUNCTION lowcode.invoker() IS 'The role lowcode authorizes: the session''s role after SET ROLE, which stays the caller''s inside lowcode''s SECURITY DEFINER functions.';
COMMENT ON FUNCTION lowcode.grant_calls(bigint, text[], oid[]) IS 'Internal (define_workflow): records the function each call of a workflow version runs and that it runs as the role at the keyboard (never an argument).';
COMMENT ON FUNCTION lowcode.cause() IS 'Internal: the cause of the change being written (a transition, rule action, approval verdict or migration), held by the library for the transaction; NULL when none.';
COMMENT ON FUNCTION lowcode.with_cause(jsonb) IS 'Internal: sets the cause the next history rows record (NULL or JSON null: none) and returns the previous one (JSON null: none), to restore after. Undone with the subtransaction that set it.';
COMMENT ON FUNCTION lowcode.rule_chain() IS 'Internal: the workflow rules running now, outermost first, joined by '' → '' ('''' when none).';
COMMENT ON FUNCTION lowcode.set_rule_chain(text) IS 'Internal: sets the chain of running rules (cascade limit: lowcode.max_cascade) and returns the previous one.';

-- Typed views read every integer the schema accepts (1.0, 1e20): bigint through numeric,
-- and numeric where the schema does not bound it within bigint's range (views are made anew
-- by the next lowcode.publish).
CREATE OR REPLACE FUNCTION lowcode.publish(app text) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    f        record;
    c        record;
    columns  text;
    ncolumns int;
    views    int := 0;
    masked   text[];
    expr     text;
BEGIN
    PERFORM lowcode.check_name('app', app);
    PERFORM FROM lowcode.apps a WHERE a.name = app;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: unknown app "%"', app
            USING ERRCODE = 'undefined_object',
                  HINT = format('create it with lowcode.create_app(%L, ''a title'')', app);
    END IF;
    PERFORM lowcode.authorize(app, 'admin', 'publish');
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = app) THEN
        EXECUTE format('CREATE SCHEMA %I', app);
    END IF;
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', app,
                   format('Typed views of lowcode app %s (made by lowcode.publish)', app));
    -- Everyone may look; what each role sees and may change is decided per row by its app privileges.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', app);
    FOR f IN
        SELECT fo.name, v.version, v.bundled
          FROM lowcode.forms fo JOIN lowcode.form_versions v ON v.id = fo.current_version_id
         WHERE fo.app = app
         ORDER BY fo.name
    LOOP
        columns := '';
        ncolumns := 0;
        -- Fields hidden from some role are NULL for that role's members (computed once per query).
        masked := ARRAY(SELECT DISTINCT h.field FROM lowcode.hidden_fields h WHERE h.app = app AND h.form = f.name);
        FOR c IN SELECT * FROM lowcode.view_columns(app || '.' || f.name, f.bundled) LOOP
            ncolumns := ncolumns + 1;
            expr := CASE c.sql_type
                WHEN 'jsonb' THEN format('r.data -> %L', c.name)
                WHEN 'text' THEN format('r.data ->> %L', c.name)
                -- 1.0 and 1e2 are integers too: read through numeric.
                WHEN 'bigint' THEN format('CASE WHEN jsonb_typeof(r.data -> %L) = %L THEN ((r.data -> %L)::numeric)::bigint END',
                                          c.name, c.json_type, c.name)
                ELSE format('CASE WHEN jsonb_typeof(r.data -> %L) = %L THEN (r.data ->> %L)::%s END',
                            c.name, c.json_type, c.name, c.sql_type)
            END;
            IF c.name = ANY (masked) THEN
                expr := format('CASE WHEN (SELECT %L = ANY (lowcode.hidden(%L, %L))) THEN NULL ELSE %s END',
                               c.name, app, f.name, expr);
            END IF;
            columns := columns || ', ' || expr || format(' AS %I', c.name);
        END LOOP;
        -- A view has at most 1600 columns; 5 are its own (id, state, revision, created_at, updated_at).
        IF ncolumns > 1595 THEN
            RAISE EXCEPTION 'lowcode: %.%: % properties are too many for a typed view (at most 1595)', app, f.name, ncolumns
                USING ERRCODE = 'too_many_columns',
                      HINT = 'group properties into objects (they become jsonb columns), or read this form from lowcode.records';
        END IF;
        IF to_regclass(format('%I.%I', app, f.name)) IS NOT NULL THEN
            EXECUTE format('DROP VIEW %I.%I', app, f.name);  -- column types may have changed
        END IF;
        -- Rows by the reader's privileges, as the policy on lowcode.records has them.
        EXECUTE format(
            'CREATE VIEW %I.%I WITH (security_barrier) AS SELECT r.id%s, r.state, r.revision, r.created_at, r.updated_at '
            'FROM lowcode.records r WHERE r.app = %L AND r.form = %L '
            'AND (r.app = ANY (ARRAY(SELECT lowcode.apps_where(''read_all''))) '
                 'OR (r.owner = lowcode.invoker_name() AND r.app = ANY (ARRAY(SELECT lowcode.apps_where(''read_own'')))))',
            app, f.name, columns, app, f.name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO PUBLIC', app, f.name);
        EXECUTE format(
            'CREATE TRIGGER lowcode_write INSTEAD OF INSERT OR UPDATE OR DELETE ON %I.%I '
            'FOR EACH ROW EXECUTE FUNCTION lowcode.view_write(%L, %L)',
            app, f.name, app, f.name);
        EXECUTE format('COMMENT ON VIEW %I.%I IS %L', app, f.name,
            format('lowcode form %s.%s, version %s: typed columns; INSERT/UPDATE/DELETE validate like lowcode.submit',
                   app, f.name, f.version));
        views := views + 1;
    END LOOP;
    RETURN views;
END $$;

-- ---------------------------------------------------------------- hardening (sql/hardening.sql, in its order)

-- Every lowcode function written in SQL or PL/pgSQL runs with a fixed search_path, so a
-- function or operator that looks like a built-in (say evil.jsonb_build_object, or an
-- evil.|| for jsonb) in a schema ahead on the caller's search_path is never called by lowcode.
-- lowcode's own objects are always schema-qualified in its code. (Workflow `call` actions and
-- migration transforms are the user's own SQL: name functions there with their schema.)
-- Left out, on purpose:
--   - the privilege predicates that views and policies inline, and the outbox's topic filter
--     that polls inline (a function with a SET clause is never inlined); their bodies qualify
--     every function and operator (sql/privileges.sql, sql/events.sql);
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
                 'lowcode.topic_matches(text, text[])'::regprocedure,
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
-- The SECURITY DEFINER entry points written in Rust pin their search_path too (the loop above
-- pins the SQL and PL/pgSQL ones).
ALTER FUNCTION lowcode.submit(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.view_write() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claim_task(text, text) SET search_path = pg_catalog, pg_temp;

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
    -- 0.1.0 handed every SQL and PL/pgSQL function to the installing role; those that are not
    -- SECURITY DEFINER come back to the role that runs the extension's scripts.
    FOR o IN
        SELECT p.oid::regprocedure AS fn
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_proc'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'lowcode')
           AND d.deptype = 'e'
           AND NOT p.prosecdef
           AND p.proowner <> (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', o.fn, current_user);
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
    lowcode.submit(text, text, jsonb), lowcode.update_record(bigint, jsonb, int), lowcode.delete_record(bigint),
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
    lowcode.apps_where(text), lowcode.hidden(text, text),
    -- workflows
    lowcode.define_workflow(text, text, jsonb), lowcode.workflow_diagram(text, text),
    lowcode.transition(bigint, text, jsonb), lowcode.claim_task(text, text),
    lowcode.complete_task(bigint, text, jsonb), lowcode.release_task(bigint), lowcode.reassign_task(bigint, text),
    lowcode.decide(bigint, text, text), lowcode.withdraw(bigint), lowcode.run_due_timers(int),
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
CREATE FUNCTION lowcode.guard_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE FUNCTION lowcode.guard_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
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
                SELECT 'r ', lc_c.oid::pg_catalog.regclass::pg_catalog.text,
                       coalesce(lc_c.relacl, pg_catalog.acldefault(CASE lc_c.relkind WHEN 'S' THEN 's' ELSE 'r' END::pg_catalog."char", lc_c.relowner))
                  FROM pg_catalog.pg_class lc_c
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
BEGIN
    IF ours IS NULL THEN
        RETURN;                            -- lowcode is being dropped
    END IF;
    FOR c IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        CONTINUE WHEN c.in_extension;
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
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.schema_name OPERATOR(pg_catalog.=) 'lowcode') THEN
        RETURN;
    END IF;
    -- DROP EXTENSION lowcode (or DROP SCHEMA lowcode CASCADE, DROP OWNED) takes lowcode with it.
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                WHERE d.object_type OPERATOR(pg_catalog.=) 'extension' AND d.object_identity OPERATOR(pg_catalog.=) 'lowcode')
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode') THEN
        RETURN;
    END IF;
    FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() d
              WHERE d.schema_name OPERATOR(pg_catalog.=) 'lowcode'
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
CREATE EVENT TRIGGER lowcode_guard ON ddl_command_end EXECUTE FUNCTION lowcode.guard_ddl();
COMMENT ON EVENT TRIGGER lowcode_guard IS 'lowcode: its functions, tables, schema and privileges, and the triggers, rules and policies on its tables, change only with its extension scripts (lowcode.guard_ddl).';
CREATE EVENT TRIGGER lowcode_guard_drop ON sql_drop EXECUTE FUNCTION lowcode.guard_drop();
COMMENT ON EVENT TRIGGER lowcode_guard_drop IS 'lowcode: its objects are dropped only with the extension (lowcode.guard_drop).';
