#!/usr/bin/env bash
# scripts/freeze-release.sh — freeze the install script of the current version.
#
#   scripts/freeze-release.sh [--installed] [--force]
#
# Writes sql/releases/lowcode--<version>.sql (version from Cargo.toml): the extension's
# install script exactly as pgrx generates it for this code (`cargo pgrx schema pgNN`, NN the
# major version of PG_CONFIG). A version is released once its file in sql/releases is
# committed; a released script never changes again: databases created with it are upgraded
# with update scripts (sql/lowcode--<from>--<to>.sql, written by hand, installed by `cargo pgrx
# install`), and tests/system/upgrade.sh installs the frozen script of the last release,
# updates it to the current code and compares the catalog with a fresh install.
#
# Options:
#   --installed   copy the installed $(pg_config --sharedir)/extension/lowcode--<version>.sql
#                 (written by `cargo pgrx install`) instead of running `cargo pgrx schema`
#   --force       overwrite a frozen script that differs, only while it is not committed
#                 (a committed one is released: this script refuses to rewrite it, with or
#                 without --force)
#
# The release routine (`make release` runs the checks and this script): bump the version in
# Cargo.toml, write sql/lowcode--<old>--<new>.sql (ALTER / CREATE OR REPLACE what changed),
# then, when <new> is released, run this script and commit sql/releases/lowcode--<new>.sql.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

from_installed=0
force=0
for arg in "$@"; do
    case "$arg" in
        --installed) from_installed=1 ;;
        --force) force=1 ;;
        -h | --help)
            sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) lc_die "unknown argument: $arg (see --help)" ;;
    esac
done

# The package version in Cargo.toml.
version="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' "$LC_ROOT/Cargo.toml")"
[ -n "$version" ] || lc_die "no version in $LC_ROOT/Cargo.toml"

out_dir="$LC_ROOT/sql/releases"
out="$out_dir/lowcode--$version.sql"
tmp="$(mktemp)"
trap 'rm -f "$tmp"; lc_cleanup' EXIT

if [ "$from_installed" = 1 ]; then
    src="$("$PG_CONFIG" --sharedir)/extension/lowcode--$version.sql"
    [ -f "$src" ] || lc_die "$src does not exist: run 'cargo pgrx install --pg-config $PG_CONFIG' first"
    cp "$src" "$tmp"
    lc_log "using the installed $src"
else
    lc_log "cargo pgrx schema pg$pg_major (the install script of this code)"
    (cd "$LC_ROOT" && cargo pgrx schema "pg$pg_major" --pg-config "$PG_CONFIG" -o "$tmp") >/dev/null 2>"$tmp.log" || {
        cat "$tmp.log" >&2
        rm -f "$tmp.log"
        lc_die "cargo pgrx schema failed"
    }
    rm -f "$tmp.log"
fi
[ -s "$tmp" ] || lc_die "the generated install script is empty"

# Released = committed: git knows the file at HEAD.
released=0
if git -C "$LC_ROOT" cat-file -e "HEAD:sql/releases/lowcode--$version.sql" 2>/dev/null; then
    released=1
    git -C "$LC_ROOT" diff --quiet HEAD -- "sql/releases/lowcode--$version.sql" ||
        lc_die "sql/releases/lowcode--$version.sql is released (committed) but changed in the working tree:
a released script never changes. Restore it: git checkout HEAD -- sql/releases/lowcode--$version.sql"
fi

mkdir -p "$out_dir"
if [ -f "$out" ]; then
    if cmp -s "$tmp" "$out"; then
        lc_log "$out is already frozen and unchanged"
        exit 0
    fi
    if [ "$released" = 1 ] || [ "$force" != 1 ]; then
        diff -u "$out" "$tmp" | head -n 40 >&2 || true
        if [ "$released" = 1 ]; then
            lc_die "$(basename "$out") is released (committed) and this code generates something else (diff
above). A released script never changes, --force or not: bump the version in Cargo.toml and
write sql/lowcode--$version--<new version>.sql with what changed."
        fi
        lc_die "$(basename "$out") is frozen (not yet committed) and this code generates something else
(diff above). If $version is not released, run this script again with --force; otherwise bump
the version in Cargo.toml and write sql/lowcode--$version--<new version>.sql instead."
    fi
fi
cp "$tmp" "$out"
chmod 644 "$out"
lc_log "froze $out ($(wc -l <"$out") lines)"
lc_log "next: commit it (that releases $version); for changes after this release, bump the version in Cargo.toml and write sql/lowcode--$version--<new version>.sql"
