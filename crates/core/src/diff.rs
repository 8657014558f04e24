//! Diffing app definitions: what changes between an app as it is and an exported definition,
//! and whether each change breaks existing records or in-flight workflows.
//!
//! Pure logic, no pgrx. Both sides are in the export format of `lowcode.export_app`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// One change, as `lowcode.diff_app` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// form, field, required, enum, constraint, schema, workflow, state, transition, rule
    pub kind: &'static str,
    /// Where: `form/field`, `form/states/x` ...
    pub path: String,
    /// added, removed, retyped, narrowed, widened, changed
    pub change: &'static str,
    /// `breaking`, `before`, `after` and a human `reason`.
    pub detail: Value,
}

fn change(
    kind: &'static str,
    path: String,
    what: &'static str,
    breaking: bool,
    reason: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Change {
    Change {
        kind,
        path,
        change: what,
        detail: json!({"breaking": breaking, "reason": reason, "before": before, "after": after}),
    }
}

fn by_name(list: Option<&Value>) -> Vec<(String, &Value)> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| Some((item.get("name")?.as_str()?.to_owned(), item)))
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(list: &'a [(String, &'a Value)], name: &str) -> Option<&'a Value> {
    list.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// Everything that differs between `current` (the app as it is) and `wanted` (a definition).
pub fn diff_app(current: &Value, wanted: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    let (old_forms, new_forms) = (by_name(current.get("forms")), by_name(wanted.get("forms")));
    let names: BTreeSet<&String> = old_forms
        .iter()
        .chain(new_forms.iter())
        .map(|(n, _)| n)
        .collect();
    for name in names {
        match (find(&old_forms, name), find(&new_forms, name)) {
            (None, Some(_)) => changes.push(change(
                "form",
                name.clone(),
                "added",
                false,
                "new form",
                None,
                None,
            )),
            (Some(_), None) => changes.push(change(
                "form",
                name.clone(),
                "removed",
                true,
                "import never deletes: the form and its records stay",
                None,
                None,
            )),
            (Some(old), Some(new)) => {
                diff_schema(name, old.get("schema"), new.get("schema"), &mut changes);
                diff_workflow(name, old.get("workflow"), new.get("workflow"), &mut changes);
            }
            (None, None) => {}
        }
    }
    changes
}

fn properties(schema: Option<&Value>) -> Map<String, Value> {
    schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn required(schema: Option<&Value>) -> BTreeSet<String> {
    schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const CONSTRAINTS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "multipleOf",
    "items",
    "const",
];

fn diff_schema(form: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let (old_props, new_props) = (properties(old), properties(new));
    let (old_req, new_req) = (required(old), required(new));
    let fields: BTreeSet<&String> = old_props.keys().chain(new_props.keys()).collect();
    let closed = new.and_then(|s| s.get("additionalProperties")) == Some(&Value::Bool(false));
    for field in fields {
        let path = format!("{form}/{field}");
        match (old_props.get(field), new_props.get(field)) {
            (None, Some(after)) => {
                let req = new_req.contains(field);
                out.push(change(
                    "field",
                    path,
                    "added",
                    req,
                    if req {
                        "required field added: existing records lack it"
                    } else {
                        "optional field added"
                    },
                    None,
                    Some(after),
                ))
            }
            (Some(before), None) => out.push(change(
                "field",
                path,
                "removed",
                closed,
                if closed {
                    "field removed and additionalProperties is false: records holding it fail"
                } else {
                    "field removed: existing values are kept but no longer described"
                },
                Some(before),
                None,
            )),
            (Some(before), Some(after)) if before != after => {
                let (tb, ta) = (before.get("type"), after.get("type"));
                if tb != ta {
                    out.push(change(
                        "field",
                        path.clone(),
                        "retyped",
                        true,
                        "type changed: existing values may not conform",
                        tb,
                        ta,
                    ));
                }
                match (
                    before.get("enum").and_then(Value::as_array),
                    after.get("enum").and_then(Value::as_array),
                ) {
                    (Some(eb), Some(ea)) if eb != ea => {
                        let narrowed = eb.iter().any(|v| !ea.contains(v));
                        out.push(change(
                            "enum",
                            path.clone(),
                            if narrowed { "narrowed" } else { "widened" },
                            narrowed,
                            if narrowed {
                                "values removed from enum: records using them fail"
                            } else {
                                "values added to enum"
                            },
                            before.get("enum"),
                            after.get("enum"),
                        ));
                    }
                    (None, Some(_)) => out.push(change(
                        "enum",
                        path.clone(),
                        "narrowed",
                        true,
                        "enum added: other values fail",
                        None,
                        after.get("enum"),
                    )),
                    (Some(_), None) => out.push(change(
                        "enum",
                        path.clone(),
                        "widened",
                        false,
                        "enum removed",
                        before.get("enum"),
                        None,
                    )),
                    _ => {}
                }
                for keyword in CONSTRAINTS {
                    let (b, a) = (before.get(*keyword), after.get(*keyword));
                    if b != a {
                        out.push(change(
                            "constraint",
                            format!("{path}/{keyword}"),
                            if b.is_none() { "added" } else if a.is_none() { "removed" } else { "changed" },
                            a.is_some(),
                            "constraint changed: check existing records with lowcode.plan_migration",
                            b,
                            a,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for field in new_req.difference(&old_req) {
        if old_props.contains_key(field) || !new_props.contains_key(field) {
            out.push(change(
                "required",
                format!("{form}/{field}"),
                "added",
                true,
                "field became required: records without it fail",
                None,
                None,
            ));
        }
    }
    for field in old_req.difference(&new_req) {
        out.push(change(
            "required",
            format!("{form}/{field}"),
            "removed",
            false,
            "field no longer required",
            None,
            None,
        ));
    }
    let rest = |s: Option<&Value>| -> Value {
        let mut s = s.cloned().unwrap_or(Value::Null);
        if let Some(o) = s.as_object_mut() {
            o.remove("properties");
            o.remove("required");
        }
        s
    };
    let (rb, ra) = (rest(old), rest(new));
    if rb != ra {
        out.push(change(
            "schema",
            form.to_owned(),
            "changed",
            true,
            "other schema keywords changed: check existing records with lowcode.plan_migration",
            Some(&rb),
            Some(&ra),
        ));
    }
}

fn diff_workflow(form: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    let (old, new) = (old.filter(|v| !v.is_null()), new.filter(|v| !v.is_null()));
    if old == new {
        return;
    }
    match (old, new) {
        (None, Some(_)) => out.push(change(
            "workflow",
            form.to_owned(),
            "added",
            false,
            "workflow attached: existing records keep their state",
            None,
            None,
        )),
        (Some(_), None) => out.push(change(
            "workflow",
            form.to_owned(),
            "removed",
            false,
            "import never detaches a workflow: it stays as it is",
            None,
            None,
        )),
        (Some(old), Some(new)) => {
            let states = |d: &Value| -> BTreeSet<String> {
                d.get("states")
                    .and_then(Value::as_object)
                    .map(|s| s.keys().cloned().collect())
                    .unwrap_or_default()
            };
            let (sb, sa) = (states(old), states(new));
            for s in sa.difference(&sb) {
                out.push(change(
                    "state",
                    format!("{form}/states/{s}"),
                    "added",
                    false,
                    "new state",
                    None,
                    None,
                ));
            }
            for s in sb.difference(&sa) {
                out.push(change(
                    "state",
                    format!("{form}/states/{s}"),
                    "removed",
                    true,
                    "records in this state need a state mapping",
                    None,
                    None,
                ));
            }
            for (kind, key) in [("transition", "transitions"), ("rule", "rules")] {
                let (lb, la) = (by_name(old.get(key)), by_name(new.get(key)));
                let names: BTreeSet<&String> = lb.iter().chain(la.iter()).map(|(n, _)| n).collect();
                for name in names {
                    let path = format!("{form}/{key}/{name}");
                    match (find(&lb, name), find(&la, name)) {
                        (None, Some(a)) => {
                            out.push(change(kind, path, "added", false, "new", None, Some(a)))
                        }
                        (Some(b), None) => out.push(change(
                            kind,
                            path,
                            "removed",
                            kind == "transition",
                            if kind == "transition" {
                                "in-flight records can no longer take it"
                            } else {
                                "rule removed"
                            },
                            Some(b),
                            None,
                        )),
                        (Some(b), Some(a)) if b != a => out.push(change(
                            kind,
                            path,
                            "changed",
                            kind == "transition",
                            "definition changed",
                            Some(b),
                            Some(a),
                        )),
                        _ => {}
                    }
                }
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(schema: Value, workflow: Value) -> Value {
        json!({"forms": [{"name": "fault", "schema": schema, "workflow": workflow}]})
    }

    type Row = (&'static str, String, &'static str, bool);

    fn kinds(changes: &[Change]) -> Vec<Row> {
        changes
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.path.clone(),
                    c.change,
                    c.detail["breaking"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    fn has(got: &[Row], want: (&str, &str, &str, bool)) -> bool {
        got.iter()
            .any(|(k, p, c, b)| (*k, p.as_str(), *c, *b) == want)
    }

    #[test]
    fn identical_apps_have_no_changes() {
        let a = app(
            json!({"properties": {"a": {"type": "string"}}}),
            Value::Null,
        );
        assert!(diff_app(&a, &a).is_empty());
    }

    #[test]
    fn field_changes_are_classified() {
        let before = app(
            json!({"properties": {"a": {"type": "string"}, "b": {"enum": ["x", "y"]}, "gone": {}}, "required": ["a"]}),
            Value::Null,
        );
        let after = app(
            json!({"properties": {"a": {"type": "integer"}, "b": {"enum": ["x"]}, "c": {"type": "string"}}, "required": ["a", "b", "c"]}),
            Value::Null,
        );
        let got = kinds(&diff_app(&before, &after));
        assert!(has(&got, ("field", "fault/a", "retyped", true)), "{got:?}");
        assert!(has(&got, ("enum", "fault/b", "narrowed", true)), "{got:?}");
        assert!(has(&got, ("field", "fault/c", "added", true)), "{got:?}");
        assert!(
            has(&got, ("field", "fault/gone", "removed", false)),
            "{got:?}"
        );
        assert!(has(&got, ("required", "fault/b", "added", true)), "{got:?}");
    }

    #[test]
    fn forms_and_workflows_are_compared() {
        let wf1 = json!({"states": {"open": {"initial": true}, "done": {"final": true}},
                         "transitions": [{"name": "finish", "from": "open", "to": "done"}]});
        let wf2 = json!({"states": {"open": {"initial": true}, "closed": {"final": true}},
                         "transitions": [{"name": "close", "from": "open", "to": "closed"}]});
        let got = kinds(&diff_app(&app(json!({}), wf1), &app(json!({}), wf2)));
        assert!(
            has(&got, ("state", "fault/states/done", "removed", true)),
            "{got:?}"
        );
        assert!(
            has(&got, ("state", "fault/states/closed", "added", false)),
            "{got:?}"
        );
        assert!(
            has(
                &got,
                ("transition", "fault/transitions/finish", "removed", true)
            ),
            "{got:?}"
        );
        let got = kinds(&diff_app(
            &json!({"forms": []}),
            &app(json!({}), Value::Null),
        ));
        assert_eq!(got.len(), 1);
        assert!(has(&got, ("form", "fault", "added", false)));
    }
}
