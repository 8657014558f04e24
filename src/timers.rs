//! Timers and task deadlines at run time. `lowcode.run_due_timers` (sql/tasks_timers.sql) marks a
//! batch of due timers fired in one statement and hands their ids here: each fires its event
//! on its record, in due order, with the record and the workflow the engine already keeps —
//! no PL/pgSQL per timer, and the history notes of the whole batch written in one statement.

use pgrx::pg_sys::BuiltinOid::{INT8ARRAYOID, INT8OID};
use pgrx::prelude::*;
use serde_json::json;

use crate::definitions_cache;
use crate::identity;
use crate::journal;
use crate::report::raise;
use crate::rules::{self, RulesError};
use crate::statements::{self, Statement};

const BATCH: Statement = Statement {
    sql: "SELECT t.id, t.record_id, t.name, t.event, t.task_id, t.in_state FROM lowcode.timers t \
          WHERE t.id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY t.fire_at, t.id",
    args: &[INT8ARRAYOID],
};
const CANCEL: Statement = Statement {
    sql: "UPDATE lowcode.timers t SET status = 'cancelled', fired_at = NULL WHERE t.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};
const TASK_OPEN: Statement = Statement {
    sql: "SELECT EXISTS (SELECT FROM lowcode.tasks y WHERE y.id OPERATOR(pg_catalog.=) $1 \
            AND y.status OPERATOR(pg_catalog.=) ANY ('{open,claimed}'::pg_catalog.text[]))",
    args: &[INT8OID],
};

struct Due {
    id: i64,
    record: i64,
    name: String,
    event: String,
    task: Option<i64>,
    in_state: Option<String>,
}

fn fire_one(t: &Due) -> Result<(), RulesError> {
    let Some(r) = crate::journal::read_record(t.record)? else {
        return Ok(());
    };
    // An earlier timer of the same run may have moved the record out of the state this timer
    // was set in: leaving the state cancels it, as it would have before the run marked it.
    if let Some(state) = &t.in_state {
        if &r.state != state {
            Spi::connect_mut(|client| {
                statements::run(client, &CANCEL, &[t.id.into()]).map(|_| ())
            })?;
            return Ok(());
        }
    }
    // A deadline only matters while its task is still open.
    if let Some(task) = t.task {
        let open = Spi::connect_mut(|client| {
            statements::run(client, &TASK_OPEN, &[task.into()])?
                .first()
                .get::<bool>(1)
        })?;
        if open != Some(true) {
            return Ok(());
        }
    }
    let actor = identity::actor(Some(&r.app))?;
    journal::note(
        &r,
        "timer_fired",
        &actor,
        &json!({"timer": t.id, "name": t.name, "event": t.event}),
    );
    let Some(wf) = definitions_cache::current_workflow(&r.app, &r.form)? else {
        return Ok(());
    };
    let positions = wf.runtime.rules_for(&t.event);
    if !positions.is_empty() {
        rules::run_rules(&wf, &positions, r, &t.event, None)?;
    }
    Ok(())
}

/// Internal: fires timers that run_due_timers has marked fired, in due order: a timer_fired
/// history row, then the rules of its event; nothing for a deadline whose task is closed;
/// cancelled when the record has left the timer's state meanwhile. Returns how many it took.
#[pg_extern(volatile)]
fn fire_timers(timers: Option<Vec<i64>>) -> i32 {
    let ids = timers.unwrap_or_default();
    if ids.is_empty() {
        return 0;
    }
    let due: Vec<Due> = Spi::connect_mut(|client| {
        statements::run(client, &BATCH, &[ids.into()])?
            .map(|row| {
                Ok(Due {
                    id: row.get::<i64>(1)?.unwrap_or_default(),
                    record: row.get::<i64>(2)?.unwrap_or_default(),
                    name: row.get::<String>(3)?.unwrap_or_default(),
                    event: row.get::<String>(4)?.unwrap_or_default(),
                    task: row.get::<i64>(5)?,
                    in_state: row.get::<String>(6)?,
                })
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| crate::report::failed("reading due timers", error));
    for t in &due {
        fire_one(t).unwrap_or_else(|error| raise("", error));
    }
    journal::flush();
    due.len() as i32
}
