#!/usr/bin/env bash
# scripts/release.sh — `make release`: check that the version is the same everywhere and that
# the upgrade chain is complete, then freeze the install script of this version
# (scripts/freeze-release.sh, which refuses to rewrite a released script).
#
#   scripts/release.sh            check, then freeze
#   scripts/release.sh --check    check only (nothing is written)
#
# Checks (each failure is listed; exit 1 if any):
#   - Cargo.toml's package version V is the one in Cargo.lock, and lowcode.control's
#     default_version is V or '@CARGO_VERSION@' (which pgrx replaces by V);
#   - every released install script (sql/releases/lowcode--R.sql committed in git) is
#     unchanged in the working tree, and no release is newer than V;
#   - the upgrade chain: the releases R1 < R2 < ... < Rk, then V (if not released yet), are
#     joined by update scripts sql/lowcode--Ri--Ri+1.sql, and there is no other update script
#     (none from or to a version that was never released, like a no-op 0.1.1);
#   - every update script starts with the \echo ... \quit guard.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_only=0
case "${1:-}" in
    --check) check_only=1 ;;
    "") ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) lc_die "unknown argument: $1 (see --help)" ;;
esac

problems=()
problem() { problems+=("$*"); }

version="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' "$LC_ROOT/Cargo.toml")"
[ -n "$version" ] || lc_die "no version in Cargo.toml"
lc_log "version $version (Cargo.toml)"

# Cargo.lock and the control file.
locked="$(awk '/^name = "lowcode"$/ { getline; gsub(/.*= *"|".*/, ""); print; exit }' "$LC_ROOT/Cargo.lock" 2>/dev/null || true)"
[ "$locked" = "$version" ] || problem "Cargo.lock has lowcode ${locked:-(none)}, Cargo.toml $version (run cargo update -p lowcode)"
control_version="$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" "$LC_ROOT/lowcode.control")"
case "$control_version" in
    "$version" | "@CARGO_VERSION@") ;;
    *) problem "lowcode.control has default_version '$control_version', Cargo.toml $version" ;;
esac

# Released scripts: committed, unchanged, not newer than V.
releases=()
while IFS= read -r f; do
    r="$(basename "$f" .sql)"
    r="${r#lowcode--}"
    if ! git -C "$LC_ROOT" cat-file -e "HEAD:sql/releases/lowcode--$r.sql" 2>/dev/null; then
        [ "$r" = "$version" ] ||
            problem "sql/releases/lowcode--$r.sql is not committed, and $r is not the version being released ($version)"
        continue
    fi
    git -C "$LC_ROOT" diff --quiet HEAD -- "sql/releases/lowcode--$r.sql" ||
        problem "sql/releases/lowcode--$r.sql is released but changed in the working tree (git checkout HEAD -- it)"
    if [ "$r" != "$version" ] && [ "$(printf '%s\n%s\n' "$r" "$version" | sort -V | tail -n 1)" = "$r" ]; then
        problem "release $r is newer than the version in Cargo.toml ($version)"
    fi
    releases+=("$r")
done < <(find "$LC_ROOT/sql/releases" -maxdepth 1 -name 'lowcode--*.sql' 2>/dev/null | sort -V)
lc_log "released: ${releases[*]:-(none)}"

# The chain: consecutive releases, then the version being released.
chain=()
while IFS= read -r r; do chain+=("$r"); done < <(printf '%s\n' "${releases[@]+"${releases[@]}"}" "$version" | sort -Vu)
declare -A wanted=()
for ((i = 1; i < ${#chain[@]}; i++)); do
    wanted["lowcode--${chain[i - 1]}--${chain[i]}.sql"]=1
done
for w in "${!wanted[@]}"; do
    [ -f "$LC_ROOT/sql/$w" ] || problem "the upgrade chain misses sql/$w"
done
shopt -s nullglob
for f in "$LC_ROOT"/sql/lowcode--*--*.sql; do
    b="$(basename "$f")"
    if [ -z "${wanted[$b]:-}" ]; then
        problem "sql/$b is not a step of the upgrade chain ${chain[*]} (a version that was never released?)"
    fi
    grep -qE '^\\echo .*\\quit' "$f" || problem "sql/$b lacks the \\echo ... \\quit guard against running it with psql"
done
shopt -u nullglob
lc_log "upgrade chain: ${chain[*]}"

if [ "${#problems[@]}" -gt 0 ]; then
    for p in "${problems[@]}"; do printf '%s: ERROR: %s\n' "$LC_NAME" "$p" >&2; done
    lc_die "${#problems[@]} problem(s): not releasing $version"
fi
lc_log "versions agree and the upgrade chain is complete"
[ "$check_only" = 1 ] && exit 0
bash "$LC_ROOT/scripts/freeze-release.sh"
