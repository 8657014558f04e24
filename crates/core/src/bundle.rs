//! Bundles: a form version together with the registered schemas it needs.
//!
//! Pure logic, no pgrx. A form version must never change meaning, whatever is registered
//! later, so it keeps a copy of every registered document its `$ref`s reach. Nothing is
//! rewritten: at validation time the crate gets a retriever that serves exactly those
//! documents under the URIs they were registered with, so every URI, base URI, `$id`,
//! `$anchor`, `$dynamicAnchor` and JSON pointer resolves as it did when the form was defined,
//! which is as the crate resolves them from a registry holding the registered documents.
//!
//! The stored form (`lowcode.form_versions.bundled`) is the schema itself when it needs no
//! registered document (as every 0.1.0 version is), else
//! `{"$lowcode:bundle": 1, "schema": <the schema>, "resources": {<uri>: <document>, ...}}`.
//! A form schema with a `$lowcode:bundle` key of its own is refused, so the two never mix.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::{Retrieve, Uri};
use serde_json::{Map, Value};

/// The key that marks a stored bundle.
pub const MARKER: &str = "$lowcode:bundle";
/// The bundle format this library writes.
pub const FORMAT: u64 = 1;

/// Registered schemas by the URI they were registered under: `lowcode.schemas` when a form
/// is defined, the bundle's own copies when it is compiled.
#[derive(Default, Clone, Debug, PartialEq)]
pub struct Registered(pub HashMap<String, Value>);

impl Registered {
    /// The registered document the crate asks for with `wanted` (an absolute URI without
    /// fragment), and the URI it is registered under.
    pub fn lookup(&self, wanted: &str) -> Option<(&String, &Value)> {
        self.0
            .get_key_value(wanted)
            .or_else(|| self.0.get_key_value(wanted.trim_end_matches('#')))
            .or_else(|| {
                // The crate normalises URIs (scheme and host case, default ports, dot
                // segments): a registered URI written otherwise still answers.
                let wanted = normalized(wanted)?;
                self.0
                    .iter()
                    .find(|(uri, _)| normalized(uri).as_deref() == Some(wanted.as_str()))
            })
    }
}

fn normalized(uri: &str) -> Option<String> {
    jsonschema::uri::from_str(uri.trim_end_matches('#'))
        .ok()
        .map(|uri| uri.as_str().to_owned())
}

fn not_registered(wanted: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("\"{wanted}\" is not a registered schema").into()
}

impl Retrieve for Registered {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.lookup(uri.as_str())
            .map(|(_, schema)| schema.clone())
            .ok_or_else(|| not_registered(uri.as_str()))
    }
}

/// A retriever over the registered schemas that remembers every document it handed out:
/// what a form version must keep.
#[derive(Clone, Default)]
pub struct Recording {
    registered: Arc<Registered>,
    used: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Recording {
    pub fn new(registered: Registered) -> Self {
        Recording {
            registered: Arc::new(registered),
            used: Arc::default(),
        }
    }

    /// The documents handed out so far, by the URI they are registered under.
    pub fn used(&self) -> BTreeMap<String, Value> {
        self.used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Retrieve for Recording {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let (registered_as, schema) = self
            .registered
            .lookup(uri.as_str())
            .ok_or_else(|| not_registered(uri.as_str()))?;
        self.used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(registered_as.clone(), schema.clone());
        Ok(schema.clone())
    }
}

/// What is stored for a schema and the registered documents it needs.
pub fn wrap(schema: &Value, resources: BTreeMap<String, Value>) -> Value {
    if resources.is_empty() {
        return schema.clone();
    }
    let mut bundle = Map::new();
    bundle.insert(MARKER.into(), Value::from(FORMAT));
    bundle.insert("schema".into(), schema.clone());
    bundle.insert(
        "resources".into(),
        Value::Object(resources.into_iter().collect()),
    );
    Value::Object(bundle)
}

/// Whether a schema carries the bundle marker (a form schema must not).
pub fn is_marked(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.contains_key(MARKER))
}

/// The schema and registered documents of a stored bundle (or of a plain schema, with none).
pub fn unwrap(stored: &Value) -> (&Value, Registered) {
    match split(stored) {
        Some((schema, resources)) => (
            schema,
            Registered(
                resources
                    .iter()
                    .map(|(uri, schema)| (uri.clone(), schema.clone()))
                    .collect(),
            ),
        ),
        None => (stored, Registered::default()),
    }
}

/// The schema a stored bundle validates with (what its view's columns come from).
pub fn schema_of(stored: &Value) -> &Value {
    split(stored).map_or(stored, |(schema, _)| schema)
}

fn split(stored: &Value) -> Option<(&Value, &Map<String, Value>)> {
    let map = stored.as_object()?;
    if map.len() != 3 || map.get(MARKER)?.as_u64()? != FORMAT {
        return None;
    }
    Some((map.get("schema")?, map.get("resources")?.as_object()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_without_registered_documents_is_stored_as_it_is() {
        let schema = json!({"type": "object"});
        assert_eq!(wrap(&schema, BTreeMap::new()), schema);
        let (inner, resources) = unwrap(&schema);
        assert_eq!(inner, &schema);
        assert!(resources.0.is_empty());
    }

    #[test]
    fn a_bundle_round_trips() {
        let schema = json!({"$ref": "https://s.example/a.json"});
        let mut resources = BTreeMap::new();
        resources.insert(
            "https://s.example/a.json".to_owned(),
            json!({"type": "string"}),
        );
        let stored = wrap(&schema, resources);
        assert_eq!(stored[MARKER], json!(1));
        let (inner, registered) = unwrap(&stored);
        assert_eq!(inner, &schema);
        assert_eq!(schema_of(&stored), &schema);
        assert_eq!(
            registered.0.get("https://s.example/a.json"),
            Some(&json!({"type": "string"}))
        );
        assert!(is_marked(&stored));
        assert!(!is_marked(&schema));
    }

    #[test]
    fn only_the_exact_bundle_shape_is_unwrapped() {
        for value in [
            json!({"$lowcode:bundle": 2, "schema": {}, "resources": {}}),
            json!({"$lowcode:bundle": 1, "schema": {}, "resources": []}),
            json!({"$lowcode:bundle": 1, "schema": {}, "resources": {}, "x": 1}),
        ] {
            assert_eq!(schema_of(&value), &value);
        }
    }

    #[test]
    fn lookups_match_the_registered_uri_as_the_crate_writes_it() {
        let mut registered = Registered::default();
        registered.0.insert(
            "HTTPS://Schemas.Example.com:443/a/../b.json".into(),
            json!(true),
        );
        let (uri, _) = registered
            .lookup("https://schemas.example.com/b.json")
            .unwrap();
        assert_eq!(uri, "HTTPS://Schemas.Example.com:443/a/../b.json");
        assert!(registered
            .lookup("https://schemas.example.com/c.json")
            .is_none());
    }

    #[test]
    fn recording_remembers_what_was_handed_out() {
        let mut registered = Registered::default();
        registered
            .0
            .insert("https://s.example/a.json".into(), json!({"type": "string"}));
        registered
            .0
            .insert("https://s.example/b.json".into(), json!({"type": "number"}));
        let recording = Recording::new(registered);
        let uri = jsonschema::uri::from_str("https://s.example/a.json").unwrap();
        assert_eq!(recording.retrieve(&uri).unwrap(), json!({"type": "string"}));
        let missing = jsonschema::uri::from_str("https://s.example/z.json").unwrap();
        let error = recording.retrieve(&missing).unwrap_err().to_string();
        assert!(error.contains("is not a registered schema"), "{error}");
        assert_eq!(
            recording.used().keys().collect::<Vec<_>>(),
            vec!["https://s.example/a.json"]
        );
    }
}
