//! What a form renderer (RJSF, JSON Forms, a native app) gets from `lowcode.form_schema`:
//! a standard JSON Schema document it takes as is, the author's property order, and the
//! form's UI schema (labels, order, widgets, help, per locale), checked here.
//!
//! Pure logic, no pgrx, tested by `cargo test`.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::bundle;

/// JSON as it was written: objects keep their keys in the author's order (jsonb does not).
enum Written {
    Object(Vec<(String, Written)>),
    Other,
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Written;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Written>()? {
                    entries.push((key, value));
                }
                Ok(Written::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
                // (No field is named inside an array but through `items`, an object.)
                while seq.next_element::<Written>()?.is_some() {}
                Ok(Written::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_unit<E>(self) -> Result<Written, E> {
                Ok(Written::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The author's property order of a schema written as `text`: for the form itself (`""`) and
/// for each object field inside it, by dotted path (`site`, `site.building`; an array's
/// items are the array's path), its property names in the order written. Reaches through
/// `properties` and `items`.
pub fn property_order(text: &str) -> Result<Value, serde_json::Error> {
    let written: Written = serde_json::from_str(text)?;
    let mut out = Map::new();
    walk(&written, "", &mut out);
    Ok(Value::Object(out))
}

fn walk(schema: &Written, at: &str, out: &mut Map<String, Value>) {
    let Written::Object(keywords) = schema else {
        return;
    };
    for (keyword, value) in keywords {
        match (keyword.as_str(), value) {
            ("properties", Written::Object(properties)) => {
                out.insert(
                    at.to_owned(),
                    Value::Array(
                        properties
                            .iter()
                            .map(|(name, _)| Value::String(name.clone()))
                            .collect(),
                    ),
                );
                for (name, sub) in properties {
                    let path = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    walk(sub, &path, out);
                }
            }
            ("items", Written::Object(_)) => walk(value, at, out),
            _ => {}
        }
    }
}

/// The `$schema` URI of a draft as lowcode names it (`lowcode.form_versions.draft`).
pub fn draft_uri(draft: &str) -> &'static str {
    match draft {
        "draft-04" => "http://json-schema.org/draft-04/schema#",
        "draft-06" => "http://json-schema.org/draft-06/schema#",
        "draft-07" => "http://json-schema.org/draft-07/schema#",
        "2019-09" => "https://json-schema.org/draft/2019-09/schema",
        _ => "https://json-schema.org/draft/2020-12/schema",
    }
}

/// A stored form version as one standard JSON Schema document: its `$schema` explicit, and
/// each registered schema it uses embedded under `$defs` (`definitions` before 2019-09) with
/// its `$id`, so that every `$ref` resolves inside the document, as the standard bundles
/// ("compound documents") and as Ajv and every renderer take them.
pub fn standard_document(stored: &Value, draft: &str) -> Value {
    let (schema, registered) = bundle::unwrap(stored);
    let mut document = match schema {
        Value::Object(map) => map.clone(),
        // A boolean schema: as an object.
        Value::Bool(false) => Map::from_iter([("not".to_owned(), Value::Object(Map::new()))]),
        _ => Map::new(),
    };
    document.insert("$schema".into(), Value::String(draft_uri(draft).into()));
    if !registered.0.is_empty() {
        let key = if matches!(draft, "draft-04" | "draft-06" | "draft-07") {
            "definitions"
        } else {
            "$defs"
        };
        let mut defs = match document.remove(key) {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        let mut uris: Vec<&String> = registered.0.keys().collect();
        uris.sort();
        for uri in uris {
            let mut resource = match &registered.0[uri] {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            let id = if draft == "draft-04" { "id" } else { "$id" };
            resource.insert(id.into(), Value::String(uri.clone()));
            // An embedded resource of another draft keeps its own `$schema`.
            let mut name = format!("lowcode:{uri}");
            while defs.contains_key(&name) {
                name.push('_');
            }
            defs.insert(name, Value::Object(resource));
        }
        document.insert(key.into(), Value::Object(defs));
    }
    Value::Object(document)
}

/// Why a UI schema was refused: where in it, and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct UiError {
    /// The JSON pointer in the UI schema.
    pub pointer: String,
    pub message: String,
}

fn ui_error(pointer: impl Into<String>, message: impl Into<String>) -> UiError {
    UiError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// The widgets a UI schema may name.
pub const WIDGETS: &[&str] = &[
    "text",
    "textarea",
    "select",
    "radio",
    "checkbox",
    "checkboxes",
    "date",
    "datetime",
    "time",
    "email",
    "url",
    "number",
    "range",
    "password",
    "hidden",
    "color",
    "file",
];

/// A text a person reads: a string, or one per locale (`{"en": "...", "zh-CN": "..."}`).
fn check_text(value: &Value, at: &str) -> Result<(), UiError> {
    match value {
        Value::String(_) => Ok(()),
        Value::Object(locales) if !locales.is_empty() => {
            for (locale, text) in locales {
                let well_formed = !locale.is_empty()
                    && locale.len() <= 35
                    && locale.split('-').all(|part| {
                        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
                    });
                if !well_formed {
                    return Err(ui_error(
                        format!("{at}/{locale}"),
                        format!("\"{locale}\" is not a language tag (en, zh-CN, pt-BR ...)"),
                    ));
                }
                if !text.is_string() {
                    return Err(ui_error(
                        format!("{at}/{locale}"),
                        "a translation must be a string",
                    ));
                }
            }
            Ok(())
        }
        _ => Err(ui_error(
            at,
            "must be a string or an object of translations ({\"en\": \"...\", \"zh-CN\": \"...\"})",
        )),
    }
}

/// A subschema with its `$ref` followed when it points into the document (`#/...`) or at a
/// registered schema the form embeds (a renderer resolves both the same way).
fn deref<'a>(schema: &'a Value, root: &'a Value, registered: &'a bundle::Registered) -> &'a Value {
    let mut at = schema;
    for _ in 0..16 {
        let Some(target) = at.get("$ref").and_then(Value::as_str) else {
            return at;
        };
        let next = if let Some(pointer) = target.strip_prefix('#') {
            root.pointer(pointer)
        } else {
            let (uri, pointer) = target.split_once('#').unwrap_or((target, ""));
            registered.lookup(uri).and_then(|(_, doc)| {
                if pointer.is_empty() {
                    Some(doc)
                } else {
                    doc.pointer(pointer)
                }
            })
        };
        match next {
            Some(next) => at = next,
            None => return at,
        }
    }
    at
}

/// Walks the object fields of a stored form version: `visit(dotted path, properties)` for the
/// form (`""`) and each object field, through `properties`, `items` and `$ref`s.
fn walk_objects(stored: &Value, visit: &mut dyn FnMut(&str, &Map<String, Value>)) {
    fn go(
        schema: &Value,
        at: &str,
        root: &Value,
        registered: &bundle::Registered,
        depth: usize,
        visit: &mut dyn FnMut(&str, &Map<String, Value>),
    ) {
        if depth > 32 {
            return;
        }
        let schema = deref(schema, root, registered);
        let Some(object) = schema.as_object() else {
            return;
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            visit(at, properties);
            for (name, sub) in properties {
                let path = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                go(sub, &path, root, registered, depth + 1, visit);
            }
        }
        if let Some(items) = object.get("items").filter(|i| i.is_object()) {
            go(items, at, root, registered, depth + 1, visit);
        }
    }
    let (schema, registered) = bundle::unwrap(stored);
    go(schema, "", schema, &registered, 0, visit);
}

/// The dotted paths of a stored form version's fields (`site`, `site.building`, `photos`),
/// as [`property_order`] names them.
pub fn field_paths(stored: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_objects(stored, &mut |at, properties| {
        for name in properties.keys() {
            out.push(if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            });
        }
    });
    out
}

/// Check a UI schema against the form's current version (as stored: `$ref`s to registered
/// schemas are followed): `title`, `description` (texts),
/// `order` (per object field, `""` for the form: names of its properties), `fields` (by
/// dotted path, each with `label`, `help`, `placeholder` (texts), `widget` (one of
/// [`WIDGETS`]) and `enum_labels` (a text per allowed value)).
pub fn check_ui(ui: &Value, stored: &Value) -> Result<(), UiError> {
    let Some(top) = ui.as_object() else {
        return Err(ui_error("", "a UI schema is an object"));
    };
    let paths = field_paths(stored);
    let order_known = property_order_of(stored);
    for (key, value) in top {
        match key.as_str() {
            "title" | "description" => check_text(value, &format!("/{key}"))?,
            "order" => {
                let Some(orders) = value.as_object() else {
                    return Err(ui_error(
                        "/order",
                        "must be an object: {\"\": [the form's fields in order], \"<object field>\": [...]}",
                    ));
                };
                for (object, names) in orders {
                    let at = format!("/order/{}", object.replace('~', "~0").replace('/', "~1"));
                    let Some(known) = order_known.get(object.as_str()) else {
                        return Err(ui_error(
                            at,
                            format!("\"{object}\" is not an object field of the form"),
                        ));
                    };
                    let Some(names) = names.as_array() else {
                        return Err(ui_error(at, "must be an array of field names"));
                    };
                    for (i, name) in names.iter().enumerate() {
                        match name.as_str() {
                            Some(n) if known.iter().any(|k| k == n) || n == "*" => {}
                            _ => {
                                return Err(ui_error(
                                    format!("{at}/{i}"),
                                    format!(
                                        "{name} is not a field of {}",
                                        if object.is_empty() {
                                            "the form".to_owned()
                                        } else {
                                            format!("\"{object}\"")
                                        }
                                    ),
                                ))
                            }
                        }
                    }
                }
            }
            "fields" => {
                let Some(fields) = value.as_object() else {
                    return Err(ui_error(
                        "/fields",
                        "must be an object of fields by dotted path",
                    ));
                };
                for (path, settings) in fields {
                    let at = format!("/fields/{}", path.replace('~', "~0").replace('/', "~1"));
                    if !paths.iter().any(|p| p == path) {
                        return Err(ui_error(
                            at,
                            format!("\"{path}\" is not a field of the form (fields are named by dotted path: site.building)"),
                        ));
                    }
                    let Some(settings) = settings.as_object() else {
                        return Err(ui_error(
                            at,
                            "must be an object (label, help, placeholder, widget, enum_labels)",
                        ));
                    };
                    for (setting, v) in settings {
                        let here = format!("{at}/{setting}");
                        match setting.as_str() {
                            "label" | "help" | "placeholder" => check_text(v, &here)?,
                            "widget" => match v.as_str() {
                                Some(w) if WIDGETS.contains(&w) => {}
                                _ => {
                                    return Err(ui_error(
                                        here,
                                        format!("{v} is not a widget ({})", WIDGETS.join(", ")),
                                    ))
                                }
                            },
                            "enum_labels" => {
                                let Some(labels) = v.as_object() else {
                                    return Err(ui_error(here, "must be an object: a text per allowed value"));
                                };
                                for (value, text) in labels {
                                    check_text(text, &format!("{here}/{value}"))?;
                                }
                            }
                            other => {
                                return Err(ui_error(
                                    here,
                                    format!("unknown field setting \"{other}\" (label, help, placeholder, widget, enum_labels)"),
                                ))
                            }
                        }
                    }
                }
            }
            other => {
                return Err(ui_error(
                    format!("/{other}"),
                    format!("unknown key \"{other}\" (title, description, order, fields)"),
                ))
            }
        }
    }
    Ok(())
}

/// The property names of the form and of each object field, by dotted path (in the stored
/// schema's order, which is jsonb's, not the author's).
pub fn property_order_of(stored: &Value) -> std::collections::HashMap<String, Vec<String>> {
    let mut out = std::collections::HashMap::new();
    walk_objects(stored, &mut |at, properties| {
        out.insert(at.to_owned(), properties.keys().cloned().collect());
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_authors_order_survives_where_jsonb_sorts() {
        let text = r#"{"type": "object", "properties": {
            "site": {"type": "object", "properties": {"building": {}, "floor": {}, "area": {}}},
            "photos": {"type": "array", "items": {"type": "object", "properties": {"url": {}, "caption": {}}}},
            "machine": {"type": "string"}, "severity": {"type": "integer"}}}"#;
        assert_eq!(
            property_order(text).unwrap(),
            json!({"": ["site", "photos", "machine", "severity"],
                   "site": ["building", "floor", "area"],
                   "photos": ["url", "caption"]})
        );
        // jsonb (serde_json's map here) would have sorted them.
        let sorted: Value = serde_json::from_str(text).unwrap();
        let keys: Vec<&String> = sorted["properties"].as_object().unwrap().keys().collect();
        assert_ne!(keys, vec!["site", "photos", "machine", "severity"]);
        assert!(property_order("{not json").is_err());
    }

    #[test]
    fn registered_refs_become_a_standard_compound_document() {
        let stored = bundle::wrap(
            &json!({"type": "object", "properties": {"who": {"$ref": "https://x.test/person"}}}),
            [(
                "https://x.test/person".to_owned(),
                json!({"type": "object", "required": ["name"]}),
            )]
            .into_iter()
            .collect(),
        );
        let doc = standard_document(&stored, "2020-12");
        assert_eq!(
            doc["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            doc["$defs"]["lowcode:https://x.test/person"]["$id"],
            "https://x.test/person"
        );
        assert_eq!(doc["properties"]["who"]["$ref"], "https://x.test/person");
        assert!(doc.get(bundle::MARKER).is_none());
        let old = standard_document(&json!({"type": "object"}), "draft-07");
        assert_eq!(
            old,
            json!({"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"})
        );
    }

    fn form() -> Value {
        json!({"type": "object", "properties": {
            "machine": {"type": "string"},
            "site": {"type": "object", "properties": {"building": {"type": "string"}}},
            "severity": {"enum": [1, 2, 3]}}})
    }

    #[test]
    fn a_ui_schema_with_labels_per_locale_order_and_widgets_passes() {
        let ui = json!({
            "title": {"en": "Fault report", "zh-CN": "故障报告"},
            "order": {"": ["machine", "site", "severity"], "site": ["building"]},
            "fields": {
                "machine": {"label": {"en": "Machine", "zh-CN": "设备"}, "widget": "text"},
                "site.building": {"label": "Building", "help": {"en": "where it is"}},
                "severity": {"widget": "radio", "enum_labels": {"1": {"en": "low", "zh-CN": "低"}}}}});
        assert_eq!(check_ui(&ui, &form()), Ok(()));
    }

    #[test]
    fn fields_behind_refs_are_fields() {
        let stored = bundle::wrap(
            &json!({"type": "object", "$defs": {"room": {"properties": {"no": {}}}},
                    "properties": {"site": {"$ref": "https://x.test/site"}, "room": {"$ref": "#/$defs/room"}}}),
            [(
                "https://x.test/site".to_owned(),
                json!({"properties": {"building": {}}}),
            )]
            .into_iter()
            .collect(),
        );
        let mut paths = field_paths(&stored);
        paths.sort();
        assert_eq!(paths, vec!["room", "room.no", "site", "site.building"]);
        assert_eq!(
            check_ui(
                &json!({"fields": {"site.building": {"label": "B"}}}),
                &stored
            ),
            Ok(())
        );
    }

    #[test]
    fn a_ui_schema_names_what_is_wrong_and_where() {
        let wrong = |ui: Value| check_ui(&ui, &form()).unwrap_err();
        assert_eq!(wrong(json!({"colour": 1})).pointer, "/colour");
        assert_eq!(
            wrong(json!({"fields": {"nope": {}}})).pointer,
            "/fields/nope"
        );
        assert_eq!(
            wrong(json!({"fields": {"machine": {"widget": "slider"}}})).pointer,
            "/fields/machine/widget"
        );
        assert_eq!(
            wrong(json!({"fields": {"machine": {"label": 3}}})).pointer,
            "/fields/machine/label"
        );
        assert_eq!(
            wrong(json!({"title": {"en us": "x"}})).pointer,
            "/title/en us"
        );
        assert_eq!(
            wrong(json!({"order": {"": ["machine", "x"]}})).pointer,
            "/order//1"
        );
        assert_eq!(
            wrong(json!({"order": {"machine": []}})).pointer,
            "/order/machine"
        );
        assert!(wrong(json!([])).message.contains("object"));
    }
}
