#!/usr/bin/env bash
# scripts/browser.sh — browser tests of the web example (examples/web): forms and a task inbox
# rendered from the database, driven in headless Chromium by Playwright.
#
#   scripts/browser.sh              every test in tests/browser/test_web.py
#   scripts/browser.sh a b          only the named tests (see the list at the end of that file)
#
# What it does:
#   1. makes sure the tools are there, installing only what is missing: Debian's chromium and
#      fonts-wqy-zenhei (Chinese glyphs for the zh-CN screenshots), and nodejs/npm, with apt; a
#      Python venv in target/browser-venv with tests/browser/requirements.txt (Starlette,
#      uvicorn, psycopg 3, Playwright) from PyPI; examples/web/node_modules from the committed
#      package-lock.json (npm ci). The venv and node_modules are kept and reinstalled only when
#      their requirements or lock file change. Playwright drives the SYSTEM chromium
#      (executable_path); it never downloads a browser (no `playwright install`).
#   2. builds the page bundle (esbuild, examples/web/static/app.js; not committed);
#   3. starts a throwaway cluster (as postgres, port 29580 + LOWCODE_PORT_OFFSET), creates the
#      example app in database `inspection` (examples/web/app.sql) and starts the example server
#      (examples/web/server.py) on 127.0.0.1, port 29581 + LOWCODE_PORT_OFFSET, as role lowcode_web;
#   4. runs tests/browser/test_web.py: a form filled in the author's field order, client errors,
#      the database's errors on the same fields with client validation off (nested objects and
#      array items too), a record and its workflow task, two users claiming one task at the same
#      moment (exactly one wins), a stale page refused, the form in zh-CN, forms of drafts 07,
#      2019-09 and 2020-12 with registered $refs. Screenshots (and the server's log) go to
#      target/browser-artifacts/.
# Last line: `browser: N passed, N failed`. The cluster and the server are stopped at the end,
# also when something fails.
#
# It uses the extension as installed for PG_CONFIG (make test installs it in an earlier stage;
# it never builds it).
#
# Environment:
#   LOWCODE_INSTALL=1          run `cargo pgrx install` first (LOWCODE_PROFILE=debug for a debug build)
#   LOWCODE_BROWSER_PORT       the cluster's port (default 29580 + LOWCODE_PORT_OFFSET); the
#                              example server listens on the next one
#   LOWCODE_BROWSER_KEEP=1     leave the cluster and the server running afterwards (a look by hand)
#   LOWCODE_BROWSER_TIMEOUT    seconds the tests may take together (default 300)
#   LOWCODE_BROWSER_NO_APT=1   never call apt-get (fail instead when something is missing)
#   CHROMIUM                   the browser binary (default /usr/bin/chromium)
#   LOWCODE_PYTHON             the Python that makes the venv (default python3)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

web="$LC_ROOT/examples/web"
venv="$LC_ROOT/target/browser-venv"
artifacts="$LC_ROOT/target/browser-artifacts"
chromium="${CHROMIUM:-/usr/bin/chromium}"
python="${LOWCODE_PYTHON:-python3}"
pg_port="${LOWCODE_BROWSER_PORT:-$(lc_port 29580)}"
web_port=$((pg_port + 1))
[ "$web_port" -le 65535 ] || lc_die "port $web_port is above 65535"
started=$SECONDS

# --- tools ----------------------------------------------------------------------------------------
apt_updated=0
apt_install() { # apt_install PACKAGE... — Debian packages, installed only when asked for
    [ "${LOWCODE_BROWSER_NO_APT:-0}" != 1 ] || lc_die "missing: $* (LOWCODE_BROWSER_NO_APT=1)"
    [ "$(id -u)" = 0 ] || lc_die "missing: $* (install them: apt-get install $*)"
    if [ "$apt_updated" = 0 ]; then
        lc_log "apt-get update"
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
    lc_log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
[ -x "$chromium" ] || missing+=(chromium)
have_deb fonts-wqy-zenhei || missing+=(fonts-wqy-zenhei)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
"$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
[ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"
[ -x "$chromium" ] || lc_die "no browser at $chromium (CHROMIUM)"

# The venv: made again when the requirements change (a stamp holds their hash).
req_hash="$(cat "$LC_ROOT/tests/browser/requirements.txt" "$web/requirements.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$venv/.lowcode-stamp" 2>/dev/null)" != "$req_hash" ] || [ ! -x "$venv/bin/python" ]; then
    lc_log "making the venv $venv (pip install -r tests/browser/requirements.txt)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$LC_ROOT/tests/browser/requirements.txt"
    echo "$req_hash" >"$venv/.lowcode-stamp"
fi

# node_modules: npm ci again when the lock file changes.
lock_hash="$(sha256sum "$web/package-lock.json" | cut -c1-16)"
if [ "$(cat "$web/node_modules/.lowcode-stamp" 2>/dev/null)" != "$lock_hash" ]; then
    lc_log "npm ci in examples/web"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" >"$web/node_modules/.lowcode-stamp"
fi
lc_log "building the page bundle (esbuild)"
(cd "$web" && npm run --silent build)

# --- the extension, the cluster, the app ---------------------------------------------------------
lc_require_pg_user
if [ "${LOWCODE_INSTALL:-0}" = 1 ]; then
    lc_setup
    lc_install_extension "${LOWCODE_PROFILE:-release}"
fi
[ -f "$("$PG_CONFIG" --sharedir)/extension/lowcode.control" ] ||
    lc_die "the lowcode extension is not installed (run 'make install', or set LOWCODE_INSTALL=1)"

rm -rf "$artifacts"
mkdir -p "$artifacts"

# Stop the example server, then the cluster (lc_cleanup). The script's exit status stays what it
# was: the trap does not exit.
server_pid=""
trap 'if [ "${LOWCODE_BROWSER_KEEP:-0}" != 1 ] && [ -n "$server_pid" ]; then
          kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true
      fi; lc_cleanup || true' EXIT

[ "${LOWCODE_BROWSER_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
LOWCODE_PGPORT="$pg_port" lc_cluster_start browser
lc_as_pg "$pg_bin/createdb" -h "$LC_SOCK" -p "$LC_PORT" inspection
lc_log "creating the example app (examples/web/app.sql)"
lc_psql -q -d inspection -v ON_ERROR_STOP=1 <"$web/app.sql" >"$artifacts/app.log" 2>&1 || {
    cat "$artifacts/app.log" >&2
    lc_die "examples/web/app.sql failed (log: ${artifacts#"$LC_ROOT"/}/app.log)"
}

# --- the example server -------------------------------------------------------------------------
export LOWCODE_WEB_DSN="host=$LC_SOCK port=$LC_PORT dbname=inspection user=lowcode_web"
export LOWCODE_WEB_PORT="$web_port" LOWCODE_WEB_HOST=127.0.0.1 LOWCODE_WEB_APP=inspection
export LOWCODE_WEB_LOG=warning
"$venv/bin/python" "$web/server.py" >"$artifacts/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $web_port), 0.2)" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$artifacts/server.log" >&2; lc_die "the example server exited"; }
    sleep 0.1
done
lc_log "example server on http://127.0.0.1:$web_port (log: ${artifacts#"$LC_ROOT"/}/server.log)"

# --- the tests ----------------------------------------------------------------------------------
rc=0
LOWCODE_WEB_URL="http://127.0.0.1:$web_port" \
    LOWCODE_BROWSER_DSN="host=$LC_SOCK port=$LC_PORT dbname=inspection user=$PG_OS_USER" \
    LOWCODE_BROWSER_ARTIFACTS="$artifacts" CHROMIUM="$chromium" \
    timeout -k 10 "${LOWCODE_BROWSER_TIMEOUT:-300}" \
    "$venv/bin/python" "$LC_ROOT/tests/browser/test_web.py" "$@" || rc=$?
[ "$rc" = 124 ] && lc_log "timed out after ${LOWCODE_BROWSER_TIMEOUT:-300}s (LOWCODE_BROWSER_TIMEOUT)"

if ! lc_log_crash_free "$LC_LOGFILE"; then
    cp "$LC_LOGFILE" "$artifacts/postgres.log"
    rc=1
fi
if [ "${LOWCODE_BROWSER_KEEP:-0}" = 1 ]; then
    lc_log "left running (LOWCODE_BROWSER_KEEP=1): http://127.0.0.1:$web_port (server pid $server_pid), $(lc_connect_hint inspection)"
    lc_log "stop them with: kill $server_pid; scripts/cluster.sh stop browser"
fi
lc_log "artifacts in ${artifacts#"$LC_ROOT"/} ($((SECONDS - started))s)"
exit "$rc"
