#!/usr/bin/env bash
# scripts/upgrade-diff.sh — which SQL / PL/pgSQL functions of sql/*.sql differ from a frozen
# release, to review an update script against: every function listed NEW or CHANGED must be
# created or replaced by sql/lowcode--<from>--<version>.sql, every GONE one dropped. (Tables,
# grants and the Rust functions are not listed: tests/system/upgrade.sh compares the whole
# catalog of an updated database with a fresh install.)
#
#   scripts/upgrade-diff.sh [FROM]     FROM: a version in sql/releases (default: the newest)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
from="${1:-$(find "$root/sql/releases" -maxdepth 1 -name 'lowcode--*.sql' -printf '%f\n' |
    sed -E 's/^lowcode--(.*)\.sql$/\1/' | sort -V | tail -n 1)}"
frozen="$root/sql/releases/lowcode--$from.sql"
[ -f "$frozen" ] || { echo "upgrade-diff: no frozen release $frozen" >&2; exit 1; }
python3 - "$frozen" "$root"/sql/*.sql <<'PY'
import re, sys

def blocks(text):
    """Each function: from CREATE FUNCTION lowcode.x( to its COMMENT ON FUNCTION line."""
    out, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"CREATE (OR REPLACE )?FUNCTION (lowcode\.[a-z_]+)\(", lines[i])
        if not m:
            i += 1
            continue
        j = i
        while j < len(lines) and not lines[j].startswith("COMMENT ON FUNCTION " + m.group(2) + "("):
            j += 1
        sig = re.match(r"COMMENT ON FUNCTION (\S+\([^)]*\))", lines[j]).group(1) if j < len(lines) else m.group(2)
        out[sig] = "\n".join(lines[i:j + 1])
        i = j + 1
    return out

old = blocks(open(sys.argv[1]).read())
new = {}
for path in sys.argv[2:]:
    if re.search(r"lowcode--[^/]*--[^/]*\.sql$", path):
        continue  # update scripts
    new.update(blocks(open(path).read()))
for sig in sorted(new):
    if sig not in old:
        print("NEW    ", sig)
    elif old[sig] != new[sig]:
        print("CHANGED", sig)
for sig in sorted(old):
    if sig not in new:
        print("GONE   ", sig)
PY
