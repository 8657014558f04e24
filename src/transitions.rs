//! People's transitions: `lowcode.transition(record, name, payload)` fires a named transition
//! of the record's workflow. The checks (the record is the caller's to read, the transition
//! exists and starts from the record's state, the caller holds one of its roles or may change
//! the record, its condition holds on the data merged with the payload, that data is valid)
//! run here, in that order, each with its own error; then one UPDATE of the record, which the
//! records triggers validate, record (its history row names the transition as the cause) and
//! hand to the workflow like any other write.
//!
//! A transition without a payload (the usual button) reads nothing but the locked record: the
//! transition comes from the form's compiled workflow (`definitions_cache`, the definition
//! being its one home); a payload is merged in SQL with `lowcode.keep_hidden`, as an update's
//! data is.

use pgrx::pg_sys::BuiltinOid::{INT8OID, JSONBOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::engine_state::{self, Slot};
use crate::identity;
use crate::jsonb::{self, JsonbBytes, OwnedJsonb};
use crate::privileges;
use crate::statements::{self, jsonb_arg, Statement};

// The record locked (NO KEY UPDATE, as its UPDATE locks it: other writers wait, the rules of
// an event that only keep it from being deleted do not). Its form's workflow and the
// transition come from the definitions cache: a join with forms and transitions here cost an
// eighth of a transition.
const RECORD_FOR_UPDATE: Statement = Statement {
    sql: "SELECT r.app, r.form, r.owner, r.state, r.data \
            FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF r",
    args: &[INT8OID],
};
// The data a payload makes: the stored data with the payload merged in, the fields hidden from
// the caller kept (a payload naming one is refused).
const MERGED: Statement = Statement {
    sql: "SELECT r.data OPERATOR(pg_catalog.||) lowcode.keep_hidden(r, $2, $3) \
            FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, JSONBOID, TEXTOID],
};
const CONDITION_ISSUES: Statement = Statement {
    sql: "SELECT lowcode.condition_issues($1, $2)::pg_catalog.text",
    args: &[JSONBOID, JSONBOID],
};
const IS_VALID: Statement = Statement {
    sql: "SELECT lowcode.is_valid($1, $2, $3)",
    args: &[TEXTOID, TEXTOID, JSONBOID],
};
const ISSUES: Statement = Statement {
    sql: "SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(v))::pg_catalog.text \
            FROM lowcode.validate($1, $2, $3) v",
    args: &[TEXTOID, TEXTOID, JSONBOID],
};
// The move, and its history row ($4-$8: from-state, actor, data before and after when the
// payload changed it, detail), in one statement: the records trigger validates and keeps the
// bookkeeping (revision, updated_at/_by) as for any change, and runs the rules, but leaves
// the row to this statement (`journal::with_own_row`).
macro_rules! move_and_row {
    ($cancel:literal) => {
        concat!(
            "WITH u AS (UPDATE lowcode.records x SET data = $2, state = $3 \
                         WHERE x.id OPERATOR(pg_catalog.=) $1 \
                        RETURNING x.id, x.app, x.form, x.revision, x.state), ",
            $cancel,
            "h AS (INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
                                                from_state, to_state, before, after, detail) \
                   SELECT u.id, u.app, u.form, 'transition', u.revision, $5, $4, u.state, $6, $7, \
                          $8::pg_catalog.jsonb FROM u) \
             SELECT u.state FROM u"
        )
    };
}
const MOVE: Statement = Statement {
    sql: move_and_row!(""),
    args: &[
        INT8OID, JSONBOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID,
    ],
};
// The same out of a state: that state's pending timers end (they only run while the record is
// in it), as `journal::write_leaving` does for other changes.
const MOVE_LEAVING: Statement = Statement {
    sql: move_and_row!(
        "c AS (UPDATE lowcode.timers t SET status = 'cancelled' \
                WHERE t.record_id OPERATOR(pg_catalog.=) $1 \
                  AND t.status OPERATOR(pg_catalog.=) 'pending' \
                  AND t.in_state OPERATOR(pg_catalog.=) $4), "
    ),
    args: &[
        INT8OID, JSONBOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID,
    ],
};
const STATE: Statement = Statement {
    sql: "SELECT x.state FROM lowcode.records x WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};

fn refuse(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    crate::report::refuse(code, message, detail, hint)
}

fn failed(error: pgrx::spi::SpiError) -> ! {
    crate::report::failed("transition", error)
}

/// One value of a statement with one row and one column (None: no row, or NULL).
fn one<T: FromDatum + IntoDatum>(
    statement: &Statement,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    Spi::connect_mut(|client| {
        let table = statements::run(client, statement, args)?;
        if table.is_empty() {
            return Ok(None);
        }
        table.first().get::<T>(1)
    })
    .unwrap_or_else(|error| failed(error))
}

/// `quote_ident`, as `format('%I')` writes a name.
fn quote_ident(name: &str) -> String {
    let Ok(c) = std::ffi::CString::new(name) else {
        return name.to_owned();
    };
    // SAFETY: quote_identifier reads a C string and returns it or a palloc'd quoted copy.
    unsafe {
        std::ffi::CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr()))
            .to_string_lossy()
            .into_owned()
    }
}

/// The record locked, as transition needs it.
struct Locked {
    app: String,
    form: String,
    owner: Option<String>,
    state: String,
    data: OwnedJsonb,
}

fn lock(record: i64) -> Option<Locked> {
    Spi::connect_mut(|client| {
        let table = statements::run(client, &RECORD_FOR_UPDATE, &[record.into()])?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        let row = table.first();
        let Some(data) = row
            .get_datum_by_ordinal(5)?
            // SAFETY: column 5 is the record's jsonb data (NOT NULL).
            .map(|d| unsafe { OwnedJsonb::from_datum(d) })
        else {
            return Ok(None);
        };
        Ok(Some(Locked {
            app: row.get::<String>(1)?.unwrap_or_default(),
            form: row.get::<String>(2)?.unwrap_or_default(),
            owner: row.get::<String>(3)?,
            state: row.get::<String>(4)?.unwrap_or_default(),
            data,
        }))
    })
    .unwrap_or_else(|error| failed(error))
}

/// Whether the invoker is a member of one of `roles` (that exist).
fn member_of_any(roles: &[String]) -> bool {
    let me = identity::invoker();
    roles.iter().any(|role| {
        std::ffi::CString::new(role.as_str()).is_ok_and(|c| {
            // SAFETY: catalog lookups by name (missing_ok) and of two role oids.
            unsafe {
                let oid = pg_sys::get_role_oid(c.as_ptr(), true);
                oid != pg_sys::InvalidOid && pg_sys::is_member_of_role(me, oid)
            }
        })
    })
}

/// Fire a named transition on a record: checks the state it starts from, the roles allowed to
/// fire it and its condition (on the data merged with payload), then moves the record. Returns
/// the record's state after the rules it triggered.
#[pg_extern(volatile)]
pub(crate) fn transition(
    record: Option<i64>,
    name: Option<&str>,
    payload: default!(Option<JsonbBytes>, "'{}'"),
) -> Option<String> {
    let json = crate::placement::runtime_distributed()
        .then(|| payload.as_ref().and_then(|p| p.to_json().ok()));
    crate::placement::by_id(
        crate::placement::Of::Record,
        record,
        "transition",
        || transition_here(record, name, payload),
        || serde_json::json!({ "record": record, "name": name, "payload": json.flatten() }),
        |r| r.and_then(|v| v.as_str().map(str::to_owned)),
    )
}

/// `transition` where the record is (see above).
fn transition_here(
    record: Option<i64>,
    name: Option<&str>,
    payload: Option<JsonbBytes>,
) -> Option<String> {
    let (Some(id), Some(name)) = (record, name) else {
        refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "transition: arguments \"record\" and \"name\" must not be NULL".into(),
            None,
            None,
        )
    };
    let missing = || -> ! {
        refuse(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("record {id} does not exist"),
            None,
            None,
        )
    };
    let Some(r) = lock(id) else { missing() };
    let me = identity::invoker_name();
    let own = r.owner.as_deref() == Some(me.as_str());
    let may = |all: &str, mine: &str| {
        privileges::holds(Some(&r.app), Some(all))
            || (own && privileges::holds(Some(&r.app), Some(mine)))
    };
    if !may("read_all", "read_own") {
        missing();
    }
    let workflow = crate::definitions_cache::current_workflow(&r.app, &r.form)
        .unwrap_or_else(|error| crate::report::raise("", error));
    let Some(t) = workflow
        .as_ref()
        .and_then(|wf| wf.runtime.transitions.get(name))
    else {
        let names: Vec<&str> = workflow
            .as_ref()
            .map(|wf| wf.runtime.transitions.keys().map(String::as_str).collect())
            .unwrap_or_default();
        refuse(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("{}.{}: no transition \"{name}\"", r.app, r.form),
            None,
            Some(match workflow {
                None => "the form has no workflow; attach one with lowcode.define_workflow".into(),
                Some(_) if names.is_empty() => "the workflow has no transitions".into(),
                Some(_) => format!("transitions: {}", names.join(", ")),
            }),
        )
    };
    if !t.from.contains(&r.state) {
        let from: Vec<String> = t.from.iter().map(|s| format!("\"{s}\"")).collect();
        refuse(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "{}.{}: record {id} is in state \"{}\", and transition \"{name}\" starts from {}",
                r.app,
                r.form,
                r.state,
                from.join(" or ")
            ),
            None,
            None,
        );
    }
    // A transition that names roles is for their members; one that names none, for those who
    // may change the record.
    if !t.roles.is_empty() && !member_of_any(&t.roles) {
        refuse(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "{}.{}: transition \"{name}\" of record {id} needs role {}",
                r.app,
                r.form,
                t.roles.join(" or ")
            ),
            None,
            Some(format!(
                "GRANT {} TO {}",
                quote_ident(&t.roles[0]),
                quote_ident(&me)
            )),
        );
    }
    let doing = format!("fire transition \"{name}\" of record {id}");
    if t.roles.is_empty() && !may("update_all", "update_own") {
        privileges::refuse_with(
            Some(&r.app),
            Some(if own { "update_own" } else { "update_all" }),
            Some(&doing),
        );
    }
    // The data after the transition: the stored data when there is no payload.
    let unchanged = jsonb::is_object(r.data.container())
        && payload
            .as_ref()
            .is_none_or(|p| jsonb::is_empty_object(p.container()));
    let new_data = if unchanged {
        r.data.clone()
    } else {
        let payload = match &payload {
            Some(p) => jsonb_arg(p.datum()),
            None => pgrx::JsonB(serde_json::json!({})).into(),
        };
        Spi::connect_mut(|client| {
            let table = statements::run(
                client,
                &MERGED,
                &[id.into(), payload, doing.as_str().into()],
            )?;
            Ok::<_, pgrx::spi::SpiError>(
                table
                    .first()
                    .get_datum_by_ordinal(1)?
                    // SAFETY: a jsonb column.
                    .map(|d| unsafe { OwnedJsonb::from_datum(d) }),
            )
        })
        .unwrap_or_else(|error| failed(error))
        .unwrap_or_else(|| missing())
    };
    let validator = workflow
        .as_ref()
        .and_then(|wf| wf.transition_conditions.get(name));
    if let (Some(condition), Some(validator)) = (&t.when, validator) {
        let holds = validator
            .is_valid(
                new_data.container(),
                crate::definitions_cache::max_document_depth(),
            )
            .unwrap_or_else(|error| crate::report::raise("condition", error));
        if !holds {
            let detail = one::<String>(
                &CONDITION_ISSUES,
                &[
                    pgrx::JsonB(condition.clone()).into(),
                    jsonb_arg(new_data.datum()),
                ],
            );
            refuse(
                PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                format!(
                    "{}.{}: transition \"{name}\" of record {id} is not allowed: its condition is not met",
                    r.app, r.form
                ),
                detail,
                None,
            );
        }
    }
    // Checked here too (the records trigger checks again) so the error names the transition.
    if !unchanged && !new_data.same_as(&r.data) {
        let args = || {
            [
                r.app.as_str().into(),
                r.form.as_str().into(),
                jsonb_arg(new_data.datum()),
            ]
        };
        if one::<bool>(&IS_VALID, &args()) != Some(true) {
            refuse(
                PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                format!(
                    "{}.{}: transition \"{name}\" of record {id}: the payload would make the data invalid",
                    r.app, r.form
                ),
                one::<String>(&ISSUES, &args()),
                None,
            );
        }
    }
    let cause = serde_json::json!({ "transition": name }).to_string();
    let actor =
        identity::actor(Some(&r.app)).unwrap_or_else(|error| crate::report::raise("", error));
    let data_changed = !new_data.same_as(&r.data);
    let data = |d: &OwnedJsonb| {
        if data_changed {
            jsonb_arg(d.datum())
        } else {
            statements::null_arg(pg_sys::JSONBOID)
        }
    };
    let statement = if t.to != r.state {
        &MOVE_LEAVING
    } else {
        &MOVE
    };
    let previous = engine_state::set(Slot::Cause, Some(cause.clone()));
    let before = crate::records::writes();
    let written = crate::journal::with_own_row(id, || {
        one::<String>(
            statement,
            &[
                id.into(),
                jsonb_arg(new_data.datum()),
                t.to.as_str().into(),
                r.state.as_str().into(),
                actor.as_str().into(),
                data(&r.data),
                data(&new_data),
                cause.as_str().into(),
            ],
        )
    });
    engine_state::set(Slot::Cause, previous);
    // The state after the rules it triggered: as written, unless a rule wrote a record since.
    if crate::records::writes().wrapping_sub(before) == 1 {
        written
    } else {
        one::<String>(&STATE, &[id.into()])
    }
}
