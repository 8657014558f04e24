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
CREATE EVENT TRIGGER lowcode_guard ON ddl_command_end EXECUTE FUNCTION lowcode.guard_ddl();
COMMENT ON EVENT TRIGGER lowcode_guard IS 'lowcode: its functions, tables, schema and privileges, and the triggers, rules and policies on its tables, change only with its extension scripts (lowcode.guard_ddl).';
CREATE EVENT TRIGGER lowcode_guard_drop ON sql_drop EXECUTE FUNCTION lowcode.guard_drop();
COMMENT ON EVENT TRIGGER lowcode_guard_drop IS 'lowcode: its objects are dropped only with the extension (lowcode.guard_drop).';
