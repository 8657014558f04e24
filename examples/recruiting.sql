-- Recruiting: candidates go through screening, an interview panel and an offer sign-off.
--
--   screening --invite--> interview --(both interviewers approve: 会签, mode "all")--> offer
--   interview --(an interviewer rejects)--> back to screening (a send-back)
--   offer --(one of two managers decides: 或签, mode "any")--> hired or rejected
--   screening --decline--> rejected
--
-- Shows: approvals in modes "all" and "any", a send-back on rejection, rules on entering a
-- state, each person's inbox, and a candidate's full history.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/recruiting.sql
-- Every step checks its own outcome and stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;

-- 1. The app, the candidate form and its typed view recruiting.candidate.
SELECT lowcode.create_app('recruiting', 'Hiring pipeline');
SELECT lowcode.define_form('recruiting', 'candidate', '{
  "type": "object",
  "required": ["name", "email", "position"],
  "properties": {
    "name":            {"type": "string", "minLength": 1},
    "email":           {"type": "string", "format": "email"},
    "position":        {"enum": ["backend engineer", "data analyst", "designer"]},
    "years":           {"type": "integer", "minimum": 0, "maximum": 60},
    "screening_notes": {"type": "string", "minLength": 10}
  }}') AS version;
SELECT lowcode.publish('recruiting') AS views;

-- 2. The workflow. Approvals are started by rules when a candidate enters a state:
--    "panel" asks ivan AND irene (mode all: both must approve; one rejection sends the
--    candidate back to screening); "signoff" asks maria OR mike (mode any: the first
--    decision counts, approve → hired, reject → rejected).
SELECT lowcode.define_workflow('recruiting', 'candidate', '{
  "states": {
    "screening": {"initial": true},
    "interview": {},
    "offer":     {},
    "hired":     {"final": true},
    "rejected":  {"final": true}
  },
  "transitions": [
    {"name": "invite",  "from": "screening", "to": "interview", "when": {"required": ["screening_notes"]}},
    {"name": "decline", "from": "screening", "to": "rejected"}
  ],
  "rules": [
    {"name": "panel", "on": "entered:interview",
     "then": [{"approval": {"name": "interview_panel", "mode": "all", "approvers": ["ivan", "irene"],
                            "on_approve": "offer", "on_reject": "screening", "due": "3 days"}}]},
    {"name": "sent_back", "on": "rejected:interview_panel",
     "then": [{"emit": {"topic": "candidate.sent_back"}}]},
    {"name": "signoff", "on": "entered:offer",
     "then": [{"approval": {"name": "offer_signoff", "mode": "any", "approvers": ["maria", "mike"],
                            "on_approve": "hired", "on_reject": "rejected"}}]},
    {"name": "welcome", "on": "entered:hired",
     "then": [{"emit": {"topic": "candidate.hired"}},
              {"task": {"name": "onboarding", "assignee": "hana", "due": "7 days"}}]}
  ]}') AS workflow_version;

SELECT lowcode.workflow_diagram('recruiting', 'candidate') AS diagram \gset
\echo :diagram

-- Everyone's to-do list: the tasks they hold (approvers hold their decisions from the start).
CREATE VIEW recruiting.inbox AS
SELECT t.claimed_by AS person, t.id AS task, t.name AS step, c.id AS candidate, c.name, c.state
  FROM lowcode.tasks t
  JOIN recruiting.candidate c ON c.id = t.record_id
 WHERE t.status = 'claimed';

-- A small helper for the checks below: returns the candidate's state, and fails unless it
-- is the expected one.
CREATE FUNCTION pg_temp.expect_state(candidate bigint, expected text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE actual text := (SELECT state FROM lowcode.records WHERE id = candidate);
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'candidate % should be in state "%", but is in "%"', candidate, expected, actual;
    END IF;
    RETURN actual;
END $$;

-- =====================================================================================
-- The happy path: anna is invited, the panel approves, maria signs the offer, anna is hired.
-- =====================================================================================
SELECT lowcode.submit('recruiting', 'candidate',
                      '{"name": "Anna Li", "email": "anna@example.com", "position": "backend engineer", "years": 6}')
       AS anna \gset
SELECT pg_temp.expect_state(:anna, 'screening') AS state;

-- Inviting needs screening notes (the transition's condition); without them it is refused.
DO $$
BEGIN
    PERFORM lowcode.transition(id, 'invite') FROM recruiting.candidate WHERE name = 'Anna Li';
    RAISE EXCEPTION 'invite without screening notes should be refused';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
SET lowcode.actor = 'rita';     -- the recruiter
SELECT lowcode.transition(:anna, 'invite', '{"screening_notes": "strong Rust and SQL, 6 years"}') AS state;
RESET lowcode.actor;
SELECT * FROM recruiting.inbox ORDER BY task;
DO $$
BEGIN
    IF (SELECT array_agg(person ORDER BY person) FROM recruiting.inbox WHERE step = 'interview_panel')
       IS DISTINCT FROM ARRAY['irene', 'ivan'] THEN
        RAISE EXCEPTION 'both interviewers should have a decision to make';
    END IF;
END $$;

-- Only the approver may decide their own task: mike cannot decide for ivan.
SELECT task AS ivan_task FROM recruiting.inbox WHERE person = 'ivan' AND candidate = :anna \gset
SET lowcode.actor = 'mike';
DO $$
BEGIN
    PERFORM lowcode.decide(task, 'approve') FROM recruiting.inbox WHERE person = 'ivan';
    RAISE EXCEPTION 'mike should not be able to decide ivan''s task';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- ivan approves: with mode "all" the approval is still pending (irene has not decided).
SET lowcode.actor = 'ivan';
SELECT lowcode.decide(:ivan_task, 'approve', 'great system design answers') AS verdict;
SELECT pg_temp.expect_state(:anna, 'interview') AS state;

-- irene approves too: the panel is done, anna moves to "offer" and the sign-off starts.
SELECT task AS irene_task FROM recruiting.inbox WHERE person = 'irene' AND candidate = :anna \gset
SET lowcode.actor = 'irene';
SELECT lowcode.decide(:irene_task, 'approve', 'good pairing session') AS verdict;
SELECT pg_temp.expect_state(:anna, 'offer') AS state;
SELECT * FROM recruiting.inbox ORDER BY task;

-- maria approves the offer (mode "any": one decision is enough); mike's task is cancelled.
SELECT task AS maria_task FROM recruiting.inbox WHERE person = 'maria' AND candidate = :anna \gset
SET lowcode.actor = 'maria';
SELECT lowcode.decide(:maria_task, 'approve', 'budget ok') AS verdict;
RESET lowcode.actor;
SELECT pg_temp.expect_state(:anna, 'hired') AS state;
SELECT name, assignee, status, outcome FROM lowcode.tasks WHERE record_id = :anna ORDER BY id;
DO $$
DECLARE anna bigint := (SELECT id FROM recruiting.candidate WHERE name = 'Anna Li');
BEGIN
    IF (SELECT status FROM lowcode.tasks WHERE record_id = anna AND name = 'offer_signoff' AND assignee = 'mike')
       <> 'cancelled' THEN
        RAISE EXCEPTION 'mike''s sign-off should be cancelled once maria decided';
    END IF;
    IF NOT EXISTS (SELECT FROM lowcode.tasks WHERE record_id = anna AND name = 'onboarding'
                                              AND claimed_by = 'hana' AND status = 'claimed') THEN
        RAISE EXCEPTION 'hiring should give hana an onboarding task';
    END IF;
    IF NOT EXISTS (SELECT FROM lowcode.events WHERE topic = 'candidate.hired' AND record_id = anna) THEN
        RAISE EXCEPTION 'hiring should emit candidate.hired';
    END IF;
END $$;

-- =====================================================================================
-- A send-back: bo's first interview goes badly; ivan rejects, bo returns to screening,
-- is invited again after more screening, passes, and then the offer is turned down.
-- =====================================================================================
SELECT lowcode.submit('recruiting', 'candidate',
                      '{"name": "Bo Zhang", "email": "bo@example.com", "position": "data analyst", "years": 2}')
       AS bo \gset
SET lowcode.actor = 'rita';
SELECT lowcode.transition(:bo, 'invite', '{"screening_notes": "good SQL, little statistics"}') AS state;

-- ivan rejects first: with mode "all" one rejection decides, so irene need not decide.
SELECT task AS ivan_task FROM recruiting.inbox WHERE person = 'ivan' AND candidate = :bo \gset
SET lowcode.actor = 'ivan';
SELECT lowcode.decide(:ivan_task, 'reject', 'statistics too weak for this role') AS verdict;
RESET lowcode.actor;
SELECT pg_temp.expect_state(:bo, 'screening') AS state;
DO $$
DECLARE bo bigint := (SELECT id FROM recruiting.candidate WHERE name = 'Bo Zhang');
BEGIN
    IF (SELECT status FROM lowcode.tasks WHERE record_id = bo AND assignee = 'irene') <> 'cancelled' THEN
        RAISE EXCEPTION 'irene''s decision should be cancelled once the panel rejected';
    END IF;
    IF NOT EXISTS (SELECT FROM lowcode.events WHERE topic = 'candidate.sent_back' AND record_id = bo) THEN
        RAISE EXCEPTION 'the send-back should emit candidate.sent_back';
    END IF;
END $$;

-- Back in screening, the recruiter adds notes and invites bo again: a fresh panel starts.
SET lowcode.actor = 'rita';
SELECT lowcode.transition(:bo, 'invite',
                          '{"screening_notes": "took a statistics course since; re-interview"}') AS state;
SELECT task AS ivan_task FROM recruiting.inbox WHERE person = 'ivan' AND candidate = :bo \gset
SELECT task AS irene_task FROM recruiting.inbox WHERE person = 'irene' AND candidate = :bo \gset
SET lowcode.actor = 'ivan';
SELECT lowcode.decide(:ivan_task, 'approve', 'much better') AS verdict;
SET lowcode.actor = 'irene';
SELECT lowcode.decide(:irene_task, 'approve') AS verdict;
SELECT pg_temp.expect_state(:bo, 'offer') AS state;

-- mike turns the offer down: with mode "any" the first decision counts either way.
SELECT task AS mike_task FROM recruiting.inbox WHERE person = 'mike' AND candidate = :bo \gset
SET lowcode.actor = 'mike';
SELECT lowcode.decide(:mike_task, 'reject', 'no headcount left this quarter') AS verdict;
RESET lowcode.actor;
SELECT pg_temp.expect_state(:bo, 'rejected') AS state;

-- A final state ends the process: the recruiter cannot invite bo a third time.
DO $$
BEGIN
    PERFORM lowcode.transition(id, 'invite', '{"screening_notes": "one more try please"}')
       FROM recruiting.candidate WHERE name = 'Bo Zhang';
    RAISE EXCEPTION 'a rejected candidate should not be invited again';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- 3. Bo's history: every step, who took it and why.
SELECT h.action, h.actor, h.from_state, h.to_state,
       coalesce(h.detail ->> 'transition', h.detail ->> 'name', h.detail ->> 'approval') AS step,
       coalesce(h.detail ->> 'decision', h.detail ->> 'verdict') AS decision,
       h.detail ->> 'comment' AS comment
  FROM lowcode.record_history(:bo) h;
DO $$
DECLARE
    bo    bigint := (SELECT id FROM recruiting.candidate WHERE name = 'Bo Zhang');
    path  text[];
BEGIN
    SELECT array_agg(to_state ORDER BY id) INTO path
      FROM lowcode.history WHERE record_id = bo AND from_state IS DISTINCT FROM to_state;
    IF path IS DISTINCT FROM ARRAY['screening', 'interview', 'screening', 'interview', 'offer', 'rejected'] THEN
        RAISE EXCEPTION 'bo''s path should be screening → interview → screening → interview → offer → rejected, not %', path;
    END IF;
END $$;

-- 4. Every decision, by candidate: the panel's and the sign-off's.
SELECT c.name AS candidate, a.name AS approval, a.mode, d.approver, d.decision, d.comment, a.status AS verdict
  FROM lowcode.decisions d
  JOIN lowcode.approvals a ON a.id = d.approval_id
  JOIN recruiting.candidate c ON c.id = a.record_id
 ORDER BY d.id;
SELECT state, count(*) AS candidates FROM recruiting.candidate GROUP BY state ORDER BY state;
