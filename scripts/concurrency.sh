#!/usr/bin/env bash
# scripts/concurrency.sh — concurrency tests: real concurrent sessions (psql in
# background jobs, pgbench) against a throwaway cluster, checking exactly-once
# properties (claims, approvals, timers, outbox deliveries, form versions,
# crash recovery) with SQL afterwards.
#
#   scripts/concurrency.sh [TEST...]   run the named tests (default: every
#                                      tests/concurrency/*.sh except lib.sh)
#
# Each test tests/concurrency/<name>.sh runs in its own fresh database
# `lc_conc_<name>` (with `CREATE EXTENSION lowcode` already done) on a cluster
# run as the postgres user (port 28820 by default). It receives, exported:
#   PGHOST PGPORT PGUSER PGDATABASE   where to connect (PGHOST = socket dir)
#   CONC_WORK                         a scratch directory postgres can read and
#                                     write (pgbench scripts, session logs)
#   LC_DATA LC_LOGFILE LC_SOCK LC_PORT LC_DIR   the cluster (to stop/restart it)
# and exits 0 when its invariants hold, non-zero with a message otherwise.
# tests/concurrency/lib.sh holds the helpers the tests share.
#
# Environment:
#   LOWCODE_INSTALL=1               run `cargo pgrx install` first (default: use
#                                   the extension already installed)
#   LOWCODE_PROFILE=debug           with LOWCODE_INSTALL=1: a debug build
#   LOWCODE_PGPORT                  cluster port (default 28820 + LOWCODE_PORT_OFFSET)
#   LOWCODE_CLUSTER=NAME            cluster name (default "concurrency")
#   LOWCODE_CONCURRENCY_TIMEOUT=S   seconds allowed per test (default 120)
#   LOWCODE_CONCURRENCY_KEEP=1      leave the cluster and databases behind
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export LOWCODE_PGPORT="${LOWCODE_PGPORT:-$(lc_port 28820)}"
conc_dir="$LC_ROOT/tests/concurrency"
per_test_timeout="${LOWCODE_CONCURRENCY_TIMEOUT:-120}"

# --- which tests ----------------------------------------------------------------
lc_select_tests "$conc_dir" "$@"
[ -x "$pg_bin/pgbench" ] || lc_die "$pg_bin/pgbench missing (run scripts/setup.sh)"
command -v timeout >/dev/null || lc_die "timeout (coreutils) is not installed"

# --- install + cluster ------------------------------------------------------------
lc_setup
if [ "${LOWCODE_INSTALL:-0}" = 1 ]; then
    lc_install_extension "${LOWCODE_PROFILE:-release}"
fi

[ "${LOWCODE_CONCURRENCY_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
lc_cluster_start "${LOWCODE_CLUSTER:-concurrency}"

export PGHOST="$LC_SOCK" PGPORT="$LC_PORT" PGUSER="$PG_OS_USER"
work_root="$LC_DIR/work"
rm -rf "$work_root"
mkdir -p "$work_root"
chown "$PG_OS_USER:" "$work_root"

# The cluster must be up between tests (crash_recovery stops and restarts it).
ensure_running() {
    lc_as_pg "$pg_bin/pg_isready" -q -h "$LC_SOCK" -p "$LC_PORT" && return 0
    lc_warn "the cluster is down after a test; starting it again"
    lc_as_pg "$pg_bin/pg_ctl" start -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 >/dev/null ||
        lc_die "could not restart the cluster (see $LC_LOGFILE)"
}

passed=0
failed=0
failed_names=()
crash=0
for t in "${tests[@]}"; do
    ensure_running
    db="lc_conc_$t"
    work="$work_root/$t"
    mkdir -p "$work"
    chown "$PG_OS_USER:" "$work"
    lc_psql -q -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    lc_psql -q -d "$db" -c "CREATE EXTENSION lowcode" >/dev/null
    log_before=$(wc -l <"$LC_LOGFILE")

    start=$SECONDS
    rc=0
    PGDATABASE="$db" CONC_WORK="$work" LC_NAME="$t" \
        timeout -k 10 "$per_test_timeout" bash "$conc_dir/$t.sh" >"$work/test.log" 2>&1 || rc=$?
    took=$((SECONDS - start))
    [ "$rc" = 124 ] && echo "timed out after ${per_test_timeout}s (LOWCODE_CONCURRENCY_TIMEOUT)" >>"$work/test.log"

    # Only this test's part of the server log counts.
    tail -n +"$((log_before + 1))" "$LC_LOGFILE" >"$work/server.log"
    if ! lc_log_crash_free "$work/server.log" >"$work/crash.txt"; then
        crash=1
        [ "$rc" != 0 ] || rc=1
        cat "$work/crash.txt" >>"$work/test.log"
    fi

    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        lc_log "ok      $t (${took}s)"
        sed 's/^/    /' "$work/test.log"
        ensure_running
        [ "$LC_KEEP_CLUSTERS" = 1 ] || lc_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        lc_log "FAILED  $t (exit $rc, ${took}s)"
        tail -n "${LOWCODE_DIFF_LINES:-80}" "$work/test.log" | sed 's/^/    /'
        lc_log "details: $work/ (test.log, server.log, session logs)"
    fi
done

[ "$failed" -gt 0 ] && lc_log "failed tests: ${failed_names[*]}"
[ "$crash" = 1 ] && lc_log "FAILED: the server log shows a crash (see above)"
if [ "$LC_KEEP_CLUSTERS" = 1 ]; then
    lc_log "cluster left running (LOWCODE_CONCURRENCY_KEEP=1): $(lc_connect_hint "lc_conc_${tests[0]}")"
    lc_log "stop it with: scripts/cluster.sh stop ${LOWCODE_CLUSTER:-concurrency}"
else
    lc_cluster_stop
fi

echo "concurrency: $passed passed, $failed failed"
[ "$failed" = 0 ]
