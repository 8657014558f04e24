//! Records: the one write path. Every insert, update and delete of `lowcode.records` (from
//! `submit`, `update_record`, a typed view, COPY, a rule or a plain UPDATE) passes through
//! two triggers written here: `records_before` validates the data and keeps the
//! bookkeeping columns honest (and starts a record in its workflow's initial state),
//! `records_after` writes the one history row of the change and hands the write's events to
//! the workflow ([`crate::rules`]) with the row it already has. The history rows are written by
//! [`crate::journal`], the documents checked by [`crate::conformance`].

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgTupleDesc};

use crate::conformance::{check, check_current, raise_check};
use crate::journal::{self, Record};
use crate::jsonb::OwnedJsonb;
use crate::report::raise;
use crate::settings::setting;
use crate::statements::{self, Statement};
use crate::{definitions_cache, engine_state, identity, rules, workflow};

// ------------------------------------------------------------------ the record row

/// The columns of `lowcode.records` by name (attribute numbers, looked up per trigger call:
/// a table upgraded from an older version may number them differently).
struct Columns {
    desc: pg_sys::TupleDesc,
}

impl Columns {
    fn attnum(&self, name: &CStr) -> i32 {
        // SAFETY: `desc` is the trigger relation's descriptor.
        let n = unsafe { pg_sys::SPI_fnumber(self.desc, name.as_ptr()) };
        if n <= 0 {
            crate::report::broken(format_args!("lowcode.records has no column {:?}", name));
        }
        n
    }

    fn datum(&self, tuple: *mut pg_sys::HeapTupleData, name: &CStr) -> Option<pg_sys::Datum> {
        let mut null = false;
        // SAFETY: `tuple` is a row of the relation `desc` describes.
        let datum =
            unsafe { pg_sys::SPI_getbinval(tuple, self.desc, self.attnum(name), &mut null) };
        (!null).then_some(datum)
    }

    fn text(&self, tuple: *mut pg_sys::HeapTupleData, name: &CStr) -> Option<String> {
        // SAFETY: a text column's datum.
        self.datum(tuple, name)
            .and_then(|d| unsafe { String::from_datum(d, false) })
    }

    fn int8(&self, tuple: *mut pg_sys::HeapTupleData, name: &CStr) -> Option<i64> {
        // SAFETY: a bigint column's datum.
        self.datum(tuple, name)
            .and_then(|d| unsafe { i64::from_datum(d, false) })
    }

    fn int4(&self, tuple: *mut pg_sys::HeapTupleData, name: &CStr) -> Option<i32> {
        // SAFETY: an int column's datum.
        self.datum(tuple, name)
            .and_then(|d| unsafe { i32::from_datum(d, false) })
    }

    fn jsonb(&self, tuple: *mut pg_sys::HeapTupleData, name: &CStr) -> Option<OwnedJsonb> {
        // SAFETY: a jsonb column's datum.
        self.datum(tuple, name)
            .map(|d| unsafe { OwnedJsonb::from_datum(d) })
    }

    fn record(&self, tuple: *mut pg_sys::HeapTupleData) -> Record {
        Record {
            id: self.int8(tuple, c"id").unwrap_or_default(),
            app: self.text(tuple, c"app").unwrap_or_default(),
            form: self.text(tuple, c"form").unwrap_or_default(),
            state: self.text(tuple, c"state").unwrap_or_default(),
            revision: self.int4(tuple, c"revision").unwrap_or_default(),
            data: self
                .jsonb(tuple, c"data")
                .unwrap_or_else(|| raise_null("data")),
        }
    }
}

/// Raise an ERROR with `code`, `message` (without the `lowcode: ` that `report` adds) and a
/// HINT.
fn refuse(code: PgSqlErrorCode, message: String, hint: Option<&str>) -> ! {
    crate::report::refuse(code, message, None, hint.map(str::to_owned))
}

fn raise_null(column: &str) -> ! {
    crate::report::refuse(
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        format!("argument \"{column}\" must not be NULL"),
        None,
        None,
    )
}

thread_local! {
    static WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many writes of records this backend has made (a counter: what matters is whether it
/// moved). A caller that wrote one record and sees the counter moved by exactly one knows no
/// rule of that write changed or deleted a record.
pub fn writes() -> u64 {
    WRITES.with(|w| w.get())
}

/// Changes to the trigger's new row, made in one `heap_modify_tuple_by_cols`.
struct Changes {
    columns: Vec<i32>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Changes {
    fn new() -> Self {
        Changes {
            columns: Vec::with_capacity(8),
            values: Vec::with_capacity(8),
            nulls: Vec::with_capacity(8),
        }
    }

    fn set(&mut self, cols: &Columns, name: &CStr, value: Option<pg_sys::Datum>) {
        self.columns.push(cols.attnum(name));
        self.values.push(value.unwrap_or(pg_sys::Datum::from(0)));
        self.nulls.push(value.is_none());
    }

    fn apply(
        mut self,
        cols: &Columns,
        tuple: *mut pg_sys::HeapTupleData,
    ) -> *mut pg_sys::HeapTupleData {
        // SAFETY: every column number came from the descriptor; values match their types.
        unsafe {
            pg_sys::heap_modify_tuple_by_cols(
                tuple,
                cols.desc,
                self.columns.len() as i32,
                self.columns.as_mut_ptr(),
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            )
        }
    }
}

fn text_datum(value: &str) -> Option<pg_sys::Datum> {
    value.into_datum()
}

/// Whether a restore is writing the rows back as they were (pg_restore, or
/// `SET lowcode.replay = on`, for lowcode administrators only): then nothing is validated,
/// recorded or run.
pub fn replaying() -> bool {
    let restoring = setting(c"application_name").as_deref() == Some("pg_restore")
        || setting(c"lowcode.replay").as_deref() == Some("on");
    // The invoker, not current_user: inside lowcode's SECURITY DEFINER functions current_user
    // is the owner, and an app role must not skip validation by asking to replay.
    restoring && crate::privileges::admin()
}

/// True while pg_restore (or a session with SET lowcode.replay = on, as a lowcode
/// administrator) restores lowcode's tables: triggers then keep rows exactly as dumped.
#[pg_extern(stable, name = "replaying")]
fn replaying_sql() -> bool {
    replaying()
}

// ------------------------------------------------------------------ the triggers

type TriggerResult<'a> =
    Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible>;

/// BEFORE INSERT OR UPDATE on lowcode.records: validation and bookkeeping.
#[pg_trigger]
fn records_before<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    // SAFETY: a row trigger on lowcode.records: its relation and tuples are valid.
    let (desc, insert, old, new) = unsafe {
        let insert = matches!(trigger.op(), Ok(PgTriggerOperation::Insert));
        let new = if insert {
            data.tg_trigtuple
        } else {
            data.tg_newtuple
        };
        ((*data.tg_relation).rd_att, insert, data.tg_trigtuple, new)
    };
    let cols = Columns { desc };
    // SAFETY: `new` is a row of the relation `desc` describes.
    let keep = |tuple| {
        Ok(Some(unsafe {
            PgHeapTuple::from_heap_tuple(PgTupleDesc::from_pg_unchecked(desc), tuple)
        }))
    };
    // A record `submit` validated and completed, written by the journal (see `submit_now`).
    if insert && journal::writing(|| cols.int8(new, c"id")) {
        return keep(new);
    }
    if replaying() {
        return keep(new);
    }
    let app = cols.text(new, c"app").unwrap_or_else(|| raise_null("app"));
    let form = cols
        .text(new, c"form")
        .unwrap_or_else(|| raise_null("form"));
    let new_data = cols
        .jsonb(new, c"data")
        .unwrap_or_else(|| raise_null("data"));
    let mut changes = Changes::new();
    // SAFETY: the transaction's start time, as now() gives it.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let now = Some(pg_sys::Datum::from(now));
    if insert {
        let current = check_current(&app, &form, new_data.container())
            .unwrap_or_else(|error| raise_check(&app, &form, error));
        changes.set(&cols, c"form_version_id", current.version_id.into_datum());
        // With a workflow, every record starts in its initial state.
        if let Some(id) = current.workflow_id {
            let wf = definitions_cache::workflow(id).unwrap_or_else(|error| raise("", error));
            changes.set(&cols, c"state", text_datum(&wf.runtime.initial));
        }
        let actor = identity::actor(Some(&app)).unwrap_or_else(|error| raise("", error));
        changes.set(&cols, c"revision", 1i32.into_datum());
        changes.set(&cols, c"created_at", now);
        changes.set(&cols, c"created_by", text_datum(&actor));
        changes.set(&cols, c"owner", text_datum(&identity::invoker_name()));
        changes.set(&cols, c"updated_at", now);
        changes.set(&cols, c"updated_by", text_datum(&actor));
        return keep(changes.apply(&cols, new));
    }
    let before = cols.record(old);
    if cols.int8(new, c"id") != Some(before.id) || app != before.app || form != before.form {
        refuse(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{}.{}: record {} cannot change its id, app or form",
                before.app, before.form, before.id
            ),
            Some("submit a new record to the other form instead"),
        );
    }
    let new_state = cols.text(new, c"state");
    if new_state.as_deref() != Some(before.state.as_str()) {
        let wf = definitions_cache::current_workflow(&app, &form)
            .unwrap_or_else(|error| raise("", error));
        if let (Some(wf), Some(state)) = (wf, new_state.as_deref()) {
            if !wf.runtime.states.contains(state) {
                refuse(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!(
                        "{app}.{form}: record {} cannot move to unknown state \"{state}\"",
                        before.id
                    ),
                    Some("move records with lowcode.transition"),
                );
            }
            if wf.runtime.is_final(&before.state) {
                refuse(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!(
                        "{app}.{form}: record {} is in final state \"{}\": nothing leaves it",
                        before.id, before.state
                    ),
                    None,
                );
            }
        }
    }
    // New data, or a request to move to the current version (a migration sets
    // form_version_id to anything else), is validated; the version is never set by hand.
    let old_version = cols.int8(old, c"form_version_id");
    if !new_data.same_as(&before.data) || cols.int8(new, c"form_version_id") != old_version {
        let version = check(&app, &form, new_data.container())
            .unwrap_or_else(|error| raise_check(&app, &form, error));
        changes.set(&cols, c"form_version_id", version.into_datum());
    }
    let actor = identity::actor(Some(&app)).unwrap_or_else(|error| raise("", error));
    changes.set(&cols, c"revision", (before.revision + 1).into_datum());
    changes.set(&cols, c"created_at", cols.datum(old, c"created_at"));
    changes.set(&cols, c"created_by", cols.datum(old, c"created_by"));
    changes.set(&cols, c"owner", cols.datum(old, c"owner"));
    changes.set(&cols, c"updated_at", now);
    changes.set(&cols, c"updated_by", text_datum(&actor));
    keep(changes.apply(&cols, new))
}

// A deleted record's tasks and timers (an approval's tasks go with the approval as well).
const DELETE_WORK: Statement = Statement {
    sql: "WITH t AS (DELETE FROM lowcode.timers x WHERE x.record_id OPERATOR(pg_catalog.=) $1) \
          DELETE FROM lowcode.tasks y WHERE y.record_id OPERATOR(pg_catalog.=) $1",
    args: &[pg_sys::BuiltinOid::INT8OID],
};

/// AFTER INSERT OR UPDATE OR DELETE on lowcode.records: the change's history row, then the
/// workflow's events of the write.
#[pg_trigger]
fn records_after<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    WRITES.with(|w| w.set(w.get().wrapping_add(1)));
    let data = trigger.trigger_data();
    let op = trigger.op();
    // SAFETY: a row trigger on lowcode.records: its relation and tuples are valid.
    let (desc, old, new) = unsafe {
        let new = match op {
            Ok(PgTriggerOperation::Update) => data.tg_newtuple,
            Ok(PgTriggerOperation::Insert) => data.tg_trigtuple,
            _ => std::ptr::null_mut(),
        };
        ((*data.tg_relation).rd_att, data.tg_trigtuple, new)
    };
    let cols = Columns { desc };
    // A record `submit` wrote with its history and rules in hand (see `submit_now`).
    if matches!(op, Ok(PgTriggerOperation::Insert)) && journal::writing(|| cols.int8(new, c"id")) {
        return Ok(None);
    }
    if replaying() {
        return Ok(None);
    }
    // What caused the change (a transition, a rule, an approval, a migration), set by the
    // workflow engine in the library's own state (engine_state::Slot::Cause): no setting can forge it.
    let cause_text = engine_state::get(engine_state::Slot::Cause);
    let cause: Option<serde_json::Value> = cause_text
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let detail = cause_text.as_deref().unwrap_or("{}");
    if new.is_null() {
        let gone = cols.record(old);
        let actor = identity::actor(Some(&gone.app)).unwrap_or_else(|error| raise("", error));
        journal::write(&journal::Row {
            record: &gone,
            action: "deleted",
            actor: &actor,
            from_state: Some(&gone.state),
            to_state: None,
            before: Some(&gone.data),
            after: None,
            detail: "{}",
        });
        // Its tasks and timers go with it (they have no foreign key: see sql/workflow.sql).
        Spi::connect_mut(|client| {
            statements::run(client, &DELETE_WORK, &[gone.id.into()]).map(|_| ())
        })
        .unwrap_or_else(|error| {
            crate::report::failed("deleting a record's tasks and timers", error)
        });
        return Ok(None);
    }
    let record = cols.record(new);
    let actor = identity::actor(Some(&record.app)).unwrap_or_else(|error| raise("", error));
    let (before, data_changed) = if matches!(op, Ok(PgTriggerOperation::Update)) {
        let before = cols.record(old);
        let changed = !record.data.same_as(&before.data);
        (Some(before), changed)
    } else {
        (None, true)
    };
    let workflow = definitions_cache::current_workflow(&record.app, &record.form)
        .unwrap_or_else(|error| raise("", error));
    let has_workflow = workflow.is_some();
    // Migrations rewrite records; they are not events of the app's process. (The cause is
    // the engine's own state: only lowcode.apply_migration sets a migration cause.)
    let migration = cause.as_ref().and_then(|c| c.get("migration")).is_some();
    // A move out of a state ends the timers set in it (with a workflow, not in a migration):
    // cancelled by the statement that writes the change's row.
    let left = before
        .as_ref()
        .map(|b| b.state.as_str())
        .filter(|old| has_workflow && !migration && *old != record.state);
    match &before {
        // The statement that made this change wrote its row (`transition`).
        Some(_) if journal::own_row(record.id) => {}
        // With a workflow, the created row waits for the notes and events of the rules and
        // goes with them in one statement; without, it is the one row and is written now.
        None if has_workflow => journal::created(&record, &actor, detail),
        None => journal::write(&journal::Row {
            record: &record,
            action: "created",
            actor: &actor,
            from_state: None,
            to_state: Some(&record.state),
            before: None,
            after: Some(&record.data),
            detail,
        }),
        Some(before) => {
            let row = journal::Row {
                record: &record,
                action: workflow::update_action(cause.as_ref(), data_changed),
                actor: &actor,
                from_state: Some(&before.state),
                to_state: Some(&record.state),
                before: data_changed.then_some(&before.data),
                after: data_changed.then_some(&record.data),
                detail,
            };
            match left {
                Some(old) => journal::write_leaving(&row, old),
                None => journal::write(&row),
            }
        }
    }
    if migration {
        journal::flush();
        return Ok(None);
    }
    if let Some(wf) = &workflow {
        rules::after_write(
            wf,
            record,
            before.as_ref().map(|b| b.state.as_str()),
            data_changed,
        )
        .unwrap_or_else(|error| raise("", error));
    }
    journal::flush();
    Ok(None)
}

const INSERT_RECORD: Statement = Statement {
    sql: "INSERT INTO lowcode.records (app, form, data, form_version_id) VALUES ($1, $2, $3, 0) \
          RETURNING id, state, revision, created_at, updated_at",
    args: &[
        pgrx::pg_sys::BuiltinOid::TEXTOID,
        pgrx::pg_sys::BuiltinOid::TEXTOID,
        pgrx::pg_sys::BuiltinOid::JSONBOID,
    ],
};

/// A record as its INSERT returned it (before the rules of its write ran).
pub struct Inserted {
    pub id: i64,
    pub state: Option<String>,
    pub revision: Option<i32>,
    /// timestamptz datums (passed by value)
    pub created_at: Option<pg_sys::Datum>,
    pub updated_at: Option<pg_sys::Datum>,
}

/// The state of a record of a form without a workflow (the column's default).
const NO_WORKFLOW_STATE: &str = "submitted";

/// The write path's entry: the invoker must hold `submit` in the app; then the record is
/// validated, recorded and handed to the workflow here and written with what its rules do in
/// one statement ([`submit_now`]), or (while a restore replays rows, or in a migration) by
/// one INSERT whose triggers do the same.
pub fn insert(app: Option<&str>, form: Option<&str>, data: Option<pg_sys::Datum>) -> Inserted {
    if !crate::privileges::holds(app, Some("submit")) {
        crate::privileges::refuse_with(
            app,
            Some("submit"),
            Some(&format!("submit to form {}", form.unwrap_or(""))),
        );
    }
    if let (Some(app), Some(form), Some(data)) = (app, form, data) {
        if let Some(inserted) = submit_now(app, form, data) {
            return inserted;
        }
    }
    // form_version_id is set by the records_before trigger, from the validation.
    let data = match data {
        Some(d) => statements::jsonb_arg(d),
        None => statements::null_arg(pg_sys::JSONBOID),
    };
    Spi::connect_mut(|client| {
        let row =
            statements::run(client, &INSERT_RECORD, &[app.into(), form.into(), data])?.first();
        Ok::<_, pgrx::spi::SpiError>(Inserted {
            id: row.get::<i64>(1)?.unwrap_or_default(),
            state: row.get::<String>(2)?,
            revision: row.get::<i32>(3)?,
            created_at: row.get_datum_by_ordinal(4)?,
            updated_at: row.get_datum_by_ordinal(5)?,
        })
    })
    .unwrap_or_else(|error| crate::report::failed("submit", error))
}

/// A submit as one statement: what the triggers do for an INSERT (validate the data, fill in
/// the bookkeeping columns, start the record in its workflow's initial state; its `created`
/// row; the rules of `created`) done here, with the record waiting in the journal's buffer,
/// so that the journal's flush writes the record, its history rows, tasks, timers and events
/// together. An action that needs the record in the table writes it first
/// (`ActionKind::needs_record`). The triggers let this row pass (`journal::writing`). None
/// when the triggers must do it: a restore replaying rows (they keep rows as dumped), or a
/// migration's write.
fn submit_now(app: &str, form: &str, data: pg_sys::Datum) -> Option<Inserted> {
    let cause_text = engine_state::get(engine_state::Slot::Cause);
    let migration = cause_text
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .is_some_and(|c| c.get("migration").is_some());
    if migration || replaying() {
        return None;
    }
    // The id first, as the INSERT's default draws it before its triggers run (a refused
    // record uses one up, as it always has).
    let id = journal::next_id(c"records_id_seq");
    // SAFETY: a non-null jsonb argument.
    let data = unsafe { OwnedJsonb::from_datum(data) };
    let current = check_current(app, form, data.container())
        .unwrap_or_else(|error| raise_check(app, form, error));
    let workflow = current
        .workflow_id
        .map(|id| definitions_cache::workflow(id).unwrap_or_else(|error| raise("", error)));
    let state = workflow
        .as_ref()
        .map_or(NO_WORKFLOW_STATE, |wf| wf.runtime.initial.as_str())
        .to_owned();
    let actor = identity::actor(Some(app)).unwrap_or_else(|error| raise("", error));
    journal::new_record(journal::NewRecord {
        id,
        app: app.to_owned(),
        form: form.to_owned(),
        form_version_id: current.version_id,
        data: data.clone(),
        state: state.clone(),
        actor: actor.clone(),
        owner: identity::invoker_name(),
    });
    let record = Record {
        id,
        app: app.to_owned(),
        form: form.to_owned(),
        state: state.clone(),
        revision: 1,
        data,
    };
    journal::created(&record, &actor, cause_text.as_deref().unwrap_or("{}"));
    if let Some(wf) = &workflow {
        rules::after_write(wf, record, None, true).unwrap_or_else(|error| raise("", error));
    }
    journal::flush();
    // SAFETY: the transaction's start time, as now() gives it.
    let now = pg_sys::Datum::from(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() });
    Some(Inserted {
        id,
        state: Some(state),
        revision: Some(1),
        created_at: Some(now),
        updated_at: Some(now),
    })
}

// update_record: the record locked, with what the checks need. (NO KEY UPDATE, the lock its
// UPDATE takes: it waits for other writers of the record, not for the rules of an event that
// keep the record from being deleted, FOR KEY SHARE.)
const RECORD_FOR_UPDATE: Statement = Statement {
    sql: "SELECT r.app, r.form, r.owner, r.revision FROM lowcode.records r \
          WHERE r.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
    args: &[pgrx::pg_sys::BuiltinOid::INT8OID],
};
// The new data, which the triggers validate, record and hand to the workflow.
const UPDATE_DATA: Statement = Statement {
    sql: "UPDATE lowcode.records x SET data = $2 WHERE x.id OPERATOR(pg_catalog.=) $1 RETURNING x.revision",
    args: &[
        pgrx::pg_sys::BuiltinOid::INT8OID,
        pgrx::pg_sys::BuiltinOid::JSONBOID,
    ],
};
// The same for a caller some fields of the form are hidden from: their stored values are kept
// (lowcode.keep_hidden refuses data that names one).
const UPDATE_DATA_KEEPING_HIDDEN: Statement = Statement {
    sql: "UPDATE lowcode.records x SET data = lowcode.keep_hidden(x, $2, $3) \
          WHERE x.id OPERATOR(pg_catalog.=) $1 RETURNING x.revision",
    args: &[
        pgrx::pg_sys::BuiltinOid::INT8OID,
        pgrx::pg_sys::BuiltinOid::JSONBOID,
        pgrx::pg_sys::BuiltinOid::TEXTOID,
    ],
};

/// Replace a record's data (validated like submit). Fields hidden from the caller keep their
/// stored values (naming one is refused with 42501). With expected_revision, refuses (SQLSTATE
/// 40001) when someone else changed it first. Returns the new revision.
#[pg_extern(volatile)]
pub(crate) fn update_record(
    id: Option<i64>,
    data: Option<crate::jsonb::JsonbBytes>,
    expected_revision: default!(Option<i32>, "NULL"),
) -> i32 {
    let json = crate::placement::runtime_distributed()
        .then(|| data.as_ref().and_then(|d| d.to_json().ok()));
    crate::placement::by_id(
        crate::placement::Of::Record,
        id,
        "update_record",
        || update_record_here(id, data, expected_revision),
        || serde_json::json!({ "id": id, "data": json.flatten(), "expected_revision": expected_revision }),
        |r| r.and_then(|v| v.as_i64()).unwrap_or_default() as i32,
    )
}

/// `update_record` where the record is (see above).
fn update_record_here(
    id: Option<i64>,
    data: Option<crate::jsonb::JsonbBytes>,
    expected_revision: Option<i32>,
) -> i32 {
    let (Some(id), Some(data)) = (id, data) else {
        refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "update_record: arguments \"id\" and \"data\" must not be NULL".into(),
            None,
        )
    };
    let locked = Spi::connect_mut(|client| {
        let table = statements::run(client, &RECORD_FOR_UPDATE, &[id.into()])?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        let row = table.first();
        Ok(Some((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<String>(3)?,
            row.get::<i32>(4)?.unwrap_or_default(),
        )))
    })
    .unwrap_or_else(|error| crate::report::failed("update_record", error));
    let Some((app, form, owner, revision)) = locked else {
        refuse(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("record {id} does not exist"),
            None,
        )
    };
    // update_all, or update_own for the invoker's own records.
    let own = owner.as_deref() == Some(identity::invoker_name().as_str());
    let may = crate::privileges::holds(Some(&app), Some("update_all"))
        || (own && crate::privileges::holds(Some(&app), Some("update_own")));
    if !may {
        crate::privileges::refuse_with(
            Some(&app),
            Some(if own { "update_own" } else { "update_all" }),
            Some(&format!("update record {id} of form {form}")),
        );
    }
    if let Some(expected) = expected_revision {
        if revision != expected {
            refuse(
                PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                format!("{app}.{form}: record {id} is at revision {revision}, not {expected}"),
                Some(
                    "someone changed it since you read it: read it again and re-apply your change",
                ),
            );
        }
    }
    let data = statements::jsonb_arg(data.datum());
    Spi::connect_mut(|client| {
        let table = if crate::privileges::hides_any(&app, &form) {
            let doing = format!("update record {id}");
            statements::run(
                client,
                &UPDATE_DATA_KEEPING_HIDDEN,
                &[id.into(), data, doing.as_str().into()],
            )?
        } else {
            statements::run(client, &UPDATE_DATA, &[id.into(), data])?
        };
        table.first().get::<i32>(1)
    })
    .unwrap_or_else(|error| crate::report::failed("update_record", error))
    .unwrap_or_default()
}

/// Submit data to a form: validated against the form's current version (SQLSTATE 23514 with
/// every issue as JSON in DETAIL when invalid), stored, recorded in history. Returns the
/// record id.
#[pg_extern(volatile)]
fn submit(app: Option<&str>, form: Option<&str>, data: Option<crate::jsonb::JsonbBytes>) -> i64 {
    let datum = data.as_ref().map(crate::jsonb::JsonbBytes::datum);
    let Some(on) = app else {
        return insert(app, form, datum).id;
    };
    crate::placement::here_or_there(
        on,
        "submit",
        || insert(app, form, datum).id,
        || crate::placement::send_submit(on, form, datum, None),
    )
}
