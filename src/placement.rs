//! Where an app's runtime is. On one node (and on Citus until `lowcode.distribute(runtime =>
//! true)`) everywhere: every call runs where it is made. With the runtime distributed by app,
//! a record, its history, tasks, timers and events live on the node of their app's shard,
//! and the engine runs there: its triggers on the records fire on that node, and its
//! in-memory state (the journal's buffer, the change being recorded) is that backend's. So a
//! call made on another node is sent to the app's node as one call (Citus delegates a
//! distributed function whose distribution argument is a constant: `lowcode.distribute`
//! makes `submit` one), and runs there in the caller's transaction.

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::report::Reportable;

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "app \"{app}\": its records are on another node, and {call} did not reach it: Citus ran it here"
    )]
    NotDelegated { app: String, call: String },
    #[error("app \"{app}\": its records are on another node; {call} runs on the node of its app")]
    Elsewhere { app: String, call: String },
    #[error("{0} does not run on a distributed runtime yet")]
    NotYet(String),
    #[error("finding the node of app \"{app}\" failed: {error}")]
    Spi { app: String, error: String },
}

impl Reportable for PlacementError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            PlacementError::NotDelegated { .. }
            | PlacementError::Elsewhere { .. }
            | PlacementError::NotYet(_) => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            PlacementError::Spi { .. } => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            PlacementError::Elsewhere { .. } => Some(
                "with the runtime distributed (lowcode.distribute(runtime => true)), write through lowcode.submit: it runs on the app's node"
                    .into(),
            ),
            PlacementError::NotDelegated { .. } => Some(
                "lowcode.distribute(runtime => true) makes it a distributed function: run it again".into(),
            ),
            PlacementError::NotYet(_) => Some(
                "lowcode.distribute(runtime => true) distributes records by app; so far submit, get_record and record_history run there (docs/scale-out.md)"
                    .into(),
            ),
            PlacementError::Spi { .. } => None,
        }
    }
}

thread_local! {
    /// The runtime is distributed (once seen, for the backend's life: it is not undone).
    static DISTRIBUTED: Cell<bool> = const { Cell::new(false) };
    /// When it was last seen not distributed (the start of that transaction): asked again in
    /// the next one.
    static CHECKED_IN: Cell<pg_sys::TimestampTz> = const { Cell::new(0) };
    /// A call this backend is sending to the app's node: if it comes back here, Citus did not
    /// send it.
    static SENDING: Cell<bool> = const { Cell::new(false) };
}

/// Is lowcode's runtime distributed (lowcode.records a Citus distributed table)? Without
/// Citus: a catalog cache lookup and no.
pub fn runtime_distributed() -> bool {
    if DISTRIBUTED.with(Cell::get) {
        return true;
    }
    // SAFETY: a catalog cache lookup by name.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::InvalidOid
    };
    if !citus {
        return false;
    }
    // SAFETY: the current transaction's start.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    if CHECKED_IN.with(|c| c.get()) == now {
        return false;
    }
    let distributed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p \
          WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass \
            AND p.partmethod OPERATOR(pg_catalog.=) 'h')",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if distributed {
        DISTRIBUTED.with(|d| d.set(true));
    } else {
        CHECKED_IN.with(|c| c.set(now));
    }
    distributed
}

/// Does a call about `app` run in this backend? Yes without a distributed runtime, in a call
/// Citus delegated here, and on the node that holds the app's shard.
pub fn runs_here(app: &str) -> Result<bool, PlacementError> {
    if !runtime_distributed() {
        return Ok(true);
    }
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_placement p, pg_catalog.pg_dist_local_group g \
          WHERE p.shardid OPERATOR(pg_catalog.=) \
                pg_catalog.get_shard_id_for_distribution_column('lowcode.records', $1) \
            AND p.groupid OPERATOR(pg_catalog.=) g.groupid)",
        &[app.into()],
    )
    .map(|here| here.unwrap_or(false))
    .map_err(|error| PlacementError::Spi {
        app: app.to_owned(),
        error: error.to_string(),
    })
}

/// Run `call` about `app` here, or send it to the app's node with `send` (which runs a
/// statement Citus delegates there: the same call, its distribution argument a constant)
/// and return what it returned. If the call comes back to this backend, Citus did not send
/// it: an error, not a loop.
pub fn here_or_there<T>(
    app: &str,
    call: &str,
    here: impl FnOnce() -> T,
    send: impl FnOnce() -> T,
) -> T {
    if SENDING.with(Cell::get) {
        SENDING.with(|s| s.set(false));
        crate::report::raise(
            "",
            PlacementError::NotDelegated {
                app: app.to_owned(),
                call: call.to_owned(),
            },
        );
    }
    if runs_here(app).unwrap_or_else(|error| crate::report::raise("", error)) {
        return here();
    }
    SENDING.with(|s| s.set(true));
    let _sent = Sent;
    send()
}

/// Ends [`here_or_there`]'s sending, also when the call raised.
struct Sent;

impl Drop for Sent {
    fn drop(&mut self) {
        SENDING.with(|s| s.set(false));
    }
}

/// Refuse a write about `app` that cannot be sent to its node (a typed view's INSERT).
pub fn require_here(app: &str, call: &str) {
    if !runs_here(app).unwrap_or_else(|error| crate::report::raise("", error)) {
        crate::report::raise(
            "",
            PlacementError::Elsewhere {
                app: app.to_owned(),
                call: call.to_owned(),
            },
        );
    }
}

/// A jsonb value written out as the text of a literal.
fn jsonb_literal(datum: Option<pg_sys::Datum>) -> String {
    let Some(datum) = datum else {
        return "NULL".into();
    };
    // SAFETY: jsonb_out of a jsonb datum.
    let text =
        unsafe { pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)]) };
    let text = text.map(|t| t.to_string_lossy().into_owned());
    format!(
        "{}::pg_catalog.jsonb",
        crate::privileges::literal(text.as_deref())
    )
}

/// `lowcode.submit` sent to the app's node: one statement Citus delegates there (the app a
/// constant, the call in FROM: a PL/pgSQL-style simple expression would not be sent), run
/// as the invoker, so that Citus connects as the invoker and the node authorizes and records
/// the same role as a call made there.
pub fn send_submit(
    app: &str,
    form: Option<&str>,
    data: Option<pg_sys::Datum>,
    expected_version: Option<i32>,
) -> i64 {
    let sql = format!(
        "SELECT s FROM lowcode.submit({}, {}, {}{}) AS s",
        crate::privileges::literal(Some(app)),
        crate::privileges::literal(form),
        jsonb_literal(data),
        expected_version
            .map(|v| format!(", {v}"))
            .unwrap_or_default()
    );
    crate::identity::sandboxed(crate::identity::invoker(), || Spi::get_one::<i64>(&sql))
        .unwrap_or_else(|error| crate::report::failed(format_args!("submit to app {app}"), error))
        .unwrap_or_default()
}

/// Refuse `call` where the runtime is distributed and it does not work there yet (it reads or
/// locks records and tasks by id or pool across every shard): docs/scale-out.md.
pub fn not_distributed(call: &str) {
    if runtime_distributed() {
        crate::report::raise("", PlacementError::NotYet(call.to_owned()));
    }
}
