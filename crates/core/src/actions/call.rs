//! `{"call": "<name>"}`: the function granted under that name when the workflow version was
//! published (`lowcode.call_grants`) runs as its publisher with the record's row as jsonb; a
//! jsonb object it returns is merged into the data, checked and written.

use serde_json::Value;

use super::Subject;

/// The statement that calls the granted function `proc` (its quoted, qualified name) with the
/// record's row as `$1`; a function that does not return jsonb gives NULL.
pub fn query(proc: &str, returns_jsonb: bool) -> String {
    if returns_jsonb {
        format!("SELECT {proc}($1)")
    } else {
        format!("SELECT CASE WHEN {proc}($1) IS NULL THEN NULL::pg_catalog.jsonb END")
    }
}

/// What to merge into the data from the function's result: a jsonb object, else nothing.
pub fn patch(result: Option<&Value>, returns_jsonb: bool) -> Option<&Value> {
    result.filter(|r| returns_jsonb && r.is_object())
}

/// The error's message when the call has no grant.
pub fn not_granted_message(subject: &Subject, rule: &str, name: &str) -> String {
    format!(
        "{}.{}: rule \"{rule}\": call {name}(jsonb) was not granted when this workflow version was published",
        subject.app, subject.form
    )
}

/// The error's hint when the call has no grant.
pub fn not_granted_hint() -> String {
    "define the workflow again (lowcode.define_workflow) as the role its calls should run as; versions from before lowcode 0.2.0, restored by a role that is not a superuser, or whose function was dropped have no grant".into()
}

/// The error's message (after `<app>.<form>: `) when the merged data is invalid.
pub fn invalid_message(rule: &str, record: i64, name: &str) -> String {
    format!("rule \"{rule}\" on record {record}: {name}(jsonb) returned data that would make the record invalid")
}

/// The error's hint when the merged data is invalid.
pub fn invalid_hint(name: &str) -> String {
    format!("make {name} return data that agrees with the form's schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::tests::subject;
    use serde_json::json;

    #[test]
    fn the_query_and_what_is_merged() {
        assert_eq!(query("s.\"F\"", true), "SELECT s.\"F\"($1)");
        assert_eq!(
            query("s.f", false),
            "SELECT CASE WHEN s.f($1) IS NULL THEN NULL::pg_catalog.jsonb END"
        );
        let object = json!({"a": 1});
        assert_eq!(patch(Some(&object), true), Some(&object));
        assert_eq!(patch(Some(&object), false), None);
        assert_eq!(patch(Some(&json!([1])), true), None);
        assert_eq!(patch(Some(&Value::Null), true), None);
        assert_eq!(patch(None, true), None);
    }

    #[test]
    fn messages_name_the_rule_and_the_function() {
        assert_eq!(
            not_granted_message(&subject(), "enrich", "score"),
            "shop.order: rule \"enrich\": call score(jsonb) was not granted when this workflow version was published"
        );
        assert_eq!(
            invalid_message("enrich", 7, "score"),
            "rule \"enrich\" on record 7: score(jsonb) returned data that would make the record invalid"
        );
        assert_eq!(
            invalid_hint("score"),
            "make score return data that agrees with the form's schema"
        );
    }
}
