#!/usr/bin/env python3
"""bench/report.py — the numbers side of `make bench` (python3, stdlib only).

  report.py pgbench OUT LOGPREFIX SCENARIO ITEM VARIANT REP
      parse one pgbench run (its stdout and its -l per-transaction logs) and print result
      rows (TSV: scenario item variant rep metric value): tps, latency p50/p99/average
  report.py missed WORKDIR
      print the targets that were missed (one key per line: submit, claims, timers, ...)
  report.py report WORKDIR DOC
      print the table and write DOC (markdown) from WORKDIR/results.tsv, machine.tsv,
      phases.tsv and the profile_* files
"""
import glob
import os
import statistics
import sys
from collections import defaultdict

PGBENCH_LABELS = {
    "raw_insert": "baseline: raw INSERT into a plain table",
    "raw_insert_history": "baseline: raw INSERT of the record and its history row",
    "handwritten_workflow": "baseline: one hand-written statement writing the same rows (record, history, task, deadline, event)",
    "plain_workflow": "baseline: the same statement into plain tables (the indexes the queries need; no foreign keys, CHECKs or triggers)",
    "submit": "lowcode.submit, no workflow",
    "view_insert": "INSERT into the typed view",
    "submit_workflow": "lowcode.submit with the inspection workflow",
    "submit_workflow_consumed": "lowcode.submit with the inspection workflow, 2 outbox consumers running",
}
# Scenario 2's rows, in the order of the tables.
S2_VARIANTS = ("raw_insert", "raw_insert_history", "submit", "view_insert", "handwritten_workflow", "plain_workflow",
               "submit_workflow", "submit_workflow_consumed")
# Scenario 2: each lowcode variant against its baseline (variant: baseline, what, target; the
# targets themselves are checked in targets()).
S2_BASELINES = {
    "submit": ("raw_insert_history", "of raw INSERT + history", "≥ 70 %"),
    "view_insert": ("submit", "of submit", "within 20 %"),
    "submit_workflow": ("plain_workflow", "of the plain statement", "≥ 50 %"),
    "submit_workflow_consumed": ("handwritten_workflow", "of hand-written", "–"),
}
S2_CLIENTS = ("1 clients", "4 clients", "8 clients")
# Shorter names for the terminal table (its column is 42 characters wide).
S2_CONSOLE = {"raw_insert_history": "baseline: raw INSERT + its history row",
              "handwritten_workflow": "baseline: hand-written workflow rows",
              "plain_workflow": "baseline: the same rows, plain tables",
              "submit_workflow": "lowcode.submit, inspection workflow",
              "submit_workflow_consumed": "… the same, 2 outbox consumers running"}


# Scenario 8: the per-action paths (variant keys as bench.sh records them: s8_<action>, and
# s8_<action>_plain for its baseline).
S8_ACTIONS = {
    "transition": "lowcode.transition",
    "update": "lowcode.update_record",
    "complete": "lowcode.complete_task",
}
S8_BASELINE = "baseline: one statement, same rows, plain tables"
S8_CLIENTS = ("1 clients", "4 clients")
S8_TABLES = ("records", "history", "tasks", "timers", "events")
S8_KINDS = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}

# Scenario 9: the cost of each runtime function as its tables grow.
S9_FUNCS = {
    "submit": "lowcode.submit (a task and its deadline)",
    "claim": "lowcode.claim_task + complete_task",
    "transition": "lowcode.transition",
    "update": "lowcode.update_record",
    "decide": "lowcode.decide (approve: the verdict moves the record)",
}
S9_SIZES = ("10k records", "100k records", "1M records")
S9_FLAT = 1.25   # at most this many times the cost at 10k records, at 1M

# Scenario 10: a mixed load.
S10_KINDS = {
    "submitters": "submits/s (3 clients: record, task, deadline, event)",
    "claimers": "tasks claimed and completed/s (3 clients)",
    "consumers": "events acknowledged/s (2 consumers, each sees every event)",
    "timers": "deadlines fired/s (run_due_timers, 1 caller)",
}
S10_LOCKS = 0.01   # at most this share of sampled active sessions waiting on a lock, together


def s9_ms(r, size, func):
    """Mean milliseconds per call of a scenario-9 function at a size (from its tps)."""
    tps = r.med("9", size, f"s9_{func}", "tps")
    return None if not tps else 1000.0 / tps


def s9_growth(r, func):
    """Cost per call at 1M records over the cost at 10k."""
    return ratio(s9_ms(r, S9_SIZES[-1], func), s9_ms(r, S9_SIZES[0], func))


def s8_vs_baseline(r, clients, action):
    """(ratio, lowcode tps, baseline tps) of one action at `clients`."""
    tps = r.med("8", clients, f"s8_{action}", "tps")
    base = r.med("8", clients, f"s8_{action}_plain", "tps")
    return ratio(tps, base), tps, base


def s8_writes(r, variant):
    """{(table, kind): [rows written per call, one per run]} of a scenario-8 variant."""
    out = defaultdict(list)
    for (s, _item, v, metric), vals in r.raw.items():
        if s == "8" and v == variant and metric.startswith("writes "):
            _, table, kind = metric.split()
            out[(table, kind)].extend(vals)
    return out


def s8_same_rows(r, action):
    """True when every run of the action and of its baseline wrote the same whole number of
    rows per call into the same tables (None when nothing was counted)."""
    a, b = s8_writes(r, f"s8_{action}"), s8_writes(r, f"s8_{action}_plain")
    if not a or not b:
        return None

    def shape(w):
        out = {}
        for k, vals in w.items():
            n = {round(v) for v in vals}
            if len(n) != 1 or any(abs(v - round(v)) > 0.01 for v in vals):
                return None
            out[k] = n.pop()
        return out
    sa, sb = shape(a), shape(b)
    return sa is not None and sa == sb


def s8_writes_text(r, variant):
    w = s8_writes(r, variant)
    parts = []
    for table in S8_TABLES:
        for kind, word in S8_KINDS.items():
            vals = w.get((table, kind))
            if vals:
                lo, hi = min(vals), max(vals)
                n = fmt(lo, 2) if abs(hi - lo) < 0.005 else f"{fmt(lo, 2)}–{fmt(hi, 2)}"
                parts.append(f"{table} {n} {word}")
    return ", ".join(parts) or "–"


def s2_vs_baseline(r, clients, key, baseline=None):
    """(ratio, tps, baseline tps) of a scenario-2 variant against its baseline (or `baseline`),
    or None."""
    if key not in S2_BASELINES and baseline is None:
        return None
    tps = r.med("2", clients, PGBENCH_LABELS[key], "tps")
    base = r.med("2", clients, PGBENCH_LABELS[baseline or S2_BASELINES[key][0]], "tps")
    return ratio(tps, base), tps, base

# ------------------------------------------------------------------ pgbench


def pgbench(out, prefix, scenario, item, variant, rep):
    tps = processed = None
    with open(out) as f:
        for line in f:
            if line.startswith("tps = "):
                tps = float(line.split()[2])
            elif "actually processed:" in line:
                processed = int(line.split()[-1].split("/")[0])
    lat = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
    lat.sort()
    label = PGBENCH_LABELS.get(variant, variant)
    rows = [("tps", tps), ("transactions", processed)]
    if lat:
        rows += [("p50_ms", pct(lat, 50) / 1000), ("p99_ms", pct(lat, 99) / 1000),
                 ("avg_ms", sum(lat) / len(lat) / 1000)]
    for metric, value in rows:
        print(f"{scenario}\t{item}\t{label}\t{rep}\t{metric}\t{value}")


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)

# ------------------------------------------------------------------ results


class Results:
    def __init__(self, workdir):
        self.raw = defaultdict(list)          # (scenario, item, variant, metric) -> [values by rep]
        path = os.path.join(workdir, "results.tsv")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) != 6 or parts[5] in ("", "None"):
                        continue
                    s, item, variant, rep, metric, value = parts
                    self.raw[(s, item, variant, metric)].append(float(value))

    def med(self, s, item, variant, metric):
        v = self.raw.get((s, item, variant, metric))
        return statistics.median(v) if v else None

    def all(self, s, item, variant, metric):
        return self.raw.get((s, item, variant, metric), [])

    def n(self, s, item, variant, metric):
        return len(self.raw.get((s, item, variant, metric), []))

    def has(self, s):
        return any(k[0] == s for k in self.raw)


def kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    out[k] = v
    return out


def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is not None:
        return f"{v:,.{digits}f}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(ok):
    return "–" if ok is None else ("**met**" if ok else "**missed**")

# ------------------------------------------------------------------ targets


SIZES = {"small": [200000, 1000000], "large": [200000, 1000000]}
SAMPLE_A = {"small": None, "large": 10000}
SAMPLE_B = {"small": 5000, "large": 500}


def s1_figures(r, form):
    """Per form: per-row µs of each contender and the two ratios the targets are about."""
    out = {}
    L = {n: r.med("1", f"{form} {n}", "lowcode is_valid", "us_per_row") for n in SIZES[form]}
    if SAMPLE_A[form]:
        a = r.med("1", f"{form} {SAMPLE_A[form]}", "baseline A", "us_per_row")
        A = {n: a for n in SIZES[form]}
    else:
        A = {n: r.med("1", f"{form} {n}", "baseline A", "us_per_row") for n in SIZES[form]}
    B = r.med("1", f"{form} {SAMPLE_B[form]}", "baseline B", "us_per_row")
    out["L"], out["A"], out["B"] = L, A, B
    out["L_over_A"] = {n: ratio(L[n], A[n]) for n in SIZES[form]}
    out["B_over_L"] = {n: ratio(B, L[n]) for n in SIZES[form]}
    return out


def targets(r):
    """[(key, target text, measured text, ok or None)]"""
    t = []
    if r.has("1"):
        for form in ("small", "large"):
            f = s1_figures(r, form)
            worst = max((x for x in f["L_over_A"].values() if x is not None), default=None)
            t.append((f"bulk_{form}_A", f"1 · {form} form: lowcode ≤ 2.5 × baseline A (time per row)",
                      f"{fmt(worst)} × (worst of 200k / 1M)", None if worst is None else worst <= 2.5))
            least = min((x for x in f["B_over_L"].values() if x is not None), default=None)
            t.append((f"bulk_{form}_B", f"1 · {form} form: baseline B ≥ 15 × lowcode",
                      f"{fmt(least)} × (least of 200k / 1M)", None if least is None else least >= 15))
    if r.has("2"):
        # (0.1.0's target compared submit with a workflow to a raw INSERT of one row, a baseline
        # that writes one row where submit writes five: the hand-written statement below writes
        # the same rows.)
        # Against the plain tables (issue 20: the physical limit of the same work; lowcode's own
        # foreign keys and CHECKs are its cost), and against the mirrors with lowcode's keys.
        for clients in S2_CLIENTS:
            n = clients.split()[0]
            q, wf, pl = s2_vs_baseline(r, clients, "submit_workflow", "plain_workflow")
            t.append((f"submit_plain_{n}",
                      f"2 · submit with workflow ≥ 50 % of the same rows written into plain tables at {n} "
                      f"client{'' if n == '1' else 's'}",
                      "–" if q is None else f"{q * 100:.1f} % ({fmt(wf)} vs {fmt(pl)} tps)",
                      None if q is None else q >= 0.5))
        for clients in S2_CLIENTS:
            n = clients.split()[0]
            q, wf, hw = s2_vs_baseline(r, clients, "submit_workflow", "handwritten_workflow")
            t.append((f"submit_handwritten_{n}",
                      f"2 · submit with workflow ≥ 50 % of the hand-written statement's tps (lowcode's keys) at {n} "
                      f"client{'' if n == '1' else 's'}",
                      "–" if q is None else f"{q * 100:.1f} % ({fmt(wf)} vs {fmt(hw)} tps)",
                      None if q is None else q >= 0.5))
        q, sub, rih = s2_vs_baseline(r, "4 clients", "submit")
        t.append(("submit_history", "2 · submit without workflow ≥ 70 % of raw INSERT + history row tps at 4 clients",
                  "–" if q is None else f"{q * 100:.1f} % ({fmt(sub)} vs {fmt(rih)} tps)",
                  None if q is None else q >= 0.7))
        q, view, sub = s2_vs_baseline(r, "4 clients", "view_insert")
        t.append(("view_insert", "2 · INSERT through the typed view within 20 % of submit's tps at 4 clients",
                  "–" if q is None else f"{(q - 1) * 100:+.1f} % ({fmt(view)} vs {fmt(sub)} tps)",
                  None if q is None else abs(q - 1) <= 0.2))
    if r.has("9"):
        for func, fn in S9_FUNCS.items():
            g = s9_growth(r, func)
            t.append((f"flat_{func}",
                      f"9 · {fn}: cost per call at 1M records ≤ {S9_FLAT} × at 10k",
                      "–" if g is None else
                      f"{fmt(g)} × ({fmt(s9_ms(r, S9_SIZES[-1], func), 3)} vs {fmt(s9_ms(r, S9_SIZES[0], func), 3)} ms)",
                      None if g is None else g <= S9_FLAT))
    if r.has("10"):
        share = r.med("10", "together", "sessions", "lock_wait_share")
        t.append(("mixed_locks", f"10 · mixed load: at most {S10_LOCKS * 100:.0f} % of sampled active sessions wait on a lock",
                  "–" if share is None else f"{share * 100:.2f} %", None if share is None else share <= S10_LOCKS))
    if r.has("8"):
        for action, fn in S8_ACTIONS.items():
            for clients in S8_CLIENTS:
                n = clients.split()[0]
                q, lc, pl = s8_vs_baseline(r, clients, action)
                t.append((f"actions_{action}_{n}",
                          f"8 · {fn} ≥ 50 % of the same rows written by one statement into plain tables "
                          f"at {n} client{'' if n == '1' else 's'}",
                          "–" if q is None else f"{q * 100:.1f} % ({fmt(lc, 0)} vs {fmt(pl, 0)} tps)",
                          None if q is None else q >= 0.5))
        same = {a: s8_same_rows(r, a) for a in S8_ACTIONS}
        known = [ok for ok in same.values() if ok is not None]
        t.append(("actions_same_rows", "8 · each baseline writes the rows its lowcode path writes (per call, per table, "
                  "every run)", ", ".join(f"{a}: {'same' if ok else ('–' if ok is None else 'DIFFERENT')}"
                                          for a, ok in same.items()),
                  None if not known else all(known)))
    if r.has("3"):
        c = r.med("3", "claims", "lowcode claim_task", "per_s")
        once = r.all("3", "claims", "lowcode claim_task", "exactly_once")
        t.append(("claims", "3 · ≥ 5,000 claims/s with 8 claimers", f"{fmt(c)} claims/s",
                  None if c is None else c >= 5000))
        base = r.med("3", "claims", "baseline: plain table", "per_s")
        q = ratio(c, base)
        t.append(("claims_baseline", "3 · claims ≥ 90 % of the plain-table baseline (lowcode's claim statement, "
                  "with its history row)",
                  "–" if q is None else f"{q * 100:.1f} % ({fmt(c, 0)} vs {fmt(base, 0)} claims/s)",
                  None if q is None else q >= 0.9))
        t.append(("claims_once", "3 · every claimed task claimed exactly once",
                  f"{int(sum(once))} of {len(once)} runs", bool(once) and all(x == 1 for x in once)))
    if r.has("4"):
        for item in ("1 caller", "2 callers"):
            p = r.med("4", item, "lowcode run_due_timers", "projected_100k_s")
            done = r.med("4", item, "lowcode run_due_timers", "fired")
            txt = "–" if p is None else (f"{fmt(p)} s" + ("" if done and done >= 100000
                                                          else f" (projected from {fmt(done)} fired in the time box)"))
            t.append((f"timers_{item[0]}", f"4 · 100k due timers fired in < 10 s, {item}", txt,
                      None if p is None else p < 10))
        lc = r.med("4", "1 caller", "lowcode run_due_timers", "per_s")
        base = r.med("4", "1 caller", "baseline: plain table", "per_s")
        q = ratio(lc, base)
        t.append(("timers_baseline", "4 · due timers with one caller ≥ 40 % of the set-based baseline's rate",
                  "–" if q is None else f"{q * 100:.1f} % ({fmt(lc, 0)} vs {fmt(base, 0)} timers/s)",
                  None if q is None else q >= 0.4))
        once = r.all("4", "1 caller", "lowcode run_due_timers", "exactly_once") + \
            r.all("4", "2 callers", "lowcode run_due_timers", "exactly_once")
        t.append(("timers_once", "4 · each timer fired exactly once", f"{int(sum(once))} of {len(once)} runs",
                  bool(once) and all(x == 1 for x in once)))
    if r.has("5"):
        lc = "lowcode poll_events + ack_events"
        once = r.all("5", "100k waiting", lc, "exactly_once") + r.all("5", "100k waiting, 4 consumers", lc, "exactly_once")
        t.append(("outbox_once", "5 · every event acked exactly once per consumer, nothing redelivered, no rows left",
                  f"{int(sum(once))} of {len(once)} runs", bool(once) and all(x == 1 for x in once)))
        mine, pgmq = r.med("5", "100k waiting", lc, "per_s"), r.med("5", "100k waiting", "pgmq read + archive", "per_s")
        if mine and pgmq:
            t.append(("outbox_pgmq", "5 · one consumer, batches of 100, 100k waiting ≥ pgmq read + archive",
                      f"{fmt(mine, 0)} vs {fmt(pgmq, 0)} events/s ({fmt(mine / pgmq)} ×)", mine >= pgmq))
        small, big = r.med("5", "10000 waiting", lc, "per_s"), r.med("5", "1000000 waiting", lc, "per_s")
        if small and big:
            t.append(("outbox_flat", "5 · rate with 1M waiting within 10 % of the rate with 10k",
                      f"{fmt(big, 0)} vs {fmt(small, 0)} events/s ({fmt(100 * (big / small - 1), 1)} %)",
                      abs(big / small - 1) <= 0.10))
        one = r.med("5", "100k waiting", lc, "worker_seconds")
        four = r.med("5", "100k waiting, 4 consumers", lc, "worker_seconds")
        if one and four:
            all4 = r.med("5", "100k waiting, 4 consumers", lc, "seconds")
            t.append(("outbox_fanout", "5 · 4 consumers of the same events: total time < 2 × one consumer's",
                      f"{fmt(all4)} s for all four vs {fmt(one)} s for one ({fmt(all4 / one)} ×; 4 consumers on "
                      f"{os.cpu_count()} cores, each {fmt(four)} s)", all4 < 2 * one))
    if r.has("6"):
        ok = None
        for item, cap in (("cache 512 (default)", 512), ("cache 100", 100)):
            steps = s6_steps(r, item)
            if len(steps) < 3:
                continue
            last = r.med("6", item, steps[-1], "RssAnon_kB")
            prev = r.med("6", item, steps[-2], "RssAnon_kB")
            v = r.med("6", item, steps[-1], "validators")
            this = v <= cap and last <= prev * 1.05
            ok = this if ok is None else (ok and this)
        t.append(("memory", "6 · the LRU bounds memory (validators ≤ limit; RssAnon flat over the last two passes)",
                  "see scenario 6", ok))
    if r.has("7"):
        seen = r.all("7", "first statement after a publish", "lowcode is_valid", "saw_new_version")
        t.append(("fresh", "7 · a session enforces a new version from its next statement",
                  f"{int(sum(seen))} of {len(seen)} publishes", bool(seen) and all(x == 1 for x in seen)))
        over = r.med("7", "per row, 100k rows", "is_valid over conforms_to_version", "overhead_pct")
        iv = r.med("7", "per row, 100k rows", "lowcode is_valid", "us_per_row")
        cv = r.med("7", "per row, 100k rows", "lowcode conforms_to_version", "us_per_row")
        if over is not None:
            t.append(("fresh_cost", "7 · freshness check + version lookup negligible per row (is_valid vs conforms_to_version, < 5 %)",
                      f"{over:+.1f} % ({fmt(iv)} vs {fmt(cv)} µs per row)", over < 5))
    return t

# ------------------------------------------------------------------ report


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def read_profile(workdir, name):
    def rows(fname):
        path = os.path.join(workdir, fname)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    perf = ""
    p = os.path.join(workdir, f"profile_{name}_perf.txt")
    if os.path.exists(p):
        with open(p) as f:
            perf = f.read().strip()
    return rows(f"profile_{name}_functions.tsv"), rows(f"profile_{name}_statements.tsv"), perf


def report(workdir, doc):
    r = Results(workdir)
    m = kv(os.path.join(workdir, "machine.tsv"))
    phases = []
    pp = os.path.join(workdir, "phases.tsv")
    if os.path.exists(pp):
        with open(pp) as f:
            phases = [line.rstrip("\n").split("\t") for line in f if "\t" in line]
    reps = m.get("reps", "3")
    tg = targets(r)
    md = []
    w = md.append

    w("# lowcode benchmarks")
    w("")
    w("Written by `make bench` (`scripts/bench.sh`, helpers in `bench/`); every figure below comes "
      "from the run described here. Regenerate with `make bench` (about 25 minutes on two cores).")
    w("")
    w(table(["machine", ""], [
        ("CPUs (nproc)", m.get("nproc", "?")), ("CPU", m.get("cpu", "?")), ("memory", m.get("memory", "?")),
        ("PostgreSQL", m.get("postgres", "?")), ("date", m.get("date", "?")),
        ("lowcode", f"commit {m.get('commit', '?')}; {m.get('library', '?')}"),
        ("load average at the end (1, 5, 15 min)", m.get("load", "?")),
        ("total run time", f"{dict(phases).get('total', '?')} s, build included"),
    ]))
    w("")
    w(f"Each figure is the **median of {reps} repetitions** unless it says otherwise; every "
      "scenario runs its baseline in the same cluster, interleaved with lowcode (each repetition "
      "runs all contenders one after the other). The machine may be shared: the load average "
      "above says how busy it was.")
    w("")
    w("## Targets")
    w("")
    w(table(["target", "measured", "verdict"], [(t, mtxt, verdict(ok)) for _, t, mtxt, ok in tg]))
    w("")

    # ---- 1
    if r.has("1"):
        w("## 1. Bulk validation of stored documents")
        w("")
        w("`SELECT count(*) FILTER (WHERE <check>) FROM (SELECT doc FROM t LIMIT n) s`, parallel "
          "query off, timed in the server (clock_timestamp deltas). Time per row in µs; *scan only* "
          "is the same query with `doc IS NOT NULL` (reading the rows, no check).")
        w("")
        w("* **baseline A**: the same rules as one native SQL expression (`?`, `jsonb_typeof`, casts "
          "and comparisons, `~` for patterns and formats, `jsonb_array_elements` for items), "
          "generated from the same spec as the schema (`bench/forms.py`).")
        w("* **lowcode**: `lowcode.is_valid('bench', form, doc)` (`conforms` is the same code).")
        w("* **baseline B**: `lowcode.naive_is_valid(schema, doc)`: compiles the schema and converts "
          "the document to serde_json on every call (built only with `--features bench`).")
        w("")
        rows = []
        for form in ("small", "large"):
            f = s1_figures(r, form)
            for n in SIZES[form]:
                item = f"{form} {n}"
                rows.append((
                    f"{form} ({'8' if form == 'small' else '100'} fields), {n // 1000}k rows",
                    fmt(r.med("1", item, "scan only", "us_per_row")),
                    fmt(f["A"][n]) + ("" if not SAMPLE_A[form] else f" ¹"),
                    fmt(f["L"][n]),
                    fmt(f["L_over_A"][n]) + " ×",
                    fmt(f["B"]) + " ²",
                    fmt(f["B_over_L"][n]) + " ×",
                ))
        w(table(["form, rows", "scan only", "baseline A", "lowcode is_valid", "lowcode / A (≤ 2.5)",
                 "baseline B", "B / lowcode (≥ 15)"], rows))
        w("")
        w(f"¹ baseline A on the large form runs on the first {SAMPLE_A['large']:,} rows of the same "
          "table (it needs ~0.1 ms per row; 1M rows would take minutes per repetition); per-row "
          "rates, so the ratio compares like with like.  ")
        w(f"² baseline B on the first {SAMPLE_B['small']:,} (small) / {SAMPLE_B['large']:,} (large) "
          "rows, per-row rate, for the same reason.")
        w("")
        # agreement + the other variants
        rows = []
        for form in ("small", "large"):
            for n in sorted({int(k[1].split()[1]) for k in r.raw if k[0] == "1" and k[1].startswith(form + " ")}):
                item = f"{form} {n}"
                counts = {}
                for (s, it, variant, metric), vals in r.raw.items():
                    if s == "1" and it == item and metric == "valid_rows" and variant != "scan only":
                        counts[variant] = vals
                agree = len({v for vals in counts.values() for v in vals}) == 1
                extra = []
                for variant in ("lowcode conforms", "lowcode conforms_to_version"):
                    v = r.med("1", item, variant, "us_per_row")
                    if v is not None:
                        extra.append(f"{variant.split()[1]} {fmt(v)} µs")
                anyv = next(iter(counts.values()), [None])[0]
                rows.append((f"{form}, {n:,} rows", ", ".join(sorted(counts)),
                             f"{fmt(anyv, 0)} of {n:,}" if anyv is not None else "–",
                             "yes" if agree else "**NO**", "; ".join(extra) or "–"))
        w("Every contender must count the same valid rows (1 in 100 documents breaks one rule, a "
          "different one each time):")
        w("")
        w(table(["rows scanned", "contenders", "valid rows", "all agree", "other lowcode entry points (µs/row)"],
                rows))
        w("")

    # ---- 2
    if r.has("2"):
        w("## 2. Submit throughput (pgbench)")
        w("")
        w(f"`pgbench -n -M prepared -T {m.get('pgbench_seconds', '10')}`, 2 threads (1 for one client), "
          "the same inspection fault report (8 fields) in each variant; the workflow variant's "
          "document has severity 5, so every submit runs rule `route_severe`: a task in pool "
          "`engineers` with a 5-minute deadline (a timer) and an outbox event. Latency percentiles "
          "from pgbench's per-transaction log (`-l`). 4 clients: median of "
          f"{reps} runs; 1 and 8 clients: one run each (the ten-minute budget). "
          "`synchronous_commit = off` (see Method).")
        w("")
        w("Baselines, in the same cluster: the raw INSERT of the document into a plain table; the "
          "record and its `created` history row written by one statement; and one hand-written "
          "statement (data-modifying CTEs) writing the seven rows a workflow submit writes: the "
          "record, its three history rows (`created`, and the rule's `task_created` and "
          "`rule_action` notes with lowcode's details), the task, its deadline timer and the "
          "outbox event (lowcode's payload). That statement runs twice: into mirrors of "
          "`lowcode.records`, `history`, `tasks`, `timers` and `events` with the same columns, "
          "defaults, indexes, primary and foreign keys and CHECKs (*hand-written*), and into plain "
          "tables with the same columns, defaults and indexes and no keys, CHECKs or triggers "
          "(*plain*, the physical limit; `bench/setup.sql`). Before the runs, `scripts/bench.sh` "
          "counts the rows each variant inserts in a rolled-back transaction (the transaction's "
          "own table statistics) and stops when a baseline writes different rows from lowcode. "
          "*vs its baseline*: submit against the record + history statement, the typed view "
          "against submit, the workflow submit against the plain statement.")
        w("")
        rows = []
        for clients in S2_CLIENTS:
            raw = r.med("2", clients, PGBENCH_LABELS["raw_insert"], "tps")
            for key in S2_VARIANTS:
                lab = PGBENCH_LABELS[key]
                tps = r.med("2", clients, lab, "tps")
                if tps is None:
                    continue
                q = ratio(tps, raw)
                vs = "–"
                against = s2_vs_baseline(r, clients, key)
                if against and against[0] is not None:
                    _, what, target = S2_BASELINES[key]
                    vs = f"{against[0] * 100:.1f} % {what}" + ("" if target == "–" else f" (target {target})")
                rows.append((clients.split()[0], lab, fmt(tps, 0), "–" if q is None else f"{q * 100:.1f} %", vs,
                             fmt(r.med("2", clients, lab, "p50_ms")), fmt(r.med("2", clients, lab, "p99_ms")),
                             r.n("2", clients, lab, "tps")))
        w(table(["clients", "variant", "tps", "% of raw INSERT", "vs its baseline", "p50 ms", "p99 ms", "runs"],
                rows))
        lag_e = r.all("2", "4 clients", PGBENCH_LABELS["submit_workflow_consumed"], "max_lag_events")
        lag_s = r.all("2", "4 clients", PGBENCH_LABELS["submit_workflow_consumed"], "max_lag_seconds")
        if lag_e:
            w("")
            w(f"With two outbox consumers polling (batches of 100) while the 4 clients submit, the consumers' "
              f"lag, sampled every 0.25 s, stayed at most {fmt(max(lag_e), 0)} events / {fmt(max(lag_s))} s "
              f"(worst of {len(lag_e)} runs).")
        w("")

    # ---- 3
    if r.has("3"):
        w("## 3. Claim throughput")
        w("")
        w(f"A pool of {int(float(m.get('n', 100000))):,} open tasks; 8 pgbench clients call "
          "`lowcode.claim_task(pool, 'w<client>')` for a time box of "
          f"{m.get('cap', '5')} s (or until the pool is empty). Baseline: `lowcode.claim_task`'s own "
          "statement, `UPDATE … WHERE id = (SELECT … WHERE pool >= $1 AND pool <= $1 AND status = 'open' "
          "ORDER BY pool, id LIMIT 1 FOR UPDATE SKIP LOCKED)` with its `task_claimed` history row "
          "(the record joined as lowcode does), on plain mirrors of `lowcode.tasks`, `records` and "
          "`history` with the same indexes and keys, without lowcode's privilege checks. Check (both): "
          "every claimed task has exactly one `task_claimed` history row naming the worker that holds "
          "it, and every other task is still open.")
        w("")
        rows = []
        for v in ("baseline: plain table", "lowcode claim_task"):
            c = r.med("3", "claims", v, "per_s")
            once = r.all("3", "claims", v, "exactly_once")
            rows.append((v, fmt(c, 0), fmt(r.med("3", "claims", v, "claimed"), 0),
                         "–" if not once else ("yes" if all(x == 1 for x in once) else "**NO**")))
        base = r.med("3", "claims", "baseline: plain table", "per_s")
        lc = r.med("3", "claims", "lowcode claim_task", "per_s")
        w(table(["variant", "claims/s", "claimed per run", "exactly once"], rows))
        w("")
        if ratio(lc, base) is not None:
            w(f"lowcode reaches {ratio(lc, base) * 100:.0f} % of the plain table's claim rate.")
            w("")

    # ---- 4
    if r.has("4"):
        w("## 4. Timers")
        w("")
        w(f"{int(float(m.get('n', 100000))):,} due task deadlines of the inspection workflow "
          "(`deadline_passed:fix` → rule `overdue` → an outbox event), fired by callers looping "
          "`lowcode.run_due_timers(1000)` (one transaction per call) until nothing is due or the "
          f"time box of {m.get('cap', '5')} s is over; when the box ends first, the time for all "
          "100k is projected from the rate. Baseline: plain due rows, each "
          "batch of 1,000 marked fired and written to an outbox table in one set-based statement "
          "(the physical minimum: no rule evaluation, no history). Check: the timers fired = what "
          "the callers counted, each with exactly one `timer_fired` history row and one event, "
          "none failed.")
        w("")
        rows = []
        for item in ("1 caller", "2 callers"):
            for v in ("baseline: plain table", "lowcode run_due_timers"):
                ps = r.med("4", item, v, "per_s")
                if ps is None:
                    continue
                once = r.all("4", item, v, "exactly_once")
                rows.append((item, v, fmt(ps, 0), fmt(r.med("4", item, v, "fired"), 0),
                             fmt(r.med("4", item, v, "seconds")), fmt(r.med("4", item, v, "projected_100k_s")),
                             "–" if not once else ("yes" if all(x == 1 for x in once) else "**NO**")))
        w(table(["callers", "variant", "timers/s", "fired per run", "seconds", "100k would take (s)",
                 "exactly once"], rows))
        w("")

    # ---- 5
    if r.has("5"):
        w("## 5. Outbox")
        w("")
        w(f"{int(float(m.get('n', 100000))):,} events waiting (as the workflow's `emit` writes them, "
          "committed), one consumer looping `poll_events(consumer, 100)` (commit) → "
          "`ack_events(consumer, ids)` (commit) until nothing is left. Baseline: pgmq "
          "(the SQL its crate embeds, in the same cluster) with the same payloads, looping "
          "`pgmq.read('bench', 30, 100)` (commit) → `pgmq.archive('bench', ids)` (commit) until nothing "
          f"is left or the {m.get('cap', '5')} s time box ends. Then four lowcode consumers of the same "
          "events at once (each must get every event), and one consumer taking the same 10,000 events "
          "with 10k and with 1M events waiting (five runs each). Rate = events acknowledged per "
          "second, end to end.")
        w("")
        rows = []
        for item, v in (("100k waiting", "pgmq read + archive"), ("100k waiting", "lowcode poll_events + ack_events"),
                        ("100k waiting, 4 consumers", "lowcode poll_events + ack_events"),
                        ("10000 waiting", "lowcode poll_events + ack_events"),
                        ("1000000 waiting", "lowcode poll_events + ack_events")):
            ps = r.med("5", item, v, "per_s")
            if ps is None:
                continue
            once = r.all("5", item, v, "exactly_once")
            rows.append((item, v, fmt(ps, 0), fmt(r.med("5", item, v, "acked"), 0),
                         fmt(r.med("5", item, v, "seconds")), fmt(r.med("5", item, v, "worker_seconds")),
                         "–" if not once else ("yes" if all(x == 1 for x in once) else "**NO**")))
        w(table(["events waiting", "variant", "events/s (all consumers)", "acked per run", "seconds",
                 "seconds per consumer", "exactly once"], rows))
        w("")

    # ---- 6
    if r.has("6"):
        w("## 6. Memory")
        w("")
        w("A fresh backend validates one document against form 1 (baseline: library and one "
          "validator loaded), then against each of 1,000 distinct forms (the inspection fault "
          "report with a distinct constant each), in passes of one statement (one transaction) "
          "each; `/proc/self/status` after each step (VmRSS: resident, includes the shared buffers "
          "the backend touched; RssAnon: its private memory), the transaction's memory context and "
          "`lowcode.cache_stats()`. The last case runs its passes in one transaction.")
        w("")
        rows = []
        for item in S6_ITEMS:
            base = r.med("6", item, "after 1 form (baseline)", "RssAnon_kB")
            for step in ["after 1 form (baseline)"] + s6_steps(r, item):
                anon = r.med("6", item, step, "RssAnon_kB")
                if anon is None:
                    continue
                rows.append((item, step, fmt(r.med("6", item, step, "VmRSS_kB"), 0), fmt(anon, 0),
                             "–" if step.startswith("after 1 form") else fmt(anon - base, 0),
                             fmt(r.med("6", item, step, "TopTransactionContext_kB"), 0),
                             fmt(r.med("6", item, step, "validators"), 0)))
        w(table(["lowcode.validator_cache_size", "step", "VmRSS kB", "RssAnon kB", "RssAnon − baseline kB",
                 "transaction context kB", "validators cached"], rows))
        w("")
        full = r.med("6", "cache 2000 (all cached)", "after 1,000 forms, pass 1", "RssAnon_kB")
        base = r.med("6", "cache 2000 (all cached)", "after 1 form (baseline)", "RssAnon_kB")
        if full is not None and base is not None:
            w(f"About {(full - base) / 999:.0f} kB per cached validator of this form. With a smaller "
              "cache the passes keep compiling (every lookup misses); RssAnon levels off once the "
              "allocator has reused the evicted validators' memory.")
            w("")
        one = s6_steps(r, "cache 100, one transaction")
        if one:
            ttx = r.med("6", "cache 100, one transaction", one[-1], "TopTransactionContext_kB")
            a1 = r.med("6", "cache 100, one transaction", one[0], "RssAnon_kB")
            an = r.med("6", "cache 100, one transaction", one[-1], "RssAnon_kB")
            if ttx is not None and ttx > 1024 and len(one) > 1 and an - a1 > 1024:
                w(f"**Finding:** within one transaction every compile (cache miss) leaves memory in "
                  f"the transaction's memory context until commit: {len(one)} passes of 1,000 "
                  f"compiles in one transaction grow RssAnon from {fmt(a1, 0)} to {fmt(an, 0)} kB "
                  f"(≈ {(an - a1) / ((len(one) - 1) * 1000):.1f} kB per compile; the context is at "
                  f"{ttx / 1024:.0f} MB). A long transaction, or one bulk statement that validates "
                  "against more forms than the cache holds, grows by that much per miss; separate "
                  "transactions (above) stay flat.")
                w("")

    # ---- 7
    if r.has("7"):
        w("## 7. Invalidation")
        w("")
        w("Another session (dblink) publishes version k of a form whose schema requires `n = k`; "
          "this session's very next statement validates `{..., \"n\": k}`, timed in the server "
          "(statement start to after the call); 10 publishes per repetition. The per-row cost of "
          "finding the current version (the freshness check plus the version lookup) is "
          "`is_valid(app, form, doc)` against `conforms_to_version(version id, doc)`, which skips "
          "both, over the same 100k stored documents, alternating 5 times per repetition.")
        w("")
        first = r.med("7", "first statement after a publish", "lowcode is_valid", "ms")
        warm = r.med("7", "next statement (warm)", "lowcode is_valid", "ms")
        cv = r.med("7", "next statement (warm)", "lowcode conforms_to_version", "ms")
        seen = r.all("7", "first statement after a publish", "lowcode is_valid", "saw_new_version")
        iv1 = r.med("7", "per row, 100k rows", "lowcode is_valid", "us_per_row")
        cv1 = r.med("7", "per row, 100k rows", "lowcode conforms_to_version", "us_per_row")
        over = r.med("7", "per row, 100k rows", "is_valid over conforms_to_version", "overhead_pct")
        npairs = r.n("7", "per row, 100k rows", "is_valid over conforms_to_version", "overhead_pct")
        rows = [
            ("statements that enforced the new version at once", f"{int(sum(seen))} of {len(seen)}"),
            ("first statement after a publish (catalog read + compile)", f"{fmt(first)} ms"),
            ("the next statement, is_valid (warm)", f"{fmt(warm)} ms"),
            ("the same, conforms_to_version (no current-version lookup, no freshness check)", f"{fmt(cv)} ms"),
        ]
        if iv1 is not None and cv1 is not None and over is not None:
            rows.append(("per row in a bulk scan (small form, 100k stored documents): is_valid vs conforms_to_version",
                         f"{fmt(iv1)} vs {fmt(cv1)} µs; median of {npairs} paired runs: {over:+.1f} %"))
        w(table(["", ""], rows))
        w("")
        w("A session sees a new version at its next statement: `define_form` sends a relcache "
          "invalidation that every backend takes in when its next statement starts; what that costs "
          "is one catalog lookup and one compile, once, in the first statement.")
        w("")

    # ---- 8
    if r.has("8"):
        w("## 8. Per-action paths")
        w("")
        w(f"`pgbench -n -M prepared -T {m.get('pgbench_seconds', '10')}`, 2 threads (1 for one client); "
          f"1 client: one run, 4 clients: median of {reps} runs. Each lowcode call runs on form "
          "`insp.fault_s8` (the inspection fault report) with a workflow of its own "
          "(`bench/s8_actions.sql`): states `open` and `working`, transitions `start` (open → "
          "working) and `pause` (back), and one rule that gives a severe fault a task `check` with "
          "a one-day deadline; no rule listens to transitions, updates or completed tasks, and the "
          "task emits no events, so no rule runs in these calls. Every client works on its own "
          "rows: `transition` moves 1,000 records of its own alternately forth and back, "
          "`update_record` replaces the data of 1,000 records of its own (a different "
          "`downtime_minutes` each call), `complete_task` completes its share of tasks claimed "
          "beforehand (each with its pending deadline), one after the other; everything is put "
          "back before each run.")
        w("")
        w("Each baseline is one hand-written statement (data-modifying CTEs; `bench/pgbench/"
          "s8_<action>_plain.sql`) writing the same rows into plain copies of `lowcode.records`, "
          "`history`, `tasks` and `timers` (`CREATE TABLE … (LIKE lowcode.x INCLUDING DEFAULTS "
          "INCLUDING INDEXES)`: the same columns, defaults and indexes; no foreign keys, CHECKs, "
          "triggers or row level security): the record's new state (or data), revision, "
          "`updated_at` and `updated_by` and its history row (from/to state, or before/after data), "
          "or the task's completion, its deadline cancelled and its history row. No privilege "
          "checks, no validation, no rule lookup: the rows only.")
        w("")
        rows = []
        for clients in S8_CLIENTS:
            for action, fn in S8_ACTIONS.items():
                for v, lab in ((f"s8_{action}_plain", S8_BASELINE), (f"s8_{action}", fn)):
                    tps = r.med("8", clients, v, "tps")
                    if tps is None:
                        continue
                    vs = "–"
                    if not v.endswith("_plain"):
                        q = s8_vs_baseline(r, clients, action)[0]
                        vs = "–" if q is None else f"{q * 100:.1f} % (target ≥ 50 %)"
                    rows.append((clients.split()[0], action, lab, fmt(tps, 0), vs,
                                 fmt(r.med("8", clients, v, "p50_ms")), fmt(r.med("8", clients, v, "p99_ms")),
                                 r.n("8", clients, v, "tps")))
        w(table(["clients", "action", "variant", "tps", "vs its baseline", "p50 ms", "p99 ms", "runs"], rows))
        w("")
        w("Rows written per call, from the tables' statistics (`pg_stat_user_tables`) around each "
          "run, divided by the transactions pgbench counted (range over all runs):")
        w("")
        rows = []
        for action, fn in S8_ACTIONS.items():
            same = s8_same_rows(r, action)
            rows.append((action, s8_writes_text(r, f"s8_{action}"), s8_writes_text(r, f"s8_{action}_plain"),
                         "–" if same is None else ("yes" if same else "**NO**")))
        w(table(["action", "lowcode (`lowcode.*`)", "baseline (`bench.s8_*_plain`)", "same rows"], rows))
        w("")

    # ---- 9
    if r.has("9"):
        w("## 9. Cost as the tables grow")
        w("")
        w(f"One client, `pgbench -n -M prepared -t 3000` (transition: 2,000 calls), median of {reps} runs "
          "at each size. Form `insp.fault_s9` (the inspection fault report) with scenario 8's workflow "
          "(`bench/s9_growth.sql`): transitions `start` and `pause`, a rule that gives a severe "
          "fault a task in pool `s9` with a one-day deadline, and one that asks the benchmark's role "
          "to sign off a fault of severity 3 within a day (an approval, mode `any`). The tables grow "
          "through `lowcode.submit` itself (every other record severe, every fourth of severity 3), so "
          "at each size half the records have an open pool task and a pending deadline and a quarter "
          "a pending approval with its task and deadline: the pool and the approvals grow with them. "
          "The calls: `submit` (severity 5: its task and deadline), `claim_task('s9')` + "
          "`complete_task` (the oldest open task of the pool, its deadline cancelled), `transition` "
          "(1,000 records there and back), `update_record` (1,000 records, new data each call), "
          "`decide` (approve the approval task of one of 3,000 records of severity 3 submitted just "
          "before the run: the decision, the task and its deadline, the verdict, the record moved "
          "to `working`). Polling against the outbox's size is scenario 5's (10k and 1M events "
          "waiting).")
        w("")
        rows = []
        for func, fn in S9_FUNCS.items():
            cells = []
            for size in S9_SIZES:
                ms = s9_ms(r, size, func)
                cells.append("–" if ms is None else
                             f"{fmt(ms, 3)} (p99 {fmt(r.med('9', size, f's9_{func}', 'p99_ms'))})")
            g = s9_growth(r, func)
            rows.append((fn, *cells, "–" if g is None else f"{fmt(g)} × (target ≤ {S9_FLAT})"))
        w(table(["function (ms per call, mean)", *S9_SIZES, "1M / 10k"], rows))
        w("")
        w("The tables at each size, before its runs:")
        w("")
        rows = []
        for what in ("records", "history", "tasks", "open tasks in the pool", "pending approvals", "pending timers"):
            rows.append((what, *(fmt(r.med("9", size, "tables", f"rows {what}"), 0) for size in S9_SIZES)))
        w(table(["rows", *S9_SIZES], rows))
        w("")

    # ---- 10
    if r.has("10"):
        w("## 10. A mixed load")
        w("")
        w(f"Form `insp.fault_s10` (`bench/s10_mixed.sql`): every record gets a task in pool `s10` "
          "with a deadline 5 s out and an outbox event. Started from 60,000 such records; then each "
          f"kind alone for {m.get('pgbench_seconds', '10')} s, then all of them together as long "
          f"(median of {reps} repetitions): 3 pgbench clients submitting, 3 claiming the oldest "
          "open task and completing it, two outbox consumers (`poll_events` 100 + `ack_events`, "
          "each sees every event), one session calling `run_due_timers(1000)` as the worker does "
          "(the deadlines of tasks nobody claimed in time fire). Rates are what was done (records "
          "written, tasks completed, events acknowledged, timers fired) per second; a sampler "
          "reads `pg_stat_activity` every 100 ms.")
        w("")
        rows = []
        for kind, lab in S10_KINDS.items():
            alone, together = r.med("10", "alone", kind, "per_s"), r.med("10", "together", kind, "per_s")
            rows.append((lab, fmt(alone, 0), fmt(together, 0),
                         "–" if ratio(together, alone) is None else f"{ratio(together, alone) * 100:.0f} %"))
        w(table(["kind", "alone", "together", "together / alone"], rows))
        w("")
        share = r.med("10", "together", "sessions", "lock_wait_share")
        w(f"Sampled active sessions waiting on a lock: alone {fmt(r.med('10', 'alone', 'sessions', 'lock_wait_share'), 4)}, "
          f"together {fmt(share, 4)}. Open tasks in the pool after the run together: "
          f"{fmt(r.med('10', 'together', 'pool', 'open tasks after'), 0)}. On 2 cores the kinds share the "
          "CPU: together each gets a part of what it does alone.")
        w("")
        waits = sorted({v for (sc, _item, v, metric) in r.raw if sc == "10" and metric == "samples"})
        if waits:
            w("The lock waits sampled (wait event · statement), samples in all runs:")
            w("")
            rows = [(v[len("waits: "):], fmt(sum(sum(r.all("10", item, v, "samples")) for item in ("alone", "together")), 0))
                    for v in waits]
            w(table(["wait event · statement", "samples"], rows))
            w("")

    # ---- profile
    missed = [k for k, _, _, ok in tg if ok is False]
    findings = read_findings(os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md"))
    prof_names = [n for n in ("submit", "timers", "claims", "outbox", "fresh")
                  if os.path.exists(os.path.join(workdir, f"profile_{n}_functions.tsv"))
                  or os.path.exists(os.path.join(workdir, f"profile_{n}_perf.txt"))]
    if prof_names:
        w("## Where the time goes")
        w("")
        w("The submit path always, and each missed target, profiled after the measurements, in the "
          "same cluster restarted with `pg_stat_statements` (`track = all`, so statements inside "
          "functions count) and `track_functions = all`; `perf` samples of the server processes "
          "when perf is available (the submit path by shared object and symbol, the others by "
          "shared object).")
        w("")
        for name in prof_names:
            funcs, stmts, perf = read_profile(workdir, name)
            w(f"### {PROFILE_TITLES[name]}")
            w("")
            if funcs:
                w(table(["function", "calls", "total ms", "self ms", "self µs per call"], funcs[:14]))
                w("")
            if stmts:
                w(table(["statement (inside the functions above)", "calls", "total ms", "µs per call"],
                        [(f"`{s[0]}`", *s[1:]) for s in stmts[:12]]))
                w("")
            if perf and name in ("fresh", "submit"):
                w("perf, top symbols (share of samples):")
                w("")
                w("```")
                w("\n".join(" ".join(line.replace("[.] ", "").split()).removesuffix(" - -")
                             for line in perf.splitlines()))
                w("```")
                w("")
            elif perf:
                w("perf, share of samples by shared object:")
                w("")
                w("```")
                w(perf)
                w("```")
                w("")
            finding = findings.get(name)
            if finding:
                w("*Findings, written by hand (bench/findings.md):*")
                w("")
                w(finding)
                w("")

    # ---- method
    w("## Method and deviations")
    w("")
    w(METHOD.format(reps=reps, cap=m.get("cap", "5"), secs=m.get("pgbench_seconds", "10")))
    w("")
    if phases:
        w("Run time by phase:")
        w("")
        w(table(["phase", "seconds"], [(p, s) for p, s in phases]))
        w("")
    text = "\n".join(md) + "\n"
    with open(doc, "w") as f:
        f.write(text)

    # ---- terminal table
    print()
    print("lowcode benchmarks — " + m.get("date", "") + f" — {m.get('nproc', '?')} CPUs, "
          f"PostgreSQL {m.get('postgres', '?')}, median of {reps}")
    print()
    for line in console(r):
        print(line)
    print()
    for _, t, mtxt, ok in tg:
        print(f"  {'MET   ' if ok else ('MISSED' if ok is False else '  –   ')}  {t}: {mtxt}")
    if missed:
        print()
        print(f"  {len(missed)} target(s) missed; the profile is in {doc}")


def console(r):
    out = []
    if r.has("1"):
        out.append(f"{'1 bulk validation (µs/row)':44} {'A':>9} {'lowcode':>9} {'L/A':>7} {'B':>9} {'B/L':>7}")
        for form in ("small", "large"):
            f = s1_figures(r, form)
            for n in SIZES[form]:
                out.append(f"  {form + ' ' + str(n // 1000) + 'k rows':42} {fmt(f['A'][n]):>9} {fmt(f['L'][n]):>9} "
                           f"{fmt(f['L_over_A'][n]):>7} {fmt(f['B']):>9} {fmt(f['B_over_L'][n]):>7}")
    if r.has("2"):
        out.append(f"{'2 submit (tps, p50/p99 ms)':44} {'1 client':>14} {'4 clients':>20} {'8 clients':>14}")
        for key in S2_VARIANTS:
            lab = PGBENCH_LABELS[key]
            cells = []
            for c in S2_CLIENTS:
                tps = r.med("2", c, lab, "tps")
                cell = fmt(tps, 0)
                if c == "4 clients":
                    cell += f" {fmt(r.med('2', c, lab, 'p50_ms'))}/{fmt(r.med('2', c, lab, 'p99_ms'))}"
                cells.append(cell)
            out.append(f"  {S2_CONSOLE.get(key, lab)[:42]:42} {cells[0]:>14} {cells[1]:>20} {cells[2]:>14}")
    if r.has("8"):
        out.append(f"{'8 per-action paths (tps)':44} {'1 client':>18} {'4 clients':>18}")
        for action, fn in S8_ACTIONS.items():
            for v, lab in ((f"s8_{action}_plain", f"  baseline: {action}, plain tables"), (f"s8_{action}", f"  {fn}")):
                cells = []
                for c in S8_CLIENTS:
                    cell = fmt(r.med("8", c, v, "tps"), 0)
                    if not v.endswith("_plain"):
                        q = s8_vs_baseline(r, c, action)[0]
                        cell += "" if q is None else f" ({q * 100:.0f} %)"
                    cells.append(cell)
                out.append(f"{lab[:44]:44} {cells[0]:>18} {cells[1]:>18}")
    if r.has("9"):
        out.append(f"{'9 ms per call as tables grow':44} " + " ".join(f"{x:>14}" for x in S9_SIZES))
        for func, fn in S9_FUNCS.items():
            out.append(f"  {fn[:42]:42} " + " ".join(f"{fmt(s9_ms(r, x, func), 3):>14}" for x in S9_SIZES))
    if r.has("10"):
        out.append(f"{'10 mixed load (per s)':44} {'alone':>14} {'together':>14}")
        for kind in S10_KINDS:
            out.append(f"  {kind:42} {fmt(r.med('10', 'alone', kind, 'per_s'), 0):>14} "
                       f"{fmt(r.med('10', 'together', kind, 'per_s'), 0):>14}")
    if r.has("3"):
        out.append("3 claims/s, 8 claimers")
        for v in ("baseline: plain table", "lowcode claim_task"):
            out.append(f"  {v:42} {fmt(r.med('3', 'claims', v, 'per_s'), 0):>9}")
    if r.has("4"):
        out.append(f"{'4 timers/s (100k would take s)':44} {'1 caller':>16} {'2 callers':>16}")
        for v in ("baseline: plain table", "lowcode run_due_timers"):
            cells = [f"{fmt(r.med('4', i, v, 'per_s'), 0)} ({fmt(r.med('4', i, v, 'projected_100k_s'))})"
                     for i in ("1 caller", "2 callers")]
            out.append(f"  {v:42} {cells[0]:>16} {cells[1]:>16}")
    if r.has("5"):
        out.append("5 outbox events/s, one consumer, batches of 100")
        for item, v in (("100k waiting", "pgmq read + archive"), ("100k waiting", "lowcode poll_events + ack_events"),
                        ("100k waiting, 4 consumers", "lowcode poll_events + ack_events"),
                        ("10000 waiting", "lowcode poll_events + ack_events"),
                        ("1000000 waiting", "lowcode poll_events + ack_events")):
            out.append(f"  {item + ' · ' + v:60} {fmt(r.med('5', item, v, 'per_s'), 0):>9}")
    if r.has("6"):
        out.append("6 memory: RssAnon kB after 1 form → 1,000 forms (pass 1 … last pass), validators cached")
        for item in S6_ITEMS:
            steps = s6_steps(r, item)
            if not steps:
                continue
            b = r.med("6", item, "after 1 form (baseline)", "RssAnon_kB")
            passes = " / ".join(fmt(r.med("6", item, st, "RssAnon_kB"), 0) for st in steps)
            v = r.med("6", item, steps[-1], "validators")
            out.append(f"  {item:42} {fmt(b, 0)} → {passes}, {fmt(v, 0)}")
    if r.has("7"):
        first = r.med("7", "first statement after a publish", "lowcode is_valid", "ms")
        warm = r.med("7", "next statement (warm)", "lowcode is_valid", "ms")
        out.append(f"7 invalidation: first statement after a publish {fmt(first)} ms, warm {fmt(warm)} ms")
    return out


S6_ITEMS = ("cache 2000 (all cached)", "cache 512 (default)", "cache 100", "cache 100, one transaction")


def s6_steps(r, item):
    return sorted({k[2] for k in r.raw if k[0] == "6" and k[1] == item and k[2].startswith("after 1,000")},
                  key=lambda x: int(x.split()[-1]))


def read_findings(path):
    """The hand-written findings of bench/findings.md, by profile name (its `## name` sections)."""
    if not os.path.exists(path):
        return {}
    sections, name = {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                name = line[3:].strip()
                sections[name] = []
            elif name:
                sections[name].append(line.rstrip("\n"))
    return {k: "\n".join(v).strip() for k, v in sections.items()}


PROFILE_TITLES = {
    "submit": "Submit with the inspection workflow (pgbench, 4 clients)",
    "timers": "run_due_timers (one caller, 6,000 deadlines in one call)",
    "claims": "claim_task (pgbench, 8 clients)",
    "outbox": "poll_events + ack_events (one consumer, 100k events waiting)",
    "fresh": "Finding the current version on every row (is_valid over 100k stored documents)",
}

METHOD = """\
* **One cluster, one run.** `scripts/bench.sh` builds the extension in release mode with the
  `bench` feature, starts a throwaway cluster (port 28817, as the `postgres` user) and loads a
  private copy of the just-built library (the C functions' `probin` points at it), so a
  concurrent `cargo pgrx install` on a shared machine cannot change the code under test.
* **Settings** (`ALTER SYSTEM`): `shared_buffers = 1GB`, `synchronous_commit = off`,
  `max_wal_size = 16GB`, `checkpoint_timeout = 1h`, `jit = off`; fsync stays on. With
  `synchronous_commit = off` the write scenarios measure CPU cost; with it on, every variant
  waits for the same WAL flush per commit and the ratios move towards 1.
* **Interleaving.** Every repetition runs all contenders of a scenario one after the other
  (scenario 1: per size, baseline A, lowcode, baseline B …; scenario 2: the six variants
  in turn for each client count); figures are medians over {reps} repetitions.
* **Scenario 1.** 1M rows per form (unlogged, documents inline and uncompressed:
  `toast_tuple_target = 8160`, storage `external`), cycling through 100k (small) / 20k
  (large) distinct documents from `bench/forms.py`; 1 in 100 is invalid in one of 13 (small) /
  101 (large) ways. The 200k figures scan the first 200k rows of the same table
  (`LIMIT 200000`). Hint bits are set by a full read before the first measurement.
  Deviations: baseline A on the large form and baseline B run on the first rows only
  (see the footnotes); their per-row rates are compared.
* **Scenario 2.** pgbench `-T {secs}`; 4 clients {reps} runs, 1 and 8 clients one run each.
* **Scenarios 3–5** run in time boxes of {cap} s each (the budget: a full 100k at lowcode's
  current rates would take minutes per run): rates are what was done in the box, a run that
  finishes early is timed to its end, and the time for 100k is projected from the rate. Each
  repetition starts from 100k open tasks / due timers / waiting events; the exactly-once checks
  cover everything that was claimed / fired / acknowledged, and that nothing else was touched.
* **Scenario 6** runs each cache size in a fresh backend; **scenario 7** publishes 10 versions
  per repetition from a dblink session.
* **Scenario 8.** pgbench `-T {secs}`; 4 clients {reps} runs, 1 client one run; each run starts
  from the same rows (records back in state `open`, tasks claimed again, deadlines pending
  again: `bench.s8_reset`, then `VACUUM ANALYZE`).
* **Noise.** The machine may be shared with builds and tests; medians damp it but don't remove
  it. Compare ratios, not absolute figures, across runs."""


def missed_cmd(workdir):
    r = Results(workdir)
    keys = set()
    for k, _, _, ok in targets(r):
        if ok is False:
            keys.add(k)
    for k in sorted(keys):
        print(k)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "pgbench":
        pgbench(*sys.argv[2:9])
    elif cmd == "missed":
        missed_cmd(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
