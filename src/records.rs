//! Records: the one write path. Every insert, update and delete of `lowcode.records` (from
//! `submit`, `update_record`, a typed view, COPY, a rule or a plain UPDATE) passes through
//! two triggers written here: `records_before` validates the data and keeps the
//! bookkeeping columns honest (and starts a record in its workflow's initial state),
//! `records_after` writes the one history row of the change and hands the write's events to
//! the workflow ([`crate::rules`]) with the row it already has. [`history`] is the one
//! writer of `lowcode.history`.

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgTupleDesc};

use crate::catalog::{self, CatalogError, CurrentForm};
use crate::jsonb::OwnedJsonb;
use crate::report::{raise, Reportable};
use crate::statements::{self, Statement};
use crate::validation::{self, Issue};
use crate::{engine, identity, rules, workflow};

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{}", rejected_message(.0))]
    Rejected(Vec<Issue>),
    #[error(transparent)]
    TooDeep(#[from] validation::TooDeep),
}

fn rejected_message(issues: &[Issue]) -> String {
    if issues.len() > validation::MAX_ISSUES {
        format!("more than {} validation errors", validation::MAX_ISSUES)
    } else if issues.len() == 1 {
        "1 validation error".to_owned()
    } else {
        format!("{} validation errors", issues.len())
    }
}

impl Reportable for RecordError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            RecordError::Catalog(error) => error.sqlstate(),
            RecordError::Rejected(_) => PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
            RecordError::TooDeep(error) => error.sqlstate(),
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            RecordError::Catalog(error) => error.detail(),
            RecordError::Rejected(issues) => serde_json::to_string(issues).ok(),
            RecordError::TooDeep(_) => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RecordError::Catalog(error) => error.hint(),
            RecordError::Rejected(_) => None,
            RecordError::TooDeep(error) => error.hint(),
        }
    }
}

/// Validate `container` against the current version of `app.form`; the version id it
/// conforms to, or every reason it does not.
pub fn check(app: &str, form: &str, container: &[u8]) -> Result<i64, RecordError> {
    Ok(check_current(app, form, container)?.version_id)
}

/// As [`check`], with the form's workflow version too.
pub fn check_current(app: &str, form: &str, container: &[u8]) -> Result<CurrentForm, RecordError> {
    let (current, compiled) = catalog::current_validator(app, form)?;
    let limit = catalog::max_document_depth();
    if compiled.is_valid(container, limit)? {
        return Ok(current);
    }
    Err(RecordError::Rejected(compiled.issues(container, limit)?))
}

/// Raise a refused write the way `check_record` always has: `lowcode: app.form: ...`, with
/// the values of fields hidden from the writer left out.
fn raise_check(app: &str, form: &str, error: RecordError) -> ! {
    match error {
        RecordError::Catalog(error) => raise("", error),
        rejected => raise(&format!("{app}.{form}"), redact_hidden(app, form, rejected)),
    }
}

/// The fields of `app.form` hidden from the invoker (`lowcode.hidden`).
pub fn hidden_fields(app: &str, form: &str) -> Vec<String> {
    Spi::get_one_with_args::<Vec<String>>(
        "SELECT lowcode.hidden($1, $2)",
        &[app.into(), form.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// A refused write's issues without the values of fields hidden from the invoker (asked only
/// when a write is refused).
pub fn redact_hidden(app: &str, form: &str, error: RecordError) -> RecordError {
    match error {
        RecordError::Rejected(mut issues) => {
            let hidden = hidden_fields(app, form);
            validation::redact(&mut issues, &hidden);
            RecordError::Rejected(issues)
        }
        other => other,
    }
}

// ------------------------------------------------------------------ the record row

/// A record as the engine passes it along: read once from the trigger's row (or by id when
/// a rule may have changed it), never re-read for each rule or action.
#[derive(Clone)]
pub struct Record {
    pub id: i64,
    pub app: String,
    pub form: String,
    pub state: String,
    pub revision: i32,
    pub data: OwnedJsonb,
}

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
            pgrx::error!("lowcode: lowcode.records has no column {:?}", name);
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

/// Raise an ERROR with `code`, `message` (which starts with `lowcode: `) and a HINT.
fn refuse(code: PgSqlErrorCode, message: String, hint: Option<&str>) -> ! {
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, message, "lowcode");
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

fn raise_null(column: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        format!("lowcode: argument \"{column}\" must not be NULL"),
        "lowcode",
    )
    .report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
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

/// A setting's value (None when it is not set at all).
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption returns a pointer to the setting's current value, or NULL.
    unsafe {
        let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
    }
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
            let wf = catalog::workflow(id).unwrap_or_else(|error| raise("", error));
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
                "lowcode: {}.{}: record {} cannot change its id, app or form",
                before.app, before.form, before.id
            ),
            Some("submit a new record to the other form instead"),
        );
    }
    let new_state = cols.text(new, c"state");
    if new_state.as_deref() != Some(before.state.as_str()) {
        let wf = catalog::current_workflow(&app, &form).unwrap_or_else(|error| raise("", error));
        if let (Some(wf), Some(state)) = (wf, new_state.as_deref()) {
            if !wf.runtime.states.contains(state) {
                refuse(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!(
                        "lowcode: {app}.{form}: record {} cannot move to unknown state \"{state}\"",
                        before.id
                    ),
                    Some("move records with lowcode.transition"),
                );
            }
            if wf.runtime.is_final(&before.state) {
                refuse(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("lowcode: {app}.{form}: record {} is in final state \"{}\": nothing leaves it", before.id, before.state),
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

/// AFTER INSERT OR UPDATE OR DELETE on lowcode.records: the change's history row, then the
/// workflow's events of the write.
#[pg_trigger]
fn records_after<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
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
    if replaying() {
        return Ok(None);
    }
    let cols = Columns { desc };
    // What caused the change (a transition, a rule, an approval, a migration), set by the
    // workflow engine in the library's own state (engine::Slot::Cause): no setting can forge it.
    let cause_text = engine::get(engine::Slot::Cause);
    let cause: Option<serde_json::Value> = cause_text
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let detail = cause_text.as_deref().unwrap_or("{}");
    if new.is_null() {
        let gone = cols.record(old);
        let actor = identity::actor(Some(&gone.app)).unwrap_or_else(|error| raise("", error));
        history::write(&history::Row {
            record: &gone,
            action: "deleted",
            actor: &actor,
            from_state: Some(&gone.state),
            to_state: None,
            before: Some(&gone.data),
            after: None,
            detail: "{}",
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
    match &before {
        None => history::write(&history::Row {
            record: &record,
            action: "created",
            actor: &actor,
            from_state: None,
            to_state: Some(&record.state),
            before: None,
            after: Some(&record.data),
            detail,
        }),
        Some(before) => history::write(&history::Row {
            record: &record,
            action: workflow::update_action(cause.as_ref(), data_changed),
            actor: &actor,
            from_state: Some(&before.state),
            to_state: Some(&record.state),
            before: data_changed.then_some(&before.data),
            after: data_changed.then_some(&record.data),
            detail,
        }),
    }
    // Migrations rewrite records; they are not events of the app's process. (The cause is
    // the engine's own state: only lowcode.apply_migration sets a migration cause.)
    if cause.as_ref().and_then(|c| c.get("migration")).is_some() {
        return Ok(None);
    }
    rules::after_write(
        record,
        before.as_ref().map(|b| b.state.as_str()),
        data_changed,
    )
    .unwrap_or_else(|error| raise("", error));
    history::flush();
    Ok(None)
}

// ------------------------------------------------------------------ history

/// The one writer of `lowcode.history` (and of the events a write's rules emit): every change,
/// task action, decision, timer firing and rule action is a row written here. A change's row is
/// written at once; the notes of a write's rules (task created, rule actions) and the events
/// they emit wait in a per-backend buffer and are written together, in order, by one statement
/// ([`history::flush`]): before the next change of a record, and when the engine's entry point
/// (a trigger, `fire`, `fire_timers`) ends. An aborted (sub)transaction discards them.
pub mod history {
    use std::cell::RefCell;

    use pgrx::pg_sys::BuiltinOid::{
        INT4ARRAYOID, INT4OID, INT8ARRAYOID, INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID,
    };
    use pgrx::prelude::*;

    use super::Record;
    use crate::jsonb::OwnedJsonb;
    use crate::statements::{self, jsonb_arg, null_arg, Statement};

    const INSERT: Statement = Statement {
        sql: "INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
              from_state, to_state, before, after, detail) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::pg_catalog.jsonb)",
        args: &[
            INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
            JSONBOID, TEXTOID,
        ],
    };
    // The buffered notes, in order (ids are drawn in the order of the rows), one array per
    // column. Read by subscript from generate_subscripts, whose row estimate does not depend on
    // its argument, so the statement keeps one generic plan (with unnest, whose estimate is
    // the array's length, every call was planned again).
    macro_rules! history_rows {
        () => {
            "INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
              from_state, to_state, detail) \
              SELECT $1[g.i], $2[g.i], $3[g.i], $4[g.i], $5[g.i], $6[g.i], $7[g.i], $7[g.i], \
                     $8[g.i]::pg_catalog.jsonb \
                FROM pg_catalog.generate_subscripts($1, 1) AS g(i) \
               ORDER BY g.i"
        };
    }
    const NOTE_ARGS: [pgrx::pg_sys::BuiltinOid; 8] = [
        INT8ARRAYOID,
        TEXTARRAYOID,
        TEXTARRAYOID,
        TEXTARRAYOID,
        INT4ARRAYOID,
        TEXTARRAYOID,
        TEXTARRAYOID,
        TEXTARRAYOID,
    ];
    const FLUSH_HISTORY: Statement = Statement {
        sql: history_rows!(),
        args: &NOTE_ARGS,
    };
    // The same, and the buffered events: what every message about a record carries, its data
    // as it is now (nothing has changed it since: a change of a record writes the buffer
    // first), and the payload the rule adds — which never overrides the envelope lowcode sets
    // (`record`, `app`, `form`, `state`, `event`, `rule`, `data`): the envelope wins.
    const FLUSH_BOTH: Statement = Statement {
        sql: concat!(
            "WITH events AS ( \
               INSERT INTO lowcode.events (topic, payload, record_id, app) \
               SELECT $9[g.i], \
                      $11[g.i]::pg_catalog.jsonb OPERATOR(pg_catalog.||) $10[g.i]::pg_catalog.jsonb \
                          OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('data', \
                            (SELECT x.data FROM lowcode.records x WHERE x.id OPERATOR(pg_catalog.=) $12[g.i])), \
                      $12[g.i], $13[g.i] \
                 FROM pg_catalog.generate_subscripts($9, 1) AS g(i) \
                ORDER BY g.i) ",
            history_rows!()
        ),
        args: &[
            INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
            TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
            TEXTARRAYOID,
        ],
    };

    // Many rows (a batch of timers): subscripting a text array walks it from the start, so
    // past a few dozen rows the arrays are unnested instead (planned per call, which a batch
    // pays once).
    macro_rules! history_rows_unnested {
        () => {
            "INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
              from_state, to_state, detail) \
              SELECT n.r, n.a, n.f, n.c, n.v, n.u, n.s, n.s, n.d::pg_catalog.jsonb \
                FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), \
                                pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), \
                                pg_catalog.unnest($7), pg_catalog.unnest($8)) \
                     WITH ORDINALITY AS n(r, a, f, c, v, u, s, d, i) \
               ORDER BY n.i"
        };
    }
    const FLUSH_MANY_HISTORY: Statement = Statement {
        sql: history_rows_unnested!(),
        args: &NOTE_ARGS,
    };
    const FLUSH_MANY_BOTH: Statement = Statement {
        sql: concat!(
            "WITH events AS ( \
               INSERT INTO lowcode.events (topic, payload, record_id, app) \
               SELECT e.t, \
                      e.e::pg_catalog.jsonb OPERATOR(pg_catalog.||) e.b::pg_catalog.jsonb \
                          OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('data', \
                            (SELECT x.data FROM lowcode.records x WHERE x.id OPERATOR(pg_catalog.=) e.r)), \
                      e.r, e.a \
                 FROM ROWS FROM (pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), \
                                 pg_catalog.unnest($12), pg_catalog.unnest($13)) \
                      WITH ORDINALITY AS e(t, b, e, r, a, i) \
                ORDER BY e.i) ",
            history_rows_unnested!()
        ),
        args: &[
            INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
            TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
            TEXTARRAYOID,
        ],
    };
    /// Up to this many rows, the generic plan (subscripts); above, unnest.
    const FEW: usize = 32;

    #[derive(Default)]
    struct Notes {
        records: Vec<i64>,
        apps: Vec<String>,
        forms: Vec<String>,
        actions: Vec<String>,
        revisions: Vec<i32>,
        actors: Vec<String>,
        states: Vec<String>,
        details: Vec<String>,
    }

    #[derive(Default)]
    struct Events {
        topics: Vec<String>,
        bases: Vec<String>,
        extras: Vec<String>,
        records: Vec<i64>,
        apps: Vec<String>,
    }

    #[derive(Default)]
    struct Pending {
        notes: Notes,
        events: Events,
    }

    thread_local! {
        static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    }

    /// One history row about `record` as it is now.
    pub struct Row<'a> {
        pub record: &'a Record,
        pub action: &'a str,
        pub actor: &'a str,
        pub from_state: Option<&'a str>,
        pub to_state: Option<&'a str>,
        pub before: Option<&'a OwnedJsonb>,
        pub after: Option<&'a OwnedJsonb>,
        /// JSON text.
        pub detail: &'a str,
    }

    fn jsonb(value: Option<&OwnedJsonb>) -> pgrx::datum::DatumWithOid<'static> {
        match value {
            Some(v) => jsonb_arg(v.datum()),
            None => null_arg(pg_sys::JSONBOID),
        }
    }

    /// Write a change's row now (after the rows waiting before it).
    pub fn write(row: &Row) {
        flush();
        let r = row.record;
        Spi::connect_mut(|client| {
            statements::run(
                client,
                &INSERT,
                &[
                    r.id.into(),
                    r.app.as_str().into(),
                    r.form.as_str().into(),
                    row.action.into(),
                    r.revision.into(),
                    row.actor.into(),
                    row.from_state.into(),
                    row.to_state.into(),
                    jsonb(row.before),
                    jsonb(row.after),
                    row.detail.into(),
                ],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|error| pgrx::error!("lowcode: writing history failed: {error}"));
    }

    /// A row about something that happened to the record without changing it (a task
    /// action, a decision, a timer, a rule action): its state stays, no data. Written by the
    /// next [`flush`].
    pub fn note(record: &Record, action: &str, actor: &str, detail: &serde_json::Value) {
        PENDING.with(|p| {
            let n = &mut p.borrow_mut().notes;
            n.records.push(record.id);
            n.apps.push(record.app.clone());
            n.forms.push(record.form.clone());
            n.actions.push(action.to_owned());
            n.revisions.push(record.revision);
            n.actors.push(actor.to_owned());
            n.states.push(record.state.clone());
            n.details.push(detail.to_string());
        });
    }

    /// An outbox event about `record` (`base` with the record's data and `extra`), written by
    /// the next [`flush`].
    pub fn event(
        record: &Record,
        topic: &str,
        base: &serde_json::Value,
        extra: &serde_json::Value,
    ) {
        PENDING.with(|p| {
            let e = &mut p.borrow_mut().events;
            e.topics.push(topic.to_owned());
            e.bases.push(base.to_string());
            e.extras.push(extra.to_string());
            e.records.push(record.id);
            e.apps.push(record.app.clone());
        });
    }

    /// Write the waiting rows, in one statement.
    pub fn flush() {
        let Pending {
            notes: n,
            events: e,
        } = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if n.records.is_empty() && e.records.is_empty() {
            return;
        }
        let many = n.records.len().max(e.records.len()) > FEW;
        let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
            n.records.into(),
            n.apps.into(),
            n.forms.into(),
            n.actions.into(),
            n.revisions.into(),
            n.actors.into(),
            n.states.into(),
            n.details.into(),
        ];
        let statement = if e.records.is_empty() {
            if many {
                &FLUSH_MANY_HISTORY
            } else {
                &FLUSH_HISTORY
            }
        } else {
            crate::worker_registry::note_events();
            args.extend([
                e.topics.into(),
                e.bases.into(),
                e.extras.into(),
                e.records.into(),
                e.apps.into(),
            ]);
            if many {
                &FLUSH_MANY_BOTH
            } else {
                &FLUSH_BOTH
            }
        };
        Spi::connect_mut(|client| statements::run(client, statement, &args).map(|_| ()))
            .unwrap_or_else(|error| pgrx::error!("lowcode: writing history failed: {error}"));
    }

    /// Forget the waiting rows (their transaction or subtransaction aborted); how many.
    pub fn discard() -> usize {
        PENDING.with(|p| {
            let pending = std::mem::take(&mut *p.borrow_mut());
            pending.notes.records.len() + pending.events.records.len()
        })
    }
}

/// Internal: adds a history row for a task action, approval decision, timer firing or rule
/// action on a record (nothing when the record is gone).
#[pg_extern(volatile)]
fn log(record: Option<i64>, action: Option<&str>, detail: Option<pgrx::JsonB>) {
    let (Some(record), Some(action)) = (record, action) else {
        return;
    };
    let Some(r) = crate::rules::read_record(record).unwrap_or_else(|error| raise("", error)) else {
        return;
    };
    let actor = identity::actor(Some(&r.app)).unwrap_or_else(|error| raise("", error));
    let detail = detail.map(|d| d.0).unwrap_or_else(|| serde_json::json!({}));
    history::note(&r, action, &actor, &detail);
    history::flush();
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

/// The write path's entry: the invoker must hold `submit` in the app; then one INSERT, which
/// the triggers validate, record and hand to the workflow.
pub fn insert(app: Option<&str>, form: Option<&str>, data: Option<pg_sys::Datum>) -> Inserted {
    if !crate::privileges::holds(app, Some("submit")) {
        crate::privileges::refuse_with(
            app,
            Some("submit"),
            Some(&format!("submit to form {}", form.unwrap_or(""))),
        );
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
    .unwrap_or_else(|error| pgrx::error!("lowcode: submit failed: {error}"))
}

/// Submit data to a form: validated against the form's current version (SQLSTATE 23514 with
/// every issue as JSON in DETAIL when invalid), stored, recorded in history. Returns the
/// record id.
#[pg_extern(volatile)]
fn submit(app: Option<&str>, form: Option<&str>, data: Option<crate::jsonb::JsonbBytes>) -> i64 {
    insert(
        app,
        form,
        data.as_ref().map(crate::jsonb::JsonbBytes::datum),
    )
    .id
}
