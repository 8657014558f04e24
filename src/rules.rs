//! The workflow at run time: a write's events (`created`, `updated`, `left:<state>`,
//! `entered:<state>`, and from the runtime `task_completed:<task>`, `deadline_passed:<task>`,
//! `timer:<name>`, `approved:` / `rejected:` / `withdrawn:<approval>`) run the rules of the
//! record's workflow version that listen to them, in definition order; a rule whose `when`
//! (a compiled validator) and `outcome` match runs its actions.
//!
//! The workflow comes compiled from the per-backend cache ([`definitions_cache::workflow`]); the
//! record comes from the trigger's row and is read again only after an action that may have
//! changed it (`set`, `transition`, `call`). Every statement is prepared once per backend.

use pgrx::pg_sys::BuiltinOid::{INT8OID, OIDARRAYOID, OIDOID, TEXTARRAYOID};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};

use crate::actions::{self, refused, Result};
use crate::definitions_cache::{self, CompiledWorkflow};
use crate::engine_state::{self, Slot};
use crate::identity;
use crate::journal::{self, Record};
use crate::report::raise;
use crate::statements::{self, Statement};
use crate::workflow::{self, Action, RuntimeAction};

/// Why a rule could not run (defined with the actions, beneath this module).
pub use crate::actions::RulesError;

// ------------------------------------------------------------------ statements

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
// ------------------------------------------------------------------ entry points

/// After a write of `record` to a form with the workflow `wf` (from the records trigger, which
/// has cancelled the timers of the state it left with the change's history row): a record that
/// reached a final state has no work left, then the write's events fire.
pub fn after_write(
    wf: &CompiledWorkflow,
    record: Record,
    old_state: Option<&str>,
    data_changed: bool,
) -> Result<()> {
    if old_state.is_some_and(|old| old != record.state) && wf.runtime.is_final(&record.state) {
        Spi::connect_mut(|client| {
            statements::run(client, &FINISH, &[record.id.into()]).map(|_| ())
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
        current = run_rules(wf, &rules, record, &event, None)?;
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
    let outcome = context
        .as_ref()
        .and_then(|c| c.0.get("outcome"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    fire_event(record, None, event, outcome.as_deref());
}

/// Run the rules listening to `event` on `record` (of `app.form` when the caller knows it: then
/// the record is read only when some rule listens), then write what they buffered.
pub fn fire_event(record: i64, form: Option<(&str, &str)>, event: &str, outcome: Option<&str>) {
    let run = || -> Result<()> {
        let (wf, r) = match form {
            // The form's workflow first: the record is read only when a rule listens.
            Some((app, form)) => {
                let Some(wf) = definitions_cache::current_workflow(app, form)? else {
                    return Ok(());
                };
                if wf.runtime.rules_for(event).is_empty() {
                    return Ok(());
                }
                let Some(r) = journal::read_record_kept(record)? else {
                    return Ok(());
                };
                (wf, r)
            }
            None => {
                let Some(r) = journal::read_record_kept(record)? else {
                    return Ok(());
                };
                let Some(wf) = definitions_cache::current_workflow(&r.app, &r.form)? else {
                    return Ok(());
                };
                (wf, r)
            }
        };
        let rules = wf.runtime.rules_for(event);
        if rules.is_empty() {
            return Ok(());
        }
        run_rules(&wf, &rules, r, event, outcome)?;
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
                Some(json!({"rule": rule.name, "action": action.kind().name()}).to_string()),
            );
            let result = run_action(wf, &record, &rule.name, event, action);
            engine_state::set(Slot::Cause, previous);
            result?;
            if action.kind().writes_record() {
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

/// Run one action: its apply step (src/actions/, one file per kind), after writing the notes
/// buffered so far when the action writes records.
fn run_action(
    wf: &CompiledWorkflow,
    r: &Record,
    rule: &str,
    event: &str,
    action: &RuntimeAction,
) -> Result<()> {
    if action.kind().flushes_first() {
        // These write records (or run code that may): the notes so far come first.
        journal::flush();
    } else if action.kind().needs_record() {
        // A submit's new record waits in the journal; this action needs it in the table.
        journal::need_record();
    }
    let written = &action.written;
    match &action.action {
        Action::Set(fields) => actions::set::apply(r, rule, fields),
        Action::Transition(to) => actions::transition::apply(r, to),
        Action::Task(task) => actions::task::apply(r, rule, event, task),
        Action::Approval(approval) => actions::approval::apply(r, rule, approval),
        Action::Notify(notify) => actions::notify::apply(r, rule, event, notify, written),
        Action::Emit(emit) => actions::emit::apply(r, rule, event, emit, written),
        Action::Timer(timer) => actions::timer::apply(r, rule, timer, written),
        Action::Call(name) => actions::call::apply(wf, r, rule, name, written),
    }
}

/// Internal (define_workflow): records that the calls of workflow version `version` named
/// `names` run `functions` (resolved with the publisher's search_path) as the role at the
/// keyboard — never a role given as an argument, so calling this directly grants nothing
/// but one's own rights.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_calls(version: i64, names: Vec<String>, functions: Vec<Option<pg_sys::Oid>>) {
    let me = identity::invoker();
    let result = actions::call::as_grants_owner(|| {
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
