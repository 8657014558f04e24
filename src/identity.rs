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

thread_local! {
    /// The roles whose code lowcode is running in this backend, innermost last: while a
    /// workflow `call` runs as its publisher, lowcode's own notion of who is acting is the
    /// publisher, not whoever fired the rule (the worker, a superuser, an app role).
    static ACTING_FOR: std::cell::RefCell<Vec<pg_sys::Oid>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The role lowcode authorizes: inside a workflow `call`, the role it runs as (its
/// publisher); otherwise the session's role after `SET ROLE`.
pub fn invoker() -> pg_sys::Oid {
    ACTING_FOR
        .with(|stack| stack.borrow().last().copied())
        // SAFETY: reads a backend global; cannot fail.
        .unwrap_or_else(|| unsafe { pg_sys::GetOuterUserId() })
}

/// Forget every acting role: the transaction ended (the guards below pop theirs as they
/// unwind; this is the backstop).
pub fn reset() {
    ACTING_FOR.with(|stack| stack.borrow_mut().clear());
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
    let label = crate::settings::setting(c"lowcode.actor").unwrap_or_default();
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

/// Puts the saved user id and security context back, also when the body raised (the GUC
/// nest level is then undone by the (sub)transaction's abort, as PostgreSQL does for a
/// SECURITY DEFINER function).
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
/// (kept so this library serves a 0.1.0 database until it is updated). Sandboxed like
/// [`call_as`].
pub fn call_as_invoker(query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    run_as(invoker(), query, arg)
}

/// Runs `query` (one jsonb column, `$1` = `arg`) as `role` — a workflow `call` as the role
/// that published the workflow version. Never as a superuser unless lowcode itself runs as
/// one (the installing role could otherwise write a superuser's name into
/// `workflow_versions`). Only lowcode's engine calls this: it is no SQL function.
pub fn call_as(role: pg_sys::Oid, query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    // SAFETY: catalog lookups of a role by oid.
    let exists = unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::AUTHOID as _,
            pg_sys::Datum::from(role),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    };
    if !exists {
        return Err(IdentityError::NoSuchRole(format!(
            "oid {}",
            u32::from(role)
        )));
    }
    // SAFETY: reads the backend's current user id.
    let current = unsafe { pg_sys::GetUserId() };
    if unsafe { pg_sys::superuser_arg(role) && !pg_sys::superuser_arg(current) } {
        return Err(IdentityError::Superuser(role_name(role)));
    }
    run_as(role, query, arg)
}

/// A role's name (or its oid when it is gone).
pub fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: a catalog lookup; missing_ok.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        format!("oid {}", u32::from(role))
    } else {
        // SAFETY: a palloc'd C string.
        unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Runs `query` (one jsonb column, `$1` = `arg`) as `target`, as its author, with lowcode's
/// [`invoker`] being `target` in every nesting while it runs: the rights of whoever fired
/// the rule never leak into lowcode's checks. Only from lowcode's own SECURITY DEFINER
/// functions, which run as the extension's owner (or from a superuser, or as the target
/// already).
fn run_as(target: pg_sys::Oid, query: &str, arg: JsonB) -> Result<Option<JsonB>, IdentityError> {
    // SAFETY: reads the backend's current user id.
    let user = unsafe { pg_sys::GetUserId() };
    if user != target && !unsafe { pg_sys::superuser_arg(user) } && user != extension_owner() {
        return Err(IdentityError::NotFromLowcode);
    }
    ACTING_FOR.with(|stack| stack.borrow_mut().push(target));
    let _acting = Acting;
    Ok(sandboxed(target, || {
        Spi::get_one_with_args::<JsonB>(query, &[arg.into()])
    })?)
}

/// Ends the acting role pushed by [`run_as`], also when the query raised.
struct Acting;

impl Drop for Acting {
    fn drop(&mut self) {
        ACTING_FOR.with(|stack| stack.borrow_mut().pop());
    }
}

/// Runs `body` as `target` the way PostgreSQL runs a table owner's code in VACUUM or
/// REFRESH MATERIALIZED VIEW: as `target`, in a *security-restricted operation* (no `SET
/// ROLE`, no temporary objects, no `SET SESSION AUTHORIZATION`), in a GUC nest level of its
/// own with `search_path = pg_catalog, pg_temp`, and every setting changed inside undone
/// when it returns (a `set_config(..., false)` included). The user id and security context
/// come back also when `body` raises; the settings then go with the (sub)transaction's
/// abort, as after an error in a SECURITY DEFINER function.
pub fn sandboxed<R>(target: pg_sys::Oid, body: impl FnOnce() -> R) -> R {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: plain reads/writes of the backend's user id; restored by `Restore`.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    // SAFETY: a new GUC nest level, closed below (or by the abort of the (sub)transaction).
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    let restore = Restore { user, context };
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            target,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        crate::settings::save(c"search_path", c"pg_catalog, pg_temp");
    }
    let result = body();
    // Whatever the body SET (locally or not) goes back to what it was.
    // SAFETY: the nest level opened above, the innermost one again now.
    unsafe { pg_sys::AtEOXact_GUC(false, nest) };
    drop(restore);
    result
}

// ------------------------------------------------------------------ the owner

thread_local! {
    // The owner as read in the statement that started at this time.
    static OWNER: std::cell::Cell<(i64, pg_sys::Oid)> =
        const { std::cell::Cell::new((i64::MIN, pg_sys::InvalidOid)) };
}

/// The role that owns the extension (its administrators are its members), read through
/// pg_extension's name index once per statement: a sequential scan of that small table's
/// page of old row versions cost every write more than the rest of this check.
pub fn extension_owner() -> pg_sys::Oid {
    // SAFETY: reads a backend global.
    let statement = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    let (seen, owner) = OWNER.with(std::cell::Cell::get);
    if seen == statement && owner != pg_sys::InvalidOid {
        return owner;
    }
    let owner = read_extension_owner();
    OWNER.with(|o| o.set((statement, owner)));
    owner
}

fn read_extension_owner() -> pg_sys::Oid {
    // SAFETY: a catalog index scan under AccessShareLock, as PostgreSQL's own lookups do.
    unsafe {
        let rel = pg_sys::table_open(pg_sys::ExtensionRelationId, pg_sys::AccessShareLock as i32);
        let name = pgrx::direct_function_call_as_datum(
            pg_sys::namein,
            &[Some(pg_sys::Datum::from(c"lowcode".as_ptr()))],
        );
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_extension_extname as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_NAMEEQ),
            name.unwrap_or(pg_sys::Datum::from(0)),
        );
        let scan = pg_sys::systable_beginscan(
            rel,
            pg_sys::Oid::from(pg_sys::ExtensionNameIndexId),
            true,
            std::ptr::null_mut(),
            1,
            &mut key,
        );
        let tuple = pg_sys::systable_getnext(scan);
        let owner = if tuple.is_null() {
            pg_sys::InvalidOid
        } else {
            (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_extension>(tuple)).extowner
        };
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        owner
    }
}
