-- The trust boundary: no app role can skip a workflow, forge history, lose data it cannot
-- see, borrow another role's rights, or run lowcode's internals. Each section is one hole
-- found in 0.1.0, tried the way a hostile role would, and fails on 0.1.0.
CREATE EXTENSION lowcode;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || m || coalesce(E'\nHINT: ' || nullif(h, ''), '');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

SET client_min_messages = warning;
DROP ROLE IF EXISTS lc_t_reporter;
DROP ROLE IF EXISTS lc_t_editor;
DROP ROLE IF EXISTS lc_t_admin;
DROP ROLE IF EXISTS lc_t_server;
DROP ROLE IF EXISTS lc_t_fresh;
RESET client_min_messages;
CREATE ROLE lc_t_reporter;
CREATE ROLE lc_t_editor;
CREATE ROLE lc_t_admin;
CREATE ROLE lc_t_server;
CREATE ROLE lc_t_fresh;

SELECT lowcode.create_app('plant', 'Equipment inspection');
SELECT lowcode.define_form('plant', 'fault', '{"type": "object", "required": ["machine"],
  "properties": {"machine": {"type": "string"}, "name": {"type": "string"}, "salary": {"type": "number"},
                 "priority": {"type": "string"}}}');
SELECT lowcode.define_workflow('plant', 'fault', '{
  "states": {"open": {"initial": true}, "fixing": {}, "done": {"final": true}},
  "transitions": [{"name": "start", "from": "open", "to": "fixing"},
                  {"name": "finish", "from": "fixing", "to": "done"}],
  "rules": [{"name": "pool", "on": "created",
             "then": [{"task": {"name": "fix", "pool": "plant_eng"}}, {"emit": {"topic": "fault.new"}}]},
            {"name": "prioritize", "on": "entered:fixing", "then": [{"set": {"priority": "high"}}]}]}');
SELECT lowcode.publish('plant');
SELECT lowcode.create_app('shop', 'Canteen');
SELECT lowcode.define_form('shop', 'order', '{"type": "object"}');

SELECT lowcode.grant('plant', 'lc_t_reporter', ARRAY['submit', 'read_own']);
SELECT lowcode.grant('plant', 'lc_t_editor', ARRAY['read_all', 'update_all']);
SELECT lowcode.hide_fields('plant', 'fault', 'lc_t_editor', ARRAY['salary']);
SELECT lowcode.grant('plant', 'lc_t_admin', ARRAY['admin']);
SELECT lowcode.grant('plant', 'lc_t_server', ARRAY['submit', 'read_own', 'act_as']);
SELECT lowcode.grant('shop', 'lc_t_server', ARRAY['submit', 'read_own']);

-- ------------------------------------------------------------ 1. internal state is not a setting
-- A role with submit and read_own claims to be a migration (0.1.0 then ran no rule and wrote
-- the forged cause into history) and fakes a rule chain at the cascade limit.
SET ROLE lc_t_reporter;
SET lowcode.cause = '{"migration": 1, "note": "approved"}';
SET lowcode.rule_chain = 'a → b → c → d → e → f → g → h → i → j → k → l → m → n → o → p → q → r → s → t → u → v → w → x → y → z → aa → bb → cc → dd → ee → ff';
SELECT lowcode.submit('plant', 'fault', '{"machine": "press 1"}') AS f1 \gset
RESET lowcode.cause;
RESET lowcode.rule_chain;
-- The engine's state is lowcode's own: its functions are not the role's to call.
SELECT pg_temp.err($$ SELECT lowcode.with_cause('{"migration": 1}') $$);
SELECT pg_temp.err($$ SELECT lowcode.set_rule_chain('x') $$);
-- Nor is spreading lowcode over a Citus cluster (superusers only).
SELECT pg_temp.err($$ SELECT lowcode.distribute() $$);
RESET ROLE;
-- A superuser in a database without Citus is told what distribute needs.
SELECT pg_temp.err($$ SELECT lowcode.distribute() $$);
-- The rules ran (a task, an event) and history tells the truth.
SELECT count(*) AS tasks FROM lowcode.tasks WHERE record_id = :f1;
SELECT count(*) AS events FROM lowcode.events WHERE record_id = :f1;
SELECT action, actor, detail FROM lowcode.history WHERE record_id = :f1 ORDER BY id;
-- The engine's state behaves like SET LOCAL: a subtransaction that rolls back restores it,
-- and it is gone when the transaction ends.
BEGIN;
SELECT lowcode.with_cause('{"transition": "outer"}') AS before;
SAVEPOINT s;
SELECT lowcode.with_cause('{"rule": "inner"}') AS outer_was;
SELECT lowcode.cause() AS inner_now;
ROLLBACK TO SAVEPOINT s;
SELECT lowcode.cause() AS after_rollback;
SAVEPOINT t;
SELECT lowcode.with_cause('{"rule": "kept"}') IS NOT NULL AS set_in_savepoint;
RELEASE SAVEPOINT t;
SELECT lowcode.cause() AS after_release;
COMMIT;
SELECT lowcode.cause() AS after_commit;
-- And the cause of a real change is still recorded.
SELECT lowcode.transition(:f1, 'start');
SELECT action, detail FROM lowcode.history WHERE record_id = :f1 AND action IN ('transition', 'rule') ORDER BY id;

-- ------------------------------------------------------------ 2. hidden fields survive edits
SELECT lowcode.submit('plant', 'fault', '{"machine": "lathe", "name": "ann", "salary": 5000}') AS f2 \gset
SET ROLE lc_t_editor;
-- It reads the record without salary, changes the name and writes it back: salary stays.
SELECT data FROM lowcode.get_record(:f2);
SELECT lowcode.update_record(:f2, (SELECT data FROM lowcode.get_record(:f2)) || '{"name": "bo"}');
-- Setting or removing the hidden field is refused, whatever the value (no guessing).
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"machine": "lathe", "salary": 1}') $$, :f2));
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"machine": "lathe", "salary": 5000}') $$, :f2));
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '"not an object"') $$, :f2));
-- The typed view: editing a column keeps salary; setting salary is refused.
UPDATE plant.fault SET name = 'cy' WHERE id = :f2 RETURNING name, salary;
SELECT pg_temp.err(format($$ UPDATE plant.fault SET salary = 1 WHERE id = %s $$, :f2));
-- A transition payload may not set it either; the rule the transition triggers keeps it.
SELECT pg_temp.err(format($$ SELECT lowcode.transition(%s, 'start', '{"salary": 0}') $$, :f2));
SELECT lowcode.transition(:f2, 'start', '{"name": "di"}');
RESET ROLE;
SELECT data FROM lowcode.records WHERE id = :f2;
-- Administrators see every field and may change it.
SELECT lowcode.update_record(:f2, (SELECT data FROM lowcode.records WHERE id = :f2) || '{"salary": 6000}');
SELECT data ->> 'salary' AS salary FROM lowcode.records WHERE id = :f2;

-- ------------------------------------------------------------ 3. calls run as the workflow's publisher
-- An app admin (nothing else) writes a function that makes it (lc_t_admin) a superuser, and
-- hooks it to a timer. In 0.1.0 it ran as whoever fired the rule: a superuser's timer run.
CREATE FUNCTION public.lc_t_escalate(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE lc_t_admin SUPERUSER;
    RETURN '{}';
END $$;
ALTER FUNCTION public.lc_t_escalate(jsonb) OWNER TO lc_t_admin;
CREATE FUNCTION public.lc_t_whoami(r jsonb) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_build_object('name', current_user::text) $$;
CREATE FUNCTION public.lc_t_private(r jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
REVOKE EXECUTE ON FUNCTION public.lc_t_private(jsonb) FROM PUBLIC;
SELECT lowcode.define_form('plant', 'check', '{"type": "object", "properties": {"name": {"type": "string"}}}');
SET ROLE lc_t_admin;
-- Publishing a call of a function the publisher may not execute, or that does not exist, is refused.
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('plant', 'check', '{"states": {"s": {"initial": true}},
  "rules": [{"name": "p", "on": "created", "then": [{"call": "public.lc_t_private"}]}]}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('plant', 'check', '{"states": {"s": {"initial": true}},
  "rules": [{"name": "p", "on": "created", "then": [{"call": "public.lc_t_nothing"}]}]}') $$);
SELECT lowcode.define_workflow('plant', 'check', '{"states": {"s": {"initial": true}},
  "rules": [{"name": "stamp", "on": "created", "then": [{"call": "public.lc_t_whoami"}, {"timer": {"name": "later", "after": "1 hour"}}]},
            {"name": "boom", "on": "timer:later", "then": [{"call": "public.lc_t_escalate"}]}]}');
RESET ROLE;
SELECT calls_run_as FROM lowcode.workflow_versions WHERE app = 'plant' AND form = 'check';
-- Fired by the reporter-facing app server: the call runs as the publisher, not as it.
SELECT lowcode.grant('plant', 'lc_t_fresh', ARRAY['submit', 'read_own']);
SET ROLE lc_t_fresh;
SELECT lowcode.submit('plant', 'check', '{}') AS c1 \gset
SELECT data ->> 'name' AS call_ran_as FROM lowcode.get_record(:c1);
RESET ROLE;
-- The superuser's timer run fires the hook: it runs as lc_t_admin and cannot escalate.
UPDATE lowcode.timers SET fire_at = now() - interval '1 second' WHERE record_id = :c1;
SELECT lowcode.run_due_timers();
SELECT status, error ~* 'superuser|alter role' AS refused_escalation FROM lowcode.timers WHERE record_id = :c1;
SELECT rolsuper AS admin_became_superuser FROM pg_roles WHERE rolname = 'lc_t_admin';
SELECT lowcode.revoke('plant', 'lc_t_fresh', ARRAY['submit', 'read_own']);

-- ------------------------------------------------------------ 4. only the documented API is executable
-- What a role with no grants may execute in schema lowcode: exactly the API of the README
-- (tests/system/api_surface.sh checks this list against the README's tables).
SELECT p.oid::regprocedure AS executable_by_a_fresh_role
  FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace
   AND has_function_privilege('lc_t_fresh', p.oid, 'EXECUTE')
 ORDER BY 1::text;
-- Everything SECURITY DEFINER pins its search_path; so does every other SQL / PL/pgSQL
-- function but the inlined predicates and the migration functions that run the DBA's transform.
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'lowcode'::regnamespace
   AND (p.prosecdef OR l.lanname IN ('sql', 'plpgsql'))
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
 ORDER BY 1::text;
-- Every function says what it is for.
SELECT p.oid::regprocedure AS uncommented FROM pg_proc p
 WHERE p.pronamespace = 'lowcode'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SET ROLE lc_t_fresh;
SELECT pg_temp.err($$ SELECT lowcode.fire(1, 'created') $$);
SELECT pg_temp.err($$ SELECT lowcode.call_as('postgres', 'SELECT NULL::jsonb', '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.log(1, 'created', '{}') $$);
RESET ROLE;

-- ------------------------------------------------------------ 5. act_as is per app
-- lc_t_server may act_as in plant and only submit in shop.
SET ROLE lc_t_server;
SET lowcode.actor = 'boss';
SELECT pg_temp.err($$ SELECT lowcode.submit('shop', 'order', '{}') $$);
SELECT lowcode.submit('plant', 'fault', '{"machine": "drill"}') AS f3 \gset
RESET lowcode.actor;
SELECT lowcode.submit('shop', 'order', '{}') AS o1 \gset
RESET ROLE;
SELECT app, actor FROM lowcode.history WHERE record_id IN (:f3, :o1) AND action = 'created' ORDER BY id;

-- ------------------------------------------------------------ 6. lowcode's code and the superuser
-- Schedulers and consumers run as the extension's owner whoever calls them, and only for
-- administrators.
SELECT lowcode.create_consumer('plant_feed', '{"app": "plant"}');
SET ROLE lc_t_reporter;
SELECT pg_temp.err($$ SELECT lowcode.run_due_timers() $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('plant_feed') $$);
SELECT pg_temp.err($$ SELECT lowcode.purge_events('1 day') $$);
RESET ROLE;
SELECT p.oid::regprocedure AS runs_as_owner FROM pg_proc p
 WHERE p.pronamespace = 'lowcode'::regnamespace AND p.prosecdef
   AND p.proname IN ('run_due_timers', 'poll_events', 'ack_events', 'nack_event', 'replay_dead_letters', 'purge_events')
 ORDER BY 1::text;
-- Nobody replaces lowcode's functions or adds triggers to its tables outside its extension
-- scripts, not even a superuser (it can disable the guard on purpose).
SELECT pg_temp.err($$ CREATE OR REPLACE FUNCTION lowcode.run_due_timers(max int DEFAULT 1000) RETURNS int LANGUAGE sql AS 'SELECT 0' $$);
SELECT pg_temp.err($$ ALTER FUNCTION lowcode.submit(text, text, jsonb) SECURITY INVOKER $$);
SELECT pg_temp.err($$ CREATE TRIGGER t BEFORE INSERT ON lowcode.timers FOR EACH ROW EXECUTE FUNCTION lowcode.records_before() $$);
SELECT pg_temp.err($$ CREATE POLICY p ON lowcode.records USING (true) $$);
SELECT prosecdef FROM pg_proc WHERE oid = 'lowcode.submit(text, text, jsonb)'::regprocedure;
-- Functions of the user's own are not the guard's business.
CREATE FUNCTION public.lc_t_mine() RETURNS int LANGUAGE sql AS 'SELECT 1';
DROP FUNCTION public.lc_t_mine();

DROP FUNCTION public.lc_t_escalate(jsonb);
DROP FUNCTION public.lc_t_whoami(jsonb);
DROP FUNCTION public.lc_t_private(jsonb);
DROP EXTENSION lowcode CASCADE;
DROP ROLE lc_t_reporter;
DROP ROLE lc_t_editor;
DROP ROLE lc_t_admin;
DROP ROLE lc_t_server;
DROP ROLE lc_t_fresh;
