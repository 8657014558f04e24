-- $ref to shared definitions: pointers and anchors into registered schemas, relative refs
-- between them, embedded resources, $dynamicRef, custom meta-schemas, and their negative
-- twins; every form version keeps what it needs, through export/import and a lost registry.
CREATE EXTENSION lowcode;
CREATE EXTENSION dblink;
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
-- verdicts(form, documents): for each document, whether the form accepts it.
CREATE FUNCTION pg_temp.verdicts(f text, docs jsonb) RETURNS TABLE (doc jsonb, valid boolean) LANGUAGE sql AS $$
    SELECT d, lowcode.is_valid('people', f, d) FROM jsonb_array_elements(docs) WITH ORDINALITY AS x(d, i) ORDER BY i
$$;

SELECT lowcode.create_app('people', 'People');

-- ---------------------------------------------------------------- 1. pointers and anchors into a registered library

SELECT lowcode.register_schema('https://schemas.example.com/common.json', '{"$defs": {
  "phone": {"type": "string", "pattern": "^\\+?[0-9 ]{6,20}$"},
  "address": {"$anchor": "address", "type": "object", "required": ["city"],
              "properties": {"city": {"type": "string", "minLength": 1}, "zip": {"$ref": "#/$defs/zip"}}},
  "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}');
SELECT lowcode.define_form('people', 'contact', '{"type": "object", "properties": {
  "tel": {"$ref": "https://schemas.example.com/common.json#/$defs/phone"},
  "home": {"$ref": "https://schemas.example.com/common.json#address"}}}');
SELECT * FROM pg_temp.verdicts('contact', '[{"tel": "+33 1 23 45 67"}, {"tel": "call me"},
  {"home": {"city": "Lyon", "zip": "69001"}}, {"home": {"city": "Lyon", "zip": "690"}}, {"home": {}}]');
-- The version keeps a copy of what it used (common.json), and only that.
SELECT v.schema = v.bundled -> 'schema' AS schema_kept, jsonb_object_keys(v.bundled -> 'resources') AS kept
  FROM lowcode.form_versions v WHERE v.form = 'contact';
-- Negative twin: a pointer that really does not exist, named in the error.
SELECT pg_temp.err($$ SELECT lowcode.define_form('people', 'x', '{"properties": {"tel": {"$ref": "https://schemas.example.com/common.json#/$defs/fax"}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('people', 'x', '{"properties": {"tel": {"$ref": "https://schemas.example.com/common.json#nowhere"}}}') $$);

-- ---------------------------------------------------------------- 2. relative refs between registered schemas

-- address.json first: a registered schema's refs must resolve when it is registered.
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/person.json', '{"type": "object", "properties": {"home": {"$ref": "address.json"}}}') $$);
SELECT lowcode.register_schema('https://schemas.example.com/address.json', '{"type": "object", "required": ["street"], "properties": {"street": {"type": "string"}}}');
SELECT lowcode.register_schema('https://schemas.example.com/person.json', '{"type": "object", "properties": {"home": {"$ref": "address.json"}}}');
-- $id inside a registered schema changes its base: "address.json" here is v2's.
SELECT lowcode.register_schema('https://schemas.example.com/v2/address.json', '{"type": "object", "required": ["street", "country"]}');
SELECT lowcode.register_schema('https://schemas.example.com/person-v2.json', '{"$id": "v2/person.json", "type": "object", "properties": {"home": {"$ref": "address.json"}}}');
SELECT lowcode.define_form('people', 'person', '{"type": "object", "properties": {
  "who": {"$ref": "https://schemas.example.com/person.json"},
  "who2": {"$ref": "https://schemas.example.com/person-v2.json"}}}');
SELECT * FROM pg_temp.verdicts('person', '[{"who": {"home": {"street": "Main St 1"}}}, {"who": {"home": {}}},
  {"who2": {"home": {"street": "Main St 1", "country": "FR"}}}, {"who2": {"home": {"street": "Main St 1"}}}]');
SELECT jsonb_object_keys(v.bundled -> 'resources') AS kept FROM lowcode.form_versions v WHERE v.form = 'person';
-- Negative twin: a relative ref to a neighbour nobody registered, named in the error.
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/orphan.json', '{"$ref": "nobody.json#/$defs/x"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('people', 'x', '{"$id": "https://schemas.example.com/forms/x.json", "$ref": "../nobody.json"}') $$);

-- ---------------------------------------------------------------- 3. embedded resources, $dynamicRef

SELECT lowcode.define_form('people', 'embedded', '{"$id": "https://x.example/base.json", "$ref": "parts/a.json",
  "$defs": {"a": {"$id": "parts/a.json", "$ref": "./b.json"}, "b": {"$id": "parts/b.json", "type": "number"}}}');
SELECT * FROM pg_temp.verdicts('embedded', '[1.5, "1.5"]');
-- Nothing registered was needed: the version is the schema itself.
SELECT v.bundled = v.schema AS self_contained FROM lowcode.form_versions v WHERE v.form = 'embedded';
-- $dynamicRef: the strict root's "node" is what the tree's children are.
SELECT lowcode.define_form('people', 'strict_tree', '{"$id": "https://x.example/strict-tree.json", "$dynamicAnchor": "node",
  "$ref": "tree.json", "unevaluatedProperties": false,
  "$defs": {"tree": {"$id": "tree.json", "$dynamicAnchor": "node", "type": "object",
                     "properties": {"data": true, "children": {"type": "array", "items": {"$dynamicRef": "#node"}}}}}}');
SELECT * FROM pg_temp.verdicts('strict_tree', '[{"children": [{"data": 1, "children": []}]}, {"children": [{"daat": 1}]}]');
-- ... and across a registered schema: the registered tree, made strict by the form.
SELECT lowcode.register_schema('https://schemas.example.com/tree.json', '{"$dynamicAnchor": "node", "type": "object",
  "properties": {"data": true, "children": {"type": "array", "items": {"$dynamicRef": "#node"}}}}');
SELECT lowcode.define_form('people', 'org', '{"$id": "https://forms.example/org.json", "$dynamicAnchor": "node",
  "$ref": "https://schemas.example.com/tree.json", "unevaluatedProperties": false}');
SELECT * FROM pg_temp.verdicts('org', '[{"data": "ceo", "children": [{"data": "cto"}]}, {"data": "ceo", "children": [{"name": "cto"}]}]');

-- ---------------------------------------------------------------- 4. a custom meta-schema is refused clearly

SELECT pg_temp.err($$ SELECT lowcode.define_form('people', 'x', '{"$schema": "https://meta.example.com/mine.json", "type": "object"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.register_schema('https://schemas.example.com/meta-user.json', '{"$schema": "https://meta.example.com/mine.json"}') $$);
-- lowcode's own bundle key is not a schema keyword.
SELECT pg_temp.err($$ SELECT lowcode.define_form('people', 'x', '{"$lowcode:bundle": 1, "schema": {}, "resources": {}}') $$);

-- ---------------------------------------------------------------- errors name the field

SELECT lowcode.define_form('people', 'signup', '{"type": "object", "required": ["name", "email"], "additionalProperties": false,
  "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}, "card": {"type": "string"}, "expiry": {"type": "string"}},
  "dependentRequired": {"card": ["expiry"]}}');
SELECT * FROM lowcode.validate('people', 'signup', '{"email": "x@example.com", "card": "4111", "nick": "z", "age": 3}') ORDER BY field, keyword;
SELECT pg_temp.err($$ SELECT lowcode.submit('people', 'signup', '{"name": "Ann", "email": "nope"}') $$);
SELECT lowcode.define_form('people', 'tags', '{"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "properties": {"a": {"required": ["b"]}}}');
SELECT * FROM lowcode.validate('people', 'tags', '{"ok": 1, "Bad": 2, "a": {}}') ORDER BY field;

-- ---------------------------------------------------------------- a version never changes meaning

SELECT lowcode.submit('people', 'contact', '{"tel": "+33 1 23 45 67", "home": {"city": "Lyon"}}');
SELECT lowcode.submit('people', 'person', '{"who": {"home": {"street": "Main St 1"}}}');
SELECT lowcode.submit('people', 'org', '{"data": "ceo", "children": [{"data": "cto"}]}');
-- export / import into another database: every registered schema a form needs travels with
-- it (also those reached by relative refs and $id), registered in an order that works.
SELECT format('dbname=%s port=%s host=%s', 'lc_regress_refs_other', current_setting('port'),
              split_part(current_setting('unix_socket_directories'), ',', 1)) AS other \gset
CREATE DATABASE lc_regress_refs_other;
SELECT dblink_connect('other', :'other');
SELECT dblink_exec('other', 'CREATE EXTENSION lowcode');
SELECT lowcode.export_app('people') AS people \gset
SELECT s ->> 'uri' AS exported_schema FROM jsonb_array_elements(:'people'::jsonb -> 'schemas') s;
SELECT c FROM dblink('other', format('SELECT c ->> ''kind'' || '' '' || (c ->> ''name'') FROM jsonb_array_elements(lowcode.import_app(%L) -> ''changes'') c', :'people')) AS t(c text);
-- The same verdicts there, and the same stored versions.
SELECT d.doc, d.valid AS here, t.valid AS there
  FROM (SELECT * FROM pg_temp.verdicts('person', '[{"who": {"home": {"street": "Main St 1"}}}, {"who": {"home": {}}},
          {"who2": {"home": {"street": "Main St 1", "country": "FR"}}}, {"who2": {"home": {"street": "Main St 1"}}}]')) d,
       dblink('other', format('SELECT lowcode.is_valid(''people'', ''person'', %L)', d.doc)) AS t(valid boolean);
SELECT d.doc, d.valid AS here, t.valid AS there
  FROM (SELECT * FROM pg_temp.verdicts('org', '[{"data": "ceo", "children": [{"data": "cto"}]}, {"data": "ceo", "children": [{"name": "cto"}]}]')) d,
       dblink('other', format('SELECT lowcode.is_valid(''people'', ''org'', %L)', d.doc)) AS t(valid boolean);
SELECT (SELECT jsonb_object_agg(form, bundled) FROM lowcode.form_versions WHERE app = 'people') =
       (SELECT r FROM dblink('other', 'SELECT jsonb_object_agg(form, bundled) FROM lowcode.form_versions WHERE app = ''people''') AS t(r jsonb))
       AS same_bundles;
SELECT dblink_disconnect('other');
DROP DATABASE lc_regress_refs_other;
-- Even with the registry gone (a restore that lost lowcode.schemas, or a stale backend), a
-- version validates with its own copies: the same verdicts from a cold cache.
BEGIN;
DELETE FROM lowcode.schemas;
SELECT lowcode.cache_clear();
SELECT * FROM pg_temp.verdicts('contact', '[{"tel": "+33 1 23 45 67"}, {"tel": "call me"}, {"home": {"city": "Lyon", "zip": "690"}}]');
SELECT * FROM pg_temp.verdicts('person', '[{"who2": {"home": {"street": "Main St 1", "country": "FR"}}}, {"who2": {"home": {"street": "Main St 1"}}}]');
ROLLBACK;
-- Published: the typed view of a form that reaches registered schemas validates the same way.
SELECT lowcode.publish('people');
SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'people' AND table_name = 'contact' ORDER BY ordinal_position;
SELECT pg_temp.err($$ INSERT INTO people.contact (tel) VALUES ('"call me"') $$);
INSERT INTO people.contact (tel, home) VALUES ('"+33 1 23 45 67"', '{"city": "Paris", "zip": "75001"}') RETURNING tel, home;
