//! `{"approval": {...}}`: an approval request and the tasks of its approvers (one for the
//! first approver of a sequential approval); its outcome moves the record.

use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalDef {
    pub name: String,
    pub mode: String,
    pub approvers: Vec<String>,
    #[serde(default)]
    pub required: Option<u32>,
    pub on_approve: String,
    pub on_reject: String,
    #[serde(default)]
    pub on_withdraw: Option<String>,
    #[serde(default)]
    pub due: Option<String>,
}

/// How many approvals an approval step needs: `ratio` says, `any` one, the others all.
pub fn approvals_required(mode: &str, approvers: usize, required: Option<i64>) -> i64 {
    match mode {
        "ratio" => required.unwrap_or(approvers as i64),
        "any" => 1,
        _ => approvers as i64,
    }
}

/// The approval row to insert.
#[derive(Debug, PartialEq)]
pub struct ApprovalPlan<'a> {
    pub name: &'a str,
    pub mode: &'a str,
    pub approvers: &'a [String],
    pub required: i32,
    pub on_approve: &'a str,
    pub on_reject: &'a str,
    pub on_withdraw: Option<&'a str>,
    pub due: Option<&'a str>,
}

pub fn plan(def: &ApprovalDef) -> ApprovalPlan<'_> {
    ApprovalPlan {
        name: &def.name,
        mode: &def.mode,
        approvers: &def.approvers,
        required: approvals_required(&def.mode, def.approvers.len(), def.required.map(i64::from))
            as i32,
        on_approve: &def.on_approve,
        on_reject: &def.on_reject,
        on_withdraw: def.on_withdraw.as_deref(),
        due: def.due.as_deref(),
    }
}

impl ApprovalPlan<'_> {
    /// The history note (`approval_requested`).
    pub fn note(&self, approval: Option<i64>, rule: &str) -> Value {
        json!({"approval": approval, "name": self.name, "mode": self.mode, "approvers": self.approvers, "rule": rule})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_modes_need_their_counts() {
        assert_eq!(approvals_required("ratio", 5, Some(3)), 3);
        assert_eq!(approvals_required("any", 5, None), 1);
        assert_eq!(approvals_required("all", 5, None), 5);
        assert_eq!(approvals_required("sequential", 2, None), 2);
    }

    #[test]
    fn the_row_and_the_note() {
        let d: ApprovalDef = serde_json::from_value(json!({"name": "sign", "mode": "ratio",
            "approvers": ["a", "b", "c"], "required": 2, "on_approve": "ok", "on_reject": "no",
            "due": "2 days"}))
        .unwrap();
        let p = plan(&d);
        assert_eq!((p.name, p.mode, p.required), ("sign", "ratio", 2));
        assert_eq!(p.approvers, ["a", "b", "c"]);
        assert_eq!(
            (p.on_approve, p.on_reject, p.on_withdraw),
            ("ok", "no", None)
        );
        assert_eq!(p.due, Some("2 days"));
        assert_eq!(
            p.note(Some(9), "ask"),
            json!({"approval": 9, "name": "sign", "mode": "ratio", "approvers": ["a", "b", "c"], "rule": "ask"})
        );
        let d: ApprovalDef = serde_json::from_value(json!({"name": "s", "mode": "all",
            "approvers": ["a", "b"], "on_approve": "ok", "on_reject": "no", "on_withdraw": "w"}))
        .unwrap();
        let p = plan(&d);
        assert_eq!((p.required, p.on_withdraw, p.due), (2, Some("w"), None));
    }
}
