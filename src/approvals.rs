//! Approvals at run time: an approver decides (`lowcode.decide`), a submitter withdraws
//! (`lowcode.withdraw`). The approval's arithmetic (counts, verdict, a sequential approval's
//! next approver) is pure: `lowcode_core::actions::approval::decide`. Here: the locks, the
//! checks and their errors, one statement that writes the decision (the decision row, the
//! task completed, its deadline cancelled, the counts, and on a verdict the other approvers'
//! tasks and deadlines cancelled, and the `approval_decision` history row), then the record
//! moved to where the verdict sends it (the records trigger records the move, with the
//! approval as its cause, and runs its rules) and the rules of `approved:<name>` /
//! `rejected:<name>` / `withdrawn:<name>`.
//!
//! Lock order, for both: the approval, then the task, then the record (a verdict moves it).
//! A decider never holds its own task while it queues for the approval (that deadlocked
//! concurrent deciders of an "any" approval), and a withdraw locks the pending approval
//! before the record (the other order deadlocked a withdraw racing the last decision).

use pgrx::pg_sys::BuiltinOid::{BOOLOID, INT4OID, INT8OID, TEXTOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::engine_state::{self, Slot};
use crate::identity;
use crate::privileges;
use crate::statements::{self, Statement};
use crate::tasks::{require_claimer, ClaimedBy};
use lowcode_core::actions::approval::{self as plan, Pending};

// The task, not locked: what decide checks before it queues for the approval.
const TASK: Statement = Statement {
    sql: "SELECT x.kind, x.approval_id FROM lowcode.tasks x WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};
// The approval, then the task, locked in that order (the row locks of a join are taken in
// the order of its tables).
const APPROVAL_AND_TASK: Statement = Statement {
    sql: "SELECT a.status, a.name, a.record_id, a.mode, a.approvers, a.required, a.approved, a.rejected, \
                 a.on_approve, a.on_reject, \
                 x.status, x.claimed_by, x.name, r.app, r.form \
            FROM lowcode.approvals a \
            JOIN lowcode.tasks x ON x.approval_id OPERATOR(pg_catalog.=) a.id \
            JOIN lowcode.records r ON r.id OPERATOR(pg_catalog.=) x.record_id \
           WHERE x.id OPERATOR(pg_catalog.=) $1 AND a.id OPERATOR(pg_catalog.=) $2 \
             FOR UPDATE OF a, x",
    args: &[INT8OID, INT8OID],
};
// The decision: its row, the task completed (deadline met or not, with the transaction's
// time), the task's deadline cancelled, the approval's counts and verdict; on a verdict ($9)
// the other approvers' open tasks and their deadlines cancelled; the `approval_decision`
// history row (as lowcode.log writes it). One statement.
macro_rules! decide {
    ($columns:literal, $values:literal) => {
        concat!(
            "WITH decision AS ( \
            INSERT INTO lowcode.decisions (approval_id, task_id, approver, decision, comment",
            $columns,
            ") \
            VALUES ($1, $2, $3, $4, $5",
            $values,
            ") \
          ), done AS ( \
            UPDATE lowcode.tasks x \
               SET status = 'completed', outcome = $4, result = pg_catalog.jsonb_build_object('comment', $5), \
                   completed_by = $3, completed_at = pg_catalog.now(), \
                   met_deadline = (x.due_at IS NULL OR pg_catalog.now() OPERATOR(pg_catalog.<=) x.due_at) \
             WHERE x.id OPERATOR(pg_catalog.=) $2 \
          ), others AS ( \
            UPDATE lowcode.tasks x SET status = 'cancelled' \
             WHERE $9 AND x.approval_id OPERATOR(pg_catalog.=) $1 AND x.id OPERATOR(pg_catalog.<>) $2 \
               AND x.status OPERATOR(pg_catalog.=) ANY ('{open,claimed}'::pg_catalog.text[]) \
          ), deadlines AS ( \
            UPDATE lowcode.timers y SET status = 'cancelled' \
             WHERE y.status OPERATOR(pg_catalog.=) 'pending' \
               AND (y.task_id OPERATOR(pg_catalog.=) $2 \
                    OR ($9 AND y.task_id OPERATOR(pg_catalog.=) ANY (ARRAY( \
                         SELECT z.id FROM lowcode.tasks z WHERE z.approval_id OPERATOR(pg_catalog.=) $1)))) \
          ), counted AS ( \
            UPDATE lowcode.approvals a SET approved = $6, rejected = $7, status = $8, \
                   decided_at = CASE WHEN $9 THEN pg_catalog.now() END \
             WHERE a.id OPERATOR(pg_catalog.=) $1 \
          ) \
          INSERT INTO lowcode.history (record_id, app, form, action, revision, actor, from_state, to_state, detail) \
          SELECT r.id, r.app, r.form, 'approval_decision', r.revision, $3, r.state, r.state, \
                 pg_catalog.jsonb_build_object('approval', $1, 'name', $10, 'decision', $4, 'comment', $5, \
                                               'verdict', $8) \
            FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $11"
        )
    };
}
// $12: the record's app.
const DECIDE: Statement = Statement {
    sql: decide!(", app", ", $12"),
    args: &[
        INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, BOOLOID, TEXTOID,
        INT8OID, TEXTOID,
    ],
};
// 0.2.0's tables (a database not updated yet runs this library): decisions have no app.
const DECIDE_0_2: Statement = Statement {
    sql: decide!("", ""),
    args: &[
        INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, BOOLOID, TEXTOID,
        INT8OID,
    ],
};

// withdraw: the record's pending approvals locked (oldest first), before the record.
const PENDING_APPROVALS: Statement = Statement {
    sql: "SELECT a.id, a.name, a.on_withdraw FROM lowcode.approvals a \
           WHERE a.record_id OPERATOR(pg_catalog.=) $1 AND a.status OPERATOR(pg_catalog.=) 'pending' \
           ORDER BY a.id FOR UPDATE",
    args: &[INT8OID],
};
const RECORD: Statement = Statement {
    sql: "SELECT r.app, r.form, r.owner, r.created_by FROM lowcode.records r \
           WHERE r.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
    args: &[INT8OID],
};
// The approval withdrawn, its open tasks and their deadlines cancelled; where the record
// goes back to: the approval's on_withdraw ($2), else its workflow's initial state.
const WITHDRAW: Statement = Statement {
    sql: "WITH withdrawn AS ( \
            UPDATE lowcode.approvals a SET status = 'withdrawn', decided_at = pg_catalog.now() \
             WHERE a.id OPERATOR(pg_catalog.=) $1 \
          ), cancelled AS ( \
            UPDATE lowcode.tasks x SET status = 'cancelled' \
             WHERE x.approval_id OPERATOR(pg_catalog.=) $1 \
               AND x.status OPERATOR(pg_catalog.=) ANY ('{open,claimed}'::pg_catalog.text[]) \
          ), deadlines AS ( \
            UPDATE lowcode.timers y SET status = 'cancelled' \
             WHERE y.status OPERATOR(pg_catalog.=) 'pending' \
               AND y.task_id OPERATOR(pg_catalog.=) ANY (ARRAY( \
                   SELECT z.id FROM lowcode.tasks z WHERE z.approval_id OPERATOR(pg_catalog.=) $1)) \
          ) \
          SELECT COALESCE($2, (SELECT w.initial_state FROM lowcode.forms f \
                   JOIN lowcode.workflow_versions w ON w.id OPERATOR(pg_catalog.=) f.workflow_version_id \
                  WHERE f.app OPERATOR(pg_catalog.=) $3 AND f.name OPERATOR(pg_catalog.=) $4))",
    args: &[INT8OID, TEXTOID, TEXTOID, TEXTOID],
};
// The record to the state a verdict (or a withdrawal) sends it to, unless it is there: the
// records trigger records the move and runs its rules.
const MOVE: Statement = Statement {
    sql: "UPDATE lowcode.records x SET state = $2 \
           WHERE x.id OPERATOR(pg_catalog.=) $1 AND (x.state IS NULL OR x.state OPERATOR(pg_catalog.<>) $2)",
    args: &[INT8OID, TEXTOID],
};
const STATE: Statement = Statement {
    sql: "SELECT x.state FROM lowcode.records x WHERE x.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};

fn error(code: PgSqlErrorCode, message: String) -> ! {
    crate::report::refuse(code, message, None, None)
}

/// Move `record` to `state` with `cause` (what its history row records as the cause), then
/// run the rules of `event`.
fn settle(
    record: i64,
    app_form: (&str, &str),
    state: &str,
    cause: serde_json::Value,
    event: &str,
    outcome: Option<&str>,
) {
    crate::journal::flush();
    let previous = engine_state::set(Slot::Cause, Some(cause.to_string()));
    let moved = Spi::connect_mut(|client| {
        statements::run(client, &MOVE, &[record.into(), state.into()]).map(|_| ())
    });
    engine_state::set(Slot::Cause, previous);
    moved.unwrap_or_else(|error| crate::report::failed("moving the record", error));
    crate::rules::fire_event(record, Some(app_form), event, outcome);
}

/// Approve or reject an approval task you hold. Returns the approval's verdict so far:
/// pending, approved (the record moves to on_approve) or rejected (to on_reject).
#[pg_extern(volatile)]
pub(crate) fn decide(
    task: Option<i64>,
    decision: Option<&str>,
    comment: default!(Option<&str>, "NULL"),
) -> String {
    crate::placement::by_id(
        crate::placement::Of::Task,
        task,
        "decide",
        || decide_here(task, decision, comment),
        || serde_json::json!({ "task": task, "decision": decision, "comment": comment }),
        |r| {
            r.and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        },
    )
}

/// `decide` where the record is (see above).
fn decide_here(task: Option<i64>, decision: Option<&str>, comment: Option<&str>) -> String {
    let Some(id) = task else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "argument \"task\" must not be NULL".into(),
        )
    };
    let peek = statements::first_row(&TASK, &[id.into()], |row| {
        Ok((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<i64>(2)?,
        ))
    })
    .unwrap_or_else(|error| crate::report::failed("decide", error));
    let Some((kind, approval)) = peek else {
        error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("task {id} does not exist"),
        )
    };
    if !plan::valid_decision(decision) {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "decide: decision must be 'approve' or 'reject', not {}",
                privileges::literal(decision)
            ),
        );
    }
    let decision = decision.unwrap_or_default();
    let (Some(approval), "approval") = (approval, kind.as_str()) else {
        error(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("task {id} is not an approval: complete it with lowcode.complete_task"),
        )
    };
    struct Locked {
        status: String,
        name: String,
        record: i64,
        pending: Pending,
        on_approve: String,
        on_reject: String,
        task_status: String,
        claimed_by: Option<String>,
        task_name: String,
        app: String,
        form: String,
    }
    let locked = statements::first_row(&APPROVAL_AND_TASK, &[id.into(), approval.into()], |row| {
        Ok(Locked {
            status: row.get::<String>(1)?.unwrap_or_default(),
            name: row.get::<String>(2)?.unwrap_or_default(),
            record: row.get::<i64>(3)?.unwrap_or_default(),
            pending: Pending {
                mode: row.get::<String>(4)?.unwrap_or_default(),
                approvers: row.get::<Vec<String>>(5)?.unwrap_or_default(),
                required: row.get::<i32>(6)?.unwrap_or_default(),
                approved: row.get::<i32>(7)?.unwrap_or_default(),
                rejected: row.get::<i32>(8)?.unwrap_or_default(),
            },
            on_approve: row.get::<String>(9)?.unwrap_or_default(),
            on_reject: row.get::<String>(10)?.unwrap_or_default(),
            task_status: row.get::<String>(11)?.unwrap_or_default(),
            claimed_by: row.get::<String>(12)?,
            task_name: row.get::<String>(13)?.unwrap_or_default(),
            app: row.get::<String>(14)?.unwrap_or_default(),
            form: row.get::<String>(15)?.unwrap_or_default(),
        })
    })
    .unwrap_or_else(|error| crate::report::failed("decide", error));
    // (Gone between the look and the lock: deleted with its record.)
    let Some(a) = locked else {
        error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("task {id} does not exist"),
        )
    };
    let actor = require_claimer(
        id,
        &ClaimedBy {
            privilege: "decide",
            status: &a.task_status,
            claimed_by: a.claimed_by.as_deref(),
            app: &a.app,
            name: &a.task_name,
            record: a.record,
        },
        "decided",
    );
    if a.status != "pending" {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "approval \"{}\" of record {} is already {}",
                a.name, a.record, a.status
            ),
        );
    }
    let d = plan::decide(&a.pending, decision == "approve");
    let decided = d.verdict != "pending";
    // Rows buffered before (none, at an entry point) go first, as lowcode.log wrote them.
    crate::journal::flush();
    Spi::connect_mut(|client| {
        let mut args = vec![
            approval.into(),
            id.into(),
            actor.as_str().into(),
            decision.into(),
            comment.into(),
            d.approved.into(),
            d.rejected.into(),
            d.verdict.into(),
            decided.into(),
            a.name.as_str().into(),
            a.record.into(),
        ];
        let statement = crate::journal::with_app(&DECIDE, &DECIDE_0_2, &mut args, &a.app);
        statements::run(client, statement, &args).map(|_| ())
    })
    .unwrap_or_else(|error| crate::report::failed("decide", error));
    if let Some(next) = d.next_approver {
        crate::actions::approval::approver_tasks(approval, &[next.to_owned()]).unwrap_or_else(
            |error| crate::report::failed("decide: the next approver's task", error),
        );
    }
    if decided {
        let to = if d.verdict == "approved" {
            &a.on_approve
        } else {
            &a.on_reject
        };
        settle(
            a.record,
            (&a.app, &a.form),
            to,
            serde_json::json!({"approval": a.name, "verdict": d.verdict}),
            &format!("{}:{}", d.verdict, a.name),
            Some(d.verdict),
        );
    }
    d.verdict.to_owned()
}

/// The submitter takes a record back out of its pending approval: its tasks are cancelled
/// and the record returns to on_withdraw (default: the workflow's initial state). Returns
/// the record's state after (its rules may move it on).
#[pg_extern(volatile)]
pub(crate) fn withdraw(record: Option<i64>) -> Option<String> {
    crate::placement::by_id(
        crate::placement::Of::Record,
        record,
        "withdraw",
        || withdraw_here(record),
        || serde_json::json!({ "record": record }),
        |r| r.and_then(|v| v.as_str().map(str::to_owned)),
    )
}

/// `withdraw` where the record is (see above).
fn withdraw_here(record: Option<i64>) -> Option<String> {
    let Some(id) = record else {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "withdraw: argument \"record\" must not be NULL".into(),
        )
    };
    let approvals = Spi::connect_mut(|client| {
        statements::run(client, &PENDING_APPROVALS, &[id.into()])?
            .map(|row| {
                Ok((
                    row.get::<i64>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?,
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| crate::report::failed("withdraw", error));
    let r = statements::first_row(&RECORD, &[id.into()], |row| {
        Ok((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<String>(3)?,
            row.get::<String>(4)?,
        ))
    })
    .unwrap_or_else(|error| crate::report::failed("withdraw", error));
    let missing = || -> ! {
        error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("record {id} does not exist"),
        )
    };
    let Some((app, form, owner, created_by)) = r else {
        missing()
    };
    let own = owner.as_deref() == Some(identity::invoker_name().as_str());
    if !(privileges::holds(Some(&app), Some("read_all"))
        || (own && privileges::holds(Some(&app), Some("read_own"))))
    {
        missing();
    }
    let actor = identity::actor(Some(&app)).unwrap_or_else(|error| crate::report::raise("", error));
    if created_by.as_deref() != Some(actor.as_str()) {
        error(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "{app}.{form}: only the submitter ({}) can withdraw record {id}",
                created_by.as_deref().unwrap_or("<NULL>")
            ),
        );
    }
    let Some((approval, name, on_withdraw)) = approvals.into_iter().next() else {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{app}.{form}: record {id} has no pending approval to withdraw from"),
        )
    };
    crate::journal::flush();
    let back_to = Spi::connect_mut(|client| {
        statements::run(
            client,
            &WITHDRAW,
            &[
                approval.into(),
                on_withdraw.as_deref().into(),
                app.as_str().into(),
                form.as_str().into(),
            ],
        )?
        .first()
        .get::<String>(1)
    })
    .unwrap_or_else(|error| crate::report::failed("withdraw", error));
    if let Some(back_to) = back_to {
        settle(
            id,
            (&app, &form),
            &back_to,
            serde_json::json!({"approval": name, "verdict": "withdrawn"}),
            &format!("withdrawn:{name}"),
            None,
        );
    } else {
        crate::rules::fire_event(id, Some((&app, &form)), &format!("withdrawn:{name}"), None);
    }
    Spi::connect_mut(|client| {
        statements::run(client, &STATE, &[id.into()])?
            .first()
            .get::<String>(1)
    })
    .unwrap_or_else(|error| crate::report::failed("withdraw", error))
}
