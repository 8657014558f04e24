//! `{"set": {...}}`: the object is merged into the record's data (jsonb `||`: its keys
//! replace the data's), the result is checked against the form (so that the error names the
//! rule) and written; the write runs the records triggers again, nested.

use serde_json::{Map, Value};

/// What the apply step merges into the data, as jsonb `||`'s right operand.
pub fn patch(fields: &Map<String, Value>) -> Value {
    Value::Object(fields.clone())
}

/// The error's message (after `<app>.<form>: `) when the merged data is invalid.
pub fn invalid_message(rule: &str, record: i64) -> String {
    format!("rule \"{rule}\" on record {record}: its \"set\" action would make the data invalid")
}

/// The error's hint when the merged data is invalid.
pub fn invalid_hint() -> String {
    "make the rule's \"set\" agree with the form's schema".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Action;
    use serde_json::json;

    #[test]
    fn the_patch_is_the_object_as_written() {
        let Action::Set(fields) =
            serde_json::from_value(json!({"set": {"status": "late", "n": {"a": 1}}})).unwrap()
        else {
            panic!("not a set")
        };
        assert_eq!(patch(&fields), json!({"status": "late", "n": {"a": 1}}));
        assert_eq!(
            invalid_message("late", 12),
            "rule \"late\" on record 12: its \"set\" action would make the data invalid"
        );
        assert_eq!(
            invalid_hint(),
            "make the rule's \"set\" agree with the form's schema"
        );
    }
}
