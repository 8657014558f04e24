-- lowcode 0.2.0 → 0.3.0, written by hand (`ALTER EXTENSION lowcode UPDATE TO '0.3.0'`).
--
-- 0.2.0 is frozen in sql/releases/lowcode--0.2.0.sql. Every change to lowcode's SQL after it
-- goes here as well as into sql/*.sql (in the order of sql/*.sql; a script that adds objects
-- ends with sql/hardening.sql's ownership, privileges and guard, so that an updated database
-- equals a fresh install). tests/system/upgrade.sh updates a lived-in 0.2.0 database with
-- this script and compares its catalog with a fresh install; upgrade_oldest.sh does the same
-- from 0.1.0 through every update script.
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------- the worker pool (sql/workflow.sql, sql/worker.sql)
-- A bounded pool of workers serves every database (src/worker.rs, src/dispatch.rs): the
-- writers of timers note their due time for it (src/worker_registry.rs).

CREATE FUNCTION lowcode.worker_databases() RETURNS TABLE (
	"database" TEXT,
	"state" TEXT,
	"pid" INT,
	"arrived" timestamp with time zone,
	"last_visit" timestamp with time zone,
	"next_due" timestamp with time zone,
	"visits" bigint,
	"detail" TEXT
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_databases_wrapper';

CREATE FUNCTION lowcode.worker_note_changed() RETURNS void
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_note_changed_wrapper';

CREATE FUNCTION lowcode.worker_note_due("fire_at" timestamp with time zone) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'worker_note_due_wrapper';

COMMENT ON FUNCTION lowcode.worker_databases() IS 'Internal: what lowcode''s worker pool knows about each database (state, worker pid, visits, next due time), read by lowcode.worker_status.';
COMMENT ON FUNCTION lowcode.worker_note_changed() IS 'Internal: lowcode was installed here or its webhooks changed: the worker pool looks at this database after the commit.';
COMMENT ON FUNCTION lowcode.worker_note_due(timestamptz) IS 'Internal: a timer written in this transaction is due then: the worker pool knows it after the commit.';
COMMENT ON TABLE lowcode.worker_state IS 'What lowcode''s workers did in this database (one row, written by each worker that visits it): the pid of the latest, the role it acts as (the extension''s owner), when its visit began, the last timer run and the timers fired, the last error. Not dumped: it describes running processes.';

CREATE OR REPLACE FUNCTION lowcode.approval_task(appr lowcode.approvals, approver text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    task_id  bigint;
    due_at   timestamptz := now() + appr.due;
BEGIN
    INSERT INTO lowcode.tasks (record_id, name, kind, approval_id, assignee, title, status, claimed_by, claimed_at, due_at)
    VALUES (appr.record_id, appr.name, 'approval', appr.id, approver, appr.name, 'claimed', approver, now(), due_at)
    RETURNING id INTO task_id;
    IF due_at IS NOT NULL THEN
        INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at)
        VALUES (appr.record_id, appr.name, 'deadline_passed:' || appr.name, task_id, due_at);
        PERFORM lowcode.worker_note_due(due_at);
    END IF;
    RETURN task_id;
END $$;
COMMENT ON FUNCTION lowcode.approval_task(lowcode.approvals, text) IS 'Internal: creates an approver''s decision task (and its deadline).';

CREATE OR REPLACE FUNCTION lowcode.create_webhook(name text, url text, topics text[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o       jsonb := coalesce(options, '{}');
    secret  text;
    unknown text;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'create webhooks');
    IF name IS NULL OR url IS NULL THEN
        RAISE EXCEPTION 'lowcode: create_webhook: arguments "name" and "url" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(o) k
     WHERE k NOT IN ('app', 'secret', 'headers', 'timeout', 'max_attempts', 'backoff', 'rate_limit');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: webhook %: unknown option(s) %', name, unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'options: app, secret, headers, timeout, max_attempts, backoff, rate_limit';
    END IF;
    secret := coalesce(o->>'secret',
                       'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'));
    PERFORM lowcode.webhook_check(url, secret);
    -- (Checked here, not by the table's CHECK alone: a failing row would be logged with its secret.)
    IF NOT coalesce((o->>'max_attempts')::int BETWEEN 1 AND 100, true) THEN
        RAISE EXCEPTION 'lowcode: webhook %: max_attempts must be between 1 and 100, not %', name, o->>'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lowcode.webhooks (name, url, topics, secret, headers, timeout_ms, max_attempts, backoff, rate_limit)
    VALUES (name, url, topics, secret, coalesce(o->'headers', '{}'),
            coalesce((extract(epoch FROM (o->>'timeout')::interval) * 1000)::int, 10000),
            coalesce((o->>'max_attempts')::int, 8),
            (SELECT array_agg(b::interval ORDER BY i) FROM jsonb_array_elements_text(o->'backoff') WITH ORDINALITY x(b, i)),
            (o->>'rate_limit')::int);
    PERFORM lowcode.webhook_consumer(name, o->>'app', topics, coalesce((o->>'max_attempts')::int, 8), true);
    PERFORM lowcode.worker_note_changed();
    RETURN secret;
END $$;
COMMENT ON FUNCTION lowcode.create_webhook(text, text, text[], jsonb) IS 'Create a webhook (lowcode administrators): the worker POSTs every event of topics (exact or prefix.*; NULL: all) from now on to url, which lowcode.webhook_allow must allow. options: app (only that app''s events; default every app), secret (whsec_...; default a new one), headers (object), timeout (interval, default 10 s), max_attempts (default 8), backoff (array of intervals), rate_limit (per second). Returns the secret: the only time it is shown.';

CREATE OR REPLACE FUNCTION lowcode.resume_webhook(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'resume webhooks');
    UPDATE lowcode.webhooks w SET status = 'active', disabled_reason = NULL WHERE w.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: webhook "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.worker_note_changed();
END $$;
COMMENT ON FUNCTION lowcode.resume_webhook(text) IS 'Send to a paused or disabled (410 Gone) webhook again (lowcode administrators), from the events that waited.';

-- worker_status: more columns (last_visit, next_due, visits) and the pool's states. (0.2.0's
-- guard refuses every drop of lowcode's objects, also from its own scripts: it steps aside
-- for this one. Event triggers never fire for ALTER EVENT TRIGGER.)
ALTER EVENT TRIGGER lowcode_guard_drop DISABLE;
DROP FUNCTION lowcode.worker_status();
ALTER EVENT TRIGGER lowcode_guard_drop ENABLE;
CREATE FUNCTION lowcode.worker_status()
RETURNS TABLE (database name, state text, pid int, acting_as name, started_at timestamptz, last_timer_run timestamptz,
               timers_fired bigint, last_error text, last_error_at timestamptz, detail text,
               last_visit timestamptz, next_due timestamptz, visits bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    launcher int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read the worker''s status');
    IF NOT lowcode.worker_preloaded() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'lowcode is not in shared_preload_libraries: timers fire only when something calls lowcode.run_due_timers(), and webhooks are not delivered'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    SELECT p.pid INTO launcher FROM lowcode.worker_processes() p WHERE p.kind = 'lowcode launcher' LIMIT 1;
    IF launcher IS NULL THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'the lowcode launcher is not running (starting, restarting after a crash, or out of max_worker_processes: see the server log)'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.database::name, d.state, d.pid, s.acting_as, d.arrived, s.last_timer_run, s.timers_fired,
           s.last_error, s.last_error_at, d.detail || format(' (launcher pid %s)', launcher),
           d.last_visit, d.next_due, d.visits
      FROM lowcode.worker_databases() d
      LEFT JOIN lowcode.worker_state s ON d.database = current_database()
     ORDER BY d.database = current_database() DESC, d.database;
END $$;
COMMENT ON FUNCTION lowcode.worker_status() IS 'lowcode''s background workers (lowcode administrators): one row per database that has lowcode (this one first): state on (a worker is there now, pid), starting, waiting (work is due and no worker is free, and why: lowcode.worker_max or max_worker_processes), idle (nothing due: a worker comes when something is) or off (and why); when the current or last visit began (started_at) and ended (last_visit), visits, when something is due next; for this database also the role the worker acts as, its last timer run, timers fired and last error.';

-- (sql/hardening.sql) The replaced SQL functions get their search_path back; the new
-- SECURITY DEFINER one goes to the extension's owner.
ALTER FUNCTION lowcode.approval_task(lowcode.approvals, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.worker_status() OWNER TO @extowner@;
REVOKE EXECUTE ON FUNCTION lowcode.worker_databases(), lowcode.worker_note_changed(),
    lowcode.worker_note_due(timestamptz), lowcode.worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lowcode.worker_databases(), lowcode.worker_note_changed(),
    lowcode.worker_note_due(timestamptz), lowcode.worker_status() TO @extowner@;
GRANT EXECUTE ON FUNCTION lowcode.worker_status() TO PUBLIC;

-- This database has lowcode 0.3.0: the worker pool looks at it after the commit.
SELECT lowcode.worker_note_changed();

-- ---------------------------------------------------------------- the guard (sql/hardening.sql, from the guard on)
-- Its bodies hold the privileges the scripts left: written again with the new functions'.
CREATE OR REPLACE FUNCTION lowcode.guard_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE OR REPLACE FUNCTION lowcode.guard_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
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
                SELECT 'r ', lc_c.oid::pg_catalog.regclass::pg_catalog.text,
                       coalesce(lc_c.relacl, pg_catalog.acldefault(CASE lc_c.relkind WHEN 'S' THEN 's' ELSE 'r' END::pg_catalog."char", lc_c.relowner))
                  FROM pg_catalog.pg_class lc_c
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
BEGIN
    IF ours IS NULL THEN
        RETURN;                            -- lowcode is being dropped
    END IF;
    FOR c IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        CONTINUE WHEN c.in_extension;
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
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.schema_name OPERATOR(pg_catalog.=) 'lowcode') THEN
        RETURN;
    END IF;
    -- DROP EXTENSION lowcode (or DROP SCHEMA lowcode CASCADE, DROP OWNED) takes lowcode with it.
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                WHERE d.object_type OPERATOR(pg_catalog.=) 'extension' AND d.object_identity OPERATOR(pg_catalog.=) 'lowcode')
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode') THEN
        RETURN;
    END IF;
    FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() d
              WHERE d.schema_name OPERATOR(pg_catalog.=) 'lowcode'
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
COMMENT ON EVENT TRIGGER lowcode_guard IS 'lowcode: its functions, tables, schema and privileges, and the triggers, rules and policies on its tables, change only with its extension scripts (lowcode.guard_ddl).';
COMMENT ON EVENT TRIGGER lowcode_guard_drop IS 'lowcode: its objects are dropped only with the extension (lowcode.guard_drop).';
