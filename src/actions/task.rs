//! Apply `task`: the task and its deadline timer go to the journal's buffer (src/journal.rs
//! `task`: its id is drawn now), written by the next flush in one statement with the
//! `task_created` note and `<app>.task.created` when the task announces itself (the flush
//! tells the worker pool the deadline).

use pgrx::pg_sys::BuiltinOid::{BOOLOID, INT8OID, TEXTOID};
use pgrx::prelude::*;

use super::{note, subject, Result};
use crate::journal::{self, Record};
use crate::statements::{self, Statement};
use crate::workflow::TaskDef;
use lowcode_core::actions::task as plan;

// A task and its deadline timer on 0.2.0's tables (a database not updated yet runs this
// library), in one statement.
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
    let current = crate::journal::tasks_have_app();
    let p = plan::plan(def, current);
    let task = if current {
        // Written by the journal's next flush, with its note and event (one statement).
        Some(journal::task(
            r,
            &journal::NewTask {
                name: p.name,
                pool: p.pool_column,
                role: p.role,
                assignee: p.assignee,
                title: p.title,
                claimed: p.claimed,
                due: p.due,
                outcomes: p.outcomes,
                result_schema: p.result_schema,
                events: p.announce,
            },
        ))
    } else {
        create_0_2(r, &p)?
    };
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

/// A task on 0.2.0's tables (a database not updated yet runs this library): written now.
fn create_0_2(r: &Record, p: &plan::TaskPlan) -> Result<Option<i64>> {
    // (The task's foreign key needs the record in the table.)
    journal::need_record();
    Ok(Spi::connect_mut(|client| {
        let args = vec![
            r.id.into(),
            p.name.into(),
            p.pool_column.into(),
            p.role.into(),
            p.assignee.into(),
            p.title.into(),
            p.claimed.into(),
            p.due.into(),
        ];
        let row = statements::run(client, &CREATE_TASK_0_2, &args)?.first();
        // The deadline's time, for the worker pool (src/worker_registry.rs).
        if let Some(due) = row.get_datum_by_ordinal(2)? {
            crate::worker_registry::note_due(due.value() as i64);
        }
        row.get::<i64>(1)
    })?)
}
