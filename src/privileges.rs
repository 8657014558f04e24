//! App privileges at the moment they are checked: every entry point asks [`authorize`]
//! (through `lowcode.authorize`) before it reads or writes, and policies and typed views ask
//! `lowcode.may` through `lowcode.apps_where`. The grants themselves are rows of
//! `lowcode.grants` (sql/privileges.sql); what a role may is decided here, for the invoker
//! (the session's role, not the SECURITY DEFINER owner), at the moment of the check.

use pgrx::pg_sys::BuiltinOid::{OIDOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::identity;
use crate::statements::{self, Statement};

// A grant's role by name: to_regrole (NULL for a role dropped since, which then holds
// nothing), not a join with pg_roles: on Citus, where lowcode.grants is a reference table,
// Citus writes such a join out again with the view expanded and runs it as the invoker,
// who may not read pg_authid.
const ALL_APPS: Statement = Statement {
    sql: "SELECT a.name FROM lowcode.apps a",
    args: &[],
};
const APPS_GRANTED: Statement = Statement {
    sql: "SELECT a.name FROM lowcode.apps a \
           WHERE EXISTS (SELECT FROM lowcode.grants g \
                         WHERE g.app OPERATOR(pg_catalog.=) a.name \
                           AND g.privilege OPERATOR(pg_catalog.=) ANY (ARRAY[$1, 'admin']) \
                           AND pg_catalog.pg_has_role($2, pg_catalog.to_regrole(pg_catalog.quote_ident(g.role)), 'MEMBER'))",
    args: &[TEXTOID, OIDOID],
};
const HIDES_ANY: Statement = Statement {
    sql: "SELECT EXISTS (SELECT FROM lowcode.hidden_fields h \
                         WHERE h.app OPERATOR(pg_catalog.=) $1 AND h.form OPERATOR(pg_catalog.=) $2 \
                           AND pg_catalog.pg_has_role($3, pg_catalog.to_regrole(pg_catalog.quote_ident(h.role)), 'MEMBER'))",
    args: &[TEXTOID, TEXTOID, OIDOID],
};
const GRANTED: Statement = Statement {
    sql: "SELECT EXISTS (SELECT FROM lowcode.grants g \
                         WHERE g.app OPERATOR(pg_catalog.=) $1 \
                           AND g.privilege OPERATOR(pg_catalog.=) ANY (ARRAY[$2, 'admin']) \
                           AND pg_catalog.pg_has_role($3, pg_catalog.to_regrole(pg_catalog.quote_ident(g.role)), 'MEMBER'))",
    args: &[TEXTOID, TEXTOID, OIDOID],
};

/// Whether the invoker is a lowcode administrator: a superuser, or a member of the role that
/// owns the extension.
pub fn admin() -> bool {
    let owner = identity::extension_owner();
    // SAFETY: a membership check of two role oids.
    owner != pg_sys::InvalidOid && unsafe { pg_sys::is_member_of_role(identity::invoker(), owner) }
}

/// Whether the invoker holds `privilege` in `app` (directly, through a role it is a member
/// of, or as the app's admin), or is a lowcode administrator.
pub fn holds(app: Option<&str>, privilege: Option<&str>) -> bool {
    if admin() {
        return true;
    }
    let (Some(app), Some(privilege)) = (app, privilege) else {
        return false;
    };
    ask(&GRANTED, app, privilege, "privileges").unwrap_or(false)
}

/// A yes-or-no question about the invoker: `statement` takes two texts and the invoker's oid.
fn ask(statement: &Statement, a: &str, b: &str, what: &str) -> Option<bool> {
    Spi::connect_mut(|client| {
        statements::run(
            client,
            statement,
            &[a.into(), b.into(), identity::invoker().into()],
        )?
        .first()
        .get::<bool>(1)
    })
    .unwrap_or_else(|error| crate::report::failed(format_args!("checking {what}"), error))
}

/// Whether some field of `app.form` is hidden from the invoker (lowcode administrators see
/// everything).
pub fn hides_any(app: &str, form: &str) -> bool {
    if admin() {
        return false;
    }
    ask(&HIDES_ANY, app, form, "hidden fields").unwrap_or(true)
}

/// Raise insufficient_privilege (42501), naming the app, the role, what it tried and the
/// privilege that would allow it.
pub fn refuse_with(app: Option<&str>, privilege: Option<&str>, doing: Option<&str>) -> ! {
    let me = identity::invoker_name();
    let whose = app.map(|a| format!("app \"{a}\": ")).unwrap_or_default();
    let hint = if privilege == Some("lowcode_admin") {
        "only lowcode administrators may: superusers and members of the role that owns the extension"
            .to_owned()
    } else {
        format!(
            "an app admin can allow it: SELECT lowcode.grant({}, {}, ARRAY[{}])",
            literal(app),
            literal(Some(&me)),
            literal(privilege)
        )
    };
    crate::report::refuse(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{whose}role \"{me}\" may not {}", doing.unwrap_or("<NULL>")),
        None,
        Some(hint),
    )
}

/// A value as `format('%L')` (and `quote_nullable`) writes it.
pub fn literal(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some(v) if v.contains('\\') => {
            format!("E'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
        }
        Some(v) => format!("'{}'", v.replace('\'', "''")),
    }
}

/// True for lowcode administrators: superusers and members of the role that owns the
/// extension.
#[pg_extern(stable, parallel_safe)]
fn is_admin() -> bool {
    admin()
}

/// True when the invoker holds privilege in app (directly, through a role it is a member
/// of, or as the app's admin), or is a lowcode administrator.
#[pg_extern(stable, parallel_safe)]
fn may(app: Option<&str>, privilege: Option<&str>) -> bool {
    holds(app, privilege)
}

/// Internal: raises insufficient_privilege (42501) unless the invoker holds privilege in app
/// ('lowcode_admin': is a lowcode administrator).
#[pg_extern(volatile)]
fn authorize(app: Option<&str>, privilege: Option<&str>, doing: Option<&str>) {
    let allowed = if privilege == Some("lowcode_admin") {
        admin()
    } else {
        holds(app, privilege)
    };
    if !allowed {
        refuse_with(app, privilege, doing);
    }
}

/// Internal: raises insufficient_privilege (42501), naming the app, the role, what it tried
/// and the privilege that would allow it.
#[pg_extern(volatile)]
fn refuse(app: Option<&str>, privilege: Option<&str>, doing: Option<&str>) {
    refuse_with(app, privilege, doing);
}

/// The apps where the invoker holds `privilege` (every app for a lowcode administrator).
pub fn apps_with(privilege: &str) -> Vec<String> {
    let admin = admin();
    Spi::connect_mut(|client| {
        let table = if admin {
            statements::run(client, &ALL_APPS, &[])?
        } else {
            statements::run(
                client,
                &APPS_GRANTED,
                &[privilege.into(), identity::invoker().into()],
            )?
        };
        table
            .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|error| crate::report::failed("reading privileges", error))
}

/// The apps where the invoker holds privilege. Policies and typed views test
/// `app = ANY (ARRAY(SELECT lowcode.apps_where(...)))`, worked out once per query.
#[pg_extern(stable, parallel_safe)]
fn apps_where(privilege: Option<&str>) -> SetOfIterator<'static, String> {
    SetOfIterator::new(apps_listed(privilege))
}

/// What `lowcode.apps_where` answers (no privilege: every app for an administrator, none
/// for anyone else).
fn apps_listed(privilege: Option<&str>) -> Vec<String> {
    privilege
        .map(apps_with)
        .unwrap_or_else(|| if admin() { apps_with("") } else { Vec::new() })
}

/// What [`apps_granted`] answered last in this backend: for which command of which statement,
/// invoker and privilege.
#[derive(PartialEq)]
struct GrantedKey {
    transaction_started: pg_sys::TimestampTz,
    statement_started: pg_sys::TimestampTz,
    command: pg_sys::CommandId,
    invoker: pg_sys::Oid,
    privilege: Option<String>,
}

thread_local! {
    static ANSWERED: std::cell::RefCell<Vec<(GrantedKey, Vec<String>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The apps where the invoker holds privilege, as an array: what the row-level security
/// policies of a distributed runtime test (`app = ANY (lowcode.apps_granted(...))`), since
/// Citus refuses subqueries in policies on distributed tables (lowcode.distribute). A policy
/// asks for every row; the apps are read once per command and kept until the next one (a
/// grant or revoke in between is a new command), so a row costs a lookup here, not a query.
#[pg_extern(stable, parallel_safe)]
fn apps_granted(privilege: Option<&str>) -> Vec<String> {
    // SAFETY: reads of the current transaction's and statement's state.
    let key = unsafe {
        GrantedKey {
            transaction_started: pg_sys::GetCurrentTransactionStartTimestamp(),
            statement_started: pg_sys::GetCurrentStatementStartTimestamp(),
            command: pg_sys::GetCurrentCommandId(false),
            invoker: identity::invoker(),
            privilege: privilege.map(str::to_owned),
        }
    };
    if let Some(apps) = ANSWERED.with(|g| {
        let g = g.borrow();
        g.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, apps)| apps.clone())
    }) {
        return apps;
    }
    // On a shard the policy runs inside Citus's query of it: the grants are a reference
    // table, read from this node's copy.
    let apps =
        crate::settings::with_setting(c"citus.allow_nested_distributed_execution", c"on", || {
            apps_listed(privilege)
        });
    ANSWERED.with(|g| {
        let mut g = g.borrow_mut();
        // Only this command's answers are kept (a policy asks for a few privileges).
        g.retain(|(k, _)| {
            k.transaction_started == key.transaction_started
                && k.statement_started == key.statement_started
                && k.command == key.command
                && k.invoker == key.invoker
        });
        g.push((key, apps.clone()));
    });
    apps
}
