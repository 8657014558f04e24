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


SELECT lowcode.create_app('canteen', 'Canteen');
SELECT lowcode.define_form('canteen', 'voucher', '{
  "type": "object", "required": ["owner", "balance"],
  "properties": {"owner": {"type": "string"}, "balance": {"type": "integer", "minimum": 0}}}');
SELECT lowcode.submit('canteen', 'voucher', '{"owner": "li", "balance": 100}') AS id \gset

-- update_record returns the new revision; a stale expected_revision is a serialization error.
SELECT lowcode.update_record(:id, '{"owner": "li", "balance": 80}');
SELECT lowcode.update_record(:id, '{"owner": "li", "balance": 70}', 2);
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"owner": "li", "balance": 60}', 2) $$, :id));
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"owner": "li", "balance": -5}') $$, :id));
SELECT pg_temp.err($$ SELECT lowcode.update_record(999, '{}') $$);
SELECT pg_temp.err($$ SELECT lowcode.update_record(NULL, '{}') $$);
SELECT data, revision FROM lowcode.records WHERE id = :id;

-- Every write path is validated, even a plain UPDATE or INSERT on lowcode.records.
SELECT pg_temp.err(format($$ UPDATE lowcode.records SET data = data || '{"balance": -1}' WHERE id = %s $$, :id));
SELECT pg_temp.err($$ INSERT INTO lowcode.records (app, form, data, form_version_id) VALUES ('canteen', 'voucher', '{"owner": 1}', 1) $$);
SELECT pg_temp.err(format($$ UPDATE lowcode.records SET form = 'other' WHERE id = %s $$, :id));
-- revision and created_by cannot be forged.
UPDATE lowcode.records SET revision = 100, created_by = 'mallory', state = 'spent' WHERE id = :id;
SELECT revision, created_by, state FROM lowcode.records WHERE id = :id;

-- The actor is the lowcode.actor setting (an app server sets it per request), else current_user.
BEGIN;
SET LOCAL lowcode.actor = 'cashier-7';
SELECT lowcode.update_record(:id, '{"owner": "li", "balance": 55}');
COMMIT;
SELECT lowcode.delete_record(:id);
SELECT pg_temp.err(format($$ SELECT lowcode.delete_record(%s) $$, :id));
SELECT count(*) FROM lowcode.records;

-- History keeps everything, including after the delete.
SELECT action, revision, actor = current_user AS by_me, actor, from_state, to_state, before ->> 'balance' AS before, after ->> 'balance' AS after
  FROM lowcode.record_history(:id);

-- A failing statement leaves nothing behind: neither record nor history.
SELECT count(*) AS history_rows FROM lowcode.history;
SELECT pg_temp.err($$ SELECT lowcode.submit('canteen', 'voucher', '{"owner": "wang"}') $$);
SELECT count(*) AS history_rows FROM lowcode.history;

-- New versions apply to the next write; each record names the version it was validated against.
SELECT lowcode.submit('canteen', 'voucher', '{"owner": "zhao", "balance": 10}') AS v1_id \gset
SELECT lowcode.define_form('canteen', 'voucher', '{
  "type": "object", "required": ["owner", "balance", "card"],
  "properties": {"owner": {"type": "string"}, "balance": {"type": "integer", "minimum": 0}, "card": {"type": "string"}}}');
SELECT pg_temp.err($$ SELECT lowcode.submit('canteen', 'voucher', '{"owner": "qian", "balance": 10}') $$);
SELECT lowcode.submit('canteen', 'voucher', '{"owner": "qian", "balance": 10, "card": "C-1"}') AS v2_id \gset
SELECT r.id = :v1_id AS first, v.version FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id ORDER BY r.id;
-- Updating an old record validates against the current version.
SELECT pg_temp.err(format($$ SELECT lowcode.update_record(%s, '{"owner": "zhao", "balance": 9}') $$, :v1_id));
SELECT lowcode.update_record(:v1_id, '{"owner": "zhao", "balance": 9, "card": "C-0"}');
SELECT v.version FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id WHERE r.id = :v1_id;

-- Unique fields: one check-in per student per day, a real constraint (23505), idempotent.
SELECT lowcode.create_app('school', 'School');
SELECT lowcode.define_form('school', 'checkin', '{"type": "object", "required": ["student", "day"],
  "properties": {"student": {"type": "string"}, "day": {"type": "string", "format": "date"}}}');
SELECT lowcode.add_unique('school', 'checkin', ARRAY['student', 'day']);
SELECT lowcode.add_unique('school', 'checkin', ARRAY['student', 'day']) AS same_again;
SELECT lowcode.submit('school', 'checkin', '{"student": "ann", "day": "2026-11-25"}') IS NOT NULL AS first;
SELECT pg_temp.err($$ SELECT lowcode.submit('school', 'checkin', '{"student": "ann", "day": "2026-11-25"}') $$);
SELECT lowcode.submit('school', 'checkin', '{"student": "ann", "day": "2026-11-26"}') IS NOT NULL AS next_day;
-- An UPDATE that would make a duplicate is refused too.
SELECT pg_temp.err($$ UPDATE lowcode.records SET data = '{"student": "ann", "day": "2026-11-25"}' WHERE data ->> 'day' = '2026-11-26' $$);
SELECT pg_temp.err($$ SELECT lowcode.add_unique('school', 'nope', ARRAY['student']) $$);
SELECT pg_temp.err($$ SELECT lowcode.add_unique('school', 'checkin', ARRAY[]::text[]) $$);
SELECT lowcode.drop_unique('school', 'checkin', ARRAY['student', 'day']) AS dropped;
SELECT lowcode.submit('school', 'checkin', '{"student": "ann", "day": "2026-11-25"}') IS NOT NULL AS allowed_again;
