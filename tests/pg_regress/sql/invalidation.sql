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


-- Two sessions: a new version published in one is enforced by the other from its next
-- statement, though the other has the old validator cached.
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));

SELECT lowcode.create_app('school', 'School');
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "properties": {"jumps": {"type": "integer", "minimum": 0}}}');

-- The other session caches version 1 ...
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 5}') $$) AS t(valid bool);
SELECT * FROM dblink('other', $$ SELECT (lowcode.cache_stats() ->> 'validators')::int $$) AS t(cached int);
-- ... we publish version 2 (at least 10 jumps) ...
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "properties": {"jumps": {"type": "integer", "minimum": 10}}}');
-- ... and its very next statement enforces it, for every entry point.
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 5}') $$) AS t(valid bool);
SELECT * FROM dblink('other', $$ SELECT lowcode.conforms('school', 'checkin', '{"jumps": 5}') $$) AS t(valid bool);
SELECT * FROM dblink('other', $$ SELECT count(*) FROM lowcode.validate('school', 'checkin', '{"jumps": 5}') $$) AS t(issues bigint);
SELECT dblink_exec('other', $$ DO $x$ BEGIN PERFORM lowcode.submit('school', 'checkin', '{"jumps": 5}'); EXCEPTION WHEN check_violation THEN RAISE NOTICE 'refused'; END $x$ $$);
SELECT * FROM dblink('other', $$ SELECT lowcode.submit('school', 'checkin', '{"jumps": 50}') $$) AS t(id bigint);
SELECT v.version FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id;

-- Inside an open transaction block too: the next statement sees the new version.
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 20}') $$) AS t(valid bool);
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "properties": {"jumps": {"type": "integer", "minimum": 30}}}');
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 20}') $$) AS t(valid bool);
SELECT dblink_exec('other', 'COMMIT');

-- A REPEATABLE READ transaction keeps its snapshot's version, and forgets it when it ends.
SELECT dblink_exec('other', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 35}') $$) AS t(valid bool);
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "properties": {"jumps": {"type": "integer", "minimum": 40}}}');
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 35}') $$) AS t(valid_in_snapshot bool);
SELECT dblink_exec('other', 'COMMIT');
SELECT * FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 35}') $$) AS t(valid_after bool);

-- A rolled-back definition is never enforced.
BEGIN;
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "properties": {"jumps": {"type": "integer", "minimum": 1000}}}');
ROLLBACK;
SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 45}') AS here,
       (SELECT valid FROM dblink('other', $$ SELECT lowcode.is_valid('school', 'checkin', '{"jumps": 45}') $$) AS t(valid bool)) AS there;

-- The cache is bounded by lowcode.validator_cache_size.
SET lowcode.validator_cache_size = 3;
SELECT lowcode.define_form('school', 'f' || i, format('{"properties": {"n": {"minimum": %s}}}', i)::jsonb) FROM generate_series(1, 6) i;
SELECT bool_and(lowcode.is_valid('school', 'f' || i, format('{"n": %s}', i)::jsonb)) FROM generate_series(1, 6) i;
SELECT (lowcode.cache_stats() ->> 'validators')::int AS cached, lowcode.cache_stats() -> 'capacity' AS capacity;
RESET lowcode.validator_cache_size;

-- A new workflow version too: the other session has the workflow compiled, and its next
-- statement runs the new one (records start in the new initial state).
SELECT lowcode.define_form('school', 'homework', '{"type": "object"}');
SELECT lowcode.define_workflow('school', 'homework', '{"states": {"handed_in": {"initial": true}, "marked": {"final": true}},
  "transitions": [{"name": "mark", "from": "handed_in", "to": "marked"}]}');
SELECT dblink_exec('other', $$ SELECT lowcode.submit('school', 'homework', '{}') $$);
SELECT * FROM dblink('other', $$ SELECT state FROM lowcode.records WHERE form = 'homework' ORDER BY id DESC LIMIT 1 $$) AS t(state text);
SELECT lowcode.define_workflow('school', 'homework', '{"states": {"draft": {"initial": true}, "handed_in": {}, "marked": {"final": true}},
  "transitions": [{"name": "hand_in", "from": "draft", "to": "handed_in"}, {"name": "mark", "from": "handed_in", "to": "marked"}]}');
SELECT dblink_exec('other', $$ SELECT lowcode.submit('school', 'homework', '{}') $$);
SELECT * FROM dblink('other', $$ SELECT state FROM lowcode.records WHERE form = 'homework' ORDER BY id DESC LIMIT 1 $$) AS t(state text);

SELECT dblink_disconnect('other');

