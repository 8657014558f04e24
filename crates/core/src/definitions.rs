//! Definitions: the rules an app builder's names and form schemas must follow.
//!
//! Pure logic, no pgrx: naming rules, draft detection, meta-schema checks, `$ref` bundling
//! against registered schemas (never the network), and the typed columns a form publishes.

use jsonschema::Draft;
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
    #[error("invalid schema URI \"{0}\": {1}")]
    BadUri(String, String),
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
                "use draft-04, draft-06, draft-07, 2019-09 or 2020-12, or leave \"$schema\" out for 2020-12; custom meta-schemas are not supported",
            ),
            DefinitionError::Reference(_) => Some(
                "register shared schemas with lowcode.register_schema(uri, schema); nothing is fetched from the network",
            ),
            DefinitionError::BadUri(..) => Some(
                "register schemas under an absolute URI, e.g. https://schemas.example.com/phone.json",
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

/// The JSON Schema drafts lowcode accepts, with the label stored beside each form version
/// ([`crate::validation::draft`] decides; this names the error for a definition).
pub fn draft_of(schema: &Value) -> Result<(Draft, &'static str), DefinitionError> {
    crate::validation::draft(schema).map_err(DefinitionError::UnknownDraft)
}

pub use crate::bundle::Registered;

/// A schema that passed every check, ready to store as an immutable form version.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSchema {
    /// "2020-12", "draft-07", ...
    pub draft: &'static str,
    /// The schema, with a copy of every registered document its `$ref`s reach when there
    /// are any ([`crate::bundle`]), so the stored version validates the same way forever,
    /// whatever is registered later.
    pub bundled: Value,
}

/// Check a form schema: known draft, valid against its meta-schema, every `$ref` resolvable
/// from the document itself (with its embedded resources) or the registered schemas, and
/// compilable (formats asserted).
pub fn check_schema(
    schema: &Value,
    registered: &Registered,
) -> Result<CheckedSchema, DefinitionError> {
    let label = precheck(schema)?;
    // Compile as the crate would with a registry of every registered schema, remembering
    // which of them it needed: those, and only those, go into the bundle.
    let recording = crate::bundle::Recording::new(registered.clone());
    crate::validation::compile_with(schema, recording.clone())
        .map_err(|error| schema_error(schema, &recording.used(), error))?;
    let used = recording.used();
    let bundled = crate::bundle::wrap(schema, used.clone());
    // The bundle alone must compile: a version never depends on what is registered later.
    crate::validation::compile(&bundled).map_err(|error| schema_error(schema, &used, error))?;
    Ok(CheckedSchema {
        draft: label,
        bundled,
    })
}

/// Check a schema about to be registered under `uri`: the checks of a form schema, with
/// `$ref`s resolved as they will be when a form reaches it, i.e. as the crate resolves a
/// document retrieved from `uri`: `uri` is its base URI, an `$id` in it changes the base, and
/// relative references name other registered schemas.
pub fn check_registered(
    uri: &str,
    schema: &Value,
    registered: &Registered,
) -> Result<&'static str, DefinitionError> {
    let label = precheck(schema)?;
    let parsed = jsonschema::uri::from_str(uri)
        .map_err(|error| DefinitionError::BadUri(uri.to_owned(), error.to_string()))?;
    if !uri.contains(':') {
        return Err(DefinitionError::BadUri(
            uri.to_owned(),
            "it is relative; a registered schema's URI is absolute (https://..., urn:...)".into(),
        ));
    }
    let mut with_it = registered.clone();
    with_it.0.insert(uri.to_owned(), schema.clone());
    let recording = crate::bundle::Recording::new(with_it);
    let root = serde_json::json!({ "$ref": parsed.as_str() });
    crate::validation::compile_with(&root, recording.clone()).map_err(|error| {
        let mut used = recording.used();
        used.remove(uri);
        schema_error(schema, &used, error)
    })?;
    Ok(label)
}

/// The checks every schema passes before its `$ref`s are resolved: a JSON object or
/// boolean, a known draft, no bundle marker, valid against its meta-schema.
fn precheck(schema: &Value) -> Result<&'static str, DefinitionError> {
    match schema {
        Value::Object(_) | Value::Bool(_) => {}
        Value::Null => return Err(DefinitionError::NotASchema("null")),
        Value::Array(_) => return Err(DefinitionError::NotASchema("an array")),
        Value::String(_) => return Err(DefinitionError::NotASchema("a string")),
        Value::Number(_) => return Err(DefinitionError::NotASchema("a number")),
    }
    let (_, label) = draft_of(schema)?;
    if crate::bundle::is_marked(schema) {
        return Err(DefinitionError::Invalid {
            pointer: String::new(),
            keyword: crate::bundle::MARKER.to_owned(),
            message: format!(
                "\"{}\" is lowcode's own key for stored bundles, not a schema keyword",
                crate::bundle::MARKER
            ),
        });
    }
    if let Err(error) = jsonschema::meta::validate(schema) {
        return Err(DefinitionError::Invalid {
            pointer: error.instance_path().to_string(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        });
    }
    Ok(label)
}

/// A compile error as a definition error; an unresolvable reference names the `$ref`, in
/// the schema or in a registered schema it reached (`used`).
fn schema_error(
    schema: &Value,
    used: &std::collections::BTreeMap<String, Value>,
    error: crate::validation::CompileError,
) -> DefinitionError {
    let crate::validation::CompileError::Schema {
        pointer,
        keyword,
        message,
    } = error;
    if keyword != "$ref" && !is_reference_message(&message) {
        return DefinitionError::Invalid {
            pointer,
            keyword,
            message,
        };
    }
    match reference_at(schema, used, &message) {
        Some((at, reference)) => {
            DefinitionError::Reference(format!("\"{reference}\" at \"{at}\": {message}"))
        }
        None => DefinitionError::Reference(message),
    }
}

fn is_reference_message(message: &str) -> bool {
    message.contains("is not present in a registry")
        || message.contains("does not exist")
        || message.contains("not a registered schema")
        || message.contains("No base URI")
        || message.contains("Anchor")
}

/// The first `$ref` (or `$dynamicRef`, `$recursiveRef`) whose target the message names,
/// with its location (a JSON pointer in the schema, or `uri#pointer` in a registered schema):
/// the crate's reference errors name the target only.
fn reference_at(
    schema: &Value,
    used: &std::collections::BTreeMap<String, Value>,
    message: &str,
) -> Option<(String, String)> {
    let mut found = Vec::new();
    collect_refs(schema, String::new(), &mut found);
    for (uri, document) in used {
        collect_refs(document, format!("{uri}#"), &mut found);
    }
    // The crate quotes what it could not find: a pointer, an anchor or a resource's URI.
    let quoted = message.split('\'').nth(1).unwrap_or("");
    let parts = |reference: &str| -> (String, String) {
        let (uri, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        (uri.to_owned(), fragment.to_owned())
    };
    // Exactly what the message quotes.
    let exact = |reference: &str| {
        let (uri, fragment) = parts(reference);
        !quoted.is_empty() && (fragment == quoted || uri == quoted || reference == quoted)
    };
    // A relative reference, named resolved: the quoted URI ends with it (less ./ and ../).
    let resolved = |reference: &str| {
        let (uri, _) = parts(reference);
        let tail = uri.trim_start_matches("./").trim_start_matches("../");
        !tail.is_empty() && quoted.ends_with(&format!("/{}", tail.trim_start_matches('/')))
    };
    // Anything the message names.
    let named = |reference: &str| {
        let (uri, fragment) = parts(reference);
        (!uri.is_empty() && message.contains(&uri))
            || (!fragment.is_empty() && message.contains(&fragment))
    };
    [&exact as &dyn Fn(&str) -> bool, &resolved, &named]
        .iter()
        .find_map(|test| found.iter().find(|(_, reference)| test(reference)))
        .cloned()
}

fn collect_refs(value: &Value, at: String, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (key.as_str(), child) {
                    ("$ref" | "$dynamicRef" | "$recursiveRef", Value::String(reference)) => {
                        found.push((here, reference.clone()))
                    }
                    _ => collect_refs(child, here, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
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
        // bigint only where the schema keeps every value inside bigint's range (`1e20` is an
        // integer to JSON Schema): otherwise numeric, which holds any of them.
        Some("integer") if bounded_by_bigint(property) => ColumnType::Bigint,
        Some("integer") => ColumnType::Numeric,
        Some("number") => ColumnType::Numeric,
        Some("boolean") => ColumnType::Boolean,
        _ => ColumnType::Jsonb,
    }
}

/// Does the schema bound an integer property on both sides within bigint's range?
fn bounded_by_bigint(property: &Value) -> bool {
    // 2^63: a bound written as an integer is exact (as_i64); one written otherwise must be
    // clearly inside, as f64 cannot tell 2^63 - 1 from 2^63.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let inside =
        |v: &Value| v.as_i64().is_some() || v.as_f64().is_some_and(|f| f.abs() < LIMIT / 2.0);
    let bound = |inclusive: &str, exclusive: &str| {
        property
            .get(inclusive)
            .or_else(|| property.get(exclusive))
            .filter(|v| v.is_number())
    };
    matches!(
        (bound("minimum", "exclusiveMinimum"), bound("maximum", "exclusiveMaximum")),
        (Some(low), Some(high)) if inside(low) && inside(high)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_columns_are_bigint_only_when_bounded() {
        let t = |p: Value| column_type(&p);
        assert_eq!(t(json!({"type": "integer"})), ColumnType::Numeric);
        assert_eq!(
            t(json!({"type": "integer", "minimum": 1, "maximum": 5})),
            ColumnType::Bigint
        );
        assert_eq!(
            t(json!({"type": "integer", "maximum": 5})),
            ColumnType::Numeric
        );
        assert_eq!(
            t(json!({"type": "integer", "minimum": 0, "maximum": 1e20})),
            ColumnType::Numeric
        );
        assert_eq!(
            t(json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100})),
            ColumnType::Bigint
        );
    }

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

    fn library() -> Registered {
        let mut registered = Registered::default();
        registered.0.insert(
            "https://schemas.example.com/common.json".into(),
            json!({"$defs": {
                "phone": {"type": "string", "pattern": "^[0-9+ ]+$"},
                "address": {"$anchor": "address", "type": "object", "required": ["city"]}
            }}),
        );
        registered.0.insert(
            "https://schemas.example.com/person.json".into(),
            json!({"type": "object", "properties": {"home": {"$ref": "address.json"}}}),
        );
        registered.0.insert(
            "https://schemas.example.com/address.json".into(),
            json!({"type": "object", "required": ["street"]}),
        );
        registered.0.insert(
            "https://schemas.example.com/lonely.json".into(),
            json!({"$ref": "missing.json"}),
        );
        registered
    }

    fn accepts(stored: &Value, document: Value) -> bool {
        let validator = crate::validation::compile(stored).unwrap();
        let bytes = crate::validation::testkit::encode(&document);
        validator.is_valid(jsonschema::json::Jsonb::root(&bytes))
    }

    #[test]
    fn a_pointer_into_a_registered_schema_resolves() {
        let schema = json!({"properties": {"tel": {"$ref": "https://schemas.example.com/common.json#/$defs/phone"}}});
        let checked = check_schema(&schema, &library()).unwrap();
        assert!(accepts(&checked.bundled, json!({"tel": "+86 10 1234"})));
        assert!(!accepts(&checked.bundled, json!({"tel": "call me"})));
    }

    #[test]
    fn an_anchor_in_a_registered_schema_resolves() {
        let schema = json!({"properties": {"at": {"$ref": "https://schemas.example.com/common.json#address"}}});
        let checked = check_schema(&schema, &library()).unwrap();
        assert!(accepts(&checked.bundled, json!({"at": {"city": "Lyon"}})));
        assert!(!accepts(&checked.bundled, json!({"at": {}})));
    }

    #[test]
    fn a_pointer_that_does_not_exist_is_refused_naming_the_ref() {
        let schema = json!({"properties": {"tel": {"$ref": "https://schemas.example.com/common.json#/$defs/fax"}}});
        let err = check_schema(&schema, &library()).unwrap_err();
        assert!(matches!(err, DefinitionError::Reference(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("https://schemas.example.com/common.json#/$defs/fax"),
            "{text}"
        );
        assert!(text.contains("/properties/tel/$ref"), "{text}");
    }

    #[test]
    fn relative_refs_resolve_against_the_registered_uri() {
        let schema =
            json!({"properties": {"who": {"$ref": "https://schemas.example.com/person.json"}}});
        let checked = check_schema(&schema, &library()).unwrap();
        // person.json and the address.json it names relatively are both kept, nothing else.
        let kept: Vec<&String> = checked.bundled["resources"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            kept,
            vec![
                "https://schemas.example.com/address.json",
                "https://schemas.example.com/person.json"
            ]
        );
        assert!(accepts(
            &checked.bundled,
            json!({"who": {"home": {"street": "Rue 1"}}})
        ));
        assert!(!accepts(&checked.bundled, json!({"who": {"home": {}}})));
    }

    #[test]
    fn a_registered_schema_resolves_relative_refs_against_its_uri() {
        let person = json!({"properties": {"home": {"$ref": "address.json"}}});
        assert!(
            check_registered("https://schemas.example.com/p2.json", &person, &library()).is_ok()
        );
        // The same document elsewhere has no address.json beside it.
        let err =
            check_registered("https://elsewhere.example/p.json", &person, &library()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"address.json\" at \"/properties/home/$ref\""),
            "{text}"
        );
        assert!(
            text.contains("https://elsewhere.example/address.json"),
            "{text}"
        );
        // It may point into itself, by pointer and by anchor.
        let own = json!({"$defs": {"a": {"$anchor": "a", "type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}, "y": {"$ref": "#a"}}});
        assert!(check_registered("urn:example:own", &own, &Registered::default()).is_ok());
        let missing = json!({"properties": {"x": {"$ref": "#/$defs/none"}}});
        assert!(matches!(
            check_registered("urn:example:own", &missing, &Registered::default()),
            Err(DefinitionError::Reference(_))
        ));
        assert!(matches!(
            check_registered("not a uri", &json!({}), &Registered::default()),
            Err(DefinitionError::BadUri(..))
        ));
    }

    #[test]
    fn an_id_inside_a_registered_schema_changes_its_base() {
        let mut registered = library();
        registered.0.insert(
            "https://schemas.example.com/v2/entry.json".into(),
            json!({"$id": "https://schemas.example.com/other/", "$ref": "address.json"}),
        );
        registered.0.insert(
            "https://schemas.example.com/other/address.json".into(),
            json!({"type": "string"}),
        );
        let schema = json!({"$ref": "https://schemas.example.com/v2/entry.json"});
        let checked = check_schema(&schema, &registered).unwrap();
        assert!(accepts(&checked.bundled, json!("a string")));
        assert!(!accepts(&checked.bundled, json!({"street": "x"})));
    }

    #[test]
    fn the_ref_named_is_the_one_that_failed() {
        let schema = json!({"$defs": {"a": {}}, "properties": {
            "x": {"$ref": "#/$defs/a"},
            "y": {"$ref": "#/$defs/ab"}}});
        let text = check_schema(&schema, &Registered::default())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"#/$defs/ab\" at \"/properties/y/$ref\""),
            "{text}"
        );
        let schema = json!({"$id": "https://s.example/f/x.json", "properties": {
            "x": {"$ref": "https://schemas.example.com/common.json#/$defs/phone"},
            "y": {"$ref": "../g/missing.json"}}});
        let text = check_schema(&schema, &library()).unwrap_err().to_string();
        assert!(
            text.contains("\"../g/missing.json\" at \"/properties/y/$ref\""),
            "{text}"
        );
    }

    #[test]
    fn a_relative_ref_to_an_unregistered_neighbour_is_refused_naming_the_ref() {
        let schema = json!({"$ref": "https://schemas.example.com/lonely.json"});
        let err = check_schema(&schema, &library()).unwrap_err();
        assert!(matches!(err, DefinitionError::Reference(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("https://schemas.example.com/missing.json"),
            "{text}"
        );
        assert!(
            text.contains("\"missing.json\" at \"https://schemas.example.com/lonely.json#/$ref\""),
            "{text}"
        );
    }

    #[test]
    fn embedded_resources_need_no_registry() {
        let schema = json!({
            "$id": "https://x.example/base.json",
            "$ref": "parts/a.json",
            "$defs": {
                "a": {"$id": "parts/a.json", "$ref": "./b.json"},
                "b": {"$id": "parts/b.json", "type": "number"}
            }
        });
        let checked = check_schema(&schema, &Registered::default()).unwrap();
        assert_eq!(checked.bundled, schema, "nothing registered is needed");
        assert!(accepts(&checked.bundled, json!(1.5)));
        assert!(!accepts(&checked.bundled, json!("1.5")));
    }

    #[test]
    fn dynamic_refs_across_embedded_resources() {
        let schema = json!({
            "$id": "https://x.example/strict-tree.json",
            "$dynamicAnchor": "node",
            "$ref": "tree.json",
            "unevaluatedProperties": false,
            "$defs": {
                "tree": {
                    "$id": "tree.json",
                    "$dynamicAnchor": "node",
                    "type": "object",
                    "properties": {
                        "data": true,
                        "children": {"type": "array", "items": {"$dynamicRef": "#node"}}
                    }
                }
            }
        });
        let checked = check_schema(&schema, &Registered::default()).unwrap();
        assert!(accepts(
            &checked.bundled,
            json!({"children": [{"data": 1}]})
        ));
        // The strict root is what #node means in the children too.
        assert!(!accepts(
            &checked.bundled,
            json!({"children": [{"daat": 1}]})
        ));
    }

    #[test]
    fn a_version_keeps_what_it_was_defined_with() {
        let schema = json!({"properties": {"tel": {"$ref": "https://schemas.example.com/common.json#/$defs/phone"}}});
        let checked = check_schema(&schema, &library()).unwrap();
        assert_eq!(
            checked.bundled["resources"].as_object().unwrap().len(),
            1,
            "only common.json is kept"
        );
        // Compiled from the stored bundle alone, as a backend does.
        assert!(accepts(&checked.bundled, json!({"tel": "+1 555"})));
        assert!(!accepts(&checked.bundled, json!({"tel": "x"})));
    }

    #[test]
    fn a_custom_meta_schema_is_refused_with_what_is_supported() {
        let err = check_schema(
            &json!({"$schema": "https://meta.example/mine.json", "type": "string"}),
            &Registered::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DefinitionError::UnknownDraft(_)), "{err:?}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("2020-12") && hint.contains("custom meta-schemas"),
            "{hint}"
        );
    }

    #[test]
    fn the_bundle_marker_is_not_a_schema_keyword() {
        let err = check_schema(
            &json!({"$lowcode:bundle": 1, "schema": {}, "resources": {}}),
            &Registered::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DefinitionError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn columns_are_typed_from_the_schema() {
        let schema = json!({"properties": {
            "site": {"type": "string"},
            "severity": {"type": "integer", "minimum": 1, "maximum": 5},
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
