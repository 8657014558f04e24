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

/// Where an approval stands after a decision (`lowcode.decide`): its counts and verdict, and
/// the approver whose task comes next (a sequential approval still pending).
#[derive(Debug, PartialEq, Eq)]
pub struct Decided<'a> {
    pub approved: i32,
    pub rejected: i32,
    /// `pending`, `approved` or `rejected`.
    pub verdict: &'static str,
    pub next_approver: Option<&'a str>,
}

/// The approval row as a decision finds it (locked).
#[derive(Debug, Clone)]
pub struct Pending {
    pub mode: String,
    pub approvers: Vec<String>,
    pub required: i32,
    pub approved: i32,
    pub rejected: i32,
}

/// Is `decision` one `lowcode.decide` takes?
pub fn valid_decision(decision: Option<&str>) -> bool {
    matches!(decision, Some("approve" | "reject"))
}

/// Count `approve` (else a rejection) into approval `a`: approved once `required` approvals
/// are in; rejected by one rejection (sequential, all, any), or for ratio once too many
/// rejected for `required` to be reachable; else pending, with a sequential approval's next
/// approver.
pub fn decide(a: &Pending, approve: bool) -> Decided<'_> {
    let (approved, rejected) = if approve {
        (a.approved + 1, a.rejected)
    } else {
        (a.approved, a.rejected + 1)
    };
    // One rejection ends a sequential, all or any approval; a ratio one once `required`
    // approvals are out of reach.
    let out_of_reach = match a.mode.as_str() {
        "ratio" => i64::from(rejected) > a.approvers.len() as i64 - i64::from(a.required),
        _ => rejected > 0,
    };
    let verdict = if approved >= a.required {
        "approved"
    } else if out_of_reach {
        "rejected"
    } else {
        "pending"
    };
    let next_approver = if verdict == "pending" && a.mode == "sequential" {
        usize::try_from(approved)
            .ok()
            .and_then(|n| a.approvers.get(n))
            .map(String::as_str)
    } else {
        None
    };
    Decided {
        approved,
        rejected,
        verdict,
        next_approver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(
        mode: &str,
        approvers: &[&str],
        required: i32,
        approved: i32,
        rejected: i32,
    ) -> Pending {
        Pending {
            mode: mode.into(),
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            required,
            approved,
            rejected,
        }
    }

    #[test]
    fn decisions_are_approve_or_reject() {
        assert!(valid_decision(Some("approve")) && valid_decision(Some("reject")));
        assert!(!valid_decision(Some("maybe")) && !valid_decision(None));
        assert!(!valid_decision(Some("Approve")));
    }

    #[test]
    fn sequential_hands_on_to_the_next_approver_and_one_rejection_ends_it() {
        let a = pending("sequential", &["lead", "manager", "cfo"], 3, 0, 0);
        let d = decide(&a, true);
        assert_eq!((d.approved, d.rejected, d.verdict), (1, 0, "pending"));
        assert_eq!(d.next_approver, Some("manager"));
        let a = pending("sequential", &["lead", "manager", "cfo"], 3, 2, 0);
        assert_eq!(decide(&a, true).verdict, "approved");
        assert_eq!(decide(&a, true).next_approver, None);
        let a = pending("sequential", &["lead", "manager"], 2, 1, 0);
        let d = decide(&a, false);
        assert_eq!(
            (d.approved, d.rejected, d.verdict, d.next_approver),
            (1, 1, "rejected", None)
        );
    }

    #[test]
    fn all_any_and_ratio() {
        let all = pending("all", &["a", "b", "c"], 3, 1, 0);
        assert_eq!(decide(&all, true).verdict, "pending");
        assert_eq!(decide(&all, true).next_approver, None);
        assert_eq!(decide(&all, false).verdict, "rejected");
        let any = pending("any", &["a", "b"], 1, 0, 0);
        assert_eq!(decide(&any, true).verdict, "approved");
        assert_eq!(decide(&any, false).verdict, "rejected");
        // ratio 2 of 3: one rejection leaves 2 reachable, a second does not.
        let ratio = pending("ratio", &["f", "g", "h"], 2, 0, 0);
        assert_eq!(decide(&ratio, false).verdict, "pending");
        let ratio = pending("ratio", &["f", "g", "h"], 2, 1, 1);
        assert_eq!(decide(&ratio, true).verdict, "approved");
        let ratio = pending("ratio", &["f", "g", "h"], 2, 0, 1);
        assert_eq!(decide(&ratio, false).verdict, "rejected");
    }

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
