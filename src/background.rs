//! Running Rust in a background worker's own transactions (the worker and its webhook
//! deliveries): each unit of work commits or rolls back alone, and an ERROR is a value.

use std::panic::{RefUnwindSafe, UnwindSafe};

use pgrx::pg_sys;
use pgrx::PgTryBuilder;

/// Runs `body` in a transaction of its own; an ERROR (or a panic) rolls it back and comes
/// back as its message instead of ending the worker.
pub fn in_transaction<R>(
    body: impl FnOnce() -> R + UnwindSafe + RefUnwindSafe,
) -> Result<R, String> {
    // SAFETY: called from a background worker's main loop, outside any transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| Ok(body()))
        .catch_others(|error| {
            Err(match error {
                pg_sys::panic::CaughtError::PostgresError(report)
                | pg_sys::panic::CaughtError::ErrorReport(report) => report.message().to_string(),
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    ereport.message().to_string()
                }
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
