//! Apply `set`: merge, check (naming the rule), write. The write runs the records triggers
//! again, nested.

use serde_json::{Map, Value};

use super::{merge_check_write, Result};
use crate::journal::Record;
use lowcode_core::actions::set as plan;

pub fn apply(r: &Record, rule: &str, fields: &Map<String, Value>) -> Result<()> {
    merge_check_write(
        r,
        &r.data,
        &plan::patch(fields),
        || plan::invalid_message(rule, r.id),
        plan::invalid_hint,
    )
}
