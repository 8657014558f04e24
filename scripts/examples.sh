#!/usr/bin/env bash
# scripts/examples.sh — run the example apps in examples/*.sql and check that each one passes.
#
#   scripts/examples.sh              every examples/*.sql, sorted
#   scripts/examples.sh a b.sql      only the named examples
#
# Each example checks its own results (a DO block raises when an outcome is wrong), so an
# example passes when psql runs it to the end with ON_ERROR_STOP. Every example runs in its
# own fresh database `lc_example_<name>` on a throwaway cluster (purpose `examples`, run as the
# postgres user, port 28819 unless LOWCODE_PGPORT is set). psql's output (statements echoed)
# goes to target/examples-logs/<name>.log; the tail of a failing one is printed. Last line:
# `examples: N passed, N failed`; exit status 0 only when none failed and the server did not
# crash.
#
# The extension must already be installed (make test installs it in an earlier stage).
#
# Environment:
#   LOWCODE_INSTALL=1        run `cargo pgrx install` first (LOWCODE_PROFILE=debug for a debug build)
#   LOWCODE_EXAMPLES_KEEP=1  leave the cluster running afterwards
#   LOWCODE_PGPORT           cluster port (default 28819 + LOWCODE_PORT_OFFSET)
#   LOWCODE_TAIL_LINES       lines of a failing example's log to print (default 40)
#   LOWCODE_EXAMPLE_TIMEOUT  seconds one example may take (default 300)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

examples_dir="$LC_ROOT/examples"
logs="$LC_ROOT/target/examples-logs"
export LOWCODE_PGPORT="${LOWCODE_PGPORT:-$(lc_port 28819)}"

# --- which examples ---------------------------------------------------------------
names=()
if [ $# -gt 0 ]; then
    for e in "$@"; do
        e="$(basename "$e" .sql)"
        [ -f "$examples_dir/$e.sql" ] || lc_die "no such example: examples/$e.sql"
        names+=("$e")
    done
else
    while IFS= read -r f; do
        names+=("$(basename "$f" .sql)")
    done < <(find "$examples_dir" -maxdepth 1 -name '*.sql' -type f | LC_ALL=C sort)
fi
[ "${#names[@]}" -gt 0 ] || lc_die "no examples in $examples_dir"
for e in "${names[@]}"; do
    # The name becomes part of a database name.
    [[ "$e" =~ ^[a-z][a-z0-9_]*$ ]] || lc_die "example names are lowercase letters, digits and _: examples/$e.sql"
done

# --- install (only when asked) + cluster ------------------------------------------
if [ "${LOWCODE_INSTALL:-0}" = 1 ]; then
    lc_setup
    lc_install_extension "${LOWCODE_PROFILE:-release}"
fi
[ -f "$("$PG_CONFIG" --sharedir)/extension/lowcode.control" ] ||
    lc_die "the lowcode extension is not installed (run 'make install', or set LOWCODE_INSTALL=1)"

[ "${LOWCODE_EXAMPLES_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
lc_cluster_start examples

# psql runs as postgres: give it a readable copy of the examples.
copy="$LC_DIR/examples"
rm -rf "$copy"
cp -r "$examples_dir" "$copy"
chown -R "$PG_OS_USER:" "$copy"
rm -rf "$logs"
mkdir -p "$logs"

# --- run ----------------------------------------------------------------------------
limit="${LOWCODE_EXAMPLE_TIMEOUT:-300}"
passed=0
failed=0
failed_names=()
for e in "${names[@]}"; do
    db="lc_example_$e"
    log="$logs/$e.log"
    rc=0
    {
        lc_as_pg "$pg_bin/createdb" -h "$LC_SOCK" -p "$LC_PORT" "$db" &&
            lc_as_pg timeout "$limit" "$pg_bin/psql" -h "$LC_SOCK" -p "$LC_PORT" -X \
                -v ON_ERROR_STOP=1 -d "$db" --echo-all -f "$copy/$e.sql"
    } >"$log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        lc_log "ok      $e"
    else
        failed=$((failed + 1))
        failed_names+=("$e")
        why="psql exit $rc"
        [ "$rc" = 124 ] && why="timed out after ${limit}s"
        lc_log "FAILED  $e ($why; log: ${log#"$LC_ROOT"/})"
        tail -n "${LOWCODE_TAIL_LINES:-40}" "$log" | sed 's/^/    /'
    fi
done

crash=0
lc_log_crash_free "$LC_LOGFILE" || crash=1
if [ "$crash" = 1 ]; then
    cp "$LC_LOGFILE" "$logs/server.log"
    lc_log "FAILED: the server log shows a crash (copy in ${logs#"$LC_ROOT"/}/server.log)"
fi
[ "$failed" -gt 0 ] && lc_log "failed examples: ${failed_names[*]}"

if [ "$LC_KEEP_CLUSTERS" = 1 ]; then
    lc_log "cluster left running (LOWCODE_EXAMPLES_KEEP=1): $(lc_connect_hint "lc_example_${names[0]}")"
    lc_log "stop it with: scripts/cluster.sh stop examples"
else
    lc_cluster_stop
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$crash" = 0 ]
