//! `{"notify": {"channel": ..., "payload": {...}}}`: a `pg_notify` on the channel, its payload
//! the record's event (the base payload) with the action's payload merged over it.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::object_or_none;

#[derive(Debug, Clone, Deserialize)]
pub struct NotifyDef {
    #[serde(alias = "topic")]
    pub channel: String,
    /// Keys added to (or replacing) the base payload.
    #[serde(default, deserialize_with = "object_or_none")]
    pub payload: Option<Map<String, Value>>,
}

/// The channel, and the payload to send (printed as jsonb by the apply step).
pub fn plan(def: &NotifyDef, base: Value) -> (&str, Value) {
    let mut payload = base;
    if let (Some(map), Some(extra)) = (payload.as_object_mut(), &def.payload) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    (&def.channel, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::tests::subject;
    use serde_json::json;

    #[test]
    fn the_payload_is_the_event_with_the_actions_keys_over_it() {
        let d: NotifyDef = serde_json::from_value(
            json!({"channel": "orders", "payload": {"urgent": true, "rule": "mine"}}),
        )
        .unwrap();
        let (channel, payload) = plan(&d, subject().base_payload("created", "route"));
        assert_eq!(channel, "orders");
        assert_eq!(
            payload,
            json!({"record": 7, "app": "shop", "form": "order", "state": "open",
                   "event": "created", "rule": "mine", "urgent": true})
        );
        let d: NotifyDef =
            serde_json::from_value(json!({"channel": "orders", "payload": [1]})).unwrap();
        assert!(d.payload.is_none());
        let (_, payload) = plan(&d, subject().base_payload("created", "route"));
        assert_eq!(payload, subject().base_payload("created", "route"));
    }
}
