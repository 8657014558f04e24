-- baseline for lowcode.submit without a workflow: one statement writing what submit writes, the
-- record and its history row ('created'), into bench.records_raw and bench.history_raw (plain
-- mirrors of lowcode.records and lowcode.history: same columns, defaults, indexes and keys;
-- bench/setup.sql). The form's current version is read from the forms mirror, as submit does.
WITH rec AS (
    INSERT INTO bench.records_raw (app, form, form_version_id, data)
    SELECT f.app, f.name, f.current_version_id,
           '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}'
      FROM bench.forms_raw f WHERE f.app = 'insp' AND f.name = 'fault'
    RETURNING id, app, form, state, revision, data
)
INSERT INTO bench.history_raw (record_id, app, form, action, revision, actor, from_state, to_state, before, after, detail)
SELECT rec.id, rec.app, rec.form, 'created', rec.revision, current_user, NULL, rec.state, NULL, rec.data, '{}'
  FROM rec;
