//! Tasks at run time: claiming from a pool, the engine's hottest statement after the write
//! itself. (Completing, releasing, reassigning and deciding are PL/pgSQL in sql/tasks.sql:
//! each is one person's action, not a queue.)

use pgrx::pg_sys::BuiltinOid::{BOOLOID, OIDOID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::identity;
use crate::privileges;
use crate::statements::{self, Statement};

// First claim wins: skip rows another claimer holds, never wait for them. The history row
// (a note, as lowcode.log writes it) is written by the same statement.
const CLAIM: Statement = Statement {
    sql: "WITH claim AS ( \
            UPDATE lowcode.tasks x \
               SET status = 'claimed', claimed_by = $2, claimed_at = pg_catalog.now() \
             WHERE x.id OPERATOR(pg_catalog.=) ( \
                   SELECT c.id FROM lowcode.tasks c \
                    WHERE c.pool OPERATOR(pg_catalog.>=) $1 AND c.pool OPERATOR(pg_catalog.<=) $1 \
                      AND c.status OPERATOR(pg_catalog.=) 'open' \
                      AND (c.role IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_roles pr \
                                                      WHERE pr.rolname OPERATOR(pg_catalog.=) c.role \
                                                        AND pg_catalog.pg_has_role($6, pr.oid, 'MEMBER'))) \
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
          SELECT c.id FROM claim c",
    args: &[TEXTOID, TEXTOID, BOOLOID, TEXTARRAYOID, TEXTOID, OIDOID],
};

fn refuse(message: String, hint: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message,
        "lowcode",
    )
    .set_hint(hint)
    .report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Claim the oldest open task of a pool (or of a role you are a member of) for worker
/// (default: the actor; claiming for someone else needs act_as in the task's app). First
/// claim wins; never blocks on tasks other claimers hold; NULL when nothing is claimable.
#[pg_extern(volatile)]
fn claim_task(pool: Option<&str>, worker: default!(Option<&str>, "NULL")) -> Option<i64> {
    let me = identity::invoker_name();
    let label = crate::records::setting(c"lowcode.actor").filter(|l| !l.is_empty());
    // Who the history names and who gets the task.
    let acting = label.unwrap_or_else(|| me.clone());
    let who = worker.map(str::to_owned).unwrap_or_else(|| acting.clone());
    let admin = privileges::admin();
    // The apps whose tasks the invoker may claim; for someone else (worker, or
    // lowcode.actor), only those where it may also act_as.
    let mut apps = if admin {
        Vec::new()
    } else {
        privileges::apps_with("claim")
    };
    let Some(pool) = pool else {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "lowcode: claim_task: argument \"pool\" must not be NULL",
            "lowcode",
        )
        .report(pgrx::PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    };
    if !admin && apps.is_empty() {
        refuse(
            format!("lowcode: role \"{me}\" may not claim tasks in any app"),
            "an app admin can allow it: SELECT lowcode.grant('<app>', '<role>', ARRAY['claim'])",
        );
    }
    if (who != me || acting != me) && !admin {
        let acts = privileges::apps_with("act_as");
        apps.retain(|a| acts.contains(a));
        if apps.is_empty() {
            refuse(
                format!(
                    "lowcode: role \"{me}\" may not claim tasks for \"{}\" (lowcode.actor or worker) in any app",
                    if who != me { &who } else { &acting }
                ),
                "claim for yourself (worker => NULL, RESET lowcode.actor), or be granted act_as in the task's app",
            );
        }
    }
    Spi::connect_mut(|client| {
        let table = statements::run(
            client,
            &CLAIM,
            &[
                pool.into(),
                who.as_str().into(),
                admin.into(),
                apps.into(),
                acting.as_str().into(),
                identity::invoker().into(),
            ],
        )?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        table.first().get::<i64>(1)
    })
    .unwrap_or_else(|error| pgrx::error!("lowcode: claim_task failed: {error}"))
}
