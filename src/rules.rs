//! The workflow at run time: a write's events (`created`, `updated`, `left:<state>`,
//! `entered:<state>`, and from the runtime `task_completed:<task>`, `deadline_passed:<task>`,
//! `timer:<name>`, `approved:` / `rejected:` / `withdrawn:<approval>`) run the rules of the
//! record's workflow version that listen to them, in definition order; a rule whose `when`
//! (a compiled validator) and `outcome` match runs its actions.
//!
//! The workflow comes compiled from the per-backend cache ([`definitions_cache::workflow`]); the
//! record comes from the trigger's row and is read again only after an action that may have
//! changed it (`set`, `transition`, `call`). Every statement is prepared once per backend.

use pgrx::pg_sys::BuiltinOid::{
    BOOLOID, INT4OID, INT8OID, JSONBOID, OIDARRAYOID, OIDOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID,
};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};

use crate::conformance::{self, ConformanceError};
use crate::definitions_cache::{self, CatalogError, CompiledWorkflow};
use crate::engine_state::{self, Slot};
use crate::identity;
use crate::journal::{self, Record};
use crate::jsonb::{jsonb_text, OwnedJsonb};
use crate::report::{raise, Reportable};
use crate::statements::{self, jsonb_arg, Statement};
use crate::workflow::{self, ActionKind, RuntimeAction};

/// Why a rule could not run.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Spi(#[from] pgrx::spi::SpiError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("{message}")]
    Refused {
        code: PgSqlErrorCode,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
}

impl Reportable for RulesError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            RulesError::Catalog(error) => error.sqlstate(),
            RulesError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            RulesError::Identity(error) => error.sqlstate(),
            RulesError::Refused { code, .. } => *code,
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            RulesError::Refused { detail, .. } => detail.clone(),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RulesError::Catalog(error) => error.hint(),
            RulesError::Refused { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

fn refused(code: PgSqlErrorCode, message: String) -> RulesError {
    RulesError::Refused {
        code,
        message,
        detail: None,
        hint: None,
    }
}

type Result<T> = std::result::Result<T, RulesError>;

// ------------------------------------------------------------------ statements

const CANCEL_STATE_TIMERS: Statement = Statement {
    sql: "UPDATE lowcode.timers t SET status = 'cancelled' \
          WHERE t.record_id OPERATOR(pg_catalog.=) $1 AND t.status OPERATOR(pg_catalog.=) 'pending' \
            AND t.in_state OPERATOR(pg_catalog.=) $2",
    args: &[INT8OID, TEXTOID],
};
// A finished record has no work left: its open tasks, pending approvals and timers end.
const FINISH: Statement = Statement {
    sql: "WITH tasks AS (UPDATE lowcode.tasks t SET status = 'cancelled' \
                          WHERE t.record_id OPERATOR(pg_catalog.=) $1 \
                            AND t.status OPERATOR(pg_catalog.=) ANY ('{open,claimed}'::pg_catalog.text[])), \
               approvals AS (UPDATE lowcode.approvals a SET status = 'withdrawn', decided_at = pg_catalog.now() \
                              WHERE a.record_id OPERATOR(pg_catalog.=) $1 AND a.status OPERATOR(pg_catalog.=) 'pending') \
          UPDATE lowcode.timers t SET status = 'cancelled' \
           WHERE t.record_id OPERATOR(pg_catalog.=) $1 AND t.status OPERATOR(pg_catalog.=) 'pending'",
    args: &[INT8OID],
};
const SET_DATA: Statement = Statement {
    sql: "UPDATE lowcode.records r SET data = $2 WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, JSONBOID],
};
const SET_STATE: Statement = Statement {
    sql: "UPDATE lowcode.records r SET state = $2 WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TEXTOID],
};
const MERGE: Statement = Statement {
    sql: "SELECT $1 OPERATOR(pg_catalog.||) $2",
    args: &[JSONBOID, JSONBOID],
};
// A task, and its deadline timer when it has one: one statement.
const CREATE_TASK: Statement = Statement {
    sql: "WITH task AS ( \
            INSERT INTO lowcode.tasks (record_id, name, pool, role, assignee, title, status, claimed_by, claimed_at, due_at, \
                                       app, form, outcomes, result_schema, events) \
            VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN 'claimed' ELSE 'open' END, $5, \
                    CASE WHEN $7 THEN pg_catalog.now() END, \
                    pg_catalog.now() OPERATOR(pg_catalog.+) $8::pg_catalog.interval, \
                    $9, $10, $11, $12, $13) \
            RETURNING id, due_at), \
          deadline AS ( \
            INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at) \
            SELECT $1, $2, 'deadline_passed:' OPERATOR(pg_catalog.||) $2, task.id, task.due_at \
              FROM task WHERE task.due_at IS NOT NULL) \
          SELECT task.id, task.due_at FROM task",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID,
        pgrx::pg_sys::BuiltinOid::TEXTARRAYOID, JSONBOID, BOOLOID,
    ],
};
// The same on 0.2.0's tables (a database not updated yet runs this library).
const CREATE_TASK_0_2: Statement = Statement {
    sql: "WITH task AS ( \
            INSERT INTO lowcode.tasks (record_id, name, pool, role, assignee, title, status, claimed_by, claimed_at, due_at) \
            VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN 'claimed' ELSE 'open' END, $5, \
                    CASE WHEN $7 THEN pg_catalog.now() END, \
                    pg_catalog.now() OPERATOR(pg_catalog.+) $8::pg_catalog.interval) \
            RETURNING id, due_at), \
          deadline AS ( \
            INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at) \
            SELECT $1, $2, 'deadline_passed:' OPERATOR(pg_catalog.||) $2, task.id, task.due_at \
              FROM task WHERE task.due_at IS NOT NULL) \
          SELECT task.id, task.due_at FROM task",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID,
    ],
};
const CREATE_APPROVAL: Statement = Statement {
    sql: "INSERT INTO lowcode.approvals (record_id, name, mode, approvers, required, on_approve, on_reject, on_withdraw, due) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.interval) RETURNING id",
    args: &[
        INT8OID, TEXTOID, TEXTOID, pgrx::pg_sys::BuiltinOid::TEXTARRAYOID, INT4OID, TEXTOID,
        TEXTOID, TEXTOID, TEXTOID,
    ],
};
const APPROVAL_TASKS: Statement = Statement {
    sql: "SELECT pg_catalog.count(lowcode.approval_task(a, x.approver)) \
            FROM lowcode.approvals a, \
                 LATERAL pg_catalog.unnest(CASE WHEN a.mode OPERATOR(pg_catalog.=) 'sequential' \
                                                THEN a.approvers[1:1] ELSE a.approvers END) AS x(approver) \
           WHERE a.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};
const SET_TIMER: Statement = Statement {
    sql: "WITH cancelled AS ( \
            UPDATE lowcode.timers t SET status = 'cancelled' \
             WHERE t.record_id OPERATOR(pg_catalog.=) $1 AND t.name OPERATOR(pg_catalog.=) $2 \
               AND t.status OPERATOR(pg_catalog.=) 'pending' AND t.task_id IS NULL) \
          INSERT INTO lowcode.timers (record_id, name, event, in_state, fire_at) \
          VALUES ($1, $2, 'timer:' OPERATOR(pg_catalog.||) $2, $3, $4)",
    args: &[INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID],
};
const TIMER_AFTER: Statement = Statement {
    sql: "SELECT pg_catalog.now() OPERATOR(pg_catalog.+) $1::pg_catalog.interval",
    args: &[TEXTOID],
};
const NOTIFY: Statement = Statement {
    sql: "SELECT pg_catalog.pg_notify($1, $2)",
    args: &[TEXTOID, TEXTOID],
};
/// A call action's grant (run as the owner of lowcode.call_grants, the only role that may
/// read it): the function's qualified name, whether it returns jsonb, and the role to run it as.
const CALL_GRANT: Statement = Statement {
    sql: "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' \
                 OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.proname), \
                 p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype, \
                 g.run_as::pg_catalog.oid \
            FROM lowcode.call_grants g \
            JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.function::pg_catalog.oid \
            JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
           WHERE g.workflow_version_id OPERATOR(pg_catalog.=) $1 AND g.name OPERATOR(pg_catalog.=) $2",
    args: &[INT8OID, TEXTOID],
};
/// The grants of a new workflow version (run as the owner of lowcode.call_grants).
const GRANT_CALLS: Statement = Statement {
    sql: "INSERT INTO lowcode.call_grants (workflow_version_id, name, function, run_as) \
          SELECT $1, c.name, c.fn::pg_catalog.regprocedure, $4::pg_catalog.regrole \
            FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.oid[])) AS c(name, fn) \
           WHERE c.fn IS NOT NULL \
          ON CONFLICT (workflow_version_id, name) DO UPDATE \
             SET function = EXCLUDED.function, run_as = EXCLUDED.run_as",
    args: &[INT8OID, TEXTARRAYOID, OIDARRAYOID, OIDOID],
};
/// Who owns lowcode.call_grants (a superuser in every install).
const CALL_GRANTS_OWNER: Statement = Statement {
    sql: "SELECT c.relowner FROM pg_catalog.pg_class c \
           WHERE c.oid OPERATOR(pg_catalog.=) 'lowcode.call_grants'::pg_catalog.regclass",
    args: &[],
};
const APP_EXISTS: Statement = Statement {
    sql: "SELECT EXISTS (SELECT FROM lowcode.apps a WHERE a.name OPERATOR(pg_catalog.=) $1)",
    args: &[TEXTOID],
};
const RECORD_JSON: Statement = Statement {
    sql:
        "SELECT pg_catalog.to_jsonb(r) FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};
// ------------------------------------------------------------------ entry points

/// After a write of `record` (from the records trigger): timers of the state it left end,
/// a record that reached a final state has no work left, then the write's events fire.
pub fn after_write(record: Record, old_state: Option<&str>, data_changed: bool) -> Result<()> {
    let Some(wf) = definitions_cache::current_workflow(&record.app, &record.form)? else {
        return Ok(());
    };
    if let Some(old) = old_state.filter(|&old| old != record.state) {
        Spi::connect_mut(|client| {
            statements::run(
                client,
                &CANCEL_STATE_TIMERS,
                &[record.id.into(), old.into()],
            )?;
            if wf.runtime.is_final(&record.state) {
                statements::run(client, &FINISH, &[record.id.into()])?;
            }
            Ok::<_, pgrx::spi::SpiError>(())
        })?;
    }
    let events = workflow::write_events(old_state, &record.state, data_changed);
    let mut current = Some(record);
    for event in events {
        let rules = wf.runtime.rules_for(&event);
        if rules.is_empty() {
            continue;
        }
        let Some(record) = current else { break };
        current = run_rules(&wf, &rules, record, &event, None)?;
    }
    Ok(())
}

/// Internal: runs the rules of the record's workflow that listen to event (and whose when /
/// outcome match), in definition order. Cascades are bounded by lowcode.max_cascade.
#[pg_extern(volatile)]
fn fire(record: Option<i64>, event: Option<&str>, context: default!(Option<JsonB>, "'{}'")) {
    let (Some(record), Some(event)) = (record, event) else {
        return;
    };
    let run = || -> Result<()> {
        let Some(r) = journal::read_record(record)? else {
            return Ok(());
        };
        let Some(wf) = definitions_cache::current_workflow(&r.app, &r.form)? else {
            return Ok(());
        };
        let rules = wf.runtime.rules_for(event);
        if rules.is_empty() {
            return Ok(());
        }
        let outcome = context
            .as_ref()
            .and_then(|c| c.0.get("outcome"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        run_rules(&wf, &rules, r, event, outcome.as_deref())?;
        Ok(())
    };
    run().unwrap_or_else(|error| raise("", error));
    journal::flush();
}

/// Run `rules` (positions in `wf`) for `event` on `record`; the record as it is afterwards
/// (None when a rule deleted it).
pub fn run_rules(
    wf: &CompiledWorkflow,
    rules: &[usize],
    mut record: Record,
    event: &str,
    outcome: Option<&str>,
) -> Result<Option<Record>> {
    let limit = engine_state::MAX_CASCADE.get().max(1) as usize;
    let depth_limit = definitions_cache::max_document_depth();
    for &position in rules {
        let rule = &wf.runtime.rules[position];
        if rule.outcome.is_some() && rule.outcome.as_deref() != outcome {
            continue;
        }
        if let Some(condition) = &wf.conditions[position] {
            let matches = condition
                .is_valid(record.data.container(), depth_limit)
                .map_err(|error| {
                    refused(
                        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                        error.to_string(),
                    )
                })?;
            if !matches {
                continue;
            }
        }
        let chain = engine_state::get(Slot::RuleChain).unwrap_or_default();
        let depth = if chain.is_empty() {
            0
        } else {
            chain.split(" → ").count()
        };
        if depth >= limit {
            return Err(RulesError::Refused {
                code: PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                message: format!(
                    "{}.{}: rules cascade more than {limit} deep on record {}",
                    record.app, record.form, record.id
                ),
                detail: Some(format!("rules in the loop: {chain} → {}", rule.name)),
                hint: Some("a rule's actions trigger the rule again; add a \"when\" condition that stops it (lowcode.max_cascade sets the limit)".into()),
            });
        }
        let nested = if chain.is_empty() {
            rule.name.clone()
        } else {
            format!("{chain} → {}", rule.name)
        };
        engine_state::set(Slot::RuleChain, Some(nested));
        for action in &rule.actions {
            let previous = engine_state::set(
                Slot::Cause,
                Some(json!({"rule": rule.name, "action": action.kind.name()}).to_string()),
            );
            let result = run_action(wf, &record, &rule.name, event, action);
            engine_state::set(Slot::Cause, previous);
            result?;
            if action.kind.writes_record() {
                match journal::read_record(record.id)? {
                    Some(now) => record = now,
                    None => {
                        engine_state::set(Slot::RuleChain, (!chain.is_empty()).then_some(chain));
                        return Ok(None);
                    }
                }
            }
        }
        engine_state::set(Slot::RuleChain, (!chain.is_empty()).then_some(chain));
    }
    Ok(Some(record))
}

// ------------------------------------------------------------------ actions

fn arg_str<'a>(arg: &'a Value, key: &str) -> Option<&'a str> {
    arg.get(key).and_then(Value::as_str)
}

fn run_action(
    wf: &CompiledWorkflow,
    r: &Record,
    rule: &str,
    event: &str,
    action: &RuntimeAction,
) -> Result<()> {
    let arg = &action.arg;
    if matches!(
        action.kind,
        ActionKind::Set | ActionKind::Transition | ActionKind::Approval | ActionKind::Call
    ) {
        // These write records (or run code that may): the notes so far come first.
        journal::flush();
    }
    match action.kind {
        ActionKind::Set => {
            let merged = merge(&r.data, arg)?;
            // Checked here too (the records trigger checks again) so the error names the rule.
            if let Err(error) = conformance::check(&r.app, &r.form, merged.container()) {
                return Err(invalid_data(
                    r,
                    error,
                    format!("rule \"{rule}\" on record {}: its \"set\" action would make the data invalid", r.id),
                    "make the rule's \"set\" agree with the form's schema".into(),
                ));
            }
            Spi::connect_mut(|client| {
                statements::run(client, &SET_DATA, &[r.id.into(), jsonb_arg(merged.datum())])
                    .map(|_| ())
            })?;
        }
        ActionKind::Transition => {
            let to = arg.as_str().unwrap_or_default();
            if r.state != to {
                Spi::connect_mut(|client| {
                    statements::run(client, &SET_STATE, &[r.id.into(), to.into()]).map(|_| ())
                })?;
            }
        }
        ActionKind::Task => {
            let name = arg_str(arg, "name").unwrap_or_default();
            let assignee = arg_str(arg, "assignee");
            let outcomes: Option<Vec<String>> = arg.get("outcomes").and_then(|o| {
                o.as_array().map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
            });
            let result_schema = arg.get("result").cloned().map(pgrx::JsonB);
            let announce = arg.get("events").and_then(Value::as_bool).unwrap_or(false);
            let current = crate::tasks::tasks_have_app();
            let announce = announce && current;
            let task: Option<i64> = Spi::connect_mut(|client| {
                let mut args = vec![
                    r.id.into(),
                    name.into(),
                    arg_str(arg, "pool").or(arg_str(arg, "role")).into(),
                    arg_str(arg, "role").into(),
                    assignee.into(),
                    arg_str(arg, "title").unwrap_or(name).into(),
                    assignee.is_some().into(),
                    arg_str(arg, "due").into(),
                ];
                let statement = if current {
                    args.extend([
                        r.app.as_str().into(),
                        r.form.as_str().into(),
                        outcomes.into(),
                        result_schema.into(),
                        announce.into(),
                    ]);
                    &CREATE_TASK
                } else {
                    &CREATE_TASK_0_2
                };
                let row = statements::run(client, statement, &args)?.first();
                // The deadline's time, for the worker pool (src/worker_registry.rs).
                if let Some(due) = row.get_datum_by_ordinal(2)? {
                    crate::worker_registry::note_due(due.value() as i64);
                }
                row.get::<i64>(1)
            })?;
            if announce {
                journal::event(
                    r,
                    &format!("{}.task.created", r.app),
                    &base_payload(r, event, rule),
                    &json!({"task": task, "name": name, "pool": arg_str(arg, "pool"),
                            "role": arg_str(arg, "role"), "assignee": assignee,
                            "title": arg_str(arg, "title").unwrap_or(name)}),
                );
            }
            note(
                r,
                "task_created",
                &json!({"task": task, "name": name, "rule": rule}),
            )?;
        }
        ActionKind::Approval => {
            let name = arg_str(arg, "name").unwrap_or_default();
            let mode = arg_str(arg, "mode").unwrap_or_default();
            let approvers: Vec<String> = arg
                .get("approvers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let required = workflow::approvals_required(
                mode,
                approvers.len(),
                arg.get("required").and_then(Value::as_i64),
            ) as i32;
            let id: Option<i64> = Spi::connect_mut(|client| {
                let id = statements::run(
                    client,
                    &CREATE_APPROVAL,
                    &[
                        r.id.into(),
                        name.into(),
                        mode.into(),
                        approvers.clone().into(),
                        required.into(),
                        arg_str(arg, "on_approve").into(),
                        arg_str(arg, "on_reject").into(),
                        arg_str(arg, "on_withdraw").into(),
                        arg_str(arg, "due").into(),
                    ],
                )?
                .first()
                .get::<i64>(1)?;
                statements::run(client, &APPROVAL_TASKS, &[id.into()])?;
                Ok::<_, pgrx::spi::SpiError>(id)
            })?;
            note(
                r,
                "approval_requested",
                &json!({"approval": id, "name": name, "mode": mode, "approvers": approvers, "rule": rule}),
            )?;
        }
        ActionKind::Notify => {
            let mut payload = base_payload(r, event, rule);
            extend(&mut payload, arg.get("payload"));
            let channel = arg_str(arg, "channel").unwrap_or_default();
            Spi::connect_mut(|client| {
                statements::run(
                    client,
                    &NOTIFY,
                    &[channel.into(), jsonb_text(&payload).as_str().into()],
                )
                .map(|_| ())
            })?;
            note(
                r,
                "rule_action",
                &json!({"rule": rule, "action": action.written}),
            )?;
        }
        ActionKind::Emit => {
            let topic = arg_str(arg, "topic").unwrap_or_default();
            crate::outbox::check_topic(topic);
            own_topic(r, rule, topic)?;
            let extra = arg
                .get("payload")
                .filter(|e| e.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            journal::event(r, topic, &base_payload(r, event, rule), &extra);
            note(
                r,
                "rule_action",
                &json!({"rule": rule, "action": action.written}),
            )?;
        }
        ActionKind::Timer => {
            set_timer(r, rule, arg)?;
            note(
                r,
                "rule_action",
                &json!({"rule": rule, "action": action.written}),
            )?;
        }
        ActionKind::Call => {
            call(wf, r, rule, arg.as_str().unwrap_or_default())?;
            // The function may have changed the record: the note reads it again.
            if let Some(now) = journal::read_record(r.id)? {
                note(
                    &now,
                    "rule_action",
                    &json!({"rule": rule, "action": action.written}),
                )?;
            }
        }
    }
    Ok(())
}

/// An app emits its own topics only: a topic whose first segment names another app
/// (`payroll.payment_approved` from app `shop`) is refused, so that a consumer or webhook of
/// that app never receives an event another app's rules made up.
fn own_topic(r: &Record, rule: &str, topic: &str) -> Result<()> {
    let first = topic.split('.').next().unwrap_or_default();
    if first == r.app {
        return Ok(());
    }
    let other: Option<bool> = Spi::connect_mut(|client| {
        statements::run(client, &APP_EXISTS, &[first.into()])?
            .first()
            .get::<bool>(1)
    })?;
    if other == Some(true) {
        return Err(RulesError::Refused {
            code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            message: format!(
                "{}.{}: rule \"{rule}\": emit: topic \"{topic}\" belongs to app \"{first}\"; an app emits its own topics only",
                r.app, r.form
            ),
            detail: None,
            hint: Some(format!("name the topic \"{}.{}\" or without another app's name first", r.app, topic)),
        });
    }
    Ok(())
}

/// A history row about the record (as it is) for something a rule did.
fn note(r: &Record, action: &str, detail: &Value) -> Result<()> {
    let actor = identity::actor(Some(&r.app))?;
    journal::note(r, action, &actor, detail);
    Ok(())
}

/// What every message about a record's event carries.
fn base_payload(r: &Record, event: &str, rule: &str) -> Value {
    json!({"record": r.id, "app": r.app, "form": r.form, "state": r.state, "event": event, "rule": rule})
}

fn extend(payload: &mut Value, extra: Option<&Value>) {
    if let (Some(map), Some(Value::Object(extra))) = (payload.as_object_mut(), extra) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// `data || patch`, as jsonb's `||` does it.
fn merge(data: &OwnedJsonb, patch: &Value) -> Result<OwnedJsonb> {
    Ok(Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &MERGE,
            &[jsonb_arg(data.datum()), JsonB(patch.clone()).into()],
        )?;
        let datum = table.first().get_datum_by_ordinal(1)?;
        // SAFETY: the result of jsonb || jsonb.
        Ok::<_, pgrx::spi::SpiError>(datum.map(|d| unsafe { OwnedJsonb::from_datum(d) }))
    })?
    .unwrap_or_else(|| data.clone()))
}

/// The error for a rule's change that would make the record invalid, naming the rule.
fn invalid_data(r: &Record, error: ConformanceError, what: String, hint: String) -> RulesError {
    match conformance::redact_hidden(&r.app, &r.form, error) {
        ConformanceError::Rejected(issues) => RulesError::Refused {
            code: PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            message: format!("{}.{}: {what}", r.app, r.form),
            detail: Some(jsonb_text(
                &serde_json::to_value(&issues).unwrap_or_default(),
            )),
            hint: Some(hint),
        },
        ConformanceError::Catalog(error) => error.into(),
        other => refused(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            other.to_string(),
        ),
    }
}

fn set_timer(r: &Record, rule: &str, arg: &Value) -> Result<()> {
    let name = arg_str(arg, "name").unwrap_or_default();
    let fire_at: Option<pg_sys::Datum> = if let Some(after) = arg_str(arg, "after") {
        Spi::connect_mut(|client| {
            statements::run(client, &TIMER_AFTER, &[after.into()])?
                .first()
                .get_datum_by_ordinal(1)
        })?
    } else {
        let field = arg_str(arg, "at_field").unwrap_or_default();
        let value = r.data.to_json().get(field).cloned();
        let parsed = match &value {
            Some(Value::String(text)) => parse_timestamptz(text),
            _ => None,
        };
        if parsed.is_none() {
            return Err(RulesError::Refused {
                code: PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                message: format!(
                    "{}.{}: rule \"{rule}\" on record {}: timer \"{name}\" needs field \"{field}\" to hold a date-time",
                    r.app, r.form, r.id
                ),
                detail: Some(match &value {
                    Some(_) if conformance::hidden_fields(&r.app, &r.form).iter().any(|h| h == field) => {
                        format!("\"{field}\" is hidden from you")
                    }
                    Some(v) => format!("\"{field}\" is {}", jsonb_text(v)),
                    None => format!("the record has no \"{field}\""),
                }),
                hint: None,
            });
        }
        parsed
    };
    if let Some(at) = fire_at {
        crate::worker_registry::note_due(at.value() as i64);
    }
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &SET_TIMER,
            &[
                r.id.into(),
                name.into(),
                r.state.as_str().into(),
                // SAFETY: a timestamptz datum (by value).
                unsafe {
                    pgrx::datum::DatumWithOid::new(
                        fire_at.unwrap_or(pg_sys::Datum::from(0)),
                        pg_sys::TIMESTAMPTZOID,
                    )
                },
            ],
        )
        .map(|_| ())
    })?;
    Ok(())
}

/// A date-time as `::timestamptz` reads it; None when it does not read as one.
fn parse_timestamptz(text: &str) -> Option<pg_sys::Datum> {
    let text = std::ffi::CString::new(text).ok()?;
    PgTryBuilder::new(|| {
        // SAFETY: timestamptz_in parses a C string; an invalid one raises, caught below.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::timestamptz_in,
                &[
                    Some(pg_sys::Datum::from(text.as_ptr())),
                    Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
                    Some(pg_sys::Datum::from(-1i32)),
                ],
            )
        }
    })
    .catch_when(PgSqlErrorCode::ERRCODE_INVALID_DATETIME_FORMAT, |_| None)
    .catch_when(PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW, |_| None)
    .catch_when(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, |_| None)
    .execute()
}

/// Runs `body` as the owner of lowcode.call_grants (sandboxed: no user code runs there).
fn as_grants_owner<R>(
    body: impl FnOnce() -> std::result::Result<R, pgrx::spi::SpiError>,
) -> Result<R> {
    let owner: Option<pg_sys::Oid> = Spi::connect_mut(|client| {
        statements::run(client, &CALL_GRANTS_OWNER, &[])?
            .first()
            .get::<pg_sys::Oid>(1)
    })?;
    let owner = owner.ok_or_else(|| {
        refused(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            "lowcode.call_grants is missing".to_string(),
        )
    })?;
    Ok(identity::sandboxed(owner, body)?)
}

/// Internal (define_workflow): records that the calls of workflow version `version` named
/// `names` run `functions` (resolved with the publisher's search_path) as the role at the
/// keyboard — never a role given as an argument, so calling this directly grants nothing
/// but one's own rights.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_calls(version: i64, names: Vec<String>, functions: Vec<Option<pg_sys::Oid>>) {
    let me = identity::invoker();
    let result = as_grants_owner(|| {
        Spi::connect_mut(|client| {
            statements::run(
                client,
                &GRANT_CALLS,
                &[version.into(), names.into(), functions.into(), me.into()],
            )
            .map(|_| ())
        })
    });
    if let Err(error) = result {
        raise("", error);
    }
}

/// A `call` action: the function the call's name resolved to when the workflow version was
/// published runs as the role that published it (lowcode.call_grants), sandboxed
/// ([`identity::call_as`]): its rights and no more, whoever fired the rule, with
/// `search_path = pg_catalog, pg_temp`; a jsonb object it returns is merged into the data.
fn call(wf: &CompiledWorkflow, r: &Record, rule: &str, name: &str) -> Result<()> {
    let grant = as_grants_owner(|| {
        Spi::connect_mut(|client| {
            let table = statements::run(client, &CALL_GRANT, &[wf.id.into(), name.into()])?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            Ok(
                match (
                    row.get::<String>(1)?,
                    row.get::<bool>(2)?,
                    row.get::<pg_sys::Oid>(3)?,
                ) {
                    (Some(proc), Some(returns_jsonb), Some(run_as)) => {
                        Some((proc, returns_jsonb, run_as))
                    }
                    _ => None,
                },
            )
        })
    })?;
    let Some((proc, returns_jsonb, run_as)) = grant else {
        return Err(RulesError::Refused {
            code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            message: format!(
                "{}.{}: rule \"{rule}\": call {name}(jsonb) was not granted when this workflow version was published",
                r.app, r.form
            ),
            detail: None,
            hint: Some("define the workflow again (lowcode.define_workflow) as the role its calls should run as; versions from before lowcode 0.2.0, restored by a role that is not a superuser, or whose function was dropped have no grant".into()),
        });
    };
    let row: Option<JsonB> = Spi::connect_mut(|client| {
        statements::run(client, &RECORD_JSON, &[r.id.into()])?
            .first()
            .get::<JsonB>(1)
    })?;
    let row = row.unwrap_or(JsonB(Value::Null));
    let query = if returns_jsonb {
        format!("SELECT {proc}($1)")
    } else {
        format!("SELECT CASE WHEN {proc}($1) IS NULL THEN NULL::pg_catalog.jsonb END")
    };
    let result = identity::call_as(run_as, &query, row);
    let result = result?;
    if let Some(JsonB(patch @ Value::Object(_))) = result.filter(|_| returns_jsonb) {
        let current = journal::read_record(r.id)?.unwrap_or_else(|| r.clone());
        let merged = merge(&current.data, &patch)?;
        if let Err(error) = conformance::check(&r.app, &r.form, merged.container()) {
            return Err(invalid_data(
                r,
                error,
                format!("rule \"{rule}\" on record {}: {name}(jsonb) returned data that would make the record invalid", r.id),
                format!("make {name} return data that agrees with the form's schema"),
            ));
        }
        Spi::connect_mut(|client| {
            statements::run(client, &SET_DATA, &[r.id.into(), jsonb_arg(merged.datum())])
                .map(|_| ())
        })?;
    }
    Ok(())
}
