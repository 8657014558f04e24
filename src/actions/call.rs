//! Apply `call`: the function the call's name resolved to when the workflow version was
//! published runs as the role that published it (lowcode.call_grants), sandboxed
//! ([`identity::call_as`]): its rights and no more, whoever fired the rule, with
//! `search_path = pg_catalog, pg_temp`; a jsonb object it returns is merged into the data,
//! checked and written. Then the `rule_action` note, on the record as the call left it.

use pgrx::pg_sys::BuiltinOid::{INT8OID, TEXTOID};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::Value;

use super::{merge_check_write, note, refused, subject, Result, RulesError};
use crate::definitions_cache::CompiledWorkflow;
use crate::identity;
use crate::journal::{self, Record};
use crate::statements::{self, Statement};
use lowcode_core::actions::{call as plan, rule_action_note};

/// A call action's grant (run as the owner of lowcode.call_grants, the only role that may
/// read it): the function's qualified name, whether it returns jsonb, and the role to run it as.
const CALL_GRANT: Statement = Statement {
    sql: "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' \
                 OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.proname), \
                 p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype, \
                 g.run_as::pg_catalog.oid \
            FROM lowcode.call_grants g \
            JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.function::pg_catalog.oid \
            JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
           WHERE g.workflow_version_id OPERATOR(pg_catalog.=) $1 AND g.name OPERATOR(pg_catalog.=) $2",
    args: &[INT8OID, TEXTOID],
};
/// Who owns lowcode.call_grants (a superuser in every install).
const CALL_GRANTS_OWNER: Statement = Statement {
    sql: "SELECT c.relowner FROM pg_catalog.pg_class c \
           WHERE c.oid OPERATOR(pg_catalog.=) 'lowcode.call_grants'::pg_catalog.regclass",
    args: &[],
};
const RECORD_JSON: Statement = Statement {
    sql:
        "SELECT pg_catalog.to_jsonb(r) FROM lowcode.records r WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID],
};

pub fn apply(
    wf: &CompiledWorkflow,
    r: &Record,
    rule: &str,
    name: &str,
    written: &Value,
) -> Result<()> {
    call(wf, r, rule, name)?;
    // The function may have changed the record: the note reads it again.
    if let Some(now) = journal::read_record(r.id)? {
        note(&now, "rule_action", &rule_action_note(rule, written))?;
    }
    Ok(())
}

/// Runs `body` as the owner of lowcode.call_grants (sandboxed: no user code runs there).
pub fn as_grants_owner<R>(
    body: impl FnOnce() -> std::result::Result<R, pgrx::spi::SpiError>,
) -> Result<R> {
    let owner: Option<pg_sys::Oid> = Spi::connect_mut(|client| {
        statements::run(client, &CALL_GRANTS_OWNER, &[])?
            .first()
            .get::<pg_sys::Oid>(1)
    })?;
    let owner = owner.ok_or_else(|| {
        refused(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            "lowcode.call_grants is missing".to_string(),
        )
    })?;
    Ok(identity::sandboxed(owner, body)?)
}

fn call(wf: &CompiledWorkflow, r: &Record, rule: &str, name: &str) -> Result<()> {
    let grant = as_grants_owner(|| {
        Spi::connect_mut(|client| {
            let table = statements::run(client, &CALL_GRANT, &[wf.id.into(), name.into()])?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            Ok(
                match (
                    row.get::<String>(1)?,
                    row.get::<bool>(2)?,
                    row.get::<pg_sys::Oid>(3)?,
                ) {
                    (Some(proc), Some(returns_jsonb), Some(run_as)) => {
                        Some((proc, returns_jsonb, run_as))
                    }
                    _ => None,
                },
            )
        })
    })?;
    let Some((proc, returns_jsonb, run_as)) = grant else {
        return Err(RulesError::Refused {
            code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            message: plan::not_granted_message(&subject(r), rule, name),
            detail: None,
            hint: Some(plan::not_granted_hint()),
        });
    };
    let row: Option<JsonB> = Spi::connect_mut(|client| {
        statements::run(client, &RECORD_JSON, &[r.id.into()])?
            .first()
            .get::<JsonB>(1)
    })?;
    let row = row.unwrap_or(JsonB(Value::Null));
    let result = identity::call_as(run_as, &plan::query(&proc, returns_jsonb), row)?;
    if let Some(patch) = plan::patch(result.as_ref().map(|JsonB(v)| v), returns_jsonb) {
        let current = journal::read_record(r.id)?.unwrap_or_else(|| r.clone());
        merge_check_write(
            r,
            &current.data,
            patch,
            || plan::invalid_message(rule, r.id, name),
            || plan::invalid_hint(name),
        )?;
    }
    Ok(())
}
