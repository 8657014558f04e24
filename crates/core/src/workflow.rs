//! Workflow definitions: the state machine, its rules and actions, checked before they are
//! stored, and drawn as a Mermaid diagram.
//!
//! Pure logic, no pgrx. [`Runtime`] is a checked definition as the engine runs it (rules
//! indexed by event); `src/rules.rs` runs it inside PostgreSQL, trusting what [`check`]
//! accepted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

// A rule's actions: one typed value from the definition to the engine (crate::actions).
pub use crate::actions::{Action, ActionKind, ApprovalDef, EmitDef, NotifyDef, TaskDef, TimerDef};

/// The JSON Schema every workflow definition must satisfy (shipped with the extension).
pub const DEFINITION_SCHEMA: &str = include_str!("workflow.schema.json");

/// Why a workflow definition was refused; every variant names where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkflowError {
    #[error("invalid workflow at \"{path}\": {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> WorkflowError {
    WorkflowError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

impl WorkflowError {
    pub fn path(&self) -> &str {
        match self {
            WorkflowError::Invalid { path, .. } => path,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct StateDef {
    #[serde(default)]
    pub initial: bool,
    #[serde(default)]
    pub r#final: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn states(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Transition {
    pub name: String,
    pub from: OneOrMany,
    pub to: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub when: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub name: String,
    pub on: String,
    #[serde(default)]
    pub when: Option<Value>,
    #[serde(default)]
    pub outcome: Option<String>,
    pub then: Vec<Action>,
}

#[derive(Debug, Deserialize)]
pub struct Definition {
    pub states: BTreeMap<String, StateDef>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// What the runtime needs besides the definition itself.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub initial: String,
    pub finals: Vec<String>,
}

fn definition_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(DEFINITION_SCHEMA).expect("the shipped workflow schema is JSON");
        jsonschema::validator_for(&schema).expect("the shipped workflow schema compiles")
    })
}

/// The event kinds a rule can listen to, and what their argument names.
const EVENTS: &[(&str, Option<&str>)] = &[
    ("created", None),
    ("updated", None),
    ("entered", Some("state")),
    ("left", Some("state")),
    ("task_completed", Some("task")),
    ("deadline_passed", Some("task")),
    ("timer", Some("timer")),
    ("approved", Some("approval")),
    ("rejected", Some("approval")),
    ("withdrawn", Some("approval")),
];

/// Check a definition: shape (against [`DEFINITION_SCHEMA`]), then meaning: one initial
/// state, every state named exists and is reachable, no transition out of a final state,
/// unique names, known events, intervals PostgreSQL reads the same way.
pub fn check(definition: &Value) -> Result<(Definition, Checked), WorkflowError> {
    if let Some(error) = definition_validator().iter_errors(definition).next() {
        return Err(invalid(
            error.instance_path().to_string(),
            error.to_string(),
        ));
    }
    let parsed: Definition = serde_json::from_value(definition.clone())
        .map_err(|error| invalid("", error.to_string()))?;
    let checked = check_meaning(&parsed)?;
    Ok((parsed, checked))
}

fn check_meaning(d: &Definition) -> Result<Checked, WorkflowError> {
    for name in d.states.keys() {
        check_identifier(&format!("/states/{name}"), "state", name)?;
    }
    let initials: Vec<&String> = d
        .states
        .iter()
        .filter(|(_, s)| s.initial)
        .map(|(n, _)| n)
        .collect();
    let initial = match initials.as_slice() {
        [one] => (*one).clone(),
        [] => return Err(invalid("/states", "no state is marked \"initial\": true")),
        many => {
            return Err(invalid(
                "/states",
                format!("only one state can be initial, not {}", join(many)),
            ))
        }
    };
    let finals: Vec<String> = d
        .states
        .iter()
        .filter(|(_, s)| s.r#final)
        .map(|(n, _)| n.clone())
        .collect();
    let state = |path: String, name: &str| -> Result<(), WorkflowError> {
        if d.states.contains_key(name) {
            Ok(())
        } else {
            Err(invalid(path, format!("unknown state \"{name}\"")))
        }
    };

    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut transition_names = BTreeSet::new();
    for (i, t) in d.transitions.iter().enumerate() {
        let path = format!("/transitions/{i}");
        check_identifier(&format!("{path}/name"), "transition", &t.name)?;
        if !transition_names.insert(t.name.as_str()) {
            return Err(invalid(
                format!("{path}/name"),
                format!("duplicate transition name \"{}\"", t.name),
            ));
        }
        state(format!("{path}/to"), &t.to)?;
        for (j, from) in t.from.states().into_iter().enumerate() {
            state(format!("{path}/from/{j}"), from)?;
            if d.states[from].r#final {
                return Err(invalid(
                    format!("{path}/from"),
                    format!("\"{from}\" is a final state: nothing leaves it"),
                ));
            }
            edges.entry(from).or_default().insert(t.to.as_str());
        }
        for (j, role) in t.roles.iter().enumerate() {
            check_role(&format!("{path}/roles/{j}"), role)?;
        }
        check_condition(&format!("{path}/when"), t.when.as_ref())?;
    }

    // Names that rules' events can refer to, collected from every action.
    let mut tasks = BTreeSet::new();
    let mut timers = BTreeSet::new();
    let mut approvals = BTreeSet::new();
    let mut rule_names = BTreeSet::new();
    // Rules can move a record from any state, so their targets are reachable from anywhere
    // their event can happen; we treat them as reachable from the initial state's component.
    let mut rule_targets: Vec<&str> = Vec::new();
    for (i, rule) in d.rules.iter().enumerate() {
        let path = format!("/rules/{i}");
        if !rule_names.insert(rule.name.as_str()) {
            return Err(invalid(
                format!("{path}/name"),
                format!("duplicate rule name \"{}\"", rule.name),
            ));
        }
        check_condition(&format!("{path}/when"), rule.when.as_ref())?;
        for (j, action) in rule.then.iter().enumerate() {
            let path = format!("{path}/then/{j}");
            match action {
                Action::Transition(to) => {
                    state(format!("{path}/transition"), to)?;
                    rule_targets.push(to);
                }
                Action::Task(task) => {
                    let targets = [&task.assignee, &task.role, &task.pool]
                        .iter()
                        .filter(|t| t.is_some())
                        .count();
                    if targets != 1 {
                        return Err(invalid(
                            format!("{path}/task"),
                            "a task needs exactly one of \"assignee\", \"role\" or \"pool\"",
                        ));
                    }
                    if let Some(role) = &task.role {
                        check_role(&format!("{path}/task/role"), role)?;
                    }
                    if let Some(due) = &task.due {
                        interval(&format!("{path}/task/due"), due)?;
                    }
                    if let Some(result) = &task.result {
                        if let Err(e) = crate::validation::compile(result) {
                            return Err(invalid(
                                format!("{path}/task/result"),
                                format!("the result schema does not compile: {e}"),
                            ));
                        }
                    }
                    tasks.insert(task.name.as_str());
                }
                Action::Approval(a) => {
                    state(format!("{path}/approval/on_approve"), &a.on_approve)?;
                    state(format!("{path}/approval/on_reject"), &a.on_reject)?;
                    rule_targets.extend([a.on_approve.as_str(), a.on_reject.as_str()]);
                    if let Some(w) = &a.on_withdraw {
                        state(format!("{path}/approval/on_withdraw"), w)?;
                        rule_targets.push(w);
                    }
                    match (a.mode.as_str(), a.required) {
                        ("ratio", None) => {
                            return Err(invalid(
                                format!("{path}/approval"),
                                "mode \"ratio\" needs \"required\": how many of the approvers must approve",
                            ))
                        }
                        ("ratio", Some(n)) if n as usize > a.approvers.len() => {
                            return Err(invalid(
                                format!("{path}/approval/required"),
                                format!("{n} approvals required but only {} approvers", a.approvers.len()),
                            ))
                        }
                        ("ratio", _) => {}
                        (mode, Some(_)) => {
                            return Err(invalid(
                                format!("{path}/approval/required"),
                                format!("\"required\" only applies to mode \"ratio\", not \"{mode}\""),
                            ))
                        }
                        _ => {}
                    }
                    if let Some(due) = &a.due {
                        interval(&format!("{path}/approval/due"), due)?;
                    }
                    approvals.insert(a.name.as_str());
                    tasks.insert(a.name.as_str());
                }
                Action::Timer(t) => {
                    match (&t.after, &t.at_field) {
                        (Some(after), None) => interval(&format!("{path}/timer/after"), after)?,
                        (None, Some(_)) => {}
                        _ => {
                            return Err(invalid(
                                format!("{path}/timer"),
                                "a timer needs exactly one of \"after\" (an interval) or \"at_field\" (a date-time field)",
                            ))
                        }
                    }
                    timers.insert(t.name.as_str());
                }
                Action::Call(function) => {
                    if function.trim().is_empty() {
                        return Err(invalid(
                            format!("{path}/call"),
                            "the function name is empty",
                        ));
                    }
                }
                Action::Set(_) | Action::Notify(_) | Action::Emit(_) => {}
            }
        }
    }

    for (i, rule) in d.rules.iter().enumerate() {
        let path = format!("/rules/{i}/on");
        let (kind, arg) = match rule.on.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (rule.on.as_str(), None),
        };
        let Some((_, wants)) = EVENTS.iter().find(|(k, _)| *k == kind) else {
            let known: Vec<&str> = EVENTS.iter().map(|(k, _)| *k).collect();
            return Err(invalid(
                path,
                format!(
                    "unknown event \"{}\" (events: {})",
                    rule.on,
                    known.join(", ")
                ),
            ));
        };
        match (wants, arg) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(invalid(
                    path,
                    format!("event \"{kind}\" takes no \":name\""),
                ))
            }
            (Some(what), None) => {
                return Err(invalid(
                    path,
                    format!("event \"{kind}\" needs a {what}: \"{kind}:<{what}>\""),
                ))
            }
            (Some(what), Some(name)) => {
                let known = match *what {
                    "state" => d.states.contains_key(name),
                    _ if name == "*" => true,
                    "task" => tasks.contains(name),
                    "timer" => timers.contains(name),
                    _ => approvals.contains(name),
                };
                if !known {
                    return Err(invalid(
                        path,
                        format!("unknown {what} \"{name}\" in event \"{}\"", rule.on),
                    ));
                }
            }
        }
    }

    // Reachability from the initial state through transitions and rule/approval targets.
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = VecDeque::from([initial.as_str()]);
    while let Some(s) = queue.pop_front() {
        if reached.insert(s) {
            queue.extend(edges.get(s).into_iter().flatten().copied());
            if reached.len() == 1 {
                queue.extend(rule_targets.iter().copied());
            }
        }
    }
    if let Some(lost) = d.states.keys().find(|s| !reached.contains(s.as_str())) {
        return Err(invalid(
            format!("/states/{lost}"),
            format!("state \"{lost}\" is unreachable from the initial state \"{initial}\""),
        ));
    }
    Ok(Checked { initial, finals })
}

/// Conditions (`when`) are JSON Schemas evaluated against the record's data.
fn check_condition(path: &str, condition: Option<&Value>) -> Result<(), WorkflowError> {
    match condition {
        None => Ok(()),
        Some(schema) => crate::validation::compile(schema)
            .map(|_| ())
            .map_err(|e| invalid(path, format!("not a valid JSON Schema: {e}"))),
    }
}

fn check_identifier(path: &str, kind: &str, name: &str) -> Result<(), WorkflowError> {
    crate::definitions::check_name(kind, name).map_err(|e| invalid(path, e.to_string()))
}

fn check_role(path: &str, role: &str) -> Result<(), WorkflowError> {
    if role.is_empty() || role.len() > crate::definitions::MAX_NAME_LEN {
        return Err(invalid(path, "a role name is 1 to 63 bytes long"));
    }
    Ok(())
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Intervals are written as `<number> <unit>` pairs ("5 minutes", "1 day 12 hours"), which
/// PostgreSQL's `interval` reads the same way everywhere (no DateStyle surprises).
pub fn interval(path: &str, text: &str) -> Result<(), WorkflowError> {
    const UNITS: &[&str] = &["second", "minute", "hour", "day", "week", "month", "year"];
    let words: Vec<&str> = text.split_whitespace().collect();
    let well_formed = !words.is_empty()
        && words.len().is_multiple_of(2)
        && words.chunks(2).all(|pair| {
            pair[0]
                .parse::<f64>()
                .is_ok_and(|n| n.is_finite() && n >= 0.0)
                && UNITS.contains(&pair[1].trim_end_matches('s'))
        });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("\"{text}\" is not an interval like \"5 minutes\" or \"1 day 12 hours\""),
        ))
    }
}

/// A Mermaid `stateDiagram-v2` of the machine: transitions by name, rule moves and approval
/// outcomes labelled with the rule that causes them.
pub fn mermaid(d: &Definition) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for (name, s) in &d.states {
        if s.initial {
            out.push_str(&format!("    [*] --> {name}\n"));
        }
    }
    for t in &d.transitions {
        for from in t.from.states() {
            out.push_str(&format!("    {from} --> {}: {}\n", t.to, t.name));
        }
    }
    for rule in &d.rules {
        let from = match rule.on.split_once(':') {
            Some(("entered", state)) => Some(state),
            _ => None,
        };
        for action in &rule.then {
            let moves: Vec<(String, &str)> = match action {
                Action::Transition(to) => vec![(format!("rule {}", rule.name), to.as_str())],
                Action::Approval(a) => vec![
                    (format!("{} approved", a.name), a.on_approve.as_str()),
                    (format!("{} rejected", a.name), a.on_reject.as_str()),
                ],
                _ => vec![],
            };
            for (label, to) in moves {
                match from {
                    Some(from) => out.push_str(&format!("    {from} --> {to}: {label}\n")),
                    None => {
                        out.push_str(&format!("    note right of {to}: {label} ({})\n", rule.on))
                    }
                }
            }
        }
    }
    for (name, s) in &d.states {
        if s.r#final {
            out.push_str(&format!("    {name} --> [*]\n"));
        }
    }
    out
}

/// One action of a rule as the engine runs it: the typed action (what [`check`] accepted),
/// and the action as written (history shows it).
#[derive(Debug, Clone)]
pub struct RuntimeAction {
    pub action: Action,
    pub written: Value,
}

impl RuntimeAction {
    pub fn kind(&self) -> ActionKind {
        self.action.kind()
    }
}

/// A rule as the engine runs it.
#[derive(Debug)]
pub struct RuntimeRule {
    pub name: String,
    pub on: String,
    pub when: Option<Value>,
    pub outcome: Option<String>,
    pub actions: Vec<RuntimeAction>,
}

/// A named transition as `lowcode.transition` fires it.
#[derive(Debug)]
pub struct RuntimeTransition {
    pub to: String,
    pub from: Vec<String>,
    pub roles: Vec<String>,
    pub when: Option<Value>,
}

/// A stored (checked) workflow version, compiled for the engine: its states, its transitions
/// by name, and its rules indexed by the event they listen to, so that finding a write's
/// rules (or a transition) is a map lookup.
#[derive(Debug)]
pub struct Runtime {
    pub initial: String,
    pub finals: Vec<String>,
    pub states: BTreeSet<String>,
    pub transitions: BTreeMap<String, RuntimeTransition>,
    pub rules: Vec<RuntimeRule>,
    by_event: BTreeMap<String, Vec<usize>>,
}

impl Runtime {
    /// Compile a definition that [`check`] accepted, with the initial and final states
    /// stored next to it in `workflow_versions`.
    pub fn new(
        definition: &Value,
        initial: String,
        finals: Vec<String>,
    ) -> Result<Runtime, WorkflowError> {
        let parsed: Definition = serde_json::from_value(definition.clone())
            .map_err(|error| invalid("", error.to_string()))?;
        let states = parsed.states.keys().cloned().collect();
        let transitions = parsed
            .transitions
            .into_iter()
            .map(|t| {
                let from = t.from.states().into_iter().map(str::to_owned).collect();
                (
                    t.name,
                    RuntimeTransition {
                        to: t.to,
                        from,
                        roles: t.roles,
                        when: t.when,
                    },
                )
            })
            .collect();
        let mut rules = Vec::with_capacity(parsed.rules.len());
        let mut by_event: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, rule) in parsed.rules.into_iter().enumerate() {
            // The actions as written, for history (the parse above read the same array).
            let written = definition
                .get("rules")
                .and_then(|rules| rules.get(i))
                .and_then(|raw| raw.get("then"))
                .and_then(Value::as_array);
            let actions = rule
                .then
                .into_iter()
                .enumerate()
                .map(|(j, action)| RuntimeAction {
                    action,
                    written: written
                        .and_then(|w| w.get(j))
                        .cloned()
                        .unwrap_or(Value::Null),
                })
                .collect();
            by_event.entry(rule.on.clone()).or_default().push(i);
            rules.push(RuntimeRule {
                name: rule.name,
                on: rule.on,
                when: rule.when,
                outcome: rule.outcome,
                actions,
            });
        }
        Ok(Runtime {
            initial,
            finals,
            states,
            transitions,
            rules,
            by_event,
        })
    }

    /// The rules listening to `event` (by name, or by its `<kind>:*` wildcard), in definition
    /// order.
    pub fn rules_for(&self, event: &str) -> Vec<usize> {
        let mut found: Vec<usize> = self.by_event.get(event).cloned().unwrap_or_default();
        let kind = event.split(':').next().unwrap_or(event);
        if let Some(wild) = self.by_event.get(&format!("{kind}:*")) {
            found.extend(wild);
            found.sort_unstable();
            found.dedup();
        }
        found
    }

    pub fn is_final(&self, state: &str) -> bool {
        self.finals.iter().any(|f| f == state)
    }
}

/// The events a write of a record fires, in order: an insert is `created` then
/// `entered:<state>`; an update is `updated` (when the data changed), then `left:<old>` and
/// `entered:<new>` (when the state changed).
pub fn write_events(old_state: Option<&str>, new_state: &str, data_changed: bool) -> Vec<String> {
    match old_state {
        None => vec!["created".into(), format!("entered:{new_state}")],
        Some(old) => {
            let mut events = Vec::new();
            if data_changed {
                events.push("updated".into());
            }
            if old != new_state {
                events.push(format!("left:{old}"));
                events.push(format!("entered:{new_state}"));
            }
            events
        }
    }
}

/// The action of a history row for an update of a record, from its cause.
pub fn update_action(cause: Option<&Value>, data_changed: bool) -> &'static str {
    let has = |key: &str| cause.and_then(|c| c.get(key)).is_some();
    if has("migration") {
        "migrated"
    } else if has("transition") {
        "transition"
    } else if has("approval") {
        "approval"
    } else if has("rule") {
        "rule"
    } else if data_changed {
        "updated"
    } else {
        "state_changed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inspection() -> Value {
        json!({
            "states": {"open": {"initial": true}, "claimed": {}, "resolved": {"final": true}},
            "transitions": [
                {"name": "claim", "from": "open", "to": "claimed"},
                {"name": "resolve", "from": ["claimed"], "to": "resolved", "roles": ["engineer"]}
            ],
            "rules": [
                {"name": "route", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
                 "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 minutes"}},
                          {"emit": {"topic": "fault.severe"}}]},
                {"name": "done", "on": "task_completed:fix", "then": [{"transition": "resolved"}]}
            ]
        })
    }

    fn error_of(v: Value) -> WorkflowError {
        check(&v).map(|_| ()).unwrap_err()
    }

    #[test]
    fn a_good_definition_passes() {
        let (_, checked) = check(&inspection()).unwrap();
        assert_eq!(checked.initial, "open");
        assert_eq!(checked.finals, vec!["resolved".to_string()]);
    }

    #[test]
    fn shape_errors_name_the_path() {
        let mut d = inspection();
        d["rules"][0]["then"][1] = json!({"explode": {}});
        assert_eq!(error_of(d).path(), "/rules/0/then/1");
        let e = error_of(json!({"states": {}, "extra": 1}));
        assert!(
            e.to_string().contains("extra") || e.path() == "/states",
            "{e}"
        );
    }

    #[test]
    fn unknown_states_are_refused() {
        let mut d = inspection();
        d["transitions"][0]["to"] = json!("nowhere");
        let e = error_of(d);
        assert_eq!(e.path(), "/transitions/0/to");
        assert!(e.to_string().contains("unknown state \"nowhere\""));
    }

    #[test]
    fn unreachable_states_are_refused() {
        let mut d = inspection();
        d["states"]["limbo"] = json!({});
        let e = error_of(d);
        assert_eq!(e.path(), "/states/limbo");
        assert!(e.to_string().contains("unreachable"));
    }

    #[test]
    fn duplicates_initials_and_finals_are_checked() {
        let mut d = inspection();
        d["transitions"][1]["name"] = json!("claim");
        assert_eq!(error_of(d).path(), "/transitions/1/name");
        let mut d = inspection();
        d["states"]["claimed"]["initial"] = json!(true);
        assert!(error_of(d)
            .to_string()
            .contains("only one state can be initial"));
        let mut d = inspection();
        d["transitions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "reopen", "from": "resolved", "to": "open"}));
        assert!(error_of(d).to_string().contains("final state"));
    }

    #[test]
    fn events_must_exist() {
        let mut d = inspection();
        d["rules"][1]["on"] = json!("task_completed:fixx");
        assert!(error_of(d).to_string().contains("unknown task \"fixx\""));
        let mut d = inspection();
        d["rules"][1]["on"] = json!("exploded");
        assert!(error_of(d).to_string().contains("unknown event"));
        let mut d = inspection();
        d["rules"][1]["on"] = json!("entered");
        assert!(error_of(d).to_string().contains("needs a state"));
    }

    #[test]
    fn tasks_need_one_target_and_a_real_interval() {
        let mut d = inspection();
        d["rules"][0]["then"][0]["task"]["role"] = json!("engineer");
        assert_eq!(error_of(d).path(), "/rules/0/then/0/task");
        let mut d = inspection();
        d["rules"][0]["then"][0]["task"]["due"] = json!("soon");
        assert_eq!(error_of(d).path(), "/rules/0/then/0/task/due");
        assert!(interval("", "1 day 12 hours").is_ok());
        assert!(interval("", "5 minute").is_ok());
        assert!(interval("", "-5 minutes").is_err());
        assert!(interval("", "5").is_err());
    }

    #[test]
    fn ratio_approvals_need_a_count() {
        let mut d = inspection();
        d["rules"][0]["then"][0] = json!({"approval": {"name": "a", "mode": "ratio", "approvers": ["x", "y"],
            "on_approve": "resolved", "on_reject": "open"}});
        d["rules"][1]["on"] = json!("approved:a");
        assert!(error_of(d).to_string().contains("needs \"required\""));
    }

    #[test]
    fn conditions_must_compile() {
        let mut d = inspection();
        d["rules"][0]["when"] = json!({"type": "nonsense"});
        assert_eq!(error_of(d).path(), "/rules/0/when");
    }

    #[test]
    fn mermaid_draws_states_and_moves() {
        let (d, _) = check(&inspection()).unwrap();
        let m = mermaid(&d);
        assert!(m.starts_with("stateDiagram-v2\n"));
        assert!(m.contains("    [*] --> open\n"));
        assert!(m.contains("    open --> claimed: claim\n"));
        assert!(m.contains("    claimed --> resolved: resolve\n"));
        assert!(m.contains("    resolved --> [*]\n"));
        assert!(m.contains("rule done"));
    }

    fn runtime(v: &Value) -> Runtime {
        let (_, checked) = check(v).unwrap();
        Runtime::new(v, checked.initial, checked.finals).unwrap()
    }

    #[test]
    fn runtime_indexes_rules_by_event_and_wildcard() {
        let mut d = inspection();
        d["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "any_task", "on": "task_completed:*", "then": [{"emit": {"topic": "t"}}]}));
        let rt = runtime(&d);
        assert_eq!(rt.initial, "open");
        assert!(rt.is_final("resolved") && !rt.is_final("open"));
        assert_eq!(rt.rules_for("created"), vec![0]);
        assert_eq!(rt.rules_for("task_completed:fix"), vec![1, 2]);
        assert_eq!(rt.rules_for("task_completed:other"), vec![2]);
        assert!(rt.rules_for("updated").is_empty());
        let route = &rt.rules[0];
        assert_eq!(route.actions[0].kind(), ActionKind::Task);
        let Action::Task(task) = &route.actions[0].action else {
            panic!("not a task")
        };
        assert_eq!(task.due.as_deref(), Some("5 minutes"));
        assert_eq!(route.actions[1].kind(), ActionKind::Emit);
        assert_eq!(
            route.actions[1].written,
            json!({"emit": {"topic": "fault.severe"}})
        );
        assert!(route.when.is_some());
    }

    #[test]
    fn runtime_finds_transitions_by_name() {
        let mut d = inspection();
        d["transitions"][0]["when"] = json!({"required": ["note"]});
        let rt = runtime(&d);
        assert_eq!(
            rt.transitions
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            vec!["claim", "resolve"]
        );
        let claim = &rt.transitions["claim"];
        assert_eq!(
            (claim.from.as_slice(), claim.to.as_str()),
            (&["open".to_owned()][..], "claimed")
        );
        assert!(claim.roles.is_empty());
        assert_eq!(claim.when, Some(json!({"required": ["note"]})));
        let resolve = &rt.transitions["resolve"];
        assert_eq!(resolve.from, vec!["claimed"]);
        assert_eq!(resolve.roles, vec!["engineer"]);
        assert!(resolve.when.is_none());
    }

    #[test]
    fn a_write_fires_its_events_in_order() {
        assert_eq!(
            write_events(None, "open", true),
            vec!["created", "entered:open"]
        );
        assert_eq!(write_events(Some("open"), "open", true), vec!["updated"]);
        assert!(write_events(Some("open"), "open", false).is_empty());
        assert_eq!(
            write_events(Some("open"), "done", true),
            vec!["updated", "left:open", "entered:done"]
        );
        assert_eq!(
            write_events(Some("open"), "done", false),
            vec!["left:open", "entered:done"]
        );
    }

    #[test]
    fn history_names_an_update_by_its_cause() {
        assert_eq!(
            update_action(Some(&json!({"migration": 2})), true),
            "migrated"
        );
        assert_eq!(
            update_action(Some(&json!({"transition": "go"})), true),
            "transition"
        );
        assert_eq!(
            update_action(Some(&json!({"approval": "a"})), false),
            "approval"
        );
        assert_eq!(update_action(Some(&json!({"rule": "r"})), true), "rule");
        assert_eq!(update_action(None, true), "updated");
        assert_eq!(update_action(Some(&json!({})), false), "state_changed");
    }
}
