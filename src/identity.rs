//! Who is acting. lowcode's entry points are SECURITY DEFINER functions, so `current_user`
//! inside them is the extension's owner; privileges are checked against the *invoker*, the
//! session's role after `SET ROLE` (PostgreSQL's "outer" user id). User code that a workflow
//! runs (`call` actions) runs as the role that published the workflow version, never with the
//! owner's privileges nor with those of whoever fired the rule.

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use crate::report::Reportable;

/// Why user code could not be run as the invoker.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("running user code as the invoker is only possible from lowcode's own functions")]
    NotFromLowcode,
    #[error("workflow calls run as the role that published the workflow, and role \"{0}\" no longer exists")]
    NoSuchRole(String),
    #[error("workflow calls never run as superuser \"{0}\" in a lowcode installed by a role that is not a superuser")]
    Superuser(String),
    #[error("{0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl Reportable for IdentityError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            IdentityError::NotFromLowcode | IdentityError::Superuser(_) => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            IdentityError::NoSuchRole(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            IdentityError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
}

/// The role lowcode authorizes: the session's role after `SET ROLE`.
pub fn invoker() -> pg_sys::Oid {
    // SAFETY: reads a backend global; cannot fail.
    unsafe { pg_sys::GetOuterUserId() }
}

/// The name of [`invoker`].
pub fn invoker_name() -> String {
    // SAFETY: a catalog lookup of a role that exists (the session's).
    unsafe {
        std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(invoker(), false))
            .to_string_lossy()
            .into_owned()
    }
}

/// Who is acting in `app` (what `lowcode.actor(app)` says): the `lowcode.actor` setting where
/// the invoker may act as someone else there (`lowcode.acting_as` decides, and refuses
/// otherwise), else the invoker.
pub fn actor(app: Option<&str>) -> Result<String, IdentityError> {
    let me = invoker_name();
    let label = crate::records::setting(c"lowcode.actor").unwrap_or_default();
    if label.is_empty() || label == me {
        return Ok(me);
    }
    // (A read: `select`, so that no transaction id is asked for.)
    Ok(Spi::connect(|client| {
        client
            .select(
                "SELECT lowcode.acting_as($1, $2)",
                Some(1),
                &[app.into(), label.as_str().into()],
            )?
            .first()
            .get::<String>(1)
    })?
    .unwrap_or(me))
}

/// Puts the saved user id and security context back, also when the query raised.
struct Restore {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores the values read by GetUserIdAndSecContext below.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Runs `query` (one jsonb column, `$1` = `arg`) as the invoker: 0.1.0's `call` actions
/// (kept so this library serves a 0.1.0 database until it is updated).
pub fn call_as_invoker(query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    run_as(invoker(), query, arg)
}

/// Runs `query` (one jsonb column, `$1` = `arg`) as `role` — a workflow `call` as the role
/// that published the workflow version. Never as a superuser unless lowcode itself runs as
/// one (the installing role could otherwise write a superuser's name into
/// `workflow_versions`).
pub fn call_as(role: &str, query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    let name = std::ffi::CString::new(role).map_err(|_| IdentityError::NoSuchRole(role.into()))?;
    // SAFETY: a catalog lookup by name; missing_ok so that we raise our own error.
    let target = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    if target == pg_sys::InvalidOid {
        return Err(IdentityError::NoSuchRole(role.into()));
    }
    // SAFETY: reads the backend's current user id.
    let current = unsafe { pg_sys::GetUserId() };
    if unsafe { pg_sys::superuser_arg(target) && !pg_sys::superuser_arg(current) } {
        return Err(IdentityError::Superuser(role.into()));
    }
    run_as(target, query, arg)
}

/// Runs `query` as `target`, as PostgreSQL runs a SECURITY DEFINER function's body: with
/// `SET ROLE` forbidden until it returns. Only from lowcode's own SECURITY DEFINER functions,
/// which run as the extension's owner (or from a superuser, or as the target already): a
/// SECURITY DEFINER function of some other role must not gain another role's rights through
/// this. (EXECUTE is also revoked from PUBLIC.)
fn run_as(target: pg_sys::Oid, query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: plain reads/writes of the backend's user id; restored by `Restore`.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    if user != target
        && !unsafe { pg_sys::superuser_arg(user) }
        && user != crate::privileges::extension_owner()
    {
        return Err(IdentityError::NotFromLowcode);
    }
    let _restore = Restore { user, context };
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            target,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    Ok(Spi::get_one_with_args::<JsonB>(query, &[arg.into()])?)
}
