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
