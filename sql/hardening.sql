-- Every lowcode function that a user or a write calls runs with a fixed search_path, so a
-- function or operator that looks like a built-in (say evil.jsonb_build_object, or an
-- evil.|| for jsonb) in a schema ahead on the caller's search_path is never called by lowcode.
-- lowcode's own objects are always schema-qualified in its code. (Workflow `call` actions and
-- migration transforms are the user's own SQL: name functions there with their schema.)
-- The functions that run a migration's transform (plan_migration, apply_migration,
-- transform_expression) keep the caller's search_path on purpose: the transform is the DBA's.

ALTER FUNCTION lowcode.create_app(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.define_form(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.register_schema(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.submit(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.update_record(bigint, jsonb, int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.delete_record(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.record_history(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.add_unique(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.drop_unique(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.publish(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.define_workflow(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.workflow_diagram(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.transition(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claim_task(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.complete_task(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.release_task(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.reassign_task(bigint, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.decide(bigint, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.withdraw(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.run_due_timers(int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.fire_timer(lowcode.timers) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.emit(text, jsonb, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.poll_events(text, int, interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.ack_events(text, bigint[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.nack_event(text, bigint, text, interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.replay_dead_letters(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.purge_events(interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.export_app(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.import_app(jsonb, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.diff_app(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.grant(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.revoke(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.hide_fields(text, text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.show_fields(text, text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.get_record(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.read_records(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.acting_as(text) SET search_path = pg_catalog, pg_temp;
-- Triggers: they run on plain DML too (a typed view, COPY, UPDATE lowcode.records).
ALTER FUNCTION lowcode.records_check() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.records_history() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.records_workflow() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.view_write() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.uniques_index() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.events_restored() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.form_versions_immutable() SET search_path = pg_catalog, pg_temp;

-- App privileges (sql/privileges.sql). The functions app roles call run as the extension's
-- owner, so that a role needs no privilege on lowcode's tables: each of them checks the
-- invoker's app privileges itself (lowcode.authorize, may_read, may_update) before it reads or
-- writes, and the engine they drive (triggers, rules, tasks, history, events) writes as the
-- owner. Workflow `call` actions run as the invoker (lowcode.call_as_invoker). Functions not
-- listed (validation, the event consumers, timers, migrations) run as the caller: the event
-- and timer functions and migrations need table privileges only administrators have.
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
-- Internal helpers that run lowcode's engine are not for direct calls by app roles.
REVOKE EXECUTE ON FUNCTION lowcode.call_as_invoker(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lowcode.call_as_invoker(text, jsonb) TO @extowner@;

-- Installable by a database owner who is not a superuser (trusted = true in lowcode.control):
-- PostgreSQL then runs this script as the bootstrap superuser, and every object it creates
-- would belong to that superuser, so the SECURITY DEFINER functions above would run with
-- superuser rights. Instead everything written in SQL or PL/pgSQL (the tables, their
-- sequences and the views, the schema, and those functions) is handed to the role that runs
-- CREATE EXTENSION (@extowner@): lowcode's engine then has exactly that role's rights, and that
-- role can pg_dump and pg_restore its tables. C functions (the Rust code) stay with the
-- superuser: the owner of a C function could change how it is called (STRICT, argument
-- handling) and crash the server. When a superuser installs lowcode, @extowner@ is that
-- superuser and nothing changes. (An upgrade script that adds objects must end with this too.)
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
           AND p.prolang IN (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %s', o.fn, owner);
    END LOOP;
END
$reassign$;
