//! The boundary: every module's error becomes one PostgreSQL ERROR with a SQLSTATE,
//! a message that starts with `lowcode: <app>.<form>:`, JSON in DETAIL, and a HINT where
//! the fix is obvious.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// An error that knows how PostgreSQL should see it.
pub trait Reportable: std::fmt::Display {
    fn sqlstate(&self) -> PgSqlErrorCode;
    fn detail(&self) -> Option<String> {
        None
    }
    fn hint(&self) -> Option<String> {
        None
    }
}

/// Raise `error` as an ERROR about `subject` (e.g. `inspection.fault_report`). Never returns.
pub fn raise(subject: &str, error: impl Reportable) -> ! {
    let message = if subject.is_empty() {
        format!("lowcode: {error}")
    } else {
        format!("lowcode: {subject}: {error}")
    };
    let mut report = ErrorReport::new(error.sqlstate(), message, "lowcode");
    if let Some(detail) = error.detail() {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

impl Reportable for crate::definitions::DefinitionError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
    }
    fn detail(&self) -> Option<String> {
        match self {
            crate::definitions::DefinitionError::Invalid {
                pointer, keyword, ..
            } => Some(serde_json::json!({"path": pointer, "keyword": keyword}).to_string()),
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        crate::definitions::DefinitionError::hint(self).map(str::to_owned)
    }
}

impl Reportable for crate::workflow::WorkflowError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
    }
    fn detail(&self) -> Option<String> {
        Some(serde_json::json!({"path": self.path()}).to_string())
    }
}

impl Reportable for crate::validation::TooDeep {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED
    }
    fn hint(&self) -> Option<String> {
        Some("flatten the document, or raise lowcode.max_document_depth if the server's stack allows".into())
    }
}

impl Reportable for crate::webhook::WebhookError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            crate::webhook::WebhookError::HostNotAllowed(_) => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            crate::webhook::WebhookError::HostNotAllowed(_) => Some(
                "a superuser allows hosts in lowcode.webhook_allow (postgresql.conf or ALTER SYSTEM, then reload)".into(),
            ),
            crate::webhook::WebhookError::BadSecret => {
                Some("leave the secret out to have one made, or pass whsec_ and base64 of 16 to 64 random bytes".into())
            }
            _ => None,
        }
    }
}
