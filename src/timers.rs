//! Timers and task deadlines at run time. `lowcode.run_due_timers` marks a batch of due timers
//! fired in one statement (`MARK`), then fires them: each fires its event on its record, in due
//! order, with the record and the workflow the engine already keeps, and the history notes of
//! the whole batch are written in one statement. The whole batch runs in one subtransaction;
//! when a timer's rules fail it is undone and the timers run again one subtransaction each, so
//! that only the failing ones are undone, and each failure is put back, retried later or
//! marked failed (`lowcode_core::retry::timer_failure`).

use pgrx::pg_sys::BuiltinOid::{INT4OID, INT8ARRAYOID, INT8OID, TEXTOID, TIMESTAMPTZOID};
use pgrx::prelude::*;
use serde_json::json;

use crate::definitions_cache;
use crate::identity;
use crate::journal;
use crate::report::raise;
use crate::rules::{self, RulesError};
use crate::statements::{self, Statement};
use lowcode_core::retry::{self, TimerFailure};

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

// The due timers (at most $1, NULL: all), oldest first, locked and marked fired, unless another
// run holds them or someone is changing their record (a transition that cancels a timer waits
// for us while it holds the record: waiting for the record here would be a deadlock); the next
// run fires those, unless that change cancelled them. Each as it was before (to put back).
const MARK: Statement = Statement {
    sql: "WITH due AS ( \
            SELECT x.id, x.record_id, x.fire_at, x.fired_at, x.attempts FROM lowcode.timers x \
             WHERE x.status OPERATOR(pg_catalog.=) 'pending' AND x.fire_at OPERATOR(pg_catalog.<=) pg_catalog.now() \
             ORDER BY x.fire_at, x.id \
             LIMIT $1 \
               FOR UPDATE SKIP LOCKED \
          ), free AS ( \
            SELECT d.id, d.fire_at, d.fired_at, d.attempts \
              FROM due d JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) d.record_id \
               FOR NO KEY UPDATE OF r SKIP LOCKED \
          ), marked AS ( \
            UPDATE lowcode.timers x SET status = 'fired', fired_at = pg_catalog.now() \
              FROM free WHERE x.id OPERATOR(pg_catalog.=) free.id \
            RETURNING free.id, free.fire_at, free.fired_at, free.attempts \
          ) \
          SELECT m.id, m.fired_at, m.attempts FROM marked m ORDER BY m.fire_at, m.id",
    args: &[INT4OID],
};
// A timer that lost a race: pending again, as it was.
const PUT_BACK: Statement = Statement {
    sql: "UPDATE lowcode.timers x SET status = 'pending', fired_at = $2 WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TIMESTAMPTZOID],
};
// A transient failure: pending again after $3 seconds, with the error.
const RETRY: Statement = Statement {
    sql: "UPDATE lowcode.timers x SET status = 'pending', fired_at = NULL, error = $2, \
                 attempts = x.attempts OPERATOR(pg_catalog.+) 1, \
                 fire_at = pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $3) \
           WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TEXTOID, pgrx::pg_sys::BuiltinOid::FLOAT8OID],
};
const FAILED: Statement = Statement {
    sql: "UPDATE lowcode.timers x SET status = 'failed', fired_at = pg_catalog.now(), error = $2, \
                 attempts = x.attempts OPERATOR(pg_catalog.+) 1 \
           WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TEXTOID],
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
    crate::placement::not_distributed("fire_timers");
    fire(&timers.unwrap_or_default())
}

fn fire(ids: &[i64]) -> i32 {
    if ids.is_empty() {
        return 0;
    }
    let due: Vec<Due> = Spi::connect_mut(|client| {
        statements::run(client, &BATCH, &[ids.to_vec().into()])?
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

/// A timer as the marking statement found it.
struct Marked {
    id: i64,
    fired_at: Option<pgrx::datum::TimestampWithTimeZone>,
    attempts: i32,
}

/// Fire up to max due timers and deadlines (lowcode administrators; runs as the extension's
/// owner). Safe to run from several schedulers at once (SKIP LOCKED). A timer whose rules
/// fail with a transient error (connection, resources, I/O, cancel) is retried with backoff,
/// up to 5 attempts; any other error marks it failed with the error; the others still fire.
#[pg_extern(volatile)]
fn run_due_timers(max: default!(Option<i32>, 1000)) -> i32 {
    if !crate::privileges::admin() {
        crate::privileges::refuse_with(None, Some("lowcode_admin"), Some("run timers"));
    }
    // (With the runtime distributed: the due timers of this node's shards, shard by shard.)
    crate::placement::on_local_shards(|| run_due_timers_here(max))
        .into_iter()
        .sum()
}

/// `run_due_timers` on this node's tables (or, with the runtime distributed, on one group of
/// its shards).
fn run_due_timers_here(max: Option<i32>) -> i32 {
    // Planned without a full sort, so that it reads about max timers through timers_due_idx (in
    // fire_at order, ties sorted by id) instead of sorting every due timer: with a backlog of
    // due timers the statistics often promise one.
    // (And without JIT: the cost a disabled sort adds would have the statement compiled, which
    // takes longer than the statement, every time: measured 180 ms a call.)
    let batch: Vec<Marked> = crate::settings::with_setting(c"enable_sort", c"off", || {
        crate::settings::with_setting(c"jit", c"off", || {
            Spi::connect_mut(|client| {
                statements::run(client, &MARK, &[max.into()])?
                    .map(|row| {
                        Ok(Marked {
                            id: row.get::<i64>(1)?.unwrap_or_default(),
                            fired_at: row.get(2)?,
                            attempts: row.get::<i32>(3)?.unwrap_or_default(),
                        })
                    })
                    .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
            })
        })
    })
    .unwrap_or_else(|error| crate::report::failed("marking due timers", error));
    if batch.is_empty() {
        return 0;
    }
    // Nearly always none fails: all of them in one subtransaction.
    let ids: Vec<i64> = batch.iter().map(|t| t.id).collect();
    if crate::background::in_subtransaction(|| fire(&ids)).is_ok() {
        return batch.len() as i32;
    }
    // One failed: one by one, each in a subtransaction of its own.
    let mut fired = 0;
    for t in &batch {
        let id = t.id;
        let Err(caught) = crate::background::in_subtransaction(move || fire(&[id])) else {
            fired += 1;
            continue;
        };
        let tried = t.attempts.max(0) as u32;
        let outcome =
            Spi::connect_mut(
                |client| match retry::timer_failure(&caught.sqlstate, tried) {
                    TimerFailure::PutBack => {
                        statements::run(client, &PUT_BACK, &[id.into(), t.fired_at.into()])
                            .map(|_| ())
                    }
                    TimerFailure::RetryIn(wait) => statements::run(
                        client,
                        &RETRY,
                        &[
                            id.into(),
                            caught.message.as_str().into(),
                            wait.as_secs_f64().into(),
                        ],
                    )
                    .map(|_| ()),
                    TimerFailure::Failed => statements::run(
                        client,
                        &FAILED,
                        &[id.into(), caught.message.as_str().into()],
                    )
                    .map(|_| ()),
                },
            );
        outcome.unwrap_or_else(|error| crate::report::failed("recording a timer's failure", error));
    }
    fired
}
