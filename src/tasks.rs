//! Tasks at run time: claiming (from a pool, or the one a person clicked), the engine's
//! hottest statement after the write itself, and what an inbox lists: the tasks a person may
//! claim and the tasks they hold; completing, releasing and reassigning a task. (Deciding an
//! approval is src/approvals.rs.)
//!
//! Who claims: the actor (`lowcode.actor`, when an app server acts for its users), else the
//! invoker. A task offered to a role is for members of that role: the actor's membership
//! when it is a PostgreSQL role, none when it is only a name an app server uses (the app
//! server's own membership says nothing about its users). Pools have no members: the app
//! owns them (it decides which pools a user works from); lowcode checks the `claim`
//! privilege in the task's app.

use pgrx::pg_sys::BuiltinOid::{BOOLOID, INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::identity;
use crate::privileges;
use crate::statements::{self, Statement};

// Which open tasks a claimer may take: $3 a lowcode administrator, else the app among $4;
// a task for a role only when $6 (the claiming role, 0 for none) is a member of it.
macro_rules! claimable {
    () => {
        "c.status OPERATOR(pg_catalog.=) 'open' \
         AND (c.role IS NULL OR ($6::pg_catalog.name IS NOT NULL \
              AND pg_catalog.pg_has_role($6::pg_catalog.name, pg_catalog.to_regrole(pg_catalog.quote_ident(c.role)), 'MEMBER'))) \
         AND ($3 OR c.app OPERATOR(pg_catalog.=) ANY ($4))"
    };
}

// The claim and its history row (a note, as lowcode.log writes it) in one statement.
macro_rules! claim_and_log {
    ($which:expr) => {
        concat!(
            "WITH claim AS ( \
               UPDATE lowcode.tasks x \
                  SET status = 'claimed', claimed_by = $2, claimed_at = pg_catalog.now() \
                WHERE x.id OPERATOR(pg_catalog.=) (",
            $which,
            ") RETURNING x.id, x.record_id, x.name, x.events, x.app, x.form, x.pool \
             ), logged AS ( \
               INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
               SELECT r.id, r.app, r.form, 'task_claimed', r.revision, $5, r.state, r.state, \
                      pg_catalog.jsonb_build_object('task', c.id, 'name', c.name, 'worker', $2) \
                 FROM claim c JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) c.record_id \
             ) \
             SELECT c.id, c.record_id, c.name, c.events, c.app, c.form, c.pool FROM claim c"
        )
    };
}

// 0.2.0's tables: the task's app is its record's.
const CLAIM_0_2: Statement = Statement {
    sql: "WITH claim AS ( \
            UPDATE lowcode.tasks x \
               SET status = 'claimed', claimed_by = $2, claimed_at = pg_catalog.now() \
             WHERE x.id OPERATOR(pg_catalog.=) ( \
                   SELECT c.id FROM lowcode.tasks c \
                    WHERE c.pool OPERATOR(pg_catalog.>=) $1 AND c.pool OPERATOR(pg_catalog.<=) $1 \
                      AND c.status OPERATOR(pg_catalog.=) 'open' \
                      AND (c.role IS NULL OR ($6::pg_catalog.name IS NOT NULL \
                           AND pg_catalog.pg_has_role($6::pg_catalog.name, pg_catalog.to_regrole(pg_catalog.quote_ident(c.role)), 'MEMBER'))) \
                      AND ($3 OR (SELECT r.app FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) c.record_id) \
                                 OPERATOR(pg_catalog.=) ANY ($4)) \
                    ORDER BY c.pool, c.id \
                    LIMIT 1 \
                      FOR UPDATE SKIP LOCKED) \
            RETURNING x.id, x.record_id, x.name \
          ), logged AS ( \
            INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
            SELECT r.id, r.app, r.form, 'task_claimed', r.revision, $5, r.state, r.state, \
                   pg_catalog.jsonb_build_object('task', c.id, 'name', c.name, 'worker', $2) \
              FROM claim c JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) c.record_id \
          ) \
          SELECT c.id, c.record_id, c.name, false, NULL::pg_catalog.text, NULL::pg_catalog.text, NULL::pg_catalog.text FROM claim c",
    args: &[TEXTOID, TEXTOID, BOOLOID, TEXTARRAYOID, TEXTOID, TEXTOID],
};

// First claim wins: skip rows another claimer holds, never wait for them.
const CLAIM: Statement = Statement {
    sql: claim_and_log!(concat!(
        "SELECT c.id FROM lowcode.tasks c \
          WHERE c.pool OPERATOR(pg_catalog.>=) $1 AND c.pool OPERATOR(pg_catalog.<=) $1 AND ",
        claimable!(),
        " ORDER BY c.pool, c.id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )),
    args: &[TEXTOID, TEXTOID, BOOLOID, TEXTARRAYOID, TEXTOID, TEXTOID],
};

// The task a person clicked: theirs if nobody has it yet (a concurrent claimer's lock means
// it is taken: never wait).
const CLAIM_ONE: Statement = Statement {
    sql: claim_and_log!(concat!(
        "SELECT c.id FROM lowcode.tasks c WHERE c.id OPERATOR(pg_catalog.=) $1 AND ",
        claimable!(),
        " FOR UPDATE SKIP LOCKED"
    )),
    args: &[INT8OID, TEXTOID, BOOLOID, TEXTARRAYOID, TEXTOID, TEXTOID],
};

// Why a task was not claimed: gone, not the caller's to take, or taken.
const TASK_STATE: Statement = Statement {
    sql: "SELECT c.status, c.app, c.form, c.name, c.role, \
                 ($3 OR c.app OPERATOR(pg_catalog.=) ANY ($4)) \
            FROM lowcode.tasks c WHERE c.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TEXTOID, BOOLOID, TEXTARRAYOID],
};

const CLAIMABLE: Statement = Statement {
    sql: concat!(
        "SELECT c.id, c.app, c.form, c.record_id, r.state, c.name, c.title, c.pool, c.due_at, c.created_at \
           FROM lowcode.tasks c JOIN lowcode.records r \
                ON r.app OPERATOR(pg_catalog.=) c.app AND r.id OPERATOR(pg_catalog.=) c.record_id \
          WHERE ($1::pg_catalog.text IS NULL OR c.pool OPERATOR(pg_catalog.=) $1) AND ",
        claimable!(),
        " ORDER BY c.id"
    ),
    args: &[TEXTOID, TEXTOID, BOOLOID, TEXTARRAYOID, TEXTOID, TEXTOID],
};

const MINE: Statement = Statement {
    sql: "SELECT c.id, c.app, c.form, c.record_id, r.state, c.name, c.title, c.pool, c.due_at, c.created_at, \
                 c.status, c.claimed_at, c.outcomes \
            FROM lowcode.tasks c JOIN lowcode.records r \
                 ON r.app OPERATOR(pg_catalog.=) c.app AND r.id OPERATOR(pg_catalog.=) c.record_id \
           WHERE (c.claimed_by OPERATOR(pg_catalog.=) $1 OR c.assignee OPERATOR(pg_catalog.=) $1) \
             AND c.status OPERATOR(pg_catalog.=) ANY ('{open,claimed}'::pg_catalog.text[]) \
             AND ($2 OR c.app OPERATOR(pg_catalog.=) ANY ($3)) \
           ORDER BY c.due_at NULLS LAST, c.id",
    args: &[TEXTOID, BOOLOID, TEXTARRAYOID],
};

// Completing: the task locked (a concurrent completer, releaser or canceller waits), with
// what the checks need; whether its deadline is met is decided here, with the transaction's
// time, as the UPDATE decides it.
const TASK_FOR_UPDATE: Statement = Statement {
    sql: "SELECT x.kind, x.status, x.claimed_by, x.app, x.form, x.name, x.record_id, x.outcomes, \
                 x.result_schema, x.events, \
                 (x.due_at IS NULL OR pg_catalog.now() OPERATOR(pg_catalog.<=) x.due_at) \
            FROM lowcode.tasks x WHERE x.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
    args: &[INT8OID],
};

// The completion, its deadline timer cancelled, its history row (as lowcode.log writes it)
// and, when the workflow asked for task events, `<app>.task.completed`: one statement.
const COMPLETE: Statement = Statement {
    sql: "WITH done AS ( \
            UPDATE lowcode.tasks x \
               SET status = 'completed', outcome = $2, result = $3, completed_by = $4, \
                   completed_at = pg_catalog.now(), met_deadline = $5 \
             WHERE x.id OPERATOR(pg_catalog.=) $1 \
            RETURNING x.id, x.record_id, x.name, x.form, x.pool, x.app \
          ), deadline AS ( \
            UPDATE lowcode.timers y SET status = 'cancelled' \
             WHERE y.task_id OPERATOR(pg_catalog.=) $1 AND y.status OPERATOR(pg_catalog.=) 'pending' \
          ), logged AS ( \
            INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
            SELECT r.id, r.app, r.form, 'task_completed', r.revision, $4, r.state, r.state, \
                   pg_catalog.jsonb_build_object('task', d.id, 'name', d.name, 'outcome', $2, 'data', $3, \
                                                 'met_deadline', $5) \
              FROM done d JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) d.record_id \
          ), announced AS ( \
            INSERT INTO lowcode.events (topic, payload, record_id, app) \
            SELECT d.app OPERATOR(pg_catalog.||) '.task.completed', \
                   pg_catalog.jsonb_build_object('task', d.id, 'name', d.name, 'form', d.form, 'pool', d.pool, \
                                                 'outcome', $2, 'by', $4), \
                   d.record_id, d.app \
              FROM done d WHERE $6 \
          ) \
          SELECT pg_catalog.count(*) FROM done",
    args: &[INT8OID, TEXTOID, JSONBOID, TEXTOID, BOOLOID, BOOLOID],
};

/// Raise insufficient_privilege (42501) with `message` (without the `lowcode: ` that
/// `report` adds) and a HINT.
fn refuse(message: String, hint: &str) -> ! {
    crate::report::refuse(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message,
        None,
        Some(hint.to_owned()),
    )
}

/// Raise `code` with `message` (without the `lowcode: ` that `report` adds).
fn error(code: PgSqlErrorCode, message: String) -> ! {
    crate::report::refuse(code, message, None, None)
}

/// Who claims, for whom, and where.
struct Claimer {
    /// The role at the keyboard.
    me: String,
    /// Who the history names: the actor (`lowcode.actor`) or the invoker.
    acting: String,
    /// Who gets the task.
    who: String,
    admin: bool,
    /// The apps whose tasks may be claimed this way (for someone else: only where act_as).
    apps: Vec<String>,
    /// The role whose memberships decide tasks offered to a role (0: none).
    role: pg_sys::Oid,
    /// Its name (by name: a read of every node's shards runs the membership test on each
    /// node, where the role's oid is another).
    role_name: Option<String>,
}

fn claimer(worker: Option<&str>, doing: &str) -> Claimer {
    let me = identity::invoker_name();
    let label = crate::settings::setting(c"lowcode.actor").filter(|l| !l.is_empty());
    let acting = label.unwrap_or_else(|| me.clone());
    let who = worker.map(str::to_owned).unwrap_or_else(|| acting.clone());
    let admin = privileges::admin();
    let mut apps = if admin {
        Vec::new()
    } else {
        privileges::apps_with("claim")
    };
    if !admin && apps.is_empty() {
        refuse(
            format!("role \"{me}\" may not {doing} in any app"),
            "an app admin can allow it: SELECT lowcode.grant('<app>', '<role>', ARRAY['claim'])",
        );
    }
    if (who != me || acting != me) && !admin {
        let acts = privileges::apps_with("act_as");
        apps.retain(|a| acts.contains(a));
        if apps.is_empty() {
            refuse(
                format!(
                    "role \"{me}\" may not {doing} for \"{}\" (lowcode.actor or worker) in any app",
                    if who != me { &who } else { &acting }
                ),
                "claim for yourself (worker => NULL, RESET lowcode.actor), or be granted act_as in the task's app",
            );
        }
    }
    // Memberships of the one who gets the task: the invoker's own, or, acting for someone,
    // that person's when it is a role (an app server's users usually are not).
    let role = if who == me {
        identity::invoker()
    } else {
        std::ffi::CString::new(who.as_str())
            .ok()
            // SAFETY: a catalog lookup by name; missing_ok.
            .map(|name| unsafe { pg_sys::get_role_oid(name.as_ptr(), true) })
            .unwrap_or(pg_sys::InvalidOid)
    };
    let role_name =
        (role != pg_sys::InvalidOid).then(|| if who == me { me.clone() } else { who.clone() });
    Claimer {
        me,
        acting,
        who,
        admin,
        apps,
        role,
        role_name,
    }
}

/// A claimed task, as the claim statement returns it.
struct Claimed {
    id: i64,
    record: i64,
    name: String,
    events: bool,
    app: String,
    form: String,
    pool: Option<String>,
}

fn claimed(table: pgrx::spi::SpiTupleTable) -> Result<Option<Claimed>, pgrx::spi::SpiError> {
    if table.is_empty() {
        return Ok(None);
    }
    let row = table.first();
    Ok(Some(Claimed {
        id: row.get::<i64>(1)?.unwrap_or_default(),
        record: row.get::<i64>(2)?.unwrap_or_default(),
        name: row.get::<String>(3)?.unwrap_or_default(),
        events: row.get::<bool>(4)?.unwrap_or(false),
        app: row.get::<String>(5)?.unwrap_or_default(),
        form: row.get::<String>(6)?.unwrap_or_default(),
        pool: row.get::<String>(7)?,
    }))
}

/// `<app>.task.claimed` for a task whose workflow asked for its events.
fn announce(task: &Claimed, by: &str) {
    if task.events {
        crate::outbox::write(
            &format!("{}.task.claimed", task.app),
            serde_json::json!({"task": task.id, "name": task.name, "form": task.form,
                               "pool": task.pool, "by": by}),
            Some(task.record),
        );
    }
}

/// Claim the oldest open task of a pool (or of a role you are a member of) for worker
/// (default: the actor; claiming for someone else needs act_as in the task's app). First
/// claim wins; never blocks on tasks other claimers hold; NULL when nothing is claimable.
#[pg_extern(volatile)]
pub(crate) fn claim_task(
    pool: Option<&str>,
    worker: default!(Option<&str>, "NULL"),
) -> Option<i64> {
    crate::placement::by_pool(pool, worker, || claim_task_here(pool, worker))
}

/// `claim_task(pool)` where the tasks are (see above).
fn claim_task_here(pool: Option<&str>, worker: Option<&str>) -> Option<i64> {
    let Some(pool) = pool else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "claim_task: argument \"pool\" must not be NULL".into(),
        )
    };
    let c = claimer(worker, "claim tasks");
    let task = Spi::connect_mut(|client| {
        let statement = if crate::journal::tasks_have_app() {
            &CLAIM
        } else {
            &CLAIM_0_2
        };
        let table = statements::run(
            client,
            statement,
            &[
                pool.into(),
                c.who.as_str().into(),
                c.admin.into(),
                c.apps.clone().into(),
                c.acting.as_str().into(),
                c.role_name.as_deref().into(),
            ],
        )?;
        claimed(table)
    })
    .unwrap_or_else(|error| crate::report::failed("claim_task", error));
    task.map(|t| {
        announce(&t, &c.acting);
        t.id
    })
}

/// Claim the task a person chose (an inbox's Claim button) for worker (default: the actor).
/// True when this call won it; false when someone has it already, or is claiming it this very
/// moment (first wins, never blocks). Refused when the task does not exist (42704) or is not
/// the caller's to claim (42501: its app, or a role the claimer is not a member of).
#[pg_extern(volatile, name = "claim_task")]
pub(crate) fn claim_task_by_id(task: Option<i64>, worker: default!(Option<&str>, "NULL")) -> bool {
    crate::placement::by_id(
        crate::placement::Of::Task,
        task,
        "claim_task",
        || claim_task_by_id_here(task, worker),
        || serde_json::json!({ "task": task, "worker": worker }),
        |r| r.and_then(|v| v.as_bool()).unwrap_or(false),
    )
}

/// `claim_task` where the record is (see above).
fn claim_task_by_id_here(task: Option<i64>, worker: Option<&str>) -> bool {
    let Some(task) = task else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "claim_task: argument \"task\" must not be NULL".into(),
        )
    };
    let c = claimer(worker, "claim tasks");
    let won = Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &CLAIM_ONE,
            &[
                task.into(),
                c.who.as_str().into(),
                c.admin.into(),
                c.apps.clone().into(),
                c.acting.as_str().into(),
                c.role_name.as_deref().into(),
            ],
        )?;
        claimed(table)
    })
    .unwrap_or_else(|error| crate::report::failed("claim_task", error));
    if let Some(t) = won {
        announce(&t, &c.acting);
        return true;
    }
    // Not claimed: say why, unless it is simply taken.
    let state = Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &TASK_STATE,
            &[
                task.into(),
                c.who.as_str().into(),
                c.admin.into(),
                c.apps.clone().into(),
            ],
        )?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        let row = table.first();
        Ok(Some((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<String>(3)?.unwrap_or_default(),
            row.get::<String>(4)?.unwrap_or_default(),
            row.get::<String>(5)?,
            row.get::<bool>(6)?.unwrap_or(false),
        )))
    })
    .unwrap_or_else(|error| crate::report::failed("claim_task", error));
    match state {
        None => error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("task {task} does not exist"),
        ),
        Some((_, app, form, name, _, false)) => refuse(
            format!(
                "{app}.{form}: role \"{}\" may not claim task {task} ({name}) for \"{}\"",
                c.me, c.who
            ),
            "an app admin can allow it: SELECT lowcode.grant('<app>', '<role>', ARRAY['claim'])",
        ),
        Some((status, app, form, name, Some(role), true)) if status == "open" => {
            let member = c.role != pg_sys::InvalidOid
                && Spi::get_one_with_args::<bool>(
                    "SELECT pg_catalog.pg_has_role($1, r.oid, 'MEMBER') FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $2",
                    &[c.role.into(), role.as_str().into()],
                )
                .ok()
                .flatten()
                .unwrap_or(false);
            if member {
                false // a concurrent claimer holds it
            } else {
                refuse(
                    format!(
                        "{app}.{form}: task {task} ({name}) is for members of role \"{role}\", and \"{}\" is not one",
                        c.who
                    ),
                    "grant the role to the person (GRANT <role> TO <person>), or offer the task to a pool",
                )
            }
        }
        Some(_) => false, // taken (claimed, completed or cancelled), or being claimed now
    }
}

/// An inbox: the open tasks the actor may claim (of one pool, or every pool and role),
/// oldest first, with their app, form and record state.
#[pg_extern(stable)]
#[allow(clippy::type_complexity)]
fn claimable_tasks(
    pool: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(app, String),
        name!(form, String),
        name!(record_id, i64),
        name!(record_state, Option<String>),
        name!(name, String),
        name!(title, Option<String>),
        name!(pool, Option<String>),
        name!(due_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(created_at, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    let c = claimer(None, "list tasks to claim");
    let rows = Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &CLAIMABLE,
            &[
                pool.into(),
                Option::<&str>::None.into(),
                c.admin.into(),
                c.apps.clone().into(),
                c.acting.as_str().into(),
                c.role_name.as_deref().into(),
            ],
        )?;
        let mut rows = Vec::new();
        for row in table {
            rows.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<i64>(4)?.unwrap_or_default(),
                row.get::<String>(5)?,
                row.get::<String>(6)?.unwrap_or_default(),
                row.get::<String>(7)?,
                row.get::<String>(8)?,
                row.get(9)?,
                row.get(10)?,
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(rows)
    })
    .unwrap_or_else(|error| crate::report::failed("claimable_tasks", error));
    TableIterator::new(rows)
}

/// An inbox: the tasks the actor holds (claimed by or assigned to them, not completed), the
/// soonest due first, with the outcomes completing them accepts.
#[pg_extern(stable)]
#[allow(clippy::type_complexity)]
fn my_tasks() -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(app, String),
        name!(form, String),
        name!(record_id, i64),
        name!(record_state, Option<String>),
        name!(name, String),
        name!(title, Option<String>),
        name!(pool, Option<String>),
        name!(due_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(created_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(status, String),
        name!(claimed_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(outcomes, Option<Vec<String>>),
    ),
> {
    let c = claimer(None, "list their tasks");
    let rows = Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &MINE,
            &[
                c.acting.as_str().into(),
                c.admin.into(),
                c.apps.clone().into(),
            ],
        )?;
        let mut rows = Vec::new();
        for row in table {
            rows.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<i64>(4)?.unwrap_or_default(),
                row.get::<String>(5)?,
                row.get::<String>(6)?.unwrap_or_default(),
                row.get::<String>(7)?,
                row.get::<String>(8)?,
                row.get(9)?,
                row.get(10)?,
                row.get::<String>(11)?.unwrap_or_default(),
                row.get(12)?,
                row.get::<Vec<String>>(13)?,
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(rows)
    })
    .unwrap_or_else(|error| crate::report::failed("my_tasks", error));
    TableIterator::new(rows)
}

/// A task as completing it needs it (locked).
struct Locked {
    kind: String,
    status: String,
    claimed_by: Option<String>,
    app: String,
    form: String,
    name: String,
    record: i64,
    outcomes: Option<Vec<String>>,
    result_schema: Option<serde_json::Value>,
    events: bool,
    met_deadline: bool,
}

fn lock_task(task: i64) -> Option<Locked> {
    statements::first_row(&TASK_FOR_UPDATE, &[task.into()], |row| {
        Ok(Locked {
            kind: row.get::<String>(1)?.unwrap_or_default(),
            status: row.get::<String>(2)?.unwrap_or_default(),
            claimed_by: row.get::<String>(3)?,
            app: row.get::<String>(4)?.unwrap_or_default(),
            form: row.get::<String>(5)?.unwrap_or_default(),
            name: row.get::<String>(6)?.unwrap_or_default(),
            record: row.get::<i64>(7)?.unwrap_or_default(),
            outcomes: row.get::<Vec<String>>(8)?,
            result_schema: row.get::<pgrx::JsonB>(9)?.map(|j| j.0),
            events: row.get::<bool>(10)?.unwrap_or(false),
            met_deadline: row.get::<bool>(11)?.unwrap_or(true),
        })
    })
    .unwrap_or_else(|error| crate::report::failed("complete_task", error))
}

/// Complete a task you claimed with an outcome (one of the task's outcomes, when it declares
/// them) and result data (checked against its result schema, 23514): records whether the
/// deadline was met and fires task_completed:<task>.
#[pg_extern(volatile)]
pub(crate) fn complete_task(
    task: Option<i64>,
    outcome: Option<&str>,
    data: default!(Option<crate::jsonb::JsonbBytes>, "'{}'"),
) {
    let json = crate::placement::runtime_distributed()
        .then(|| data.as_ref().and_then(|d| d.to_json().ok()));
    crate::placement::by_id(
        crate::placement::Of::Task,
        task,
        "complete_task",
        || complete_task_here(task, outcome, data),
        || serde_json::json!({ "task": task, "outcome": outcome, "data": json.flatten() }),
        |_| (),
    )
}

/// `complete_task` where the record is (see above).
fn complete_task_here(
    task: Option<i64>,
    outcome: Option<&str>,
    data: Option<crate::jsonb::JsonbBytes>,
) {
    let Some(id) = task else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "argument \"task\" must not be NULL".into(),
        )
    };
    let Some(t) = lock_task(id) else {
        error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("task {id} does not exist"),
        )
    };
    if t.kind == "approval" {
        error(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("task {id} is an approval: decide it with lowcode.decide"),
        );
    }
    let actor = require_claimer(
        id,
        &ClaimedBy {
            privilege: "claim",
            status: &t.status,
            claimed_by: t.claimed_by.as_deref(),
            app: &t.app,
            name: &t.name,
            record: t.record,
        },
        "completed",
    );
    if let Some(outcomes) = &t.outcomes {
        if !outcome.is_some_and(|o| outcomes.iter().any(|x| x == o)) {
            let listed: Vec<String> = outcomes
                .iter()
                .map(|o| serde_json::Value::from(o.as_str()).to_string())
                .collect();
            crate::report::refuse(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "{}.{}: task {id} ({}): outcome {} is not one of {}",
                    t.app,
                    t.form,
                    t.name,
                    privileges::literal(outcome),
                    outcomes.join(", ")
                ),
                Some(format!(
                    "{{\"task\": {id}, \"outcomes\": [{}]}}",
                    listed.join(", ")
                )),
                None,
            );
        }
    }
    if let Some(schema) = &t.result_schema {
        let subject = format!("{}.{}: task {id} ({})", t.app, t.form, t.name);
        match &data {
            Some(data) => check_result(&subject, schema, data.container()),
            None => {
                let empty = pgrx::JsonB(serde_json::json!({}))
                    .into_datum()
                    // SAFETY: a jsonb datum just made.
                    .map(|d| unsafe { crate::jsonb::OwnedJsonb::from_datum(d) })
                    .unwrap_or_else(|| crate::report::broken("an empty jsonb"));
                check_result(&subject, schema, empty.container());
            }
        }
    }
    // Rows buffered before (none, at an entry point) go first, as lowcode.log wrote them.
    crate::journal::flush();
    if t.events {
        crate::worker_registry::note_events();
    }
    let result = match &data {
        Some(d) => crate::statements::jsonb_arg(d.datum()),
        None => pgrx::JsonB(serde_json::json!({})).into(),
    };
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &COMPLETE,
            &[
                id.into(),
                outcome.into(),
                result,
                actor.as_str().into(),
                t.met_deadline.into(),
                t.events.into(),
            ],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|error| crate::report::failed("complete_task", error));
    crate::rules::fire_event(
        t.record,
        Some((&t.app, &t.form)),
        &format!("task_completed:{}", t.name),
        outcome,
    );
}

/// Internal: raises 23514 (every issue as JSON in DETAIL, as a refused record does) unless
/// `data` conforms to a task's result schema.
#[pg_extern(stable)]
fn check_task_result(
    subject: Option<&str>,
    schema: Option<pgrx::JsonB>,
    data: Option<crate::jsonb::JsonbBytes>,
) {
    let (Some(subject), Some(schema), Some(data)) = (subject, schema, data) else {
        return;
    };
    check_result(subject, &schema.0, data.container());
}

/// Raise 23514 unless the jsonb `container` conforms to the result `schema`.
fn check_result(subject: &str, schema: &serde_json::Value, container: &[u8]) {
    let validator = match crate::validation::compile(schema) {
        Ok(v) => v,
        Err(e) => error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{subject}: the task's result schema does not compile: {e}"),
        ),
    };
    let issues = crate::validation::issues(&validator, container);
    if !issues.is_empty() {
        crate::report::raise(
            subject,
            crate::conformance::ConformanceError::Rejected(issues),
        );
    }
}

// release_task / reassign_task: the task locked, with what their checks need.
const TASK_TO_HAND_OVER: Statement = Statement {
    sql: "SELECT x.kind, x.status, x.claimed_by, x.app, x.name, x.record_id, x.pool, x.assignee \
            FROM lowcode.tasks x WHERE x.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
    args: &[INT8OID],
};
// The task back in its pool and its history row (as lowcode.log writes it): one statement.
const RELEASE: Statement = Statement {
    sql: "WITH back AS ( \
            UPDATE lowcode.tasks x SET status = 'open', claimed_by = NULL, claimed_at = NULL \
             WHERE x.id OPERATOR(pg_catalog.=) $1 RETURNING x.id, x.record_id, x.name) \
          INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
          SELECT r.id, r.app, r.form, 'task_released', r.revision, $2, r.state, r.state, \
                 pg_catalog.jsonb_build_object('task', d.id, 'name', d.name) \
            FROM back d JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) d.record_id",
    args: &[INT8OID, TEXTOID],
};
// The task handed to $2 (an approval's, or an assigned task's, assignee too) and its history
// row naming who had it ($3): one statement.
const REASSIGN: Statement = Statement {
    sql: "WITH handed AS ( \
            UPDATE lowcode.tasks x SET status = 'claimed', claimed_by = $2, claimed_at = pg_catalog.now(), \
                   assignee = CASE WHEN x.kind OPERATOR(pg_catalog.=) 'approval' OR x.assignee IS NOT NULL \
                                   THEN $2 ELSE x.assignee END \
             WHERE x.id OPERATOR(pg_catalog.=) $1 RETURNING x.id, x.record_id, x.name) \
          INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
          SELECT r.id, r.app, r.form, 'task_reassigned', r.revision, $4, r.state, r.state, \
                 pg_catalog.jsonb_build_object('task', d.id, 'name', d.name, 'from', $3, 'to', $2) \
            FROM handed d JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) d.record_id",
    args: &[INT8OID, TEXTOID, TEXTOID, TEXTOID],
};

/// A task as releasing or reassigning it needs it (locked).
struct HandOver {
    kind: String,
    status: String,
    claimed_by: Option<String>,
    app: String,
    name: String,
    record: i64,
    pool: Option<String>,
    assignee: Option<String>,
}

/// Lock task `task`: refused when NULL or missing (as complete_task).
fn lock_hand_over(task: Option<i64>, doing: &str) -> (i64, HandOver) {
    let Some(id) = task else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "argument \"task\" must not be NULL".into(),
        )
    };
    let found = statements::first_row(&TASK_TO_HAND_OVER, &[id.into()], |row| {
        Ok(HandOver {
            kind: row.get::<String>(1)?.unwrap_or_default(),
            status: row.get::<String>(2)?.unwrap_or_default(),
            claimed_by: row.get::<String>(3)?,
            app: row.get::<String>(4)?.unwrap_or_default(),
            name: row.get::<String>(5)?.unwrap_or_default(),
            record: row.get::<i64>(6)?.unwrap_or_default(),
            pool: row.get::<String>(7)?,
            assignee: row.get::<String>(8)?,
        })
    })
    .unwrap_or_else(|error| crate::report::failed(doing, error));
    match found {
        Some(t) => (id, t),
        None => error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("task {id} does not exist"),
        ),
    }
}

/// Give a claimed pool task back to its pool.
#[pg_extern(volatile)]
pub(crate) fn release_task(task: Option<i64>) {
    crate::placement::by_id(
        crate::placement::Of::Task,
        task,
        "release_task",
        || release_task_here(task),
        || serde_json::json!({ "task": task }),
        |_| (),
    )
}

/// `release_task` where the record is (see above).
fn release_task_here(task: Option<i64>) {
    let (id, t) = lock_hand_over(task, "release_task");
    let actor = require_claimer(
        id,
        &ClaimedBy {
            // (An approval's task is decide's.)
            privilege: if t.kind == "approval" {
                "decide"
            } else {
                "claim"
            },
            status: &t.status,
            claimed_by: t.claimed_by.as_deref(),
            app: &t.app,
            name: &t.name,
            record: t.record,
        },
        "released",
    );
    if t.pool.is_none() {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "task {id} is assigned to {}, not in a pool: reassign it instead",
                t.assignee.as_deref().unwrap_or("<NULL>")
            ),
        );
    }
    // Rows buffered before (none, at an entry point) go first, as lowcode.log wrote them.
    crate::journal::flush();
    Spi::connect_mut(|client| {
        statements::run(client, &RELEASE, &[id.into(), actor.as_str().into()]).map(|_| ())
    })
    .unwrap_or_else(|error| crate::report::failed("release_task", error));
}

/// Hand an open or claimed task (or an approval decision) to another worker.
#[pg_extern(volatile)]
pub(crate) fn reassign_task(task: Option<i64>, to_worker: Option<&str>) {
    crate::placement::by_id(
        crate::placement::Of::Task,
        task,
        "reassign_task",
        || reassign_task_here(task, to_worker),
        || serde_json::json!({ "task": task, "to_worker": to_worker }),
        |_| (),
    )
}

/// `reassign_task` where the record is (see above).
fn reassign_task_here(task: Option<i64>, to_worker: Option<&str>) {
    let (id, t) = lock_hand_over(task, "reassign_task");
    if !privileges::holds(Some(&t.app), Some("admin")) {
        privileges::refuse_with(
            Some(&t.app),
            Some("admin"),
            Some(&format!(
                "reassign task {id} (\"{}\", record {})",
                t.name, t.record
            )),
        );
    }
    let Some(to) = to_worker.filter(|w| !w.is_empty()) else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "reassign_task: argument \"to_worker\" must not be empty".into(),
        )
    };
    if t.status != "open" && t.status != "claimed" {
        not_now(id, &t.name, t.record, &t.status, "reassigned");
    }
    let actor =
        identity::actor(Some(&t.app)).unwrap_or_else(|error| crate::report::raise("", error));
    crate::journal::flush();
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &REASSIGN,
            &[
                id.into(),
                to.into(),
                t.claimed_by.as_deref().into(),
                actor.as_str().into(),
            ],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|error| crate::report::failed("reassign_task", error));
}

/// Task `id` is in `status`, where it cannot be `doing` (55000).
fn not_now(id: i64, name: &str, record: i64, status: &str, doing: &str) -> ! {
    error(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("task {id} (\"{name}\", record {record}) is {status}, so it cannot be {doing}"),
    )
}

/// A claimed task as the checks of the worker who holds it see it.
pub struct ClaimedBy<'a> {
    /// What working on it takes in its app: `claim`, or `decide` for an approval's.
    pub privilege: &'a str,
    pub status: &'a str,
    pub claimed_by: Option<&'a str>,
    pub app: &'a str,
    pub name: &'a str,
    pub record: i64,
}

/// Who may complete or release task `id`: the invoker holds the task's privilege in its app,
/// and the task is claimed by the actor (decide's check too: src/approvals.rs). The actor.
pub fn require_claimer(id: i64, t: &ClaimedBy, doing: &str) -> String {
    if !privileges::holds(Some(t.app), Some(t.privilege)) {
        privileges::refuse_with(
            Some(t.app),
            Some(t.privilege),
            Some(&format!(
                "work on task {id} (\"{}\", record {})",
                t.name, t.record
            )),
        );
    }
    if t.status != "claimed" {
        not_now(id, t.name, t.record, t.status, doing);
    }
    let actor =
        identity::actor(Some(t.app)).unwrap_or_else(|error| crate::report::raise("", error));
    if t.claimed_by != Some(actor.as_str()) {
        refuse(
            format!(
                "task {id} (\"{}\", record {}) belongs to {}, not {actor}",
                t.name,
                t.record,
                t.claimed_by.unwrap_or("<NULL>")
            ),
            "the worker who claimed it (SET lowcode.actor) completes, releases or decides it",
        );
    }
    actor
}
