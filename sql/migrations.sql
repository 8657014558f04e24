-- Apps as code and DBA-run migrations: export an app to JSON, import it elsewhere
-- (idempotent, dry-runnable), diff a definition against an app, plan and apply a form change
-- that rewrites existing records in batches.

-- The export format's major version. Imports refuse definitions from a newer major version.
CREATE FUNCTION lowcode.definition_format() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1 $$;
COMMENT ON FUNCTION lowcode.definition_format() IS 'The major version of export_app''s format (its "lowcode" key); import_app refuses newer ones.';

-- A mistyped option ("dryrun") must not silently do the real thing.
CREATE FUNCTION lowcode.check_options(caller text, options jsonb, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    unknown text;
BEGIN
    IF options IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'lowcode: %: options must be a JSON object, not %', caller, jsonb_typeof(options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('"%s"', k), ', ' ORDER BY k) INTO unknown FROM jsonb_object_keys(options) k WHERE k <> ALL (allowed);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: %: unknown option%', caller, CASE WHEN unknown LIKE '%,%' THEN 's ' ELSE ' ' END || unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the options are ' || (SELECT string_agg(format('"%s"', a), ', ') FROM unnest(allowed) a);
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.check_options(text, jsonb, text[]) IS 'Internal: refuses options that are not an object or have keys other than allowed.';

CREATE FUNCTION lowcode.export_app(app text, options jsonb DEFAULT '{}') RETURNS jsonb
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

CREATE FUNCTION lowcode.diff_app(app text, definition jsonb)
RETURNS TABLE (kind text, path text, change text, detail jsonb)
LANGUAGE sql STABLE AS $$
    -- An app this database does not have yet diffs as an empty one: every form is added.
    SELECT * FROM lowcode.diff_definitions(
        CASE WHEN EXISTS (SELECT FROM lowcode.apps a WHERE a.name = diff_app.app) THEN lowcode.export_app(diff_app.app)
             ELSE '{"forms": []}' END,
        diff_app.definition)
    UNION ALL
    -- Registered schemas the import would register, or could not (same URI, other content).
    SELECT 'registered_schema', s ->> 'uri', CASE WHEN r.uri IS NULL THEN 'added' ELSE 'conflict' END,
           jsonb_build_object('breaking', r.uri IS NOT NULL,
                              'reason', CASE WHEN r.uri IS NULL THEN 'the import registers it'
                                             ELSE 'registered here with different content: the import will fail' END,
                              'before', r.schema, 'after', s -> 'schema')
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(diff_app.definition -> 'schemas') = 'array'
                                     THEN diff_app.definition -> 'schemas' ELSE '[]' END) s
      LEFT JOIN lowcode.schemas r ON r.uri = s ->> 'uri'
     WHERE r.uri IS NULL OR r.schema <> s -> 'schema'
$$;
COMMENT ON FUNCTION lowcode.diff_app(text, jsonb) IS 'What importing definition would change in the app (an app this database lacks counts as empty): forms, fields (added, removed, retyped), required, enums (narrowed / widened), constraints, states, transitions, rules, registered schemas (added, or in conflict with the one registered here); detail->breaking says whether existing records or in-flight workflows are affected (or, for a conflict, that the import would fail).';

CREATE FUNCTION lowcode.import_app(definition jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
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

-- ---------------------------------------------------------------- record migrations

-- The SQL expression that turns `data` into the migrated data: a function name (jsonb → jsonb)
-- or an expression over `data`.
CREATE FUNCTION lowcode.transform_expression(transform text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    fn    regprocedure;
    expr  text;
    typ   text;
BEGIN
    IF transform IS NULL OR btrim(transform) = '' THEN
        RETURN 'data';
    END IF;
    IF transform ~ '^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$' THEN
        fn := to_regprocedure(transform || '(jsonb)');
        IF fn IS NOT NULL THEN
            expr := format('%s(data)', fn::regproc);
        END IF;
    END IF;
    expr := coalesce(expr, '(' || transform || ')');
    -- Parse it and learn its type without running it (the CASE arm is never evaluated), so a
    -- bad transform is refused before anything changes. It sees a record's columns as the
    -- migration does (data, id, state ..., also as records.id).
    BEGIN
        EXECUTE format('SELECT pg_typeof(CASE WHEN false THEN %s END)::text FROM (SELECT (NULL::lowcode.records).*) AS records', expr)
           INTO typ;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'lowcode: the transform % is not a SQL expression over data or the name of a function jsonb → jsonb: %', quote_literal(transform), SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF typ <> 'jsonb' THEN
        RAISE EXCEPTION 'lowcode: the transform % gives %, not jsonb', quote_literal(transform), typ
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a transform is an expression over data (jsonb) such as data || ''{"priority": "normal"}'', or the name of a function taking and returning jsonb';
    END IF;
    RETURN expr;
END $$;
COMMENT ON FUNCTION lowcode.transform_expression(text) IS 'Internal: a migration transform as SQL over the column data (a function name jsonb → jsonb, or an expression such as data || ''{"priority": "normal"}'').';

CREATE FUNCTION lowcode.plan_migration(app text, form text, new_schema jsonb, transform text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    bundled  jsonb;
    expr     text := lowcode.transform_expression(transform);
    plan     jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM lowcode.forms f WHERE f.app = app AND f.name = form) THEN
        RAISE EXCEPTION 'lowcode: unknown form "%.%"', app, form USING ERRCODE = 'undefined_object';
    END IF;
    bundled := lowcode.compile_schema(app || '.' || form, new_schema) -> 'bundled';
    EXECUTE format($q$
        WITH r AS (
            SELECT id, state, data AS old, %s AS new FROM lowcode.records WHERE app = $1 AND form = $2
        ), checked AS (
            SELECT id, state, old, new, lowcode.matches($3, old) AS as_is,
                   coalesce(lowcode.matches($3, new), false) AS after
              FROM r
        )
        SELECT jsonb_build_object(
            'records', count(*),
            'pass_as_is', count(*) FILTER (WHERE as_is),
            'pass_after_transform', count(*) FILTER (WHERE after),
            'fail_after_transform', count(*) FILTER (WHERE NOT after),
            'changed_by_transform', count(*) FILTER (WHERE old IS DISTINCT FROM new),
            'states', coalesce((SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM checked GROUP BY state) s), '{}'),
            'failures', coalesce((SELECT jsonb_agg(jsonb_build_object('record', id, 'errors',
                                      coalesce(lowcode.condition_issues($3, new),
                                               '[{"path": "", "keyword": "transform", "message": "the transform gave NULL"}]')) ORDER BY id)
                                    FROM (SELECT id, new FROM checked WHERE NOT after ORDER BY id LIMIT 10) f), '[]'))
          FROM checked
    $q$, expr) INTO plan USING app, form, bundled;
    RETURN plan;
EXCEPTION WHEN undefined_column OR syntax_error OR undefined_function THEN
    RAISE EXCEPTION 'lowcode: %.%: the transform % is not a SQL expression over data or a function name (jsonb → jsonb): %', app, form, quote_literal(transform), SQLERRM
        USING ERRCODE = 'invalid_parameter_value';
END $$;
COMMENT ON FUNCTION lowcode.plan_migration(text, text, jsonb, text) IS 'Dry run of a form change over the existing records: how many pass the new schema as they are and after the transform, records per state, and up to 10 failing records with their errors. Changes nothing.';

CREATE FUNCTION lowcode.apply_migration(app text, form text, new_schema jsonb, transform text DEFAULT NULL,
                                        options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    expr        text := lowcode.transform_expression(transform);
    batch_size  int := coalesce((options ->> 'batch_size')::int, 1000);
    skip        boolean := coalesce(options ->> 'on_error', 'abort') = 'skip';
    state_map   jsonb := coalesce(options -> 'state_map', '{}');
    version     int;
    target      bigint;
    total       bigint;
    up_to_date  bigint;
    done        bigint := 0;
    migrated    bigint := 0;
    skipped     jsonb := '[]';
    ids         bigint[];
    rid         bigint;
    started     timestamptz := clock_timestamp();
    rate        numeric;
    previous    jsonb;
    wf_states   jsonb;
    unmapped    jsonb;
    bad_data    jsonb;
    bad_detail  text;
    batch_ok    boolean;
BEGIN
    PERFORM lowcode.check_options('apply_migration', options, ARRAY['batch_size', 'on_error', 'state_map', 'workflow']);
    IF coalesce(options ->> 'on_error', 'abort') NOT IN ('abort', 'skip') THEN
        RAISE EXCEPTION 'lowcode: apply_migration: on_error must be "abort" or "skip"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'lowcode: apply_migration: batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Records in states the form's workflow (or options.workflow) lacks need a mapping.
    IF options ? 'workflow' THEN
        PERFORM lowcode.check_workflow(app || '.' || form, options -> 'workflow');
        wf_states := options -> 'workflow' -> 'states';
    ELSE
        SELECT w.definition -> 'states' INTO wf_states FROM lowcode.forms f
          JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id WHERE f.app = app AND f.name = form;
    END IF;
    IF wf_states IS NOT NULL THEN
        SELECT jsonb_object_agg(state, n) INTO unmapped FROM (
            SELECT coalesce(state_map ->> r.state, r.state) AS state, count(*) AS n FROM lowcode.records r
             WHERE r.app = app AND r.form = form GROUP BY 1) s
         WHERE NOT wf_states ? state;
        IF unmapped IS NOT NULL THEN
            RAISE EXCEPTION 'lowcode: %.%: records are in (or mapped to) states the workflow lacks', app, form
                USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = unmapped::text,
                      HINT = 'give options {"state_map": {"old_state": "new_state"}}';
        END IF;
    END IF;

    version := lowcode.define_form(app, form, new_schema);
    IF options ? 'workflow' THEN
        PERFORM lowcode.define_workflow(app, form, options -> 'workflow');
    END IF;
    -- Records already on the target version (and in a state that needs no mapping) are left
    -- alone, so running a migration again only retries the records it skipped.
    SELECT f.current_version_id INTO target FROM lowcode.forms f WHERE f.app = app AND f.name = form;
    SELECT count(*) FILTER (WHERE r.form_version_id <> target OR state_map ? r.state),
           count(*) FILTER (WHERE NOT (r.form_version_id <> target OR state_map ? r.state))
      INTO total, up_to_date
      FROM lowcode.records r WHERE r.app = app AND r.form = form;
    previous := lowcode.with_cause(jsonb_build_object('migration', version));
    FOR ids IN
        SELECT array_agg(id ORDER BY id) FROM (
            SELECT r.id, (row_number() OVER (ORDER BY r.id) - 1) / batch_size AS batch
              FROM lowcode.records r WHERE r.app = app AND r.form = form
                                       AND (r.form_version_id <> target OR state_map ? r.state)) b
         GROUP BY batch ORDER BY batch
    LOOP
        IF skip THEN
            -- The whole batch at once; record by record only when something in it fails.
            batch_ok := true;
            BEGIN
                EXECUTE format('UPDATE lowcode.records SET data = %s, form_version_id = -1,
                                       state = coalesce($2 ->> state, state) WHERE id = ANY ($1)', expr)
                  USING ids, state_map;
                migrated := migrated + cardinality(ids);
            EXCEPTION WHEN OTHERS THEN
                batch_ok := false;
            END;
            FOREACH rid IN ARRAY CASE WHEN batch_ok THEN '{}'::bigint[] ELSE ids END LOOP
                BEGIN
                    EXECUTE format('UPDATE lowcode.records SET data = %s, form_version_id = -1,
                                           state = coalesce($2 ->> state, state) WHERE id = $1', expr)
                      USING rid, state_map;
                    migrated := migrated + 1;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS bad_detail = PG_EXCEPTION_DETAIL;
                    skipped := skipped || (jsonb_build_object('record', rid, 'error', SQLERRM)
                        || CASE WHEN SQLSTATE = '23514' AND bad_detail LIKE '[%' THEN jsonb_build_object('errors', bad_detail::jsonb)
                                WHEN nullif(bad_detail, '') IS NOT NULL THEN jsonb_build_object('detail', bad_detail)
                                ELSE '{}' END);
                END;
            END LOOP;
        ELSE
            BEGIN
                EXECUTE format('UPDATE lowcode.records SET data = %s, form_version_id = -1,
                                       state = coalesce($2 ->> state, state) WHERE id = ANY ($1)', expr)
                  USING ids, state_map;
            EXCEPTION WHEN check_violation THEN
                -- Name the first record that does not fit; the whole migration is undone.
                EXECUTE format('SELECT id, d FROM (SELECT id, %s AS d FROM lowcode.records
                                 WHERE id = ANY ($1) ORDER BY id) s WHERE NOT lowcode.is_valid(%L, %L, d) LIMIT 1',
                               expr, app, form)
                  INTO rid, bad_data USING ids;
                RAISE EXCEPTION 'lowcode: %.%: migration to version % aborted: record % does not conform (nothing was changed)', app, form, version, rid
                    USING ERRCODE = 'check_violation',
                          DETAIL = (SELECT jsonb_agg(to_jsonb(v))::text FROM lowcode.validate(app, form, bad_data) v),
                          HINT = 'see lowcode.plan_migration for every failing record, fix the transform, or use {"on_error": "skip"}';
            END;
            migrated := migrated + cardinality(ids);
        END IF;
        done := done + cardinality(ids);
        rate := done / greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
        -- The timing is in DETAIL, so the message itself is the same on every run.
        RAISE NOTICE 'lowcode: %.% migration to version %: %/% records', app, form, version, done, total
            USING DETAIL = format('%s records/s, about %s s left', round(rate), round((total - done) / rate));
    END LOOP;
    PERFORM lowcode.with_cause(previous);
    IF to_regnamespace(app) IS NOT NULL THEN
        PERFORM lowcode.publish(app);
    END IF;
    RETURN jsonb_build_object('version', version, 'records', total, 'up_to_date', up_to_date, 'migrated', migrated,
                              'skipped', jsonb_array_length(skipped), 'skipped_records', skipped);
END $$;
COMMENT ON FUNCTION lowcode.apply_migration(text, text, jsonb, text, jsonb) IS 'Publish new_schema as the form''s next version and rewrite its records that are not on it yet (transform applied) in batches (options.batch_size, default 1000) with a progress NOTICE per batch. Default all-or-nothing; {"on_error": "skip"} leaves failing records on their old version and lists them with their errors (run it again to retry only those). options.state_map renames states; options.workflow attaches a new workflow. Migrated records get a history entry; typed views are re-published.';
