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
    "photos": {"type": "array", "items": {"type": "string"}}
  }}');

-- submit returns the record id; invalid data is refused with every issue in DETAIL.
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-7", "severity": 5}') AS id;
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', '{"severity": 9}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', '{"site": "", "severity": 2.5, "photos": [1]}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', '{"site": "x", "severity": 1, "reported_at": "last tuesday"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', 'null') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', '[]') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'fault_report', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('inspection', 'nope', '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit('nope', 'fault_report', '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.submit(NULL, 'fault_report', '{}') $$);
-- The DETAIL is valid JSON a program can read.
DO $$
DECLARE d text;
BEGIN
    PERFORM lowcode.submit('inspection', 'fault_report', '{"severity": 9}');
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'issues: %, keywords: %', jsonb_array_length(d::jsonb),
        (SELECT string_agg(e ->> 'keyword', ',' ORDER BY e ->> 'keyword') FROM jsonb_array_elements(d::jsonb) e);
END $$;
-- Only the one good record exists.
SELECT id, app, form, data, state, revision FROM lowcode.records;

-- validate: rows, no error.
SELECT * FROM lowcode.validate('inspection', 'fault_report', '{"severity": 9}') ORDER BY path;
SELECT count(*) FROM lowcode.validate('inspection', 'fault_report', '{"site": "x", "severity": 1}');
SELECT * FROM lowcode.validate('inspection', 'fault_report', '{"site": "x", "severity": 1, "photos": ["a", 2, "c", {}]}') ORDER BY path;
SELECT pg_temp.err($$ SELECT * FROM lowcode.validate('inspection', 'fault_report', NULL) $$);
SELECT pg_temp.err($$ SELECT * FROM lowcode.validate('inspection', 'missing', '{}') $$);

-- is_valid: a boolean; NULL data is an error, unknown forms too.
SELECT lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 1}') AS valid,
       lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 0}') AS too_low;
SELECT pg_temp.err($$ SELECT lowcode.is_valid('inspection', 'fault_report', NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.is_valid('inspection', NULL, '{}') $$);

-- conforms: for CHECK constraints on your own tables (NULL passes, like any CHECK).
CREATE TABLE my_reports (
    id serial PRIMARY KEY,
    doc jsonb CHECK (lowcode.conforms('inspection', 'fault_report', doc))
);
INSERT INTO my_reports (doc) VALUES ('{"site": "a", "severity": 3}'), (NULL);
SELECT pg_temp.err($$ INSERT INTO my_reports (doc) VALUES ('{"site": "a"}') $$);
SELECT count(*) FROM my_reports;
SELECT lowcode.conforms('inspection', 'fault_report', NULL) IS NULL AS null_is_null;

-- Numbers at the edges and unicode.
SELECT lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 5.0}') AS five_point_zero,
       lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 12345678901234567890}') AS huge,
       lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": -0}') AS minus_zero,
       lowcode.is_valid('inspection', 'fault_report', '{"site": "工厂七号 🏭", "severity": 3}') AS unicode;

-- Bulk: one compile per backend, however many rows.
SELECT lowcode.cache_clear();
SELECT count(*) FILTER (WHERE lowcode.conforms('inspection', 'fault_report', doc)) AS valid,
       count(*) FILTER (WHERE NOT lowcode.conforms('inspection', 'fault_report', doc)) AS invalid
  FROM (SELECT jsonb_build_object('site', 'site-' || i, 'severity', i % 7) AS doc
          FROM generate_series(1, 10000) i) s;
SELECT lowcode.cache_stats() -> 'validators' AS compiled_validators;
