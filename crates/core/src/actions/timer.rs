//! `{"timer": {"name": ..., "after": ... | "at_field": ...}}`: a timer on the record, bound to
//! its state, firing `timer:<name>`; it replaces a pending timer of the same name.

use serde::Deserialize;
use serde_json::Value;

use super::Subject;

#[derive(Debug, Clone, Deserialize)]
pub struct TimerDef {
    pub name: String,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub at_field: Option<String>,
}

/// Where a timer's time comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum FireAt<'a> {
    /// now() + the interval.
    After(&'a str),
    /// The date-time in the data's field.
    Field(&'a str),
}

pub fn fire_at(def: &TimerDef) -> FireAt<'_> {
    match (&def.after, &def.at_field) {
        (Some(after), _) => FireAt::After(after),
        (None, field) => FireAt::Field(field.as_deref().unwrap_or_default()),
    }
}

/// The text to read as a `timestamptz` from the field's value (None: not text).
pub fn field_text(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }
}

/// The error's message when the field does not hold a date-time.
pub fn no_datetime_message(subject: &Subject, rule: &str, timer: &str, field: &str) -> String {
    format!(
        "{}.{}: rule \"{rule}\" on record {}: timer \"{timer}\" needs field \"{field}\" to hold a date-time",
        subject.app, subject.form, subject.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::tests::subject;
    use serde_json::json;

    fn def(v: Value) -> TimerDef {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_time_comes_from_after_or_a_field() {
        assert_eq!(
            fire_at(&def(json!({"name": "t", "after": "1 day"}))),
            FireAt::After("1 day")
        );
        assert_eq!(
            fire_at(&def(json!({"name": "t", "at_field": "due"}))),
            FireAt::Field("due")
        );
        assert_eq!(fire_at(&def(json!({"name": "t"}))), FireAt::Field(""));
    }

    #[test]
    fn only_text_is_read_as_a_date_time() {
        let data = json!({"due": "2030-01-01T00:00:00Z", "n": 5});
        assert_eq!(field_text(data.get("due")), Some("2030-01-01T00:00:00Z"));
        assert_eq!(field_text(data.get("n")), None);
        assert_eq!(field_text(data.get("missing")), None);
        assert_eq!(
            no_datetime_message(&subject(), "remind", "t", "due"),
            "shop.order: rule \"remind\" on record 7: timer \"t\" needs field \"due\" to hold a date-time"
        );
    }
}
