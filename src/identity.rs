//! Who is acting. lowcode's entry points are SECURITY DEFINER functions, so `current_user`
//! inside them is the extension's owner; privileges are checked against the *invoker*, the
//! session's role after `SET ROLE` (PostgreSQL's "outer" user id). User code that a workflow
//! runs (`call` actions) runs as that invoker too, never with the owner's privileges.

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use crate::report::Reportable;

/// Why user code could not be run as the invoker.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("running user code as the invoker is only possible from lowcode's own functions")]
    NotFromLowcode,
    #[error("{0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl Reportable for IdentityError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            IdentityError::NotFromLowcode => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            IdentityError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
}

/// The role lowcode authorizes: the session's role after `SET ROLE`.
pub fn invoker() -> pg_sys::Oid {
    // SAFETY: reads a backend global; cannot fail.
    unsafe { pg_sys::GetOuterUserId() }
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

/// Runs `query` (one jsonb column, `$1` = `arg`) as the invoker, as PostgreSQL runs a
/// SECURITY DEFINER function's body: with `SET ROLE` forbidden until it returns. Only from
/// lowcode's own SECURITY DEFINER functions, which run as the extension's owner (or from a
/// superuser, or as the invoker already): a SECURITY DEFINER function of some other role must
/// not gain its caller's rights through this. (EXECUTE is also revoked from PUBLIC.)
pub fn call_as_invoker(query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: plain reads/writes of the backend's user id; restored by `Restore`.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let target = invoker();
    if user != target && !unsafe { pg_sys::superuser_arg(user) } && user != extension_owner()? {
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

/// The role that installed lowcode (its SQL objects belong to it, see sql/hardening.sql).
fn extension_owner() -> Result<pg_sys::Oid, IdentityError> {
    Ok(Spi::get_one::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension e \
         WHERE e.extname OPERATOR(pg_catalog.=) 'lowcode'",
    )?
    .unwrap_or(pg_sys::InvalidOid))
}
