-- Definitions and the record write path, in SQL where SQL is the natural language.
-- Validation itself is Rust (lowcode.check_record, lowcode.compile_schema).

-- ---------------------------------------------------------------- definitions

CREATE FUNCTION lowcode.create_app(app text, title text DEFAULT '') RETURNS text
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

CREATE FUNCTION lowcode.define_form(app text, form text, schema jsonb) RETURNS int
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

CREATE FUNCTION lowcode.register_schema(uri text, schema jsonb) RETURNS void
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

-- ---------------------------------------------------------------- records

-- The write path itself is Rust (src/records.rs): one trigger per timing. records_before
-- validates the data against the form's current version, keeps revision and the
-- created/updated columns honest and starts a record in its workflow's initial state;
-- records_after writes the change's one history row and runs the workflow's rules for the
-- write's events (src/rules.rs), with the row it already has.
CREATE TRIGGER records_before BEFORE INSERT OR UPDATE ON lowcode.records
    FOR EACH ROW EXECUTE FUNCTION lowcode.records_before();
CREATE TRIGGER records_after AFTER INSERT OR UPDATE OR DELETE ON lowcode.records
    FOR EACH ROW EXECUTE FUNCTION lowcode.records_after();

-- lowcode.submit is Rust (src/records.rs): authorize, then one prepared INSERT.


-- lowcode.update_record is Rust (src/records.rs): the checks, then one prepared UPDATE.

CREATE FUNCTION lowcode.delete_record(id bigint) RETURNS void
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

CREATE FUNCTION lowcode.record_history(record bigint) RETURNS SETOF lowcode.history
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

-- ---------------------------------------------------------------- unique fields

CREATE TABLE lowcode.uniques (
    index_name  text PRIMARY KEY,
    app         text NOT NULL,
    form        text NOT NULL,
    fields      text[] NOT NULL CHECK (cardinality(fields) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app, form, fields)
);
COMMENT ON TABLE lowcode.uniques IS 'Unique field combinations of forms (lowcode.add_unique). Each row owns a unique index on lowcode.records, made by a trigger, so pg_restore re-creates the index from the row.';
SELECT pg_catalog.pg_extension_config_dump('lowcode.uniques', '');

CREATE FUNCTION lowcode.unique_index_ddl(index_name text, app text, form text, fields text[], with_app boolean)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON lowcode.records (%s%s) WHERE app OPERATOR(pg_catalog.=) %L AND form OPERATOR(pg_catalog.=) %L',
                             index_name, CASE WHEN with_app THEN 'app, ' ELSE '' END,
                             (SELECT pg_catalog.string_agg(pg_catalog.format('(data OPERATOR(pg_catalog.->>) %L)', u.f), ', ' ORDER BY u.i)
                                FROM pg_catalog.unnest(fields) WITH ORDINALITY AS u(f, i)),
                             app, form)
$$;
COMMENT ON FUNCTION lowcode.unique_index_ddl(text, text, text, text[], boolean) IS 'The CREATE UNIQUE INDEX IF NOT EXISTS of a lowcode.uniques row (Citus copying the rows into a reference table fires the trigger again): its fields of its form''s records; with_app, the app first (a distributed runtime: Citus asks a unique index for the distribution column).';

CREATE FUNCTION lowcode.uniques_index() RETURNS trigger
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
CREATE TRIGGER uniques_index AFTER INSERT OR DELETE ON lowcode.uniques
    FOR EACH ROW EXECUTE FUNCTION lowcode.uniques_index();

CREATE FUNCTION lowcode.add_unique(app text, form text, fields text[]) RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    name text;
BEGIN
    IF app IS NULL OR form IS NULL THEN
        RAISE EXCEPTION 'lowcode: add_unique: arguments "app" and "form" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM lowcode.forms f WHERE f.app = app AND f.name = form) THEN
        RAISE EXCEPTION 'lowcode: unknown form "%.%"', app, form USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.authorize(app, 'admin', format('add unique fields to form %s', form));
    IF fields IS NULL OR cardinality(fields) = 0 OR EXISTS (SELECT FROM unnest(fields) f WHERE f IS NULL OR f = '') THEN
        RAISE EXCEPTION 'lowcode: %.%: add_unique needs one or more field names', app, form
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    name := format('%s_%s_%s_key', app, form, array_to_string(fields, '_'));
    IF length(name) > 63 OR name !~ '^[a-z0-9_]+$' THEN
        -- fields::text quotes each name, so different lists never hash alike (chr(0) is not text).
        name := format('%s_%s_%s_key', left(app, 20), left(form, 20), left(md5(fields::text), 16));
    END IF;
    INSERT INTO lowcode.uniques (index_name, app, form, fields) VALUES (name, app, form, fields);
    RETURN name;
EXCEPTION WHEN unique_violation THEN
    IF EXISTS (SELECT FROM lowcode.uniques u WHERE u.app = app AND u.form = form AND u.fields = fields) THEN
        RETURN (SELECT u.index_name FROM lowcode.uniques u WHERE u.app = app AND u.form = form AND u.fields = fields);
    END IF;
    RAISE;
END $$;
COMMENT ON FUNCTION lowcode.add_unique(text, text, text[]) IS 'Make a combination of top-level fields unique among a form''s records (e.g. one check-in per student per day): a second record with the same values is refused with SQLSTATE 23505. Idempotent; survives pg_dump / pg_restore. Returns the index name.';

CREATE FUNCTION lowcode.drop_unique(app text, form text, fields text[]) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(app, 'admin', format('drop unique fields of form %s', form));
    DELETE FROM lowcode.uniques u WHERE u.app = app AND u.form = form AND u.fields = fields;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION lowcode.drop_unique(text, text, text[]) IS 'Remove a unique field combination added with add_unique; true if there was one.';
