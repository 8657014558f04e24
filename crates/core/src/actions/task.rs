//! `{"task": {...}}`: a task for one assignee, role or pool, with its deadline timer when it
//! has a `due` (one statement), and `<app>.task.created` when it announces itself (`events`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::string_or_none;

#[derive(Debug, Clone, Deserialize)]
pub struct TaskDef {
    pub name: String,
    /// The task's title (its name when absent).
    #[serde(default, deserialize_with = "string_or_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub due: Option<String>,
    /// The outcomes `complete_task` accepts (None: any).
    #[serde(default)]
    pub outcomes: Option<Vec<String>>,
    /// A JSON Schema `complete_task`'s data must conform to.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// Write `<app>.task.created`, `.claimed` and `.completed` events for inboxes.
    #[serde(default)]
    pub events: bool,
}

/// The task row to insert, and what to say about it.
#[derive(Debug, PartialEq)]
pub struct TaskPlan<'a> {
    pub name: &'a str,
    /// The pool as written.
    pub pool: Option<&'a str>,
    /// The `pool` column: the pool, or else the role (a role's task is offered to its pool).
    pub pool_column: Option<&'a str>,
    pub role: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub title: &'a str,
    /// A task with an assignee starts `claimed` by them.
    pub claimed: bool,
    /// The interval until its deadline.
    pub due: Option<&'a str>,
    pub outcomes: Option<&'a [String]>,
    pub result_schema: Option<&'a Value>,
    /// Whether `<app>.task.created` is written (only on tables that have the task's app).
    pub announce: bool,
}

/// The task of `def`; `tasks_have_app` says whether `lowcode.tasks` has the columns of 0.3.0
/// (a database not updated yet has neither them nor task events).
pub fn plan(def: &TaskDef, tasks_have_app: bool) -> TaskPlan<'_> {
    let role = def.role.as_deref();
    TaskPlan {
        name: &def.name,
        pool: def.pool.as_deref(),
        pool_column: def.pool.as_deref().or(role),
        role,
        assignee: def.assignee.as_deref(),
        title: def.title.as_deref().unwrap_or(&def.name),
        claimed: def.assignee.is_some(),
        due: def.due.as_deref(),
        outcomes: def.outcomes.as_deref(),
        result_schema: def.result.as_ref(),
        announce: def.events && tasks_have_app,
    }
}

/// The topic of the event announcing a task of `app`.
pub fn created_topic(app: &str) -> String {
    format!("{app}.task.created")
}

impl TaskPlan<'_> {
    /// The extra of the `<app>.task.created` event (its base is [`Subject::base_payload`]).
    pub fn created_event(&self, task: Option<i64>) -> Value {
        json!({"task": task, "name": self.name, "pool": self.pool,
               "role": self.role, "assignee": self.assignee,
               "title": self.title})
    }

    /// The history note (`task_created`).
    pub fn note(&self, task: Option<i64>, rule: &str) -> Value {
        json!({"task": task, "name": self.name, "rule": rule})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::tests::subject;

    fn def(v: Value) -> TaskDef {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_pool_task_is_open_and_titled_by_its_name() {
        let d = def(json!({"name": "fix", "pool": "engineers", "due": "5 minutes"}));
        let p = plan(&d, true);
        assert_eq!(p.name, "fix");
        assert_eq!(
            (p.pool, p.pool_column),
            (Some("engineers"), Some("engineers"))
        );
        assert_eq!((p.role, p.assignee), (None, None));
        assert_eq!(p.title, "fix");
        assert!(!p.claimed && !p.announce);
        assert_eq!(p.due, Some("5 minutes"));
        assert_eq!((p.outcomes, p.result_schema), (None, None));
        assert_eq!(
            p.note(Some(3), "route"),
            json!({"task": 3, "name": "fix", "rule": "route"})
        );
    }

    #[test]
    fn a_role_task_is_offered_to_the_roles_pool() {
        let d = def(json!({"name": "check", "role": "clerk", "title": "Check it"}));
        let p = plan(&d, true);
        assert_eq!(
            (p.pool, p.pool_column, p.role),
            (None, Some("clerk"), Some("clerk"))
        );
        assert_eq!(p.title, "Check it");
        // The event names the pool as written (none), not the pool column.
        assert_eq!(
            p.created_event(Some(4)),
            json!({"task": 4, "name": "check", "pool": null, "role": "clerk",
                   "assignee": null, "title": "Check it"})
        );
    }

    #[test]
    fn an_assigned_task_starts_claimed_and_announces_on_current_tables() {
        let d = def(json!({"name": "sign", "assignee": "ann", "events": true,
                           "outcomes": ["ok", "no"], "result": {"type": "object"}}));
        let p = plan(&d, true);
        assert!(p.claimed && p.announce);
        assert_eq!((p.pool_column, p.assignee), (None, Some("ann")));
        assert_eq!(p.outcomes, Some(&["ok".to_string(), "no".to_string()][..]));
        assert_eq!(p.result_schema, Some(&json!({"type": "object"})));
        assert!(!plan(&d, false).announce);
        assert_eq!(created_topic(subject().app), "shop.task.created");
        assert_eq!(p.created_event(None)["task"], Value::Null);
    }

    #[test]
    fn a_title_that_is_not_text_reads_as_absent() {
        let d = def(json!({"name": "fix", "pool": "p", "title": 5}));
        assert_eq!(plan(&d, true).title, "fix");
    }
}
