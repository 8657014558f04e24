-- Who may do what in which app.
--
-- lowcode administrators (superusers and members of the role that owns the extension) may do
-- everything. Every other role gets privileges per app with lowcode.grant:
--
--   submit      submit records (lowcode.submit, INSERT into the typed view)
--   read_own    read the records it submitted        read_all    read every record of the app
--   update_own  change the records it submitted      update_all  change every record of the app
--   delete      delete records
--   claim       claim, complete and release the app's tasks
--   decide      decide the app's approvals
--   act_as      set lowcode.actor (an app server acting for its users in this app)
--   consume     poll, acknowledge and nack the app's outbox consumers (lowcode.create_consumer)
--   admin       all of the above, define forms and workflows, publish, grant and revoke
--
-- The role lowcode authorizes is lowcode.invoker(): the session's role after SET ROLE, which
-- stays the caller's inside lowcode's SECURITY DEFINER functions (where current_user is the
-- extension's owner). One predicate, lowcode.may, decides in the functions (through may_read
-- and may_update), in the typed views and in the row-level security policies of
-- lowcode.records and lowcode.tasks (through apps_where, worked out once per query). Fields hidden from a role (lowcode.hide_fields) are left out of everything
-- that role reads: the typed views, lowcode.get_record, lowcode.read_records and
-- lowcode.record_history.

CREATE TABLE lowcode.grants (
    app         text NOT NULL REFERENCES lowcode.apps (name) ON DELETE CASCADE,
    role        text NOT NULL,
    privilege   text NOT NULL CHECK (privilege IN ('submit', 'read_own', 'read_all', 'update_own', 'update_all',
                                                   'delete', 'claim', 'decide', 'act_as', 'admin', 'consume')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  text NOT NULL,
    PRIMARY KEY (app, role, privilege)
);
COMMENT ON TABLE lowcode.grants IS 'App privileges of PostgreSQL roles (lowcode.grant / lowcode.revoke). A privilege granted to a role is held by its members too.';

CREATE TABLE lowcode.hidden_fields (
    app    text NOT NULL,
    form   text NOT NULL,
    role   text NOT NULL,
    field  text NOT NULL,
    PRIMARY KEY (app, form, role, field),
    FOREIGN KEY (app, form) REFERENCES lowcode.forms (app, name) ON DELETE CASCADE
);
COMMENT ON TABLE lowcode.hidden_fields IS 'Top-level fields of a form that members of a role do not see (lowcode.hide_fields): left out of the typed views, get_record, read_records and record_history.';

SELECT pg_catalog.pg_extension_config_dump('lowcode.grants', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.hidden_fields', '');

-- ---------------------------------------------------------------- who is acting

-- The predicates below are called on every write, so the ones that query are PL/pgSQL (their
-- plans are kept for the session; a SQL function with a sub-select is planned again in every
-- transaction). Those left in SQL are inlined into the policies and views that use them, and an
-- inlined body is parsed with the reader's search_path: every operator in these functions is
-- written OPERATOR(pg_catalog.=) and every function schema-qualified, and the PL/pgSQL ones
-- have a pinned search_path (sql/hardening.sql), so a look-alike operator ahead on the
-- search_path never decides who reads what.

CREATE FUNCTION lowcode.invoker_name() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.pg_get_userbyid(lowcode.invoker())::text $$;
COMMENT ON FUNCTION lowcode.invoker_name() IS 'The name of lowcode.invoker(): the role lowcode authorizes.';

-- lowcode.is_admin(), lowcode.may(app, privilege), lowcode.authorize and lowcode.refuse are
-- Rust (src/privileges.rs): they run on every call of the API.

CREATE FUNCTION lowcode.may_read(app text, owner text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT lowcode.may($1, 'read_all') OR ($2 OPERATOR(pg_catalog.=) lowcode.invoker_name() AND lowcode.may($1, 'read_own'))
$$;
COMMENT ON FUNCTION lowcode.may_read(text, text) IS 'True when the invoker may read a record of app submitted by owner (read_all, or read_own for its own records).';

-- lowcode.apps_where(privilege) is Rust (src/privileges.rs): the apps where the invoker holds
-- privilege, which policies and typed views work out once per query.

CREATE FUNCTION lowcode.may_update(app text, owner text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT lowcode.may($1, 'update_all') OR ($2 OPERATOR(pg_catalog.=) lowcode.invoker_name() AND lowcode.may($1, 'update_own'))
$$;
COMMENT ON FUNCTION lowcode.may_update(text, text) IS 'True when the invoker may change a record of app submitted by owner (update_all, or update_own for its own records).';

CREATE FUNCTION lowcode.hidden(app text, form text) RETURNS text[]
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

-- The actor recorded in history, tasks and decisions: the lowcode.actor setting (an app
-- server's per-request label for its user) when the invoker may act for others in the app
-- being written (act_as or admin there, or a lowcode administrator), else the invoker itself.
-- Always checked against the app of the record: act_as in one app says nothing about another.
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

-- (SQL, so that it is inlined where it is used: the common case, no label, costs no call.)
CREATE FUNCTION lowcode.actor(app text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN coalesce(pg_catalog.current_setting('lowcode.actor', true), '')
                     OPERATOR(pg_catalog.=) ANY (ARRAY['', lowcode.invoker_name()])
                THEN lowcode.invoker_name()
                ELSE lowcode.acting_as($1, pg_catalog.current_setting('lowcode.actor', true)) END
$$;
COMMENT ON FUNCTION lowcode.actor(text) IS 'Who is acting in app: the lowcode.actor setting (SET LOCAL lowcode.actor = ''alice'' per request, honoured for roles granted act_as in that app and for lowcode administrators) or else the invoking role.';

CREATE FUNCTION lowcode.actor() RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT lowcode.actor(NULL) $$;
COMMENT ON FUNCTION lowcode.actor() IS 'Who is acting outside any one app: the lowcode.actor setting for lowcode administrators, else the invoking role.';

-- Fields hidden from a role are neither shown to it nor lost by its writes: a write that
-- leaves a hidden field out keeps its stored value; one that names it is refused, whatever
-- the value (accepting a guess that matches would tell the role the value).
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

-- ---------------------------------------------------------------- granting

CREATE FUNCTION lowcode.check_role(app text, role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF app IS NULL OR role IS NULL THEN
        RAISE EXCEPTION 'lowcode: arguments "app" and "role" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM lowcode.apps a WHERE a.name = app) THEN
        RAISE EXCEPTION 'lowcode: unknown app "%"', app USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.authorize(app, 'admin', 'grant, revoke or hide');
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role) THEN
        RAISE EXCEPTION 'lowcode: app "%": role "%" does not exist', app, role
            USING ERRCODE = 'undefined_object',
                  HINT = format('CREATE ROLE %I first', role);
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.check_role(text, text) IS 'Internal: checks the arguments of grant, revoke, hide_fields and show_fields and that the invoker is the app''s admin.';

CREATE FUNCTION lowcode.privileges_of(app text, role text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.array_agg(g.privilege ORDER BY g.privilege), '{}')
      FROM lowcode.grants g WHERE g.app OPERATOR(pg_catalog.=) $1 AND g.role OPERATOR(pg_catalog.=) $2
$$;
COMMENT ON FUNCTION lowcode.privileges_of(text, text) IS 'The privileges granted to role in app (not counting those of roles it is a member of).';

CREATE FUNCTION lowcode.grant(app text, role text, privileges text[]) RETURNS text[]
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

CREATE FUNCTION lowcode.revoke(app text, role text, privileges text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.check_role(app, role);
    DELETE FROM lowcode.grants g WHERE g.app = app AND g.role = role AND g.privilege = ANY (privileges);
    RETURN lowcode.privileges_of(app, role);
END $$;
COMMENT ON FUNCTION lowcode.revoke(text, text, text[]) IS 'Take privileges in an app back from a role. Returns the role''s remaining privileges in the app.';

CREATE FUNCTION lowcode.hide_fields(app text, form text, role text, fields text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.check_role(app, role);
    IF NOT EXISTS (SELECT FROM lowcode.forms f WHERE f.app = app AND f.name = form) THEN
        RAISE EXCEPTION 'lowcode: unknown form "%.%"', app, form USING ERRCODE = 'undefined_object';
    END IF;
    IF fields IS NULL OR EXISTS (SELECT FROM unnest(fields) f WHERE f IS NULL OR f = '') THEN
        RAISE EXCEPTION 'lowcode: %.%: hide_fields needs field names', app, form
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lowcode.hidden_fields (app, form, role, field)
    SELECT app, form, role, f FROM unnest(fields) f
    ON CONFLICT DO NOTHING;
    PERFORM lowcode.republish(app);
    RETURN (SELECT coalesce(array_agg(h.field ORDER BY h.field), '{}') FROM lowcode.hidden_fields h
             WHERE h.app = app AND h.form = form AND h.role = role);
END $$;
COMMENT ON FUNCTION lowcode.hide_fields(text, text, text, text[]) IS 'Hide top-level fields of a form from a role''s members: the typed views show them as NULL, get_record, read_records and record_history leave them out. Returns the fields hidden from the role.';

CREATE FUNCTION lowcode.show_fields(app text, form text, role text, fields text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.check_role(app, role);
    DELETE FROM lowcode.hidden_fields h
     WHERE h.app = app AND h.form = form AND h.role = role AND h.field = ANY (fields);
    PERFORM lowcode.republish(app);
    RETURN (SELECT coalesce(array_agg(h.field ORDER BY h.field), '{}') FROM lowcode.hidden_fields h
             WHERE h.app = app AND h.form = form AND h.role = role);
END $$;
COMMENT ON FUNCTION lowcode.show_fields(text, text, text, text[]) IS 'Undo hide_fields for some fields. Returns the fields still hidden from the role.';

CREATE FUNCTION lowcode.republish(app text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The typed views mask exactly the fields that are hidden from someone: refresh them.
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = app) THEN
        PERFORM lowcode.publish(app);
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.republish(text) IS 'Internal: refreshes an app''s typed views if it has been published.';

-- ---------------------------------------------------------------- reading

CREATE FUNCTION lowcode.masked(r lowcode.records) RETURNS lowcode.records
LANGUAGE plpgsql STABLE AS $$
DECLARE
    hide text[] := lowcode.hidden(r.app, r.form);
BEGIN
    IF cardinality(hide) > 0 AND jsonb_typeof(r.data) = 'object' THEN
        r.data := r.data - hide;
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION lowcode.masked(lowcode.records) IS 'Internal: the record without the fields hidden from the invoker.';

CREATE FUNCTION lowcode.get_record(id bigint) RETURNS lowcode.records
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

CREATE FUNCTION lowcode.read_records(app text, form text) RETURNS SETOF lowcode.records
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

-- The outbox consumers a role may see, with their lag (sql/outbox.sql).
CREATE VIEW lowcode.consumer_status AS
SELECT l.* FROM lowcode.consumers c, LATERAL lowcode.consumer_lag(c.name) l
 WHERE lowcode.is_admin() OR (c.app IS NOT NULL AND lowcode.may(c.app, 'consume'));
COMMENT ON VIEW lowcode.consumer_status IS 'lowcode.consumer_lag of every consumer the reader may consume.';

-- ---------------------------------------------------------------- tables

-- Definitions are public, like the catalog's table definitions; data is not.
GRANT USAGE ON SCHEMA lowcode TO PUBLIC;
GRANT SELECT ON lowcode.apps, lowcode.forms, lowcode.form_versions, lowcode.schemas, lowcode.uniques,
                lowcode.workflow_versions, lowcode.transitions, lowcode.rules, lowcode.grants,
                lowcode.hidden_fields
   TO PUBLIC;

-- Records and tasks: rows by privilege. Record data only through what masks hidden fields
-- (typed views, get_record, read_records); writes only through lowcode's functions.
GRANT SELECT (id, app, form, form_version_id, state, revision, created_at, created_by, updated_at, updated_by, owner)
   ON lowcode.records TO PUBLIC;
ALTER TABLE lowcode.records ENABLE ROW LEVEL SECURITY;
-- lowcode.may_read, in the form that is worked out once per query (the typed views made by
-- lowcode.publish filter the same way).
CREATE POLICY readers ON lowcode.records FOR SELECT USING (
    app OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT lowcode.apps_where('read_all')))
    OR (owner OPERATOR(pg_catalog.=) lowcode.invoker_name()
        AND app OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT lowcode.apps_where('read_own')))));
COMMENT ON POLICY readers ON lowcode.records IS 'A role reads the records of apps where it holds read_all, and its own where it holds read_own.';

GRANT SELECT ON lowcode.consumer_status TO PUBLIC;
GRANT SELECT ON lowcode.tasks TO PUBLIC;
ALTER TABLE lowcode.tasks ENABLE ROW LEVEL SECURITY;
-- A task's app is its record's (the engine writes both).
CREATE POLICY workers ON lowcode.tasks FOR SELECT USING (
    lowcode.invoker_name() OPERATOR(pg_catalog.=) ANY (ARRAY[claimed_by, assignee])
    OR app OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT lowcode.apps_where('claim') UNION SELECT lowcode.apps_where('decide')
                                             UNION SELECT lowcode.apps_where('read_all'))));
COMMENT ON POLICY workers ON lowcode.tasks IS 'A role sees the tasks of apps where it may claim, decide or read_all, and the tasks it holds.';
