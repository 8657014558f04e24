#!/usr/bin/env bash
# scripts/citus.sh — Citus 13.2.2 (the distributed PostgreSQL extension) for the PostgreSQL of
# PG_CONFIG, built from the vendored source tarball and installed into that PostgreSQL; prints
# the version the installed citus.control offers.
#
#   scripts/citus.sh               build (once, cached) and install
#   scripts/citus.sh --version     the version that is installed (builds nothing)
#
# The tarball (citusdata/citus, tag v13.2.2, unchanged) is checked against the SHA256SUMS beside
# it, then built once per (tarball checksum, recipe, PostgreSQL build) into
# $LOWCODE_CITUS_CACHE/<key>/stage (default ~/.cache/lowcode/citus), with `make install
# DESTDIR=…`: the stage holds citus.so, its control and SQL files and headers under the paths
# pg_config names. Installing is copying the stage over / (nothing is built when the key is
# cached: a second run takes a second). About 6-8 minutes on two cores the first time.
#
# The recipe:
#   - src/include/pg_version_compat.h defines, for PostgreSQL < 16, a static
#     have_createdb_privilege(); Debian's PostgreSQL 15.18+ exports a function of that name, and
#     the two declarations conflict. The static one is renamed citus_have_createdb_privilege and
#     the old name #defined to it (the only change to the source).
#   - ./configure --without-libcurl (no telemetry over curl). Columnar includes zstd.h whatever
#     configure says (measured: --without-zstd fails there), so lz4 and zstd stay in.
#   - Debian packages: autoconf flex libkrb5-dev liblz4-dev libzstd-dev make gcc (only those
#     missing, only when a build is due).
#
# Citus 13.2.2 supports PostgreSQL 15, 16 and 17; any other major is refused.
#
# Environment:
#   LOWCODE_CITUS_TARBALL   the source (default <checkout>/../shared/vendor/citus-13.2.2.tar.gz;
#                           it must be listed, with its checksum, in SHA256SUMS beside it)
#   LOWCODE_CITUS_CACHE     where builds are kept (default ~/.cache/lowcode/citus)
#   LOWCODE_CITUS_JOBS      make -j (default 2)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CITUS_VERSION=13.2.2
CITUS_CONFIGURE=(--without-libcurl)
CITUS_APT=(autoconf flex libkrb5-dev liblz4-dev libzstd-dev make gcc)
CITUS_PATCH=rename-static-have_createdb_privilege

mode="${1:-}"
case "$mode" in
    "" | --version) ;;
    *) lc_die "usage: scripts/citus.sh [--version]" ;;
esac

installed_version() {
    sed -nE "s/^default_version = '([^']*)'.*/\1/p" "$("$PG_CONFIG" --sharedir)/extension/citus.control" 2>/dev/null
}
if [ "$mode" = --version ]; then
    v="$(installed_version)"
    [ -n "$v" ] || lc_die "Citus is not installed in $("$PG_CONFIG" --sharedir) (run scripts/citus.sh)"
    printf '%s\n' "$v"
    exit 0
fi

tarball="${LOWCODE_CITUS_TARBALL:-$(dirname "$LC_ROOT")/shared/vendor/citus-$CITUS_VERSION.tar.gz}"
cache="${LOWCODE_CITUS_CACHE:-$HOME/.cache/lowcode/citus}"
jobs="${LOWCODE_CITUS_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || lc_die "LOWCODE_CITUS_JOBS=$jobs is not a number"
[ -x "$PG_CONFIG" ] || lc_die "no pg_config at $PG_CONFIG"
major="$pg_major"
case "$major" in
    15 | 16 | 17) ;;
    *) lc_die "Citus $CITUS_VERSION supports PostgreSQL 15-17; $PG_CONFIG is $major" ;;
esac

# --- checksum and cache key ---------------------------------------------------------------
[ -f "$tarball" ] || lc_die "no Citus source at $tarball (LOWCODE_CITUS_TARBALL)"
got="$(lc_vendor_sha256 "$tarball")" || exit 1
# The PostgreSQL build: its version and where it installs (the stage holds absolute paths).
pg_id="$("$PG_CONFIG" --version) pkglibdir=$("$PG_CONFIG" --pkglibdir) sharedir=$("$PG_CONFIG" --sharedir)"
recipe="citus-src=$got patch=$CITUS_PATCH configure=${CITUS_CONFIGURE[*]} pg=$pg_id"
key="$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
built="$cache/$key"
marker=.lowcode-citus
so="$("$PG_CONFIG" --pkglibdir)/citus.so"

if [ -f "$so" ] && [ "$(cat "$("$PG_CONFIG" --pkglibdir)/$marker" 2>/dev/null)" = "$recipe" ]; then
    installed_version
    exit 0
fi

# --- build into the cache (once per key) -----------------------------------------------
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ "$(cat "$built/$marker" 2>/dev/null)" != "$recipe" ]; then
    lc_apt_ensure "the Citus build" "${CITUS_APT[@]}"

    start=$SECONDS
    rm -rf "${built:?}"
    mkdir -p "$built/src"
    src="$built/src"
    log="$built/build.log"
    lc_log "building Citus $CITUS_VERSION for $("$PG_CONFIG" --version) into $built (make -j$jobs; log: $log)" >&2
    tar -xzf "$tarball" -C "$src" --strip-components=1 || lc_die "cannot untar $tarball"
    compat="$src/src/include/pg_version_compat.h"
    grep -q '^have_createdb_privilege(void)$' "$compat" ||
        lc_die "$compat has no static have_createdb_privilege(void) to rename (another Citus?)"
    sed -i -e 's/^have_createdb_privilege(void)$/citus_have_createdb_privilege(void)/' "$compat"
    # The old name, for the callers, right after the renamed definition's closing brace.
    awk '{ print } /^citus_have_createdb_privilege\(void\)$/ { inside = 1 }
         inside && /^}$/ { print "#define have_createdb_privilege() citus_have_createdb_privilege()"; inside = 0 }' \
        "$compat" >"$compat.new" && mv "$compat.new" "$compat"
    grep -q '^#define have_createdb_privilege() citus_have_createdb_privilege()$' "$compat" ||
        lc_die "patching $compat failed"
    build() {
        unset MAKELEVEL MAKEFLAGS MFLAGS
        cd "$src" &&
            PG_CONFIG="$PG_CONFIG" ./configure "${CITUS_CONFIGURE[@]}" &&
            make -j"$jobs" &&
            make install DESTDIR="$built/stage"
    }
    if ! (build) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        lc_die "the Citus build failed (whole log: $log)"
    fi
    rm -rf "$src"
    [ -f "$built/stage$so" ] || lc_die "the Citus build left no $built/stage$so"
    echo "$recipe" >"$built/$marker"
    lc_log "Citus built in $((SECONDS - start))s" >&2
fi
flock -u 9

# --- install: the stage over / -----------------------------------------------------------
lc_log "installing Citus $CITUS_VERSION into $("$PG_CONFIG" --pkglibdir)" >&2
cp -a "$built/stage/." / || lc_die "cannot copy $built/stage into /"
cp "$built/$marker" "$("$PG_CONFIG" --pkglibdir)/$marker"
v="$(installed_version)"
[[ "$v" == "${CITUS_VERSION%.*}"* ]] ||
    lc_die "the installed citus.control offers '$v', expected $CITUS_VERSION"
printf '%s\n' "$v"
