#!/usr/bin/env bash
# webhooks — the worker delivers outbox events to webhooks (shared_preload_libraries =
# 'lowcode'), against a local receiver on 127.0.0.1 (tests/system/webhook_receiver.py) that
# verifies every Standard Webhooks signature.
#
# 1. A fresh install sends nothing: lowcode.webhook_allow is empty, and a wildcard never
#    allows loopback. Non-admins cannot read secrets.
# 2. 200: every event arrives once, signed, in order; each attempt is in webhook_deliveries.
# 3. 500 twice then 200: retried with the same webhook-id, in order.
# 4. Always 500: after max_attempts a dead letter; replay_dead_letters brings it back.
# 5. 429 with Retry-After: the next try waits as told. 410: the webhook is disabled.
#    302: never followed. A hanging endpoint times out and holds up no other webhook.
# 6. pause / resume; the receiver restarted mid-delivery (nothing lost); kill -9 of the
#    worker mid-delivery (everything arrives, duplicates only of what was in flight).
# 7. Egress: under lowcode.webhook_allow = '*', no spelling of a loopback address reaches the
#    receiver (127.1, 2130706433, 0x7f000001, 0, [::ffff:127.0.0.1], localhost): refused by
#    create_webhook, and refused again when sending (the resolved address is checked: the
#    error names it), the receiver gets nothing; naming 127.0.0.0/8 (or localhost) delivers.
# 8. The secret is in no server log line and in no recorded error.
# Ports 29520 (cluster) and 29521 (receiver); override with LOWCODE_WEBHOOK_PORT (+1).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

port="${LOWCODE_WEBHOOK_PORT:-29520}"
rport=$((port + 1 + ${LOWCODE_PORT_OFFSET:-0}))
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
received="$SYS_WORK/received.jsonl"
: >"$received"

sys_start hooks "$port"
data="$(sys_data hooks)"
log="$(sys_log hooks)"
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.launcher_naptime = '500ms'"
    echo "max_prepared_transactions = 4"
} | lc_as_pg tee -a "$data/postgresql.conf" >/dev/null
lc_as_pg "$pg_bin/pg_ctl" restart -D "$data" -l "$log" -m fast -w -t 60 >/dev/null || fail "restart failed"

receiver_pid=""
start_receiver() {
    python3 "$LC_ROOT/tests/system/webhook_receiver.py" "$rport" "$secret" "$received" &
    receiver_pid=$!
    for _ in $(seq 1 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "the receiver did not start"
}
stop_receiver() {
    [ -z "$receiver_pid" ] || kill "$receiver_pid" 2>/dev/null || true
    wait "$receiver_pid" 2>/dev/null || true
    receiver_pid=""
}
trap 'stop_receiver; lc_cleanup' EXIT

sys_true() { # sys_true NAME COMMAND... — a named check (check reports its second word)
    shift
    "$@"
}

wait_for() { # wait_for WHAT SECONDS SQL — until the query (in app) returns t
    local what="$1" secs="$2" query="$3"
    for _ in $(seq 1 $((secs * 10))); do
        [ "$(sys_val hooks app "$query" 2>/dev/null || true)" = t ] && return 0
        sleep 0.1
    done
    fail "$what: not true after ${secs}s: $query"
}

# got TOPIC — what the receiver saw for a topic: "requests distinct-ids bad-signatures in-order"
got() {
    python3 - "$received" "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r["topic"] == sys.argv[2]]
ok = [r["event"] for r in rows if r["status"] == 200]
firsts = []
for n in ok:
    if n not in firsts:
        firsts.append(n)
print(len(rows), len({r["id"] for r in rows}), sum(1 for r in rows if not r["sig_ok"]),
      "ordered" if firsts == sorted(firsts) else "unordered")
PY
}

delivered() { # delivered TOPIC — distinct events answered 200
    python3 - "$received" "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(len({r["id"] for r in rows if r["topic"] == sys.argv[2] and r["status"] == 200}))
PY
}

wait_delivered() { # wait_delivered TOPIC N SECONDS
    local n=0
    for _ in $(seq 1 $(($3 * 10))); do
        n="$(delivered "$1")"
        [ "$n" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "$1: $n of $2 events delivered after $3 s"
}

step "a fresh install sends nothing"
sys_psql hooks -d postgres -c "CREATE DATABASE app" >/dev/null
sys_psql hooks -d app >/dev/null <<'SQL'
CREATE EXTENSION lowcode;
CREATE ROLE plain LOGIN;
SQL
url="http://127.0.0.1:$rport"
sys_fails "no host allowed by default" 42501 hooks app \
    "SELECT lowcode.create_webhook('x', '$url/ok')"
sys_psql hooks -d app -c "ALTER SYSTEM SET lowcode.webhook_allow = '*'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
sys_fails "a wildcard does not allow loopback" 42501 hooks app \
    "SELECT lowcode.create_webhook('x', '$url/ok')"
sys_psql hooks -d app -c "ALTER SYSTEM SET lowcode.webhook_allow = '127.0.0.1:$rport'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
sys_fails "a bad secret is refused" 22023 hooks app \
    "SELECT lowcode.create_webhook('x', '$url/ok', NULL, '{\"secret\": \"whsec_short\"}')"
sys_expect "a made secret is returned once" "t" hooks app \
    "SELECT lowcode.create_webhook('made', '$url/ok', '{none}') ~ '^whsec_[A-Za-z0-9+/=]{40,}$'"
check sys_expect "a webhook of every topic" "t|t" hooks app \
    "SELECT lowcode.create_webhook('all', '$url/ok') IS NOT NULL, lowcode.drop_webhook('all')"
check sys_fails "non-admins cannot read secrets" 42501 hooks app \
    "SET ROLE plain; SELECT secret FROM lowcode.webhooks"
check sys_fails "non-admins cannot create webhooks" 42501 hooks app \
    "SET ROLE plain; SELECT lowcode.create_webhook('y', '$url/ok')"

start_receiver
wait_for "the worker runs" 20 "SELECT state = 'on' FROM lowcode.worker_status() WHERE database = 'app'"
opts="{\"secret\": \"$secret\", \"backoff\": [\"200ms\"], \"max_attempts\": 4}"
sys_psql hooks -d app >/dev/null <<SQL
SELECT lowcode.create_webhook('ok', '$url/ok', '{t.ok}', '{"secret": "$secret", "backoff": ["200ms", "500ms"], "max_attempts": 40}');
SELECT lowcode.create_webhook('flaky', '$url/flaky?n=2', '{t.flaky}', '$opts');
SELECT lowcode.create_webhook('dead', '$url/fail', '{t.dead}', '{"secret": "$secret", "backoff": ["100ms"], "max_attempts": 3}');
SELECT lowcode.create_webhook('busy', '$url/busy?after=2', '{t.busy}', '$opts');
SELECT lowcode.create_webhook('gone', '$url/gone', '{t.gone}', '$opts');
SELECT lowcode.create_webhook('redirect', '$url/redirect', '{t.redirect}', '$opts');
SELECT lowcode.create_webhook('hang', '$url/hang?secs=20', '{t.hang}', '{"secret": "$secret", "timeout": "1 second", "backoff": ["10s"]}');
SQL
emit() { # emit TOPIC FROM TO
    sys_val hooks app "SELECT count(lowcode.emit('$1', jsonb_build_object('n', i))) FROM generate_series($2, $3) i" >/dev/null
}

step "200: every event once, signed, in order"
emit t.hang 1 1
emit t.ok 1 50
wait_delivered t.ok 50 20
check sys_true "t.ok: 50 requests, 50 ids, all signed, in order" test "$(got t.ok)" = "50 50 0 ordered"
check sys_expect "each attempt recorded" "50|50" hooks app \
    "SELECT count(*), count(*) FILTER (WHERE status_code = 200 AND outcome = 'delivered' AND latency_ms >= 0)
       FROM lowcode.webhook_deliveries('ok', 1000)"
wait_for "a first (timed out) attempt at the hanging endpoint" 20 \
    "SELECT count(*) >= 1 FROM lowcode.webhook_deliveries('hang')"
check sys_expect "the 50 went out while the hanging endpoint's first attempt hung" "t" hooks app "
    SELECT (SELECT max(attempted_at) FROM lowcode.webhook_attempts WHERE webhook = 'ok')
         < (SELECT min(attempted_at) + interval '1 second' FROM lowcode.webhook_attempts WHERE webhook = 'hang')"

step "500 twice then 200: same webhook-id, in order"
emit t.flaky 1 5
wait_delivered t.flaky 5 30
check sys_true "t.flaky: 15 requests, 5 ids, all signed, in order" test "$(got t.flaky)" = "15 5 0 ordered"
check sys_expect "flaky attempts" "10|5" hooks app \
    "SELECT count(*) FILTER (WHERE outcome = 'retry' AND status_code = 500), count(*) FILTER (WHERE outcome = 'delivered')
       FROM lowcode.webhook_deliveries('flaky', 1000)"

step "always 500: dead letters after max_attempts, then replayed"
emit t.dead 1 2
wait_for "two dead letters" 30 \
    "SELECT count(*) = 2 FROM lowcode.webhook_deliveries('dead', 1000) WHERE outcome = 'dead'"
check sys_true "t.dead: 6 requests, 2 ids, all signed, in order" test "$(got t.dead)" = "6 2 0 ordered"
check sys_expect "replay brings them back" "2" hooks app "SELECT lowcode.replay_dead_letters('t.dead', 'webhook:dead')"
wait_for "dead again after the replay" 30 \
    "SELECT count(*) = 4 FROM lowcode.webhook_deliveries('dead', 1000) WHERE outcome = 'dead'"

step "429 Retry-After: 2 is honoured; 410 disables; 302 is not followed; the hang timed out"
emit t.busy 1 1
emit t.gone 1 1
emit t.redirect 1 1
wait_for "a 429 attempt" 20 "SELECT count(*) > 0 FROM lowcode.webhook_deliveries('busy')"
check sys_expect "next try after Retry-After" "t" hooks app \
    "SELECT bool_and(next_try - attempted_at BETWEEN interval '1.9 seconds' AND interval '2.5 seconds' AND status_code = 429)
       FROM lowcode.webhook_deliveries('busy') WHERE outcome = 'retry'"
wait_for "410 disables the webhook" 20 "SELECT status = 'disabled' FROM lowcode.webhooks WHERE name = 'gone'"
wait_for "a 302 attempt" 20 "SELECT count(*) > 0 FROM lowcode.webhook_deliveries('redirect') WHERE status_code = 302 AND outcome = 'retry'"
check sys_true "302 not followed" test "$(python3 -c "import json; print(sum(1 for l in open('$received') if json.loads(l)['path'] == '/ok' and json.loads(l)['topic'] == 't.redirect'))")" = 0
check sys_expect "the hanging endpoint timed out" "t" hooks app \
    "SELECT count(*) > 0 AND bool_and(status_code IS NULL AND error LIKE 'timeout%') FROM lowcode.webhook_deliveries('hang')"
sys_psql hooks -d app -c "SELECT lowcode.pause_webhook('hang'), lowcode.pause_webhook('busy'), lowcode.pause_webhook('redirect')" >/dev/null

step "pause / resume"
sys_val hooks app "SELECT lowcode.pause_webhook('ok')" >/dev/null
sleep 1.2
emit t.ok 51 60
sleep 2
check sys_true "nothing sent while paused" test "$(delivered t.ok)" = 50
sys_val hooks app "SELECT lowcode.resume_webhook('ok')" >/dev/null
wait_delivered t.ok 60 20

step "a webhook made in a prepared transaction (a two-phase commit, as Citus's over several nodes)"
# In a database of its own, with no other webhook: its worker has nothing to look at until
# the webhook is there. The transaction's note to the worker pool waits for COMMIT PREPARED
# (published at PREPARE, the worker looked, found no webhook yet and did not look again).
sys_psql hooks -d postgres -c "CREATE DATABASE twophase" >/dev/null || fail "CREATE DATABASE twophase"
sys_psql hooks -d twophase -c "CREATE EXTENSION lowcode" >/dev/null || fail "lowcode in twophase"
sys_psql hooks -d twophase >/dev/null <<SQL || fail "the prepared webhook"
BEGIN;
SELECT lowcode.create_webhook('prepared', '$url/ok', '{t.prepared}', '{"secret": "$secret"}');
PREPARE TRANSACTION 'lowcode_webhook';
SQL
sleep 1.5
sys_psql hooks -d twophase -c "COMMIT PREPARED 'lowcode_webhook'" >/dev/null || fail "COMMIT PREPARED"
sys_val hooks twophase "SELECT count(lowcode.emit('t.prepared', jsonb_build_object('n', i))) FROM generate_series(1, 3) i" >/dev/null
check sys_true "delivered once committed" wait_delivered t.prepared 3 20

step "the receiver restarted mid-delivery: nothing lost"
stop_receiver
emit t.ok 61 80
sleep 2
start_receiver
wait_delivered t.ok 80 60
check sys_true "in order across the receiver's restart" test "$(got t.ok | cut -d' ' -f4)" = ordered
check sys_expect "no dead letter for the receiver's restart" "0" hooks app \
    "SELECT count(*) FROM lowcode.webhook_deliveries('ok', 10000) WHERE outcome = 'dead'"

step "kill -9 of the worker mid-delivery: everything arrives"
emit t.ok 81 1080
sleep 0.5
victim="$(sys_val hooks postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app'")"
killed_at="$(date +%s.%N)"
kill -9 "$victim"
wait_delivered t.ok 1080 90
# The server restarts (a killed background process is a crash); the new worker ends its
# dead predecessor's leases instead of waiting them out (15 s): the longest silence of the
# receiver after the kill is the restart and the worker's first round.
gap="$(python3 - "$received" "$killed_at" <<'PY'
import json, sys
killed = float(sys.argv[2])
at = sorted(json.loads(l)["received_at"] for l in open(sys.argv[1]) if l.strip())
at = [killed] + [t for t in at if t > killed]
print(f"{max(b - a for a, b in zip(at, at[1:])):.2f}")
PY
)"
step "longest silence of the receiver after the kill: $gap s"
check sys_true "deliveries resume within 8 s of the kill, not after a lease" \
    python3 -c "import sys; sys.exit(0 if float('$gap') < 8 else 1)"
dups="$(python3 - "$received" <<'PY'
import json, sys, collections
c = collections.Counter(json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["topic"] == "t.ok" and json.loads(l)["status"] == 200)
print(sum(v - 1 for v in c.values()))
PY
)"
step "duplicates after kill -9 (at least once): $dups"
check sys_true "duplicates only of what was in flight" test "$dups" -le 500

step "egress: a wildcard never reaches loopback, however it is spelled"
allow() { # allow LIST — set lowcode.webhook_allow and wait for the backends and the worker
    sys_psql hooks -d app -c "ALTER SYSTEM SET lowcode.webhook_allow = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 2
}
refused_with() { # refused_with WHAT TEXT SQL — the statement fails and its message holds TEXT
    local out
    out="$(sys_psql hooks -d app -c "$3" 2>&1)" && fail "$1: succeeded ($3)"
    case "$out" in
        *"$2"*) ;;
        *) fail "$1: expected '$2' in: $out" ;;
    esac
}
spellings=("127.1" "2130706433" "0x7f000001" "0" "[::ffff:127.0.0.1]" "localhost")
sopts="{\"secret\": \"$secret\", \"backoff\": [\"200ms\"], \"max_attempts\": 100}"
allow '*'
# (statements that fail are logged: these carry no secret, one is made)
for h in "${spellings[@]}"; do
    check sys_fails "create_webhook refuses http://$h:PORT/ under '*'" 42501 hooks app \
        "SELECT lowcode.create_webhook('spelled', 'http://$h:$rport/ok', '{t.spelled}')"
done
check refused_with "the refusal names the address and why" \
    'host "127.1" resolves to 127.0.0.1, a loopback address, which lowcode.webhook_allow does not name' \
    "SELECT lowcode.create_webhook('spelled', 'http://127.1:$rport/ok', '{t.spelled}')"
# Created while named, then sent under '*': the check made when sending refuses them too.
allow '127.0.0.0/8, 0.0.0.0/8, localhost'
i=0
for h in "${spellings[@]}"; do
    i=$((i + 1))
    sys_val hooks app "SELECT lowcode.create_webhook('sp$i', 'http://$h:$rport/ok', '{t.sp$i}', '$sopts')" >/dev/null ||
        fail "create_webhook sp$i (http://$h:$rport/) while named"
done
allow '*'
for i in 1 2 3 4 5 6; do
    emit "t.sp$i" 1 1
done
for i in 1 2 3 4 5 6; do
    h="${spellings[$((i - 1))]}"
    wait_for "a refused attempt of sp$i (http://$h:PORT/)" 30 \
        "SELECT count(*) >= 1 FROM lowcode.webhook_deliveries('sp$i')"
    check sys_expect "under '*', http://$h:PORT/ is refused when sending, naming the address" "t" hooks app \
        "SELECT bool_and(status_code IS NULL AND outcome = 'retry'
                         AND error LIKE 'host %resolves to %, which lowcode.webhook_allow does not name (a wildcard never allows loopback or private addresses)')
           FROM lowcode.webhook_deliveries('sp$i', 1000)"
    check sys_true "under '*', the receiver got nothing from http://$h:PORT/" test "$(got "t.sp$i")" = "0 0 0 ordered"
done
# [::ffff:127.0.0.1] would need an IPv6 socket (not every test host has one): stop it here.
sys_val hooks app "SELECT lowcode.pause_webhook('sp5')" >/dev/null
allow '127.0.0.0/8'
for i in 1 2 3; do
    h="${spellings[$((i - 1))]}"
    check sys_true "naming 127.0.0.0/8 delivers to http://$h:PORT/" wait_delivered "t.sp$i" 1 30
done
check sys_expect "0 (0.0.0.0) is still refused: 127.0.0.0/8 does not hold it" "t|t" hooks app \
    "SELECT bool_and(status_code IS NULL), (array_agg(error ORDER BY attempted_at DESC))[1] LIKE '%is not allowed by lowcode.webhook_allow'
       FROM lowcode.webhook_deliveries('sp4', 1000)"
check sys_true "the receiver still got nothing from http://0:PORT/" test "$(got t.sp4)" = "0 0 0 ordered"
allow '127.0.0.0/8, localhost'
check sys_true "naming localhost delivers to http://localhost:PORT/" wait_delivered t.sp6 1 30
sys_val hooks app "SELECT lowcode.pause_webhook('sp4')" >/dev/null

step "the secret is in no log line and no recorded error"
check sys_true "the secret in no log line" test "$(grep -c "${secret#whsec_}" "$log" || true)" = 0
check sys_expect "no error holds it" "0" hooks app \
    "SELECT count(*) FROM lowcode.webhook_attempts WHERE error LIKE '%' || '${secret#whsec_}' || '%'"

stop_receiver
lc_as_pg "$pg_bin/pg_ctl" stop -D "$data" -m fast -w -t 30 >/dev/null || fail "pg_ctl stop failed or hung"
crashes="$(grep -E ' PANIC: | LOG: +.*('"$LC_CRASH_RE"')' "$log" | grep -vE "terminated by signal 9: Killed|all server processes terminated; reinitializing" || true)"
[ -z "$crashes" ] || { printf '%s\n' "$crashes"; SYS_FAILED+=("no other crash in the server log"); }
grep -vE "terminated by signal 9: Killed|all server processes terminated; reinitializing" "$log" >"$SYS_WORK/server-filtered.log" || true
grep -vxF "$log" "$SYS_WORK/logs" >"$SYS_WORK/logs.new" || true
echo "$SYS_WORK/server-filtered.log" >>"$SYS_WORK/logs.new"
mv "$SYS_WORK/logs.new" "$SYS_WORK/logs"
finish
