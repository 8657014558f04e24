-- Work reports (报工): at the end of each shift, factory workers report how many parts they
-- produced and how many were defective. A report with a high defect rate is flagged and a
-- QA inspector from the "qa" pool reviews it. Managers read a daily summary.
--
-- Shows: a rule that calls your SQL function to compute a field (and to check what JSON
-- Schema cannot: defective <= produced), a rule with a condition on the computed field that
-- creates a pool task, a plain SQL view over the typed view for the daily summary.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/work_report.sql
-- Every step checks its own outcome and stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- 1. The app and the report form. "defect_rate" is computed by the database (step 2); a
--    worker does not type it.
SELECT lowcode.create_app('work', 'Shift work reports');
SELECT lowcode.define_form('work', 'report', '{
  "type": "object",
  "required": ["worker", "line", "day", "shift", "produced", "defective"],
  "properties": {
    "worker":      {"type": "string", "minLength": 1},
    "line":        {"enum": ["L1", "L2", "L3"]},
    "day":         {"type": "string", "format": "date"},
    "shift":       {"enum": ["morning", "afternoon", "night"]},
    "produced":    {"type": "integer", "minimum": 0},
    "defective":   {"type": "integer", "minimum": 0},
    "defect_rate": {"type": "number", "minimum": 0, "maximum": 1},
    "qa_note":     {"type": "string"}
  }}') AS version;
SELECT lowcode.publish('work') AS views;

-- 2. A rule action can call your own function. It gets the record row as jsonb and returns
--    fields to merge into the data. This one computes the defect rate, and refuses a report
--    with more defective parts than produced ones: JSON Schema cannot compare two fields,
--    SQL can. Raising an error rolls back the whole submission.
CREATE FUNCTION work.defect_rate(report jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    produced   int := (report -> 'data' ->> 'produced')::int;
    defective  int := (report -> 'data' ->> 'defective')::int;
BEGIN
    IF defective > produced THEN
        RAISE EXCEPTION 'work: % reported % defective parts but only % produced', report -> 'data' ->> 'worker', defective, produced
            USING ERRCODE = 'check_violation',
                  DETAIL = '[{"path":"/defective","keyword":"maximum","message":"defective cannot exceed produced"}]';
    END IF;
    RETURN jsonb_build_object('defect_rate', CASE WHEN produced = 0 THEN 0 ELSE round(defective::numeric / produced, 4) END);
END $$;

-- 3. The workflow: a report is "reported"; rule "rate" fills in its defect rate; rule "flag"
--    (listed after "rate", so it sees the rate) sends reports above 5% to "flagged" with a
--    review task in the "qa" pool, due in 4 hours. When QA completes the review, the report is
--    "reviewed" (outcome "ok") or goes to "rework" (outcome "rework").
SELECT lowcode.define_workflow('work', 'report', '{
  "states": {
    "reported": {"initial": true},
    "flagged":  {},
    "reviewed": {"final": true},
    "rework":   {"final": true}
  },
  "rules": [
    {"name": "rate", "on": "created", "then": [{"call": "work.defect_rate"}]},
    {"name": "flag", "on": "created",
     "when": {"required": ["defect_rate"], "properties": {"defect_rate": {"exclusiveMinimum": 0.05}}},
     "then": [{"transition": "flagged"},
              {"task": {"name": "qa_review", "pool": "qa", "due": "4 hours"}},
              {"emit": {"topic": "work.high_defect_rate"}}]},
    {"name": "accepted", "on": "task_completed:qa_review", "outcome": "ok",
     "then": [{"set": {"qa_note": "checked by QA: acceptable"}}, {"transition": "reviewed"}]},
    {"name": "send_to_rework", "on": "task_completed:qa_review", "outcome": "rework",
     "then": [{"set": {"qa_note": "checked by QA: parts go to rework"}}, {"transition": "rework"}]}
  ]}') AS workflow_version;

-- 4. Two days of reports. Reports arrive as rows (through the typed view), like any table.
INSERT INTO work.report (worker, line, day, shift, produced, defective) VALUES
    ('zhao', 'L1', '2026-03-02', 'morning',   480,  6),   -- 1.25%
    ('qian', 'L1', '2026-03-02', 'afternoon', 450, 31),   -- 6.9%  → flagged
    ('sun',  'L2', '2026-03-02', 'morning',   300,  3),   -- 1%
    ('li',   'L2', '2026-03-02', 'night',     280, 15),   -- 5.4%  → flagged
    ('zhou', 'L3', '2026-03-02', 'morning',     0,  0),   -- line stopped
    ('zhao', 'L1', '2026-03-03', 'morning',   500,  5),   -- 1%
    ('qian', 'L1', '2026-03-03', 'afternoon', 470, 12),   -- 2.6%
    ('wu',   'L3', '2026-03-03', 'night',     200, 40);   -- 20%   → flagged

SELECT id, worker, line, day, shift, produced, defective, defect_rate, state
  FROM work.report ORDER BY id;
DO $$
BEGIN
    IF (SELECT array_agg(worker || '@' || day ORDER BY day, worker) FROM work.report WHERE state = 'flagged')
       IS DISTINCT FROM ARRAY['li@2026-03-02', 'qian@2026-03-02', 'wu@2026-03-03'] THEN
        RAISE EXCEPTION 'exactly the reports above 5%% should be flagged, got %',
            (SELECT array_agg(worker || '@' || day ORDER BY day, worker) FROM work.report WHERE state = 'flagged');
    END IF;
    IF EXISTS (SELECT FROM work.report WHERE defect_rate IS NULL) THEN
        RAISE EXCEPTION 'every report should have its defect rate computed';
    END IF;
    IF (SELECT count(*) FROM lowcode.tasks WHERE name = 'qa_review' AND pool = 'qa' AND status = 'open') <> 3 THEN
        RAISE EXCEPTION 'each flagged report should have an open QA review task';
    END IF;
END $$;

-- Wrong reports are refused: more defective than produced (by the function), a negative
-- count and an unknown shift (by the schema).
DO $$
BEGIN
    INSERT INTO work.report (worker, line, day, shift, produced, defective)
    VALUES ('zheng', 'L2', '2026-03-03', 'morning', 10, 11);
    RAISE EXCEPTION 'a report with more defective than produced parts should be refused';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
DO $$
DECLARE detail text;
BEGIN
    PERFORM lowcode.submit('work', 'report', '{"worker": "zheng", "line": "L2", "day": "2026-03-03",
                                               "shift": "evening", "produced": -5, "defective": 0}');
    RAISE EXCEPTION 'a negative count and an unknown shift should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT FROM work.report WHERE worker = 'zheng') THEN
        RAISE EXCEPTION 'refused reports must leave nothing behind';
    END IF;
END $$;

-- 5. QA inspectors take flagged reports from their pool, oldest first, and decide.
SELECT lowcode.claim_task('qa', 'qa_ma') AS review_1 \gset
SELECT lowcode.claim_task('qa', 'qa_he') AS review_2 \gset
SELECT lowcode.claim_task('qa', 'qa_ma') AS review_3 \gset
SELECT t.id AS task, t.claimed_by, r.worker, r.day, r.defect_rate
  FROM lowcode.tasks t JOIN work.report r ON r.id = t.record_id
 WHERE t.name = 'qa_review' ORDER BY t.id;
SET lowcode.actor = 'qa_ma';
SELECT lowcode.complete_task(:review_1, 'ok', '{"cause": "new operator, retrained"}');
SELECT lowcode.complete_task(:review_3, 'rework', '{"cause": "worn die on press 3"}');
SET lowcode.actor = 'qa_he';
SELECT lowcode.complete_task(:review_2, 'ok');
RESET lowcode.actor;
SELECT worker, day, defect_rate, state, qa_note FROM work.report WHERE state <> 'reported' ORDER BY day, worker;
DO $$
BEGIN
    IF EXISTS (SELECT FROM work.report WHERE state = 'flagged') THEN
        RAISE EXCEPTION 'every flagged report should be reviewed by now';
    END IF;
    IF (SELECT state FROM work.report WHERE worker = 'wu') <> 'rework' THEN
        RAISE EXCEPTION 'wu''s report (reviewed with outcome rework) should be in state rework';
    END IF;
END $$;

-- 6. The daily summary: a plain SQL view over the typed view, one row per day and line.
CREATE VIEW work.daily_summary AS
SELECT day, line,
       count(*)                                    AS reports,
       sum(produced)                               AS produced,
       sum(defective)                              AS defective,
       round(100.0 * sum(defective) / nullif(sum(produced), 0), 2) AS defect_pct,
       count(*) FILTER (WHERE state <> 'reported') AS flagged,
       string_agg(worker, ', ' ORDER BY worker)    AS workers
  FROM work.report
 GROUP BY day, line;

SELECT * FROM work.daily_summary ORDER BY day, line;
DO $$
DECLARE s record;
BEGIN
    SELECT * INTO s FROM work.daily_summary WHERE day = '2026-03-02' AND line = 'L1';
    IF (s.reports, s.produced, s.defective, s.defect_pct, s.flagged) IS DISTINCT FROM (2::bigint, 930::numeric, 37::numeric, 3.98, 1::bigint) THEN
        RAISE EXCEPTION 'wrong summary for 2026-03-02 L1: %', s;
    END IF;
    IF (SELECT defect_pct FROM work.daily_summary WHERE day = '2026-03-02' AND line = 'L3') IS NOT NULL THEN
        RAISE EXCEPTION 'a line that produced nothing has no defect rate';
    END IF;
    IF (SELECT sum(produced) FROM work.daily_summary) <> 2680 THEN
        RAISE EXCEPTION 'the summary should add up to 2680 parts produced';
    END IF;
END $$;

-- Note: lowcode.publish drops and re-creates work.report when the form changes, and
-- PostgreSQL will not drop a view other views depend on: drop work.daily_summary before
-- re-publishing, and create it again after.
