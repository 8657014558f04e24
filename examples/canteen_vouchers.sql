-- Canteen meal vouchers: each employee has a voucher with a balance; every meal is paid from
-- it. The balance can never go below zero, even when several tills charge the same voucher
-- at the same moment.
--
-- Shows: a schema minimum as a hard rule (the database refuses any write that breaks it),
-- spending as one atomic UPDATE, concurrent spends from several sessions (dblink), and
-- optimistic locking with expected_revision for read-modify-write screens.
--
-- Run it in an empty database:  psql -v ON_ERROR_STOP=1 -f examples/canteen_vouchers.sql
-- (as a superuser, or a user allowed to use dblink). Every step checks its own outcome and
-- stops the script with an error if it is wrong.

\set ON_ERROR_STOP on
\pset footer off

CREATE EXTENSION IF NOT EXISTS lowcode;
CREATE EXTENSION IF NOT EXISTS dblink;

-- 1. The app: a voucher (holder, how much was loaded onto it in total, and the balance, in
--    yuan) and a meal (what was paid, from which voucher). "minimum": 0 on the balance is
--    the whole overdraft rule.
SELECT lowcode.create_app('canteen', 'Canteen meal vouchers');
SELECT lowcode.define_form('canteen', 'voucher', '{
  "type": "object",
  "required": ["holder", "loaded", "balance"],
  "properties": {
    "holder":  {"type": "string", "minLength": 1},
    "loaded":  {"type": "integer", "minimum": 0},
    "balance": {"type": "integer", "minimum": 0}
  }}') AS version;
SELECT lowcode.define_form('canteen', 'meal', '{
  "type": "object",
  "required": ["voucher", "dish", "price"],
  "properties": {
    "voucher": {"type": "integer"},
    "dish":    {"type": "string"},
    "price":   {"type": "integer", "minimum": 1}
  }}') AS version;
SELECT lowcode.publish('canteen') AS views;

-- 2. Spending. One UPDATE takes the balance as it is *now* and subtracts the price. PostgreSQL
--    locks the voucher's row for it, so two tills charging the same voucher take turns, and
--    the second one subtracts from what the first one left. The validation trigger checks
--    the new balance against the form: below 0, the UPDATE fails with SQLSTATE 23514 and
--    nothing is paid. The meal is written in the same transaction, so the list of meals
--    always adds up to what left the balance.
CREATE FUNCTION canteen.spend(voucher bigint, price int, dish text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    left_over int;
BEGIN
    UPDATE lowcode.records r
       SET data = jsonb_set(r.data, '{balance}', to_jsonb((r.data ->> 'balance')::int - price))
     WHERE r.id = voucher AND r.app = 'canteen' AND r.form = 'voucher'
    RETURNING (r.data ->> 'balance')::int INTO left_over;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'canteen: no voucher %', voucher USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM lowcode.submit('canteen', 'meal', jsonb_build_object('voucher', voucher, 'dish', dish, 'price', price));
    RETURN left_over;
END $$;

-- A check used after every step: balances are never negative, and each voucher's meals add
-- up to what was loaded onto it minus what is left.
CREATE FUNCTION pg_temp.check_books() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v record;
BEGIN
    FOR v IN SELECT id, holder, loaded, balance FROM canteen.voucher LOOP
        IF v.balance < 0 THEN
            RAISE EXCEPTION 'voucher % (%) is overdrawn: %', v.id, v.holder, v.balance;
        END IF;
        IF v.balance + (SELECT coalesce(sum(price), 0) FROM canteen.meal WHERE voucher = v.id) <> v.loaded THEN
            RAISE EXCEPTION 'voucher % (%): balance % plus meals does not add up to %', v.id, v.holder, v.balance, v.loaded;
        END IF;
    END LOOP;
    RETURN 'books balance';
END $$;

-- 3. Load a voucher with 100 yuan and have lunch.
INSERT INTO canteen.voucher (holder, loaded, balance) VALUES ('wang', 100, 100) RETURNING id AS wang \gset
SELECT canteen.spend(:wang, 18, 'beef noodles') AS balance_after;
SELECT canteen.spend(:wang, 25, 'hot pot set') AS balance_after;
SELECT pg_temp.check_books();

-- A 70-yuan banquet does not fit in the 57 left: refused, and nothing was paid or recorded.
DO $$
DECLARE detail text;
BEGIN
    PERFORM canteen.spend((SELECT id FROM canteen.voucher WHERE holder = 'wang'), 70, 'banquet');
    RAISE EXCEPTION 'a spend beyond the balance should be refused';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %  %', SQLERRM, detail;
END $$;
SELECT holder, balance FROM canteen.voucher;
SELECT pg_temp.check_books();

-- The rule holds for every way of writing, not just for spend(): a plain UPDATE of the
-- typed view that would overdraw is refused the same way.
DO $$
BEGIN
    UPDATE canteen.voucher SET balance = -1 WHERE holder = 'wang';
    RAISE EXCEPTION 'a negative balance should be refused';
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;

-- 4. Lunch rush: three tills charge li's 100-yuan voucher 40 yuan each at the same moment.
--    Each till is its own database session (dblink opens them here). Each one holds its
--    transaction open for a moment after charging, so the three really do overlap. Two meals
--    fit (100 - 40 - 40 = 20); the third must be refused, whatever order they ran in.
INSERT INTO canteen.voucher (holder, loaded, balance) VALUES ('li', 100, 100) RETURNING id AS li \gset

-- Where this database is, so that the extra sessions connect to it. lock_timeout makes a
-- session that waits for a lock too long fail instead of hanging.
SELECT format('dbname=%s port=%s host=%s user=%s options=-clock_timeout=10s', current_database(), current_setting('port'),
              coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''), 'localhost'),
              current_user) AS here \gset
SELECT dblink_connect('till_1', :'here'), dblink_connect('till_2', :'here'), dblink_connect('till_3', :'here');

SELECT format('SELECT canteen.spend(%s, 40, %L) AS balance_after, pg_sleep(0.3)::text', :li, 'set meal') AS charge \gset
SELECT dblink_send_query('till_1', :'charge'),
       dblink_send_query('till_2', :'charge'),
       dblink_send_query('till_3', :'charge');

-- Collect each till's answer: its balance after paying, or (fail_on_error = false) no row,
-- and then dblink_error_message says why (shown without its CONTEXT lines).
CREATE TEMP TABLE rush AS
SELECT till, r.balance_after,
       CASE WHEN r.balance_after IS NULL
            THEN regexp_replace(dblink_error_message(till), E'\nCONTEXT:.*', '') END AS refused
  FROM unnest(ARRAY['till_1', 'till_2', 'till_3']) AS till
  LEFT JOIN LATERAL dblink_get_result(till, false) AS r(balance_after int, slept text) ON true;
-- (dblink wants one more, empty, result from each connection before it is used again.)
SELECT count(*) AS should_be_0
  FROM unnest(ARRAY['till_1', 'till_2', 'till_3']) AS till,
       LATERAL dblink_get_result(till) AS r(balance_after int, slept text);
SELECT dblink_disconnect('till_1'), dblink_disconnect('till_2'), dblink_disconnect('till_3');

SELECT * FROM rush ORDER BY balance_after DESC NULLS LAST, till;
SELECT holder, balance FROM canteen.voucher ORDER BY holder;
DO $$
DECLARE
    paid     int := (SELECT count(balance_after) FROM rush);
    balance  int := (SELECT balance FROM canteen.voucher WHERE holder = 'li');
BEGIN
    IF paid <> 2 THEN
        RAISE EXCEPTION 'exactly 2 of the 3 charges fit in 100 yuan, but % went through', paid;
    END IF;
    IF balance <> 20 THEN
        RAISE EXCEPTION 'li''s balance should be 20, not %', balance;
    END IF;
    IF (SELECT array_agg(balance_after ORDER BY balance_after DESC) FROM rush WHERE balance_after IS NOT NULL)
       IS DISTINCT FROM ARRAY[60, 20] THEN
        RAISE EXCEPTION 'the tills that paid should have seen 60 and then 20 left';
    END IF;
    IF NOT EXISTS (SELECT FROM rush WHERE refused LIKE '%less than the minimum of 0%') THEN
        RAISE EXCEPTION 'the third till should be refused for going below 0, got %',
            (SELECT string_agg(refused, '; ') FROM rush);
    END IF;
END $$;
SELECT pg_temp.check_books();

-- Every change of li's balance is in the history, with the revision it made.
SELECT revision, action, before ->> 'balance' AS balance_before, after ->> 'balance' AS balance_after
  FROM lowcode.record_history(:li);

-- 4b. The typed view is a different story. `UPDATE canteen.voucher SET balance = balance + 10`
--     computes the new value from the row as the statement first saw it, before it waits
--     for the lock, and the view cannot compute it again afterwards. So when two such
--     updates of one voucher overlap, the later one is refused with SQLSTATE 40001
--     (serialization_failure) instead of overwriting the first: the caller runs it again, as
--     with any 40001. Here two office clerks top wang's voucher up by 10 yuan at once.
CREATE TEMP TABLE wang_before AS SELECT balance FROM canteen.voucher WHERE holder = 'wang';
SELECT dblink_connect('clerk_1', :'here'), dblink_connect('clerk_2', :'here');
SELECT dblink_send_query(clerk, $$UPDATE canteen.voucher SET loaded = loaded + 10, balance = balance + 10
                                   WHERE holder = 'wang' RETURNING balance, pg_sleep(0.3)::text$$) AS sent
  FROM unnest(ARRAY['clerk_1', 'clerk_2']) AS clerk;
CREATE TEMP TABLE topups AS
SELECT clerk, r.balance,
       CASE WHEN r.balance IS NULL THEN regexp_replace(dblink_error_message(clerk), E'\nCONTEXT:.*', '') END AS refused
  FROM unnest(ARRAY['clerk_1', 'clerk_2']) AS clerk
  LEFT JOIN LATERAL dblink_get_result(clerk, false) AS r(balance int, slept text) ON true;
SELECT count(*) AS should_be_0
  FROM unnest(ARRAY['clerk_1', 'clerk_2']) AS clerk,
       LATERAL dblink_get_result(clerk) AS r(balance int, slept text);
SELECT dblink_disconnect('clerk_1'), dblink_disconnect('clerk_2');
SELECT * FROM topups ORDER BY clerk;

-- The refused clerk tries again (an app does this in its 40001 retry loop).
DO $$
BEGIN
    IF EXISTS (SELECT FROM topups WHERE refused IS NOT NULL AND refused NOT LIKE '%changed by another transaction%') THEN
        RAISE EXCEPTION 'a top-up failed for another reason than a concurrent change: %',
            (SELECT string_agg(refused, '; ') FROM topups);
    END IF;
    FOR i IN 1 .. (SELECT count(*) FROM topups WHERE refused IS NOT NULL) LOOP
        UPDATE canteen.voucher SET loaded = loaded + 10, balance = balance + 10 WHERE holder = 'wang';
    END LOOP;
END $$;
SELECT holder, loaded, balance FROM canteen.voucher WHERE holder = 'wang';
DO $$
BEGIN
    IF (SELECT balance FROM canteen.voucher WHERE holder = 'wang') <> (SELECT balance + 20 FROM wang_before) THEN
        RAISE EXCEPTION 'a concurrent top-up through the view was lost: % + 2 x 10 <> %',
            (SELECT balance FROM wang_before), (SELECT balance FROM canteen.voucher WHERE holder = 'wang');
    END IF;
END $$;
SELECT pg_temp.check_books();

-- 5. Screens that show a voucher and save it later (a top-up form, a correction) use
--    optimistic locking: update_record with the revision they read refuses (SQLSTATE 40001)
--    when someone else changed the voucher in between, instead of overwriting their change.
--    Here the top-up screen reads li's voucher ...
CREATE TEMP TABLE topup_screen AS
SELECT id, holder, loaded, balance, revision FROM canteen.voucher WHERE holder = 'li';
SELECT * FROM topup_screen;
-- ... a meal is paid meanwhile ...
SELECT canteen.spend(:li, 15, 'dumplings') AS balance_after;
-- ... and the screen saves "50 more" on top of the balance it showed: refused.
DO $$
BEGIN
    PERFORM lowcode.update_record(s.id, jsonb_build_object('holder', s.holder, 'loaded', s.loaded + 50,
                                                           'balance', s.balance + 50), s.revision)
       FROM topup_screen s;
    RAISE EXCEPTION 'a top-up computed from a stale read should be refused';
EXCEPTION WHEN serialization_failure THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
-- The screen reads again and re-applies its change on the fresh voucher.
SELECT lowcode.update_record(id, jsonb_build_object('holder', holder, 'loaded', loaded + 50, 'balance', balance + 50),
                             revision) AS new_revision
  FROM canteen.voucher WHERE holder = 'li';
SELECT holder, loaded, balance, revision FROM canteen.voucher ORDER BY holder;
DO $$
BEGIN
    IF (SELECT balance FROM canteen.voucher WHERE holder = 'li') <> 20 - 15 + 50 THEN
        RAISE EXCEPTION 'li should have 55 after the dumplings and the top-up';
    END IF;
END $$;
SELECT pg_temp.check_books();

-- 6. The month's report: meals per voucher.
SELECT v.holder, v.loaded, v.balance, count(m.id) AS meals, coalesce(sum(m.price), 0) AS spent
  FROM canteen.voucher v LEFT JOIN canteen.meal m ON m.voucher = v.id
 GROUP BY v.holder, v.loaded, v.balance
 ORDER BY v.holder;
