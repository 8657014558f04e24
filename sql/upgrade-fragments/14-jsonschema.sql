-- Issue #14 (JSON Schema: $refs into registered schemas, relative refs, embedded resources,
-- IDN formats, errors that name their field): the statements that take a 0.1.0 database to
-- this part of 0.2.0. For sql/lowcode--0.1.0--0.2.0.sql (its owner merges it), which runs in
-- the extension's schema as the superuser that runs ALTER EXTENSION ... UPDATE.
--
-- The 0.2.0 library keeps the C symbol 0.1.0's lowcode.validate calls (validate_wrapper,
-- three columns), so a 0.1.0 database keeps working until it is updated.
-- Form versions need no change: a 0.1.0 version's bundled schema compiles as it did (a version
-- that needs registered schemas is stored as {"$lowcode:bundle": 1, ...} from 0.2.0 on only).

-- validate() gains the field column (new C symbol). Nothing depends on it (it is only called
-- from PL/pgSQL bodies), and as a C function it stays with the superuser, EXECUTE for PUBLIC.
DROP FUNCTION lowcode.validate(text, text, jsonb);
CREATE FUNCTION lowcode."validate"(
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

-- A schema being registered is checked with its URI as base URI.
CREATE FUNCTION lowcode."check_registered_schema"(
	"uri" TEXT, /* Option < & str > */
	"schema" jsonb /* Option < JsonbBytes > */
) RETURNS void
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_registered_schema_wrapper';

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
    INSERT INTO lowcode.schemas (uri, schema, registered_by) VALUES (uri, schema, lowcode.actor());
END $$;
COMMENT ON FUNCTION lowcode.register_schema(text, jsonb) IS 'Register a shared schema (a phone number, an address, a library of $defs) that forms reference with {"$ref": uri}, uri#/json/pointer or uri#anchor. uri is its base URI: its relative $refs name other registered schemas (register those first). Immutable once registered; re-registering identical content is a no-op.';
-- CREATE OR REPLACE resets these (sql/hardening.sql sets them on a fresh install).
ALTER FUNCTION lowcode.register_schema(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.register_schema(text, jsonb) SECURITY DEFINER;

-- export_app also exports the registered schemas a version keeps a copy of; import_app
-- registers a schema that needs another one after it.
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
ALTER FUNCTION lowcode.export_app(text, jsonb) SET search_path = pg_catalog, pg_temp;

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
ALTER FUNCTION lowcode.import_app(jsonb, jsonb) SET search_path = pg_catalog, pg_temp;

COMMENT ON TABLE lowcode.form_versions IS 'Immutable published versions of each form: the JSON Schema as given, what validates (bundled: the schema, or {"$lowcode:bundle": 1, "schema": ..., "resources": {uri: copy}} with a copy of every registered schema its $refs reach), and its draft.';
