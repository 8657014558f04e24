#!/usr/bin/env bash
# scripts/system.sh — system tests: whole clusters around the extension.
#
#   scripts/system.sh [TEST...]   run the named tests (default: every tests/system/*.sh
#                                 except lib.sh and citus.sh, sorted; citus.sh is the citus
#                                 stage's: scripts/citus_stage.sh)
#
#   dump_restore  pg_dump -Fc / pg_restore (and a plain dump replayed with psql) of a lived-in
#                 database onto a second cluster; the workflow carries on there
#   standby       a streaming replica (pg_basebackup -R, hot standby): reads work, writes
#                 fail with 25006, new form versions are enforced once replayed
#   upgrade       the last release's frozen script with the current library, filled with a
#                 lived-in app, ALTER EXTENSION UPDATE (as a superuser and as a non-superuser
#                 owner): data kept, catalog equals a fresh install, the app carries on
#   trusted_install  a database owner who is not a superuser installs lowcode, runs an app,
#                 dumps and restores it, and gains no superuser rights through it
#   worker, webhooks, worker_pool, attacks, api_surface, upgrade_oldest  see each file's header
#                 (worker_pool: more databases than worker processes, every timer fired once)
#
# Each test is self-contained: it starts its own clusters (as postgres, ports 28850-28859 plus
# LOWCODE_PORT_OFFSET, data under target/lowcode-sys_* or a postgres-reachable fallback) and stops them when it
# exits, also on failure or timeout. They use the extension as installed in the system
# PostgreSQL (make test's regress stage installs it; or set LOWCODE_INSTALL=1). Afterwards
# every server log a test used is checked for crashes.
#
# Environment:
#   LOWCODE_INSTALL=1           run `cargo pgrx install` first
#   LOWCODE_PROFILE=debug       with LOWCODE_INSTALL=1: a debug build (default release)
#   LOWCODE_SYSTEM_TIMEOUT=S    seconds allowed per test (default 120)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sys_dir="$LC_ROOT/tests/system"
per_test_timeout="${LOWCODE_SYSTEM_TIMEOUT:-120}"

lc_select_tests "$sys_dir" "$@"
# citus.sh needs Citus: scripts/citus_stage.sh (the citus stage of make test) runs it.
if [ $# = 0 ]; then
    for i in "${!tests[@]}"; do
        [ "${tests[$i]}" = citus ] && unset 'tests[i]'
    done
    tests=("${tests[@]}")
fi
command -v timeout >/dev/null || lc_die "timeout (coreutils) is not installed"

lc_setup
lc_require_pg_user
if [ "${LOWCODE_INSTALL:-0}" = 1 ]; then
    lc_install_extension "${LOWCODE_PROFILE:-release}"
fi
[ -f "$("$PG_CONFIG" --sharedir)/extension/lowcode.control" ] ||
    lc_die "the extension is not installed (make install, or LOWCODE_INSTALL=1)"

passed=0
failed=0
failed_names=()
for t in "${tests[@]}"; do
    work="$(lc_reach_dir "sys_$t")/work"
    rm -rf "$work"
    mkdir -p "$work"
    chown "$PG_OS_USER:" "$work"
    start=$SECONDS
    rc=0
    SYS_WORK="$work" LC_NAME="$t" timeout -k 15 "$per_test_timeout" bash "$sys_dir/$t.sh" >"$work/test.log" 2>&1 || rc=$?
    took=$((SECONDS - start))
    [ "$rc" = 124 ] && echo "timed out after ${per_test_timeout}s (LOWCODE_SYSTEM_TIMEOUT)" >>"$work/test.log"
    # A killed test cannot stop its clusters: stop whatever is still running in its logs' dirs.
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        while IFS= read -r log; do
            lc_stop_datadir "$(dirname "$log")/data" >/dev/null 2>&1 || true
        done <"$work/logs"
    fi
    # Crash check of every server log the test used.
    if [ -f "$work/logs" ]; then
        while IFS= read -r log; do
            if ! lc_log_crash_free "$log" >>"$work/crash.txt"; then
                [ "$rc" != 0 ] || rc=1
            fi
        done <"$work/logs"
        [ -s "$work/crash.txt" ] && cat "$work/crash.txt" >>"$work/test.log"
    fi
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        lc_log "ok      $t (${took}s)"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        lc_log "FAILED  $t (exit $rc, ${took}s)"
        tail -n "${LOWCODE_DIFF_LINES:-60}" "$work/test.log" | sed 's/^/    /'
        lc_log "details: $work/test.log (server logs: $(tr '\n' ' ' <"$work/logs" 2>/dev/null))"
    fi
done

[ "$failed" -gt 0 ] && lc_log "failed tests: ${failed_names[*]}"
echo "system: $passed passed, $failed failed"
[ "$failed" = 0 ]
