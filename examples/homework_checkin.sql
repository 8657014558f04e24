-- Homework check-in (打卡): every student checks in once a day with how many times they
-- skipped rope; each class gets a daily reminder listing who has not checked in yet.
--
-- Shows: a one-per-student-per-day rule as a real unique constraint, an integer field with a
-- minimum, a timer that fires a rule every day (and re-arms itself), a rule that calls your
-- own SQL function, outbox events and NOTIFY.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/homework_checkin.sql
-- Every step checks its own outcome and stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- "Today" and "tomorrow", fixed once so the whole script agrees on them even if it runs
-- across midnight. (The checks in DO blocks can't see psql variables: they read a setting.)
SELECT current_date AS today, current_date + 1 AS tomorrow \gset
SET example.today = :'today';

-- 1. The app and its two forms. A class lists its students and when to send the daily
--    reminder; a check-in is one student's jump-rope count for one day.
SELECT lowcode.create_app('school', 'Homework check-in');

SELECT lowcode.define_form('school', 'class', '{
  "type": "object",
  "required": ["name", "students", "remind_at"],
  "properties": {
    "name":          {"type": "string", "minLength": 1},
    "students":      {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": true},
    "remind_at":     {"type": "string", "format": "date-time", "description": "next reminder"},
    "last_reminded": {"type": "string", "format": "date"}
  }}') AS version;

SELECT lowcode.define_form('school', 'checkin', '{
  "type": "object",
  "required": ["student", "day", "jump_rope"],
  "additionalProperties": false,
  "properties": {
    "student":   {"type": "string", "minLength": 1},
    "day":       {"type": "string", "format": "date"},
    "jump_rope": {"type": "integer", "minimum": 1, "maximum": 5000, "description": "skips today"},
    "note":      {"type": "string", "maxLength": 200}
  }}') AS version;

-- Typed views: school.class and school.checkin.
SELECT lowcode.publish('school') AS views;

-- 2. One check-in per student per day, as a real constraint: lowcode.add_unique makes a
--    unique index over the two fields of this form's records. It holds under any
--    concurrency and whatever the entry point (lowcode.submit, the typed view, COPY, a plain
--    UPDATE), and pg_dump / pg_restore carry it.
SELECT lowcode.add_unique('school', 'checkin', ARRAY['student', 'day']) AS unique_index;

-- 3. The daily reminder. A class record arms a timer for its "remind_at"; when the timer
--    fires, rule "remind" calls school.remind_missing(), which
--      * emits an outbox event "school.reminder" per student who has not checked in that day
--        (for the app that sends the push messages) and a NOTIFY on channel school_reminders,
--      * returns {"remind_at": <a day later>, ...}, which is merged into the class record,
--    and then re-arms the timer for the new remind_at. A "call" function takes the record
--    row as jsonb (id, app, form, data, state, ...) and returns jsonb to merge, or void.
CREATE FUNCTION school.remind_missing(class jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    due      timestamptz := (class -> 'data' ->> 'remind_at')::timestamptz;
    for_day  date := due::date;
    student  text;
BEGIN
    FOR student IN
        SELECT s FROM jsonb_array_elements_text(class -> 'data' -> 'students') s
         WHERE NOT EXISTS (SELECT FROM school.checkin c WHERE c.student = s AND c.day = for_day)
         ORDER BY s
    LOOP
        PERFORM lowcode.emit('school.reminder',
                             jsonb_build_object('student', student, 'day', for_day, 'class', class -> 'data' ->> 'name'),
                             (class ->> 'id')::bigint);
        PERFORM pg_notify('school_reminders', format('%s: please check in for %s', student, for_day));
    END LOOP;
    RETURN jsonb_build_object('remind_at', due + interval '1 day', 'last_reminded', for_day);
END $$;

SELECT lowcode.define_workflow('school', 'class', '{
  "states": {"active": {"initial": true}},
  "rules": [
    {"name": "arm", "on": "created",
     "then": [{"timer": {"name": "daily_reminder", "at_field": "remind_at"}}]},
    {"name": "remind", "on": "timer:daily_reminder",
     "then": [{"call": "school.remind_missing"},
              {"timer": {"name": "daily_reminder", "at_field": "remind_at"}}]}
  ]}') AS workflow_version;

-- 4. A class of four, reminded at 18:00 every day.
INSERT INTO school.class (name, students, remind_at)
VALUES ('3B', '["amy", "ben", "cai", "dan"]', (:'today' || ' 18:00')::timestamptz)
RETURNING id AS class_id \gset
SELECT name, event, fire_at, status FROM lowcode.timers WHERE record_id = :class_id;
DO $$
BEGIN
    IF (SELECT count(*) FROM lowcode.timers WHERE name = 'daily_reminder' AND status = 'pending') <> 1 THEN
        RAISE EXCEPTION 'creating the class should arm exactly one reminder timer';
    END IF;
END $$;

-- 5. Check-ins. amy and ben check in today (once through the typed view, once with submit).
INSERT INTO school.checkin (student, day, jump_rope) VALUES ('amy', :'today', 320);
SELECT lowcode.submit('school', 'checkin',
                      jsonb_build_object('student', 'ben', 'day', :'today', 'jump_rope', 150, 'note', 'rainy, did it indoors'))
       AS record_id;

-- A second check-in by amy on the same day is refused by the unique index (SQLSTATE 23505).
DO $$
DECLARE today date := current_setting('example.today');
BEGIN
    PERFORM lowcode.submit('school', 'checkin',
                           jsonb_build_object('student', 'amy', 'day', today, 'jump_rope', 999));
    RAISE EXCEPTION 'a second check-in on the same day should be refused';
EXCEPTION WHEN unique_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- The count must be a whole number of at least 1: 0 and 12.5 are refused (SQLSTATE 23514).
DO $$
DECLARE
    today  date := current_setting('example.today');
    detail text;
BEGIN
    PERFORM lowcode.submit('school', 'checkin', jsonb_build_object('student', 'cai', 'day', today, 'jump_rope', 0));
    RAISE EXCEPTION 'a jump-rope count of 0 should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;
DO $$
DECLARE
    today  date := current_setting('example.today');
    detail text;
BEGIN
    PERFORM lowcode.submit('school', 'checkin', jsonb_build_object('student', 'cai', 'day', today, 'jump_rope', 12.5));
    RAISE EXCEPTION 'a jump-rope count of 12.5 should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;

-- Changing a check-in into a duplicate is refused too: ben cannot move his to amy's name.
DO $$
DECLARE today date := current_setting('example.today');
BEGIN
    UPDATE school.checkin SET student = 'amy' WHERE student = 'ben' AND day = today;
    RAISE EXCEPTION 'an update that makes a duplicate check-in should be refused';
EXCEPTION WHEN unique_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

SELECT student, day, jump_rope, note FROM school.checkin ORDER BY day, student;
DO $$
DECLARE today date := current_setting('example.today');
BEGIN
    IF (SELECT count(*) FROM school.checkin WHERE day = today) <> 2 THEN
        RAISE EXCEPTION 'expected exactly 2 check-ins today (amy, ben)';
    END IF;
END $$;

-- 6. 18:00 comes. Rather than wait, move the timer into the past and run the timer runner
--    (in production: SELECT cron.schedule('lowcode-timers', '* * * * *', 'SELECT lowcode.run_due_timers()')).
LISTEN school_reminders;
UPDATE lowcode.timers SET fire_at = now() - interval '1 second'
 WHERE record_id = :class_id AND status = 'pending';
SELECT lowcode.run_due_timers() AS timers_fired;

-- cai and dan were reminded; the timer is re-armed for tomorrow 18:00.
SELECT payload ->> 'student' AS reminded, payload ->> 'day' AS day
  FROM lowcode.events WHERE topic = 'school.reminder' ORDER BY id;
SELECT name, fire_at, status, error FROM lowcode.timers WHERE record_id = :class_id ORDER BY id;
SELECT name, remind_at, last_reminded FROM school.class;
DO $$
DECLARE
    today    date := current_setting('example.today');
    reminded text[] := ARRAY(SELECT payload ->> 'student' FROM lowcode.events
                              WHERE topic = 'school.reminder' ORDER BY payload ->> 'student');
BEGIN
    IF EXISTS (SELECT FROM lowcode.timers WHERE status = 'failed') THEN
        RAISE EXCEPTION 'the reminder failed: %', (SELECT error FROM lowcode.timers WHERE status = 'failed' LIMIT 1);
    END IF;
    IF reminded IS DISTINCT FROM ARRAY['cai', 'dan'] THEN
        RAISE EXCEPTION 'today''s reminders should go to cai and dan, not %', reminded;
    END IF;
    IF (SELECT array_agg(fire_at::date ORDER BY fire_at) FROM lowcode.timers
         WHERE name = 'daily_reminder' AND status = 'pending') IS DISTINCT FROM ARRAY[today + 1] THEN
        RAISE EXCEPTION 'exactly one reminder should be armed, for tomorrow';
    END IF;
END $$;

-- 7. The next day: cai, who forgot yesterday, checks in early. At 18:00 only amy, ben and
--    dan are reminded (the check for "today" follows the reminder's own date).
INSERT INTO school.checkin (student, day, jump_rope) VALUES ('cai', :'tomorrow', 200);
UPDATE lowcode.timers SET fire_at = now() - interval '1 second'
 WHERE record_id = :class_id AND status = 'pending';
SELECT lowcode.run_due_timers() AS timers_fired;
SELECT payload ->> 'day' AS day, string_agg(payload ->> 'student', ', ' ORDER BY payload ->> 'student') AS reminded
  FROM lowcode.events WHERE topic = 'school.reminder' GROUP BY 1 ORDER BY 1;
DO $$
DECLARE
    today    date := current_setting('example.today');
    reminded text[] := ARRAY(SELECT payload ->> 'student' FROM lowcode.events
                              WHERE topic = 'school.reminder' AND payload ->> 'day' = (today + 1)::text
                              ORDER BY payload ->> 'student');
BEGIN
    IF reminded IS DISTINCT FROM ARRAY['amy', 'ben', 'dan'] THEN
        RAISE EXCEPTION 'tomorrow''s reminders should go to amy, ben and dan, not %', reminded;
    END IF;
    IF (SELECT (remind_at)::date FROM school.class) <> today + 2 THEN
        RAISE EXCEPTION 'the class should next be reminded the day after tomorrow';
    END IF;
END $$;

-- 8. The teacher's view: each day, who checked in and how many skips.
SELECT c.day, count(*) AS checked_in, sum(c.jump_rope) AS total_skips, max(c.jump_rope) AS best,
       string_agg(c.student, ', ' ORDER BY c.student) AS students
  FROM school.checkin c
 GROUP BY c.day
 ORDER BY c.day;

-- The class record's history shows each reminder run.
SELECT action, revision, detail ->> 'rule' AS rule, after ->> 'remind_at' AS next_reminder
  FROM lowcode.record_history(:class_id);
UNLISTEN school_reminders;
