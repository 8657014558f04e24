//! The apply step of each workflow action: the prepared statements that do what the action's
//! pure plan (`lowcode_core::actions`, one file per kind) says, one file per kind here too.
//! `rules::run_action` dispatches on the typed [`workflow::Action`](crate::workflow::Action)
//! and flushes the journal first for the kinds that write records.
//!
//! Beneath `rules` (which re-exports [`RulesError`]): nothing here uses `rules`.

pub mod approval;
pub mod call;
pub mod emit;
pub mod notify;
pub mod set;
pub mod task;
pub mod timer;
pub mod transition;

use pgrx::pg_sys::BuiltinOid::{INT8OID, JSONBOID};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::Value;

use crate::conformance::{self, ConformanceError};
use crate::definitions_cache::CatalogError;
use crate::identity;
use crate::journal::{self, Record};
use crate::jsonb::{jsonb_text, OwnedJsonb};
use crate::report::Reportable;
use crate::statements::{self, jsonb_arg, Statement};
use lowcode_core::actions::Subject;

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

pub fn refused(code: PgSqlErrorCode, message: String) -> RulesError {
    RulesError::Refused {
        code,
        message,
        detail: None,
        hint: None,
    }
}

pub type Result<T> = std::result::Result<T, RulesError>;

const SET_DATA: Statement = Statement {
    sql: "UPDATE lowcode.records r SET data = $2 WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, JSONBOID],
};
const MERGE: Statement = Statement {
    sql: "SELECT $1 OPERATOR(pg_catalog.||) $2",
    args: &[JSONBOID, JSONBOID],
};

/// The record as the plans see it.
pub fn subject(r: &Record) -> Subject<'_> {
    Subject {
        id: r.id,
        app: &r.app,
        form: &r.form,
        state: &r.state,
    }
}

/// A history row about the record (as it is) for something a rule did.
pub fn note(r: &Record, action: &str, detail: &Value) -> Result<()> {
    let actor = identity::actor(Some(&r.app))?;
    journal::note(r, action, &actor, detail);
    Ok(())
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

/// Merge `patch` into the data of `current`, check it against the form (an invalid result is
/// the error of `r` with `what` and `hint`, naming the rule) and write it.
fn merge_check_write(
    r: &Record,
    current: &OwnedJsonb,
    patch: &Value,
    what: impl FnOnce() -> String,
    hint: impl FnOnce() -> String,
) -> Result<()> {
    let merged = merge(current, patch)?;
    // Checked here too (the records trigger checks again) so the error names the rule.
    if let Err(error) = conformance::check(&r.app, &r.form, merged.container()) {
        return Err(invalid_data(r, error, what(), hint()));
    }
    Spi::connect_mut(|client| {
        statements::run(client, &SET_DATA, &[r.id.into(), jsonb_arg(merged.datum())]).map(|_| ())
    })?;
    Ok(())
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
