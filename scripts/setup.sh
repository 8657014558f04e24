#!/usr/bin/env bash
# scripts/setup.sh — install what lowcode needs to build and test (idempotent).
# Debian packages (PostgreSQL 15 server + dev headers, libclang, sudo),
# cargo-pgrx 0.18.0, and `cargo pgrx init` for the major version of PG_CONFIG (default the system
# PostgreSQL 15; scripts/pgdist.sh makes a private 14, 16, 17 or 18).
# Each step prints one line and is skipped when already done.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PGRX_VERSION=0.18.0
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo)

# 1. Debian packages --------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    lc_log "apt packages: already installed (${APT_PACKAGES[*]})"
else
    lc_log "apt packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. cargo-pgrx -----------------------------------------------------------------
command -v cargo >/dev/null || lc_die "cargo not found (expected in \$HOME/.cargo/bin)"
have="$(cargo pgrx --version 2>/dev/null || true)"
if [[ "$have" == *" $PGRX_VERSION" ]]; then
    lc_log "cargo-pgrx: $PGRX_VERSION already installed"
else
    lc_log "cargo-pgrx: installing $PGRX_VERSION (found: ${have:-none}; this takes several minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi

# 3. cargo pgrx init --------------------------------------------------------------
# pgrx builds for major NN with the pg_config recorded as pgNN in $PGRX_HOME/config.toml
# (`cargo pgrx init` adds or replaces only the entries it is given). The pg15 entry, once there,
# is left alone (the system PostgreSQL 15; a private 15 builds against its headers, which is the
# same ABI); any other major is pointed at PG_CONFIG when it points elsewhere.
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
# pgrx's build reads every configured pg_config: an entry whose installation is gone (a deleted
# checkout's downloaded PostgreSQL) breaks every build, so such entries are dropped first.
if [ -f "$pgrx_config" ]; then
    while IFS= read -r stale; do
        lc_log "pgrx init: dropping $stale from $pgrx_config (its pg_config no longer exists)"
        sed -i "/^[[:space:]]*${stale%%=*}[[:space:]]*=/d" "$pgrx_config"
    done < <(sed -nE 's/^[[:space:]]*(pg[0-9]+)[[:space:]]*=[[:space:]]*"(.*)".*/\1=\2/p' "$pgrx_config" |
        while IFS='=' read -r key path; do [ -x "$path" ] || printf '%s=%s\n' "$key" "$path"; done)
fi
entry="$(sed -nE "s/^[[:space:]]*pg${pg_major}[[:space:]]*=[[:space:]]*\"(.*)\".*/\1/p" "$pgrx_config" 2>/dev/null || true)"
if [ -n "$entry" ] && { [ "$pg_major" = 15 ] || [ "$entry" = "$PG_CONFIG" ]; }; then
    lc_log "pgrx init: pg$pg_major already configured in $pgrx_config ($entry)"
else
    lc_log "pgrx init: cargo pgrx init --pg$pg_major $PG_CONFIG"
    cargo pgrx init "--pg$pg_major" "$PG_CONFIG" >/dev/null
fi
