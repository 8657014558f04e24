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
    report(subject, &error)
}

/// The one place an ERROR is built: `lowcode: [<subject>: ]<error>` with the error's
/// SQLSTATE, DETAIL and HINT. `#[track_caller]`: through [`failed`], [`broken`] and
/// [`refuse`] (`#[track_caller]` too) the location PostgreSQL logs is their caller's.
#[track_caller]
fn report(subject: &str, error: &dyn Reportable) -> ! {
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

/// Something inside lowcode went wrong, not the caller's doing: internal_error (XX000), no
/// DETAIL or HINT.
#[derive(Debug)]
pub enum Failed {
    /// A step (a catalog query, an SPI call) failed: `<what> failed: <error>`.
    Step { what: String, error: String },
    /// A state the code cannot go on from (a missing column, a trigger without its
    /// arguments): the message as it is.
    Broken(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Step { what, error } => write!(f, "{what} failed: {error}"),
            Failed::Broken(message) => f.write_str(message),
        }
    }
}

impl Reportable for Failed {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
    }
}

/// Raise `lowcode: <what> failed: <error>` (XX000). Never returns.
#[track_caller]
pub fn failed(what: impl std::fmt::Display, error: impl std::fmt::Display) -> ! {
    report(
        "",
        &Failed::Step {
            what: what.to_string(),
            error: error.to_string(),
        },
    )
}

/// Raise `lowcode: <message>` (XX000) for a state the code cannot go on from. Never returns.
#[track_caller]
pub fn broken(message: impl std::fmt::Display) -> ! {
    report("", &Failed::Broken(message.to_string()))
}

/// A refusal with its own SQLSTATE, DETAIL and HINT, for checks that are no module error
/// (privileges, a task that is not the caller's, a record that may not change so). `message`
/// goes without the `lowcode: ` that every message starts with.
#[derive(Debug)]
pub struct Refusal {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Reportable for Refusal {
    fn sqlstate(&self) -> PgSqlErrorCode {
        self.code
    }
    fn detail(&self) -> Option<String> {
        self.detail.clone()
    }
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// Raise `lowcode: <message>` with `code`, DETAIL and HINT (`message` without the
/// `lowcode: `). Never returns.
#[track_caller]
pub fn refuse(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    report(
        "",
        &Refusal {
            code,
            message,
            detail,
            hint,
        },
    )
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
