-- scenario 8, the baseline of s8_update.sql: the same new data written by one hand-written
-- statement into plain tables (bench/s8_actions.sql): the record's data, revision, updated_at
-- and updated_by, and its 'updated' history row with the data before and after (the record
-- joined to itself: the joined row is the one before the update).
\set n :n + 1
\set rec :edit_first + :client_id * :per + (:n - 1) % :per
WITH u AS (
    UPDATE bench.s8_records_plain x
       SET data = '{"site": "plant-7", "severity": 2, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}'::jsonb || jsonb_build_object('downtime_minutes', CAST(:n AS int)),
           revision = x.revision + 1, updated_at = now(), updated_by = current_user
      FROM bench.s8_records_plain o
     WHERE x.id = :rec AND o.id = x.id
    RETURNING x.id, x.app, x.form, x.revision, x.state, o.data AS before, x.data AS after
)
INSERT INTO bench.s8_history_plain (record_id, app, form, action, revision, actor, from_state, to_state, before, after, detail)
SELECT u.id, u.app, u.form, 'updated', u.revision, current_user, u.state, u.state, u.before, u.after, '{}'
  FROM u;
