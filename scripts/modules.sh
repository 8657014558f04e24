#!/usr/bin/env bash
# scripts/modules.sh — the module graph stays a pipeline (part of `make lint` and of the unit
# stage of `make test`).
#
# Reads every `crate::<module>` path (also inside `use crate::{a, b}`) of src/ (the extension)
# and crates/core/src/ (the pure logic; a folder's files are its module's) and fails when
#   - two modules reach each other (an import cycle), naming the cycle;
#   - the pure crate (crates/core) names pgrx, in its Cargo.toml or its sources;
#   - an extension module other than src/report.rs (and src/tests.rs) raises an error itself
#     (`error!(`, `ereport!(`, `ErrorReport::new`) instead of through `report::raise` and its
#     helpers, naming file:line (comment lines, starting with //, do not count).
# With --print it also prints each crate's modules in an order where every module comes after
# everything it uses (docs/architecture.md shows it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if grep -rn --include='*.rs' --include=Cargo.toml 'pgrx' crates/core/Cargo.toml crates/core/src | grep -v '^[^:]*:[0-9]*:\s*//' ; then
    echo "modules: crates/core must not use pgrx (the lines above)" >&2
    exit 1
fi

python3 - "$@" <<'PY'
import os, re, sys

def sources(directory):
    """(module, path) of every source file: a file of a folder module (src/actions/task.rs)
    counts as that module (actions)."""
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for f in sorted(files):
                    if f.endswith(".rs"):
                        yield name, os.path.join(root, f)
        elif name.endswith(".rs") and name != "lib.rs":
            yield name[:-3], path

def graph(directory):
    g = {}
    for module, path in sources(directory):
        text = open(path).read()
        # Comments name modules too ("see crate::rules"); only code counts.
        code = re.sub(r"//[^\n]*", "", text)
        deps = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
            for item in group.split(","):
                item = item.strip().split("::")[0].split(" ")[0]
                if item:
                    deps.add(item)
        deps.discard(module)
        deps.discard("self")
        g.setdefault(module, set()).update(deps)
    return g

def cycle(g):
    state = {}
    stack = []
    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if d not in g:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None
    for m in sorted(g):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None

def order(g):
    done, out = set(), []
    def visit(m):
        if m in done:
            return
        done.add(m)
        for d in sorted(g[m]):
            if d in g:
                visit(d)
        out.append(m)
    for m in sorted(g):
        visit(m)
    return out

failed = False

# One error route: only src/report.rs builds a PostgreSQL ERROR.
RAISES = re.compile(r"\berror!\s*\(|\bereport!\s*\(|\bErrorReport::new\b")
for module, path in sources("src"):
    if path in ("src/report.rs", "src/tests.rs"):
        continue
    for number, line in enumerate(open(path).read().splitlines(), 1):
        if line.lstrip().startswith("//"):
            continue
        if RAISES.search(line):
            print(f"modules: {path}:{number}: raises an error itself; use crate::report "
                  f"(raise, failed, broken, refuse): {line.strip()}", file=sys.stderr)
            failed = True

for directory in ("crates/core/src", "src"):
    g = graph(directory)
    found = cycle(g)
    if found:
        print(f"modules: import cycle in {directory}: {' -> '.join(found)}", file=sys.stderr)
        failed = True
    elif "--print" in sys.argv[1:]:
        print(f"{directory}:")
        for m in order(g):
            uses = ", ".join(sorted(d for d in g[m] if d in g))
            print(f"  {m}" + (f"  (uses {uses})" if uses else ""))
if failed:
    sys.exit(1)
print("modules: no import cycles; crates/core has no pgrx; errors go through src/report.rs")
PY
