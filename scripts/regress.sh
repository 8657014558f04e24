#!/usr/bin/env bash
# scripts/regress.sh — SQL regression tests with pg_regress against the
# installed extension.
#
#   scripts/regress.sh [TEST...]   run the named tests (default: every
#                                  tests/pg_regress/sql/*.sql, sorted)
#   scripts/regress.sh --accept    copy the results of the last failed run
#                                  (target/pg_regress-results/results/*.out)
#                                  over tests/pg_regress/expected/
#
# Each test file runs in its own fresh database `lc_regress_<test>` on a
# throwaway cluster (run as the postgres user, port 28815 by default), so every
# file starts from an empty database. A test file normally says
# `CREATE EXTENSION lowcode;` itself; if it doesn't, pg_regress creates it
# (--load-extension) before the file runs.
#
# Environment:
#   LOWCODE_PROFILE=debug        install a debug build (default: --release)
#   LOWCODE_SKIP_INSTALL=1       don't run `cargo pgrx install` first
#   LOWCODE_REGRESS_KEEP=1       leave the cluster running afterwards
#   LOWCODE_REGRESS_DIR=DIR      test directory (default tests/pg_regress)
#   LOWCODE_REGRESS_EXTENSION=X  extension to auto-load (default lowcode;
#                                empty = never)
#   LOWCODE_PGPORT               cluster port
#   LOWCODE_CLUSTER=NAME         use cluster NAME instead of "test" (with its own
#                                results dir), so two runs can go side by side
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

regress_dir="${LOWCODE_REGRESS_DIR:-$LC_ROOT/tests/pg_regress}"
regress_dir="$(cd "$regress_dir" 2>/dev/null && pwd -P)" ||
    lc_die "no test directory ${LOWCODE_REGRESS_DIR:-$LC_ROOT/tests/pg_regress}"
saved="$LC_ROOT/target/pg_regress-results${LOWCODE_CLUSTER:+-$LOWCODE_CLUSTER}"
extension="${LOWCODE_REGRESS_EXTENSION-lowcode}"

# --- regress-accept -----------------------------------------------------------
if [ "${1:-}" = --accept ]; then
    shopt -s nullglob
    outs=("$saved"/results/*.out)
    [ "${#outs[@]}" -gt 0 ] || lc_die "nothing to accept: no $saved/results/*.out (run the tests first)"
    mkdir -p "$regress_dir/expected"
    for f in "${outs[@]}"; do
        cp "$f" "$regress_dir/expected/"
        lc_log "accepted $(basename "$f") -> ${regress_dir#"$LC_ROOT"/}/expected/"
    done
    lc_log "review with: git diff -- ${regress_dir#"$LC_ROOT"/}/expected"
    exit 0
fi

# --- which tests ----------------------------------------------------------------
tests=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t="$(basename "$t" .sql)"
        [ -f "$regress_dir/sql/$t.sql" ] || lc_die "no such test: $regress_dir/sql/$t.sql"
        tests+=("$t")
    done
else
    while IFS= read -r f; do
        tests+=("$(basename "$f" .sql)")
    done < <(find "$regress_dir/sql" -maxdepth 1 -name '*.sql' -type f | LC_ALL=C sort)
fi
[ "${#tests[@]}" -gt 0 ] || lc_die "no tests in $regress_dir/sql"
[ -x "$pg_regress_bin" ] || lc_die "pg_regress not found at $pg_regress_bin (run scripts/setup.sh)"

# --- install + cluster ------------------------------------------------------------
lc_setup
if [ "${LOWCODE_SKIP_INSTALL:-0}" != 1 ]; then
    lc_install_extension "${LOWCODE_PROFILE:-release}"
fi

[ "${LOWCODE_REGRESS_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
lc_cluster_start "${LOWCODE_CLUSTER:-test}"

# pg_regress runs as postgres: give it a copy of the test directory and an
# output directory it can write.
work="$LC_DIR/regress"
rm -rf "$work"
mkdir -p "$work/out"
cp -r "$regress_dir" "$work/in"
mkdir -p "$work/in/expected"
chown -R "$PG_OS_USER:" "$work"

rm -rf "$saved"

passed=0
failed=0
failed_names=()
for t in "${tests[@]}"; do
    no_expected=0
    if [ ! -f "$regress_dir/expected/$t.out" ]; then
        # Let pg_regress diff against an empty file so the whole output is
        # kept in results/$t.out for review; the test counts as failed.
        no_expected=1
        lc_as_pg touch "$work/in/expected/$t.out"
    fi
    load=()
    if [ -n "$extension" ] && ! lc_sql_creates_extension "$regress_dir/sql/$t.sql"; then
        load=(--load-extension="$extension")
    fi
    out="$work/out/$t"
    lc_as_pg mkdir -p "$out"
    rc=0
    lc_as_pg "$pg_regress_bin" \
        --bindir="$pg_bin" \
        --inputdir="$work/in" \
        --outputdir="$out" \
        --host="$LC_SOCK" --port="$LC_PORT" \
        --dbname="lc_regress_$t" \
        "${load[@]+"${load[@]}"}" \
        "$t" >"$work/$t.log" 2>&1 || rc=$?
    if [ "$rc" = 0 ] && [ "$no_expected" = 0 ]; then
        passed=$((passed + 1))
        lc_log "ok      $t"
        continue
    fi
    failed=$((failed + 1))
    failed_names+=("$t")
    mkdir -p "$saved/results"
    [ -f "$out/results/$t.out" ] && cp "$out/results/$t.out" "$saved/results/"
    if [ "$no_expected" = 1 ]; then
        lc_log "FAILED  $t (no expected/$t.out; output saved in ${saved#"$LC_ROOT"/}/results/$t.out — review, then 'make regress-accept')"
    else
        lc_log "FAILED  $t (pg_regress exit $rc)"
    fi
    if [ -s "$out/regression.diffs" ]; then
        cat "$out/regression.diffs" >>"$saved/regression.diffs"
        if [ "$no_expected" = 0 ]; then
            head -n "${LOWCODE_DIFF_LINES:-200}" "$out/regression.diffs" | sed 's/^/    /'
        fi
    else
        sed 's/^/    /' "$work/$t.log"
    fi
done

crash=0
lc_log_crash_free "$LC_LOGFILE" || crash=1

if [ "$failed" -gt 0 ] || [ "$crash" = 1 ]; then
    mkdir -p "$saved"
    cp "$LC_LOGFILE" "$saved/server.log"
    [ "$failed" -gt 0 ] && lc_log "failed tests: ${failed_names[*]}"
    [ "$crash" = 1 ] && lc_log "FAILED: the server log shows a crash (see above)"
    lc_log "details in ${saved#"$LC_ROOT"/}/ (regression.diffs, results/, server.log)"
fi
if [ "$LC_KEEP_CLUSTERS" = 1 ]; then
    lc_log "cluster left running (LOWCODE_REGRESS_KEEP=1): $(lc_connect_hint "lc_regress_${tests[0]}")"
    lc_log "stop it with: scripts/cluster.sh stop test"
else
    lc_cluster_stop
fi

echo "regress: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$crash" = 0 ]
