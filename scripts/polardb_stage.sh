#!/usr/bin/env bash
# scripts/polardb_stage.sh — lowcode on PolarDB for PostgreSQL 15 (PolarDB-PG 15.8.2.0): the
# polardb stage of `make test`; `make test-polardb` runs it alone.
#
#   scripts/polardb_stage.sh [STAGE...]   default: regress examples concurrency system
#
# 1. scripts/polardb.sh builds PolarDB from the vendored source tarball (once per tarball: the
#    build is cached under ~/.cache/lowcode/polardb) and copies it into
#    target/lowcode-pgpolardb/pgsql; its pg_config is the PG_CONFIG of everything below.
# 2. `cargo pgrx install --pg-config <that pg_config>` (debug unless LOWCODE_PROFILE=release)
#    in CARGO_TARGET_DIR=target/polardb-cargo, so that the normal build's pgrx bindings are
#    left alone, and with PGRX_PG_CONFIG_PATH=<that pg_config>, so that pgrx generates its
#    bindings from PolarDB's headers (PolarDB changes server structs; without it pgrx would
#    take the pg15 entry of ~/.pgrx/config.toml, Debian's PostgreSQL 15, which stays as it
#    is: nothing here runs `cargo pgrx init`).
# 3. Each stage runs with PG_CONFIG set to PolarDB's, on its own throwaway clusters (every
#    stage runs, also after one failed): pg_regress (scripts/regress.sh), the examples, the
#    concurrency tests, and every system test (scripts/system.sh: dump/restore, standby,
#    trusted install, upgrades, worker, webhooks, attacks, api_surface, and polardb_ro, a
#    PolarDB read-only node on shared storage; the stage fails unless polardb_ro really ran
#    as one). Each script checks its server logs for crashes.
# A summary gives each stage's result, test counts and time.
#
# Clusters are made with initdb --wal-segsize=16 (LOWCODE_INITDB_ARGS): PolarDB's default WAL
# segment is 1 GB, which initdb zero-fills, so each of the stage's ~16 clusters would take
# 1.1 GB of disk (14 GB in target/, the shared-storage test alone 3.8 GB) and initdb 4 s
# instead of 0.6; lowcode does not depend on the segment size. LOWCODE_INITDB_ARGS= (empty)
# runs them with PolarDB's default (every test passes so too).
#
# Environment:
#   LOWCODE_POLARDB_STAGES="regress examples concurrency system"   the stages (or as arguments)
#   LOWCODE_PROFILE=release    build release (default debug: faster to build; the suites do not
#                              measure speed, and the worker's lateness bound holds in debug)
#   LOWCODE_INITDB_ARGS        extra initdb arguments (default --wal-segsize=16)
#   LOWCODE_POLARDB_TARBALL, LOWCODE_POLARDB_CACHE, LOWCODE_POLARDB_JOBS   see scripts/polardb.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ $# -gt 0 ]; then
    stages=("$@")
else
    read -r -a stages <<<"${LOWCODE_POLARDB_STAGES:-regress examples concurrency system}"
fi
for s in "${stages[@]}"; do
    case "$s" in
        regress | examples | concurrency | system) ;;
        *) lc_die "no such stage: $s (regress, examples, concurrency, system)" ;;
    esac
done
profile="${LOWCODE_PROFILE:-debug}"
export LOWCODE_INITDB_ARGS="${LOWCODE_INITDB_ARGS---wal-segsize=16}"

lc_setup
start=$SECONDS
logs="$LC_ROOT/target/polardb-logs"
rm -rf "$logs"
mkdir -p "$logs"

# --- PolarDB ------------------------------------------------------------------------------
t=$SECONDS
pgc="$(bash "$LC_ROOT/scripts/polardb.sh")" || lc_die "no PolarDB (scripts/polardb.sh failed)"
version="$(bash "$LC_ROOT/scripts/polardb.sh" --version)"
polardb_time=$((SECONDS - t))
lc_log "$version ($pgc, ${polardb_time}s)"

# --- lowcode against it -----------------------------------------------------------------------
t=$SECONDS
flags=()
[ "$profile" = debug ] || flags+=(--release)
lc_log "PGRX_PG_CONFIG_PATH=$pgc CARGO_TARGET_DIR=target/polardb-cargo cargo pgrx install --pg-config $pgc ${flags[*]-}"
if ! (cd "$LC_ROOT" && PGRX_PG_CONFIG_PATH="$pgc" CARGO_TARGET_DIR="$LC_ROOT/target/polardb-cargo" \
    cargo pgrx install --pg-config "$pgc" "${flags[@]+"${flags[@]}"}") >"$logs/build.log" 2>&1; then
    tail -n 40 "$logs/build.log" >&2
    lc_die "cargo pgrx install into PolarDB failed (log: ${logs#"$LC_ROOT"/}/build.log)"
fi
build_time=$((SECONDS - t))
lc_log "lowcode ($profile) installed into PolarDB in ${build_time}s"

# --- the stages --------------------------------------------------------------------------------
summary=()
failed=0
for s in "${stages[@]}"; do
    t=$SECONDS
    lc_log "=== $s on PolarDB"
    rc=0
    PG_CONFIG="$pgc" LOWCODE_SKIP_SETUP=1 LOWCODE_SKIP_INSTALL=1 LOWCODE_PROFILE="$profile" \
        LOWCODE_CLUSTER=polardb LC_NAME="polardb-$s" bash "$LC_ROOT/scripts/$s.sh" 2>&1 |
        tee "$logs/$s.log" || rc=$?
    counts="$(grep -E "^$s: [0-9]+ passed, [0-9]+ failed$" "$logs/$s.log" | tail -n 1 | sed "s/^$s: //")"
    if [ "$rc" = 0 ] && [ "$s" = system ]; then
        # polardb_ro passes on any PostgreSQL (it says when it is not PolarDB); here it must
        # have tested a shared-storage RO node.
        ro_log="$(lc_reach_dir sys_polardb_ro)/work/test.log"
        if ! grep -q '^polardb_ro: ok (PolarDB shared-storage RO node)$' "$ro_log" 2>/dev/null; then
            lc_warn "system: polardb_ro did not test a PolarDB RO node (see $ro_log)"
            rc=1
        fi
    fi
    result="ok"
    [ "$rc" = 0 ] || { result="FAILED"; failed=$((failed + 1)); }
    summary+=("$(printf '%-12s %-7s %-24s %5ss' "$s" "$result" "${counts:-(no count)}" $((SECONDS - t)))")
done

echo
echo "==> polardb: $version"
printf '  %-12s %ss\n' "PolarDB" "$polardb_time" "build ($profile)" "$build_time"
printf '  %s\n' "${summary[@]}"
echo "polardb: $((${#stages[@]} - failed)) passed, $failed failed ($((SECONDS - start))s; logs in ${logs#"$LC_ROOT"/}/)"
[ "$failed" = 0 ]
