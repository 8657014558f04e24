//! Apply `notify`: `pg_notify` with the payload printed as jsonb; then the `rule_action` note.

use pgrx::pg_sys::BuiltinOid::TEXTOID;
use pgrx::prelude::*;
use serde_json::Value;

use super::{note, subject, Result};
use crate::journal::Record;
use crate::jsonb::jsonb_text;
use crate::statements::{self, Statement};
use crate::workflow::NotifyDef;
use lowcode_core::actions::{notify as plan, rule_action_note};

const NOTIFY: Statement = Statement {
    sql: "SELECT pg_catalog.pg_notify($1, $2)",
    args: &[TEXTOID, TEXTOID],
};

pub fn apply(r: &Record, rule: &str, event: &str, def: &NotifyDef, written: &Value) -> Result<()> {
    let (channel, payload) = plan::plan(def, subject(r).base_payload(event, rule));
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &NOTIFY,
            &[channel.into(), jsonb_text(&payload).as_str().into()],
        )
        .map(|_| ())
    })?;
    note(r, "rule_action", &rule_action_note(rule, written))
}
