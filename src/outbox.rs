//! Events: `lowcode.emit` writes a row of `lowcode.events` in the transaction of the change
//! (a rule's `emit` waits with the write's history rows and is written with them, by
//! `journal::flush`); consumers (sql/outbox.sql) read them
//! in commit order. No NOTIFY here: a notifying transaction holds a cluster-wide lock from
//! its pre-commit to its end, so every emitting writer would queue behind every other;
//! consumers are woken by `lowcode.signal_events` (the worker calls it), or poll.

use pgrx::pg_sys::BuiltinOid::{INT8OID, JSONBOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use crate::statements::{self, Statement};

const EMIT: Statement = Statement {
    sql: "INSERT INTO lowcode.events (topic, payload, record_id, app) \
          VALUES ($1, $2, $3, (SELECT r.app FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $3)) \
          RETURNING id",
    args: &[TEXTOID, JSONBOID, INT8OID],
};

/// Refuse an empty topic.
pub fn check_topic(topic: &str) {
    if topic.is_empty() {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "emit: topic must not be empty".into(),
            None,
            None,
        );
    }
}

/// Internal: writes an outbox event (rules do, through the emit action), with the app of its
/// record.
#[pg_extern(volatile)]
fn emit(
    topic: Option<&str>,
    payload: default!(Option<JsonB>, "'{}'"),
    record: default!(Option<i64>, "NULL"),
) -> i64 {
    let topic = topic.unwrap_or_default();
    check_topic(topic);
    write(
        topic,
        payload
            .map(|p| p.0)
            .unwrap_or_else(|| serde_json::json!({})),
        record,
    )
}

/// Writes an outbox event now (not with a write's history rows), with the app of its record.
pub fn write(topic: &str, payload: serde_json::Value, record: Option<i64>) -> i64 {
    let payload = JsonB(payload);
    crate::worker_registry::note_events();
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &EMIT,
            &[topic.into(), payload.into(), record.into()],
        )?
        .first()
        .get::<i64>(1)
    })
    .unwrap_or_else(|error| crate::report::failed("emit", error))
    .unwrap_or_default()
}

/// An app's epoch as an event made sure of it: the shard moves this backend had seen then
/// (`placement::moves_seen`) and the event's id (the epoch begins at or before it).
type Marked = (u64, i64);

thread_local! {
    /// The apps whose epoch this transaction has made sure of ([`outbox_epoch_mark`]);
    /// forgotten when it ends or a subtransaction rolls back ([`forget_epochs`]).
    static EPOCHS_MARKED: std::cell::RefCell<std::collections::HashMap<String, Marked>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    /// Those of committed transactions of this backend ([`epochs_committed`]): while no shard
    /// move has come since, the app's last epoch is still this node's and begins at or before
    /// that id (only a move lets another node write the app's events), so a later event needs
    /// no statement to know it.
    static EPOCHS_KNOWN: std::cell::RefCell<crate::cache::Lru<String, Marked>> =
        std::cell::RefCell::new(crate::cache::Lru::new(1024));
}

/// The transaction ended, or a subtransaction rolled back (its epoch rows with it).
pub fn forget_epochs() {
    EPOCHS_MARKED.with(|m| m.borrow_mut().clear());
}

/// The transaction committed: what it made sure of holds for this backend's next ones.
pub fn epochs_committed() {
    let marked = EPOCHS_MARKED.with(|m| std::mem::take(&mut *m.borrow_mut()));
    EPOCHS_KNOWN.with(|k| {
        let mut known = k.borrow_mut();
        for (app, mark) in marked {
            known.insert(app, mark);
        }
    });
}

/// Internal: the trigger on the shards of `lowcode.events` of a distributed runtime
/// (`lowcode.distribute`), for an event written on its app's node (Citus makes shards without
/// the sequence default; a shard move copies the rows with their ids, and does not fire it).
/// Draws the event's id from this node's sequence (its range: the node's group << 48) and,
/// for the first event of an app in a transaction, makes sure the app's last epoch
/// (`lowcode.outbox_epochs`) is this node's and begins at or before it: after a shard move, the
/// first event written here begins a new epoch, read after those of the node before.
#[pg_trigger]
fn outbox_epoch_mark<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    let Some(new) = trigger.new() else {
        crate::report::broken("outbox_epoch_mark fired without a new row");
    };
    let mut new = new.into_owned();
    let id = crate::journal::next_id(c"events_id_seq");
    new.set_by_name("id", id)?;
    let app: Option<String> = new.get_by_name("app").unwrap_or(None);
    if let Some(app) = app {
        let moves = crate::placement::moves_seen();
        let sure = |mark: Option<Marked>| mark.is_some_and(|(m, first)| m == moves && first <= id);
        if !sure(EPOCHS_MARKED.with(|m| m.borrow().get(&app).copied()))
            && !sure(EPOCHS_KNOWN.with(|k| k.borrow_mut().get(&app)))
        {
            mark_epoch(&app, id);
        }
        EPOCHS_MARKED.with(|m| {
            m.borrow_mut().entry(app).or_insert((moves, id));
        });
    }
    Ok(Some(new))
}

/// [`outbox_epoch_mark`]'s epoch: unless the app's last epoch is of this node (`id >> 48`)
/// and begins at or before `id`, a new one that begins at `id` (or, one of this node's being
/// made by a transaction that drew a later id, that one begins at `id`). On the app's shard
/// of `lowcode.outbox_epochs`, beside the event's.
fn mark_epoch(app: &str, id: i64) {
    let Some(shard) = crate::placement::shard_here(app, "lowcode.outbox_epochs") else {
        crate::report::broken(format_args!(
            "an event of app {app} written where its shards are not"
        ));
    };
    let sql = format!(
        "INSERT INTO {shard} AS x (app, epoch, origin, first_id) \
         SELECT $1, CASE WHEN l.origin OPERATOR(pg_catalog.=) $2 THEN l.epoch \
                         ELSE COALESCE(l.epoch, 0) OPERATOR(pg_catalog.+) 1 END, $2, $3 \
           FROM (SELECT) o LEFT JOIN LATERAL ( \
                SELECT y.epoch, y.origin, y.first_id FROM {shard} y \
                 WHERE y.app OPERATOR(pg_catalog.=) $1 ORDER BY y.epoch DESC LIMIT 1) l ON true \
          WHERE (l.epoch IS NULL AND $2 OPERATOR(pg_catalog.<>) 0) \
             OR l.origin OPERATOR(pg_catalog.<>) $2 OR l.first_id OPERATOR(pg_catalog.>) $3 \
         ON CONFLICT (app, epoch) DO UPDATE SET first_id = LEAST(x.first_id, excluded.first_id) \
          WHERE x.origin OPERATOR(pg_catalog.=) excluded.origin"
    );
    let origin = i32::try_from(id >> 48).unwrap_or(i32::MAX);
    crate::settings::with_setting(c"citus.enable_manual_changes_to_shards", c"on", || {
        Spi::run_with_args(&sql, &[app.into(), origin.into(), id.into()])
    })
    .unwrap_or_else(|error| {
        crate::report::failed(format_args!("the outbox epoch of app {app}"), error)
    });
}

/// The outbox calls that run on the node of their consumer's app (`lowcode.call_at`).
pub const CALLS: [&str; 8] = [
    "purge_events",
    "create_consumer",
    "drop_consumer",
    "poll_events",
    "ack_events",
    "nack_event",
    "consumer_lag",
    "replay_dead_letters",
];

/// Internal: where an outbox call runs. On one node: NULL, here. With the runtime distributed
/// by app, a consumer lives on the node of its app, beside the app's events (its snapshots
/// and the events' transaction ids are that node's: Citus 13 has no distributed snapshot, so
/// a consumer's batches are its app's node's commit order). Then `{"app": <app>}`: here, on
/// the app's shards; or `{"r": <result>}`: the call (`call`, with `args` and the consumer)
/// ran on the app's node as `lowcode.call_at`, and this is what it returned. The app is the
/// consumer's (`app` for `create_consumer`, else looked up by name on every shard).
#[pg_extern(volatile)]
fn outbox_at(
    call: Option<&str>,
    consumer: Option<&str>,
    app: Option<&str>,
    args: Option<JsonB>,
) -> Option<JsonB> {
    use crate::placement;
    let Some(call) = call else {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "outbox_at: argument \"call\" must not be NULL".into(),
            None,
            None,
        )
    };
    if !placement::runtime_distributed() {
        return None;
    }
    if let Some(here) = statements::shards_app() {
        return Some(JsonB(serde_json::json!({ "app": here })));
    }
    let args = args.map(|a| a.0).unwrap_or_else(|| serde_json::json!({}));
    if call == "purge_events" {
        return Some(JsonB(serde_json::json!({ "r": purge_every_app(&args) })));
    }
    let Some(name) = consumer else {
        crate::report::raise(
            "",
            placement::PlacementError::NotYet(format!("{call} of every consumer")),
        );
    };
    let found = consumer_app(name);
    let app = match (app, found) {
        (Some(_), Some(_)) => crate::report::refuse(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("consumer \"{name}\" already exists"),
            None,
            Some("drop it first with lowcode.drop_consumer".into()),
        ),
        (Some(app), None) => app.to_owned(),
        (None, Some(app)) => app,
        (None, None) if call == "create_consumer" => crate::report::refuse(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("consumer \"{name}\": a consumer of every app does not run on a distributed runtime"),
            Some("each app's events are on its app's node, in that node's commit order".into()),
            Some("make one consumer per app: lowcode.create_consumer(name, '{\"app\": \"<app>\"}')".into()),
        ),
        (None, None) if call == "drop_consumer" => {
            return Some(JsonB(serde_json::json!({ "r": false })))
        }
        (None, None) => crate::report::refuse(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("unknown consumer \"{name}\""),
            None,
            Some(format!(
                "create it with lowcode.create_consumer('{name}', '{{\"app\": \"<app>\", \"topics\": [\"<topic>\"]}}')"
            )),
        ),
    };
    let mut args = args;
    if let Some(map) = args.as_object_mut() {
        map.insert("consumer".into(), name.into());
    }
    placement::here_or_there(
        &app,
        call,
        || Some(JsonB(serde_json::json!({ "app": app }))),
        || {
            let r = placement::send_call(&app, call, args.clone());
            Some(JsonB(serde_json::json!({ "r": r })))
        },
    )
}

/// `purge_events` on a distributed runtime: each app's events, on the app's node, where its
/// consumers are (`lowcode.call_at` for each app whose shards are elsewhere); how many it
/// deleted in all.
fn purge_every_app(args: &serde_json::Value) -> i64 {
    let apps = Spi::connect(|client| {
        client
            .select("SELECT a.name FROM lowcode.apps a ORDER BY 1", None, &[])?
            .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| crate::report::failed("purge_events: the apps", error));
    let mut gone = 0;
    for app in apps {
        let mut args = args.clone();
        if let Some(map) = args.as_object_mut() {
            map.insert("app".into(), app.as_str().into());
        }
        let purged = crate::placement::here_or_there(
            &app,
            "purge_events",
            || dispatch("purge_events", &args),
            || crate::placement::send_call(&app, "purge_events", args.clone()),
        );
        gone += purged.and_then(|v| v.as_i64()).unwrap_or(0);
    }
    gone
}

/// The app of consumer `name` (a read of every shard; with a node down, of the nodes that
/// answer, and an error naming the others if none has it), None if there is none.
fn consumer_app(name: &str) -> Option<String> {
    crate::placement::app_where(
        "consumers",
        "x.name OPERATOR(pg_catalog.=) $1",
        name,
        &format!("consumer \"{name}\""),
    )
}

/// One of `call_at`'s outbox calls, on the app's node: the SQL function itself (which finds
/// itself on the app's shards through [`outbox_at`]), its result as JSON.
pub fn dispatch(call: &str, args: &serde_json::Value) -> Option<serde_json::Value> {
    let sql = match call {
        "purge_events" => {
            "SELECT pg_catalog.to_jsonb(lowcode.purge_events(($1 ->> 'older_than')::pg_catalog.interval))"
        }
        "create_consumer" => {
            "SELECT 'null'::pg_catalog.jsonb FROM lowcode.create_consumer($1 ->> 'consumer', $1 -> 'options')"
        }
        "drop_consumer" => "SELECT pg_catalog.to_jsonb(lowcode.drop_consumer($1 ->> 'consumer'))",
        "poll_events" => {
            "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(p)), '[]') \
               FROM lowcode.poll_events($1 ->> 'consumer', ($1 ->> 'max')::pg_catalog.int4, \
                                        ($1 ->> 'visibility')::pg_catalog.interval) p"
        }
        "ack_events" => {
            "SELECT pg_catalog.to_jsonb(lowcode.ack_events($1 ->> 'consumer', \
                    ARRAY(SELECT pg_catalog.jsonb_array_elements_text($1 -> 'ids')::pg_catalog.int8)))"
        }
        "nack_event" => {
            "SELECT pg_catalog.to_jsonb(lowcode.nack_event($1 ->> 'consumer', ($1 ->> 'id')::pg_catalog.int8, \
                    $1 ->> 'error', ($1 ->> 'retry_after')::pg_catalog.interval))"
        }
        "consumer_lag" => {
            "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(l)), '[]') \
               FROM lowcode.consumer_lag($1 ->> 'consumer') l"
        }
        "replay_dead_letters" => {
            "SELECT pg_catalog.to_jsonb(lowcode.replay_dead_letters($1 ->> 'topic', $1 ->> 'consumer'))"
        }
        _ => return None,
    };
    statements::call_with_json(call, sql, args)
}
