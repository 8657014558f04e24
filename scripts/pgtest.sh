#!/usr/bin/env bash
# scripts/pgtest.sh — run the #[pg_test] tests: `cargo pgrx test pgNN` (NN: PG_CONFIG's major).
#
#   scripts/pgtest.sh [TESTNAME]
#
# We run as root, so pgrx is told to run Postgres as the `postgres` user
# (CARGO_PGRX_TEST_RUNAS, which makes it use `sudo -u postgres` for mkdir,
# initdb, pg_ctl and `cargo pgrx install --sudo`) with its data under a
# postgres-writable directory (CARGO_PGRX_TEST_PGDATA).
#
# How pgrx 0.18 uses that directory: it creates <dir>/NN-<pid> itself (as
# postgres, `mkdir -p`), always runs initdb into that new subdirectory, puts
# the unix socket in <dir> itself, and removes the subdirectory after the
# run. So <dir> must exist, be writable by postgres and have a short path;
# it does not need to be empty. We stop and remove leftovers of crashed
# runs before and after.
#
# Root-only checkouts (e.g. /root/xyz, mode 700): the built .so and SQL are
# copied by `cargo pgrx install` into PostgreSQL's own directories
# ($(pg_config --pkglibdir), $(pg_config --sharedir)/extension), which
# postgres can read, so target/ may stay where it is. pg_ctl started via sudo
# from such a cwd prints "could not change directory to ...: Permission
# denied" but works (checked with PostgreSQL 15.20).
#
# Environment:
#   LOWCODE_PROFILE=release   build the test extension in release mode
#                             (default: debug, as cargo pgrx test does)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lc_setup
lc_require_pg_user

pgdata="$(lc_reach_dir pgtest)"

# Stop and remove clusters left behind by a crashed earlier run.
cleanup_pgdata() {
    local d
    for d in "$pgdata"/"$pg_major"-*; do
        [ -d "$d" ] || continue
        lc_stop_datadir "$d" || true
        rm -rf "$d"
    done
}
cleanup_pgdata
# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; cleanup_pgdata; exit $rc' EXIT

export CARGO_PGRX_TEST_RUNAS="$PG_OS_USER"
export CARGO_PGRX_TEST_PGDATA="$pgdata"

args=("pg$pg_major")
[ "${LOWCODE_PROFILE:-debug}" = release ] && args+=(--release)
[ $# -gt 0 ] && args+=("$@")

lc_log "cargo pgrx test ${args[*]} (runas $PG_OS_USER, pgdata $pgdata)"
cd "$LC_ROOT" || exit 1
cargo pgrx test "${args[@]}" --runas "$PG_OS_USER" --pgdata "$pgdata"
