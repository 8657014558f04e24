//! Apply `task`: `CREATE_TASK` makes the task and its deadline timer in one statement, the
//! worker pool learns the deadline, and `<app>.task.created` is buffered when the task
//! announces itself; then the `task_created` note.

use pgrx::pg_sys::BuiltinOid::{BOOLOID, INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;

use super::{note, subject, Result};
use crate::journal::{self, Record};
use crate::statements::{self, Statement};
use crate::workflow::TaskDef;
use lowcode_core::actions::task as plan;

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
        TEXTARRAYOID, JSONBOID, BOOLOID,
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

pub fn apply(r: &Record, rule: &str, event: &str, def: &TaskDef) -> Result<()> {
    let current = crate::tasks::tasks_have_app();
    let p = plan::plan(def, current);
    let task: Option<i64> = Spi::connect_mut(|client| {
        let mut args = vec![
            r.id.into(),
            p.name.into(),
            p.pool_column.into(),
            p.role.into(),
            p.assignee.into(),
            p.title.into(),
            p.claimed.into(),
            p.due.into(),
        ];
        let statement = if current {
            args.extend([
                r.app.as_str().into(),
                r.form.as_str().into(),
                p.outcomes.map(<[String]>::to_vec).into(),
                p.result_schema.cloned().map(pgrx::JsonB).into(),
                p.announce.into(),
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
    if p.announce {
        let s = subject(r);
        journal::event(
            r,
            &plan::created_topic(s.app),
            &s.base_payload(event, rule),
            &p.created_event(task),
        );
    }
    note(r, "task_created", &p.note(task, rule))
}
