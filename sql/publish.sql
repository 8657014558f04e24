-- The typed SQL surface: lowcode.publish(app) makes a schema named after the app with one
-- view per form. Reads give typed columns; INSERT / UPDATE / DELETE (and COPY) go through
-- submit / update_record / delete_record, with the same validation and errors.

-- The views' INSTEAD OF trigger, lowcode.view_write, is Rust (src/views.rs): INSERT submits,
-- UPDATE applies the changed columns with update_record, DELETE deletes.

CREATE FUNCTION lowcode.publish(app text) RETURNS int
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
COMMENT ON FUNCTION lowcode.publish(text) IS 'Create or refresh the schema named after the app with one typed view per form (current version). Run it again after a form changes. Returns the number of views.';
