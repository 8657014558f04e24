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

-- An id for a row written on a shard without one. Citus makes shards without their table's
-- sequence defaults (it draws ids on the coordinator); on a distributed runtime the engine
-- writes an app's shards itself, on the app's node (src/placement.rs), so the shards of the
-- runtime tables draw from the node's sequence here, as the table's default would.
CREATE FUNCTION lowcode.fill_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.id := pg_catalog.nextval(TG_ARGV[0]::pg_catalog.regclass);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION lowcode.fill_id() IS 'Trigger of a distributed runtime table (lowcode.distribute(runtime => true)), for rows written without an id: the next value of the sequence named by its argument (Citus makes shards without the table''s sequence default).';

-- The runtime's keys and policies as Citus asks for them: keys that include the app (a unique
-- key or a foreign key of a distributed table includes its distribution column), and no
-- policies (the ones with subqueries; distribute() gives the distributed tables theirs).
-- Runs on every node, on that node's own tables (the workers' are the ones their CREATE
-- EXTENSION made, which Citus keeps as they are), with lowcode's guard off in the caller's
-- transaction; does nothing where it has run.
CREATE FUNCTION lowcode.runtime_keys() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    runtime_tables CONSTANT text[] := ARRAY['records', 'history', 'approvals', 'tasks', 'decisions',
                                            'timers', 'events', 'consumers', 'deliveries', 'leases',
                                            'webhook_attempts'];
    k  record;
BEGIN
    IF (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attname)
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                                        AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
         WHERE i.indrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass AND i.indisprimary)
       OPERATOR(pg_catalog.=) ARRAY['app', 'id'] THEN
        RETURN false;
    END IF;
    -- Citus places a row by its app: an event of no record has none.
    IF EXISTS (SELECT FROM lowcode.events e WHERE e.app IS NULL) THEN
        RAISE EXCEPTION 'lowcode: distribute: % outbox events name no app', (SELECT pg_catalog.count(*) FROM lowcode.events e WHERE e.app IS NULL)
            USING ERRCODE = 'not_null_violation',
                  HINT = 'the runtime is distributed by app: let every consumer pass them, then lowcode.purge_events()';
    END IF;
    -- A consumer lives beside its app's events: one of every app would read every node.
    IF EXISTS (SELECT FROM lowcode.consumers c WHERE c.app IS NULL) THEN
        RAISE EXCEPTION 'lowcode: distribute: consumers of every app (%) cannot be distributed by app',
                        (SELECT pg_catalog.string_agg(c.name, ', ' ORDER BY c.name) FROM lowcode.consumers c WHERE c.app IS NULL)
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'drop them (lowcode.drop_consumer) and make one consumer per app';
    END IF;
    DROP POLICY IF EXISTS readers ON lowcode.records;
    DROP POLICY IF EXISTS workers ON lowcode.tasks;
    FOR k IN SELECT c.conrelid::pg_catalog.regclass AS rel, c.conname
               FROM pg_catalog.pg_constraint c
              WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                AND c.confrelid OPERATOR(pg_catalog.=) ANY (ARRAY(
                      SELECT pg_catalog.format('lowcode.%I', r)::pg_catalog.regclass::pg_catalog.oid
                        FROM pg_catalog.unnest(runtime_tables OPERATOR(pg_catalog.||) 'webhooks'::pg_catalog.text) r)) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', k.rel, k.conname);
    END LOOP;
    FOR k IN SELECT c.conrelid::pg_catalog.regclass AS rel, c.conname
               FROM pg_catalog.pg_constraint c
              WHERE c.contype OPERATOR(pg_catalog.=) 'p'
                AND c.conrelid OPERATOR(pg_catalog.=) ANY (ARRAY(
                      SELECT pg_catalog.format('lowcode.%I', r)::pg_catalog.regclass::pg_catalog.oid
                        FROM pg_catalog.unnest(runtime_tables) r)) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (app, %s)',
                                  k.rel, k.conname, k.conname,
                                  CASE k.rel WHEN 'lowcode.consumers'::pg_catalog.regclass THEN 'name'
                                             WHEN 'lowcode.deliveries'::pg_catalog.regclass THEN 'consumer, event_id'
                                             ELSE 'id' END);
    END LOOP;
    ALTER TABLE lowcode.consumers ALTER COLUMN app SET NOT NULL;
    ALTER TABLE lowcode.deliveries ADD FOREIGN KEY (app, consumer) REFERENCES lowcode.consumers (app, name) ON DELETE CASCADE,
                                   ADD FOREIGN KEY (app, event_id) REFERENCES lowcode.events (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.leases ADD FOREIGN KEY (app, consumer) REFERENCES lowcode.consumers (app, name) ON DELETE CASCADE;
    ALTER TABLE lowcode.events ALTER COLUMN app SET NOT NULL;
    ALTER TABLE lowcode.approvals ADD FOREIGN KEY (app, record_id) REFERENCES lowcode.records (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.tasks ADD FOREIGN KEY (app, approval_id) REFERENCES lowcode.approvals (app, id) ON DELETE CASCADE;
    ALTER TABLE lowcode.decisions ADD FOREIGN KEY (app, approval_id) REFERENCES lowcode.approvals (app, id) ON DELETE CASCADE,
                                  ADD FOREIGN KEY (app, task_id) REFERENCES lowcode.tasks (app, id) ON DELETE CASCADE;
    -- A unique field combination's index (lowcode.add_unique) names the app first.
    FOR k IN SELECT u.* FROM lowcode.uniques u LOOP
        EXECUTE pg_catalog.format('DROP INDEX IF EXISTS lowcode.%I', k.index_name);
        EXECUTE lowcode.unique_index_ddl(k.index_name, k.app, k.form, k.fields, true);
    END LOOP;
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.runtime_keys() IS 'Internal (lowcode.distribute(runtime => true), on every node): gives lowcode''s runtime tables keys and foreign keys that include the app and the add_unique indexes the app first, and drops the policies with subqueries; false where it has run already.';

-- The definitions, in foreign-key order (a reference table may only refer to reference tables);
-- with runtime, the runtime tables too, distributed by app.
CREATE FUNCTION lowcode.distribute(runtime boolean DEFAULT false) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    definitions CONSTANT text[] := ARRAY['apps', 'forms', 'form_versions', 'workflow_versions',
                                         'grants', 'hidden_fields', 'schemas', 'uniques', 'call_grants'];
    -- Everything about a record, on the node of its app: records first, the others colocated;
    -- the outbox's consumers with their app's events and its epochs, a webhook's attempts with
    -- its app's.
    runtime_tables CONSTANT text[] := ARRAY['records', 'history', 'approvals', 'tasks', 'decisions',
                                            'timers', 'events', 'outbox_epochs', 'consumers', 'deliveries',
                                            'leases', 'webhook_attempts'];
    t     text;
    k     record;
    made  text[] := '{}';
    -- The caller's values of the settings set below, given back at the end.
    unsafe_triggers  text := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
    local_fk         text := pg_catalog.current_setting('citus.enable_local_reference_table_foreign_keys', true);
    unreached        text;
    guards           text[];
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
    -- The node's background worker waits while this changes lowcode's tables (each of its
    -- transactions takes ROW SHARE on lowcode.worker_state first, src/background.rs), and so
    -- on every worker below: a timer round holding the timers and waiting for the records,
    -- altered here, while this waited for the timers, was a deadlock. (A table of lowcode's,
    -- which only its owner can lock so: an advisory lock, any role could hold.)
    LOCK TABLE lowcode.worker_state IN EXCLUSIVE MODE;
    -- lowcode's tables have triggers (forms_written, forms_in_use, uniques_index,
    -- call_grants_check, form_versions_immutable; records_before and records_after): Citus
    -- copies them onto every node's copy or shard of the table, where they fire too; each of
    -- them reads or writes only that node (the runtime's: the shards of the same app).
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
    -- (distribute() run again, a node that has written since) is left alone. (Leases: group
    -- id << 32, as a delivery id is a lease id * 65536 + its position.)
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s (%s)', n.nodename, n.nodeport, r.result), ', '
                                 ORDER BY n.nodeid)
      INTO unreached
      FROM pg_catalog.run_command_on_all_nodes($node$
                 SELECT pg_catalog.count(pg_catalog.setval(s.oid::pg_catalog.regclass,
                                         g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) b.bits, false))
                   FROM pg_catalog.pg_class s, pg_catalog.pg_dist_local_group g,
                        LATERAL (SELECT CASE s.relname WHEN 'leases_id_seq' THEN 32 ELSE 48 END AS bits) b
                  WHERE s.relkind OPERATOR(pg_catalog.=) 'S'
                    AND s.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace
                    AND g.groupid OPERATOR(pg_catalog.>) 0
                    AND COALESCE(pg_catalog.pg_sequence_last_value(s.oid), 0)
                        OPERATOR(pg_catalog.<) (g.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) b.bits)
               $node$) r
      JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) r.nodeid
     WHERE NOT r.success;
    IF unreached IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: distribute: could not give every node its id range: %', unreached
            USING ERRCODE = 'connection_failure',
                  HINT = 'every node must be reachable from the coordinator (citus_check_cluster_node_health()); run lowcode.distribute() again';
    END IF;
    IF runtime AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                                WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass) THEN
        -- Changes to lowcode's tables, which its guard refuses outside the extension's
        -- scripts, to superusers too: it is off for this transaction only (other sessions see
        -- it on throughout: a catalog change is theirs at commit, and by then it is on
        -- again). On the workers, what Citus replays of this (the new policies) the guard
        -- lets through as a superuser's work on the coordinator.
        guards := ARRAY(SELECT e.evtname::pg_catalog.text FROM pg_catalog.pg_event_trigger e
                         WHERE e.evtname OPERATOR(pg_catalog.=) ANY (ARRAY['lowcode_guard', 'lowcode_guard_drop'])
                           AND e.evtenabled OPERATOR(pg_catalog.<>) 'D');
        FOREACH t IN ARRAY guards LOOP
            EXECUTE pg_catalog.format('ALTER EVENT TRIGGER %I DISABLE', t);
        END LOOP;
        -- Keys with the app, and no policies with subqueries: here, and on every worker's
        -- copies of the tables first (their policies would be in the way of Citus's).
        PERFORM lowcode.runtime_keys();
        SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s (%s)', w.nodename, w.nodeport, w.result), ', ')
          INTO unreached
          FROM pg_catalog.run_command_on_workers($node$
                   BEGIN;
                   LOCK TABLE lowcode.worker_state IN EXCLUSIVE MODE;
                   SET LOCAL citus.enable_ddl_propagation = off;
                   ALTER EVENT TRIGGER lowcode_guard DISABLE;
                   ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
                   SELECT lowcode.runtime_keys();
                   ALTER EVENT TRIGGER lowcode_guard ENABLE;
                   ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
                   COMMIT;
               $node$) w
         WHERE NOT w.success;
        IF unreached IS NOT NULL THEN
            RAISE EXCEPTION 'lowcode: distribute: could not prepare every node for the runtime: %', unreached
                USING ERRCODE = 'connection_failure',
                      HINT = 'every node must be reachable from the coordinator (citus_check_cluster_node_health()); run lowcode.distribute(runtime => true) again';
        END IF;
        -- The webhooks on every node: each node's worker delivers those of its apps.
        PERFORM pg_catalog.create_reference_table('lowcode.webhooks'::pg_catalog.regclass);
        made := made OPERATOR(pg_catalog.||) 'webhooks'::pg_catalog.text;
        FOREACH t IN ARRAY runtime_tables LOOP
            PERFORM pg_catalog.create_distributed_table(pg_catalog.format('lowcode.%I', t)::pg_catalog.regclass, 'app',
                        colocate_with => CASE t WHEN 'records' THEN 'none' ELSE 'lowcode.records' END);
            made := made OPERATOR(pg_catalog.||) t;
            -- Its shards (these and those Citus makes later, in a shard move) get the trigger;
            -- an event's also marks its app's epoch (lowcode.outbox_epochs: which node's
            -- transaction ids its events have, since a shard move).
            CONTINUE WHEN t OPERATOR(pg_catalog.=) ANY (ARRAY['outbox_epochs', 'consumers', 'deliveries']);
            IF t OPERATOR(pg_catalog.=) 'events' THEN
                CREATE TRIGGER outbox_epoch BEFORE INSERT ON lowcode.events FOR EACH ROW WHEN (NEW.id IS NULL)
                    EXECUTE FUNCTION lowcode.outbox_epoch_mark();
                CONTINUE;
            END IF;
            EXECUTE pg_catalog.format('CREATE TRIGGER fill_id BEFORE INSERT ON lowcode.%I FOR EACH ROW WHEN (NEW.id IS NULL) '
                                      'EXECUTE FUNCTION lowcode.fill_id(%L)',
                                      t, pg_catalog.pg_get_serial_sequence(pg_catalog.format('lowcode.%I', t), 'id'));
        END LOOP;
        -- The policies of sql/privileges.sql, with the apps as an array (read once per
        -- command) instead of a subquery.
        CREATE POLICY readers ON lowcode.records FOR SELECT USING (
            app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('read_all'))
            OR (owner OPERATOR(pg_catalog.=) lowcode.invoker_name()
                AND app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('read_own'))));
        CREATE POLICY workers ON lowcode.tasks FOR SELECT USING (
            lowcode.invoker_name() OPERATOR(pg_catalog.=) ANY (ARRAY[claimed_by, assignee])
            OR app OPERATOR(pg_catalog.=) ANY (lowcode.apps_granted('claim') OPERATOR(pg_catalog.||) lowcode.apps_granted('decide')
                                               OPERATOR(pg_catalog.||) lowcode.apps_granted('read_all')));
        COMMENT ON POLICY readers ON lowcode.records IS 'A role reads the records of apps where it holds read_all, and its own where it holds read_own (distributed runtime: the apps as an array, lowcode.apps_granted).';
        COMMENT ON POLICY workers ON lowcode.tasks IS 'A role sees the tasks of apps where it may claim, decide or read_all, and the tasks it holds (distributed runtime: the apps as an array, lowcode.apps_granted).';
        -- A submission runs on the node of its app: one round trip, one local transaction
        -- there (inside a transaction block too: force_delegation), on the app's shards as on
        -- one node's tables (src/placement.rs).
        PERFORM pg_catalog.create_distributed_function('lowcode.submit(text, text, jsonb)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        PERFORM pg_catalog.create_distributed_function('lowcode.submit(text, text, jsonb, int)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        -- And the calls that take only an id, once they know their app (src/placement.rs).
        PERFORM pg_catalog.create_distributed_function('lowcode.call_at(text, text, jsonb)'::pg_catalog.regprocedure, '$1',
                    colocate_with => 'lowcode.records', force_delegation => true);
        FOREACH t IN ARRAY guards LOOP
            EXECUTE pg_catalog.format('ALTER EVENT TRIGGER %I ENABLE', t);
        END LOOP;
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', local_fk, true);
    RETURN made;
END $$;
COMMENT ON FUNCTION lowcode.distribute(boolean) IS 'On a Citus coordinator (superusers): makes lowcode''s definitions (apps, forms, versions, schemas, workflows, grants) reference tables, copied to every node, so that every node validates against the same forms, and gives each node''s lowcode sequences a range of their own (group id << 48, as Citus does), so that ids do not collide across nodes. With runtime => true, also distributes the runtime (records, history, approvals, tasks, decisions, timers, events, the outbox''s consumers, deliveries and leases, webhook attempts) by app, colocated, with keys that include the app and policies without subqueries, makes the webhooks a reference table (every node''s worker delivers those of its apps), and runs lowcode.submit, the calls by id and the outbox calls on the node of their app (docs/scale-out.md says what works there so far). Idempotent: run it again after adding a node (the new node gets its copies) or updating lowcode. Returns the tables it made reference or distributed tables.';
