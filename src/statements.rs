//! The few statements the engine runs on every write, prepared once per backend and kept
//! (`SPI_keepplan`): planning them again for every row was most of what the PL/pgSQL engine
//! spent. PostgreSQL re-plans a kept statement by itself when a table it reads changes.
//!
//! Every statement names lowcode's tables, functions and operators with their schema: the
//! engine runs under the caller's search_path.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgBuiltInOids, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};

/// A statement and the types of its parameters.
pub struct Statement {
    pub sql: &'static str,
    pub args: &'static [PgBuiltInOids],
}

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
    // Statements whose text is built at run time (one per typed view), least recently used
    // dropped first.
    static BUILT: RefCell<crate::cache::Lru<String, Rc<OwnedPreparedStatement>>> =
        RefCell::new(crate::cache::Lru::new(256));
}

fn plan(client: &SpiClient<'_>, statement: &Statement) -> SpiResult<Rc<OwnedPreparedStatement>> {
    if let Some(plan) = PLANS.with(|p| p.borrow().get(statement.sql).cloned()) {
        return Ok(plan);
    }
    let types: Vec<PgOid> = statement.args.iter().map(|&o| PgOid::BuiltIn(o)).collect();
    let plan = Rc::new(client.prepare_mut(statement.sql, &types)?.keep());
    PLANS.with(|p| p.borrow_mut().insert(statement.sql, plan.clone()));
    Ok(plan)
}

/// Run `statement` with `args` (in its parameters' order). Prepared read-write (it sees this
/// transaction's own writes, and may write), but run without asking for a transaction id
/// first (pgrx's `update` does): a statement that only reads works on a hot standby and in
/// read-only transactions, and one that writes gets its id from PostgreSQL as usual.
pub fn run<'conn>(
    client: &mut SpiClient<'conn>,
    statement: &Statement,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    let plan = plan(client, statement)?;
    client.select(&*plan, None, args)
}

/// Run `statement` in a connection of its own and read its first row with `read`; None when
/// it returns no row.
pub fn first_row<T>(
    statement: &Statement,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&SpiTupleTable) -> SpiResult<T>,
) -> SpiResult<Option<T>> {
    pgrx::spi::Spi::connect_mut(|client| {
        let table = run(client, statement, args)?;
        if table.is_empty() {
            return Ok(None);
        }
        read(&table.first()).map(Some)
    })
}

/// Run a statement whose text is built at run time (identifiers quoted by the caller; one per
/// typed view), kept prepared like the others; its parameter types are oids (a view's row
/// type).
pub fn run_typed<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &str,
    args: &[pg_sys::Oid],
    values: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    // The parameter types are part of the key: a view published again is a new row type
    // under the same name, and a statement prepared for the old one cannot take the new.
    let key = format!("{sql}\n-- {args:?}");
    let cached = BUILT.with(|b| b.borrow_mut().get(&key));
    let plan = match cached {
        Some(plan) => plan,
        None => {
            let types: Vec<PgOid> = args.iter().map(|&o| PgOid::from(o)).collect();
            let plan = Rc::new(client.prepare_mut(sql, &types)?.keep());
            BUILT.with(|b| b.borrow_mut().insert(key, plan.clone()));
            plan
        }
    };
    client.select(&*plan, None, values)
}

/// Run a statement built at run time whose text depends only on `key` (with `args`'
/// types): prepared once per key and kept (least recently used dropped first); `text` builds
/// it on the first use. (Debug builds check that the text is the same on every call.)
pub fn run_keyed<'conn>(
    client: &mut SpiClient<'conn>,
    key: &str,
    text: impl FnOnce() -> String,
    args: &[pg_sys::Oid],
    values: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    let key = format!("shape {key}\n-- {args:?}");
    let cached = BUILT.with(|b| b.borrow_mut().get(&key));
    let plan = match cached {
        Some(plan) => {
            #[cfg(debug_assertions)]
            KEYED_TEXT
                .with(|k| assert_eq!(k.borrow().get(&key), Some(&text()), "one key, two texts"));
            plan
        }
        None => {
            let sql = text();
            let types: Vec<PgOid> = args.iter().map(|&o| PgOid::from(o)).collect();
            let plan = Rc::new(client.prepare_mut(&sql, &types)?.keep());
            #[cfg(debug_assertions)]
            KEYED_TEXT.with(|k| k.borrow_mut().insert(key.clone(), sql));
            BUILT.with(|b| b.borrow_mut().insert(key, plan.clone()));
            plan
        }
    };
    client.select(&*plan, None, values)
}

#[cfg(debug_assertions)]
thread_local! {
    static KEYED_TEXT: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// How many statements this backend keeps prepared (for tests).
pub fn kept() -> usize {
    PLANS.with(|p| p.borrow().len()) + BUILT.with(|b| b.borrow().len())
}

/// A jsonb parameter from a datum the caller owns.
pub fn jsonb_arg<'a>(datum: pg_sys::Datum) -> DatumWithOid<'a> {
    // SAFETY: the caller passes a jsonb datum that lives as long as the statement runs.
    unsafe { DatumWithOid::new(datum, pg_sys::JSONBOID) }
}

/// A NULL of `oid`.
pub fn null_arg<'a>(oid: pg_sys::Oid) -> DatumWithOid<'a> {
    DatumWithOid::null_oid(oid)
}
