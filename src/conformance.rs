//! Conformance: a document against the current version of its form, as every write checks
//! it (the records triggers, `submit`, a rule's `set`/`create`, `check_task_result`), and
//! the one way a refused document is reported (`lowcode: app.form: N validation errors`, the
//! issues in DETAIL, the values of fields hidden from the writer left out).

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::definitions_cache::{self, CatalogError, CurrentForm};
use crate::report::{raise, Reportable};
use crate::validation::{self, Issue};

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{}", rejected_message(.0))]
    Rejected(Vec<Issue>),
    #[error(transparent)]
    TooDeep(#[from] validation::TooDeep),
}

fn rejected_message(issues: &[Issue]) -> String {
    if issues.len() > validation::MAX_ISSUES {
        format!("more than {} validation errors", validation::MAX_ISSUES)
    } else if issues.len() == 1 {
        "1 validation error".to_owned()
    } else {
        format!("{} validation errors", issues.len())
    }
}

impl Reportable for ConformanceError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            ConformanceError::Catalog(error) => error.sqlstate(),
            ConformanceError::Rejected(_) => PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            ConformanceError::TooDeep(error) => error.sqlstate(),
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            ConformanceError::Catalog(error) => error.detail(),
            ConformanceError::Rejected(issues) => serde_json::to_string(issues).ok(),
            ConformanceError::TooDeep(_) => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ConformanceError::Catalog(error) => error.hint(),
            ConformanceError::Rejected(_) => None,
            ConformanceError::TooDeep(error) => error.hint(),
        }
    }
}

/// Validate `container` against the current version of `app.form`; the version id it
/// conforms to, or every reason it does not.
pub fn check(app: &str, form: &str, container: &[u8]) -> Result<i64, ConformanceError> {
    Ok(check_current(app, form, container)?.version_id)
}

/// As [`check`], with the form's workflow version too.
pub fn check_current(
    app: &str,
    form: &str,
    container: &[u8],
) -> Result<CurrentForm, ConformanceError> {
    let (current, compiled) = definitions_cache::current_validator(app, form)?;
    let limit = definitions_cache::max_document_depth();
    if compiled.is_valid(container, limit)? {
        return Ok(current);
    }
    Err(ConformanceError::Rejected(
        compiled.issues(container, limit)?,
    ))
}

/// Raise a refused write the way `check_record` always has: `lowcode: app.form: ...`, with
/// the values of fields hidden from the writer left out.
pub fn raise_check(app: &str, form: &str, error: ConformanceError) -> ! {
    match error {
        ConformanceError::Catalog(error) => raise("", error),
        rejected => raise(&format!("{app}.{form}"), redact_hidden(app, form, rejected)),
    }
}

/// The fields of `app.form` hidden from the invoker (`lowcode.hidden`).
pub fn hidden_fields(app: &str, form: &str) -> Vec<String> {
    Spi::get_one_with_args::<Vec<String>>(
        "SELECT lowcode.hidden($1, $2)",
        &[app.into(), form.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// A refused write's issues without the values of fields hidden from the invoker (asked only
/// when a write is refused).
pub fn redact_hidden(app: &str, form: &str, error: ConformanceError) -> ConformanceError {
    match error {
        ConformanceError::Rejected(mut issues) => {
            let hidden = hidden_fields(app, form);
            validation::redact(&mut issues, &hidden);
            ConformanceError::Rejected(issues)
        }
        other => other,
    }
}
