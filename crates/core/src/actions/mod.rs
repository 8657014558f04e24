//! The actions of a workflow rule, one typed value from the definition to the engine.
//!
//! A rule's `then` is parsed once into [`Action`]s (the shape is
//! `workflow.schema.json`'s `$defs/action`; the meaning is checked by `workflow::check`), and
//! `workflow::Runtime` keeps that same value for the engine. Each kind has its own file here
//! with its definition and a pure *plan*: what to write, computed from the action and the
//! record's plain data (ids, names, state, data as JSON), unit-tested without PostgreSQL. The
//! extension's `src/actions/` has the matching *apply* step of each kind (the prepared
//! statements), and `src/rules.rs` `run_action` dispatches on [`Action`].
//!
//! The kinds are listed once, as the variants of [`Action`]; [`ActionKind`] is derived from
//! it ([`Action::kind`]) for names and for what the engine does around an action.

pub mod approval;
pub mod call;
pub mod emit;
pub mod notify;
pub mod set;
pub mod task;
pub mod timer;
pub mod transition;

use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

pub use approval::ApprovalDef;
pub use emit::EmitDef;
pub use notify::NotifyDef;
pub use task::TaskDef;
pub use timer::TimerDef;

/// One action of a rule, as written under its one key (`{"task": {...}}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `{"set": {...}}`: merge the object into the record's data.
    Set(Map<String, Value>),
    /// `{"transition": "<state>"}`: move the record to the state.
    Transition(String),
    Task(TaskDef),
    Approval(ApprovalDef),
    Notify(NotifyDef),
    Emit(EmitDef),
    Timer(TimerDef),
    /// `{"call": "<name>"}`: run the function granted under that name at publishing.
    Call(String),
}

/// What an action does, without its argument: [`Action::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Set,
    Transition,
    Task,
    Approval,
    Notify,
    Emit,
    Timer,
    Call,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Set(_) => ActionKind::Set,
            Action::Transition(_) => ActionKind::Transition,
            Action::Task(_) => ActionKind::Task,
            Action::Approval(_) => ActionKind::Approval,
            Action::Notify(_) => ActionKind::Notify,
            Action::Emit(_) => ActionKind::Emit,
            Action::Timer(_) => ActionKind::Timer,
            Action::Call(_) => ActionKind::Call,
        }
    }
}

impl ActionKind {
    /// The action's key in a definition (and in the cause of the changes it makes).
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Set => "set",
            ActionKind::Transition => "transition",
            ActionKind::Task => "task",
            ActionKind::Approval => "approval",
            ActionKind::Notify => "notify",
            ActionKind::Emit => "emit",
            ActionKind::Timer => "timer",
            ActionKind::Call => "call",
        }
    }

    /// Whether the action may change (or delete) the record: the rule then reads it again.
    pub fn writes_record(self) -> bool {
        matches!(
            self,
            ActionKind::Set | ActionKind::Transition | ActionKind::Call
        )
    }

    /// Whether the action reads or references the record in the table (a statement of its
    /// own, or code that may): a new record the journal still holds is written first
    /// (`journal::need_record`). Only `task`, `emit` and `notify` leave everything in the
    /// journal's buffer.
    pub fn needs_record(self) -> bool {
        !matches!(
            self,
            ActionKind::Task | ActionKind::Emit | ActionKind::Notify
        )
    }

    /// Whether the action writes records (or runs code that may): the history notes buffered
    /// so far are written first (`journal::flush`).
    pub fn flushes_first(self) -> bool {
        matches!(
            self,
            ActionKind::Set | ActionKind::Transition | ActionKind::Approval | ActionKind::Call
        )
    }
}

/// The record an action runs on, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: i64,
    pub app: &'a str,
    pub form: &'a str,
    pub state: &'a str,
}

impl Subject<'_> {
    /// What every message about a record's event carries (notify's payload, the base of an
    /// emitted or task event).
    pub fn base_payload(&self, event: &str, rule: &str) -> Value {
        json!({"record": self.id, "app": self.app, "form": self.form, "state": self.state, "event": event, "rule": rule})
    }
}

/// The history note (`rule_action`) of an action that has no note of its own: the rule and
/// the action as written.
pub fn rule_action_note(rule: &str, written: &Value) -> Value {
    json!({"rule": rule, "action": written})
}

/// An optional object: anything else reads as absent (as the engine has always read it).
fn object_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(map) => Some(map),
        _ => None,
    })
}

/// An optional string: anything else reads as absent (as the engine has always read it).
fn string_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn subject() -> Subject<'static> {
        Subject {
            id: 7,
            app: "shop",
            form: "order",
            state: "open",
        }
    }

    #[test]
    fn each_kind_is_named_by_its_key() {
        let written = [
            json!({"set": {"a": 1}}),
            json!({"transition": "done"}),
            json!({"task": {"name": "t", "pool": "p"}}),
            json!({"approval": {"name": "a", "mode": "any", "approvers": ["x"], "on_approve": "y", "on_reject": "n"}}),
            json!({"notify": {"channel": "c"}}),
            json!({"emit": {"topic": "shop.x"}}),
            json!({"timer": {"name": "t", "after": "1 day"}}),
            json!({"call": "f"}),
        ];
        for w in written {
            let action: Action = serde_json::from_value(w.clone()).unwrap();
            let key = w.as_object().unwrap().keys().next().unwrap().clone();
            assert_eq!(action.kind().name(), key);
        }
        assert!(serde_json::from_value::<Action>(json!({"explode": {}})).is_err());
    }

    #[test]
    fn what_the_engine_does_around_each_kind() {
        use ActionKind::*;
        let writes: Vec<_> = [Set, Transition, Task, Approval, Notify, Emit, Timer, Call]
            .into_iter()
            .filter(|k| k.writes_record())
            .collect();
        assert_eq!(writes, [Set, Transition, Call]);
        let flushes: Vec<_> = [Set, Transition, Task, Approval, Notify, Emit, Timer, Call]
            .into_iter()
            .filter(|k| k.flushes_first())
            .collect();
        assert_eq!(flushes, [Set, Transition, Approval, Call]);
        let needs: Vec<_> = [Set, Transition, Task, Approval, Notify, Emit, Timer, Call]
            .into_iter()
            .filter(|k| k.needs_record())
            .collect();
        assert_eq!(needs, [Set, Transition, Approval, Timer, Call]);
        // Every kind that writes the buffer first also needs the record in the table.
        assert!(flushes.iter().all(|k| k.needs_record()));
    }

    #[test]
    fn messages_carry_the_record_and_the_rule() {
        assert_eq!(
            subject().base_payload("created", "route"),
            json!({"record": 7, "app": "shop", "form": "order", "state": "open", "event": "created", "rule": "route"})
        );
        assert_eq!(
            rule_action_note("route", &json!({"call": "f"})),
            json!({"rule": "route", "action": {"call": "f"}})
        );
    }
}
