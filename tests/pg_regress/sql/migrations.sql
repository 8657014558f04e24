-- Record migrations: plan_migration (a dry run over the existing records) and apply_migration
-- (new version + rewrite in batches; all-or-nothing or skip; state mapping; typed views).
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
-- A fingerprint of everything a migration could touch.
CREATE FUNCTION pg_temp.snapshot(a text, f text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'versions', (SELECT count(*) FROM lowcode.form_versions v WHERE v.app = a AND v.form = f),
        'current', (SELECT v.version FROM lowcode.forms x JOIN lowcode.form_versions v ON v.id = x.current_version_id
                     WHERE x.app = a AND x.name = f),
        'workflows', (SELECT count(*) FROM lowcode.workflow_versions w WHERE w.app = a AND w.form = f),
        'records', (SELECT count(*) FROM lowcode.records r WHERE r.app = a AND r.form = f),
        'data', (SELECT md5(string_agg(r.id || ':' || r.form_version_id || ':' || r.state || ':' || r.revision || ':' || r.data::text, ',' ORDER BY r.id))
                   FROM lowcode.records r WHERE r.app = a AND r.form = f),
        'history', (SELECT count(*) FROM lowcode.history h WHERE h.app = a AND h.form = f))
$$;

-- ---------------------------------------------------------------- plan_migration

SELECT lowcode.create_app('shop');
SELECT lowcode.define_form('shop', 'item', '{
  "type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}, "unit": {"type": "string"}}}');
SELECT lowcode.define_workflow('shop', 'item', '{
  "states": {"draft": {"initial": true}, "listed": {}, "sold_out": {"final": true}},
  "transitions": [{"name": "list", "from": "draft", "to": "listed"}, {"name": "sell_out", "from": "listed", "to": "sold_out"}]}');
-- 20 items: 1-12 have a quantity, 13-20 do not; 3 and 7 already have a unit.
SELECT count(*) FROM (
    SELECT lowcode.submit('shop', 'item', CASE WHEN i <= 12 THEN jsonb_build_object('name', 'item ' || i, 'qty', i)
                                               ELSE jsonb_build_object('name', 'item ' || i) END
                                          || CASE WHEN i IN (3, 7) THEN '{"unit": "kg"}'::jsonb ELSE '{}' END)
      FROM generate_series(1, 20) i) s;
SELECT lowcode.transition(id, 'list') FROM lowcode.records WHERE id IN (1, 2, 3, 4, 5, 13) ORDER BY id;
SELECT lowcode.transition(id, 'sell_out') FROM lowcode.records WHERE id IN (1, 2) ORDER BY id;
SELECT pg_temp.snapshot('shop', 'item') AS before_plans \gset

-- The new version: a unit is required, and quantities are at least 2.
SELECT '{"type": "object", "required": ["name", "unit"],
         "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 2}, "unit": {"type": "string"}}}' AS v2 \gset
-- As is: only items 3 and 7 have a unit (and their quantities are >= 2).
SELECT lowcode.plan_migration('shop', 'item', :'v2') - 'failures' AS plan, jsonb_array_length(lowcode.plan_migration('shop', 'item', :'v2') -> 'failures') AS sampled;
-- With a transform (an expression over data) that adds the missing unit: item 1 (qty 1) still fails.
SELECT jsonb_pretty(lowcode.plan_migration('shop', 'item', :'v2', $$jsonb_build_object('unit', 'pc') || data$$));
-- The same transform as a function jsonb -> jsonb, by name (qualified or found on the search_path).
CREATE FUNCTION public.add_unit(d jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT jsonb_build_object('unit', 'pc') || d $$;
SELECT lowcode.plan_migration('shop', 'item', :'v2', 'add_unit') = lowcode.plan_migration('shop', 'item', :'v2', $$jsonb_build_object('unit', 'pc') || data$$) AS by_name,
       lowcode.plan_migration('shop', 'item', :'v2', 'public.add_unit') = lowcode.plan_migration('shop', 'item', :'v2', 'add_unit') AS qualified;
-- Failures are a sample: at most 10 records, the lowest ids, each with every error.
SELECT p - 'failures' AS plan, jsonb_array_length(p -> 'failures') AS sampled,
       (SELECT string_agg(x ->> 'record', ',') FROM jsonb_array_elements(p -> 'failures') x) AS sampled_records
  FROM lowcode.plan_migration('shop', 'item', '{"type": "object", "required": ["name", "unit", "qty"], "properties": {"qty": {"minimum": 5}}}') p;
SELECT jsonb_pretty(lowcode.plan_migration('shop', 'item', '{"type": "object", "required": ["name", "unit", "qty"], "properties": {"qty": {"minimum": 5}}}') -> 'failures' -> 0) AS first_failure;
-- A transform that gives NULL for some records counts them as failures.
SELECT p - 'states' - 'failures' AS plan, jsonb_array_length(p -> 'failures') AS sampled, p -> 'failures' -> 0 AS first_failure
  FROM lowcode.plan_migration('shop', 'item', '{"type": "object"}', $$CASE WHEN data ? 'qty' THEN data END$$) p;
-- A transform sees the record's other columns too (state, id, also as records.id).
SELECT lowcode.plan_migration('shop', 'item', '{"type": "object", "required": ["was"], "properties": {"was": {"enum": ["draft", "listed", "sold_out"]}}}',
                              $$data || jsonb_build_object('was', state, 'legacy_id', records.id)$$) - 'failures' - 'states' AS plan;
-- Bad transforms are refused before anything runs, with the reason.
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', 'data ||| 1') $$);
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', 'data || ') $$);
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', 'no_such_function') $$);
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', 'no_such_function(data)') $$);
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', $t$data ->> 'name'$t$) $$);
CREATE FUNCTION public.to_text(d jsonb) RETURNS text LANGUAGE sql AS $$ SELECT d::text $$;
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', 'to_text') $$);
-- A transform that fails at run time fails the plan with its own error.
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{}', $t$data || jsonb_build_object('x', 1 / ((data ->> 'qty')::int - 4))$t$) $$);
-- Bad schemas and unknown forms.
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'item', '{"type": "objekt"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.plan_migration('shop', 'nothing', '{}') $$);
-- Planning changed nothing.
SELECT pg_temp.snapshot('shop', 'item') = :'before_plans' AS plans_changed_nothing;

-- ---------------------------------------------------------------- state mapping

-- The new workflow renames draft to new and has no sold_out (sold out items are archived).
SELECT '{"states": {"new": {"initial": true}, "listed": {}, "archived": {"final": true}},
         "transitions": [{"name": "list", "from": "new", "to": "listed"}, {"name": "archive", "from": "listed", "to": "archived"}]}' AS wf2 \gset
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('shop', 'item', %L, 'add_unit', %L) $$,
                          :'v2', jsonb_build_object('workflow', :'wf2'::jsonb)));
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('shop', 'item', %L, 'add_unit', %L) $$,
                          :'v2', jsonb_build_object('workflow', :'wf2'::jsonb, 'state_map', '{"draft": "new"}'::jsonb)));
-- Mapping to a state the workflow lacks does not help either.
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('shop', 'item', %L, 'add_unit', %L) $$,
                          :'v2', jsonb_build_object('workflow', :'wf2'::jsonb, 'state_map', '{"draft": "new", "sold_out": "gone"}'::jsonb)));
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('shop', 'item', %L, 'add_unit', %L) $$,
                          :'v2', jsonb_build_object('workflow', '{"states": {}}'::jsonb)));
SELECT pg_temp.snapshot('shop', 'item') = :'before_plans' AS refusals_changed_nothing;
-- Item 1 (qty 1) does not fit v2 whatever the unit: the transform fixes it too.
\set VERBOSITY terse
SELECT lowcode.apply_migration('shop', 'item', :'v2',
         $$jsonb_build_object('unit', 'pc') || data || CASE WHEN (data ->> 'qty')::int < 2 THEN '{"qty": 2}'::jsonb ELSE '{}' END$$,
         jsonb_build_object('workflow', :'wf2'::jsonb, 'state_map', '{"draft": "new", "sold_out": "archived"}'::jsonb,
                            'batch_size', 8));
\set VERBOSITY default
SELECT state, count(*) FROM lowcode.records WHERE form = 'item' GROUP BY state ORDER BY state;
SELECT v.version, count(*) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
 WHERE r.form = 'item' GROUP BY 1 ORDER BY 1;
SELECT (SELECT w.version FROM lowcode.forms f JOIN lowcode.workflow_versions w ON w.id = f.workflow_version_id
         WHERE f.app = 'shop' AND f.name = 'item') AS workflow_version;
-- Every migrated record has a 'migrated' history entry: state and data before and after
-- (data only where the transform changed it), and the migration in detail.
SELECT record_id, action, revision, from_state, to_state, before, after, detail
  FROM lowcode.history WHERE action = 'migrated' AND record_id IN (1, 3, 5, 14) ORDER BY record_id;
SELECT count(*) AS migrated_entries FROM lowcode.history WHERE action = 'migrated' AND form = 'item';
-- The migrated records follow the new workflow.
SELECT pg_temp.err($$ SELECT lowcode.transition(1, 'list') $$);
SELECT lowcode.transition(14, 'list'), lowcode.transition(3, 'archive');
-- A workflow attached to a form without one: its records are in "submitted", which must be mapped too.
SELECT lowcode.define_form('shop', 'supplier', '{"type": "object", "properties": {"name": {"type": "string"}}}');
SELECT lowcode.submit('shop', 'supplier', '{"name": "ACME"}');
SELECT pg_temp.err($$ SELECT lowcode.apply_migration('shop', 'supplier', '{"type": "object", "properties": {"name": {"type": "string"}}}', NULL,
                           '{"workflow": {"states": {"active": {"initial": true}, "blocked": {"final": true}}, "transitions": [{"name": "block", "from": "active", "to": "blocked"}]}}') $$);
\set VERBOSITY terse
SELECT lowcode.apply_migration('shop', 'supplier', '{"type": "object", "properties": {"name": {"type": "string"}}}', NULL,
                               '{"workflow": {"states": {"active": {"initial": true}, "blocked": {"final": true}}, "transitions": [{"name": "block", "from": "active", "to": "blocked"}]}, "state_map": {"submitted": "active"}}');
\set VERBOSITY default
SELECT id, state, revision FROM lowcode.records WHERE form = 'supplier';

-- ---------------------------------------------------------------- skip mode

SELECT lowcode.define_form('shop', 'order', '{"type": "object", "properties": {"total": {"type": "number"}, "currency": {"type": "string"}}}');
SELECT count(lowcode.submit('shop', 'order', o)) FROM jsonb_array_elements('[
  {"total": 10, "currency": "EUR"}, {"total": 20}, {"total": -5, "currency": "EUR"}, {"total": 30, "currency": "usd"},
  {"total": 40, "currency": "EUR"}, {"currency": "EUR"}]') o;
SELECT pg_temp.snapshot('shop', 'order') AS before_skip \gset
SELECT '{"type": "object", "required": ["total", "currency"],
         "properties": {"total": {"type": "number", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]}}}' AS order_v2 \gset
-- By default one bad record aborts everything.
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('shop', 'order', %L, %L) $$, :'order_v2',
                          $t$jsonb_build_object('currency', 'EUR') || data$t$));
SELECT pg_temp.snapshot('shop', 'order') = :'before_skip' AS abort_changed_nothing;
-- With on_error skip, the records that fit are migrated and the others stay on their old
-- version, listed with their errors.
\set VERBOSITY terse
SELECT jsonb_pretty(lowcode.apply_migration('shop', 'order', :'order_v2', $t$jsonb_build_object('currency', 'EUR') || data$t$,
                                            '{"on_error": "skip", "batch_size": 4}'));
\set VERBOSITY default
SELECT r.id, v.version, r.revision, r.data FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
 WHERE r.form = 'order' ORDER BY r.id;
SELECT record_id, action FROM lowcode.history WHERE form = 'order' AND action = 'migrated' ORDER BY record_id;
-- Fix the data of two of them (an update validates against the current version, which moves
-- them to it), then run the same migration again: only the one left is retried.
SELECT lowcode.update_record(24, '{"total": 0, "currency": "EUR"}');
SELECT lowcode.update_record(25, '{"total": 30, "currency": "USD"}');
\set VERBOSITY terse
SELECT lowcode.apply_migration('shop', 'order', :'order_v2', $t$jsonb_build_object('currency', 'EUR') || data$t$, '{"on_error": "skip"}');
\set VERBOSITY default
SELECT pg_temp.err($$ SELECT lowcode.apply_migration('shop', 'order', '{}', NULL, '{"on_error": "ignore"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.apply_migration('shop', 'order', '{}', NULL, '{"batch_size": 0}') $$);
SELECT pg_temp.err($$ SELECT lowcode.apply_migration('shop', 'order', '{}', NULL, '{"batchsize": 10, "on_eror": "skip"}') $$);
SELECT pg_temp.err($$ SELECT lowcode.apply_migration('shop', 'order', '{}', NULL, '"skip"') $$);
SELECT pg_temp.snapshot('shop', 'order') -> 'versions' AS order_versions;

-- ---------------------------------------------------------------- the progress NOTICE

-- One NOTICE per batch: "<app>.<form> migration to version N: done/total records". Its
-- DETAIL has the rate and the time left ("1234 records/s, about 5 s left"), which vary from
-- run to run, so this file shows messages without DETAIL (VERBOSITY terse).
SELECT lowcode.define_form('shop', 'tag', '{"type": "object", "properties": {"label": {"type": "string"}}}');
SELECT count(lowcode.submit('shop', 'tag', jsonb_build_object('label', l))) FROM unnest(ARRAY['red', 'green', 'blue']) l;
\set VERBOSITY terse
SELECT lowcode.apply_migration('shop', 'tag', '{"type": "object", "required": ["label"], "properties": {"label": {"type": "string"}}}',
                               NULL, '{"batch_size": 1}');
\set VERBOSITY default

-- ---------------------------------------------------------------- 100,000 records

SELECT lowcode.create_app('plant');
SELECT lowcode.define_form('plant', 'reading', '{
  "type": "object", "required": ["sensor", "value"],
  "properties": {"sensor": {"type": "string"}, "value": {"type": "number"}}}');
INSERT INTO lowcode.records (app, form, data, form_version_id)
SELECT 'plant', 'reading', jsonb_build_object('sensor', 's' || (i % 50), 'value', i / 8.0), 0
  FROM generate_series(1, 100000) i;
SELECT lowcode.publish('plant');
SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS view_columns
  FROM information_schema.columns WHERE table_schema = 'plant' AND table_name = 'reading';
-- v2: every reading carries its unit, and values in kelvin.
SELECT '{"type": "object", "required": ["sensor", "value", "unit"],
         "properties": {"sensor": {"type": "string"}, "value": {"type": "number", "minimum": 0},
                        "unit": {"enum": ["K"]}, "celsius": {"type": "number"}}}' AS reading_v2 \gset
SELECT $$data || jsonb_build_object('unit', 'K', 'celsius', data -> 'value', 'value', (data ->> 'value')::numeric + 273.15)$$ AS to_kelvin \gset
SELECT lowcode.plan_migration('plant', 'reading', :'reading_v2', :'to_kelvin');
-- One progress NOTICE per batch (rates and time left are in each NOTICE's DETAIL).
\set VERBOSITY terse
SELECT lowcode.apply_migration('plant', 'reading', :'reading_v2', :'to_kelvin', '{"batch_size": 25000}');
\set VERBOSITY default
SELECT v.version, count(*) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
 WHERE r.form = 'reading' GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE data ->> 'unit' = 'K' AND (data ->> 'value')::numeric = (data ->> 'celsius')::numeric + 273.15) AS converted,
       count(*) FILTER (WHERE revision = 2) AS at_revision_2
  FROM lowcode.records WHERE form = 'reading';
SELECT count(*) AS migrated_entries, count(DISTINCT record_id) AS records, min(detail::text) AS detail
  FROM lowcode.history WHERE form = 'reading' AND action = 'migrated';
SELECT data, state, revision FROM lowcode.records WHERE form = 'reading' ORDER BY id LIMIT 2;
-- The typed view was re-published: it has the new columns.
SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS view_columns
  FROM information_schema.columns WHERE table_schema = 'plant' AND table_name = 'reading';
SELECT id, sensor, value, unit, celsius FROM plant.reading ORDER BY id LIMIT 2;
-- Running it again finds nothing left to do.
SET client_min_messages = warning;
SELECT lowcode.apply_migration('plant', 'reading', :'reading_v2', :'to_kelvin', '{"batch_size": 25000}');
RESET client_min_messages;

-- All or nothing: one bad record among 100,000, in the last batch, after three batches were
-- rewritten. The error names it and DETAIL has its issues; afterwards nothing changed.
SELECT lowcode.update_record(99999, (SELECT data FROM lowcode.records WHERE id = 99999) || '{"value": 50000}');
SELECT pg_temp.snapshot('plant', 'reading') AS before_abort \gset
-- v3 drops celsius (and would drop its view column) and bounds the value.
SELECT '{"type": "object", "required": ["sensor", "value", "unit"], "additionalProperties": false,
         "properties": {"sensor": {"type": "string"}, "value": {"type": "number", "minimum": 0, "maximum": 20000},
                        "unit": {"enum": ["K"]}}}' AS reading_v3 \gset
\set VERBOSITY terse
SELECT pg_temp.err(format($$ SELECT lowcode.apply_migration('plant', 'reading', %L, %L, '{"batch_size": 25000}') $$,
                          :'reading_v3', $t$data - 'celsius'$t$));
\set VERBOSITY default
SELECT pg_temp.snapshot('plant', 'reading') = :'before_abort' AS nothing_changed,
       pg_temp.snapshot('plant', 'reading') -> 'versions' AS versions,
       (SELECT count(*) FROM lowcode.history WHERE form = 'reading' AND action = 'migrated') AS migrated_entries;
SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS view_columns
  FROM information_schema.columns WHERE table_schema = 'plant' AND table_name = 'reading';
