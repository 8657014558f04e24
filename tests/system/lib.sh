# shellcheck shell=bash
# tests/system/lib.sh — helpers shared by the system tests (tests/system/*.sh).
# Source it from a test (`source "$(dirname "$0")/lib.sh"`). Each test is self-contained:
# it starts its own clusters (as postgres, on its own non-default ports) and they are
# stopped when it exits, whatever happens. scripts/system.sh runs the tests and checks
# every server log they list in $SYS_WORK/logs for crashes; a test can also run alone:
#   bash tests/system/dump_restore.sh
#
#   sys_start NAME PORT          initdb + start a cluster "sys_NAME" on PORT + LOWCODE_PORT_OFFSET;
#                                remembers it as NAME
#   sys_psql NAME [psql args]    psql as postgres to cluster NAME (-X -q -A -t, stop on error);
#                                SQL goes on stdin or in -c, never in a file postgres must read
#   sys_val NAME DB "SQL"        the single value of a query
#   sys_expect WHAT WANT NAME DB "SQL"   fail unless the query's value is WANT
#   sys_fails WHAT STATE NAME DB "SQL"   fail unless the SQL fails with SQLSTATE STATE
#   sys_dir NAME / sys_sock NAME / sys_port NAME / sys_data NAME / sys_log NAME
#   sys_register_datadir DIR LOG a cluster made another way (pg_basebackup): stopped on
#                                exit and its log checked like the others
#   check ASSERTION...           run an assertion (sys_expect, sys_fails, a function) without
#                                stopping at its failure; `finish` then fails the test
#   fail MESSAGE / step MESSAGE / finish
# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/lib.sh"

LC_NAME="${LC_NAME:-$(basename "$0" .sh)}"
# Scratch space of this test (scripts/system.sh passes one; alone, a reachable one of our own).
if [ -z "${SYS_WORK:-}" ]; then
    SYS_WORK="$(lc_reach_dir "sys_$LC_NAME")/work"
    rm -rf "$SYS_WORK"
    mkdir -p "$SYS_WORK"
fi
: >"$SYS_WORK/logs"

declare -A SYS_DIRS=() SYS_PORTS=()

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

step() {
    printf -- '-- %s\n' "$*"
}

sys_start() {
    local name="$1" port="$2"
    LOWCODE_PGPORT="$(lc_port "$port")" lc_cluster_start "sys_$name" >/dev/null
    SYS_DIRS[$name]="$LC_DIR"
    SYS_PORTS[$name]="$LC_PORT"
    printf '%s\n' "$LC_LOGFILE" >>"$SYS_WORK/logs"
}

sys_register_datadir() {
    LC_STARTED_DATADIRS+=("$1")
    printf '%s\n' "$2" >>"$SYS_WORK/logs"
}

sys_dir() { printf '%s\n' "${SYS_DIRS[$1]}"; }
sys_sock() { printf '%s\n' "${SYS_DIRS[$1]}/sock"; }
sys_data() { printf '%s\n' "${SYS_DIRS[$1]}/data"; }
sys_log() { printf '%s\n' "${SYS_DIRS[$1]}/server.log"; }
sys_port() { printf '%s\n' "${SYS_PORTS[$1]}"; }

# sys_psql NAME [args]: PGOPTIONS in the environment is passed on (sudo drops it otherwise).
sys_psql() {
    local name="$1"
    shift
    lc_as_pg env PGOPTIONS="-c lc_messages=C ${PGOPTIONS:-}" \
        "$pg_bin/psql" -h "$(sys_sock "$name")" -p "$(sys_port "$name")" -U "$PG_OS_USER" \
        -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

sys_val() {
    sys_psql "$1" -d "$2" -c "$3"
}

sys_expect() {
    local what="$1" want="$2" name="$3" db="$4" query="$5" got
    got="$(sys_val "$name" "$db" "$query")" || fail "$what: query failed on $name/$db: $query"
    [ "$got" = "$want" ] || fail "$what: expected '$want', got '$got' ($name/$db: $query)"
}

# sys_fails WHAT STATE NAME DB "SQL" — the statement must fail with SQLSTATE STATE.
sys_fails() {
    local what="$1" state="$2" name="$3" db="$4" query="$5" out
    out="$(sys_psql "$name" -d "$db" -v VERBOSITY=sqlstate -c "$query" 2>&1)" &&
        fail "$what: succeeded, expected SQLSTATE $state ($query)"
    case "$out" in
        *"ERROR:  $state"*) ;;
        *) fail "$what: expected SQLSTATE $state, got: $out" ;;
    esac
}

SYS_FAILED=()
check() {
    ( "$@" ) || SYS_FAILED+=("$2")
}

# finish — end of a test: fail if a check failed.
finish() {
    if [ "${#SYS_FAILED[@]}" -gt 0 ]; then
        printf 'FAIL: %s check(s) failed:\n' "${#SYS_FAILED[@]}" >&2
        printf '    %s\n' "${SYS_FAILED[@]}" >&2
        exit 1
    fi
}
