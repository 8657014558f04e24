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


SELECT lowcode.create_app('inspection', 'Equipment inspection');
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity"],
  "properties": {
    "site": {"type": "string", "minLength": 1},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos": {"type": "array", "items": {"type": "string"}},
    "level": {"enum": ["low", "high"]},
    "cost": {"type": "number"},
    "fixed": {"type": "boolean"},
    "day": {"type": "string", "format": "date"}
  }}');
SELECT lowcode.publish('inspection');
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'inspection' AND table_name = 'fault_report' ORDER BY ordinal_position;

-- INSERT through the view is a submit.
INSERT INTO inspection.fault_report (site, severity) VALUES ('plant-7', 5) RETURNING id, site, severity, state, revision;
INSERT INTO inspection.fault_report (site, severity, reported_at, photos, level, cost, fixed, day)
VALUES ('plant-8', 2, '2026-11-25 10:00:00+00', '["a.jpg", "b.jpg"]', 'high', 12.5, false, '2026-11-25')
RETURNING site, severity, reported_at, photos, level, cost, fixed, day;
SELECT data FROM lowcode.records ORDER BY id;
SELECT pg_temp.err($$ INSERT INTO inspection.fault_report (site, severity) VALUES ('plant-9', 9) $$);
SELECT pg_temp.err($$ INSERT INTO inspection.fault_report (severity) VALUES (1) $$);
SELECT pg_temp.err($$ INSERT INTO inspection.fault_report (site, severity, level) VALUES ('x', 1, 'medium') $$);

-- COPY into the view goes through the same path.
COPY inspection.fault_report (site, severity) FROM stdin;
copy-1	1
copy-2	2
\.
SELECT site, severity FROM inspection.fault_report ORDER BY id;

-- UPDATE applies the changed columns, keeps the rest; invalid changes are refused.
UPDATE inspection.fault_report SET severity = 3, fixed = true WHERE site = 'plant-7' RETURNING site, severity, fixed, revision;
SELECT pg_temp.err($$ UPDATE inspection.fault_report SET severity = 30 WHERE site = 'plant-7' $$);
SELECT pg_temp.err($$ UPDATE inspection.fault_report SET site = NULL WHERE site = 'plant-7' $$);
SELECT pg_temp.err($$ UPDATE inspection.fault_report SET state = 'done' WHERE site = 'plant-7' $$);
UPDATE inspection.fault_report SET photos = NULL WHERE site = 'plant-8';
SELECT data FROM lowcode.records r WHERE data ->> 'site' = 'plant-8';

-- DELETE deletes the record (history stays).
DELETE FROM inspection.fault_report WHERE site LIKE 'copy-%';
SELECT count(*) AS left_in_view FROM inspection.fault_report;
SELECT action, count(*) FROM lowcode.history GROUP BY action ORDER BY action;

-- Re-publishing after a new version updates the view.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object", "required": ["site"],
  "properties": {"site": {"type": "string"}, "severity": {"type": "string"}, "machine": {"type": "integer"}}}');
SELECT lowcode.publish('inspection');
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'inspection' AND table_name = 'fault_report' ORDER BY ordinal_position;
-- Old rows whose values no longer have the column's type read as NULL, not as an error.
SELECT site, severity, machine FROM inspection.fault_report ORDER BY id;

-- Names are quoted: a property name with spaces and quotes becomes a column, not SQL.
SELECT lowcode.define_form('inspection', 'odd', '{"properties": {"Machine No.": {"type": "integer"}, "a\"b; DROP TABLE x": {"type": "string"}}}');
SELECT lowcode.publish('inspection');
INSERT INTO inspection.odd ("Machine No.", "a""b; DROP TABLE x") VALUES (7, 'ok') RETURNING "Machine No.", "a""b; DROP TABLE x", state;
SELECT to_regclass('x') IS NULL AS no_table_x;
-- A property that clashes with the view's own columns is refused with a hint.
SELECT lowcode.define_form('inspection', 'clash', '{"properties": {"state": {"type": "string"}}}');
SELECT pg_temp.err($$ SELECT lowcode.publish('inspection') $$);
SELECT pg_temp.err($$ SELECT lowcode.publish('nope') $$);

-- INSERT ... RETURNING shows the row as stored, as the writer may see it: after the rules of
-- the new record ran, without the fields hidden from the writer, and only the id for a
-- writer that may not read. (Each case compares RETURNING with reading the row back.)
SELECT lowcode.create_app('ret', 'returning');
SELECT lowcode.define_form('ret', 'ruled', '{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}');
SELECT lowcode.define_workflow('ret', 'ruled', '{"states": {"new": {"initial": true}, "done": {"final": true}},
  "transitions": [{"name": "finish", "from": "new", "to": "done"}],
  "rules": [{"name": "stamp", "on": "created", "then": [{"set": {"b": 42}}, {"transition": "done"}]}]}');
SELECT lowcode.define_form('ret', 'plain', '{"type": "object", "properties": {"a": {"type": "string"}, "secret": {"type": "string"}}}');
SELECT lowcode.publish('ret');
INSERT INTO ret.ruled (a) VALUES ('x') RETURNING a, b, state, revision;
SELECT a, b, state, revision FROM ret.ruled;
INSERT INTO ret.plain (a, secret) VALUES ('y', 's') RETURNING a, secret, state, revision;
CREATE ROLE lc_ret_hidden;
CREATE ROLE lc_ret_blind;
SELECT lowcode.grant('ret', 'lc_ret_hidden', ARRAY['submit', 'read_all']);
SELECT lowcode.grant('ret', 'lc_ret_blind', ARRAY['submit']);
SELECT lowcode.hide_fields('ret', 'plain', 'lc_ret_hidden', ARRAY['secret']);
SET ROLE lc_ret_hidden;
INSERT INTO ret.plain (a) VALUES ('z') RETURNING a, secret, state;
SELECT a, secret, state FROM ret.plain ORDER BY id;
RESET ROLE;
SET ROLE lc_ret_blind;
INSERT INTO ret.plain (a, secret) VALUES ('w', 't') RETURNING id IS NOT NULL AS has_id, a, secret, state, revision;
SELECT count(*) AS visible FROM ret.plain;
RESET ROLE;
SELECT a, secret, state, revision FROM ret.plain ORDER BY id;
DROP OWNED BY lc_ret_hidden, lc_ret_blind;
DROP ROLE lc_ret_hidden, lc_ret_blind;
