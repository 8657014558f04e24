//! Apply `approval`: `CREATE_APPROVAL`, then `APPROVAL_TASKS`, which calls the PL/pgSQL
//! `lowcode.approval_task` (sql/workflow.sql) for each approver (the first one only of a
//! sequential approval); then the `approval_requested` note.

use pgrx::pg_sys::BuiltinOid::{INT4OID, INT8OID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;

use super::{note, Result};
use crate::journal::Record;
use crate::statements::{self, Statement};
use crate::workflow::ApprovalDef;
use lowcode_core::actions::approval as plan;

const CREATE_APPROVAL: Statement = Statement {
    sql: "INSERT INTO lowcode.approvals (record_id, name, mode, approvers, required, on_approve, on_reject, on_withdraw, due) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.interval) RETURNING id",
    args: &[
        INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, TEXTOID,
        TEXTOID, TEXTOID, TEXTOID,
    ],
};
const APPROVAL_TASKS: Statement = Statement {
    sql: "SELECT pg_catalog.count(lowcode.approval_task(a, x.approver)) \
            FROM lowcode.approvals a, \
                 LATERAL pg_catalog.unnest(CASE WHEN a.mode OPERATOR(pg_catalog.=) 'sequential' \
                                                THEN a.approvers[1:1] ELSE a.approvers END) AS x(approver) \
           WHERE a.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};

pub fn apply(r: &Record, rule: &str, def: &ApprovalDef) -> Result<()> {
    let p = plan::plan(def);
    let id: Option<i64> = Spi::connect_mut(|client| {
        let id = statements::run(
            client,
            &CREATE_APPROVAL,
            &[
                r.id.into(),
                p.name.into(),
                p.mode.into(),
                p.approvers.to_vec().into(),
                p.required.into(),
                Some(p.on_approve).into(),
                Some(p.on_reject).into(),
                p.on_withdraw.into(),
                p.due.into(),
            ],
        )?
        .first()
        .get::<i64>(1)?;
        statements::run(client, &APPROVAL_TASKS, &[id.into()])?;
        Ok::<_, pgrx::spi::SpiError>(id)
    })?;
    note(r, "approval_requested", &p.note(id, rule))
}
