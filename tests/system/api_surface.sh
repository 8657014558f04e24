#!/usr/bin/env bash
# api_surface — the functions a fresh role may execute in schema lowcode (as the trust regress
# suite lists them in tests/pg_regress/expected/trust.out) are exactly the functions the
# README's tables document. A new helper is revoked from PUBLIC by sql/hardening.sql; one that
# is granted on purpose must be documented, and a documented function must be executable.
# No cluster: it compares the two files.
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

step "README tables vs. what a fresh role may execute (trust.out)"
python3 - "$LC_ROOT/README.md" "$LC_ROOT/tests/pg_regress/expected/trust.out" <<'PY'
import re, sys

readme, trust = (open(p).read() for p in sys.argv[1:3])
documented = set()
for line in readme.split("\n"):
    if line.startswith("| `"):
        documented.update(re.findall(r"`([a-z_]+)\(", line.split("|")[1]))
listing = trust.split("executable_by_a_fresh_role")[2].split(" rows)")[0]
executable = set(re.findall(r'^ lowcode\."?([a-z_]+)"?\(', listing, re.M))
if len(executable) < 40:
    sys.exit(f"FAIL: found only {len(executable)} executable functions in trust.out: the listing moved?")
undocumented = sorted(executable - documented)
unreachable = sorted(documented - executable)
if undocumented:
    print("FAIL: executable by PUBLIC but not in the README's tables:", ", ".join(undocumented))
if unreachable:
    print("FAIL: in the README's tables but not executable by PUBLIC:", ", ".join(unreachable))
if undocumented or unreachable:
    sys.exit(1)
print(f"api_surface: ok ({len(executable)} functions, each documented)")
PY
