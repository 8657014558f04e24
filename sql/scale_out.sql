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

-- The definitions, in foreign-key order (a reference table may only refer to reference tables).
CREATE FUNCTION lowcode.distribute() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    definitions CONSTANT text[] := ARRAY['apps', 'forms', 'form_versions', 'workflow_versions',
                                         'grants', 'hidden_fields', 'schemas', 'uniques', 'call_grants'];
    t     text;
    made  text[] := '{}';
    -- The caller's values of the settings set below, given back at the end.
    unsafe_triggers  text := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
    local_fk         text := pg_catalog.current_setting('citus.enable_local_reference_table_foreign_keys', true);
    unreached        text;
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
    -- lowcode's definition tables have triggers (forms_written, forms_in_use, uniques_index,
    -- call_grants_check, form_versions_immutable): Citus copies them onto every node's copy of
    -- the table, where they fire too; each of them reads or writes only that node.
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
    -- (distribute() run again, a node that has written since) is left alone.
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s (%s)', n.nodename, n.nodeport, r.result), ', '
                                 ORDER BY n.nodeid)
      INTO unreached
      FROM pg_catalog.run_command_on_all_nodes($node$
                 SELECT pg_catalog.count(pg_catalog.setval(s.oid::pg_catalog.regclass,
                                         g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 48, false))
                   FROM pg_catalog.pg_class s, pg_catalog.pg_dist_local_group g
                  WHERE s.relkind OPERATOR(pg_catalog.=) 'S'
                    AND s.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                    AND g.groupid OPERATOR(pg_catalog.>) 0
                    AND COALESCE(pg_catalog.pg_sequence_last_value(s.oid), 0)
                        OPERATOR(pg_catalog.<) (g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 48)
               $node$) r
      JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) r.nodeid
     WHERE NOT r.success;
    IF unreached IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: distribute: could not give every node its id range: %', unreached
            USING ERRCODE = 'connection_failure',
                  HINT = 'every node must be reachable from the coordinator (citus_check_cluster_node_health()); run lowcode.distribute() again';
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', local_fk, true);
    RETURN made;
END $$;
COMMENT ON FUNCTION lowcode.distribute() IS 'On a Citus coordinator (superusers): makes lowcode''s definitions (apps, forms, versions, schemas, workflows, grants) reference tables, copied to every node, so that every node validates against the same forms, and gives each node''s lowcode sequences a range of their own (group id << 48, as Citus does), so that ids do not collide across nodes. Idempotent: run it again after adding a node (the new node gets its copies) or updating lowcode. Returns the tables it made reference tables. The runtime tables stay on the coordinator (docs/scale-out.md).';
