-- App privileges: lowcode.grant / revoke / hide_fields, enforced in lowcode's functions, in the
-- typed views and by row-level security on lowcode.records and lowcode.tasks. Every check
-- here runs as the role it is about (SET ROLE, and real connections with \c).
CREATE EXTENSION lowcode;
-- err(sql): run sql, show SQLSTATE, message, DETAIL and HINT of the error it raises.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nDETAIL: ' || nullif(d, ''), '') || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;

-- Roles are cluster-wide: made here, dropped at the end.
SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_p_reporter;
DROP ROLE IF EXISTS lc_p_reporter2;
DROP ROLE IF EXISTS lc_p_ann;
DROP ROLE IF EXISTS lc_p_engineers;
DROP ROLE IF EXISTS lc_p_manager;
DROP ROLE IF EXISTS lc_p_appadmin;
DROP ROLE IF EXISTS lc_p_appserver;
DROP ROLE IF EXISTS lc_p_outsider;
RESET client_min_messages;
CREATE ROLE lc_p_reporter LOGIN;
CREATE ROLE lc_p_reporter2 LOGIN;
CREATE ROLE lc_p_engineers NOLOGIN;
CREATE ROLE lc_p_ann LOGIN IN ROLE lc_p_engineers;
CREATE ROLE lc_p_manager LOGIN;
CREATE ROLE lc_p_appadmin LOGIN;
CREATE ROLE lc_p_appserver LOGIN;
CREATE ROLE lc_p_outsider LOGIN;
SELECT format('GRANT CREATE ON DATABASE %I TO lc_p_reporter2', current_database()) \gexec

-- The inspection app: a fault goes to the engineers' pool; cost is for managers only;
-- a repair over budget needs the manager's approval.
SELECT lowcode.create_app('insp', 'Equipment inspection');
SELECT lowcode.define_form('insp', 'fault', '{"type": "object", "required": ["machine"],
  "properties": {"machine": {"type": "string"}, "severity": {"type": "integer"},
                 "cost": {"type": "number"}, "note": {"type": "string"}, "who": {"type": "string"}}}');
CREATE FUNCTION public.lc_p_whoami(r jsonb) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_build_object('who', current_user::text) $$;
SELECT lowcode.define_workflow('insp', 'fault', '{
  "states": {"open": {"initial": true}, "fixing": {}, "approval": {}, "closed": {"final": true}},
  "transitions": [{"name": "start", "from": "open", "to": "fixing", "roles": ["lc_p_engineers"]},
                  {"name": "close", "from": ["open", "fixing"], "to": "closed"}],
  "rules": [{"name": "pool", "on": "created", "then": [{"task": {"name": "fix", "pool": "insp_engineers"}}]},
            {"name": "stamp", "on": "entered:fixing", "then": [{"call": "public.lc_p_whoami"}]},
            {"name": "budget", "on": "task_completed:fix", "when": {"properties": {"cost": {"minimum": 100}}},
             "then": [{"transition": "approval"},
                      {"approval": {"name": "spend", "mode": "any", "approvers": ["lc_p_manager"],
                                    "on_approve": "closed", "on_reject": "fixing"}}]}]}');
SELECT lowcode.publish('insp');
SELECT lowcode.create_app('other', 'Another app');
SELECT lowcode.define_form('other', 'note', '{"type": "object"}');

SELECT lowcode.grant('insp', 'lc_p_reporter', ARRAY['submit', 'read_own', 'update_own']);
SELECT lowcode.grant('insp', 'lc_p_reporter2', ARRAY['submit', 'read_own']);
SELECT lowcode.grant('insp', 'lc_p_engineers', ARRAY['read_all', 'claim']);
SELECT lowcode.grant('insp', 'lc_p_manager', ARRAY['read_all', 'decide', 'update_all']);
SELECT lowcode.grant('insp', 'lc_p_appadmin', ARRAY['admin']);
SELECT lowcode.grant('insp', 'lc_p_appserver', ARRAY['submit', 'read_own', 'act_as']);
SELECT lowcode.hide_fields('insp', 'fault', 'lc_p_engineers', ARRAY['cost']);
SELECT app, role, privilege FROM lowcode.grants ORDER BY role, privilege;
-- Granting checks its arguments.
SELECT pg_temp.err($$ SELECT lowcode.grant('insp', 'lc_p_reporter', ARRAY['read', 'submit']) $$);
SELECT pg_temp.err($$ SELECT lowcode.grant('insp', 'lc_p_nobody', ARRAY['submit']) $$);
SELECT pg_temp.err($$ SELECT lowcode.grant('nope', 'lc_p_reporter', ARRAY['submit']) $$);
SELECT pg_temp.err($$ SELECT lowcode.hide_fields('insp', 'nope', 'lc_p_reporter', ARRAY['cost']) $$);

-- ------------------------------------------------------------ submitting and reading
SET ROLE lc_p_reporter;
SELECT lowcode.submit('insp', 'fault', '{"machine": "press 1", "severity": 3, "cost": 40}') AS r1 \gset
INSERT INTO insp.fault (machine, severity, cost) VALUES ('press 2', 2, 150) RETURNING machine, cost, state;
-- Invalid data is still refused for everyone, and so is asking to skip validation.
SELECT pg_temp.err($$ SELECT lowcode.submit('insp', 'fault', '{"severity": 1}') $$);
SET lowcode.replay = on;
SELECT pg_temp.err($$ SELECT lowcode.submit('insp', 'fault', '{"severity": 1}') $$);
RESET lowcode.replay;
-- No other app.
SELECT pg_temp.err($$ SELECT lowcode.submit('other', 'note', '{}') $$);
RESET ROLE;
SET ROLE lc_p_reporter2;
SELECT lowcode.submit('insp', 'fault', '{"machine": "lathe", "severity": 1, "cost": 5}') AS r3 \gset
-- read_own: only its own records, in the view, the table and the functions.
SELECT machine, cost FROM insp.fault ORDER BY id;
SELECT count(*) AS records_seen FROM lowcode.records;
SELECT pg_temp.err(format('SELECT lowcode.get_record(%s)', :r1));
SELECT pg_temp.err(format('SELECT * FROM lowcode.record_history(%s)', :r1));
-- Record data is read through what hides fields, never from the table.
SELECT pg_temp.err('SELECT data FROM lowcode.records');
RESET ROLE;

-- Engineers (through their group role) read everything but cost.
SET ROLE lc_p_ann;
SELECT machine, severity, cost, state FROM insp.fault ORDER BY id;
SELECT data FROM lowcode.read_records('insp', 'fault');
SELECT (lowcode.get_record(:r1)).data;
SELECT action, after FROM lowcode.record_history(:r1) ORDER BY id;
SELECT app, form, state FROM lowcode.records ORDER BY id;
-- ... but may not submit, change or delete.
SELECT pg_temp.err($$ SELECT lowcode.submit('insp', 'fault', '{"machine": "x"}') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"machine": "x"}') $$, :r1));
SELECT pg_temp.err(format('UPDATE insp.fault SET note = %L WHERE id = %s', 'x', :r1));
SELECT pg_temp.err(format('DELETE FROM insp.fault WHERE id = %s', :r1));
SELECT pg_temp.err(format('SELECT lowcode.delete_record(%s)', :r1));
SELECT pg_temp.err('UPDATE lowcode.records SET state = ''closed''');
RESET ROLE;

-- update_own: the reporter changes its own record, not another's.
SET ROLE lc_p_reporter;
SELECT lowcode.update_record(:r1, '{"machine": "press 1", "severity": 4, "cost": 40}');
UPDATE insp.fault SET note = 'oil leak' WHERE machine = 'press 2';
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"machine": "mine now"}') $$, :r3));
SELECT machine, severity, note FROM insp.fault ORDER BY id;
RESET ROLE;

-- Outsiders see nothing and may do nothing.
SET ROLE lc_p_outsider;
SELECT count(*) AS view_rows FROM insp.fault;
SELECT count(*) AS records_seen FROM lowcode.records;
SELECT count(*) AS tasks_seen FROM lowcode.tasks;
SELECT count(*) AS readable FROM lowcode.read_records('insp', 'fault');
SELECT pg_temp.err($$ INSERT INTO insp.fault (machine) VALUES ('x') $$);
SELECT pg_temp.err($$ SELECT lowcode.claim_task('insp_engineers') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'close') $$, :r1));
SELECT pg_temp.err($$ SELECT lowcode.define_form('insp', 'fault', '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app('mine') $$);
SELECT pg_temp.err($$ SELECT lowcode.grant('insp', 'lc_p_outsider', ARRAY['admin']) $$);
SELECT pg_temp.err($$ SELECT lowcode.publish('insp') $$);
SELECT pg_temp.err('SELECT * FROM lowcode.history');
SELECT pg_temp.err('SELECT lowcode.run_due_timers()');
SELECT pg_temp.err($$ SELECT lowcode.poll_events('spy') $$);
-- Acting as someone else needs act_as.
SET lowcode.actor = 'lc_p_manager';
SELECT pg_temp.err($$ SELECT lowcode.claim_task('insp_engineers') $$);
RESET lowcode.actor;
RESET ROLE;

-- ------------------------------------------------------------ tasks and approvals
-- Engineers see and claim the pool's tasks; the first task's record is moved by a member
-- of the role its transition names; the call action runs as that engineer, not as lowcode.
SET ROLE lc_p_ann;
SELECT t.name, t.status, r.id = :r1 AS first FROM lowcode.tasks t JOIN lowcode.records r ON r.id = t.record_id ORDER BY t.id;
SELECT lowcode.claim_task('insp_engineers') AS task1 \gset
SELECT lowcode.transition(:r1, 'start');
SELECT data ->> 'who' AS call_ran_as FROM lowcode.read_records('insp', 'fault') WHERE id = :r1;
SELECT lowcode.claim_task('insp_engineers') AS task2 \gset
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'close') $$, :r1));
RESET ROLE;
-- Someone else cannot complete ann's task, even with the claim privilege.
SET ROLE lc_p_reporter;
SELECT pg_temp.err(format($$ SELECT lowcode.complete_task(%s, 'fixed') $$, :task2));
RESET ROLE;
SET ROLE lc_p_ann;
SELECT lowcode.complete_task(:task2, 'fixed');
RESET ROLE;
-- press 2 cost 150: the approval goes to the manager; engineers may not decide.
SELECT id AS approval_task FROM lowcode.tasks WHERE kind = 'approval' \gset
SET ROLE lc_p_ann;
SELECT pg_temp.err(format($$ SELECT lowcode.decide(%s, 'approve') $$, :approval_task));
RESET ROLE;
SET ROLE lc_p_manager;
SELECT name, kind, status FROM lowcode.tasks ORDER BY id;
SELECT lowcode.decide(:approval_task, 'approve');
SELECT machine, state FROM insp.fault ORDER BY id;
RESET ROLE;
SELECT action, actor FROM lowcode.history WHERE record_id = :r1 ORDER BY id;

-- ------------------------------------------------------------ an app server acting for users
SET ROLE lc_p_appserver;
SET lowcode.actor = 'wang (badge 7)';
SELECT lowcode.submit('insp', 'fault', '{"machine": "drill"}') AS r4 \gset
RESET lowcode.actor;
SELECT machine FROM insp.fault ORDER BY id;
RESET ROLE;
SELECT created_by, owner FROM lowcode.records WHERE id = :r4;

-- ------------------------------------------------------------ an app's admin
SET ROLE lc_p_appadmin;
SELECT lowcode.define_form('insp', 'checklist', '{"type": "object", "properties": {"ok": {"type": "boolean"}}}');
SELECT lowcode.publish('insp');
SELECT lowcode.grant('insp', 'lc_p_outsider', ARRAY['read_own']);
SELECT lowcode.revoke('insp', 'lc_p_outsider', ARRAY['read_own']);
SELECT lowcode.show_fields('insp', 'fault', 'lc_p_engineers', ARRAY['cost']);
SELECT lowcode.hide_fields('insp', 'fault', 'lc_p_engineers', ARRAY['cost']);
SELECT pg_temp.err($$ SELECT lowcode.grant('other', 'lc_p_appadmin', ARRAY['submit']) $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('other', 'note', '{"type": "object", "required": ["x"]}') $$);
-- Running code as another role is for lowcode's engine only.
SELECT pg_temp.err($$ SELECT lowcode.call_as('lc_p_appadmin', 'SELECT NULL::jsonb', '{}') $$);
RESET ROLE;

-- ------------------------------------------------------------ real connections
\c - lc_p_reporter
SELECT lowcode.invoker_name() AS connected_as, current_user;
SELECT machine FROM insp.fault ORDER BY id;
\c - lc_p_ann
SELECT machine, cost FROM insp.fault ORDER BY id;
SELECT count(*) AS tasks_seen FROM lowcode.tasks;
\c - lc_p_outsider
SELECT count(*) AS view_rows FROM insp.fault;
-- A look-alike = for text ahead on the search path does not open other people's rows.
\c - lc_p_reporter2
CREATE SCHEMA lc_p_evil;
CREATE FUNCTION lc_p_evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR lc_p_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = lc_p_evil.yes);
SET search_path = lc_p_evil, pg_catalog, public;
SELECT 'a'::text = 'b'::text AS lookalike_active;
SELECT count(*) AS records_seen FROM lowcode.records;
SELECT count(*) AS view_rows FROM insp.fault;
SELECT count(*) AS readable FROM lowcode.read_records('insp', 'fault');
RESET search_path;
DROP SCHEMA lc_p_evil CASCADE;
\c - postgres

-- Clean up.
SET client_min_messages = warning;
DROP SCHEMA insp CASCADE;
DROP SCHEMA IF EXISTS lc_p_evil CASCADE;
DROP FUNCTION public.lc_p_whoami(jsonb);
DROP OWNED BY lc_p_reporter, lc_p_reporter2, lc_p_ann, lc_p_engineers, lc_p_manager, lc_p_appadmin, lc_p_appserver, lc_p_outsider;
DROP ROLE lc_p_reporter;
DROP ROLE lc_p_reporter2;
DROP ROLE lc_p_ann;
DROP ROLE lc_p_engineers;
DROP ROLE lc_p_manager;
DROP ROLE lc_p_appadmin;
DROP ROLE lc_p_appserver;
DROP ROLE lc_p_outsider;
RESET client_min_messages;
