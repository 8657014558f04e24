//! Records: the write path's check. Every insert or update of `lowcode.records` (from
//! `submit`, `update_record`, a typed view, COPY or a plain UPDATE) passes through the
//! trigger in `sql/records.sql`, which calls [`check`].

use pgrx::PgSqlErrorCode;

use crate::catalog::{self, CatalogError};
use crate::report::Reportable;
use crate::validation::{self, Issue};

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
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

impl Reportable for RecordError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            RecordError::Catalog(error) => error.sqlstate(),
            RecordError::Rejected(_) => PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            RecordError::TooDeep(error) => error.sqlstate(),
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            RecordError::Catalog(error) => error.detail(),
            RecordError::Rejected(issues) => serde_json::to_string(issues).ok(),
            RecordError::TooDeep(_) => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RecordError::Catalog(error) => error.hint(),
            RecordError::Rejected(_) => None,
            RecordError::TooDeep(error) => error.hint(),
        }
    }
}

/// Validate `container` against the current version of `app.form`; the version id it
/// conforms to, or every reason it does not.
pub fn check(app: &str, form: &str, container: &[u8]) -> Result<i64, RecordError> {
    let (version_id, compiled) = catalog::current_validator(app, form)?;
    let limit = catalog::max_document_depth();
    if compiled.is_valid(container, limit)? {
        return Ok(version_id);
    }
    Err(RecordError::Rejected(compiled.issues(container, limit)?))
}
