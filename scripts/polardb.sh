#!/usr/bin/env bash
# scripts/polardb.sh — a private PolarDB for PostgreSQL 15 (PolarDB-PG 15.8.2.0, "PostgreSQL 15.8
# (PolarDB 15.8.2.0 build unknown)"), built from the vendored source tarball; prints the path of
# its pg_config.
#
#   scripts/polardb.sh             e.g. PG_CONFIG="$(scripts/polardb.sh)"
#   scripts/polardb.sh --version   the version the built server reports
#
# The tarball (ApsaraDB PolarDB-for-PostgreSQL, branch POLARDB_15_STABLE, commit ade7f2d) is
# checked against the SHA256SUMS beside it, then built once per tarball checksum:
#   ./configure --enable-minimal --without-icu --with-uuid=e2fs --with-segsize=128
#               --disable-rpath (binaries find lib/ through $ORIGIN/../lib instead)
#   make -j$LOWCODE_POLARDB_JOBS; make install; make -C external install;
#   make -C contrib/{dblink,amcheck,pg_stat_statements} install   (the tests use the first two,
#                                                                  scripts/bench.sh the third)
# and the installed tree is kept in $LOWCODE_POLARDB_CACHE/<sha256>/pgsql (default
# ~/.cache/lowcode/polardb; about 2-3 minutes on two cores, then never again for that
# tarball). The Debian packages the build needs (bison, flex, uuid-dev, libreadline-dev,
# zlib1g-dev, make, gcc, perl) are installed with apt first, only those missing and only when a
# build is due.
#
# The cached tree is copied into a directory the postgres user can read:
# <checkout>/target/lowcode-pgpolardb/pgsql (or a postgres-reachable fallback, see lc_reach_dir
# in scripts/lib.sh). Each checkout gets its own copy, because `cargo pgrx install` writes
# lowcode into it; nothing is built or copied when the right one is already there. Like
# PostgreSQL, the tree is relocatable (pg_config reports paths relative to where it sits); its
# servers run with LD_LIBRARY_PATH set to its lib directory (scripts/lib.sh does that for any
# PG_CONFIG outside /usr).
#
# Environment:
#   LOWCODE_POLARDB_TARBALL   the source (default <checkout>/../shared/vendor/polardb-pg-15.tar.gz;
#                             it must be listed, with its checksum, in SHA256SUMS beside it)
#   LOWCODE_POLARDB_CACHE     where built trees are kept (default ~/.cache/lowcode/polardb)
#   LOWCODE_POLARDB_JOBS      make -j (default 2)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The build recipe; a change here is a new cache entry (the marker holds it with the checksum).
POLARDB_CONFIGURE=(--enable-minimal --without-icu --with-uuid=e2fs --with-segsize=128 --disable-rpath)
POLARDB_CONTRIB=(dblink amcheck pg_stat_statements)
POLARDB_APT=(bison flex uuid-dev libreadline-dev zlib1g-dev make gcc perl)
POLARDB_EXPECT="PolarDB 15.8.2.0"

mode="${1:-}"
case "$mode" in
    "" | --version) ;;
    *) lc_die "usage: scripts/polardb.sh [--version]" ;;
esac
tarball="${LOWCODE_POLARDB_TARBALL:-$(dirname "$LC_ROOT")/shared/vendor/polardb-pg-15.tar.gz}"
cache="${LOWCODE_POLARDB_CACHE:-$HOME/.cache/lowcode/polardb}"
jobs="${LOWCODE_POLARDB_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || lc_die "LOWCODE_POLARDB_JOBS=$jobs is not a number"

# The version string of the build ("PostgreSQL 15.8 (PolarDB 15.8.2.0 build unknown) on ..."),
# as version() reports it (pg_config --version says only "PostgreSQL 15.8").
polardb_version() {
    sed -nE 's/^#define PG_VERSION_STR "(.*)"$/\1/p' "$1/include/server/pg_config.h"
}

# --- checksum ---------------------------------------------------------------------------
[ -f "$tarball" ] || lc_die "no PolarDB source at $tarball (LOWCODE_POLARDB_TARBALL)"
got="$(lc_vendor_sha256 "$tarball")" || exit 1
recipe="polardb-src=$got configure=${POLARDB_CONFIGURE[*]} contrib=${POLARDB_CONTRIB[*]}"

id "$PG_OS_USER" >/dev/null 2>&1 || lc_die "OS user '$PG_OS_USER' does not exist (run scripts/setup.sh)"
dest="$(lc_reach_dir pgpolardb)"
pg_config="$dest/pgsql/bin/pg_config"
marker=.lowcode-polardb
answer() {
    if [ "$mode" = --version ]; then polardb_version "$dest/pgsql"; else printf '%s\n' "$pg_config"; fi
}
if [ -x "$pg_config" ] && [ "$(cat "$dest/pgsql/$marker" 2>/dev/null)" = "$recipe" ]; then
    answer
    exit 0
fi

# --- build into the cache (once per checksum and recipe) -----------------------------
mkdir -p "$cache"
built="$cache/$got/pgsql"
# One build at a time, also across checkouts sharing the cache.
exec 9>"$cache/.lock"
flock 9
if [ "$(cat "$built/$marker" 2>/dev/null)" != "$recipe" ]; then
    lc_apt_ensure "the PolarDB build" "${POLARDB_APT[@]}"

    start=$SECONDS
    rm -rf "${cache:?}/${got:?}"
    mkdir -p "$cache/$got"
    src="$cache/$got/src"
    log="$cache/$got/build.log"
    mkdir -p "$src"
    lc_log "building PolarDB from $(basename "$tarball") into $built (make -j$jobs; log: $log)" >&2
    tar -xzf "$tarball" -C "$src" --strip-components=1 || lc_die "cannot untar $tarball"
    build() {
        # GIT_DIR: configure names the build after `git rev-parse HEAD`; the tarball has no
        # git, so "build unknown" whatever directory the cache sits in.
        export GIT_DIR=/nonexistent
        # Run from `make test`, the environment says MAKELEVEL=1: PostgreSQL's top-level make
        # would then take itself for a sub-make and skip its generated headers
        # (utils/errcodes.h: "No such file or directory"). This build is a top-level one.
        unset MAKELEVEL MAKEFLAGS MFLAGS
        cd "$src" &&
            # $ORIGIN survives configure's eval and make ($$) inside the single quotes.
            ./configure "${POLARDB_CONFIGURE[@]}" --prefix="$built" \
                LDFLAGS="-Wl,-rpath,'\$\$ORIGIN/../lib'" &&
            make -j"$jobs" &&
            make install &&
            make -C external -j"$jobs" install &&
            for c in "${POLARDB_CONTRIB[@]}"; do make -C "contrib/$c" -j"$jobs" install || return 1; done
    }
    if ! (build) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        lc_die "the PolarDB build failed (whole log: $log)"
    fi
    rm -rf "$src"
    [ -x "$built/bin/pg_config" ] || lc_die "the PolarDB build left no $built/bin/pg_config"
    echo "$recipe" >"$built/$marker"
    lc_log "PolarDB built in $((SECONDS - start))s: $(polardb_version "$built")" >&2
fi
flock -u 9

# --- copy into the checkout ------------------------------------------------------------
lc_log "copying the PolarDB build into $dest/pgsql" >&2
rm -rf "$dest/pgsql" "$dest/pgsql.new"
cp -a "$built" "$dest/pgsql.new"
chmod -R a+rX "$dest/pgsql.new"
mv "$dest/pgsql.new" "$dest/pgsql"
v="$("$pg_config" --version)"
[[ "$v" == "PostgreSQL 15."* ]] || lc_die "$pg_config says '$v', expected PostgreSQL 15"
full="$(polardb_version "$dest/pgsql")"
[[ "$full" == *"$POLARDB_EXPECT"* ]] || lc_die "$dest/pgsql is not $POLARDB_EXPECT (it reports: $full)"
lc_log "$full in $dest/pgsql" >&2
answer
