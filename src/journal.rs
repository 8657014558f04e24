//! The journal: what happened to records, written by one writer. Every change, task action,
//! decision, timer firing and rule action is a row of `lowcode.history` written here, and so
//! are the outbox events a write's rules emit (`lowcode.events`). A change's row is written at
//! once ([`write`]), or with a workflow waits ([`created`]); the notes of a write's rules
//! ([`note`]: task created, rule actions), the tasks they make ([`task`], with their deadline
//! timers; ids drawn at once) and the events they emit ([`event`]) wait in a per-backend buffer
//! and are written together, in order, by one statement ([`flush`], built for the rows'
//! shape): before the next change of a record (and before anything that may read them: see
//! `ActionKind::flushes_first`), and when the engine's entry point (`submit`, a trigger,
//! `fire`, `fire_timers`) ends. `submit` puts its new record in the buffer too
//! ([`new_record`]): the record, its history, tasks, timers and events are then one
//! statement, unless an action needs the record in the table first ([`need_record`]). An
//! aborted (sub)transaction discards them ([`discard`], from the engine's transaction
//! callbacks).

use std::cell::RefCell;

use pgrx::pg_sys::BuiltinOid::{
    BOOLARRAYOID, INT4ARRAYOID, INT4OID, INT8ARRAYOID, INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID,
};
use pgrx::prelude::*;

use crate::jsonb::OwnedJsonb;
use crate::statements::{self, jsonb_arg, null_arg, Statement};

const INSERT: Statement = Statement {
    sql: "INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
          from_state, to_state, before, after, detail) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::pg_catalog.jsonb)",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
        TEXTOID,
    ],
};
// The same row of a change that moved the record out of a state ($12), with that state's
// pending timers cancelled (they only run while the record is in it): one statement.
const INSERT_LEAVING: Statement = Statement {
    sql: "WITH cancelled AS ( \
            UPDATE lowcode.timers t SET status = 'cancelled' \
             WHERE t.record_id OPERATOR(pg_catalog.=) $1 AND t.status OPERATOR(pg_catalog.=) 'pending' \
               AND t.in_state OPERATOR(pg_catalog.=) $12) \
          INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
          from_state, to_state, before, after, detail) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::pg_catalog.jsonb)",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
        TEXTOID, TEXTOID,
    ],
};
// The buffered notes, many of them (a batch of timers), one array per column: the types.
const NOTE_ARGS: [pgrx::pg_sys::BuiltinOid; 9] = [
    INT8ARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    INT4ARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    BOOLARRAYOID,
];
// Many rows (a batch of timers): subscripting a text array walks it from the start, so
// past a few dozen rows the arrays are unnested instead (planned per call, which a batch
// pays once).
macro_rules! history_rows_unnested {
    () => {
        "INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, \
          from_state, to_state, after, detail) \
          SELECT n.r, n.a, n.f, n.c, n.v, n.u, CASE WHEN n.k THEN NULL ELSE n.s END, n.s, \
                 CASE WHEN n.k THEN (SELECT x.data FROM lowcode.records x \
                                      WHERE x.id OPERATOR(pg_catalog.=) n.r) END, \
                 n.d::pg_catalog.jsonb \
            FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), \
                            pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), \
                            pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9)) \
                 WITH ORDINALITY AS n(r, a, f, c, v, u, s, d, k, i) \
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
             FROM ROWS FROM (pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), \
                             pg_catalog.unnest($13), pg_catalog.unnest($14)) \
                  WITH ORDINALITY AS e(t, b, e, r, a, i) \
            ORDER BY e.i) ",
        history_rows_unnested!()
    ),
    args: &[
        INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
        TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
        INT8ARRAYOID, TEXTARRAYOID,
    ],
};
/// Up to this many rows, one statement built for the rows' shape (`Shape`); above, unnest.
const FEW: usize = 32;

// The buffered tasks of rules (ids drawn already, so notes and events name them), each with
// its deadline timer when it has one. Column by column, one array each; outcomes and the
// result schema as JSON text (an array of arrays would have to be rectangular).
macro_rules! task_rows {
    ($t:literal) => {
        concat!(
            "tasks AS ( \
               INSERT INTO lowcode.tasks (id, record_id, name, pool, role, assignee, title, status, \
                                          claimed_by, claimed_at, due_at, app, form, outcomes, \
                                          result_schema, events) \
               SELECT t.id, t.r, t.n, t.p, t.o, t.a, t.ti, \
                      CASE WHEN t.c THEN 'claimed' ELSE 'open' END, t.a, \
                      CASE WHEN t.c THEN pg_catalog.now() END, \
                      pg_catalog.now() OPERATOR(pg_catalog.+) t.d::pg_catalog.interval, \
                      t.ap, t.f, \
                      CASE WHEN t.oc IS NOT NULL THEN ARRAY( \
                        SELECT x.v FROM pg_catalog.jsonb_array_elements_text(t.oc::pg_catalog.jsonb) \
                               WITH ORDINALITY AS x(v, k) ORDER BY x.k) END, \
                      t.rs::pg_catalog.jsonb, t.e \
                 FROM ", $t, " \
                ORDER BY t.id \
               RETURNING id, record_id, name, due_at, app), \
             deadlines AS ( \
               INSERT INTO lowcode.timers (record_id, name, event, task_id, fire_at, app) \
               SELECT k.record_id, k.name, 'deadline_passed:' OPERATOR(pg_catalog.||) k.name, k.id, k.due_at, k.app \
                 FROM tasks k WHERE k.due_at IS NOT NULL ORDER BY k.id) "
        )
    };
}
const TASK_ARGS: [pgrx::pg_sys::BuiltinOid; 14] = [
    INT8ARRAYOID,
    INT8ARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    BOOLARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    TEXTARRAYOID,
    BOOLARRAYOID,
];
// Tasks, their deadlines, the notes and the events: one statement (a rule that makes a task
// usually notes it and may announce it). Returns the earliest new deadline.
// Many tasks (a batch of timers): the tasks and their deadlines by themselves, unnested; the
// notes and events follow with FLUSH_MANY_*.
const FLUSH_MANY_TASKS: Statement = Statement {
    sql: concat!(
        "WITH ",
        task_rows!(
            "ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), \
                        pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), \
                        pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), \
                        pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), \
                        pg_catalog.unnest($13), pg_catalog.unnest($14)) \
                   AS t(id, r, n, p, o, a, ti, c, d, ap, f, oc, rs, e)"
        ),
        "SELECT pg_catalog.min(k.due_at) FROM tasks k"
    ),
    args: &TASK_ARGS,
};

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
    /// A record's `created` row: no from_state, and its data (as it is at the flush) as `after`.
    created: Vec<bool>,
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
struct Tasks {
    ids: Vec<i64>,
    records: Vec<i64>,
    names: Vec<String>,
    pools: Vec<Option<String>>,
    roles: Vec<Option<String>>,
    assignees: Vec<Option<String>>,
    titles: Vec<String>,
    claimed: Vec<bool>,
    dues: Vec<Option<String>>,
    apps: Vec<String>,
    forms: Vec<String>,
    outcomes: Vec<Option<Vec<String>>>,
    results: Vec<Option<String>>,
    events: Vec<bool>,
}

/// A record the engine inserts itself (`submit`), validated and complete, written by the
/// next [`flush`] with the rows about it.
pub struct NewRecord {
    pub id: i64,
    pub app: String,
    pub form: String,
    pub form_version_id: i64,
    pub data: OwnedJsonb,
    pub state: String,
    pub actor: String,
    pub owner: String,
}

#[derive(Default)]
struct Pending {
    record: Option<NewRecord>,
    notes: Notes,
    events: Events,
    tasks: Tasks,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    // The id of the new record a flush is writing now (0: none): its triggers let it pass.
    static WRITING: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    // The record whose change's history row the statement changing it writes itself (0: none).
    static OWN_ROW: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Run `change`, a statement that changes record `record` and writes that change's history
/// row itself (`transition`: one statement): the records trigger then writes no row for it,
/// and does the rest (the rules). Rows waiting in the buffer are written first, so the order
/// stays.
pub fn with_own_row<T>(record: i64, change: impl FnOnce() -> T) -> T {
    flush();
    OWN_ROW.with(|o| o.set(record));
    let result = change();
    OWN_ROW.with(|o| o.set(0));
    result
}

/// Is this change of `record` the one [`with_own_row`] runs? Answers yes once: the changes
/// the rules make next are the trigger's to record.
pub fn own_row(record: i64) -> bool {
    OWN_ROW.with(|o| {
        let mine = record != 0 && o.get() == record;
        if mine {
            o.set(0);
        }
        mine
    })
}

/// Is a flush writing a record the engine validated, and is it this one? (The records
/// triggers then let the row pass: it is complete, and its history and rules are in hand.)
pub fn writing(id: impl FnOnce() -> Option<i64>) -> bool {
    let now = WRITING.with(|w| w.get());
    now != 0 && id() == Some(now)
}

/// Buffer `record` (its id drawn by [`next_id`]): written by the next [`flush`], in the same
/// statement as its `created` row and what its rules buffer, unless an action that needs it
/// in the table ([`need_record`]) comes first.
pub fn new_record(record: NewRecord) {
    flush();
    PENDING.with(|p| p.borrow_mut().record = Some(record));
}

/// An action is about to read or reference records: a new record waiting in the buffer is
/// written first (with the rows before it).
pub fn need_record() {
    if PENDING.with(|p| p.borrow().record.is_some()) {
        flush();
    }
}

/// The next value of lowcode's sequence `seq`, found by name (a syscache lookup), as an
/// INSERT's default would draw it.
pub fn next_id(seq: &std::ffi::CStr) -> i64 {
    // SAFETY: catalog lookups by name, with C strings.
    let oid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"lowcode".as_ptr(), false);
        pg_sys::get_relname_relid(seq.as_ptr(), schema)
    };
    if oid == pg_sys::InvalidOid {
        crate::report::broken(format_args!("lowcode.{seq:?} does not exist"));
    }
    // SAFETY: nextval(regclass) with an oid of a sequence.
    unsafe { pgrx::direct_function_call::<i64>(pg_sys::nextval_oid, &[oid.into_datum()]) }
        .unwrap_or_else(|| crate::report::broken("nextval gave NULL"))
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
    write_row(row, None);
}

/// Write the row of a change that moved the record out of state `left`, and cancel the
/// timers set in that state, in one statement.
pub fn write_leaving(row: &Row, left: &str) {
    write_row(row, Some(left));
}

fn write_row(row: &Row, left: Option<&str>) {
    flush();
    let r = row.record;
    let mut args = vec![
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
    ];
    let statement = match left {
        Some(state) => {
            args.push(state.into());
            &INSERT_LEAVING
        }
        None => &INSERT,
    };
    Spi::connect_mut(|client| statements::run(client, statement, &args).map(|_| ()))
        .unwrap_or_else(|error| crate::report::failed("writing history", error));
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
        n.created.push(false);
    });
}

/// A new record's `created` row (its state, its data as `after`), written by the next
/// [`flush`] together with what the rules of its write leave there: one statement for the
/// change and its rules' notes and events instead of two. Correct because nothing changes the
/// record before the flush (every change of a record flushes first); [`write`] writes a row at
/// once.
pub fn created(record: &Record, actor: &str, detail: &str) {
    PENDING.with(|p| {
        let n = &mut p.borrow_mut().notes;
        n.records.push(record.id);
        n.apps.push(record.app.clone());
        n.forms.push(record.form.clone());
        n.actions.push("created".to_owned());
        n.revisions.push(record.revision);
        n.actors.push(actor.to_owned());
        n.states.push(record.state.clone());
        n.details.push(detail.to_owned());
        n.created.push(true);
    });
}

/// An outbox event about `record` (`base` with the record's data and `extra`), written by
/// the next [`flush`].
pub fn event(record: &Record, topic: &str, base: &serde_json::Value, extra: &serde_json::Value) {
    PENDING.with(|p| {
        let e = &mut p.borrow_mut().events;
        e.topics.push(topic.to_owned());
        e.bases.push(base.to_string());
        e.extras.push(extra.to_string());
        e.records.push(record.id);
        e.apps.push(record.app.clone());
    });
}

/// A task a rule makes (with its deadline timer when `due` is set), written by the next
/// [`flush`] with the notes and events that name it. Its id is drawn now.
pub struct NewTask<'a> {
    pub name: &'a str,
    /// The `pool` column.
    pub pool: Option<&'a str>,
    pub role: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub title: &'a str,
    pub claimed: bool,
    /// The interval until its deadline.
    pub due: Option<&'a str>,
    pub outcomes: Option<&'a [String]>,
    pub result_schema: Option<&'a serde_json::Value>,
    pub events: bool,
}

/// Does `lowcode.tasks` have 0.3.0's columns (app, form, outcomes, result_schema, events)? A
/// database still on 0.2.0's SQL runs this library until ALTER EXTENSION lowcode UPDATE:
/// the engine's statements must fit the tables it has. The same update gives approvals,
/// decisions and timers their app, so this answers for them too. (Three syscache lookups.)
pub fn tasks_have_app() -> bool {
    // SAFETY: catalog lookups by name, inside a transaction.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"lowcode".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            return false;
        }
        let rel = pg_sys::get_relname_relid(c"tasks".as_ptr(), ns);
        rel != pg_sys::InvalidOid
            && pg_sys::get_attnum(rel, c"events".as_ptr()) != pg_sys::InvalidAttrNumber as i16
    }
}

/// The statement that fits this database's tables: `current`, its last argument the record's
/// `app` (appended to `args`), where the runtime tables name their app; else `old`, the same
/// statement on 0.2.0's tables.
pub fn with_app<'s, 'a>(
    current: &'s Statement,
    old: &'s Statement,
    args: &mut Vec<pgrx::datum::DatumWithOid<'a>>,
    app: &'a str,
) -> &'s Statement {
    if tasks_have_app() {
        args.push(app.into());
        current
    } else {
        old
    }
}

/// Buffer `task` about `record`; its id.
pub fn task(record: &Record, task: &NewTask) -> i64 {
    let id = next_id(c"tasks_id_seq");
    PENDING.with(|p| {
        let t = &mut p.borrow_mut().tasks;
        t.ids.push(id);
        t.records.push(record.id);
        t.names.push(task.name.to_owned());
        t.pools.push(task.pool.map(str::to_owned));
        t.roles.push(task.role.map(str::to_owned));
        t.assignees.push(task.assignee.map(str::to_owned));
        t.titles.push(task.title.to_owned());
        t.claimed.push(task.claimed);
        t.dues.push(task.due.map(str::to_owned));
        t.apps.push(record.app.clone());
        t.forms.push(record.form.clone());
        t.outcomes.push(task.outcomes.map(<[String]>::to_vec));
        t.results.push(task.result_schema.map(|r| r.to_string()));
        t.events.push(task.events);
    });
    id
}

fn task_args(t: Tasks) -> Vec<pgrx::datum::DatumWithOid<'static>> {
    vec![
        t.ids.into(),
        t.records.into(),
        t.names.into(),
        t.pools.into(),
        t.roles.into(),
        t.assignees.into(),
        t.titles.into(),
        t.claimed.into(),
        t.dues.into(),
        t.apps.into(),
        t.forms.into(),
        // (As JSON text: an array of arrays would have to be rectangular.)
        t.outcomes
            .into_iter()
            .map(|o| o.map(|o| serde_json::json!(o).to_string()))
            .collect::<Vec<_>>()
            .into(),
        t.results.into(),
        t.events.into(),
    ]
}

/// Run a flush statement; with `writes_tasks`, the earliest deadline it wrote (its one
/// column) goes to the worker pool.
fn run_flush(statement: &Statement, args: &[pgrx::datum::DatumWithOid], writes_tasks: bool) {
    Spi::connect_mut(|client| {
        let table = statements::run(client, statement, args)?;
        if writes_tasks {
            if let Some(due) = table.first().get_datum_by_ordinal(1)? {
                crate::worker_registry::note_due(due.value() as i64);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|error| crate::report::failed("writing history", error));
}

/// Write the waiting rows, in one statement.
pub fn flush() {
    let Pending {
        record,
        notes: n,
        events: e,
        tasks: t,
    } = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if record.is_none() && n.records.is_empty() && e.records.is_empty() && t.ids.is_empty() {
        return;
    }
    if !e.records.is_empty() {
        crate::worker_registry::note_events();
    }
    let many = n.records.len().max(e.records.len()).max(t.ids.len()) > FEW;
    if !many {
        let shape = Shape {
            record: record.as_ref(),
            n: &n,
            e: &e,
            t: &t,
        };
        return shape.run();
    }
    // Many rows (a batch of timers): a new record first by itself, then the tasks, then the
    // notes and events, each by one statement over arrays.
    if let Some(r) = &record {
        let none = (Notes::default(), Events::default(), Tasks::default());
        let shape = Shape {
            record: Some(r),
            n: &none.0,
            e: &none.1,
            t: &none.2,
        };
        shape.run();
    }
    if !t.ids.is_empty() {
        run_flush(&FLUSH_MANY_TASKS, &task_args(t), true);
    }
    if n.records.is_empty() && e.records.is_empty() {
        return;
    }
    let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
        n.records.into(),
        n.apps.into(),
        n.forms.into(),
        n.actions.into(),
        n.revisions.into(),
        n.actors.into(),
        n.states.into(),
        n.details.into(),
        n.created.into(),
    ];
    let statement = if e.records.is_empty() {
        &FLUSH_MANY_HISTORY
    } else {
        args.extend([
            e.topics.into(),
            e.bases.into(),
            e.extras.into(),
            e.records.into(),
            e.apps.into(),
        ]);
        &FLUSH_MANY_BOTH
    };
    run_flush(statement, &args, false);
}

/// The statement of a flush of a few rows, built for their shape: a VALUES row per row with
/// one parameter per value, in the order the rows were buffered (so ids are drawn in that
/// order). No arrays, no sorts, no function scans: what a hand-written statement would be.
/// Its text depends only on the shape ([`Shape::key`]: which rows, which tasks have a
/// deadline, which rows are about the new record), so it is built and prepared once per
/// shape and kept (`statements::run_keyed`); the values are parameters in a fixed layout:
/// the new record's 8, then 14 per task, 5 per event, 8 per note.
struct Shape<'a> {
    record: Option<&'a NewRecord>,
    n: &'a Notes,
    e: &'a Events,
    t: &'a Tasks,
}

impl Shape<'_> {
    fn about_new(&self, record: i64) -> bool {
        self.record.is_some_and(|r| r.id == record)
    }

    /// Everything the text depends on.
    fn key(&self) -> String {
        let mut key = String::with_capacity(64);
        key.push(if self.record.is_some() { 'R' } else { '-' });
        key.push('/');
        key.extend(
            self.t
                .dues
                .iter()
                .map(|d| if d.is_some() { 'D' } else { 't' }),
        );
        key.push('/');
        key.extend(
            self.e
                .records
                .iter()
                .map(|&r| if self.about_new(r) { 'N' } else { 'e' }),
        );
        key.push('/');
        for (&r, &created) in self.n.records.iter().zip(&self.n.created) {
            key.push(match (created, self.about_new(r)) {
                (true, true) => 'N',
                (true, false) => 'C',
                (false, _) => 'n',
            });
        }
        key
    }

    /// The statement's text.
    fn text(&self) -> String {
        use std::fmt::Write;
        let mut next = 0usize;
        let mut p = move || {
            next += 1;
            format!("${next}")
        };
        let mut parts: Vec<String> = Vec::with_capacity(5);
        // The new record; its data is a parameter wherever a row needs it: the other parts of
        // the statement see the tables as they were before it, without the record.
        let mut new_data = String::new();
        if self.record.is_some() {
            let [id, app, form, version, data, state, actor, owner] = [(); 8].map(|_| p());
            parts.push(format!(
                "rec AS (INSERT INTO lowcode.records (id, app, form, form_version_id, data, state, \
                 revision, created_at, created_by, updated_at, updated_by, owner) \
                 VALUES ({id}, {app}, {form}, {version}, {data}, {state}, 1, pg_catalog.now(), \
                 {actor}, pg_catalog.now(), {actor}, {owner}))"
            ));
            new_data = data;
        }
        let data_of = |new: bool, record: &str| {
            if new {
                new_data.clone()
            } else {
                format!("(SELECT x.data FROM lowcode.records x WHERE x.id OPERATOR(pg_catalog.=) {record})")
            }
        };
        if !self.t.ids.is_empty() {
            let mut tasks = String::new();
            let mut timers = String::new();
            for due in &self.t.dues {
                let [id, rec, name, pool, role, assignee, title, claimed, interval, app, form, outcomes, result, events] =
                    [(); 14].map(|_| p());
                let due_at = format!(
                    "pg_catalog.now() OPERATOR(pg_catalog.+) {interval}::pg_catalog.interval"
                );
                let _ = write!(
                    tasks,
                    "{}({id}, {rec}, {name}, {pool}, {role}, {assignee}, {title}, \
                     CASE WHEN {claimed} THEN 'claimed' ELSE 'open' END, {assignee}, \
                     CASE WHEN {claimed} THEN pg_catalog.now() END, {due_at}, {app}, {form}, \
                     {outcomes}, {result}::pg_catalog.jsonb, {events})",
                    if tasks.is_empty() { "" } else { ", " }
                );
                if due.is_some() {
                    let _ = write!(
                        timers,
                        "{}({rec}, {name}, 'deadline_passed:' OPERATOR(pg_catalog.||) {name}, {id}, {due_at}, {app})",
                        if timers.is_empty() { "" } else { ", " }
                    );
                }
            }
            parts.push(format!(
                "tasks AS (INSERT INTO lowcode.tasks (id, record_id, name, pool, role, assignee, \
                 title, status, claimed_by, claimed_at, due_at, app, form, outcomes, result_schema, \
                 events) VALUES {tasks})"
            ));
            if !timers.is_empty() {
                parts.push(format!(
                    "deadlines AS (INSERT INTO lowcode.timers (record_id, name, event, task_id, \
                     fire_at, app) VALUES {timers} RETURNING fire_at)"
                ));
            }
        }
        // Events: the rule's payload, then the envelope lowcode sets (`record`, `app`, `form`,
        // `state`, `event`, `rule`), then the record's data as it is now (nothing has changed
        // it since: a change of a record writes the buffer first): the envelope wins.
        if !self.e.records.is_empty() {
            let mut rows = String::new();
            for &r in &self.e.records {
                let [topic, extra, base, rec, app] = [(); 5].map(|_| p());
                let data = data_of(self.about_new(r), &rec);
                let _ = write!(
                    rows,
                    "{}({topic}, {extra}::pg_catalog.jsonb OPERATOR(pg_catalog.||) {base}::pg_catalog.jsonb \
                     OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('data', {data}), {rec}, {app})",
                    if rows.is_empty() { "" } else { ", " }
                );
            }
            parts.push(format!(
                "events AS (INSERT INTO lowcode.events (topic, payload, record_id, app) VALUES {rows})"
            ));
        }
        // History: a `created` row has no from_state and the record's data as `after`.
        if !self.n.records.is_empty() {
            let mut rows = String::new();
            for (&r, &created) in self.n.records.iter().zip(&self.n.created) {
                let [rec, app, form, action, revision, actor, state, detail] = [(); 8].map(|_| p());
                let (from, after) = if created {
                    (
                        "NULL::pg_catalog.text".to_owned(),
                        data_of(self.about_new(r), &rec),
                    )
                } else {
                    (state.clone(), "NULL::pg_catalog.jsonb".to_owned())
                };
                let _ = write!(
                    rows,
                    "{}({rec}, {app}, {form}, {action}, {revision}, {actor}, {from}, {state}, {after}, \
                     {detail}::pg_catalog.jsonb)",
                    if rows.is_empty() { "" } else { ", " }
                );
            }
            parts.push(format!(
                "history AS (INSERT INTO lowcode.history (record_id, app, form, action, revision, \
                 actor, from_state, to_state, after, detail) VALUES {rows})"
            ));
        }
        // The earliest new deadline, for the worker pool.
        let last = if self.t.dues.iter().any(Option::is_some) {
            "SELECT pg_catalog.min(k.fire_at) FROM deadlines k"
        } else {
            "SELECT"
        };
        format!("WITH {} {last}", parts.join(", "))
    }

    /// The values, in the layout of [`Shape::text`].
    fn params(&self) -> Vec<pgrx::datum::DatumWithOid<'static>> {
        let (n, e, t) = (self.n, self.e, self.t);
        let mut v: Vec<pgrx::datum::DatumWithOid<'static>> =
            Vec::with_capacity(8 + 14 * t.ids.len() + 5 * e.records.len() + 8 * n.records.len());
        if let Some(r) = self.record {
            v.extend([
                r.id.into(),
                r.app.clone().into(),
                r.form.clone().into(),
                r.form_version_id.into(),
                jsonb_arg(r.data.datum()),
                r.state.clone().into(),
                r.actor.clone().into(),
                r.owner.clone().into(),
            ]);
        }
        for i in 0..t.ids.len() {
            v.extend([
                t.ids[i].into(),
                t.records[i].into(),
                t.names[i].clone().into(),
                t.pools[i].clone().into(),
                t.roles[i].clone().into(),
                t.assignees[i].clone().into(),
                t.titles[i].clone().into(),
                t.claimed[i].into(),
                t.dues[i].clone().into(),
                t.apps[i].clone().into(),
                t.forms[i].clone().into(),
                t.outcomes[i].clone().into(),
                t.results[i].clone().into(),
                t.events[i].into(),
            ]);
        }
        for i in 0..e.records.len() {
            v.extend([
                e.topics[i].clone().into(),
                e.extras[i].clone().into(),
                e.bases[i].clone().into(),
                e.records[i].into(),
                e.apps[i].clone().into(),
            ]);
        }
        for i in 0..n.records.len() {
            v.extend([
                n.records[i].into(),
                n.apps[i].clone().into(),
                n.forms[i].clone().into(),
                n.actions[i].clone().into(),
                n.revisions[i].into(),
                n.actors[i].clone().into(),
                n.states[i].clone().into(),
                n.details[i].clone().into(),
            ]);
        }
        v
    }

    /// Run it; the new record passes its triggers (`writing`).
    fn run(&self) {
        let key = self.key();
        let values = self.params();
        let types: Vec<pg_sys::Oid> = values.iter().map(|v| v.oid()).collect();
        WRITING.with(|w| w.set(self.record.map_or(0, |r| r.id)));
        Spi::connect_mut(|client| {
            let table = statements::run_keyed(client, &key, || self.text(), &types, &values)?;
            if self.t.dues.iter().any(Option::is_some) {
                if let Some(due) = table.first().get_datum_by_ordinal(1)? {
                    crate::worker_registry::note_due(due.value() as i64);
                }
            }
            Ok::<_, pgrx::spi::SpiError>(())
        })
        .unwrap_or_else(|error| crate::report::failed("writing history", error));
        WRITING.with(|w| w.set(0));
    }
}

/// Forget the waiting rows (their transaction or subtransaction aborted); how many.
pub fn discard() -> usize {
    WRITING.with(|w| w.set(0));
    OWN_ROW.with(|o| o.set(0));
    PENDING.with(|p| {
        let pending = std::mem::take(&mut *p.borrow_mut());
        usize::from(pending.record.is_some())
            + pending.notes.records.len()
            + pending.events.records.len()
            + pending.tasks.ids.len()
    })
}

const READ_RECORD: Statement = Statement {
    sql: "SELECT r.id, r.app, r.form, r.state, r.revision, r.data FROM lowcode.records r \
          WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};
// The same, kept from being deleted until the transaction ends (FOR KEY SHARE, what a foreign
// key's check takes): rules that run on an event of a record nobody is writing buffer tasks
// and timers for it, which have no key to it (sql/workflow.sql).
const READ_RECORD_KEPT: Statement = Statement {
    sql: "SELECT r.id, r.app, r.form, r.state, r.revision, r.data FROM lowcode.records r \
          WHERE r.id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF r",
    args: &[INT8OID],
};

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

/// A record by id, as the engine passes it along; None when it does not exist.
pub fn read_record(id: i64) -> Result<Option<Record>, pgrx::spi::SpiError> {
    read_record_with(&READ_RECORD, id)
}

/// A record by id, kept from being deleted until the transaction ends (for the rules of an
/// event: what they write for it needs it to exist at commit); None when it does not exist.
pub fn read_record_kept(id: i64) -> Result<Option<Record>, pgrx::spi::SpiError> {
    read_record_with(&READ_RECORD_KEPT, id)
}

fn read_record_with(statement: &Statement, id: i64) -> Result<Option<Record>, pgrx::spi::SpiError> {
    Spi::connect_mut(|client| {
        let table = statements::run(client, statement, &[id.into()])?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        let row = table.first();
        let data = row
            .get_datum_by_ordinal(6)?
            // SAFETY: column 6 is the record's jsonb data.
            .map(|d| unsafe { OwnedJsonb::from_datum(d) });
        Ok(data.map(|data| Record {
            id,
            app: row.get::<String>(2).ok().flatten().unwrap_or_default(),
            form: row.get::<String>(3).ok().flatten().unwrap_or_default(),
            state: row.get::<String>(4).ok().flatten().unwrap_or_default(),
            revision: row.get::<i32>(5).ok().flatten().unwrap_or_default(),
            data,
        }))
    })
}

/// Internal: adds a history row for a task action, approval decision, timer firing or rule
/// action on a record (nothing when the record is gone).
#[pg_extern(volatile)]
fn log(record: Option<i64>, action: Option<&str>, detail: Option<pgrx::JsonB>) {
    let (Some(record), Some(action)) = (record, action) else {
        return;
    };
    let Some(r) = read_record(record).unwrap_or_else(|error| {
        crate::report::failed(format_args!("log: reading record {record}"), error)
    }) else {
        return;
    };
    let actor = crate::identity::actor(Some(&r.app))
        .unwrap_or_else(|error| crate::report::raise("", error));
    let detail = detail.map(|d| d.0).unwrap_or_else(|| serde_json::json!({}));
    note(&r, action, &actor, &detail);
    flush();
}
