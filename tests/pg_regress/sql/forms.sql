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
SELECT name, title FROM lowcode.apps;
SELECT pg_temp.err($$ SELECT lowcode.create_app('inspection') $$);

-- Names: one rule for apps and forms, refused clearly.
SELECT pg_temp.err($$ SELECT lowcode.create_app('My App') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app('x"; DROP TABLE lowcode.apps; --') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app(repeat('a', 64)) $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app('pg_catalog2') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app('lowcode') $$);
SELECT pg_temp.err($$ SELECT lowcode.create_app(NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'Fault Report', '{}') $$);

-- First definition is version 1; the same schema again is still version 1 (key order does not matter).
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity"],
  "properties": {
    "site": {"type": "string", "minLength": 1},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos": {"type": "array", "items": {"type": "string"}}
  }}');
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "required": ["site", "severity"],
  "type": "object",
  "properties": {
    "photos": {"type": "array", "items": {"type": "string"}},
    "reported_at": {"type": "string", "format": "date-time"},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "site": {"type": "string", "minLength": 1}
  }}');
-- A changed schema publishes version 2; version 1 stays as it was.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity"],
  "properties": {
    "site": {"type": "string", "minLength": 1},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos": {"type": "array", "items": {"type": "string"}},
    "note": {"type": "string", "maxLength": 200}
  }}');
SELECT app, form, version, draft, published_by, schema ? 'type' AS has_type
  FROM lowcode.form_versions ORDER BY version;
SELECT f.app, f.name, v.version FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id;
-- Versions are immutable.
SELECT pg_temp.err($$ UPDATE lowcode.form_versions SET schema = '{}' WHERE version = 1 $$);

-- Records name their form and version without foreign keys; deleting (or truncating) what
-- records use is refused all the same (23503), and what nothing uses can go.
SELECT lowcode.define_form('inspection', 'used', '{"properties": {"n": {"type": "integer"}}}');
SELECT lowcode.submit('inspection', 'used', '{"n": 1}') > 0 AS submitted;
SELECT pg_temp.err($$ DELETE FROM lowcode.forms WHERE app = 'inspection' AND name = 'used' $$);
SELECT pg_temp.err($$ DELETE FROM lowcode.form_versions WHERE app = 'inspection' AND form = 'used' $$);
SELECT pg_temp.err($$ DELETE FROM lowcode.apps WHERE name = 'inspection' $$);
SET client_min_messages = warning;  -- (which tables the truncate cascades to)
SELECT pg_temp.err($$ TRUNCATE lowcode.forms CASCADE $$);
RESET client_min_messages;
SELECT count(*) AS forms_left FROM lowcode.forms WHERE app = 'inspection' AND name = 'used';
DELETE FROM lowcode.records WHERE app = 'inspection' AND form = 'used';
DELETE FROM lowcode.forms WHERE app = 'inspection' AND name = 'used';
SELECT count(*) AS versions_left FROM lowcode.form_versions WHERE app = 'inspection' AND form = 'used';

-- Drafts from $schema; unknown ones are refused.
SELECT lowcode.define_form('inspection', 'd4', '{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "properties": {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": true}}}');
SELECT lowcode.define_form('inspection', 'd6', '{"$schema": "http://json-schema.org/draft-06/schema#", "type": "object"}');
SELECT lowcode.define_form('inspection', 'd7', '{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}');
SELECT lowcode.define_form('inspection', 'd2019', '{"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object"}');
SELECT form, draft FROM lowcode.form_versions WHERE form LIKE 'd%' ORDER BY form;
SELECT lowcode.is_valid('inspection', 'd4', '{"n": 0}') AS d4_exclusive_zero,
       lowcode.is_valid('inspection', 'd4', '{"n": 1}') AS d4_one,
       lowcode.is_valid('inspection', 'd7', '{"a": 1}') AS d7_if_then,
       lowcode.is_valid('inspection', 'd7', '{"a": 1, "b": 2}') AS d7_ok;
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"$schema": "http://example.com/my-meta"}') $$);

-- Bad schemas point at the offending keyword.
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"properties": {"severity": {"minimum": "five"}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"type": "objekt"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"required": "site"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"properties": {"code": {"pattern": "(unclosed"}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '[1, 2]') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '"object"') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('nowhere', 'x', '{}') $$);
-- Nothing half-written: no form x exists after all those failures.
SELECT count(*) AS forms_named_x FROM lowcode.forms WHERE name = 'x';

-- $ref: local refs work; remote ones must be registered first, never fetched.
SELECT lowcode.define_form('inspection', 'local_ref', '{"$defs": {"site": {"type": "string", "minLength": 2}}, "properties": {"site": {"$ref": "#/$defs/site"}}}');
SELECT lowcode.is_valid('inspection', 'local_ref', '{"site": "a"}') AS short_site, lowcode.is_valid('inspection', 'local_ref', '{"site": "ab"}') AS ok_site;
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"properties": {"a": {"$ref": "#/$defs/missing"}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('inspection', 'x', '{"properties": {"phone": {"$ref": "https://schemas.example.com/phone"}}}') $$);
SELECT lowcode.register_schema('https://schemas.example.com/phone', '{"type": "string", "pattern": "^\\+?[0-9 -]{6,20}$"}');
SELECT lowcode.register_schema('https://schemas.example.com/phone', '{"type": "string", "pattern": "^\\+?[0-9 -]{6,20}$"}');  -- identical: no-op
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/phone', '{"type": "string"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/bad#frag', '{"type": "string"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/bad', '{"type": 12}') $$);
SELECT lowcode.define_form('inspection', 'contact', '{"type": "object", "properties": {"phone": {"$ref": "https://schemas.example.com/phone"}}}');
SELECT lowcode.is_valid('inspection', 'contact', '{"phone": "+86 10 1234 5678"}') AS good_phone,
       lowcode.is_valid('inspection', 'contact', '{"phone": "call me"}') AS bad_phone;
SELECT uri FROM lowcode.schemas;

-- format is asserted.
SELECT lowcode.define_form('inspection', 'formats', '{"properties": {"at": {"format": "date-time"}, "day": {"format": "date"}, "mail": {"format": "email"}, "id": {"format": "uuid"}}}');
SELECT key, lowcode.is_valid('inspection', 'formats', jsonb_build_object(key, value)) AS valid
  FROM (VALUES ('at', '"2026-11-25T10:00:00Z"'::jsonb), ('at', '"yesterday"'), ('day', '"2026-02-30"'),
               ('day', '"2026-02-28"'), ('mail', '"a@b.example"'), ('mail', '"not mail"'),
               ('id', '"0b1c3a8e-8f5e-4c1e-9d9a-1f2e3d4c5b6a"'), ('id', '"nope"')) AS t(key, value);
