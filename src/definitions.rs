//! Definitions: the rules an app builder's names and form schemas must follow.
//!
//! Pure logic, no pgrx: naming rules, draft detection, meta-schema checks, `$ref` bundling
//! against registered schemas (never the network), and the typed columns a form publishes.

use std::collections::HashMap;

use jsonschema::{Draft, Retrieve, Uri};
use serde_json::Value;

/// Why a definition was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefinitionError {
    #[error("invalid {kind} name \"{name}\": {rule}")]
    BadName {
        kind: String,
        name: String,
        rule: &'static str,
    },
    #[error("a form schema must be a JSON object or a boolean, not {0}")]
    NotASchema(&'static str),
    #[error("unsupported \"$schema\" \"{0}\"")]
    UnknownDraft(String),
    #[error("invalid schema at \"{pointer}\": keyword \"{keyword}\": {message}")]
    Invalid {
        pointer: String,
        keyword: String,
        message: String,
    },
    #[error("unresolvable \"$ref\": {0}")]
    Reference(String),
    #[error("property \"{0}\" cannot be a view column: {1}")]
    BadColumn(String, &'static str),
}

impl DefinitionError {
    /// The hint a user can act on, when there is an obvious one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            DefinitionError::BadName { .. } => Some(
                "names start with a lowercase letter and use only a-z, 0-9 and _, up to 63 characters",
            ),
            DefinitionError::UnknownDraft(_) => Some(
                "use draft-04, draft-06, draft-07, 2019-09 or 2020-12, or leave \"$schema\" out for 2020-12",
            ),
            DefinitionError::Reference(_) => Some(
                "register shared schemas with lowcode.register_schema(uri, schema); nothing is fetched from the network",
            ),
            DefinitionError::BadColumn(..) => Some(
                "rename the property; id, state, revision, created_at and updated_at are the view's own columns",
            ),
            _ => None,
        }
    }

    /// Where in the schema the problem is (a JSON pointer), when known.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            DefinitionError::Invalid { pointer, .. } => Some(pointer),
            _ => None,
        }
    }
}

/// The longest name PostgreSQL keeps whole (NAMEDATALEN - 1).
pub const MAX_NAME_LEN: usize = 63;

/// Names of apps, forms, states, roles and pools: lowercase SQL identifiers that never need
/// quoting, so they read the same in `lowcode.*` calls, in published views and in logs.
pub fn check_name(kind: &str, name: &str) -> Result<(), DefinitionError> {
    let bad = |rule| {
        Err(DefinitionError::BadName {
            kind: kind.to_owned(),
            name: name.to_owned(),
            rule,
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_lowercase() => return bad("it must start with a lowercase letter"),
        _ => {}
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 63 characters");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return bad("only lowercase letters, digits and _ are allowed");
    }
    if kind == "app" && (name == "lowcode" || name == "public" || name.starts_with("pg_")) {
        return bad(
            "it is reserved (lowcode, public and pg_* are PostgreSQL's or lowcode's own schemas)",
        );
    }
    Ok(())
}

/// The JSON Schema drafts lowcode accepts, with the label stored beside each form version.
pub fn draft_of(schema: &Value) -> Result<(Draft, &'static str), DefinitionError> {
    let Some(uri) = schema.get("$schema") else {
        return Ok((Draft::Draft202012, "2020-12"));
    };
    let Some(text) = uri.as_str() else {
        return Err(DefinitionError::UnknownDraft(uri.to_string()));
    };
    let normalized = text
        .trim_end_matches('#')
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    Ok(match normalized {
        "json-schema.org/draft-04/schema" => (Draft::Draft4, "draft-04"),
        "json-schema.org/draft-06/schema" => (Draft::Draft6, "draft-06"),
        "json-schema.org/draft-07/schema" => (Draft::Draft7, "draft-07"),
        "json-schema.org/draft/2019-09/schema" => (Draft::Draft201909, "2019-09"),
        "json-schema.org/draft/2020-12/schema" => (Draft::Draft202012, "2020-12"),
        _ => return Err(DefinitionError::UnknownDraft(text.to_owned())),
    })
}

/// Schemas registered with `lowcode.register_schema`, the only place a `$ref` may point
/// outside its own document.
#[derive(Default, Clone)]
pub struct Registered(pub HashMap<String, Value>);

impl Retrieve for Registered {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let wanted = uri.as_str();
        self.0
            .get(wanted)
            .or_else(|| self.0.get(wanted.trim_end_matches('#')))
            .cloned()
            .ok_or_else(|| format!("\"{wanted}\" is not a registered schema").into())
    }
}

/// A schema that passed every check, ready to store as an immutable form version.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSchema {
    /// "2020-12", "draft-07", ...
    pub draft: &'static str,
    /// The schema with every registered `$ref` target embedded, so the stored version
    /// validates the same way forever, whatever is registered later.
    pub bundled: Value,
}

/// Check a form schema: known draft, valid against its meta-schema, every `$ref` resolvable
/// from the document itself or the registered schemas, and compilable (formats asserted).
pub fn check_schema(
    schema: &Value,
    registered: &Registered,
) -> Result<CheckedSchema, DefinitionError> {
    match schema {
        Value::Object(_) | Value::Bool(_) => {}
        Value::Null => return Err(DefinitionError::NotASchema("null")),
        Value::Array(_) => return Err(DefinitionError::NotASchema("an array")),
        Value::String(_) => return Err(DefinitionError::NotASchema("a string")),
        Value::Number(_) => return Err(DefinitionError::NotASchema("a number")),
    }
    let (draft, label) = draft_of(schema)?;
    if let Err(error) = jsonschema::meta::validate(schema) {
        return Err(DefinitionError::Invalid {
            pointer: error.instance_path().to_string(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        });
    }
    let bundled = jsonschema::options()
        .with_draft(draft)
        .with_retriever(registered.clone())
        .bundle(schema)
        .map_err(|error| DefinitionError::Reference(error.to_string()))?;
    crate::validation::compile(&bundled).map_err(|error| match error {
        crate::validation::CompileError::Schema {
            pointer,
            keyword,
            message,
        } => {
            if keyword == "$ref" {
                DefinitionError::Reference(message)
            } else {
                DefinitionError::Invalid {
                    pointer,
                    keyword,
                    message,
                }
            }
        }
    })?;
    Ok(CheckedSchema {
        draft: label,
        bundled,
    })
}

/// SQL types a published view gives a form's top-level properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Bigint,
    Numeric,
    Boolean,
    Date,
    Timestamptz,
    Jsonb,
}

impl ColumnType {
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Bigint => "bigint",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamptz => "timestamptz",
            ColumnType::Jsonb => "jsonb",
        }
    }

    /// The jsonb type (`jsonb_typeof`) a value must have to be shown in this column.
    pub fn json_type(self) -> Option<&'static str> {
        match self {
            ColumnType::Text | ColumnType::Date | ColumnType::Timestamptz => Some("string"),
            ColumnType::Bigint | ColumnType::Numeric => Some("number"),
            ColumnType::Boolean => Some("boolean"),
            ColumnType::Jsonb => None,
        }
    }
}

/// Columns every published view has besides the form's fields.
pub const VIEW_COLUMNS: [&str; 5] = ["id", "state", "revision", "created_at", "updated_at"];

/// The typed columns of a form's view, in the order the schema lists its properties.
pub fn view_columns(schema: &Value) -> Result<Vec<(String, ColumnType)>, DefinitionError> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    properties
        .iter()
        .map(|(name, property)| {
            if VIEW_COLUMNS.contains(&name.as_str()) {
                return Err(DefinitionError::BadColumn(
                    name.clone(),
                    "the view has a column of that name already",
                ));
            }
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(DefinitionError::BadColumn(
                    name.clone(),
                    "column names are 1 to 63 bytes long",
                ));
            }
            Ok((name.clone(), column_type(property)))
        })
        .collect()
}

fn column_type(property: &Value) -> ColumnType {
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return if values.iter().all(Value::is_string) {
            ColumnType::Text
        } else {
            ColumnType::Jsonb
        };
    }
    let single = match property.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // ["string", "null"] is a nullable string.
        Some(Value::Array(types)) => {
            let non_null: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            (non_null.len() == 1).then(|| non_null[0])
        }
        _ => None,
    };
    match single {
        Some("string") => match property.get("format").and_then(Value::as_str) {
            Some("date") => ColumnType::Date,
            Some("date-time") => ColumnType::Timestamptz,
            _ => ColumnType::Text,
        },
        Some("integer") => ColumnType::Bigint,
        Some("number") => ColumnType::Numeric,
        Some("boolean") => ColumnType::Boolean,
        _ => ColumnType::Jsonb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_one_rule() {
        assert!(check_name("app", "inspection").is_ok());
        assert!(check_name("form", "fault_report_2").is_ok());
        for bad in ["", "Inspection", "1st", "a b", "a;drop", "a\"b", "é"] {
            assert!(check_name("form", bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name("form", &"a".repeat(63)).is_ok());
        assert!(check_name("form", &"a".repeat(64)).is_err());
        assert!(check_name("app", "pg_x").is_err());
        assert!(check_name("form", "pg_x").is_ok());
        let err = check_name("app", "My App").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid app name \"My App\": it must start with a lowercase letter"
        );
    }

    #[test]
    fn drafts_are_detected_and_unknown_ones_refused() {
        assert_eq!(draft_of(&json!({})).unwrap().1, "2020-12");
        assert_eq!(
            draft_of(&json!({"$schema": "http://json-schema.org/draft-04/schema#"}))
                .unwrap()
                .1,
            "draft-04"
        );
        assert_eq!(
            draft_of(&json!({"$schema": "https://json-schema.org/draft/2019-09/schema"}))
                .unwrap()
                .1,
            "2019-09"
        );
        assert!(matches!(
            draft_of(&json!({"$schema": "http://example.com/mine"})),
            Err(DefinitionError::UnknownDraft(_))
        ));
    }

    #[test]
    fn a_bad_keyword_is_pointed_at() {
        let err = check_schema(
            &json!({"type": "object", "properties": {"severity": {"minimum": "five"}}}),
            &Registered::default(),
        )
        .unwrap_err();
        assert_eq!(err.pointer(), Some("/properties/severity/minimum"));
        assert!(err.to_string().contains("\"type\""), "{err}");
    }

    #[test]
    fn non_schemas_are_refused() {
        assert_eq!(
            check_schema(&json!("x"), &Registered::default()),
            Err(DefinitionError::NotASchema("a string"))
        );
        assert!(check_schema(&json!(true), &Registered::default()).is_ok());
    }

    #[test]
    fn invalid_regex_is_refused() {
        let err =
            check_schema(&json!({"pattern": "(unclosed"}), &Registered::default()).unwrap_err();
        assert!(matches!(err, DefinitionError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn refs_resolve_only_against_registered_schemas() {
        let schema = json!({"properties": {"phone": {"$ref": "https://schemas.example/phone"}}});
        let err = check_schema(&schema, &Registered::default()).unwrap_err();
        assert!(matches!(err, DefinitionError::Reference(_)), "{err:?}");

        let mut registered = Registered::default();
        registered.0.insert(
            "https://schemas.example/phone".into(),
            json!({"type": "string", "pattern": "^[0-9+ ]+$"}),
        );
        let checked = check_schema(&schema, &registered).unwrap();
        // The bundle carries the registered schema, so it compiles with no registry at all.
        let validator = crate::validation::compile(&checked.bundled).unwrap();
        let good = crate::validation::testkit::encode(&json!({"phone": "+86 10 1234"}));
        let bad = crate::validation::testkit::encode(&json!({"phone": "call me"}));
        assert!(validator.is_valid(jsonschema::json::Jsonb::root(&good)));
        assert!(!validator.is_valid(jsonschema::json::Jsonb::root(&bad)));
    }

    #[test]
    fn local_refs_need_no_registry() {
        let schema = json!({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}});
        assert!(check_schema(&schema, &Registered::default()).is_ok());
        let dangling = json!({"properties": {"a": {"$ref": "#/$defs/missing"}}});
        assert!(check_schema(&dangling, &Registered::default()).is_err());
    }

    #[test]
    fn columns_are_typed_from_the_schema() {
        let schema = json!({"properties": {
            "site": {"type": "string"},
            "severity": {"type": "integer"},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "level": {"enum": ["low", "high"]},
            "photos": {"type": "array"},
            "note": {"type": ["string", "null"]},
            "any": {}
        }});
        let columns: Vec<(String, &str)> = view_columns(&schema)
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.sql()))
            .collect();
        let expect = [
            ("site", "text"),
            ("severity", "bigint"),
            ("score", "numeric"),
            ("ok", "boolean"),
            ("day", "date"),
            ("at", "timestamptz"),
            ("level", "text"),
            ("photos", "jsonb"),
            ("note", "text"),
            ("any", "jsonb"),
        ];
        let mut sorted = columns.clone();
        sorted.sort();
        let mut expected: Vec<(String, &str)> =
            expect.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        expected.sort();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn columns_that_clash_are_refused() {
        let err = view_columns(&json!({"properties": {"id": {"type": "string"}}})).unwrap_err();
        assert!(matches!(err, DefinitionError::BadColumn(..)));
    }
}
