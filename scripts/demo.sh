#!/usr/bin/env bash
# scripts/demo.sh — show lowcode working: install the extension (release),
# start a throwaway cluster (port 28816), create database lowcode_demo and run
# examples/inspection.sql with psql echoing every statement and its result.
#
# Environment:
#   LOWCODE_DEMO_EXTRA="a.sql b.sql"  more examples/*.sql files to run after
#   LOWCODE_DEMO_KEEP=1               leave the cluster running afterwards
#   LOWCODE_SKIP_INSTALL=1            don't run `cargo pgrx install` first
#   LOWCODE_PGPORT                    cluster port
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

examples="$LC_ROOT/examples"
files=(inspection.sql)
for f in ${LOWCODE_DEMO_EXTRA:-}; do
    files+=("$(basename "$f")")
done
for f in "${files[@]}"; do
    [ -f "$examples/$f" ] || lc_die "missing example: examples/$f"
done

lc_setup
if [ "${LOWCODE_SKIP_INSTALL:-0}" != 1 ]; then
    lc_install_extension release
fi

[ "${LOWCODE_DEMO_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
lc_cluster_start demo

# psql runs as postgres: give it a readable copy of the examples.
copy="$LC_DIR/examples"
rm -rf "$copy"
cp -r "$examples" "$copy"
chown -R "$PG_OS_USER:" "$copy"

lc_as_pg "$pg_bin/createdb" -h "$LC_SOCK" -p "$LC_PORT" lowcode_demo
if ! lc_sql_creates_extension "$examples/${files[0]}"; then
    lc_psql -q -d lowcode_demo -c 'CREATE EXTENSION IF NOT EXISTS lowcode'
fi

for f in "${files[@]}"; do
    echo
    echo "==================== examples/$f ===================="
    lc_psql -d lowcode_demo --echo-all -f "$copy/$f"
done
echo

lc_log_crash_free "$LC_LOGFILE"
if [ "$LC_KEEP_CLUSTERS" = 1 ]; then
    lc_log "cluster left running; connect with: $(lc_connect_hint lowcode_demo)"
    lc_log "stop it with: scripts/cluster.sh stop demo"
else
    lc_cluster_stop
    lc_log "done (LOWCODE_DEMO_KEEP=1 leaves the cluster running to explore)"
fi
