//! Where an app's runtime is. On one node (and on Citus until `lowcode.distribute(runtime =>
//! true)`) everywhere: every call runs where it is made. With the runtime distributed by app,
//! a record, its history, tasks, timers and events live on the node of their app's shard,
//! and the engine runs there: its triggers on the records fire on that node, and its
//! in-memory state (the journal's buffer, the change being recorded) is that backend's. So a
//! call made on another node is sent to the app's node as one call (Citus delegates a
//! distributed function whose distribution argument is a constant: `lowcode.distribute`
//! makes `submit` and `call_at` ones), and runs there in the caller's transaction. There the
//! engine runs on the app's shards as on one node's tables (`statements::on_shards`): every
//! statement, a lock by id included, is a plain local statement on the app's shards, and so
//! are those of the triggers on them. A call that takes only an id (`transition`,
//! `complete_task`, ...) finds its record's or task's app first.

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::report::Reportable;

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "app \"{app}\": its records are on another node, and {call} did not reach it: Citus ran it here"
    )]
    NotDelegated { app: String, call: String },
    #[error("app \"{app}\": its records are on another node; {call} runs on the node of its app")]
    Elsewhere { app: String, call: String },
    #[error("{0} does not run on a distributed runtime yet")]
    NotYet(String),
    #[error("{what} {id} does not exist")]
    NoSuch { what: &'static str, id: i64 },
    /// A call `call_at` does not run; `calls`: those it runs.
    #[error("call_at: no call \"{call}\"")]
    NoCall { call: String, calls: String },
    #[error("finding the node of app \"{app}\" failed: {error}")]
    Spi { app: String, error: String },
    /// `what` is on none of the nodes that answered, and `nodes` did not.
    #[error("{what} is not on the nodes that answered, and {nodes} did not answer")]
    Unreachable { what: String, nodes: String },
    /// The app's shards moved to another node while the call waited for the move to end.
    #[error("app \"{app}\": its shards moved to another node while {call} waited")]
    Moved { app: String, call: String },
}

impl Reportable for PlacementError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            PlacementError::NotDelegated { .. }
            | PlacementError::Elsewhere { .. }
            | PlacementError::NotYet(_) => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            PlacementError::NoSuch { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            PlacementError::NoCall { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            PlacementError::Spi { .. } => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            PlacementError::Moved { .. } => PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
            PlacementError::Unreachable { .. } => PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            PlacementError::Elsewhere { .. } => Some(
                "with the runtime distributed (lowcode.distribute(runtime => true)), write through lowcode.submit: it runs on the app's node"
                    .into(),
            ),
            PlacementError::NotDelegated { .. } => Some(
                "lowcode.distribute(runtime => true) makes it a distributed function: run it again".into(),
            ),
            PlacementError::NotYet(_) => Some(
                "docs/scale-out.md lists what runs on a distributed runtime (lowcode.distribute(runtime => true))"
                    .into(),
            ),
            PlacementError::NoCall { calls, .. } => Some(format!("calls: {calls}")),
            PlacementError::Unreachable { .. } => Some(
                "a node that is down holds the apps named: calls about them work again when it is back (citus_check_cluster_node_health()); other apps are not affected"
                    .into(),
            ),
            PlacementError::Moved { .. } => {
                Some("run it again: it goes to the app's new node (nothing of it was written)".into())
            }
            PlacementError::Spi { .. } | PlacementError::NoSuch { .. } => None,
        }
    }
}

/// Each runtime table's name with its shard's, for one app on this node.
type ShardNames = Vec<(String, String)>;

thread_local! {
    /// Whether the runtime is distributed, as last seen; None: ask. Citus's change of
    /// lowcode.records' metadata (distribute) invalidates its relcache entry, which forgets
    /// the answer ([`init`]).
    static DISTRIBUTED: Cell<Option<bool>> = const { Cell::new(None) };
    /// A call this backend is sending to the app's node: if it comes back here, Citus did not
    /// send it.
    static SENDING: Cell<bool> = const { Cell::new(false) };
    /// lowcode.records' oid, as [`runtime_distributed`] last found it (the relcache callback
    /// compares with it: it may run outside a transaction, where no catalog can be read).
    static RECORDS: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    /// [`MOVES_SEEN`] when [`PLACED`] was last emptied: it is out of date once they differ.
    static PLACED_AT: Cell<u64> = const { Cell::new(0) };
    /// How many times the relcache callback has found lowcode.records changed (a shard move
    /// changes its placements): whether one came while a call waited for a shard's lock.
    static MOVES_SEEN: Cell<u64> = const { Cell::new(0) };
    /// Where each app's shards are, as [`shards_of`] found them: their names when they are on
    /// this node, None when on another. Citus invalidates lowcode.records' relcache entry when
    /// its shards or their placements change (a move): then it is emptied ([`PLACED_AT`]).
    static PLACED: std::cell::RefCell<crate::cache::Lru<String, Option<ShardNames>>> =
        std::cell::RefCell::new(crate::cache::Lru::new(1024));
}

/// Forget whether the runtime is distributed when lowcode.records' relcache entry is
/// invalidated (Citus distributing it does; so does any change to it, rarely).
pub fn init() {
    // SAFETY: registers a callback for the life of the backend, from _PG_init.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}

// Called by PostgreSQL while it processes invalidations, also outside a transaction: it only
// compares and sets flags (no catalog reads, nothing that can raise).
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let records = RECORDS.with(Cell::get);
    if relid == pg_sys::InvalidOid || (records != pg_sys::InvalidOid && relid == records) {
        DISTRIBUTED.with(|d| d.set(None));
        MOVES_SEEN.with(|m| m.set(m.get().wrapping_add(1)));
    }
}

/// lowcode.records' oid (a catalog cache lookup; invalid where lowcode is not installed).
fn records_oid() -> pg_sys::Oid {
    // SAFETY: catalog cache lookups by name.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"lowcode".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::get_relname_relid(c"records".as_ptr(), schema)
    }
}

/// Is lowcode's runtime distributed (lowcode.records a Citus distributed table)? Asked once
/// (without Citus: a catalog cache lookup; with it, a query), then again only after
/// lowcode.records changes.
pub fn runtime_distributed() -> bool {
    if let Some(known) = DISTRIBUTED.with(Cell::get) {
        return known;
    }
    RECORDS.with(|r| r.set(records_oid()));
    // SAFETY: a catalog cache lookup by name.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::InvalidOid
    };
    if !citus {
        // (Until lowcode.records changes: Citus's distributing it invalidates it.)
        DISTRIBUTED.with(|d| d.set(Some(false)));
        return false;
    }
    let distributed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p \
          WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'lowcode.records'::pg_catalog.regclass \
            AND p.partmethod OPERATOR(pg_catalog.=) 'h')",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    DISTRIBUTED.with(|d| d.set(Some(distributed)));
    distributed
}

/// Run `call` about `app` here, or send it to the app's node with `send` (which runs a
/// statement Citus delegates there: the same call, its distribution argument a constant)
/// and return what it returned. Here, on a distributed runtime, is on the app's shards of
/// this node (`statements::on_shards`). If the call comes back to this backend, Citus did
/// not send it: an error, not a loop.
pub fn here_or_there<T>(
    app: &str,
    call: &str,
    here: impl FnOnce() -> T,
    send: impl FnOnce() -> T,
) -> T {
    if SENDING.with(Cell::get) {
        SENDING.with(|s| s.set(false));
        crate::report::raise(
            "",
            PlacementError::NotDelegated {
                app: app.to_owned(),
                call: call.to_owned(),
            },
        );
    }
    if !runtime_distributed() {
        return here();
    }
    let seen = MOVES_SEEN.with(Cell::get);
    match shards_of(app).unwrap_or_else(|error| crate::report::raise("", error)) {
        Some(shards) => {
            let shards = hold_shards(app, shards, seen).unwrap_or_else(|| {
                crate::report::raise(
                    "",
                    PlacementError::Moved {
                        app: app.to_owned(),
                        call: call.to_owned(),
                    },
                )
            });
            crate::statements::on_shards(app, shards, here)
        }
        None => {
            SENDING.with(|s| s.set(true));
            let _sent = Sent;
            send()
        }
    }
}

/// How many changes of lowcode.records' placements (shard moves) this backend has seen.
pub fn moves_seen() -> u64 {
    MOVES_SEEN.with(Cell::get)
}

/// The lock Citus's executor takes before it writes a shard, and a shard move takes in
/// exclusive mode while it copies one (Citus's `LockShardDistributionMetadata`; for the
/// shards of colocated hash-distributed tables an advisory lock of class 8 on the colocation
/// and the shard's index, shared by every shard of the group). The engine writes an app's
/// shards by their names, past Citus's executor, so it takes it itself: a move waits for the
/// writes under way, and a write that comes during the move waits for it to end. Without
/// waiting (`wait` false): false when it is held in a mode that conflicts.
fn lock_shard_metadata(shard: i64, mode: u32, wait: bool) -> bool {
    let (colocation, index) = metadata_lock_key(shard);
    // SAFETY: an advisory lock tag filled in as Citus's
    // SET_LOCKTAG_COLOCATED_SHARDS_METADATA_RESOURCE does, held to the transaction's end
    // (sessionLock false), in a transaction.
    unsafe {
        let tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: index,
            locktag_field3: colocation,
            locktag_field4: 8,
            locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
        };
        pg_sys::LockAcquire(&tag, mode as pg_sys::LOCKMODE, false, !wait)
            != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
    }
}

/// A shard's colocation id and index among its table's shards (by range): the key of its
/// metadata lock. Neither changes for a shard id (a split makes new shards): kept per backend.
fn metadata_lock_key(shard: i64) -> (u32, u32) {
    thread_local! {
        static KEYS: std::cell::RefCell<crate::cache::Lru<i64, (u32, u32)>> =
            std::cell::RefCell::new(crate::cache::Lru::new(1024));
    }
    if let Some(key) = KEYS.with(|k| k.borrow_mut().get(&shard)) {
        return key;
    }
    let key = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT d.colocationid, \
                        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_shard x \
                          WHERE x.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid \
                            AND x.shardminvalue::pg_catalog.int4 OPERATOR(pg_catalog.<) s.shardminvalue::pg_catalog.int4) \
                   FROM pg_catalog.pg_dist_shard s \
                   JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid \
                  WHERE s.shardid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[shard.into()],
            )?
            .first();
        Ok::<_, pgrx::spi::SpiError>((
            row.get::<i32>(1)?.unwrap_or_default(),
            row.get::<i64>(2)?.unwrap_or_default(),
        ))
    })
    .unwrap_or_else(|error| crate::report::failed(format_args!("the metadata lock of shard {shard}"), error));
    let key = (key.0 as u32, key.1 as u32);
    KEYS.with(|k| k.borrow_mut().insert(shard, key));
    key
}

/// The shard id in a shard's name (`lowcode.records_102008`).
fn shard_id(names: &[(String, String)]) -> Option<i64> {
    let (_, shard) = names.iter().find(|(t, _)| t == "lowcode.records")?;
    shard.rsplit('_').next()?.parse().ok()
}

/// `app`'s shards here, `names`, held against a shard move (its records shard's metadata lock,
/// shared) until the transaction ends: the names again if no move came since `seen`; if one
/// did, where the app's shards are now (None: on another node).
fn hold_shards(app: &str, names: ShardNames, seen: u64) -> Option<ShardNames> {
    let Some(shard) = shard_id(&names) else {
        return Some(names);
    };
    lock_shard_metadata(shard, pg_sys::ShareLock, true);
    // (A move that ended while this waited, or just before, has sent its changes.)
    // SAFETY: in a transaction, as LockRelationOid does after taking a lock.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    if MOVES_SEEN.with(Cell::get) == seen {
        return Some(names);
    }
    shards_of(app).unwrap_or_else(|error| crate::report::raise("", error))
}

/// Does `app`'s runtime live on this node? Always on one node; with the runtime distributed,
/// when its shards are here (None, every app: on one node only).
pub fn is_here(app: Option<&str>) -> bool {
    if !runtime_distributed() {
        return true;
    }
    app.is_some_and(|app| matches!(shards_of(app), Ok(Some(_))))
}

/// The name of `table`'s shard (`lowcode.outbox_epochs`: `lowcode.outbox_epochs_102046`) of
/// `app`, when the app's shards are on this node.
pub fn shard_here(app: &str, table: &str) -> Option<String> {
    shards_of(app)
        .ok()
        .flatten()?
        .into_iter()
        .find(|(t, _)| t == table)
        .map(|(_, shard)| shard)
}

/// The runtime tables' shards of `app`, when they are on this node: each table's name and its
/// shard's (`lowcode.records`, `lowcode.records_102008`); None when they are on another node.
fn shards_of(app: &str) -> Result<Option<Vec<(String, String)>>, PlacementError> {
    if let Some(shards) = crate::statements::shards_for(app) {
        return Ok(Some(shards));
    }
    let moves = MOVES_SEEN.with(Cell::get);
    if PLACED_AT.with(|p| p.replace(moves)) != moves {
        PLACED.with(|p| p.borrow_mut().clear());
    }
    if let Some(placed) = PLACED.with(|p| p.borrow_mut().get(&app.to_owned())) {
        return Ok(placed);
    }
    let placed = find_shards(app)?;
    PLACED.with(|p| p.borrow_mut().insert(app.to_owned(), placed.clone()));
    Ok(placed)
}

/// [`shards_of`], asked of the catalog.
fn find_shards(app: &str) -> Result<Option<Vec<(String, String)>>, PlacementError> {
    let failed = |error: pgrx::spi::SpiError| PlacementError::Spi {
        app: app.to_owned(),
        error: error.to_string(),
    };
    let rows = Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.format('lowcode.%I', c.relname), \
                        pg_catalog.format('lowcode.%I', c.relname OPERATOR(pg_catalog.||) '_' \
                                          OPERATOR(pg_catalog.||) s.shard), \
                        EXISTS (SELECT FROM pg_catalog.pg_dist_placement l, pg_catalog.pg_dist_local_group g \
                                 WHERE l.shardid OPERATOR(pg_catalog.=) s.shard \
                                   AND l.groupid OPERATOR(pg_catalog.=) g.groupid) \
                   FROM pg_catalog.pg_dist_partition p \
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid, \
                        LATERAL (SELECT pg_catalog.get_shard_id_for_distribution_column(p.logicalrelid, $1) AS shard) s \
                  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace \
                    AND p.partmethod OPERATOR(pg_catalog.=) 'h'",
                None,
                &[app.into()],
            )?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<bool>(3)?.unwrap_or(false),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .map_err(failed)?;
    if rows.is_empty() || rows.iter().any(|(_, _, here)| !here) {
        return Ok(None);
    }
    Ok(Some(rows.into_iter().map(|(t, s, _)| (t, s)).collect()))
}

/// What a call that takes only an id is about.
#[derive(Clone, Copy)]
pub enum Of {
    Record,
    Task,
}

/// A call that takes only an id: here as on one node; with the runtime distributed, on the
/// node of its record's or task's app (found first: a read of every shard), sent there as
/// `lowcode.call_at(app, call, args)` (`args`: the call's arguments as JSON; `back` turns
/// what it returned into the call's result).
pub fn by_id<T>(
    of: Of,
    id: Option<i64>,
    call: &str,
    here: impl FnOnce() -> T,
    args: impl FnOnce() -> serde_json::Value,
    back: impl FnOnce(Option<serde_json::Value>) -> T,
) -> T {
    let Some(id) = id else {
        return here();
    };
    if !runtime_distributed() || crate::statements::on_any_shards() {
        return here();
    }
    let app = app_of_row(of, id);
    here_or_there(&app, call, here, || back(send_call(&app, call, args())))
}

/// The app of record or task `id` on a distributed runtime ([`app_of`]); 42704 when there
/// is none.
pub fn app_of_row(of: Of, id: i64) -> String {
    let (table, what) = match of {
        Of::Record => ("records", "record"),
        Of::Task => ("tasks", "task"),
    };
    let app = app_of(table, id).unwrap_or_else(|error: pgrx::spi::SpiError| {
        crate::report::failed(format_args!("finding the app of {what} {id}"), error)
    });
    let Some(app) = app else {
        crate::report::raise("", PlacementError::NoSuch { what, id });
    };
    app
}

/// The app of record `id`, or of its history once it is deleted; None if neither exists.
pub fn app_of_record(id: i64) -> Option<String> {
    let found = app_of("records", id).unwrap_or_else(|error| {
        crate::report::failed(format_args!("finding the app of record {id}"), error)
    });
    found.or_else(|| {
        app_where(
            "history",
            "x.record_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
            &id.to_string(),
            &format!("the history of record {id}"),
        )
    })
}

/// The app of row `id` of runtime table `table`: from this node's own shards of it first
/// (plain local reads: a call inside a query Citus pushed onto a shard, `SELECT
/// lowcode.transition(r.id, ...) FROM lowcode.records r ...`, finds its row there, where a
/// distributed read is refused), else from every shard.
fn app_of(table: &str, id: i64) -> Result<Option<String>, pgrx::spi::SpiError> {
    let first = |sql: &str| {
        Spi::connect(|client| {
            let rows = client.select(sql, Some(1), &[id.into()])?;
            if rows.is_empty() {
                return Ok(None);
            }
            rows.first().get::<String>(1)
        })
    };
    let local = Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.string_agg(pg_catalog.format( \
                    'SELECT x.app FROM lowcode.%I x WHERE x.id OPERATOR(pg_catalog.=) $1', \
                    c.relname OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.shardid), ' UNION ALL ') \
           FROM pg_catalog.pg_dist_shard s \
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid \
           JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid \
           JOIN pg_catalog.pg_dist_local_group g ON g.groupid OPERATOR(pg_catalog.=) p.groupid \
          WHERE c.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace \
            AND c.relname OPERATOR(pg_catalog.=) $1",
        &[table.into()],
    )
    .ok()
    .flatten();
    if let Some(local) = local {
        if let Some(app) = first(&local)? {
            return Ok(Some(app));
        }
    }
    let what = match table {
        "tasks" => format!("task {id}"),
        _ => format!("record {id}"),
    };
    Ok(app_where(
        table,
        "x.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
        &id.to_string(),
        &what,
    ))
}

/// The app of the row of runtime table `table` that `condition` picks (on `x`, with `$1` its
/// argument as text), or None; `what` names the row for an error. A read of every shard, and
/// with a node down, of the nodes that answer ([`apps_where`]): if none of them has it, an
/// error (08006) names the nodes that did not answer and their apps.
pub fn app_where(table: &str, condition: &str, arg: &str, what: &str) -> Option<String> {
    let (apps, down) = apps_where(table, condition, arg, true);
    if let Some(app) = apps.into_iter().next() {
        return Some(app);
    }
    if !down.is_empty() {
        raise_unreachable(what, &down);
    }
    None
}

fn raise_unreachable(what: &str, down: &[String]) -> ! {
    crate::report::raise(
        "",
        PlacementError::Unreachable {
            what: what.to_owned(),
            nodes: down.join(", "),
        },
    )
}

/// The apps of the rows of runtime table `table` that `condition` picks (on `x`, with `$1` its
/// argument as text; only the first with `one`), in order: a read of every shard. With a node
/// down that read fails (Citus: 08006), so then each node that answers is read for the apps
/// it holds (Citus reads only their shards), and the nodes that do not answer come back too,
/// each as `host:port (its apps)`: the apps of the nodes that are up keep working.
fn apps_where(table: &str, condition: &str, arg: &str, one: bool) -> (Vec<String>, Vec<String>) {
    let limit = if one { " LIMIT 1" } else { "" };
    let select = |sql: String, apps: Option<Vec<String>>| {
        move || {
            Spi::connect(|client| {
                let rows = match &apps {
                    None => client.select(&sql, None, &[arg.into()])?,
                    Some(apps) => client.select(&sql, None, &[arg.into(), apps.clone().into()])?,
                };
                rows.map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
            })
            .unwrap_or_else(|error| {
                crate::report::failed(format_args!("finding the app of {table}"), error)
            })
        }
    };
    let everywhere =
        format!("SELECT DISTINCT x.app FROM lowcode.{table} x WHERE {condition} ORDER BY 1{limit}");
    let failed = match crate::background::in_subtransaction(std::panic::AssertUnwindSafe(select(
        everywhere, None,
    ))) {
        Ok(apps) => return (apps, Vec::new()),
        Err(caught) if caught.sqlstate.starts_with("08") => caught,
        Err(caught) => crate::report::failed(
            format_args!("finding the app of {table}"),
            format_args!("{} ({})", caught.message, caught.sqlstate),
        ),
    };
    let nodes = Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.format('%s:%s', n.nodename, n.nodeport), \
                        pg_catalog.array_agg(a.name ORDER BY a.name) \
                   FROM lowcode.apps a \
                   JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) \
                        pg_catalog.get_shard_id_for_distribution_column('lowcode.records', a.name) \
                   JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) p.groupid \
                                                AND n.noderole OPERATOR(pg_catalog.=) 'primary' \
                  GROUP BY n.nodename, n.nodeport ORDER BY 1",
                None,
                &[],
            )?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<Vec<String>>(2)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| crate::report::failed("finding each node's apps", error));
    let on_node = format!(
        "SELECT DISTINCT x.app FROM lowcode.{table} x \
          WHERE x.app OPERATOR(pg_catalog.=) ANY ($2) AND {condition} ORDER BY 1{limit}"
    );
    let mut found = Vec::new();
    let mut down = Vec::new();
    for (node, apps) in nodes {
        match crate::background::in_subtransaction(std::panic::AssertUnwindSafe(select(
            on_node.clone(),
            Some(apps.clone()),
        ))) {
            Ok(got) => found.extend(got),
            Err(caught) if caught.sqlstate.starts_with("08") => {
                down.push(format!("{node} ({})", apps.join(", ")))
            }
            Err(caught) => crate::report::failed(
                format_args!("finding the app of {table} on {node}"),
                format_args!("{} ({})", caught.message, caught.sqlstate),
            ),
        }
        if one && !found.is_empty() {
            break;
        }
    }
    if found.is_empty() && down.is_empty() {
        // (No node failed this time: the first read's failure was a passing one.)
        crate::report::failed(format_args!("finding the app of {table}"), failed.message);
    }
    found.sort();
    found.dedup();
    (found, down)
}

/// A claim from a pool: here as on one node; with the runtime distributed, on the node of each
/// app that has open tasks in the pool (found by a read of every shard), one app after
/// another, until one gives a task (`lowcode.call_at(app, 'claim_task', {pool, worker})`).
/// On an app's node the claim takes the oldest claimable task of the pool on that app's
/// shards (`SKIP LOCKED`, as on one node), so concurrent claimers of one app each get their
/// own.
pub fn by_pool(
    pool: Option<&str>,
    worker: Option<&str>,
    here: impl Fn() -> Option<i64>,
) -> Option<i64> {
    let Some(pool) = pool else {
        return here();
    };
    if !runtime_distributed() || crate::statements::on_any_shards() {
        return here();
    }
    // (With a node down, the apps of the nodes that answer: a claim from them still works.)
    let (apps, down) = apps_where(
        "tasks",
        "x.pool OPERATOR(pg_catalog.=) $1 AND x.status OPERATOR(pg_catalog.=) 'open'",
        pool,
        false,
    );
    if apps.is_empty() && !down.is_empty() {
        raise_unreachable(&format!("an open task of pool {pool}"), &down);
    }
    for app in apps {
        let claimed = here_or_there(&app, "claim_task", &here, || {
            send_call(
                &app,
                "claim_task",
                serde_json::json!({ "pool": pool, "worker": worker }),
            )
            .and_then(|v| v.as_i64())
        });
        if claimed.is_some() {
            return claimed;
        }
    }
    None
}

/// Run `here` on this node's tables: once, as on one node; with the runtime distributed, once
/// for each group of this node's shards of the runtime tables (a shard of each table, over
/// the same range of apps), on those shards (`statements::on_shards`), none on a node that
/// holds none. What the background worker and `run_due_timers` do for every app here.
pub fn on_local_shards<T>(here: impl Fn() -> T) -> Vec<T> {
    if !runtime_distributed() || crate::statements::on_any_shards() {
        return vec![here()];
    }
    let rows = Spi::connect(|client| {
        client
            .select(
                "SELECT s.shardminvalue, pg_catalog.format('lowcode.%I', c.relname), \
                        pg_catalog.format('lowcode.%I', c.relname OPERATOR(pg_catalog.||) '_' \
                                          OPERATOR(pg_catalog.||) s.shardid) \
                   FROM pg_catalog.pg_dist_shard s \
                   JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid \
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid \
                   JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid \
                   JOIN pg_catalog.pg_dist_local_group g ON g.groupid OPERATOR(pg_catalog.=) p.groupid \
                  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'lowcode'::pg_catalog.regnamespace \
                    AND d.partmethod OPERATOR(pg_catalog.=) 'h' \
                  ORDER BY s.shardminvalue::pg_catalog.int4, c.relname",
                None,
                &[],
            )?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| crate::report::failed("finding this node's shards", error));
    let seen = MOVES_SEEN.with(Cell::get);
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (range, table, shard) in rows {
        match groups.last_mut() {
            Some((r, names)) if *r == range => names.push((table, shard)),
            _ => groups.push((range, vec![(table, shard)])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, names)| held_here(names, seen))
        .map(|(_, names)| crate::statements::on_shards("", names, &here))
        .collect()
}

/// A group of this node's shards, held against a shard move without waiting for one (the
/// worker comes back next round): false while one moves them, or if they moved since `seen`.
fn held_here(names: &[(String, String)], seen: u64) -> bool {
    let Some(shard) = shard_id(names) else {
        return true;
    };
    if !lock_shard_metadata(shard, pg_sys::ShareLock, false) {
        return false;
    }
    // SAFETY: in a transaction, as LockRelationOid does after taking a lock.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    if MOVES_SEEN.with(Cell::get) == seen {
        return true;
    }
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_placement p, pg_catalog.pg_dist_local_group g \
                         WHERE p.shardid OPERATOR(pg_catalog.=) $1 AND p.groupid OPERATOR(pg_catalog.=) g.groupid)",
        &[shard.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The calls `call_at` runs.
pub const CALLS: [&str; 8] = [
    "transition",
    "update_record",
    "claim_task",
    "complete_task",
    "release_task",
    "reassign_task",
    "decide",
    "withdraw",
];

/// `lowcode.call_at` sent to the app's node (as [`send_submit`]: one statement Citus
/// delegates, run as the invoker).
pub fn send_call(app: &str, call: &str, args: serde_json::Value) -> Option<serde_json::Value> {
    let sql = format!(
        "SELECT r FROM lowcode.call_at({}, {}, {}::pg_catalog.jsonb) AS r",
        crate::privileges::literal(Some(app)),
        crate::privileges::literal(Some(call)),
        crate::privileges::literal(Some(&args.to_string())),
    );
    delegated::<pgrx::JsonB>(&sql, format_args!("{call} in app {app}")).map(|j| j.0)
}

/// Run `sql`, one call that Citus delegates to an app's node, as the invoker (in a
/// security-restricted operation, `identity::sandboxed`), so that Citus connects as the
/// invoker and the node authorizes and records the same role as a call made there; its one
/// value.
fn delegated<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    what: std::fmt::Arguments,
) -> Option<T> {
    crate::identity::sandboxed(crate::identity::invoker(), || Spi::get_one::<T>(sql))
        .unwrap_or_else(|error| crate::report::failed(what, error))
}

/// Ends [`here_or_there`]'s sending, also when the call raised.
struct Sent;

impl Drop for Sent {
    fn drop(&mut self) {
        SENDING.with(|s| s.set(false));
    }
}

/// Refuse a write about `app` that cannot be sent to its node (a typed view's INSERT, UPDATE
/// or DELETE: the engine would run it on distributed tables here, not on the app's shards).
/// `call` names it, for the message.
pub fn require_here(app: &str, call: impl FnOnce() -> String) {
    if runtime_distributed() && !crate::statements::on_any_shards() {
        crate::report::raise(
            "",
            PlacementError::Elsewhere {
                app: app.to_owned(),
                call: call(),
            },
        );
    }
}

/// A jsonb value written out as the text of a literal.
fn jsonb_literal(datum: Option<pg_sys::Datum>) -> String {
    let Some(datum) = datum else {
        return "NULL".into();
    };
    // SAFETY: jsonb_out of a jsonb datum.
    let text =
        unsafe { pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)]) };
    let text = text.map(|t| t.to_string_lossy().into_owned());
    format!(
        "{}::pg_catalog.jsonb",
        crate::privileges::literal(text.as_deref())
    )
}

/// `lowcode.submit` sent to the app's node: one statement Citus delegates there (the app a
/// constant, the call in FROM: a PL/pgSQL-style simple expression would not be sent), run
/// as the invoker ([`delegated`]).
pub fn send_submit(
    app: &str,
    form: Option<&str>,
    data: Option<pg_sys::Datum>,
    expected_version: Option<i32>,
) -> i64 {
    let sql = format!(
        "SELECT s FROM lowcode.submit({}, {}, {}{}) AS s",
        crate::privileges::literal(Some(app)),
        crate::privileges::literal(form),
        jsonb_literal(data),
        expected_version
            .map(|v| format!(", {v}"))
            .unwrap_or_default()
    );
    delegated::<i64>(&sql, format_args!("submit to app {app}")).unwrap_or_default()
}

/// Refuse `call` where the runtime is distributed and it does not work there yet (it reads or
/// locks records and tasks by id or pool across every shard): docs/scale-out.md.
pub fn not_distributed(call: &str) {
    if runtime_distributed() {
        crate::report::raise("", PlacementError::NotYet(call.to_owned()));
    }
}
