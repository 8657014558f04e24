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
    /// While a call runs on the shards of one app of a distributed runtime
    /// ([`on_shards`]): lowcode's runtime tables by the names their shards of that app have on
    /// this node, `lowcode.records` as `lowcode.records_102008`.
    static SHARDS: RefCell<Option<Rc<Shards>>> = const { RefCell::new(None) };
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
    if on_any_shards() {
        let types: Vec<pg_sys::Oid> = statement
            .args
            .iter()
            .map(|&o| PgOid::BuiltIn(o).value())
            .collect();
        return run_typed(client, statement.sql, &types, args);
    }
    let plan = plan(client, statement)?;
    client.select(&*plan, None, args)
}

/// The app whose shards the engine runs on, and each runtime table's name with its shard's.
struct Shards {
    app: String,
    names: Vec<(String, String)>,
}

/// Run `body` with lowcode's runtime tables named by their shards of `app` on this node
/// (`names`: each table's name and its shard's): every statement the engine runs here then
/// reads and writes that app's shards as one node's tables, locks by id included, and the
/// triggers on the shards run the engine the same way. Citus refuses manual changes to
/// shards unless `citus.enable_manual_changes_to_shards` is on: on for the call only (and
/// so is `citus.allow_nested_distributed_execution`, below).
pub fn on_shards<T>(app: &str, names: Vec<(String, String)>, body: impl FnOnce() -> T) -> T {
    let shards = Shards {
        app: app.to_owned(),
        names,
    };
    let previous = SHARDS.with(|s| s.replace(Some(Rc::new(shards))));
    let _restore = RestoreShards(previous);
    crate::settings::with_setting(c"citus.enable_manual_changes_to_shards", c"on", || {
        // (A call Citus pushed onto a shard with the query that reads it, `SELECT
        // lowcode.transition(r.id, ...) FROM lowcode.records r`, runs inside Citus's task
        // there, where Citus refuses even a read of a reference table, lowcode's
        // definitions and grants, unless this is on. The runtime's statements are the
        // shards' own here, so what is left for Citus are those reads, of the node's copy.)
        crate::settings::with_setting(c"citus.allow_nested_distributed_execution", c"on", body)
    })
}

/// The shards [`on_shards`] is running on, when they are `app`'s.
pub fn shards_for(app: &str) -> Option<Vec<(String, String)>> {
    SHARDS.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|shards| shards.app == app)
            .map(|shards| shards.names.clone())
    })
}

/// The app whose shards [`on_shards`] is running on (None outside, or on a group of shards of
/// many apps: the background worker's round).
pub fn shards_app() -> Option<String> {
    SHARDS.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|shards| !shards.app.is_empty())
            .map(|shards| shards.app.clone())
    })
}

/// Is a call running on some app's shards ([`on_shards`])?
pub fn on_any_shards() -> bool {
    SHARDS.with(|s| s.borrow().is_some())
}

struct RestoreShards(Option<Rc<Shards>>);

impl Drop for RestoreShards {
    fn drop(&mut self) {
        SHARDS.with(|s| *s.borrow_mut() = self.0.take());
    }
}

/// `sql` with the runtime tables named by their shards, when [`on_shards`] is running; None
/// otherwise. A table's name is replaced where it is a whole name (`lowcode.records`, not
/// `lowcode.records_id_seq`); a record passed whole to a function (`keep_hidden(x, ...)`)
/// is given the table's row type.
fn on_shard(sql: &str) -> Option<String> {
    let shards = SHARDS.with(|s| s.borrow().clone())?;
    Some(rename(sql, &shards.names))
}

/// `sql` with a record passed whole to `lowcode.keep_hidden(r, ...)` given the table's row
/// type, `ROW(r.*)::"lowcode"."records"` (a shard's rows are of the shard's own type; the
/// name quoted, so that [`rename`] leaves it as it is).
fn whole_records(sql: &str) -> String {
    const CALL: &str = "lowcode.keep_hidden(";
    let mut text = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(at) = rest.find(CALL) {
        let (before, after) = rest.split_at(at + CALL.len());
        text.push_str(before);
        let alias_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let alias = &after[..alias_len];
        if !alias.is_empty() && after[alias_len..].starts_with(',') {
            text.push_str(&format!("ROW({alias}.*)::\"lowcode\".\"records\""));
        } else {
            text.push_str(alias);
        }
        rest = &after[alias_len..];
    }
    text.push_str(rest);
    text
}

/// `sql` with every whole `from` name of `names` replaced by its `to`.
fn rename(sql: &str, names: &[(String, String)]) -> String {
    let mut text = whole_records(sql);
    for (from, to) in names {
        let mut out = String::with_capacity(text.len() + 16);
        let mut rest = text.as_str();
        while let Some(at) = rest.find(from.as_str()) {
            let after = &rest[at + from.len()..];
            let whole = !after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            out.push_str(&rest[..at]);
            out.push_str(if whole { to } else { from });
            rest = after;
        }
        out.push_str(rest);
        text = out;
    }
    text
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
    let renamed = on_shard(sql);
    let sql = renamed.as_deref().unwrap_or(sql);
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
    if on_any_shards() {
        return run_typed(client, &text(), args, values);
    }
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

/// One SQL call of `call_at` (`call`) run here: `sql`, with the call's arguments as a jsonb
/// `$1`, returns its result as jsonb (the outbox calls, `delete_record`, `read_records`).
pub fn call_with_json(
    call: &str,
    sql: &str,
    args: &serde_json::Value,
) -> Option<serde_json::Value> {
    pgrx::spi::Spi::get_one_with_args::<pgrx::JsonB>(sql, &[pgrx::JsonB(args.clone()).into()])
        .unwrap_or_else(|error| crate::report::failed(format_args!("{call}"), error))
        .map(|j| j.0)
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn rename_names_whole_tables_only() {
        let names = vec![
            (
                "lowcode.records".to_owned(),
                "lowcode.records_102008".to_owned(),
            ),
            (
                "lowcode.tasks".to_owned(),
                "lowcode.tasks_102024".to_owned(),
            ),
        ];
        assert_eq!(
            rename(
                "SELECT r.id FROM lowcode.records r JOIN lowcode.tasks t ON t.record_id = r.id \
                 WHERE pg_catalog.nextval('lowcode.records_id_seq') > 0 AND lowcode.tasks_have_app()",
                &names
            ),
            "SELECT r.id FROM lowcode.records_102008 r JOIN lowcode.tasks_102024 t ON t.record_id = r.id \
                 WHERE pg_catalog.nextval('lowcode.records_id_seq') > 0 AND lowcode.tasks_have_app()"
        );
        assert_eq!(
            rename("UPDATE lowcode.records x SET data = lowcode.keep_hidden(x, $2, $3)", &names),
            "UPDATE lowcode.records_102008 x SET data = lowcode.keep_hidden(ROW(x.*)::\"lowcode\".\"records\", $2, $3)"
        );
        // Twice is once: a renamed statement passes through again unchanged.
        let once = rename(
            "UPDATE lowcode.records x SET data = lowcode.keep_hidden(x, $2, $3) FROM lowcode.tasks y",
            &names,
        );
        assert_eq!(rename(&once, &names), once);
        assert_eq!(rename("SELECT 1", &[]), "SELECT 1");
        assert_eq!(
            rename(
                "SELECT r.data OPERATOR(pg_catalog.||) lowcode.keep_hidden(r, $2, $3) FROM lowcode.records r",
                &names
            ),
            "SELECT r.data OPERATOR(pg_catalog.||) lowcode.keep_hidden(ROW(r.*)::\"lowcode\".\"records\", $2, $3) FROM lowcode.records_102008 r"
        );
    }
}
