-- Hostile input: schemas, documents and names chosen to break things. Every case asserts the
-- exact SQLSTATE and message (or a bounded result); nothing may crash, hang or fetch anything
-- from the network. Also the crash reproductions found earlier, as regression cases.
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
-- caught(sql): the SQLSTATE, message and DETAIL of the error sql raises (for DETAILs too big to show).
CREATE FUNCTION pg_temp.caught(q text, OUT state text, OUT message text, OUT detail text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
END $$;
-- cancelled(sql): the SQLSTATE and message of a cancel (WHEN OTHERS does not catch those).
CREATE FUNCTION pg_temp.cancelled(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text;
BEGIN
    EXECUTE q;
    RETURN 'not cancelled';
EXCEPTION WHEN query_canceled THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
    RETURN s || ' ' || m;
END $$;
-- took(sql): how long sql ran (its error, if any, is swallowed: use err() for that).
CREATE FUNCTION pg_temp.took(q text) RETURNS interval LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN clock_timestamp() - t0;
END $$;
-- nested(n, leaf): n arrays inside each other around leaf.
CREATE FUNCTION pg_temp.nested(n int, leaf text DEFAULT '') RETURNS jsonb LANGUAGE sql AS $$
    SELECT (repeat('[', n) || leaf || repeat(']', n))::jsonb
$$;

SELECT lowcode.create_app('h');

-- ============================================================== schemas

-- Not a JSON Schema at all.
SELECT s, pg_temp.err(format('SELECT lowcode.define_form(''h'', ''f'', %L)', s))
  FROM unnest(ARRAY['"hello"', '[1, 2]', '42', 'null', 'true']) WITH ORDINALITY AS x(s, i) ORDER BY i;
-- Keywords of the wrong type: the error points at the keyword.
SELECT s, pg_temp.err(format('SELECT lowcode.define_form(''h'', ''f'', %L)', s))
  FROM unnest(ARRAY['{"type": 5}', '{"type": "strin"}', '{"required": "x"}', '{"properties": []}',
                    '{"minLength": -1}', '{"pattern": 5}', '{"items": "x"}', '{"$defs": 1}',
                    '{"properties": {"a": {"enum": []}}}']) WITH ORDINALITY AS x(s, i) ORDER BY i;
-- Unknown drafts.
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"$schema": "http://example.com/my-schema"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"$schema": 7}') $$);
-- $ref to nowhere, to another document, to the network: refused at once, nothing is fetched.
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"$ref": "#/$defs/nowhere"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"$ref": "other.json"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"$ref": "http://127.0.0.1:1/x"}') $$);
-- 192.0.2.1 (TEST-NET-1) never answers: a fetch would hang until the connect timeout.
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"properties": {"a": {"$ref": "http://192.0.2.1/schema.json"}}}') $$);
SELECT pg_temp.took($$ SELECT lowcode.define_form('h', 'f', '{"properties": {"a": {"$ref": "http://192.0.2.1/schema.json"}}}') $$)
       < interval '3 s' AS no_network;
SELECT pg_temp.err($$ SELECT lowcode.register_schema('http://192.0.2.1/a', '{"$ref": "http://192.0.2.1/b"}') $$);
SELECT count(*) AS forms_made FROM lowcode.forms;

-- Recursion in the schema itself: self-reference, a pure loop, mutually recursive $defs.
SELECT lowcode.define_form('h', 'tree', '{"type": "array", "items": {"$ref": "#"}}');
SELECT lowcode.define_form('h', 'loop', '{"$ref": "#"}');
SELECT lowcode.define_form('h', 'ping', '{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}');
SELECT lowcode.define_form('h', 'mutual', '{"$defs": {"obj": {"type": "object", "properties": {"kids": {"$ref": "#/$defs/list"}}, "additionalProperties": false},
                                                    "list": {"type": "array", "items": {"$ref": "#/$defs/obj"}}},
                                           "$ref": "#/$defs/obj"}');
SELECT lowcode.is_valid('h', 'tree', '[[], [[]]]') AS tree_ok, lowcode.is_valid('h', 'tree', '[[1]]') AS tree_bad,
       lowcode.is_valid('h', 'loop', '1') AS loop, lowcode.is_valid('h', 'ping', '{"x": 1}') AS ping,
       lowcode.is_valid('h', 'mutual', '{"kids": [{"kids": []}, {}]}') AS mutual_ok,
       lowcode.is_valid('h', 'mutual', '{"kids": [{"kids": [{"x": 1}]}]}') AS mutual_bad;
SELECT * FROM lowcode.validate('h', 'mutual', '{"kids": [{"kids": [{"x": 1}]}]}');
SELECT * FROM lowcode.validate('h', 'tree', '[[[[1]]]]');

-- 10,000-deep nesting in a schema is refused clearly; definitions nest at most 127 levels.
SELECT pg_temp.err(format('SELECT lowcode.define_form(''h'', ''deep'', %L)', repeat('{"items": ', 10000) || '{}' || repeat('}', 10000)));
SELECT pg_temp.err(format('SELECT lowcode.define_form(''h'', ''deep'', %L)', repeat('{"items": ', 127) || '{}' || repeat('}', 127)));
SELECT lowcode.define_form('h', 'deep', (repeat('{"items": ', 126) || '{}' || repeat('}', 126))::jsonb);
SELECT lowcode.is_valid('h', 'deep', pg_temp.nested(126)) AS at_127, lowcode.is_valid('h', 'deep', pg_temp.nested(200)) AS deeper;
SELECT pg_temp.err(format('SELECT lowcode.define_workflow(''h'', ''deep'', %L)', repeat('{"a": ', 10000) || '1' || repeat('}', 10000)));
SELECT pg_temp.err(format('SELECT lowcode.register_schema(''urn:deep'', %L)', repeat('[', 10000) || repeat(']', 10000)));

-- A big schema: 3,000 properties compile, validate and explain quickly.
SELECT lowcode.define_form('h', 'wide', (SELECT jsonb_build_object('type', 'object', 'additionalProperties', false,
                                               'properties', jsonb_object_agg('p' || i, jsonb_build_object('type', 'integer', 'maximum', i)))
                                          FROM generate_series(1, 3000) i));
SELECT lowcode.is_valid('h', 'wide', '{"p1": 1, "p3000": 3000}') AS ok,
       lowcode.is_valid('h', 'wide', '{"p1": 1, "p3000": 3001}') AS over;
SELECT * FROM lowcode.validate('h', 'wide', '{"p1": 2, "p3000": 3001, "q": 1}');
-- ... but a view cannot have 3,000 columns: publish says which form and why. 1,595 fit.
SELECT pg_temp.err($$ SELECT lowcode.publish('h') $$);
SELECT lowcode.define_form('h', 'wide', (SELECT jsonb_build_object('type', 'object', 'properties', jsonb_object_agg('p' || i, '{"type": "integer"}'::jsonb))
                                          FROM generate_series(1, 1595) i));
SELECT lowcode.publish('h') AS views;
INSERT INTO h.wide (p1, p1595) VALUES (1, 1595) RETURNING p1, p2, p1595;
DROP VIEW h.wide;
DELETE FROM lowcode.records WHERE app = 'h' AND form = 'wide';
DELETE FROM lowcode.forms WHERE app = 'h' AND name = 'wide';

-- Regular expressions: an invalid one is refused at definition; a catastrophic one stays fast
-- (linear-time engine), and a backtracking one (back-reference) is cut off, not run forever.
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'rx', '{"type": "string", "pattern": "(unclosed"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'rx', '{"patternProperties": {"[z-a]": {}}}') $$);
SELECT lowcode.define_form('h', 'rx', '{"type": "string", "pattern": "^(a+)+$"}');
SELECT lowcode.is_valid('h', 'rx', to_jsonb(repeat('a', 100000) || 'b')) AS catastrophic,
       lowcode.is_valid('h', 'rx', to_jsonb(repeat('a', 100000))) AS fine;
SELECT pg_temp.took($$ SELECT lowcode.is_valid('h', 'rx', to_jsonb(repeat('a', 100000) || 'b')) $$) < interval '2 s' AS fast;
SELECT lowcode.define_form('h', 'backref', '{"type": "string", "pattern": "^(a|a)*\\1$"}');
SELECT * FROM lowcode.validate('h', 'backref', to_jsonb(repeat('a', 40) || 'b'));
SELECT * FROM lowcode.validate('h', 'backref', '"ab"');
SELECT pg_temp.took($$ SELECT lowcode.is_valid('h', 'backref', to_jsonb(repeat('a', 40) || 'b')) $$) < interval '5 s' AS bounded;
-- KNOWN ISSUE (not a crash): validation does not check for interrupts while it runs, so one call
-- that is slow by design (each backtracking pattern match costs up to ~1M steps) runs to its end
-- before statement_timeout or pg_cancel_backend take effect. Here 40 array items x a cut-off
-- back-reference match took ~9 s on the debug build with statement_timeout = 1s:
--   SET statement_timeout = '1s';
--   SELECT lowcode.condition_issues('{"items": {"pattern": "^(a|a)*\\1$"}}',
--          (SELECT jsonb_agg(repeat('a', 30 + i) || 'b') FROM generate_series(1, 40) i));

-- statement_timeout stops a long bulk validation (57014), and the session carries on.
SET statement_timeout = '200ms';
SELECT pg_temp.cancelled($$ SELECT count(*) FROM generate_series(1, 20000000) i WHERE lowcode.conforms('h', 'tree', jsonb_build_array(i)) $$);
RESET statement_timeout;
SELECT lowcode.conforms('h', 'tree', '[]') AS still_works;

-- ============================================================== documents

-- 10,000 levels deep. A plain schema does not recurse: fine. A recursive one refuses (54000)
-- rather than risk the stack, also in submit and in workflow conditions.
SELECT lowcode.define_form('h', 'plain', '{"type": "array", "items": {"type": "array"}}');
SELECT lowcode.is_valid('h', 'plain', pg_temp.nested(10000)) AS plain_deep,
       lowcode.is_valid('h', 'plain', pg_temp.nested(10000, '1')) AS plain_deep_leaf;
SELECT count(*) FROM lowcode.validate('h', 'plain', pg_temp.nested(10000, '1'));
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(10000)) $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'tree', pg_temp.nested(10000)) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.validate('h', 'tree', pg_temp.nested(10000)) $$);
SELECT pg_temp.err($$ SELECT lowcode.conforms('h', 'tree', pg_temp.nested(10000)) $$);
SELECT pg_temp.err($$ SELECT lowcode.matches('{"items": {"$ref": "#"}}', pg_temp.nested(10000)) $$);
-- The boundary follows lowcode.max_document_depth (default 1000).
SHOW lowcode.max_document_depth;
SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(1000)) AS at_1000;
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(1001)) $$);
SET lowcode.max_document_depth = 50;
SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(50)) AS at_50;
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(51)) $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'mutual', (repeat('{"kids": [', 30) || '{}' || repeat(']}', 30))::jsonb) $$);
SELECT lowcode.is_valid('h', 'plain', pg_temp.nested(51)) AS plain_has_no_limit;
-- The setting cannot be raised past what the stack allows: a large recursive schema gets less.
SET lowcode.max_document_depth = 10000;
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(10000)) $$);
SELECT pg_temp.err($$ SET lowcode.max_document_depth = 10001 $$);
SELECT pg_temp.err($$ SET lowcode.max_document_depth = 0 $$);
RESET lowcode.max_document_depth;

-- A 50 MB document: stored and validated; the same document invalid gives one short issue.
CREATE TEMP TABLE big AS SELECT jsonb_build_object('blob', repeat('x', 50 * 1024 * 1024)) AS doc;
SELECT lowcode.define_form('h', 'blob', '{"type": "object", "required": ["blob"], "properties": {"blob": {"type": "string"}, "n": {"type": "integer"}}}');
SELECT lowcode.is_valid('h', 'blob', doc) FROM big;
SELECT lowcode.submit('h', 'blob', doc) > 0 AS stored FROM big;
SELECT octet_length(data ->> 'blob') FROM lowcode.records WHERE app = 'h' AND form = 'blob';
SELECT lowcode.define_form('h', 'blob', '{"type": "object", "properties": {"blob": {"type": "string", "maxLength": 10}}}');
SELECT path, keyword, octet_length(message) AS bytes, left(message, 12) AS starts, right(message, 3) AS ends
  FROM big, lowcode.validate('h', 'blob', doc);
SELECT state, message, octet_length(detail) < 1000 AS short_detail FROM big, pg_temp.caught(format('SELECT lowcode.submit(''h'', ''blob'', %L)', doc));

-- A million items: valid quickly; all invalid: the first 100 issues and one saying there are more.
SELECT lowcode.define_form('h', 'ints', '{"type": "array", "items": {"type": "integer"}}');
CREATE TEMP TABLE million AS SELECT (SELECT jsonb_agg(i) FROM generate_series(1, 1000000) i) AS good,
                                    (SELECT jsonb_agg(i::text) FROM generate_series(1, 1000000) i) AS bad;
SELECT lowcode.is_valid('h', 'ints', good) AS good, lowcode.is_valid('h', 'ints', bad) AS bad FROM million;
SELECT count(*) AS issues, count(*) FILTER (WHERE keyword = 'type') AS type_issues,
       (array_agg(path ORDER BY ord))[100] AS hundredth,
       (array_agg(keyword || ': ' || message ORDER BY ord))[101] AS last
  FROM million, lowcode.validate('h', 'ints', bad) WITH ORDINALITY AS v(path, keyword, message, field, ord);
SELECT state, message, jsonb_array_length(detail::jsonb) AS detail_issues,
       detail::jsonb -> 100 ->> 'keyword' AS last_keyword
  FROM million, pg_temp.caught(format('SELECT lowcode.submit(''h'', ''ints'', %L)', bad));
-- Huge and invalid everywhere: bounded too (each message cut at 500 bytes with "…").
SELECT count(*) AS issues, max(octet_length(message)) <= 503 AS cut, count(*) FILTER (WHERE message LIKE '%…') AS cut_messages
  FROM lowcode.validate('h', 'ints', (SELECT jsonb_agg(repeat('y', 10000)) FROM generate_series(1, 5000)));

-- Numbers at the edges: PostgreSQL keeps them exact, so does validation.
SELECT lowcode.define_form('h', 'num', '{"type": "object", "properties": {
  "i": {"type": "integer"}, "n": {"type": "number", "maximum": 1e308},
  "pos": {"type": "number", "exclusiveMinimum": 0}, "even": {"type": "integer", "multipleOf": 2},
  "cents": {"multipleOf": 0.01}, "big": {"maximum": 12345678901234567890}, "one": {"const": 1}}}');
SELECT d, lowcode.is_valid('h', 'num', d::jsonb)
  FROM unnest(ARRAY['{"i": 1e400}', '{"i": -0}', '{"i": 1.0}', '{"i": 1.5}', '{"i": 12345678901234567890}',
                    '{"i": -12345678901234567890123}', '{"n": 1e307}', '{"n": 1e400}', '{"pos": 1e-300}', '{"pos": -1e-400}',
                    '{"pos": 0}', '{"even": 12345678901234567890}', '{"even": 12345678901234567891}',
                    '{"cents": 0.07}', '{"cents": 0.075}', '{"big": 12345678901234567890}', '{"big": 12345678901234567891}',
                    '{"one": 1.0}', '{"one": 1.5}']) WITH ORDINALITY AS x(d, i) ORDER BY i;
-- KNOWN ISSUES (reported; not encoded as expected output): numbers past double precision.
--   {"pos": 1e-400} is refused by "exclusiveMinimum": 0 (read as 0), and {"one": 1.0000000000000000001}
--   passes "const": 1 (rounded). {"n": 1e400} is rightly refused, but explained as
--   "1.7976931348623157e+308 is greater than the maximum of 1e308" plus a stray issue
--   {"keyword": "depth", "message": "Number out of range"}. A schema holding 1e400 is refused (22023)
--   with a message about nesting depth. Only the SQLSTATE is asserted here:
SELECT left(pg_temp.err($$ SELECT lowcode.define_form('h', 'f', '{"maximum": 1e400}') $$), 5) AS huge_number_in_schema;

-- Unicode: lengths count code points (an emoji is 1, e + combining accent is 2).
SELECT lowcode.define_form('h', 'text', '{"type": "object", "properties": {"one": {"type": "string", "minLength": 1, "maxLength": 1}},
                                          "propertyNames": {"maxLength": 3}}');
SELECT d, lowcode.is_valid('h', 'text', d::jsonb)
  FROM unnest(ARRAY['{"one": "😀"}', '{"one": "😀😀"}', '{"one": "e\u0301"}', '{"one": "é"}', '{"one": "\ud83d\ude00"}',
                    '{"one": ""}', '{"één": 1}', '{"😀😀😀": 1}', '{"😀😀😀😀": 1}']) WITH ORDINALITY AS x(d, i) ORDER BY i;
SELECT * FROM lowcode.validate('h', 'text', '{"one": "😀😀", "😀😀😀😀": 1}');
-- \u0000 is refused by PostgreSQL's jsonb itself, before lowcode sees anything.
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'text', '{"one": "\u0000"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'text', '{"pattern": "\u0000"}') $$);

-- JSON null (or any non-object) where an object is expected.
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'num', 'null') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'num', '[]') $$);
SELECT lowcode.is_valid('h', 'num', 'null') AS null_doc, lowcode.is_valid('h', 'num', '{"i": null}') AS null_field;
SELECT lowcode.submit('h', 'num', '{}') AS num_id \gset
SELECT pg_temp.err(format('SELECT lowcode.update_record(%s, ''null'')', :num_id));
-- A form without "type" accepts any JSON; its typed view reads such records as NULLs and refuses
-- to UPDATE them (only objects have columns).
SELECT lowcode.define_form('h', 'anything', '{"properties": {"a": {"type": "integer"}}}');
SELECT lowcode.submit('h', 'anything', 'null') AS null_id \gset
SELECT lowcode.submit('h', 'anything', '[1, 2]') > 0, lowcode.submit('h', 'anything', '{"a": 1}') > 0;
SELECT lowcode.publish('h') > 0 AS published;
SELECT a, jsonb_typeof(r.data) FROM h.anything v JOIN lowcode.records r USING (id) ORDER BY id;
SELECT pg_temp.err(format('UPDATE h.anything SET a = 2 WHERE id = %s', :null_id));
UPDATE h.anything SET a = 2 WHERE a = 1;
SELECT a FROM h.anything WHERE a IS NOT NULL;

-- ============================================================== NULL arguments
-- Every function of the extension called with all arguments NULL: a clear 22004, a NULL result,
-- or a harmless no-op; never a crash. (Trigger functions cannot be called.)
CREATE FUNCTION pg_temp.all_nulls(f regprocedure) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; r text; args text; q text;
BEGIN
    SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i) INTO args
      FROM pg_proc p, unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(t, i) WHERE p.oid = f;
    q := CASE WHEN (SELECT proretset FROM pg_proc WHERE oid = f)
              THEN format('SELECT count(*)::text FROM %s(%s)', f::oid::regproc, args)
              ELSE format('SELECT %s(%s)::text', f::oid::regproc, args) END;
    EXECUTE q INTO r;
    RETURN 'returns ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
    RETURN s || ' ' || m;
END $$;
SELECT p.oid::regprocedure AS function, pg_temp.all_nulls(p.oid::regprocedure) AS with_nulls
  FROM pg_proc p
 WHERE p.pronamespace = 'lowcode'::regnamespace AND p.prorettype <> 'trigger'::regtype AND p.pronargs > 0
 ORDER BY p.proname, p.oid::regprocedure::text;
-- One NULL among good arguments.
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', 'num', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.define_form('h', NULL, '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('h', 'num', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('h', NULL, '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'num', NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.validate('h', NULL, '{}') $$);
SELECT lowcode.conforms('h', 'num', NULL) IS NULL AS conforms_null;
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('h', 'num', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.add_unique('h', 'num', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.add_unique('h', 'num', ARRAY[NULL]::text[]) $$);
SELECT pg_temp.err($$ SELECT lowcode.register_schema('urn:x', NULL) $$);
SELECT pg_temp.err(format('SELECT lowcode.update_record(%s, NULL)', :num_id));
SELECT pg_temp.err(format('SELECT lowcode.transition(%s, NULL)', :num_id));
SELECT pg_temp.err($$ SELECT * FROM lowcode.poll_events('c', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.nack_event('c', NULL, 'boom') $$);
SELECT pg_temp.err($$ SELECT lowcode.withdraw(NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.workflow_diagram('h', NULL) $$);

-- ============================================================== names
-- Apps, forms, states and transitions follow one rule; everything else is data, quoted where it
-- becomes SQL.
SELECT n, pg_temp.err(format('SELECT lowcode.create_app(%L)', n))
  FROM unnest(ARRAY['My App', 'MyApp', 'my app', 'x"; DROP TABLE lowcode.apps; --', 'a;b', 'a''b', '', '1abc', '_x',
                    'ünïcode', repeat('a', 64), 'pg_anything', 'public']) WITH ORDINALITY AS x(n, i) ORDER BY i;
SELECT lowcode.create_app(repeat('a', 63)) = repeat('a', 63) AS longest_name;
SELECT n, pg_temp.err(format('SELECT lowcode.define_form(''h'', %L, ''{}'')', n))
  FROM unnest(ARRAY['Form', 'my form', 'f"x', 'f;x', repeat('f', 64)]) WITH ORDINALITY AS x(n, i) ORDER BY i;
SELECT lowcode.define_form('h', 'wf', '{"type": "object", "properties": {"note": {"type": "string"}}}');
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"Open": {"initial": true}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"o\"; --": {"initial": true}}}') $$);
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"o": {"initial": true}, "d": {}},
    "transitions": [{"name": "go now", "from": "o", "to": "d"}]}') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"%s": {"initial": true}}}') $$, repeat('s', 64)));
SELECT pg_temp.err($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"o": {"initial": true}, "d": {}},
    "transitions": [{"name": "go", "from": "o", "to": "d", "roles": [""]}]}') $$);
SELECT pg_temp.err(format($$ SELECT lowcode.define_workflow('h', 'wf', '{"states": {"o": {"initial": true}, "d": {}},
    "transitions": [{"name": "go", "from": "o", "to": "d", "roles": ["%s"]}]}') $$, repeat('r', 64)));
-- Rule, task, pool, timer, approval, topic and channel names are free text: quotes and semicolons
-- travel as data, and a role with quotes in its name is matched, not spliced into SQL.
DROP ROLE IF EXISTS "lc_hostile_Eng""x; DROP ROLE postgres; --";
DROP ROLE IF EXISTS lc_hostile_outsider;
CREATE ROLE "lc_hostile_Eng""x; DROP ROLE postgres; --" NOLOGIN;
CREATE ROLE lc_hostile_outsider NOLOGIN;
SELECT lowcode.grant('h', 'lc_hostile_outsider', ARRAY['read_all']);
SELECT lowcode.define_workflow('h', 'wf', $${
  "states": {"open": {"initial": true}, "review": {}, "done": {"final": true}},
  "transitions": [{"name": "start", "from": "open", "to": "review", "roles": ["lc_hostile_Eng\"x; DROP ROLE postgres; --"]}],
  "rules": [
    {"name": "r'1; DROP TABLE lowcode.records; --", "on": "created",
     "then": [{"task": {"name": "fix 'it'; --", "pool": "pool \"A\"; DROP TABLE lowcode.tasks; --"}},
              {"timer": {"name": "t'; --", "after": "1 hour"}},
              {"emit": {"topic": "topic'; DROP TABLE lowcode.events; --", "payload": {"k'; --": "v'; --"}}},
              {"notify": {"channel": "chan'nel; --"}}]},
    {"name": "done \"rule\"", "on": "task_completed:fix 'it'; --", "then": [{"set": {"note": "'; --"}}, {"transition": "done"}]},
    {"name": "timer rule", "on": "timer:t'; --", "then": [{"emit": {"topic": "fired"}}]}]}$$);
SELECT lowcode.submit('h', 'wf', '{}') AS wf_id \gset
SELECT name, pool, status FROM lowcode.tasks WHERE record_id = :wf_id ORDER BY id;
SELECT name, event, status FROM lowcode.timers WHERE record_id = :wf_id ORDER BY id;
SELECT topic, payload ->> 'k''; --' AS payload FROM lowcode.events WHERE record_id = :wf_id ORDER BY id;
SET lowcode.actor = 'worker "1"; --';
SELECT lowcode.claim_task('pool "A"; DROP TABLE lowcode.tasks; --') IS NOT NULL AS claimed;
SELECT lowcode.complete_task((SELECT id FROM lowcode.tasks WHERE record_id = :wf_id), 'done; --');
RESET lowcode.actor;
SELECT state, data FROM lowcode.records WHERE id = :wf_id;
SELECT action, actor FROM lowcode.record_history(:wf_id) ORDER BY id;
-- The role in the transition is looked up, and the hint quotes it.
SELECT lowcode.submit('h', 'wf', '{}') AS wf2 \gset
SET ROLE lc_hostile_outsider;
SELECT pg_temp.err(format('SELECT lowcode.transition(%s, %L)', :wf2, 'start'));
RESET ROLE;
GRANT "lc_hostile_Eng""x; DROP ROLE postgres; --" TO lc_hostile_outsider;
SET ROLE lc_hostile_outsider;
SELECT lowcode.transition(:wf2, 'start');
RESET ROLE;
-- A "call" action naming something that is not a function is an error, never executed SQL.
SELECT lowcode.define_form('h', 'caller', '{}');
SELECT pg_temp.err($q$ SELECT lowcode.define_workflow('h', 'caller', $${"states": {"s": {"initial": true}},
  "rules": [{"name": "c", "on": "created", "then": [{"call": "lower(jsonb); DROP TABLE lowcode.apps; --"}]}]}$$) $q$);
SELECT to_regclass('lowcode.apps') IS NOT NULL AS apps_still_there;

-- Property names with quotes, semicolons, spaces, case, backslashes and newlines become quoted
-- view columns; nothing in them is executed, through publish, the view, or add_unique.
SELECT lowcode.define_form('h', 'weird', $${"type": "object", "properties": {
  "a\"b": {"type": "string"}, "x); DROP TABLE lowcode.apps; --": {"type": "integer"},
  "Mixed Case": {"type": "boolean"}, "select": {"type": "string"}, "it's": {"type": "string"},
  "back\\slash": {"type": "string"}, "line\nbreak": {"type": "string"}, "$1": {"type": "string"},
  "%s %I %L": {"type": "string"}, "é😀": {"type": "number"}}}$$);
SELECT lowcode.publish('h') > 0 AS published;
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'h' AND table_name = 'weird' ORDER BY ordinal_position;
INSERT INTO h.weird ("a""b", "x); DROP TABLE lowcode.apps; --", "Mixed Case", "select", "it's", "back\slash",
                     "line
break", "$1", "%s %I %L", "é😀")
VALUES ('q"q', 7, true, 's', 'o''k', 'b\s', 'n', 'd', 'f', 1.5)
RETURNING "a""b", "x); DROP TABLE lowcode.apps; --", "Mixed Case", "select", "it's", "back\slash", "$1", "%s %I %L", "é😀";
UPDATE h.weird SET "x); DROP TABLE lowcode.apps; --" = 8, "it's" = 'still ''ok''' RETURNING "x); DROP TABLE lowcode.apps; --", "it's";
SELECT data FROM lowcode.records WHERE form = 'weird';
SELECT lowcode.add_unique('h', 'weird', ARRAY['a"b', 'x); DROP TABLE lowcode.apps; --']) LIKE 'h_weird_%_key' AS unique_added;
SELECT pg_temp.err($$ INSERT INTO h.weird ("a""b", "x); DROP TABLE lowcode.apps; --") VALUES ('q"q', 8) $$);
SELECT to_regclass('lowcode.apps') IS NOT NULL AS apps_still_there;
-- A property name the view cannot carry is refused by publish with its name.
SELECT lowcode.define_form('h', 'weird2', jsonb_build_object('properties', jsonb_build_object(repeat('c', 64), '{}'::jsonb)));
SELECT pg_temp.err($$ SELECT lowcode.publish('h') $$);
SELECT lowcode.define_form('h', 'weird2', '{"properties": {"revision": {}}}');
SELECT pg_temp.err($$ SELECT lowcode.publish('h') $$);
DELETE FROM lowcode.forms WHERE app = 'h' AND name = 'weird2';
-- Such fields hidden from a role with such a name: quoted in the regenerated view, left out of
-- what the role reads.
SELECT lowcode.grant('h', 'lc_hostile_Eng"x; DROP ROLE postgres; --', ARRAY['read_all']);
SELECT lowcode.hide_fields('h', 'weird', 'lc_hostile_Eng"x; DROP ROLE postgres; --',
                           ARRAY['a"b', 'x); DROP TABLE lowcode.apps; --', '%s %I %L']);
SET ROLE "lc_hostile_Eng""x; DROP ROLE postgres; --";
SELECT "a""b", "x); DROP TABLE lowcode.apps; --", "it's", "%s %I %L" FROM h.weird;
SELECT data FROM lowcode.read_records('h', 'weird');
RESET ROLE;
SELECT "a""b", "x); DROP TABLE lowcode.apps; --", "it's", "%s %I %L" FROM h.weird;

-- ============================================================== earlier crashes
-- Stack overflow: a deep document against a recursive schema (fixed: 54000 at a depth derived
-- from the schema's size, whatever lowcode.max_document_depth says).
SET lowcode.max_document_depth = 10000;
SELECT pg_temp.err($$ SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(7500)) $$);
SELECT pg_temp.err($$ SELECT count(*) FROM lowcode.validate('h', 'tree', pg_temp.nested(1999, '1')) $$);
SELECT lowcode.is_valid('h', 'tree', pg_temp.nested(1250)) AS at_limit;
SELECT count(*) FROM lowcode.validate('h', 'tree', pg_temp.nested(1250, '1'));
-- A big recursive schema (60 allOf levels around a $ref) gets a small limit.
SELECT pg_temp.err(format($q$ SELECT lowcode.matches(%L, %L) $q$,
    jsonb_build_object('$defs', jsonb_build_object('n', (repeat('{"allOf": [', 60) || '{"items": {"$ref": "#/$defs/n"}}' || repeat(']}', 60))::jsonb),
                       '$ref', '#/$defs/n'),
    pg_temp.nested(1000)));
-- The same with PL/pgSQL recursion already using the stack when validation starts.
CREATE FUNCTION pg_temp.descend(n int, s jsonb, d jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF n > 0 THEN RETURN pg_temp.descend(n - 1, s, d); END IF;
    RETURN lowcode.matches(s, d)::text || ' / ' || left(lowcode.condition_issues(s, d)::text, 60);
END $$;
SELECT pg_temp.descend(400, '{"items": {"$ref": "#"}}', pg_temp.nested(1250, '1'));
SELECT pg_temp.err($$ SELECT pg_temp.descend(400, '{"items": {"$ref": "#"}}', pg_temp.nested(1251)) $$);
RESET lowcode.max_document_depth;
-- Memory: huge invalid documents (a million issues; a 50 MB value quoted in a message) were
-- covered above: 100 issues + "more", messages cut at 500 bytes.
-- Exponential explanations: two recursive branches per level used to list 2^depth issues.
SELECT lowcode.define_form('h', 'branchy', '{"oneOf": [{"type": "array", "items": {"$ref": "#"}}, {"type": "array", "items": {"$ref": "#"}}]}');
SELECT lowcode.is_valid('h', 'branchy', pg_temp.nested(30, '1')) AS valid;
SELECT * FROM lowcode.validate('h', 'branchy', pg_temp.nested(30, '1'));
SELECT pg_temp.took($$ SELECT * FROM lowcode.validate('h', 'branchy', pg_temp.nested(30, '1')) $$) < interval '3 s' AS fast;
SELECT state, message, detail FROM pg_temp.caught($$ SELECT lowcode.submit('h', 'branchy', pg_temp.nested(30, '1')) $$);
SELECT count(*) AS shallow_issues FROM lowcode.validate('h', 'branchy', pg_temp.nested(3, '1'));
-- A valid document nested deeper than the explanation limit has no issues (validity is
-- checked before any explanation is attempted).
SELECT lowcode.define_form('h', 'both', '{"allOf": [{"items": {"$ref": "#"}}, {"items": {"$ref": "#"}}]}');
SELECT lowcode.is_valid('h', 'both', pg_temp.nested(20)) AS valid, count(*) AS issues
  FROM lowcode.validate('h', 'both', pg_temp.nested(20));

-- The cluster is still healthy and nothing leaked into other schemas.
SELECT count(*) > 0 AS records_exist FROM lowcode.records;
SELECT nspname FROM pg_namespace WHERE nspname IN ('h', 'lowcode') ORDER BY 1;
REVOKE "lc_hostile_Eng""x; DROP ROLE postgres; --" FROM lc_hostile_outsider;
REVOKE ALL ON ALL TABLES IN SCHEMA lowcode FROM lc_hostile_outsider;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA lowcode FROM lc_hostile_outsider;
REVOKE USAGE ON SCHEMA lowcode FROM lc_hostile_outsider;
DROP ROLE lc_hostile_outsider;
DROP ROLE "lc_hostile_Eng""x; DROP ROLE postgres; --";
