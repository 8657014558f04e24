//! Apply `timer`: its time from `after` (`now() + interval`) or from a date-time field of the
//! data; the worker pool learns it, and `SET_TIMER` replaces a pending timer of the same name.
//! Then the `rule_action` note.

use pgrx::pg_sys::BuiltinOid::{INT8OID, TEXTOID, TIMESTAMPTZOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::Value;

use super::{note, subject, Result, RulesError};
use crate::conformance;
use crate::journal::Record;
use crate::jsonb::jsonb_text;
use crate::statements::{self, Statement};
use crate::workflow::TimerDef;
use lowcode_core::actions::rule_action_note;
use lowcode_core::actions::timer::{self as plan, FireAt};

// The timer, replacing a pending one of the same name; $5 its record's app.
macro_rules! set_timer {
    ($columns:literal, $values:literal) => {
        concat!(
            "WITH cancelled AS ( \
               UPDATE lowcode.timers t SET status = 'cancelled' \
                WHERE t.record_id OPERATOR(pg_catalog.=) $1 AND t.name OPERATOR(pg_catalog.=) $2 \
                  AND t.status OPERATOR(pg_catalog.=) 'pending' AND t.task_id IS NULL) \
             INSERT INTO lowcode.timers (record_id, name, event, in_state, fire_at",
            $columns,
            ") VALUES ($1, $2, 'timer:' OPERATOR(pg_catalog.||) $2, $3, $4",
            $values,
            ")"
        )
    };
}
const SET_TIMER: Statement = Statement {
    sql: set_timer!(", app", ", $5"),
    args: &[INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID],
};
// 0.2.0's tables (a database not updated yet runs this library): timers have no app.
const SET_TIMER_0_2: Statement = Statement {
    sql: set_timer!("", ""),
    args: &[INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID],
};
const TIMER_AFTER: Statement = Statement {
    sql: "SELECT pg_catalog.now() OPERATOR(pg_catalog.+) $1::pg_catalog.interval",
    args: &[TEXTOID],
};

pub fn apply(r: &Record, rule: &str, def: &TimerDef, written: &Value) -> Result<()> {
    set_timer(r, rule, def)?;
    note(r, "rule_action", &rule_action_note(rule, written))
}

fn set_timer(r: &Record, rule: &str, def: &TimerDef) -> Result<()> {
    let name = def.name.as_str();
    let fire_at: Option<pg_sys::Datum> = match plan::fire_at(def) {
        FireAt::After(after) => Spi::connect_mut(|client| {
            statements::run(client, &TIMER_AFTER, &[after.into()])?
                .first()
                .get_datum_by_ordinal(1)
        })?,
        FireAt::Field(field) => {
            let value = r.data.to_json().get(field).cloned();
            let parsed = plan::field_text(value.as_ref()).and_then(parse_timestamptz);
            if parsed.is_none() {
                return Err(RulesError::Refused {
                    code: PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    message: plan::no_datetime_message(&subject(r), rule, name, field),
                    detail: Some(match &value {
                        Some(_)
                            if conformance::hidden_fields(&r.app, &r.form)
                                .iter()
                                .any(|h| h == field) =>
                        {
                            format!("\"{field}\" is hidden from you")
                        }
                        Some(v) => format!("\"{field}\" is {}", jsonb_text(v)),
                        None => format!("the record has no \"{field}\""),
                    }),
                    hint: None,
                });
            }
            parsed
        }
    };
    if let Some(at) = fire_at {
        crate::worker_registry::note_due(at.value() as i64);
    }
    // SAFETY: a timestamptz datum (by value).
    let at = unsafe {
        pgrx::datum::DatumWithOid::new(
            fire_at.unwrap_or(pg_sys::Datum::from(0)),
            pg_sys::TIMESTAMPTZOID,
        )
    };
    Spi::connect_mut(|client| {
        let mut args = vec![r.id.into(), name.into(), r.state.as_str().into(), at];
        let statement = crate::journal::with_app(&SET_TIMER, &SET_TIMER_0_2, &mut args, &r.app);
        statements::run(client, statement, &args).map(|_| ())
    })?;
    Ok(())
}

/// A date-time as `::timestamptz` reads it; None when it does not read as one.
fn parse_timestamptz(text: &str) -> Option<pg_sys::Datum> {
    let text = std::ffi::CString::new(text).ok()?;
    PgTryBuilder::new(|| {
        // SAFETY: timestamptz_in parses a C string; an invalid one raises, caught below.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::timestamptz_in,
                &[
                    Some(pg_sys::Datum::from(text.as_ptr())),
                    Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
                    Some(pg_sys::Datum::from(-1i32)),
                ],
            )
        }
    })
    .catch_when(PgSqlErrorCode::ERRCODE_INVALID_DATETIME_FORMAT, |_| None)
    .catch_when(PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW, |_| None)
    .catch_when(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, |_| None)
    .execute()
}
