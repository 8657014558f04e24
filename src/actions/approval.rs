//! Apply `approval`: `CREATE_APPROVAL`, then the approvers' decision tasks with their
//! deadlines in one statement ([`approver_tasks`], also used by `lowcode.decide` for a
//! sequential approval's next approver: src/approvals.rs); then the `approval_requested` note.

use pgrx::pg_sys::BuiltinOid::{INT4OID, INT8OID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;

use super::{note, Result};
use crate::journal::Record;
use crate::statements::{self, Statement};
use crate::workflow::ApprovalDef;
use lowcode_core::actions::approval as plan;

// The approval; $10 its record's app.
const CREATE_APPROVAL: Statement = Statement {
    sql: "INSERT INTO lowcode.approvals (record_id, name, mode, approvers, required, on_approve, on_reject, on_withdraw, due, app) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.interval, $10) RETURNING id",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, TEXTOID,
        TEXTOID, TEXTOID, TEXTOID, TEXTOID,
    ],
};
// 0.2.0's tables (a database not updated yet runs this library): approvals have no app.
const CREATE_APPROVAL_0_2: Statement = Statement {
    sql: "INSERT INTO lowcode.approvals (record_id, name, mode, approvers, required, on_approve, on_reject, on_withdraw, due) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.interval) RETURNING id",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, TEXTOID,
        TEXTOID, TEXTOID, TEXTOID,
    ],
};
// The approvers' decision tasks of approval $1 (one per name in $2, in that order: claimed by
// their approver), each with its deadline timer when the approval has a `due`: one
// statement. The earliest deadline, for the worker pool.
macro_rules! approver_tasks {
    ($columns:literal, $values:literal, $app:literal, $task_app:literal) => {
        concat!(
            "WITH a AS ( \
               SELECT a.id, a.record_id, a.name, pg_catalog.now() OPERATOR(pg_catalog.+) a.due AS due_at \
                 FROM lowcode.approvals a WHERE a.id OPERATOR(pg_catalog.=) $1 \
             ), task AS ( \
               INSERT INTO lowcode.tasks (record_id, name, kind, approval_id, assignee, title, status, \
                                          claimed_by, claimed_at, due_at",
            $columns,
            ") \
               SELECT a.record_id, a.name, 'approval', a.id, x.approver, a.name, 'claimed', \
                      x.approver, pg_catalog.now(), a.due_at",
            $values,
            " FROM a JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) a.record_id, \
                      pg_catalog.unnest($2) WITH ORDINALITY AS x(approver, n) \
                ORDER BY x.n \
               RETURNING id, record_id, name, due_at",
            $app,
            " \
             ), deadline AS ( \
               INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at",
            $app,
            ") \
               SELECT t.record_id, t.name, 'deadline_passed:' OPERATOR(pg_catalog.||) t.name, t.id, t.due_at",
            $task_app,
            " FROM task t WHERE t.due_at IS NOT NULL ORDER BY t.id \
             ) \
             SELECT pg_catalog.min(t.due_at) FROM task t"
        )
    };
}
const APPROVER_TASKS: Statement = Statement {
    sql: approver_tasks!(", app, form", ", r.app, r.form", ", app", ", t.app"),
    args: &[INT8OID, TEXTARRAYOID],
};
// 0.2.0's tables (a database not updated yet runs this library): tasks have no app or form.
const APPROVER_TASKS_0_2: Statement = Statement {
    sql: approver_tasks!("", "", "", ""),
    args: &[INT8OID, TEXTARRAYOID],
};

/// The decision tasks of `approvers` for approval `approval` (a new approval's, or the next
/// approver's of a sequential one), with their deadlines.
pub fn approver_tasks(
    approval: i64,
    approvers: &[String],
) -> std::result::Result<(), pgrx::spi::SpiError> {
    let statement = if crate::journal::tasks_have_app() {
        &APPROVER_TASKS
    } else {
        &APPROVER_TASKS_0_2
    };
    Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            statement,
            &[approval.into(), approvers.to_vec().into()],
        )?;
        // The earliest deadline, for the worker pool (src/worker_registry.rs).
        if let Some(due) = table.first().get_datum_by_ordinal(1)? {
            crate::worker_registry::note_due(due.value() as i64);
        }
        Ok(())
    })
}

pub fn apply(r: &Record, rule: &str, def: &ApprovalDef) -> Result<()> {
    let p = plan::plan(def);
    let id: Option<i64> = Spi::connect_mut(|client| {
        let mut args = vec![
            r.id.into(),
            p.name.into(),
            p.mode.into(),
            p.approvers.to_vec().into(),
            p.required.into(),
            Some(p.on_approve).into(),
            Some(p.on_reject).into(),
            p.on_withdraw.into(),
            p.due.into(),
        ];
        let statement =
            crate::journal::with_app(&CREATE_APPROVAL, &CREATE_APPROVAL_0_2, &mut args, &r.app);
        let id = statements::run(client, statement, &args)?
            .first()
            .get::<i64>(1)?;
        Ok::<_, pgrx::spi::SpiError>(id)
    })?;
    // Every approver's task, or the first approver's of a sequential approval.
    let first = if p.mode == "sequential" {
        &p.approvers[..p.approvers.len().min(1)]
    } else {
        p.approvers
    };
    if let Some(id) = id {
        approver_tasks(id, first)?;
    }
    note(r, "approval_requested", &p.note(id, rule))
}
