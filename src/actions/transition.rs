//! Apply `transition`: an UPDATE of `state` (the records triggers run again, nested), unless
//! the record is in that state already.

use pgrx::pg_sys::BuiltinOid::{INT8OID, TEXTOID};
use pgrx::prelude::*;

use super::Result;
use crate::journal::Record;
use crate::statements::{self, Statement};
use lowcode_core::actions::transition as plan;

const SET_STATE: Statement = Statement {
    sql: "UPDATE lowcode.records r SET state = $2 WHERE r.id OPERATOR(pg_catalog.=) $1",
    args: &[INT8OID, TEXTOID],
};

pub fn apply(r: &Record, to: &str) -> Result<()> {
    if let Some(to) = plan::plan(&r.state, to) {
        Spi::connect_mut(|client| {
            statements::run(client, &SET_STATE, &[r.id.into(), to.into()]).map(|_| ())
        })?;
    }
    Ok(())
}
