-- Apps, forms, versions, drafts, registered schemas and every definition error.
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


-- (The test's own helper must not be fooled either.)
ALTER FUNCTION pg_temp.err(text) SET search_path = pg_catalog, pg_temp;

-- Look-alikes of built-ins in a schema ahead of pg_catalog on the caller's search_path must
-- never be called by lowcode: every lowcode entry point and trigger pins its search_path.
CREATE SCHEMA evil;
CREATE TABLE evil.calls (fn text);
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('now'); RETURN '2000-01-01'; END $$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('jsonb_typeof'); RETURN 'object'; END $$;
CREATE FUNCTION evil.split_part(text, text, int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('split_part'); RETURN ''; END $$;
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('current_setting'); RETURN ''; END $$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('pg_notify'); END $$;
CREATE FUNCTION evil.jsonb_concat(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('||'); RETURN $1; END $$;
CREATE OPERATOR evil.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_concat);
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('='); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);

SELECT lowcode.create_app('plant', 'Plant');
SELECT lowcode.define_form('plant', 'fault', '{"type": "object", "required": ["site"],
  "properties": {"site": {"type": "string"}, "severity": {"type": "integer"}, "note": {"type": "string"}}}');
SELECT lowcode.define_workflow('plant', 'fault', '{
  "states": {"open": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "open", "to": "done"}],
  "rules": [{"name": "route", "on": "created", "then": [
      {"task": {"name": "fix", "pool": "crew", "due": "1 hour"}},
      {"set": {"note": "routed"}},
      {"notify": {"channel": "plant"}},
      {"emit": {"topic": "plant.fault"}},
      {"timer": {"name": "nudge", "after": "1 minute"}}]}]}');
SELECT lowcode.publish('plant');

-- The look-alikes are live for the caller: they shadow the built-ins here ...
SET search_path = evil, pg_catalog, public;
SELECT now() = '2000-01-01' AS caller_gets_evil_now;
SELECT count(*) > 0 AS evil_was_called FROM evil.calls;
TRUNCATE evil.calls;

-- ... but not inside lowcode, whatever the entry point.
SELECT lowcode.submit('plant', 'fault', '{"site": "a", "severity": 3}') AS r1 \gset
INSERT INTO plant.fault (site, severity) VALUES ('b', 4);
UPDATE plant.fault SET severity = 5 WHERE site OPERATOR(pg_catalog.=) 'b';  -- (the caller's own = would be evil's)
SELECT lowcode.update_record(:r1, '{"site": "a2", "severity": 1}');
SELECT lowcode.claim_task('crew', 'ann') IS NOT NULL AS claimed;
SET lowcode.actor = 'ann';
SELECT lowcode.complete_task(min(id), 'fixed') FROM lowcode.tasks WHERE claimed_by OPERATOR(pg_catalog.=) 'ann';
RESET lowcode.actor;
SELECT lowcode.transition(:r1, 'finish');
UPDATE lowcode.timers SET fire_at = pg_catalog.now() - interval '1 second';
SELECT lowcode.run_due_timers() AS fired;
SELECT lowcode.create_consumer('board', '{"from": "beginning"}');
SELECT count(*) AS polled FROM lowcode.poll_events('board');
SELECT lowcode.export_app('plant') ->> 'app' AS exported;
-- A cold cache makes the validators read the catalog under the caller's search_path.
SELECT lowcode.cache_clear();
SELECT lowcode.is_valid('plant', 'fault', '{"site": "x"}') AS valid;
SELECT count(*) AS issues FROM lowcode.validate('plant', 'fault', '{"severity": "x"}');
SELECT pg_temp.err($$ SELECT lowcode.submit('plant', 'fault', '{"severity": 1}') $$);
SELECT lowcode.delete_record(:r1);
-- Not one look-alike was called.
SELECT fn, count(*) FROM evil.calls GROUP BY fn ORDER BY fn;
RESET search_path;
SELECT data ->> 'note' AS note, state FROM lowcode.records ORDER BY id;
