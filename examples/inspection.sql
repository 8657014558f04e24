-- Equipment inspection: engineers report faults on the factory floor.
-- `make demo` runs this file in a throwaway database and prints every statement with its result.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- 1. An app is a namespace for forms.
SELECT lowcode.create_app('inspection', 'Equipment inspection');

-- 2. A form is a JSON Schema. Defining it publishes version 1.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity"],
  "properties": {
    "site":        {"type": "string", "minLength": 1},
    "severity":    {"type": "integer", "minimum": 1, "maximum": 5},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos":      {"type": "array", "items": {"type": "string"}}
  }}') AS version;

-- 3. Submissions are validated by the database; a good one returns its record id.
SELECT lowcode.submit('inspection', 'fault_report',
                      '{"site": "plant-7", "severity": 5, "reported_at": "2026-11-25T08:30:00Z"}') AS record_id;
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-3", "severity": 2}') AS record_id;

-- 4. A bad one is refused (SQLSTATE 23514). DETAIL lists every problem as JSON.
--    (The error is caught here only so the demo can go on.)
DO $$
DECLARE detail text;
BEGIN
    PERFORM lowcode.submit('inspection', 'fault_report', '{"severity": 9}');
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %', SQLERRM;
    RAISE NOTICE 'detail:  %', detail;
END $$;

-- 5. Ask before you submit: validate() lists problems without raising, is_valid() says yes or no.
SELECT * FROM lowcode.validate('inspection', 'fault_report', '{"severity": 9}');
SELECT lowcode.is_valid('inspection', 'fault_report', '{"site": "x", "severity": 1}') AS is_valid;

-- 6. Publish typed views: a schema named after the app, one view per form.
SELECT lowcode.publish('inspection') AS views;
SELECT id, site, severity, reported_at, state, revision FROM inspection.fault_report ORDER BY id;

-- Plain SQL writes go through the same validation.
INSERT INTO inspection.fault_report (site, severity, photos)
VALUES ('plant-9', 4, '["valve.jpg"]')
RETURNING id, site, severity, photos;
UPDATE inspection.fault_report SET severity = 3 WHERE site = 'plant-3' RETURNING id, severity, revision;

-- 7. Every change is in the history, with who did it.
SELECT record_id, action, revision, actor, after ->> 'severity' AS severity
  FROM lowcode.history ORDER BY id;

-- 8. Forms evolve: a changed schema is version 2; existing records keep the version they were validated against.
SELECT lowcode.define_form('inspection', 'fault_report', '{
  "type": "object",
  "required": ["site", "severity", "machine"],
  "properties": {
    "site":        {"type": "string", "minLength": 1},
    "severity":    {"type": "integer", "minimum": 1, "maximum": 5},
    "machine":     {"type": "string", "pattern": "^M-[0-9]{3}$"},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos":      {"type": "array", "items": {"type": "string"}}
  }}') AS version;
SELECT lowcode.submit('inspection', 'fault_report', '{"site": "plant-7", "severity": 1, "machine": "M-042"}') AS record_id;
SELECT lowcode.publish('inspection') AS views;
SELECT r.id, v.version AS validated_against, f.site, f.machine
  FROM inspection.fault_report f
  JOIN lowcode.records r USING (id)
  JOIN lowcode.form_versions v ON v.id = r.form_version_id
 ORDER BY r.id;

-- 9. Use a form as a CHECK constraint on a table of your own.
CREATE TABLE imported_faults (
    id  serial PRIMARY KEY,
    doc jsonb NOT NULL CHECK (lowcode.conforms('inspection', 'fault_report', doc))
);
INSERT INTO imported_faults (doc) VALUES ('{"site": "plant-1", "severity": 2, "machine": "M-001"}');
SELECT count(*) AS imported FROM imported_faults;
