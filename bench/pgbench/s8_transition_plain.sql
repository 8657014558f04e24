-- scenario 8, the baseline of s8_transition.sql: the same record moved the same way by one
-- hand-written statement writing the same rows into plain tables (bench/s8_actions.sql: the
-- same columns, defaults and indexes as lowcode's; no foreign keys, CHECKs or triggers): the
-- record's state, revision, updated_at and updated_by, and its 'transition' history row with
-- the state it left and the state it entered.
\set n :n + 1
\set rec :move_first + :client_id * :per + (:n - 1) % :per
\if ((:n - 1) / :per) % 2 = 0
WITH r AS (
    UPDATE bench.s8_records_plain x
       SET state = 'working', revision = x.revision + 1, updated_at = now(), updated_by = current_user
     WHERE x.id = :rec AND x.state = 'open'
    RETURNING x.id, x.app, x.form, x.revision
)
INSERT INTO bench.s8_history_plain (record_id, app, form, action, revision, actor, from_state, to_state, detail)
SELECT r.id, r.app, r.form, 'transition', r.revision, current_user, 'open', 'working', '{"transition": "start"}'
  FROM r;
\else
WITH r AS (
    UPDATE bench.s8_records_plain x
       SET state = 'open', revision = x.revision + 1, updated_at = now(), updated_by = current_user
     WHERE x.id = :rec AND x.state = 'working'
    RETURNING x.id, x.app, x.form, x.revision
)
INSERT INTO bench.s8_history_plain (record_id, app, form, action, revision, actor, from_state, to_state, detail)
SELECT r.id, r.app, r.form, 'transition', r.revision, current_user, 'working', 'open', '{"transition": "pause"}'
  FROM r;
\endif
