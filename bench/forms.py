#!/usr/bin/env python3
"""bench/forms.py — the two forms `make bench` validates, written once and turned into
everything scenario 1 needs, so the three contenders check exactly the same rules:

  * the JSON Schema (lowcode.define_form, and baseline B's naive_is_valid),
  * baseline A: the same rules as one native SQL boolean expression over `doc`
    (?, jsonb_typeof, casts, comparisons, regular expressions, jsonb_path_exists),
  * a SQL function bench.<form>_doc(i) that builds document number i; 1 in 100
    documents breaks one rule (a different one each time), so the number of valid rows
    is known and the three contenders must agree on it.

    python3 bench/forms.py OUTDIR     writes OUTDIR/forms.sql (stdlib only)

Forms:
  small  the inspection fault report, 8 fields (strings, pattern, enum, date-time,
         integer range, number, array of strings)
  large  an equipment inspection, 100 leaf fields: nested objects three levels deep,
         arrays of objects, 13 enums, 14 patterns, formats date, date-time, email, uuid
"""
import json
import sys

# ------------------------------------------------------------------ spec nodes
# Leaf: dict(t=..., constraints..., gen=SQL template over {i} (row) and {j} (array index),
#            bad=a JSON value that breaks the rule)


def S(gen, bad=None, **kw):
    return dict(t="string", gen=gen, bad=bad, **kw)


def I(gen, bad=None, **kw):
    return dict(t="integer", gen=gen, bad=bad, **kw)


def N(gen, bad=None, **kw):
    return dict(t="number", gen=gen, bad=bad, **kw)


def B(gen, bad="yes"):
    return dict(t="boolean", gen=gen, bad=bad)


def E(values, gen, bad="unknown"):
    return dict(t="enum", values=values, gen=gen, bad=bad)


def O(props, required=()):
    return dict(t="object", props=props, required=list(required))


def A(items, n, **kw):
    return dict(t="array", items=items, n=n, **kw)


def pick(values, salt=0):
    """SQL that picks one of values by row number."""
    arr = "ARRAY[" + ",".join(sql_lit(v) for v in values) + "]"
    return f"({arr})[1 + (({{i}} + {salt}) % {len(values)})]"


def sql_lit(s):
    return "'" + str(s).replace("'", "''") + "'"


DATE = "to_char(date '2024-01-01' + ({i} % 700), 'YYYY-MM-DD')"
DATETIME = ("to_char(timestamp '2024-01-01' + ({i} % 100000) * interval '7 minutes' + {j} * interval '1 minute',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
EMAIL = "'user' || ({i} % 5000) || '@plant.example.com'"
UUID = "md5({i}::text)::uuid::text"

SMALL = O({
    "site": S("'plant-' || ({i} % 50)", bad="", minLength=1, maxLength=64),
    "severity": I("1 + ({i} % 5)", bad=9, minimum=1, maximum=5),
    "machine": S("'M-' || lpad(({i} % 1000)::text, 3, '0')", bad="M-42", pattern="^M-[0-9]{3}$"),
    "reported_at": S(DATETIME, bad="2024-13-45T25:00:00Z", format="date-time"),
    "category": E(["electrical", "mechanical", "hydraulic", "software", "other"], pick(
        ["electrical", "mechanical", "hydraulic", "software", "other"])),
    "description": S("'vibration at bearing ' || ({i} % 17) || ', noise above normal'", bad=12, maxLength=500),
    "downtime_minutes": N("({i} % 240) + 0.5", bad=-1, minimum=0),
    "photos": A(S("'fault-' || {i} || '-' || {j} || '.jpg'", bad=7), 2, maxItems=10),
}, required=["site", "severity", "machine", "reported_at"])

ENUM_AREA = ["north", "south", "east", "west", "central"]
LARGE = O({
    "id": S(UUID, bad="not-a-uuid", format="uuid"),
    "form_no": S("'INS-' || lpad(({i} % 1000000)::text, 6, '0')", bad="INS-12", pattern="^INS-[0-9]{6}$"),
    "site": S("'plant-' || ({i} % 50)", bad="", minLength=1, maxLength=64),
    "area": E(ENUM_AREA, pick(ENUM_AREA)),
    "status": E(["draft", "submitted", "reviewed"], pick(["draft", "submitted", "reviewed"], 1)),
    "severity": I("1 + ({i} % 5)", bad=0, minimum=1, maximum=5),
    "priority": I("1 + ({i} % 3)", bad=4, minimum=1, maximum=3),
    "reported_at": S(DATETIME, bad="yesterday", format="date-time"),
    "inspected_on": S(DATE, bad="2024-02-30", format="date"),
    "due_on": S(DATE, bad="soon", format="date"),
    "reporter_email": S(EMAIL, bad="nobody", format="email"),
    "shift": E(["A", "B", "C"], pick(["A", "B", "C"])),
    "duration_minutes": N("({i} % 600) + 0.25", bad=2000, minimum=0, maximum=1440),
    "cost_estimate": N("({i} % 10000) * 1.5", bad=-5, minimum=0),
    "safety_critical": B("({i} % 7 = 0)"),
    "requires_shutdown": B("({i} % 11 = 0)"),
    "description": S("'bearing noise on line ' || ({i} % 40) || ', vibration trending up over the last week'",
                     bad=42, maxLength=2000),
    "root_cause": S("'worn bearing, lubrication interval exceeded'", maxLength=500),
    "notes": S("'checked by night shift; spare ordered'", maxLength=1000),
    "weather": E(["dry", "rain", "snow", "indoor"], pick(["dry", "rain", "snow", "indoor"], 2)),
    "temperature_c": N("(({i} % 60) - 10) + 0.5", bad=99, minimum=-50, maximum=60),
    "humidity_pct": I("{i} % 101", bad=101, minimum=0, maximum=100),
    "equipment": O({
        "serial": S("'SN-' || upper(lpad(to_hex({i}), 8, '0'))", bad="SN-abc", pattern="^SN-[A-Z0-9]{8}$"),
        "model": S("'PX-' || ({i} % 300)", minLength=1, maxLength=64),
        "manufacturer": E(["abb", "siemens", "schneider", "ge", "other"],
                          pick(["abb", "siemens", "schneider", "ge", "other"], 3)),
        "installed_on": S(DATE, bad="2020/01/01", format="date"),
        "hours": I("{i} % 90000", bad=-3, minimum=0),
        "voltage": N("230 + ({i} % 3) * 170", minimum=0, maximum=100000),
        "phase": I("1 + ({i} % 3)", bad=5, minimum=1, maximum=3),
        "rated_kw": N("({i} % 500) + 0.75", minimum=0),
        "firmware": S("'v' || ({i} % 5) || '.' || ({i} % 13) || '.' || ({i} % 7)", bad="1.2",
                      pattern="^v[0-9]+\\.[0-9]+\\.[0-9]+$"),
        "last_service": S(DATETIME, format="date-time"),
        "under_warranty": B("({i} % 2 = 0)"),
        "criticality": E(["low", "medium", "high"], pick(["low", "medium", "high"])),
    }, required=["serial", "model"]),
    "location": O({
        "building": S("'B' || lpad(({i} % 100)::text, 2, '0')", bad="B7", pattern="^B[0-9]{2}$"),
        "floor": I("({i} % 20) - 2", bad=80, minimum=-3, maximum=50),
        "room": S("'R' || ({i} % 500)", maxLength=16),
        "zone": E(["red", "amber", "green"], pick(["red", "amber", "green"], 1)),
        "coordinates": O({
            "lat": N("(({i} % 180) - 90) * 0.99", bad=95, minimum=-90, maximum=90),
            "lon": N("(({i} % 360) - 180) * 0.99", bad="east", minimum=-180, maximum=180),
            "alt": N("({i} % 3000) * 0.1"),
        }, required=["lat", "lon"]),
        "access_notes": S("'badge required'", maxLength=200),
    }, required=["building"]),
    "inspector": O({
        "name": S("'inspector ' || ({i} % 300)", bad="", minLength=1, maxLength=100),
        "employee_id": S("'E' || lpad(({i} % 100000)::text, 5, '0')", bad="E12", pattern="^E[0-9]{5}$"),
        "email": S(EMAIL, format="email"),
        "phone": S("'+49 89 ' || lpad(({i} % 1000000)::text, 6, '0')", bad="call me",
                   pattern="^\\+?[0-9 -]{7,20}$"),
        "certified": B("({i} % 3 <> 0)"),
        "level": E(["I", "II", "III"], pick(["I", "II", "III"])),
        "team": S("'maintenance-' || ({i} % 9)", maxLength=64),
    }, required=["name", "employee_id"]),
    "measurements": O({
        "vibration_mm_s": N("({i} % 90) * 0.5", bad=150, minimum=0, maximum=100),
        "noise_db": N("60 + ({i} % 60)", minimum=0, maximum=200),
        "oil_level_pct": I("{i} % 101", bad=-1, minimum=0, maximum=100),
        "pressure_bar": N("({i} % 300) * 1.25", minimum=0, maximum=400),
        "flow_lpm": N("({i} % 1000) * 0.3", minimum=0),
        "rpm": I("({i} % 3000) * 10", bad=99999, minimum=0, maximum=30000),
        "current_a": N("({i} % 200) * 0.7", minimum=0),
        "insulation_mohm": N("({i} % 2000) + 0.1", minimum=0),
        "temp_bearing_c": N("20 + ({i} % 80)", minimum=-50, maximum=200),
        "temp_winding_c": N("30 + ({i} % 120)", bad=500, minimum=-50, maximum=250),
    }),
    "readings": A(O({
        "sensor": S("'S-' || lpad((({i} + {j}) % 1000)::text, 3, '0')", bad="sensor-1", pattern="^S-[0-9]{3}$"),
        "value": N("(({i} * 7 + {j}) % 1000) * 0.1", bad="high"),
        "unit": E(["C", "bar", "mm/s", "dB", "A"], pick(["C", "bar", "mm/s", "dB", "A"], "{j}")),
        "at": S(DATETIME, bad="2024-01-01 10:00", format="date-time"),
    }, required=["sensor", "value", "unit", "at"]), 3, minItems=1, maxItems=20),
    "checklist": A(O({
        "item": S("'check ' || {j}", bad="", minLength=1, maxLength=100),
        "ok": B("(({i} + {j}) % 5 <> 0)", bad="n/a"),
        "comment": S("'looks fine'", maxLength=200),
    }, required=["item", "ok"]), 4, maxItems=50),
    "tags": A(S("'tag-' || (({i} + {j}) % 30)", bad=3, maxLength=32), 2, maxItems=10),
    "photos": A(S("'photo_' || {i} || '_' || {j} || '.jpg'", bad="photo.gif",
                  pattern="^[a-z0-9_-]+\\.(jpg|png)$"), 1, maxItems=20),
    "parts": A(O({
        "part_no": S("'P-' || lpad((({i} + {j}) % 100000)::text, 5, '0')", bad="P-1", pattern="^P-[0-9]{5}$"),
        "qty": I("1 + (({i} + {j}) % 10)", bad=0, minimum=1, maximum=100),
        "unit_price": N("(({i} + {j}) % 500) + 0.99", minimum=0),
    }, required=["part_no", "qty"]), 1, maxItems=20),
    "approval": O({
        "supervisor": S("'supervisor ' || ({i} % 20)", maxLength=100),
        "approved": B("({i} % 4 <> 0)"),
        "approved_at": S(DATETIME, format="date-time"),
        "comments": S("'ok to proceed'", maxLength=500),
        "level": E(["site", "region", "global"], pick(["site", "region", "global"]), bad="country"),
    }),
    "electrical": O({
        "supply_v": N("230 + ({i} % 3) * 170", minimum=0, maximum=100000),
        "measured_v": N("228 + ({i} % 5)", bad=-230, minimum=0, maximum=100000),
        "frequency_hz": N("49.9 + ({i} % 3) * 0.1", bad=70, minimum=45, maximum=65),
        "power_factor": N("0.8 + ({i} % 20) * 0.01", bad=1.5, minimum=0, maximum=1),
        "earth_ok": B("({i} % 50 <> 0)"),
        "rcd_ok": B("({i} % 40 <> 0)"),
        "rcd_trip_ms": I("10 + ({i} % 290)", bad=5000, minimum=0, maximum=1000),
        "loop_impedance_ohm": N("({i} % 100) * 0.01", minimum=0),
        "breaker_a": I("16 * (1 + ({i} % 8))", bad=0, minimum=1, maximum=6300),
        "cable_mm2": N("1.5 * (1 + ({i} % 6))", minimum=0),
    }),
    "environment": O({
        "dust": E(["low", "medium", "high"], pick(["low", "medium", "high"], 1)),
        "wet": B("({i} % 9 = 0)"),
        "hazard_zone": E(["none", "zone1", "zone2"], pick(["none", "zone1", "zone2"]), bad="zone9"),
        "ventilated": B("({i} % 6 <> 0)"),
        "lighting_lux": I("100 + ({i} % 900)", bad=-1, minimum=0, maximum=100000),
        "ambient_c": N("(({i} % 50) - 5) + 0.5", minimum=-50, maximum=60),
        "noise_exposure_db": N("70 + ({i} % 30)", minimum=0, maximum=200),
        "confined_space": B("({i} % 13 = 0)"),
        "ppe_required": B("({i} % 2 = 1)"),
        "permit_no": S("'PTW-' || lpad(({i} % 10000)::text, 4, '0')", bad="PTW-1", pattern="^PTW-[0-9]{4}$"),
    }),
    "follow_up": O({
        "needed": B("({i} % 3 = 0)"),
        "due": S(DATE, format="date"),
        "assignee_email": S(EMAIL, bad="@@", format="email"),
        "ticket": S("'T-' || {i}", bad="ticket", pattern="^T-[0-9]+$"),
    }),
}, required=["id", "form_no", "site", "severity", "reported_at", "equipment", "location", "inspector",
             "readings"])

FORMS = {"small": SMALL, "large": LARGE}

# ------------------------------------------------------------------ JSON Schema


def schema(node, top=True):
    t = node["t"]
    out = {}
    if t == "enum":
        out["enum"] = node["values"]
    elif t == "object":
        out["type"] = "object"
        out["properties"] = {k: schema(v, False) for k, v in node["props"].items()}
        if node["required"]:
            out["required"] = node["required"]
    elif t == "array":
        out["type"] = "array"
        out["items"] = schema(node["items"], False)
        for k in ("minItems", "maxItems"):
            if k in node:
                out[k] = node[k]
    else:
        out["type"] = t
        for k in ("minLength", "maxLength", "pattern", "format", "minimum", "maximum"):
            if k in node:
                out[k] = node[k]
    if top:
        out = {"$schema": "https://json-schema.org/draft/2020-12/schema", **out}
    return out


# ------------------------------------------------------------------ native checks (baseline A)

# Formats as the validator asserts them, as regular expressions (JSON Schema's date and
# date-time are RFC 3339: the ranges of month and day are part of the check).
FMT_RE = {
    "date": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
    "date-time": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}


def native(node, v):
    """SQL boolean: the jsonb expression v satisfies node (v is known to be present)."""
    t = node["t"]
    if t == "enum":
        return f"(jsonb_typeof({v}) = 'string' AND ({v} #>> '{{}}') IN ({', '.join(sql_lit(x) for x in node['values'])}))"
    if t == "boolean":
        return f"jsonb_typeof({v}) = 'boolean'"
    if t in ("integer", "number"):
        parts = [f"jsonb_typeof({v}) = 'number'"]
        if t == "integer":
            parts.append(f"({v})::numeric = trunc(({v})::numeric)")
        if "minimum" in node:
            parts.append(f"({v})::numeric >= {node['minimum']}")
        if "maximum" in node:
            parts.append(f"({v})::numeric <= {node['maximum']}")
        return "(" + " AND ".join(parts) + ")"
    if t == "string":
        s = f"({v} #>> '{{}}')"
        parts = [f"jsonb_typeof({v}) = 'string'"]
        if "minLength" in node:
            parts.append(f"length({s}) >= {node['minLength']}")
        if "maxLength" in node:
            parts.append(f"length({s}) <= {node['maxLength']}")
        if "pattern" in node:
            parts.append(f"{s} ~ {sql_lit(node['pattern'])}")
        if "format" in node:
            parts.append(f"{s} ~ {sql_lit(FMT_RE[node['format']])}")
            if node["format"] in ("date", "date-time"):
                # a real calendar day: no 30 February, no 31 April, 29 February only in leap years
                md, y = f"substr({s}, 6, 5)", f"left({s}, 4)::int"
                parts.append(f"{md} NOT IN ('02-30', '02-31', '04-31', '06-31', '09-31', '11-31')")
                parts.append(f"({md} <> '02-29' OR ({y} % 4 = 0 AND ({y} % 100 <> 0 OR {y} % 400 = 0)))")
        return "(" + " AND ".join(parts) + ")"
    if t == "object":
        parts = [f"jsonb_typeof({v}) = 'object'"]
        for k in node["required"]:
            parts.append(f"{v} ? {sql_lit(k)}")
        for k, child in node["props"].items():
            cv = f"({v} -> {sql_lit(k)})"
            check = native(child, cv)
            if k in node["required"]:
                parts.append(check)
            else:
                parts.append(f"(NOT {v} ? {sql_lit(k)} OR {check})")
        return "(" + " AND ".join(parts) + ")"
    if t == "array":
        parts = [f"jsonb_typeof({v}) = 'array'"]
        if "minItems" in node:
            parts.append(f"jsonb_array_length({v}) >= {node['minItems']}")
        if "maxItems" in node:
            parts.append(f"jsonb_array_length({v}) <= {node['maxItems']}")
        parts.append(f"NOT EXISTS (SELECT FROM jsonb_array_elements({v}) AS e(x) WHERE NOT {native(node['items'], 'e.x')})")
        return "(" + " AND ".join(parts) + ")"
    raise ValueError(t)


# ------------------------------------------------------------------ documents


def gen(node, i, j="0"):
    t = node["t"]
    if t == "object":
        args = []
        for k, child in node["props"].items():
            args.append(sql_lit(k))
            args.append(gen(child, i, j))
        # jsonb_build_object takes at most 100 arguments
        chunks = [args[n:n + 100] for n in range(0, len(args), 100)]
        return " || ".join(f"jsonb_build_object({', '.join(c)})" for c in chunks)
    if t == "array":
        return "jsonb_build_array(" + ", ".join(gen(node["items"], i, str(n)) for n in range(node["n"])) + ")"
    sql = node["gen"].format(i=i, j=j)
    if t in ("integer", "number"):
        return f"({sql})::numeric"
    if t == "boolean":
        return f"({sql})"
    return f"({sql})::text"


def breakages(node, path=()):
    """(path, bad JSON value or None = remove) pairs: one way to break each rule that has one."""
    out = []
    t = node["t"]
    if t == "object":
        for k, child in node["props"].items():
            p = path + (k,)
            if k in node["required"]:
                out.append((p, None))
            out.extend(breakages(child, p))
    elif t == "array":
        # break the first item; also too many items when there is a maximum
        out.extend(breakages(node["items"], path + ("0",)))
        if "maxItems" in node:
            out.append((path, "__too_many__"))
    elif node.get("bad") is not None:
        out.append((path, node["bad"]))
    return out


def break_sql(doc, path, bad, node):
    p = "{" + ",".join(path) + "}"
    if bad is None:
        return f"({doc} #- '{p}')"
    if bad == "__too_many__":
        sub = node
        for k in path:
            sub = sub["items"] if sub["t"] == "array" else sub["props"][k]
        # one item too many: the first item, repeated
        arr = f"(SELECT jsonb_agg(g.x) FROM (SELECT {doc} #> '{p}' -> 0 AS x FROM generate_series(0, {sub['maxItems']})) g)"
        return f"jsonb_set({doc}, '{p}', {arr})"
    return f"jsonb_set({doc}, '{p}', {sql_lit(json.dumps(bad))}::jsonb)"


def doc_function(name, node):
    valid = gen(node, "i")
    cases = breakages(node)
    whens = "\n".join(
        f"        WHEN {n} THEN {break_sql('d', p, bad, node)}" for n, (p, bad) in enumerate(cases))
    return f"""
CREATE FUNCTION bench.{name}_valid_doc(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $f$
    SELECT {valid}
$f$;
CREATE FUNCTION bench.{name}_broken_doc(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE (i / 100) % {len(cases)}
{whens}
      END
      FROM (SELECT bench.{name}_valid_doc(i) AS d) s
$f$;
-- Document i: valid, except 1 in 100 (i % 100 = 0) that breaks rule number (i / 100) % {len(cases)}.
CREATE FUNCTION bench.{name}_doc(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE WHEN i % 100 <> 0 THEN bench.{name}_valid_doc(i) ELSE bench.{name}_broken_doc(i) END
$f$;
"""


def leaf_count(node):
    if node["t"] == "object":
        return sum(leaf_count(c) for c in node["props"].values())
    if node["t"] == "array":
        return leaf_count(node["items"])
    return 1


def main():
    out = sys.argv[1]
    sql = ["-- generated by bench/forms.py: do not edit", "CREATE SCHEMA IF NOT EXISTS bench;",
           "CREATE TABLE bench.forms (form text PRIMARY KEY, schema jsonb NOT NULL, native text NOT NULL, fields int NOT NULL, rules int NOT NULL);"]
    for name, node in FORMS.items():
        sch = json.dumps(schema(node))
        nat = native(node, "doc")
        sql.append(f"INSERT INTO bench.forms VALUES ({sql_lit(name)}, {sql_lit(sch)}, {sql_lit(nat)}, "
                   f"{leaf_count(node)}, {len(breakages(node))});")
        sql.append(doc_function(name, node))
    with open(f"{out}/forms.sql", "w") as f:
        f.write("\n".join(sql) + "\n")


if __name__ == "__main__":
    main()
