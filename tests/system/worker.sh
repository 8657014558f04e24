#!/usr/bin/env bash
# worker — lowcode's background worker (shared_preload_libraries = 'lowcode'): timers fire on
# time with no outside scheduler, and the launcher follows the databases.
#
# 1. Without preloading, lowcode.worker_status() says the worker is off and why.
# 2. Preloaded: a worker starts for the database that has lowcode, and acts as the
#    extension's owner.
# 3. Lateness: 10,000 timers due at 1,000 per second fire on time (p99 < 1 s, measured on
#    fired_at - fire_at), each exactly once, with nobody calling run_due_timers.
# 4. kill -9 of the worker mid-run: the cluster restarts it, every timer fires exactly once.
# 5. An SQL error in the worker is logged and shown by worker_status(); the worker carries on.
# 6. CREATE EXTENSION in a new database gets a worker; DROP EXTENSION sends it away;
#    DROP DATABASE with a worker attached succeeds at once; SIGTERM (pg_terminate_backend)
#    and a reload of lowcode.worker_databases are followed.
# 7. A fast shutdown does not hang on the worker.
# Ports 29510 (override with LOWCODE_WORKER_PORT).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

port="${LOWCODE_WORKER_PORT:-29510}"
sys_start worker "$port"
data="$(sys_data worker)"
log="$(sys_log worker)"

# wait_for WHAT SECONDS DB SQL — until the query returns t.
wait_for() {
    local what="$1" secs="$2" db="$3" query="$4" _
    for _ in $(seq 1 $((secs * 10))); do
        [ "$(sys_val worker "$db" "$query" 2>/dev/null || true)" = t ] && return 0
        sleep 0.1
    done
    fail "$what: not true after ${secs}s: $query"
}

worker_pid() { # worker_pid DB
    sys_val worker postgres "SELECT coalesce(max(pid), 0) FROM pg_stat_activity
                            WHERE backend_type = 'lowcode worker' AND datname = '$1'"
}

restart() {
    lc_as_pg "$pg_bin/pg_ctl" restart -D "$data" -l "$log" -m fast -w -t 60 >/dev/null ||
        fail "restart failed"
}

step "without shared_preload_libraries: off, and why"
sys_psql worker -d postgres >/dev/null <<'SQL'
CREATE ROLE dbo LOGIN NOSUPERUSER;
CREATE DATABASE app OWNER dbo;
SQL
lc_as_pg "$pg_bin/psql" -h "$(sys_sock worker)" -p "$(sys_port worker)" -U dbo -d app -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION lowcode" >/dev/null
sys_expect "status off when not preloaded" "off|t" worker app \
    "SELECT state, detail LIKE '%shared_preload_libraries%' FROM lowcode.worker_status()"

step "preloaded: the launcher starts a worker for app, acting as the extension's owner"
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.launcher_naptime = '500ms'"
    echo "lowcode.worker_naptime = '1s'"
} | lc_as_pg tee -a "$data/postgresql.conf" >/dev/null
restart
wait_for "a worker for app" 20 app \
    "SELECT state = 'on' AND pid IS NOT NULL FROM lowcode.worker_status() WHERE database = 'app'"
sys_expect "the worker acts as dbo, the extension's owner" "dbo" worker app \
    "SELECT acting_as FROM lowcode.worker_status() WHERE database = 'app'"
sys_expect "no worker for postgres (no lowcode there)" "0" worker postgres \
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'postgres'"

sys_psql worker -d app >/dev/null <<'SQL'
SELECT lowcode.create_app('clock');
SELECT lowcode.define_form('clock', 'thing', '{"type": "object"}');
SELECT lowcode.submit('clock', 'thing', jsonb_build_object('n', i)) FROM generate_series(1, 200) i;
-- n timers from start, rate per second, on the records round-robin; the run's name in `name`.
CREATE FUNCTION public.add_timers(run text, n int, rate int, start timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO lowcode.timers (record_id, name, event, fire_at, app)
    SELECT r.ids[1 + i % 200], run, 'tick', start + (i * interval '1 second') / rate, r.apps[1 + i % 200]
      FROM generate_series(0, n - 1) i,
           (SELECT array_agg(id ORDER BY id) ids, array_agg(app ORDER BY id) apps FROM lowcode.records) r
$$;
SQL

step "lateness: 10,000 timers due at 1,000/s, fired by the worker alone"
sys_val worker app "SELECT public.add_timers('load', 10000, 1000, clock_timestamp() + interval '2 seconds')" >/dev/null
wait_for "all 10,000 timers fired" 40 app \
    "SELECT count(*) = 10000 FROM lowcode.timers WHERE name = 'load' AND status = 'fired'"
stats="$(sys_val worker app "
    SELECT format('p50=%sms p99=%sms max=%sms',
                  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                  round(max(ms)::numeric, 1))
      FROM (SELECT extract(epoch FROM fired_at - fire_at) * 1000 AS ms FROM lowcode.timers WHERE name = 'load') l")"
step "timer lateness (1,000 due/s): $stats"
printf 'timer lateness (1,000 due/s, 10,000 timers): %s\n' "$stats" >"$SYS_WORK/lateness.txt"
check sys_expect "lateness p99 < 1 s" "t" worker app "
    SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY fired_at - fire_at) < interval '1 second'
      FROM lowcode.timers WHERE name = 'load'"
check sys_expect "none fired early" "0" worker app \
    "SELECT count(*) FROM lowcode.timers WHERE name = 'load' AND fired_at < fire_at"
check sys_expect "each fired exactly once (one timer_fired history row each)" "10000|10000" worker app "
    SELECT count(*), count(DISTINCT (detail->>'timer')) FROM lowcode.history
     WHERE action = 'timer_fired' AND detail->>'name' = 'load'"
check sys_expect "worker_status counts them" "t" worker app \
    "SELECT timers_fired >= 10000 AND last_timer_run IS NOT NULL FROM lowcode.worker_status() WHERE database = 'app'"

step "kill -9 of the worker mid-run: restarted, nothing fired twice"
sys_val worker app "SELECT public.add_timers('crash', 3000, 1000, clock_timestamp() + interval '1 second')" >/dev/null
sleep 2
victim="$(worker_pid app)"
[ "$victim" != 0 ] || fail "no worker to kill"
kill -9 "$victim"
wait_for "a new worker after kill -9" 60 app \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app' AND pid <> $victim"
wait_for "all 3,000 timers fired after the crash" 30 app \
    "SELECT count(*) = 3000 FROM lowcode.timers WHERE name = 'crash' AND status = 'fired'"
check sys_expect "after kill -9: each fired exactly once" "3000|3000" worker app "
    SELECT count(*), count(DISTINCT (detail->>'timer')) FROM lowcode.history
     WHERE action = 'timer_fired' AND detail->>'name' = 'crash'"

step "SIGTERM (pg_terminate_backend): the launcher starts the worker again"
victim="$(worker_pid app)"
sys_val worker postgres "SELECT pg_terminate_backend($victim)" >/dev/null
wait_for "a new worker after SIGTERM" 20 app \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app' AND pid <> $victim"

step "an SQL error in the worker: logged, in worker_status, and the same worker carries on"
before="$(worker_pid app)"
sys_psql worker -d app -c "REVOKE EXECUTE ON FUNCTION lowcode.run_due_timers(int) FROM dbo, PUBLIC" >/dev/null
sys_val worker app "SELECT public.add_timers('err', 100, 1000, clock_timestamp())" >/dev/null
wait_for "the error in worker_status" 20 app \
    "SELECT coalesce(last_error LIKE '%permission denied%', false) FROM lowcode.worker_status() WHERE database = 'app'"
sys_psql worker -d app -c "GRANT EXECUTE ON FUNCTION lowcode.run_due_timers(int) TO dbo, PUBLIC" >/dev/null
wait_for "the timers fire once the error is gone" 20 app \
    "SELECT count(*) = 100 FROM lowcode.timers WHERE name = 'err' AND status = 'fired'"
check sys_expect "the same worker carried on" "$before" worker postgres \
    "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app'"
grep -q 'lowcode worker for database "app": timers: .*permission denied' "$log" ||
    SYS_FAILED+=("the worker's error in the server log")

step "a role without privileges cannot stall the worker by holding a lock it waits on"
# The worker waits while lowcode.distribute() runs. An advisory lock for that (as a first
# version had) any role could take and hold: timers stopped while it did.
sys_psql worker -d app -c "CREATE ROLE intruder LOGIN" >/dev/null
# (Its own connection: sys_psql sets lc_messages, which only a superuser may.)
lc_as_pg "$pg_bin/psql" -h "$(sys_sock worker)" -p "$(sys_port worker)" -U intruder -d app -X -q \
    -c "SELECT pg_advisory_lock(7813595147465417985), pg_sleep(12)" >/dev/null 2>&1 &
holder=$!
check sys_fails "nor by locking the table distribute() locks: 42501" 42501 worker app \
    "SET ROLE intruder; BEGIN; LOCK TABLE lowcode.worker_state IN ACCESS SHARE MODE"
wait_for "intruder holds the advisory lock" 5 app \
    "SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.locktype = 'advisory' AND l.granted AND a.usename = 'intruder'"
sys_val worker app "SELECT public.add_timers('held', 20, 1000, clock_timestamp())" >/dev/null
wait_for "the timers fire while another role holds an advisory lock" 8 app \
    "SELECT count(*) = 20 FROM lowcode.timers WHERE name = 'held' AND status = 'fired'"
wait "$holder" 2>/dev/null || true

step "CREATE EXTENSION in a new database gets a worker; DROP EXTENSION sends it away"
sys_psql worker -d postgres -c "CREATE DATABASE app2" >/dev/null
sys_psql worker -d app2 -c "CREATE EXTENSION lowcode" >/dev/null
wait_for "a worker for app2" 20 app2 \
    "SELECT state = 'on' FROM lowcode.worker_status() WHERE database = 'app2'"
sys_psql worker -d app2 -c "DROP EXTENSION lowcode" >/dev/null
wait_for "no worker for app2 once lowcode is dropped" 20 postgres \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app2'"

step "DROP DATABASE with a worker attached"
sys_psql worker -d app2 -c "CREATE EXTENSION lowcode" >/dev/null
wait_for "a worker for app2 again" 20 app2 \
    "SELECT state = 'on' FROM lowcode.worker_status() WHERE database = 'app2'"
drop_app2_quickly() { # DROP DATABASE succeeds, without waiting out the 5 s for other sessions
    local t0 took_ms
    t0=$(date +%s%N)
    sys_psql worker -d postgres -c "DROP DATABASE app2" || return 1
    took_ms=$((($(date +%s%N) - t0) / 1000000))
    step "DROP DATABASE took ${took_ms} ms"
    [ "$took_ms" -lt 4000 ]
}
check drop_app2_quickly "DROP DATABASE with a worker attached, at once"
sleep 1.5
check sys_expect "no worker left for app2" "0" worker postgres \
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app2'"

step "lowcode.worker_databases on reload: app is left out, then served again"
sys_psql worker -d postgres >/dev/null <<'SQL'
ALTER SYSTEM SET lowcode.worker_databases = 'elsewhere';
SELECT pg_reload_conf();
SQL
wait_for "app's worker stopped" 20 postgres \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'lowcode worker' AND datname = 'app'"
wait_for "status says why" 20 app \
    "SELECT state = 'off' AND detail LIKE '%lowcode.worker_databases%' FROM lowcode.worker_status() WHERE database = 'app'"
# A database created now is left out too, from its first commit on (its entry came before
# the launcher's next look at pg_database: it used to get a worker in between).
sys_psql worker -d postgres -c "CREATE DATABASE app3" >/dev/null || fail "CREATE DATABASE app3"
sys_psql worker -d app3 >/dev/null <<'SQL' || fail "a timer due at once in app3"
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('later');
SELECT lowcode.define_form('later', 'f', '{"type": "object"}');
SELECT lowcode.define_workflow('later', 'f', '{"states": {"s": {"initial": true}, "t": {}},
  "rules": [{"name": "go", "on": "created", "then": [{"timer": {"name": "now", "after": "0 seconds"}}]},
            {"name": "moved", "on": "timer:now", "then": [{"transition": "t"}]}]}');
SELECT lowcode.submit('later', 'f', '{}');
SQL
sleep 2
check sys_expect "a new database left out by lowcode.worker_databases: its due timer waits" "pending" worker app3 \
    "SELECT status FROM lowcode.timers"
sys_psql worker -d postgres -c "DROP DATABASE app3 WITH (FORCE)" >/dev/null || fail "DROP DATABASE app3"
sys_psql worker -d postgres >/dev/null <<'SQL'
ALTER SYSTEM RESET lowcode.worker_databases;
SELECT pg_reload_conf();
SQL
wait_for "app's worker back" 20 app \
    "SELECT state = 'on' FROM lowcode.worker_status() WHERE database = 'app'"

step "a fast shutdown does not hang on the worker"
t0=$SECONDS
lc_as_pg "$pg_bin/pg_ctl" stop -D "$data" -m fast -w -t 30 >/dev/null || fail "pg_ctl stop failed or hung"
[ $((SECONDS - t0)) -lt 10 ] || SYS_FAILED+=("fast shutdown within 10 s")

step "the server log: the only crash is the kill -9 above"
crashes="$(grep -E ' PANIC: | LOG: +.*('"$LC_CRASH_RE"')' "$log" | grep -vE "terminated by signal 9: Killed|all server processes terminated; reinitializing" || true)"
[ -z "$crashes" ] || { printf '%s\n' "$crashes"; SYS_FAILED+=("no other crash in the server log"); }
# scripts/system.sh checks the logs it is given for crashes: give it this log without the
# crash this test caused on purpose.
grep -vE "terminated by signal 9: Killed|all server processes terminated; reinitializing" "$log" >"$SYS_WORK/server-filtered.log" || true
grep -vxF "$log" "$SYS_WORK/logs" >"$SYS_WORK/logs.new" || true
echo "$SYS_WORK/server-filtered.log" >>"$SYS_WORK/logs.new"
mv "$SYS_WORK/logs.new" "$SYS_WORK/logs"
finish
