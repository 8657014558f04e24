-- What each function written in Rust is for (pgrx writes their CREATE FUNCTION; the SQL and
-- PL/pgSQL functions carry their comments next to their definitions).
COMMENT ON FUNCTION lowcode.check_name(text, text) IS 'Internal: raises invalid_name unless name is a valid app or form name (lowercase letters, digits and _, up to 63 characters).';
COMMENT ON FUNCTION lowcode.compile_schema(text, jsonb) IS 'Internal: checks a JSON Schema against its draft''s meta-schema and bundles the registered schemas it references; returns {"bundled", "draft"}.';
COMMENT ON FUNCTION lowcode.view_columns(text, jsonb) IS 'Internal: the typed-view columns (name, SQL type, JSON type) of a form version''s top-level properties.';
COMMENT ON FUNCTION lowcode.forms_changed() IS 'Internal: tells every backend that form definitions changed, so validators are looked up again from their next statement.';
COMMENT ON FUNCTION lowcode.validate(text, text, jsonb) IS 'Every problem of data against the form''s current version: path (the instance location), keyword, message, and field (the JSON pointer of the field the message belongs to, e.g. the missing one for required); no rows when it is valid. Raises nothing for invalid data.';
COMMENT ON FUNCTION lowcode.check_registered_schema(text, jsonb) IS 'Internal: checks a schema to register as a form will reach it (its URI is its base URI; its $refs resolve among the registered schemas); raises about schema "<uri>" otherwise.';
COMMENT ON FUNCTION lowcode.is_valid(text, text, jsonb) IS 'Whether data is valid against the form''s current version.';
COMMENT ON FUNCTION lowcode.conforms(text, text, jsonb) IS 'Whether data is valid against the form''s current version, for CHECK constraints on your own tables (NULL data gives NULL, which CHECK accepts).';
COMMENT ON FUNCTION lowcode.conforms_to_version(bigint, jsonb) IS 'Whether data is valid against one published form version (lowcode.form_versions.id).';
COMMENT ON FUNCTION lowcode.check_record(text, text, jsonb) IS 'Internal: validates a record''s data against the form''s current version and returns that version''s id; raises check_violation (23514) with every issue as JSON in DETAIL.';
COMMENT ON FUNCTION lowcode.cache_stats() IS 'This backend''s compiled-validator cache: size, capacity, hits and misses.';
COMMENT ON FUNCTION lowcode.cache_clear() IS 'Empties this backend''s compiled-validator cache.';
COMMENT ON FUNCTION lowcode.check_workflow(text, jsonb) IS 'Internal: checks a workflow definition (format and meaning) and returns its initial state, final states and Mermaid diagram.';
COMMENT ON FUNCTION lowcode.matches(jsonb, jsonb) IS 'Internal: whether data matches a workflow condition (a JSON Schema).';
COMMENT ON FUNCTION lowcode.condition_issues(jsonb, jsonb) IS 'Internal: why data does not match a workflow condition, as JSON.';
COMMENT ON FUNCTION lowcode.diff_definitions(jsonb, jsonb) IS 'Internal: the changes between two app definitions (export_app format), each marked breaking or not.';
COMMENT ON FUNCTION lowcode.invoker() IS 'The role lowcode authorizes: the session''s role after SET ROLE, which stays the caller''s inside lowcode''s SECURITY DEFINER functions.';
COMMENT ON FUNCTION lowcode.call_as(text, text, jsonb) IS 'Internal: runs a workflow call (a query returning jsonb, $1 = the record) as the role that published the workflow version, never as a superuser unless lowcode runs as one.';
COMMENT ON FUNCTION lowcode.cause() IS 'Internal: the cause of the change being written (a transition, rule action, approval verdict or migration), held by the library for the transaction; NULL when none.';
COMMENT ON FUNCTION lowcode.with_cause(jsonb) IS 'Internal: sets the cause the next history rows record (NULL or JSON null: none) and returns the previous one (JSON null: none), to restore after. Undone with the subtransaction that set it.';
COMMENT ON FUNCTION lowcode.rule_chain() IS 'Internal: the workflow rules running now, outermost first, joined by '' → '' ('''' when none).';
COMMENT ON FUNCTION lowcode.set_rule_chain(text) IS 'Internal: sets the chain of running rules (cascade limit: lowcode.max_cascade) and returns the previous one.';
COMMENT ON FUNCTION lowcode.records_before() IS 'Trigger: validates every insert and data change of lowcode.records against the form''s current version, keeps revision and the created/updated columns honest, and starts a record of a form with a workflow in its initial state.';
COMMENT ON FUNCTION lowcode.records_after() IS 'Trigger: writes the one history row of every insert, update and delete of lowcode.records, then runs the workflow for the write''s events (created, updated, left:<state>, entered:<state>), cancelling timers of a state the record leaves.';
COMMENT ON FUNCTION lowcode.log(bigint, text, jsonb) IS 'Internal: adds a history row for a task action, approval decision, timer firing or rule action.';
COMMENT ON FUNCTION lowcode.fire(bigint, text, jsonb) IS 'Internal: runs the rules of the record''s workflow that listen to event (and whose when / outcome match), in definition order. Cascades are bounded by lowcode.max_cascade (default 32).';
COMMENT ON FUNCTION lowcode.emit(text, jsonb, bigint) IS 'Internal: writes an outbox event (rules do, through the emit action), with the app of its record.';
