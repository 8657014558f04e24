//! Apply `emit`: the topic is checked (not empty; the app's own), the event is buffered with
//! the write's history (`journal::event`); then the `rule_action` note.

use pgrx::pg_sys::BuiltinOid::TEXTOID;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::Value;

use super::{note, subject, Result, RulesError};
use crate::journal::{self, Record};
use crate::statements::{self, Statement};
use crate::workflow::EmitDef;
use lowcode_core::actions::{emit as plan, rule_action_note};

const APP_EXISTS: Statement = Statement {
    sql: "SELECT EXISTS (SELECT FROM lowcode.apps a WHERE a.name OPERATOR(pg_catalog.=) $1)",
    args: &[TEXTOID],
};

pub fn apply(r: &Record, rule: &str, event: &str, def: &EmitDef, written: &Value) -> Result<()> {
    let (topic, extra) = plan::plan(def);
    crate::outbox::check_topic(topic);
    own_topic(r, rule, topic)?;
    journal::event(r, topic, &subject(r).base_payload(event, rule), &extra);
    note(r, "rule_action", &rule_action_note(rule, written))
}

/// An app emits its own topics only: a topic whose first segment names another app
/// (`payroll.payment_approved` from app `shop`) is refused, so that a consumer or webhook of
/// that app never receives an event another app's rules made up.
fn own_topic(r: &Record, rule: &str, topic: &str) -> Result<()> {
    let Some(first) = plan::other_app(&r.app, topic) else {
        return Ok(());
    };
    let other: Option<bool> = Spi::connect_mut(|client| {
        statements::run(client, &APP_EXISTS, &[first.into()])?
            .first()
            .get::<bool>(1)
    })?;
    if other == Some(true) {
        let s = subject(r);
        return Err(RulesError::Refused {
            code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            message: plan::foreign_message(&s, rule, topic, first),
            detail: None,
            hint: Some(plan::foreign_hint(&s, topic)),
        });
    }
    Ok(())
}
