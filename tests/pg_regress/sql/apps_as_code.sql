-- Apps as code: export_app, import_app (into another database, idempotent, dry run),
-- registered schemas travelling with the app, refused definitions, and diff_app.
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
-- What an app is made of here, to compare before and after an import.
CREATE FUNCTION pg_temp.counts() RETURNS TABLE (apps bigint, forms bigint, form_versions bigint, workflow_versions bigint,
                                               schemas bigint, records bigint, history bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM lowcode.apps), (SELECT count(*) FROM lowcode.forms),
           (SELECT count(*) FROM lowcode.form_versions), (SELECT count(*) FROM lowcode.workflow_versions),
           (SELECT count(*) FROM lowcode.schemas), (SELECT count(*) FROM lowcode.records),
           (SELECT count(*) FROM lowcode.history)
$$;

-- ---------------------------------------------------------------- the app in "dev"

-- Shared schemas: an address that references a zip code, a phone number, and one no form uses.
SELECT lowcode.register_schema('https://schemas.example.com/zip', '{"type": "string", "pattern": "^[0-9]{5}$"}');
SELECT lowcode.register_schema('https://schemas.example.com/address',
  '{"type": "object", "required": ["street"], "properties": {"street": {"type": "string"}, "zip": {"$ref": "https://schemas.example.com/zip"}}}');
SELECT lowcode.register_schema('https://schemas.example.com/phone', '{"type": "string", "pattern": "^[0-9+ ]+$"}');
SELECT lowcode.register_schema('https://schemas.example.com/unused', '{"type": "string"}');

SELECT lowcode.create_app('helpdesk', 'Help desk');
SELECT lowcode.define_form('helpdesk', 'ticket', '{
  "type": "object", "required": ["title"],
  "properties": {"title": {"type": "string", "maxLength": 100}}}');
SELECT lowcode.define_form('helpdesk', 'ticket', '{
  "type": "object", "required": ["title", "severity"],
  "properties": {
    "title": {"type": "string", "maxLength": 100},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "category": {"enum": ["hardware", "software", "network"]},
    "channel": {"enum": ["mail", "phone"]},
    "note": {"type": "string"},
    "legacy_code": {"type": "string"},
    "due": {"type": "string", "format": "date"},
    "phone": {"$ref": "https://schemas.example.com/phone"}}}');
SELECT lowcode.define_workflow('helpdesk', 'ticket', '{
  "states": {"open": {"initial": true}, "working": {}, "waiting": {}, "resolved": {"final": true}},
  "transitions": [{"name": "start", "from": "open", "to": "working"},
                  {"name": "park", "from": "working", "to": "waiting"},
                  {"name": "resolve", "from": ["working", "waiting"], "to": "resolved"}],
  "rules": [{"name": "urgent", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
             "then": [{"emit": {"topic": "ticket.urgent"}}]},
            {"name": "audit", "on": "entered:resolved", "then": [{"emit": {"topic": "ticket.resolved"}}]}]}');
SELECT lowcode.define_form('helpdesk', 'site', '{
  "type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "address": {"$ref": "https://schemas.example.com/address"}}}');
SELECT lowcode.define_form('helpdesk', 'contact', '{
  "type": "object", "additionalProperties": false,
  "properties": {"name": {"type": "string"}, "fax": {"type": "string"}}}');
SELECT lowcode.define_form('helpdesk', 'survey', '{"type": "object", "properties": {"score": {"type": "integer"}}}');
SELECT lowcode.define_workflow('helpdesk', 'survey', '{"states": {"sent": {"initial": true}, "answered": {"final": true}},
  "transitions": [{"name": "answer", "from": "sent", "to": "answered"}]}');
-- Form titles are part of the definition too.
UPDATE lowcode.forms SET title = 'Support ticket' WHERE app = 'helpdesk' AND name = 'ticket';
SELECT lowcode.submit('helpdesk', 'ticket', '{"title": "Printer jammed", "severity": 2}');
SELECT lowcode.submit('helpdesk', 'ticket', '{"title": "Server down", "severity": 5, "category": "hardware"}');
SELECT lowcode.submit('helpdesk', 'site', '{"name": "HQ", "address": {"street": "Main St 1", "zip": "12345"}}');
SELECT lowcode.submit('helpdesk', 'contact', '{"name": "Ann", "fax": "+1 555"}');

-- ---------------------------------------------------------------- export

-- The whole format: the current schema, title and workflow of every form (by name), and the
-- registered schemas they reference, also through another registered schema (zip), not the
-- unused one. Records are data, not definition: they are not exported.
SELECT jsonb_pretty(lowcode.export_app('helpdesk'));
-- Deterministic: the same app exports byte-identical text, every time.
SELECT lowcode.export_app('helpdesk')::text = lowcode.export_app('helpdesk')::text AS same_text,
       md5(lowcode.export_app('helpdesk')::text) = md5(lowcode.export_app('helpdesk', '{}')::text) AS same_md5;
-- {"versions": "all"} lists every published version of every form, oldest first.
SELECT f ->> 'name' AS form,
       (SELECT string_agg(v ->> 'version', ',' ORDER BY (v ->> 'version')::int) FROM jsonb_array_elements(f -> 'versions') v) AS versions,
       (SELECT string_agg(x.version::text, ',' ORDER BY x.version) FROM lowcode.form_versions x
         WHERE x.app = 'helpdesk' AND x.form = f ->> 'name') AS published,
       f -> 'versions' -> -1 -> 'schema' = f -> 'schema' AS last_is_current
  FROM jsonb_array_elements(lowcode.export_app('helpdesk', '{"versions": "all"}') -> 'forms') f
 ORDER BY 1;
SELECT jsonb_pretty(lowcode.export_app('helpdesk', '{"versions": "all"}') #> '{forms,3,versions,0}') AS ticket_v1;
-- Without the option there is no "versions" key; the rest is the same.
SELECT lowcode.export_app('helpdesk') = (SELECT jsonb_set(e, '{forms}', (SELECT jsonb_agg(f - 'versions' ORDER BY f ->> 'name')
                                                                        FROM jsonb_array_elements(e -> 'forms') f))
                                          FROM lowcode.export_app('helpdesk', '{"versions": "all"}') e) AS all_minus_versions_is_current;
SELECT pg_temp.err($$ SELECT lowcode.export_app('helpdesk', '{"versions": "some"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.export_app('nohelp') $$);
SELECT pg_temp.err($$ SELECT lowcode.export_app('helpdesk', '{"version": "all"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.export_app('helpdesk', '["all"]') $$);

-- ---------------------------------------------------------------- into another database ("staging")

SELECT format('dbname=%s port=%s host=%s', 'lc_regress_apps_as_code_staging', current_setting('port'),
              split_part(current_setting('unix_socket_directories'), ',', 1)) AS staging \gset
CREATE DATABASE lc_regress_apps_as_code_staging;
SELECT dblink_connect('staging', :'staging');
SELECT dblink_exec('staging', 'CREATE EXTENSION lowcode');
-- remote(sql): the jsonb a query returns in staging.
CREATE FUNCTION pg_temp.remote(q text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT r FROM dblink('staging', q) AS t(r jsonb)
$$;
SELECT lowcode.export_app('helpdesk') AS dev_export \gset
SELECT lowcode.export_app('helpdesk', '{"versions": "all"}') AS dev_history \gset

-- Diffed against a database without the app: everything would be added.
SELECT * FROM dblink('staging', format($$ SELECT kind, path, change, detail -> 'breaking' FROM lowcode.diff_app('helpdesk', %L) $$, :'dev_export'))
           AS t(kind text, path text, change text, breaking jsonb)
 ORDER BY kind, path;
-- The first import creates the app, registers the schemas it needs (zip before address, which
-- references it) and creates every form and workflow.
SELECT jsonb_pretty(pg_temp.remote(format('SELECT lowcode.import_app(%L)', :'dev_export')));
-- Exported again there, it is byte-identical to the original.
SELECT pg_temp.remote($$ SELECT lowcode.export_app('helpdesk') $$)::text = :'dev_export' AS round_trip_identical;
-- Import is idempotent: the second time nothing changes.
SELECT pg_temp.remote(format('SELECT lowcode.import_app(%L)', :'dev_export'));
SELECT pg_temp.remote($$ SELECT to_jsonb(c) FROM (SELECT (SELECT count(*) FROM lowcode.form_versions) AS form_versions,
                                                       (SELECT count(*) FROM lowcode.workflow_versions) AS workflow_versions,
                                                       (SELECT count(*) FROM lowcode.schemas) AS schemas,
                                                       (SELECT count(*) FROM lowcode.records) AS records) c $$) AS staging_counts;
-- Staging holds the current versions only; dev's full history, imported on top, adds nothing
-- older than what staging already has.
SELECT pg_temp.remote(format('SELECT lowcode.import_app(%L)', :'dev_history')) AS history_on_top;

-- The full history imported into a database without the app replays every version: its
-- "all" export is then identical to dev's.
SELECT dblink_exec('staging', 'DROP EXTENSION lowcode CASCADE');
SELECT dblink_exec('staging', 'CREATE EXTENSION lowcode');
SELECT c ->> 'kind' AS kind, c ->> 'name' AS name, c ->> 'change' AS change, c -> 'version' AS version
  FROM jsonb_array_elements(pg_temp.remote(format('SELECT lowcode.import_app(%L)', :'dev_history')) -> 'changes') c;
SELECT pg_temp.remote($$ SELECT lowcode.export_app('helpdesk', '{"versions": "all"}') $$)::text = :'dev_history' AS history_identical;
SELECT pg_temp.remote(format('SELECT lowcode.import_app(%L)', :'dev_history')) AS history_again;

-- A registered schema whose URI means something else in the target is a clear error, and
-- nothing of the import is left behind.
SELECT lowcode.register_schema('https://schemas.example.com/email', '{"type": "string", "format": "email"}');
SELECT lowcode.create_app('crm', 'Customers');
SELECT lowcode.define_form('crm', 'lead', '{"type": "object", "properties": {"email": {"$ref": "https://schemas.example.com/email"}}}');
SELECT dblink_exec('staging', $$ DO $x$ BEGIN PERFORM lowcode.register_schema('https://schemas.example.com/email', '{"type": "string", "maxLength": 254}'); END $x$ $$);
-- diff_app shows the conflict before anyone tries.
SELECT * FROM dblink('staging', format($$ SELECT kind, path, change, detail -> 'breaking', detail ->> 'reason' FROM lowcode.diff_app('crm', %L) $$,
                                        lowcode.export_app('crm')))
           AS t(kind text, path text, change text, breaking jsonb, reason text)
 ORDER BY kind, path;
SELECT pg_temp.err(format('SELECT pg_temp.remote(%L)', format('SELECT lowcode.import_app(%L)', lowcode.export_app('crm'))));
SELECT pg_temp.remote($$ SELECT to_jsonb(ARRAY(SELECT name FROM lowcode.apps ORDER BY name)) $$) AS staging_apps;

SELECT dblink_disconnect('staging');
DROP DATABASE lc_regress_apps_as_code_staging;

-- ---------------------------------------------------------------- refused definitions

-- A definition from a newer lowcode is refused (SQLSTATE 0A000) before anything happens.
SELECT pg_temp.err(format('SELECT lowcode.import_app(%L)', jsonb_set(:'dev_export', '{lowcode}', '2')));
SELECT pg_temp.err($$ SELECT lowcode.import_app('[1, 2]') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('"helpdesk"') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app(NULL) $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "forms": []}') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"app": "helpdesk", "forms": []}') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"app": "helpdesk", "lowcode": "1"}') $$);
-- What the definition holds is checked like any definition, and nothing is kept.
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "app": "Bad App"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "app": "fresh", "forms": [{"name": "f", "schema": {"type": "objekt"}}]}') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "app": "fresh", "forms": [{"name": "f", "schema": {}, "workflow": {"states": {}}}]}') $$);
-- A mistyped option is refused rather than ignored (this would have been a real import).
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "app": "fresh"}', '{"dryrun": true}') $$);
SELECT pg_temp.err($$ SELECT lowcode.import_app('{"lowcode": 1, "app": "fresh"}', '{"dry_run": "perhaps"}') $$);
SELECT count(*) AS fresh_apps FROM lowcode.apps WHERE name = 'fresh';

-- ---------------------------------------------------------------- diff_app

-- Identical: no rows.
SELECT count(*) AS no_changes FROM lowcode.diff_app('helpdesk', :'dev_export');
-- Every kind of change, each with whether it breaks existing records or in-flight workflows.
SELECT '{
  "lowcode": 1, "app": "helpdesk", "title": "Help desk",
  "forms": [
    {"name": "asset", "title": "", "schema": {"type": "object"}, "workflow": null},
    {"name": "contact", "title": "", "schema": {"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string"}}},
     "workflow": {"states": {"new": {"initial": true}, "known": {"final": true}}, "transitions": [{"name": "verify", "from": "new", "to": "known"}]}},
    {"name": "survey", "title": "", "schema": {"type": "object", "properties": {"score": {"type": "integer"}}}, "workflow": null},
    {"name": "ticket", "title": "Support ticket",
     "schema": {"type": "object", "required": ["title", "legacy_code", "impact"], "minProperties": 2,
       "properties": {
         "title": {"type": "string", "minLength": 1, "maxLength": 200},
         "severity": {"type": "number", "minimum": 1, "maximum": 5},
         "category": {"enum": ["hardware", "software"]},
         "channel": {"enum": ["mail", "phone", "chat"]},
         "legacy_code": {"type": "string"},
         "due": {"type": "string"},
         "phone": {"$ref": "https://schemas.example.com/phone"},
         "assignee": {"type": "string"},
         "impact": {"enum": ["low", "high"]}}},
     "workflow": {
       "states": {"open": {"initial": true}, "working": {}, "resolved": {"final": true}, "closed": {"final": true}},
       "transitions": [{"name": "start", "from": "open", "to": "working", "roles": ["engineer"]},
                       {"name": "resolve", "from": "working", "to": "resolved"},
                       {"name": "close", "from": "working", "to": "closed"}],
       "rules": [{"name": "urgent", "on": "created", "when": {"properties": {"severity": {"minimum": 5}}},
                  "then": [{"emit": {"topic": "ticket.urgent"}}]},
                 {"name": "notify_team", "on": "entered:closed", "then": [{"notify": {"channel": "helpdesk"}}]}]}}],
  "schemas": [{"uri": "https://schemas.example.com/phone", "schema": {"type": "string", "pattern": "^[0-9+ ]+$"}}]
}' AS wanted \gset
SELECT kind, path, change, detail -> 'breaking' AS breaking, detail ->> 'reason' AS reason
  FROM lowcode.diff_app('helpdesk', :'wanted') ORDER BY kind, path, change;
-- detail also carries what was there and what would be.
SELECT kind, path, change, detail -> 'before' AS before, detail -> 'after' AS after
  FROM lowcode.diff_app('helpdesk', :'wanted')
 WHERE kind IN ('enum', 'constraint', 'field', 'schema') ORDER BY kind, path, change;
SELECT path, change, detail -> 'before' -> 'roles' AS roles_before, detail -> 'after' -> 'roles' AS roles_after
  FROM lowcode.diff_app('helpdesk', :'wanted') WHERE kind = 'transition' AND change = 'changed';
SELECT kind, count(*) FILTER (WHERE (detail ->> 'breaking')::boolean) AS breaking, count(*) AS changes
  FROM lowcode.diff_app('helpdesk', :'wanted') GROUP BY kind ORDER BY kind;

-- ---------------------------------------------------------------- import into dev: dry run, then for real

-- contact's record is in state "submitted" (it had no workflow), which the new workflow lacks:
-- import refuses to strand it, dry run or not.
SELECT pg_temp.err(format('SELECT lowcode.import_app(%L, ''{"dry_run": true}'')', :'wanted'));
SELECT pg_temp.err(format('SELECT lowcode.import_app(%L)', :'wanted'));
-- Moving records is a migration: the new schema (fax removed from a closed schema, so the
-- transform drops it) and the workflow, with the state mapped.
\set VERBOSITY terse
SELECT lowcode.apply_migration('helpdesk', 'contact', :'wanted'::jsonb #> '{forms,1,schema}', $$data - 'fax'$$,
                               jsonb_build_object('workflow', :'wanted'::jsonb #> '{forms,1,workflow}',
                                                  'state_map', '{"submitted": "new"}'::jsonb));
\set VERBOSITY default
SELECT id, state, data FROM lowcode.records WHERE form = 'contact';

-- dev has typed views.
SELECT lowcode.publish('helpdesk');
CREATE TEMP VIEW ticket_columns AS
    SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS columns
      FROM information_schema.columns WHERE table_schema = 'helpdesk' AND table_name = 'ticket';
SELECT columns FROM ticket_columns;
CREATE TEMP TABLE before_import AS SELECT * FROM pg_temp.counts();
SELECT lowcode.export_app('helpdesk', '{"versions": "all"}') AS export_before \gset
CREATE TEMP TABLE versions_before AS
    SELECT f.name, v.version AS form_version, w.version AS workflow_version, f.title
      FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id
      LEFT JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id WHERE f.app = 'helpdesk';
-- A dry run reports what would change and changes nothing.
SELECT lowcode.import_app(:'wanted', '{"dry_run": true}') AS dry \gset
SELECT jsonb_pretty(:'dry');
SELECT (SELECT row(b.*) FROM before_import b) = (SELECT row(c.*) FROM pg_temp.counts() c) AS nothing_changed,
       lowcode.export_app('helpdesk', '{"versions": "all"}')::text = :'export_before' AS same_export;
SELECT columns AS same_view_columns FROM ticket_columns;
-- The real import does exactly what the dry run said.
SELECT lowcode.import_app(:'wanted') AS applied \gset
SELECT :'applied'::jsonb - 'changes' AS applied, :'applied'::jsonb -> 'changes' = :'dry'::jsonb -> 'changes' AS as_the_dry_run_said;
-- New versions only where something changed; site (not in the definition) and its record stay,
-- survey keeps its workflow, records keep the version they were validated against.
SELECT f.name, b.form_version AS form_before, v.version AS form_after,
       b.workflow_version AS workflow_before, w.version AS workflow_after
  FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id
  LEFT JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
  LEFT JOIN versions_before b ON b.name = f.name
 WHERE f.app = 'helpdesk' ORDER BY f.name;
SELECT r.form, v.version, count(*) AS records FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
 WHERE r.app = 'helpdesk' GROUP BY 1, 2 ORDER BY 1, 2;
-- The typed views follow: ticket has its new fields as columns.
SELECT columns FROM ticket_columns;
SELECT (SELECT records FROM before_import) = (SELECT records FROM pg_temp.counts()) AS same_records,
       (SELECT history FROM before_import) = (SELECT history FROM pg_temp.counts()) AS same_history;
-- What is left between the app and the definition is what import never does: delete a form or
-- detach a workflow.
SELECT kind, path, change, detail -> 'breaking' AS breaking FROM lowcode.diff_app('helpdesk', :'wanted') ORDER BY kind, path;
-- And importing it again changes nothing.
SELECT lowcode.import_app(:'wanted');
-- A title is part of the definition: changing it alone is reported (and is not a new version).
SELECT lowcode.import_app(jsonb_set(jsonb_set(:'wanted', '{title}', '"Service desk"'), '{forms,3,title}', '"Incident"'));
SELECT name, title FROM lowcode.apps WHERE name = 'helpdesk';
SELECT name, title FROM lowcode.forms WHERE app = 'helpdesk' ORDER BY name;
