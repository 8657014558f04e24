#!/usr/bin/env bash
# view_update_race — two sessions spend from the same canteen voucher through its typed view
# (UPDATE ... SET balance = balance - n) at the same moment. The second UPDATE computed its
# new row from the balance before the first one's change: it must not overwrite that change
# (a lost update), but be refused with 40001 once the first commits, and leave the record as
# the first wrote it. Within one transaction, two UPDATEs of the same row both apply.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

sql >/dev/null <<'SQL'
SELECT lowcode.create_app('canteen');
SELECT lowcode.define_form('canteen', 'voucher', '{"type": "object", "properties": {
  "holder": {"type": "string"}, "balance": {"type": "integer", "minimum": 0}}}');
SELECT lowcode.publish('canteen');
INSERT INTO canteen.voucher (holder, balance) VALUES ('ann', 100);
SQL
id="$(val "SELECT id FROM canteen.voucher")"
expect "the voucher's balance" 100 "SELECT balance FROM canteen.voucher"

# First: takes the record, holds it for a second, commits.
session first -v ON_ERROR_STOP=1 -c "BEGIN" \
    -c "UPDATE canteen.voucher SET balance = balance - 30 WHERE id = $id" \
    -c "SELECT pg_sleep(1)" -c "COMMIT"
# Second: starts while the first holds the record (its row lock is there), reads balance 100.
for _ in $(seq 1 50); do
    [ "$(val "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relname = 'records' AND l.mode = 'RowExclusiveLock' AND l.granted
                 AND l.pid <> pg_backend_pid()")" -ge 1 ] && break
    sleep 0.05
done
session second -c "DO \$\$ BEGIN
    UPDATE canteen.voucher SET balance = balance - 40 WHERE id = $id;
    RAISE NOTICE 'second: updated';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'second: % %', SQLSTATE, SQLERRM;
END \$\$"
wait_sessions
grep -q "NOTICE:  second: 40001 lowcode: canteen.voucher: record $id was changed by another transaction while this UPDATE ran" \
    "$CONC_WORK/second.log" || { cat "$CONC_WORK/second.log" >&2; fail "the second UPDATE was not refused with 40001 and its message"; }
expect "the balance after the race (the first spend only)" 70 "SELECT balance FROM canteen.voucher"
expect "revisions" 2 "SELECT revision FROM canteen.voucher"

# One transaction: its own earlier change is not a conflict.
sql >/dev/null <<SQL
BEGIN;
UPDATE canteen.voucher SET balance = balance - 5 WHERE id = $id;
UPDATE canteen.voucher SET balance = balance - 5 WHERE id = $id;
COMMIT;
SQL
expect "the balance after two spends in one transaction" 60 "SELECT balance FROM canteen.voucher"
echo "a concurrent spend through the view was refused (40001), the balance kept the first spend: 100 - 30 = 70; two spends in one transaction: 60"
