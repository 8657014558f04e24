//! Running Rust in a transaction or subtransaction of its own, where an ERROR is a value: a
//! background worker's units of work (the worker and its webhook deliveries) each commit or
//! roll back alone, and `run_due_timers` undoes a failing timer's work only.

use std::panic::{RefUnwindSafe, UnwindSafe};

use pgrx::pg_sys;
use pgrx::PgTryBuilder;

/// Runs `body` in a transaction of its own; an ERROR (or a panic) rolls it back and comes
/// back as its message instead of ending the worker. In a database with lowcode the
/// transaction first waits while `lowcode.distribute()` runs ([`wait_for_distribute`]), before
/// it holds anything (a timer round that held the timers and waited for the records, which
/// distribute had altered, while distribute waited for the timers, was a deadlock).
pub fn in_transaction<R>(
    body: impl FnOnce() -> R + UnwindSafe + RefUnwindSafe,
) -> Result<R, String> {
    // SAFETY: called from a background worker's main loop, outside any transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| {
        // (Not for the launcher, which is connected to no database.)
        // SAFETY: MyDatabaseId is set once, when the worker connects.
        if unsafe { pg_sys::MyDatabaseId } != pg_sys::InvalidOid {
            wait_for_distribute();
        }
        Ok(body())
    })
    .catch_others(|error| {
        Err(match error {
            pg_sys::panic::CaughtError::PostgresError(report)
            | pg_sys::panic::CaughtError::ErrorReport(report) => report.message().to_string(),
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
        })
    })
    .execute();
    // SAFETY: ends the transaction started above (the error state was flushed by pgrx).
    unsafe {
        match result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// An ERROR caught by [`in_subtransaction`]: its SQLSTATE (five characters) and message.
pub struct Caught {
    pub sqlstate: String,
    pub message: String,
}

/// Runs `body` in a subtransaction, as a PL/pgSQL `BEGIN ... EXCEPTION` block does: an ERROR
/// rolls back what `body` did (the engine's buffered rows and state go with it: its
/// subtransaction callbacks) and comes back as a value; otherwise its work is kept.
pub fn in_subtransaction<R>(
    body: impl FnOnce() -> R + UnwindSafe + RefUnwindSafe,
) -> Result<R, Caught> {
    // SAFETY: inside a transaction; the memory context and resource owner are the caller's
    // again afterwards, whichever way the subtransaction ends (as plpgsql's exec_stmt_block).
    let (context, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
    }
    let result = PgTryBuilder::new(|| Ok(body()))
        .catch_others(|error| {
            let report = match &error {
                pg_sys::panic::CaughtError::PostgresError(report)
                | pg_sys::panic::CaughtError::ErrorReport(report) => report,
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport,
            };
            Err(Caught {
                sqlstate: sqlstate(report.sql_error_code()),
                message: report.message().to_string(),
            })
        })
        .execute();
    // SAFETY: ends the subtransaction begun above (pgrx flushed the error state).
    unsafe {
        if result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
    result
}

/// The five characters of a SQLSTATE.
fn sqlstate(code: pgrx::PgSqlErrorCode) -> String {
    // SAFETY: unpack_sql_state writes the five characters into a static buffer.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(code as i32)) }
        .to_string_lossy()
        .into_owned()
}

/// Waits while `lowcode.distribute()` runs: it holds lowcode.worker_state in EXCLUSIVE mode,
/// and this takes ROW SHARE on it for the transaction, without a statement (it comes before
/// every transaction of a worker). A table of lowcode's, not an advisory lock: any role may
/// take an advisory lock and hold it, and would stall the worker; only lowcode's owner can
/// lock this table in a mode that conflicts (nobody else holds a privilege on it). Under
/// Citus, also makes the transaction's lock waits short: `distribute()` changes the tables of
/// every node in one transaction, and a worker that held one of them and waited for another
/// (on a worker node, before it sees the lock taken) made a distributed deadlock of
/// `distribute()` and itself. It gives up instead (a timer is put back, a webhook polled
/// again, in its next round).
fn wait_for_distribute() {
    // SAFETY: catalog cache lookups by name, in a transaction; a lock held to the transaction's
    // end, as LOCK TABLE takes it.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"lowcode".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return;
        }
        let state = pg_sys::get_relname_relid(c"worker_state".as_ptr(), schema);
        if state != pg_sys::InvalidOid {
            pg_sys::LockRelationOid(state, pg_sys::RowShareLock as pg_sys::LOCKMODE);
        }
    }
    // SAFETY: a catalog cache lookup by name, in a transaction.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        )
    } != pg_sys::InvalidOid;
    if citus {
        // SAFETY: a setting for this transaction only (SET LOCAL), undone at its end.
        unsafe {
            pg_sys::set_config_option(
                c"lock_timeout".as_ptr(),
                c"300ms".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            );
        }
    }
}
