-- Questionnaire: the canteen asks employees about lunch. The form is the questionnaire:
-- each property is a question (its "title" is the question text), with single-choice
-- (enum), multiple-choice (an array of enum items), rating (integer range) and free-text
-- answers; some questions are required, one only when another is answered "no".
--
-- Shows: what JSON Schema can require of answers (ranges, choices, conditional questions),
-- validate() for showing every problem next to its question, and result summaries as plain
-- SQL over the typed view.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/questionnaire.sql
-- Every step checks its own outcome and stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- 1. The questionnaire.
SELECT lowcode.create_app('survey', 'Employee surveys');
SELECT lowcode.define_form('survey', 'lunch', '{
  "title": "Canteen lunch survey",
  "x-order": ["respondent", "satisfaction", "favourite", "visits_per_week", "wanted", "would_recommend", "why_not"],
  "type": "object",
  "required": ["respondent", "satisfaction", "favourite", "would_recommend"],
  "additionalProperties": false,
  "properties": {
    "respondent":      {"title": "Your employee number", "type": "string", "pattern": "^E[0-9]{4}$"},
    "satisfaction":    {"title": "How happy are you with lunch? (1 = not at all, 5 = very)",
                        "type": "integer", "minimum": 1, "maximum": 5},
    "favourite":       {"title": "Your favourite counter", "enum": ["noodles", "rice", "salad", "grill"]},
    "visits_per_week": {"title": "How many days a week do you eat here?", "type": "integer", "minimum": 0, "maximum": 7},
    "wanted":          {"title": "What should we add? (pick any)", "type": "array",
                        "items": {"enum": ["vegan", "spicy", "halal", "dessert"]}, "uniqueItems": true},
    "would_recommend": {"title": "Would you recommend the canteen to a new colleague?", "type": "boolean"},
    "why_not":         {"title": "If not, why not?", "type": "string", "minLength": 3, "maxLength": 300}
  },
  "if":   {"required": ["would_recommend"], "properties": {"would_recommend": {"const": false}}},
  "then": {"required": ["why_not"]}
}') AS version;
SELECT lowcode.publish('survey') AS views;

-- The questions, read back from the form (an app renders the questionnaire from this).
-- Forms are stored as jsonb, which does not keep the order of "properties"; the order of the
-- questions is therefore given by "x-order" (keywords JSON Schema does not know are kept and
-- ignored by validation). "why_not" is required only when "would_recommend" is false.
SELECT q.n AS "#", q.field, v.schema -> 'properties' -> q.field ->> 'title' AS question,
       (v.schema -> 'required') ? q.field AS required,
       coalesce(v.schema -> 'properties' -> q.field -> 'enum',
                v.schema -> 'properties' -> q.field -> 'items' -> 'enum') AS choices
  FROM lowcode.forms f
  JOIN lowcode.form_versions v ON v.id = f.current_version_id
  CROSS JOIN LATERAL jsonb_array_elements_text(v.schema -> 'x-order') WITH ORDINALITY AS q(field, n)
 WHERE f.app = 'survey' AND f.name = 'lunch'
 ORDER BY q.n;
DO $$
BEGIN
    -- Every question is in the order list exactly once.
    IF EXISTS (SELECT FROM lowcode.forms f JOIN lowcode.form_versions v ON v.id = f.current_version_id
                WHERE f.app = 'survey' AND f.name = 'lunch'
                  AND ARRAY(SELECT jsonb_object_keys(v.schema -> 'properties') ORDER BY 1)
                      IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(v.schema -> 'x-order') ORDER BY 1)) THEN
        RAISE EXCEPTION 'x-order must list every question once';
    END IF;
END $$;

-- Each employee answers once: a unique field of this form's records (pg_dump carries it).
SELECT lowcode.add_unique('survey', 'lunch', ARRAY['respondent']) AS unique_index;

-- 2. Answers come in through the typed view (an app would INSERT one row per submission).
INSERT INTO survey.lunch (respondent, satisfaction, favourite, visits_per_week, wanted, would_recommend, why_not) VALUES
    ('E1001', 5, 'noodles', 5, '["spicy"]',           true,  NULL),
    ('E1002', 4, 'noodles', 4, '["vegan", "dessert"]', true,  NULL),
    ('E1003', 2, 'rice',    2, '["vegan"]',           false, 'the queue at noon is too long'),
    ('E1004', 3, 'grill',   3, '[]',                  true,  NULL),
    ('E1005', 5, 'noodles', 5, '["dessert"]',         true,  NULL),
    ('E1006', 1, 'rice',    1, '["halal", "vegan"]',  false, 'no halal options'),
    ('E1007', 4, 'grill',   NULL, NULL,               true,  NULL),
    ('E1008', 4, 'noodles', 5, '["spicy", "dessert"]', true,  NULL);
SELECT count(*) AS answers FROM survey.lunch;

-- 3. Wrong answers are refused. validate() lists every problem with the field it belongs to,
--    without raising, so a form UI can show each one next to its question.
SELECT path, keyword, message
  FROM lowcode.validate('survey', 'lunch', '{
    "respondent": "1009", "satisfaction": 7, "favourite": "pizza",
    "visits_per_week": 2, "wanted": ["vegan", "vegan"], "would_recommend": false}')
 ORDER BY path, keyword;
DO $$
DECLARE problems text[];
BEGIN
    SELECT array_agg(path || ' ' || keyword ORDER BY path, keyword) INTO problems
      FROM lowcode.validate('survey', 'lunch', '{
        "respondent": "1009", "satisfaction": 7, "favourite": "pizza",
        "visits_per_week": 2, "wanted": ["vegan", "vegan"], "would_recommend": false}');
    -- Each of these must be reported: the bad employee number, the rating out of range, the
    -- unknown choice, the repeated choice and the missing "why not" (asked because of "no").
    IF NOT problems @> ARRAY['/respondent pattern', '/satisfaction maximum', '/favourite enum', '/wanted uniqueItems']
       OR NOT EXISTS (SELECT FROM unnest(problems) p WHERE p LIKE '% required') THEN
        RAISE EXCEPTION 'validate() missed a problem; it found: %', problems;
    END IF;
END $$;

-- Submitting such an answer fails with SQLSTATE 23514, the problems as JSON in DETAIL.
DO $$
DECLARE detail text;
BEGIN
    INSERT INTO survey.lunch (respondent, satisfaction, favourite, would_recommend) VALUES ('E1009', 0, 'rice', true);
    RAISE EXCEPTION 'a satisfaction of 0 should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;
-- A required question left out.
DO $$
DECLARE detail text;
BEGIN
    INSERT INTO survey.lunch (respondent, favourite, would_recommend) VALUES ('E1009', 'rice', true);
    RAISE EXCEPTION 'an answer without the satisfaction rating should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;
-- "No" without saying why.
DO $$
BEGIN
    INSERT INTO survey.lunch (respondent, satisfaction, favourite, would_recommend) VALUES ('E1009', 2, 'salad', false);
    RAISE EXCEPTION 'a "no" without a reason should be refused';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
-- Answering twice.
DO $$
BEGIN
    INSERT INTO survey.lunch (respondent, satisfaction, favourite, would_recommend) VALUES ('E1001', 1, 'salad', true);
    RAISE EXCEPTION 'a second answer by the same employee should be refused';
EXCEPTION WHEN unique_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
DO $$
BEGIN
    IF (SELECT count(*) FROM survey.lunch) <> 8 THEN
        RAISE EXCEPTION 'refused answers must not be stored: expected 8 answers, found %', (SELECT count(*) FROM survey.lunch);
    END IF;
END $$;

-- 4. The results. The typed view gives typed columns, so results are ordinary SQL.
-- Overall:
SELECT count(*) AS answers,
       round(avg(satisfaction), 2) AS avg_satisfaction,
       round(100.0 * count(*) FILTER (WHERE would_recommend) / count(*), 1) AS pct_recommend,
       round(avg(visits_per_week), 1) AS avg_days_a_week,
       count(visits_per_week) AS answered_days_a_week
  FROM survey.lunch;

-- Rating distribution, every value from 1 to 5 (also those nobody chose):
SELECT s AS satisfaction, count(l.id) AS answers, repeat('#', count(l.id)::int) AS bar
  FROM generate_series(1, 5) s LEFT JOIN survey.lunch l ON l.satisfaction = s
 GROUP BY s ORDER BY s;

-- Favourite counter, with every choice the form offers (read from the form itself):
SELECT c.choice AS favourite, count(l.id) AS answers, round(avg(l.satisfaction), 2) AS avg_satisfaction
  FROM lowcode.forms f
  JOIN lowcode.form_versions v ON v.id = f.current_version_id
  CROSS JOIN LATERAL jsonb_array_elements_text(v.schema -> 'properties' -> 'favourite' -> 'enum') WITH ORDINALITY AS c(choice, n)
  LEFT JOIN survey.lunch l ON l.favourite = c.choice
 WHERE f.app = 'survey' AND f.name = 'lunch'
 GROUP BY c.choice, c.n ORDER BY c.n;

-- The multiple-choice question: how often each option was picked.
SELECT w AS wanted, count(*) AS picked
  FROM survey.lunch l, jsonb_array_elements_text(l.wanted) w
 GROUP BY w ORDER BY picked DESC, w;

-- What the unhappy ones said.
SELECT respondent, satisfaction, why_not FROM survey.lunch WHERE NOT would_recommend ORDER BY respondent;

DO $$
DECLARE
    avg_sat  numeric := (SELECT round(avg(satisfaction), 2) FROM survey.lunch);
    fav      jsonb := (SELECT jsonb_object_agg(favourite, n) FROM (SELECT favourite, count(*) n FROM survey.lunch GROUP BY favourite) x);
    wanted   jsonb := (SELECT jsonb_object_agg(w, n) FROM (SELECT w, count(*) n FROM survey.lunch, jsonb_array_elements_text(wanted) w GROUP BY w) x);
BEGIN
    IF avg_sat <> 3.50 THEN
        RAISE EXCEPTION 'average satisfaction should be 3.50, not %', avg_sat;
    END IF;
    IF fav <> '{"noodles": 4, "rice": 2, "grill": 2}' THEN
        RAISE EXCEPTION 'favourite counts are wrong: %', fav;
    END IF;
    IF wanted <> '{"vegan": 3, "dessert": 3, "spicy": 2, "halal": 1}' THEN
        RAISE EXCEPTION 'multiple-choice counts are wrong: %', wanted;
    END IF;
    IF (SELECT count(*) FROM survey.lunch WHERE NOT would_recommend AND why_not IS NULL) <> 0 THEN
        RAISE EXCEPTION 'every "no" must come with a reason';
    END IF;
END $$;
