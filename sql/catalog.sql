-- lowcode catalog: apps, forms, immutable form versions, shared schemas, records and their
-- history. Every table that holds user data is registered with pg_extension_config_dump,
-- so pg_dump carries it.

CREATE TABLE lowcode.apps (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    title       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE lowcode.apps IS 'lowcode apps: each app is a namespace of forms and, once published, a schema of typed views.';

CREATE TABLE lowcode.form_versions (
    id            bigserial PRIMARY KEY,
    app           text NOT NULL,
    form          text NOT NULL,
    version       int NOT NULL CHECK (version > 0),
    schema        jsonb NOT NULL,
    bundled       jsonb NOT NULL,
    draft         text NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    published_by  text NOT NULL DEFAULT current_user,
    -- The author's property order, when the schema was given as text (jsonb sorts keys).
    property_order jsonb,
    UNIQUE (app, form, version)
);
COMMENT ON TABLE lowcode.form_versions IS 'Immutable published versions of each form: the JSON Schema as given, what validates (bundled: the schema, or {"$lowcode:bundle": 1, "schema": ..., "resources": {uri: copy}} with a copy of every registered schema its $refs reach), its draft, and the author''s property order when the schema was given as text.';

CREATE TABLE lowcode.forms (
    app                 text NOT NULL REFERENCES lowcode.apps (name) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    title               text NOT NULL DEFAULT '',
    -- Not a foreign key: versions point back at their form, and pg_dump / pg_restore
    -- cannot order the data of two tables that point at each other.
    current_version_id  bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, name)
);
COMMENT ON TABLE lowcode.forms IS 'Forms of each app, the version new submissions are validated against, its title (the schema''s title) and its UI schema (lowcode.set_form_ui).';

ALTER TABLE lowcode.form_versions
    ADD FOREIGN KEY (app, form) REFERENCES lowcode.forms (app, name) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE lowcode.schemas (
    uri            text PRIMARY KEY CHECK (uri <> '' AND position('#' IN uri) = 0),
    schema         jsonb NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE lowcode.schemas IS 'Shared schemas (a phone number, an address) that forms reference with $ref by URI. Immutable once registered; nothing is ever fetched from the network.';

CREATE TABLE lowcode.records (
    id               bigserial PRIMARY KEY,
    app              text NOT NULL,
    form             text NOT NULL,
    -- The version it was last validated against. app, form and form_version_id are set and
    -- checked by the records_before trigger, not by foreign keys (see forms_in_use below).
    form_version_id  bigint NOT NULL,
    data             jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'submitted',
    revision         int NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL DEFAULT current_user,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT current_user,
    -- The PostgreSQL role that submitted it (lowcode.invoker()): what read_own and update_own
    -- go by. created_by is the actor, which an app server may set per request.
    owner            text NOT NULL DEFAULT current_user
);
CREATE INDEX records_app_form_idx ON lowcode.records (app, form, id);
COMMENT ON TABLE lowcode.records IS 'Every submission of every form. data is validated against the form version it names on every insert and update (trigger records_before).';

CREATE TABLE lowcode.history (
    id          bigserial PRIMARY KEY,
    record_id   bigint NOT NULL,
    app         text NOT NULL,
    form        text NOT NULL,
    action      text NOT NULL,
    revision    int,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state  text,
    to_state    text,
    before      jsonb,
    after       jsonb,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX history_record_idx ON lowcode.history (record_id, id);
COMMENT ON TABLE lowcode.history IS 'Every change to every record: who (lowcode.actor(app): the lowcode.actor setting where the role may act_as in the app, else the invoking role), when, what (action), the state change and the data before and after. Kept when the record is deleted.';

SELECT pg_catalog.pg_extension_config_dump('lowcode.apps', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.forms', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.form_versions', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.schemas', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.records', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.history', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.form_versions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.records_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lowcode.history_id_seq', '');

-- pg_restore (and psql replaying a plain dump with lowcode.replay = on) writes the catalog's
-- rows back as they were: the triggers must not validate, record history or run workflows
-- again. Only the extension's owner (or a superuser) can replay.
-- (lowcode.replaying() is Rust, src/records.rs: it runs on every write.)

-- Form versions never change once published.
CREATE FUNCTION lowcode.form_versions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lowcode: %.% version % is immutable', OLD.app, OLD.form, OLD.version
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'publish a new version with lowcode.define_form';
END $$;
COMMENT ON FUNCTION lowcode.form_versions_immutable() IS 'Trigger: refuses UPDATE of a published form version.';
CREATE TRIGGER form_versions_immutable BEFORE UPDATE ON lowcode.form_versions
    FOR EACH ROW EXECUTE FUNCTION lowcode.form_versions_immutable();

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
