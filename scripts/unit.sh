#!/usr/bin/env bash
# scripts/unit.sh — the module graph (scripts/modules.sh), then the pure Rust unit tests:
# `cargo test -p lowcode-core` (crates/core, the pure logic: no pgrx, no pg_config), then the
# extension's own `cargo test --lib`, without the #[pg_test] tests.
#
# #[pg_test] fns also become ordinary #[test] fns named `pg_<name>` under
# cfg(test); run by plain `cargo test` they would try to start PostgreSQL as
# root and fail. They belong to scripts/pgtest.sh, so we list the tests and
# --skip every one whose last path segment starts with `pg_`. (A pure unit
# test must therefore not be named pg_*.)
#
#   scripts/unit.sh [extra cargo test args...]
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$LC_ROOT" || exit 1
bash scripts/modules.sh
lc_log "cargo test -p lowcode-core (the pure logic, no PostgreSQL)"
cargo test -p lowcode-core "$@"
list="$(cargo test --lib "${lc_cargo_features[@]}" "$@" -- --list --format terse)"
skip=()
while IFS= read -r line; do
    name="${line%: test}"
    [ "$name" != "$line" ] || continue
    case "${name##*::}" in
        pg_*) skip+=(--skip "$name") ;;
    esac
done <<<"$list"
lc_log "cargo test --lib ${lc_cargo_features[*]} (skipping $((${#skip[@]} / 2)) #[pg_test] tests, run by scripts/pgtest.sh)"
cargo test --lib "${lc_cargo_features[@]}" "$@" -- "${skip[@]+"${skip[@]}"}"
