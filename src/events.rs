//! Events: the outbox's one writer. A rule's `emit` and `lowcode.emit` write a row of
//! `lowcode.events` in the transaction of the change; consumers (sql/events.sql) read them
//! in commit order. No NOTIFY here: a notifying transaction holds a cluster-wide lock from
//! its pre-commit to its end, so every emitting writer would queue behind every other;
//! consumers are woken by `lowcode.signal_events` (the worker calls it), or poll.

use pgrx::pg_sys::BuiltinOid::{INT8OID, JSONBOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::Value;

use crate::jsonb::OwnedJsonb;
use crate::records::Record;
use crate::statements::{self, jsonb_arg, Statement};

// A rule's event: what every message about a record carries, its data, and the payload the
// rule adds (which wins), built by PostgreSQL's own jsonb operators.
const EMIT_FOR_RECORD: Statement = Statement {
    sql: "INSERT INTO lowcode.events (topic, payload, record_id, app) \
          VALUES ($1, $2::pg_catalog.jsonb \
                      OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('data', $3) \
                      OPERATOR(pg_catalog.||) $4::pg_catalog.jsonb, \
                  $5, $6) \
          RETURNING id",
    args: &[TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT8OID, TEXTOID],
};
const EMIT: Statement = Statement {
    sql: "INSERT INTO lowcode.events (topic, payload, record_id, app) \
          VALUES ($1, $2, $3, (SELECT r.app FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $3)) \
          RETURNING id",
    args: &[TEXTOID, JSONBOID, INT8OID],
};

fn check_topic(topic: &str) {
    if topic.is_empty() {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "lowcode: emit: topic must not be empty"
        );
    }
}

/// A rule's `emit` about `record`: `base` with the record's data and the rule's payload.
pub fn emit_for_record(
    topic: &str,
    base: &Value,
    data: &OwnedJsonb,
    extra: Option<&Value>,
    record: &Record,
) -> Result<i64, pgrx::spi::SpiError> {
    check_topic(topic);
    let extra = extra.filter(|e| e.is_object()).map(Value::to_string);
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &EMIT_FOR_RECORD,
            &[
                topic.into(),
                base.to_string().as_str().into(),
                jsonb_arg(data.datum()),
                extra.as_deref().unwrap_or("{}").into(),
                record.id.into(),
                record.app.as_str().into(),
            ],
        )?
        .first()
        .get::<i64>(1)
        .map(Option::unwrap_or_default)
    })
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
    let payload = payload.unwrap_or(JsonB(serde_json::json!({})));
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &EMIT,
            &[topic.into(), payload.into(), record.into()],
        )?
        .first()
        .get::<i64>(1)
    })
    .unwrap_or_else(|error| pgrx::error!("lowcode: emit failed: {error}"))
    .unwrap_or_default()
}
