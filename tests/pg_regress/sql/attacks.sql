-- Attacks (issue: security before 0.2.0 ships). Each section is one line of the table of
-- attacks, tried the way the hostile role would, in a superuser install; each must fail with
-- a clear error and leave no role changed. tests/system/attacks.sh tries the ones that need a
-- trusted install, the background worker or the server's environment.
CREATE EXTENSION lowcode;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS lc_a CASCADE;
DROP SCHEMA IF EXISTS lc_a_evil CASCADE;
DROP ROLE IF EXISTS lc_a_admin;
DROP ROLE IF EXISTS lc_a_clerk;
DROP ROLE IF EXISTS lc_a_editor;
RESET client_min_messages;
CREATE ROLE lc_a_admin;     -- admin of app shop
CREATE ROLE lc_a_clerk;     -- submits in shop
CREATE ROLE lc_a_editor;    -- edits payroll, salary hidden from it
CREATE SCHEMA lc_a AUTHORIZATION lc_a_admin;
CREATE SCHEMA lc_a_evil AUTHORIZATION lc_a_clerk;

SELECT lowcode.create_app('shop', 'Canteen');
SELECT lowcode.create_app('payroll', 'Payroll');
SELECT lowcode.define_form('shop', 'order', '{"type": "object",
  "properties": {"item": {"type": "string"}, "probe": {"type": "object"}, "stamp": {"type": "object"}}}');
SELECT lowcode.define_form('payroll', 'payment', '{"type": "object",
  "properties": {"who": {"type": "string"}, "salary": {"type": "number"}}}');
SELECT lowcode.grant('shop', 'lc_a_admin', ARRAY['admin']);
SELECT lowcode.grant('shop', 'lc_a_clerk', ARRAY['submit', 'read_own']);
SELECT lowcode.grant('payroll', 'lc_a_editor', ARRAY['read_all', 'update_all']);
SELECT lowcode.hide_fields('payroll', 'payment', 'lc_a_editor', ARRAY['salary']);

-- ------------------------------------------------------------ 1, 6. an app admin's call
-- The admin of shop writes a call function that tries to take over: grant itself payroll,
-- make itself superuser, SET ROLE, and leave settings behind in the session that fired it.
SET ROLE lc_a_admin;
CREATE FUNCTION lc_a.probe(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    res jsonb := jsonb_build_object('user', current_user::text, 'invoker', lowcode.invoker()::regrole::text,
                                    'is_admin', lowcode.is_admin(), 'search_path', current_setting('search_path'));
BEGIN
    BEGIN
        PERFORM lowcode.grant('payroll', 'lc_a_admin', ARRAY['admin']);
        res := res || '{"grant_payroll": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('grant_payroll', SQLSTATE);
    END;
    BEGIN
        EXECUTE 'ALTER ROLE lc_a_admin SUPERUSER';
        res := res || '{"superuser": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('superuser', SQLSTATE);
    END;
    BEGIN
        EXECUTE 'SET ROLE postgres';
        res := res || '{"set_role": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('set_role', SQLSTATE);
    END;
    BEGIN
        EXECUTE 'CREATE TEMP TABLE lc_a_trap (x int)';
        res := res || '{"temp_table": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('temp_table', SQLSTATE);
    END;
    PERFORM set_config('search_path', 'lc_a, pg_catalog', false);
    PERFORM set_config('lowcode.replay', 'on', false);
    PERFORM set_config('work_mem', '1MB', false);
    RETURN jsonb_build_object('probe', res);
END $$;
SELECT lowcode.define_workflow('shop', 'order', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "probe", "on": "created", "then": [{"call": "lc_a.probe"}]}]}');
RESET ROLE;
-- A superuser fires the rule (as the worker and run_due_timers did).
SET work_mem = '4MB';
SELECT lowcode.submit('shop', 'order', '{"item": "tea"}') AS o1 \gset
SELECT jsonb_pretty(data -> 'probe') FROM lowcode.records WHERE id = :o1;
-- Nothing the call did outlives it, and nobody gained anything.
SELECT current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
       current_setting('lowcode.replay', true) IS DISTINCT FROM 'on' AS replay_off;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'lc_a_%' ORDER BY 1;
SELECT lowcode.privileges_of('payroll', 'lc_a_admin') AS payroll_privileges_of_shop_admin;
-- The call ran as its publisher: lowcode.call_grants says so, and nobody but lowcode writes it.
SELECT g.name, g.function, g.run_as FROM lowcode.call_grants g
  JOIN lowcode.workflow_versions w ON w.id = g.workflow_version_id WHERE w.app = 'shop';
SET ROLE lc_a_admin;
SELECT pg_temp.err($$ INSERT INTO lowcode.call_grants VALUES (1, 'x', 'lc_a.probe(jsonb)', 'postgres') $$);
-- grant_calls records the role at the keyboard, never an argument, and is not the API.
SELECT pg_temp.err($$ SELECT lowcode.grant_calls(1, ARRAY['x'], ARRAY['lc_a.probe(jsonb)'::regprocedure::oid]) $$);
RESET ROLE;

-- ------------------------------------------------------------ 2. code as another role
-- There is no SQL function that runs a query as another role.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'lowcode'::regnamespace AND p.proname IN ('call_as', 'call_as_invoker');

-- ------------------------------------------------------------ 5. the firer's search_path
-- An app role with only submit puts look-alikes ahead on its search_path: the function a call
-- names was resolved when the workflow was published, and the call runs with
-- search_path = pg_catalog, pg_temp, so neither look-alike runs.
SET ROLE lc_a_admin;
CREATE FUNCTION lc_a.stamp(r jsonb) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_build_object('stamp', jsonb_build_object('by', 'publisher', 'user', current_user::text)) $$;
SELECT lowcode.define_workflow('shop', 'order', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "stamp", "on": "created", "then": [{"call": "lc_a.stamp"}]}]}');
RESET ROLE;
SET ROLE lc_a_clerk;
CREATE FUNCTION lc_a_evil.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql
AS $$ SELECT '{"stamp": {"by": "the look-alike jsonb_build_object"}}'::pg_catalog.jsonb $$;
CREATE FUNCTION lc_a_evil.stamp(r jsonb) RETURNS jsonb LANGUAGE sql
AS $$ SELECT '{"stamp": {"by": "the look-alike stamp"}}'::pg_catalog.jsonb $$;
SET search_path = lc_a_evil, pg_catalog, public;
SELECT lowcode.submit('shop', 'order', '{"item": "coffee"}') AS o2 \gset
RESET search_path;
RESET ROLE;
SELECT data -> 'stamp' AS stamp FROM lowcode.records WHERE id = :o2;

-- ------------------------------------------------------------ 7. events belong to their app
SET ROLE lc_a_admin;
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('shop', 'order', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "forge", "on": "created", "then": [{"emit": {"topic": "payroll.payment_approved"}}]}]}') $$);
-- A payload cannot override the envelope lowcode sets.
SELECT lowcode.define_workflow('shop', 'order', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "paid", "on": "created", "then": [{"emit": {"topic": "shop.paid",
     "payload": {"app": "payroll", "record": 999999, "form": "payment", "data": {"amount": 1000000}, "note": "kept"}}}]},
            {"name": "later", "on": "updated", "then": [{"emit": {"topic": "hr.hired"}}]}]}');
RESET ROLE;
SELECT lowcode.submit('shop', 'order', '{"item": "cake"}') AS o3 \gset
SELECT e.topic, e.app, e.payload ->> 'app' AS payload_app, (e.payload ->> 'record')::bigint = :o3 AS own_record,
       e.payload ->> 'form' AS form, e.payload -> 'data' AS data, e.payload ->> 'note' AS note
  FROM lowcode.events e WHERE e.record_id = :o3;
-- An app created after the workflow was published: the topic is checked again when the rule runs.
SELECT lowcode.create_app('hr', 'Hiring');
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"item": "cake", "note": 1}') $$, :o3));
-- A consumer of payroll never sees shop's events.
SELECT lowcode.create_consumer('payroll_audit', '{"app": "payroll", "from": "beginning"}');
SELECT count(*) AS payroll_events FROM lowcode.poll_events('payroll_audit');

-- ------------------------------------------------------------ 9. hidden values in errors
SELECT lowcode.submit('payroll', 'payment', '{"who": "wang", "salary": 187345}') AS p1 \gset
-- The form tightens; the editor, who cannot see salary, changes another field.
SELECT lowcode.define_form('payroll', 'payment', '{"type": "object",
  "properties": {"who": {"type": "string"}, "salary": {"type": "number", "maximum": 150000}}}');
SET ROLE lc_a_editor;
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"who": "wang li"}') $$, :p1)) AS refused;
SELECT position('187345' IN pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"who": "wang li"}') $$, :p1))) AS value_shown;
RESET ROLE;
-- An administrator, who sees salary, is told the value.
SELECT position('187345' IN pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"who": "wang li", "salary": 187345}') $$, :p1))) > 0 AS admin_sees_value;

-- ------------------------------------------------------------ 10. every valid record reads through its view
SELECT lowcode.create_app('types', 'Every type');
SELECT lowcode.define_form('types', 'all', '{"type": "object", "properties": {
  "n": {"type": "integer"},
  "b": {"type": "integer", "minimum": -9223372036854775807, "maximum": 9223372036854775807},
  "small": {"type": "integer", "minimum": 1, "maximum": 5},
  "x": {"type": "number"},
  "d": {"type": "string", "format": "date"},
  "t": {"type": "string", "format": "date-time"},
  "ok": {"type": "boolean"}}}');
SELECT lowcode.publish('types');
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'types' AND table_name = 'all' AND column_name IN ('n', 'b', 'small', 'x', 'd', 't', 'ok')
 ORDER BY ordinal_position;
-- Boundary values the validator accepts.
SELECT lowcode.submit('types', 'all', v) FROM (VALUES
  ('{"n": 1.0, "b": 1e2, "small": 5.0, "x": 1e400, "d": "0001-01-01", "t": "0001-01-01T00:00:00Z", "ok": true}'::jsonb),
  ('{"n": 1e20, "b": 9223372036854775807, "small": 1, "x": -0.5, "d": "9999-12-31", "t": "9999-12-31T23:59:59.999999-15:59"}'),
  ('{"n": -1e30, "b": -9223372036854775807, "d": "2024-02-29", "t": "2026-11-29t10:00:00.123456789z"}'),
  ('{"t": "2016-12-31T23:59:60Z"}'),
  ('{"t": "2026-06-30T10:00:00+15:59"}')) AS v(v);
SELECT n, b, small, x < 0 AS x_negative, d, t AT TIME ZONE 'UTC' AS t_utc, ok FROM types."all" ORDER BY id;
-- What PostgreSQL cannot hold is not a date: refused when written, not when read.
SELECT pg_temp.err($$ SELECT lowcode.submit('types', 'all', '{"d": "0000-01-01"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('types', 'all', '{"t": "0000-12-31T23:59:59Z"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('types', 'all', '{"t": "2026-11-29T10:00:00+16:00"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('types', 'all', '{"b": 9223372036854775808}') $$);

-- ------------------------------------------------------------ 3, item 4. the guard
-- Even a superuser changes lowcode only with its extension scripts (or by disabling the
-- guard on purpose); tests/system/attacks.sh tries every command tag as a trusted install's
-- owner.
SELECT q, pg_temp.err(q) ~ '^42501 lowcode: .* refused' AS refused FROM (VALUES
  ('ALTER ROUTINE lowcode.run_due_timers(int) SECURITY INVOKER'),
  ('ALTER ROUTINE lowcode.run_due_timers(int) SET search_path = lc_a_evil, pg_catalog'),
  ('ALTER FUNCTION lowcode.submit(text, text, jsonb) RESET search_path'),
  ('ALTER FUNCTION lowcode.is_admin() OWNER TO lc_a_admin'),
  ('ALTER FUNCTION lowcode.is_admin() RENAME TO is_admin_old'),
  ('ALTER FUNCTION lowcode.is_admin() SET SCHEMA lc_a'),
  ('ALTER FUNCTION lowcode.is_admin() DEPENDS ON EXTENSION plpgsql'),
  ('ALTER TABLE lowcode.records DISABLE TRIGGER USER'),
  ('ALTER TABLE lowcode.records NO FORCE ROW LEVEL SECURITY'),
  ('ALTER TABLE lowcode.records DISABLE ROW LEVEL SECURITY'),
  ('ALTER TABLE lowcode.records OWNER TO lc_a_admin'),
  ('ALTER TABLE lowcode.timers ADD COLUMN x int'),
  ('DROP TRIGGER records_before ON lowcode.records'),
  ('ALTER SCHEMA lowcode RENAME TO lowcode_old'),
  ('ALTER SCHEMA lowcode OWNER TO lc_a_admin'),
  ('CREATE FUNCTION lowcode.may(varchar, varchar) RETURNS boolean LANGUAGE sql AS ''SELECT true'''),
  ('CREATE VIEW lowcode.v AS SELECT 1'),
  ('CREATE RULE r AS ON INSERT TO lowcode.records DO ALSO NOTHING'),
  ('COMMENT ON FUNCTION lowcode.is_admin() IS ''mine'''),
  ('GRANT EXECUTE ON FUNCTION lowcode.with_cause(jsonb) TO PUBLIC'),
  ('GRANT INSERT ON lowcode.history TO PUBLIC'),
  ('GRANT CREATE ON SCHEMA lowcode TO PUBLIC')) AS x(q);
-- A REVOKE takes away only (pg_restore re-applies privileges that way), and lowcode's own DDL
-- (add_unique's index) still works.
SELECT pg_temp.err($$ REVOKE ALL ON lowcode.history FROM lc_a_clerk $$);
SELECT lowcode.add_unique('shop', 'order', ARRAY['item']) IS NOT NULL AS unique_added;
SELECT lowcode.drop_unique('shop', 'order', ARRAY['item']) AS unique_dropped;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'lc_a_%' ORDER BY 1;

SET client_min_messages = warning;
DROP OWNED BY lc_a_admin, lc_a_clerk, lc_a_editor CASCADE;
DROP ROLE lc_a_admin;
DROP ROLE lc_a_clerk;
DROP ROLE lc_a_editor;
