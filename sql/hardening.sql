-- Every lowcode function that a user or a write calls runs with a fixed search_path, so a
-- function or operator that looks like a built-in (say evil.jsonb_build_object, or an
-- evil.|| for jsonb) in a schema ahead on the caller's search_path is never called by lowcode.
-- lowcode's own objects are always schema-qualified in its code. (Workflow `call` actions and
-- migration transforms are the user's own SQL: name functions there with their schema.)
-- The functions that run a migration's transform (plan_migration, apply_migration,
-- transform_expression) keep the caller's search_path on purpose: the transform is the DBA's.

ALTER FUNCTION lowcode.create_app(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.define_form(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.register_schema(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.submit(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.update_record(bigint, jsonb, int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.delete_record(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.record_history(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.add_unique(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.drop_unique(text, text, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.publish(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.define_workflow(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.workflow_diagram(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.transition(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.claim_task(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.complete_task(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.release_task(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.reassign_task(bigint, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.decide(bigint, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.withdraw(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.run_due_timers(int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.emit(text, jsonb, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.poll_events(text, int, interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.ack_events(text, bigint[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.nack_event(text, bigint, text, interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.replay_dead_letters(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.purge_events(interval) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.export_app(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.import_app(jsonb, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.diff_app(text, jsonb) SET search_path = pg_catalog, pg_temp;
-- Triggers: they run on plain DML too (a typed view, COPY, UPDATE lowcode.records).
ALTER FUNCTION lowcode.records_check() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.records_history() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.records_workflow() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.view_write() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.uniques_index() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.events_restored() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION lowcode.form_versions_immutable() SET search_path = pg_catalog, pg_temp;
