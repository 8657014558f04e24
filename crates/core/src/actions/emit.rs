//! `{"emit": {"topic": ..., "payload": {...}}}`: an outbox event, written with the history of
//! the write (`journal::event`). An app emits its own topics only.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{object_or_none, Subject};

#[derive(Debug, Clone, Deserialize)]
pub struct EmitDef {
    #[serde(alias = "channel")]
    pub topic: String,
    /// The event's extra (next to the base payload).
    #[serde(default, deserialize_with = "object_or_none")]
    pub payload: Option<Map<String, Value>>,
}

/// The topic, and the event's extra (`{}` without a payload).
pub fn plan(def: &EmitDef) -> (&str, Value) {
    let extra = def
        .payload
        .clone()
        .map(Value::Object)
        .unwrap_or_else(|| json!({}));
    (&def.topic, extra)
}

/// The app a topic would speak for when its first segment is not the record's app: the
/// apply step refuses the topic when that app exists.
pub fn other_app<'a>(app: &str, topic: &'a str) -> Option<&'a str> {
    let first = topic.split('.').next().unwrap_or_default();
    (first != app).then_some(first)
}

/// The error's message when the topic belongs to `other`.
pub fn foreign_message(subject: &Subject, rule: &str, topic: &str, other: &str) -> String {
    format!(
        "{}.{}: rule \"{rule}\": emit: topic \"{topic}\" belongs to app \"{other}\"; an app emits its own topics only",
        subject.app, subject.form
    )
}

/// The error's hint when the topic belongs to another app.
pub fn foreign_hint(subject: &Subject, topic: &str) -> String {
    format!(
        "name the topic \"{}.{}\" or without another app's name first",
        subject.app, topic
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::tests::subject;

    #[test]
    fn topic_and_extra() {
        let d: EmitDef =
            serde_json::from_value(json!({"topic": "shop.paid", "payload": {"n": 1}})).unwrap();
        assert_eq!(plan(&d), ("shop.paid", json!({"n": 1})));
        let d: EmitDef = serde_json::from_value(json!({"topic": "shop.paid"})).unwrap();
        assert_eq!(plan(&d), ("shop.paid", json!({})));
        let d: EmitDef =
            serde_json::from_value(json!({"topic": "shop.paid", "payload": "x"})).unwrap();
        assert_eq!(plan(&d).1, json!({}));
    }

    #[test]
    fn a_topic_of_another_app_is_named() {
        assert_eq!(other_app("shop", "shop.paid"), None);
        assert_eq!(other_app("shop", "shop"), None);
        assert_eq!(other_app("shop", "payroll.paid"), Some("payroll"));
        assert_eq!(other_app("shop", "paid"), Some("paid"));
        assert_eq!(
            foreign_message(&subject(), "r", "payroll.paid", "payroll"),
            "shop.order: rule \"r\": emit: topic \"payroll.paid\" belongs to app \"payroll\"; an app emits its own topics only"
        );
        assert_eq!(
            foreign_hint(&subject(), "payroll.paid"),
            "name the topic \"shop.payroll.paid\" or without another app's name first"
        );
    }
}
