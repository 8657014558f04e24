//! Validation: compiled validators over PostgreSQL `jsonb` bytes, the errors a user sees,
//! and the bounded per-backend cache of compiled validators.
//!
//! Pure logic, no pgrx: documents arrive as jsonb container bytes (`Jsonb::root`) and are read
//! in place; errors are built only when a document is invalid.

use std::rc::Rc;

use jsonschema::json::Jsonb;
use serde::Serialize;
use serde_json::Value;

/// A compiled form schema that reads jsonb bytes in place.
pub type Validator = jsonschema::Validator<Jsonb>;

/// Why a schema did not compile.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("{message}")]
    Schema {
        pointer: String,
        keyword: String,
        message: String,
    },
}

/// One reason a document does not conform: where, which rule, and what is wrong.
///
/// `path` is where the failing value is (for `required` the object, as the crate says);
/// `field` is the JSON pointer of the field the message belongs to, where a form shows it:
/// the missing property for `required` and `dependentRequired`, the unexpected one for
/// `additionalProperties` and `unevaluatedProperties`, the badly named one for
/// `propertyNames`, and `path` itself for every other keyword.
///
/// `params` are the rule's parameters, so that a client can write (or translate) its own
/// message: `limit` (minLength, maximum ...), `missing` (required), `pattern`, `format`,
/// `expected` (type, const), `allowed` (enum), `multiple_of`, `unexpected`
/// (additionalProperties ...); `{}` for rules without any. `schema_path` is where the rule is
/// in the schema (a JSON pointer; through `$ref`s as evaluated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub path: String,
    pub field: String,
    pub keyword: String,
    pub message: String,
    pub params: Value,
    pub schema_path: String,
}

impl Issue {
    /// An issue that is about the document as a whole (not one rule of the schema).
    fn general(keyword: &str, message: String) -> Issue {
        Issue {
            path: String::new(),
            field: String::new(),
            keyword: keyword.to_owned(),
            message,
            params: Value::Object(Default::default()),
            schema_path: String::new(),
        }
    }
}

/// What a format is called in a message (`"x" is not a valid email address`).
fn format_noun(format: &str) -> String {
    match format {
        "email" | "idn-email" => "email address".into(),
        "date" => "date (YYYY-MM-DD)".into(),
        "date-time" => "date-time (RFC 3339, e.g. 2026-11-29T10:00:00Z)".into(),
        "time" => "time (RFC 3339, e.g. 10:00:00Z)".into(),
        "duration" => "duration (ISO 8601, e.g. P1DT2H)".into(),
        "hostname" | "idn-hostname" => "host name".into(),
        "ipv4" => "IPv4 address".into(),
        "ipv6" => "IPv6 address".into(),
        "uri" | "iri" => "absolute URI".into(),
        "uri-reference" | "iri-reference" => "URI reference".into(),
        "uri-template" => "URI template".into(),
        "uuid" => "UUID".into(),
        "regex" => "regular expression".into(),
        "json-pointer" => "JSON pointer".into(),
        "relative-json-pointer" => "relative JSON pointer".into(),
        other => format!("\"{other}\""),
    }
}

/// The parameters of the rule an error broke, for clients that word their own messages.
fn params_of(kind: &jsonschema::error::ValidationErrorKind) -> Value {
    use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
    use serde_json::json;
    match kind {
        Kind::Required { property } => json!({"missing": property}),
        Kind::MinLength { limit }
        | Kind::MaxLength { limit }
        | Kind::MinItems { limit }
        | Kind::MaxItems { limit }
        | Kind::MinProperties { limit }
        | Kind::MaxProperties { limit } => json!({"limit": limit}),
        Kind::Minimum { limit }
        | Kind::Maximum { limit }
        | Kind::ExclusiveMinimum { limit }
        | Kind::ExclusiveMaximum { limit } => json!({"limit": limit}),
        Kind::Pattern { pattern } => json!({"pattern": pattern}),
        Kind::Format { format } => json!({"format": format}),
        Kind::Type { kind } => {
            let names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            json!({"expected": names})
        }
        Kind::Enum { options } => json!({"allowed": options.as_ref()}),
        Kind::Constant { expected_value } => json!({"expected": expected_value.as_ref()}),
        Kind::AdditionalItems { limit } => json!({"limit": limit}),
        _ => json!({}),
    }
}

/// The message a person reads: the crate's, except where it reads badly.
fn message_of(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::Format { format } => {
            let value = error.instance().to_string();
            bounded(&format!("{value} is not a valid {}", format_noun(format)))
        }
        _ => bounded(error),
    }
}

/// The top-level field an issue is about (`/salary/0` → `salary`), JSON-pointer unescaped.
pub fn top_field(pointer: &str) -> Option<String> {
    let first = pointer.strip_prefix('/')?.split('/').next()?;
    Some(first.replace("~1", "/").replace("~0", "~"))
}

/// Leave the values of `hidden` fields out of `issues`: a write that fails on a stored value
/// the writer may not see (a hidden field kept by `update_record` and checked against a
/// tightened form) names the field and the rule, never the value.
pub fn redact(issues: &mut [Issue], hidden: &[String]) {
    for issue in issues.iter_mut() {
        let field = top_field(&issue.field).or_else(|| top_field(&issue.path));
        if let Some(field) = field.filter(|f| hidden.contains(f)) {
            issue.message = format!(
                "the stored value of \"{field}\", a field hidden from you, does not satisfy \"{}\" of the form's current version",
                issue.keyword
            );
        }
    }
}

/// Compile a stored form version: a schema, or a bundle of a schema and the registered
/// documents it needs ([`crate::bundle`]). Formats are asserted: a form that says
/// `date-time` means it. Nothing is fetched: a `$ref` outside the document resolves only
/// against the bundle's registered documents.
pub fn compile(stored: &Value) -> Result<Validator, CompileError> {
    let (schema, registered) = crate::bundle::unwrap(stored);
    compile_with(schema, registered)
}

/// The JSON Schema draft `schema` declares in `$schema` (2020-12 when it declares none), with
/// the label stored beside each form version ("2020-12", "draft-07", ...). Err: the `$schema`
/// lowcode does not know, as written.
pub fn draft(schema: &Value) -> Result<(jsonschema::Draft, &'static str), String> {
    use jsonschema::Draft;
    let Some(uri) = schema.get("$schema") else {
        return Ok((Draft::Draft202012, "2020-12"));
    };
    let Some(text) = uri.as_str() else {
        return Err(uri.to_string());
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
        _ => return Err(text.to_owned()),
    })
}

/// Compile `schema`, resolving `$ref`s outside it with `retriever` (and nothing else).
pub fn compile_with(
    schema: &Value,
    retriever: impl jsonschema::Retrieve + 'static,
) -> Result<Validator, CompileError> {
    let draft = draft(schema)
        .map(|(draft, _)| draft)
        .unwrap_or(jsonschema::Draft::Draft202012);
    jsonschema::options_for::<Jsonb>()
        .with_draft(draft)
        .should_validate_formats(true)
        .with_format("date", |text: &str| {
            builtin_format("date", text) && postgres_holds(text)
        })
        .with_format("date-time", |text: &str| {
            builtin_format("date-time", text) && postgres_holds(text)
        })
        .with_retriever(retriever)
        .build(schema)
        .map_err(|error| CompileError::Schema {
            pointer: error.instance_path().to_string(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        })
}

/// The crate's own check of a built-in format (each compiled once).
fn builtin_format(format: &'static str, text: &str) -> bool {
    use std::sync::OnceLock;
    static DATE: OnceLock<jsonschema::Validator> = OnceLock::new();
    static DATE_TIME: OnceLock<jsonschema::Validator> = OnceLock::new();
    let cell = if format == "date" { &DATE } else { &DATE_TIME };
    cell.get_or_init(|| {
        jsonschema::options()
            .should_validate_formats(true)
            .build(&serde_json::json!({ "format": format }))
            .expect("a format-only schema compiles")
    })
    .is_valid(&Value::String(text.to_owned()))
}

/// Can PostgreSQL hold this RFC 3339 date or date-time (a typed view reads it as `date` or
/// `timestamptz`)? It has no year 0, and a UTC offset at most 15:59 either way.
pub fn postgres_holds(text: &str) -> bool {
    if text.get(..4) == Some("0000") {
        return false;
    }
    if text.len() > 10 && !text.ends_with(['Z', 'z']) {
        let offset = &text[text.len().saturating_sub(6)..];
        let hours: u32 = offset.get(1..3).and_then(|h| h.parse().ok()).unwrap_or(99);
        if hours > 15 {
            return false;
        }
    }
    true
}

/// A JSON pointer one property deeper.
fn child(path: &str, property: &str) -> String {
    format!("{path}/{}", property.replace('~', "~0").replace('/', "~1"))
}

/// The issues one crate error stands for: one per field it names.
fn issues_of(error: &jsonschema::ValidationError<'_>, container: &[u8]) -> Vec<Issue> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let path = error.instance_path().to_string();
    let keyword = error.kind().keyword().to_owned();
    let schema_path = error.schema_path().to_string();
    let params = params_of(error.kind());
    let one = |field: String| {
        vec![Issue {
            path: path.clone(),
            field,
            keyword: keyword.clone(),
            message: message_of(error),
            params: params.clone(),
            schema_path: schema_path.clone(),
        }]
    };
    match error.kind() {
        Kind::Required { property } => match property.as_str() {
            Some(name) => one(child(&path, name)),
            None => one(path.clone()),
        },
        Kind::PropertyNames { error: inner } => match inner.instance().as_str() {
            Some(name) => one(child(&path, name)),
            None => one(path.clone()),
        },
        // `"additionalProperties": false` with no `properties` or `patternProperties` beside
        // it: the crate reports the first member's value as refused by a false schema, at the
        // object's path. Every member is unexpected there: name each one.
        Kind::FalseSchema
            if error
                .schema_path()
                .as_str()
                .ends_with("/additionalProperties") =>
        {
            let names = member_names(container, &path);
            if names.is_empty() {
                return one(path.clone());
            }
            keyword_split(&path, "additionalProperties", &names, &schema_path)
        }
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
            keyword_split(&path, &keyword, unexpected, &schema_path)
        }
        _ => one(path.clone()),
    }
}

/// One issue per unexpected property of the object at `path`.
fn keyword_split(
    path: &str,
    keyword: &str,
    unexpected: &[String],
    schema_path: &str,
) -> Vec<Issue> {
    let what = if keyword == "additionalProperties" {
        "Additional"
    } else {
        "Unevaluated"
    };
    unexpected
        .iter()
        .map(|name| Issue {
            path: path.to_owned(),
            field: child(path, name),
            keyword: keyword.to_owned(),
            message: bounded(&format!(
                "{what} properties are not allowed ('{name}' was unexpected)"
            )),
            params: serde_json::json!({"unexpected": name}),
            schema_path: schema_path.to_owned(),
        })
        .collect()
}

/// The member names of the object at JSON pointer `path` in the document (none if there is
/// no object there). Cold path: only for an invalid document.
fn member_names(container: &[u8], path: &str) -> Vec<String> {
    use jsonschema::json::{Array, Node, Object};
    let mut node = Jsonb::root(container);
    for segment in path.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let next = if let Some(object) = node.as_object() {
            object
                .members()
                .find(|(name, _)| name.as_ref() == segment)
                .map(|(_, value)| value)
        } else if let Some(array) = node.as_array() {
            segment
                .parse::<usize>()
                .ok()
                .and_then(|i| array.elements().nth(i))
        } else {
            None
        };
        match next {
            Some(next) => node = next,
            None => return Vec::new(),
        }
    }
    node.as_object()
        .map(|object| {
            object
                .members()
                .map(|(name, _)| name.as_ref().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// At most this many issues are listed for one document (then one saying more exist).
pub const MAX_ISSUES: usize = 100;
/// At most this many bytes of each issue's message (messages quote the failing value).
pub const MAX_MESSAGE: usize = 500;

/// Every reason `container` (jsonb bytes without the varlena header) fails `validator`, in
/// document order, bounded: the first [`MAX_ISSUES`], each message cut at [`MAX_MESSAGE`]
/// bytes, so an invalid document of any size costs bounded memory.
pub fn issues(validator: &Validator, container: &[u8]) -> Vec<Issue> {
    let mut errors = validator.iter_errors(Jsonb::root(container));
    let mut issues: Vec<Issue> = Vec::new();
    for error in errors.by_ref() {
        issues.extend(issues_of(&error, container));
        if issues.len() >= MAX_ISSUES {
            break;
        }
    }
    if issues.len() >= MAX_ISSUES && (issues.len() > MAX_ISSUES || errors.next().is_some()) {
        issues.truncate(MAX_ISSUES);
        issues.push(Issue::general(
            "more",
            format!("more issues were found; only the first {MAX_ISSUES} are listed"),
        ));
    }
    // Errors past the representation's nesting limit are reported on a side channel.
    if let Some(message) = jsonschema::json::jsonb::take_pending_error() {
        issues.push(Issue::general("depth", message));
    }
    issues
}

/// A message cut at [`MAX_MESSAGE`] bytes: formatting stops there, so a huge quoted value is
/// never written out whole.
fn bounded(message: &impl std::fmt::Display) -> String {
    struct Limited(String);
    impl std::fmt::Write for Limited {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            let room = MAX_MESSAGE - self.0.len();
            if text.len() <= room {
                self.0.push_str(text);
                return Ok(());
            }
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.0.push_str(&text[..cut]);
            Err(std::fmt::Error)
        }
    }
    let mut out = Limited(String::new());
    if std::fmt::write(&mut out, format_args!("{message}")).is_err() {
        out.0.push('…');
    }
    out.0
}

/// A compiled form schema and whether it can recurse (has any `$ref`). A recursive schema
/// makes the validator descend as deep as the document does, and at each document level it
/// may walk the whole schema again: the stack it needs grows with document depth × schema
/// size. Both are bounded before validating, so no document can overflow the backend's stack.
pub struct Compiled {
    pub validator: Validator,
    pub recursive: bool,
    /// Objects and arrays in the schema: a bound on the validator's steps per document level.
    pub nodes: usize,
    /// For a recursive schema whose composition keywords (anyOf, oneOf, allOf, if/then/else,
    /// dependentSchemas) apply several recursive branches to the same value, listing every
    /// issue costs (branches ^ document depth): the deepest document it is listed for.
    pub explain_depth: Option<usize>,
}

/// Document levels × schema nodes a recursive validation may take. Measured on the debug
/// build (the larger frames): ~1.3 KB of stack per step at worst (listing issues), so this
/// stays near 3 MB, inside the 8 MB main stack even with PostgreSQL's own 2 MB in use.
pub const STACK_STEPS: usize = 2500;

/// Work allowed for listing the issues of one document against a branching recursive schema.
const EXPLAIN_STEPS: f64 = 100_000.0;

impl Compiled {
    pub fn new(schema: &Value) -> Result<Compiled, CompileError> {
        let recursive = has_ref(schema);
        let arity = max_arity(schema);
        Ok(Compiled {
            validator: compile(schema)?,
            recursive,
            nodes: containers(schema),
            explain_depth: (recursive && arity > 1)
                .then(|| (EXPLAIN_STEPS.ln() / (arity as f64).ln()).floor() as usize),
        })
    }

    /// The deepest document this schema validates: `limit` (lowcode.max_document_depth), or
    /// less for a large recursive schema.
    pub fn depth_limit(&self, limit: usize) -> usize {
        limit.min((STACK_STEPS / self.nodes.max(1)).max(1))
    }
}

/// The most subschemas any composition keyword applies to one value.
fn max_arity(value: &Value) -> usize {
    match value {
        Value::Object(map) => {
            let here = ["anyOf", "oneOf", "allOf"]
                .iter()
                .filter_map(|k| map.get(*k).and_then(Value::as_array).map(Vec::len))
                .chain(
                    map.get("dependentSchemas")
                        .and_then(Value::as_object)
                        .map(|o| o.len()),
                )
                .chain(std::iter::once(
                    ["if", "then", "else"]
                        .iter()
                        .filter(|k| map.contains_key(**k))
                        .count(),
                ))
                .max()
                .unwrap_or(0);
            map.values().map(max_arity).max().unwrap_or(0).max(here)
        }
        Value::Array(items) => items.iter().map(max_arity).max().unwrap_or(0),
        _ => 0,
    }
}

fn containers(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(containers).sum::<usize>(),
        Value::Array(items) => 1 + items.iter().map(containers).sum::<usize>(),
        _ => 0,
    }
}

/// A document too deep to validate safely against a recursive schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the document nests deeper than {0} levels, the most this recursive schema allows (see lowcode.max_document_depth)")]
pub struct TooDeep(pub usize);

impl Compiled {
    fn guard(&self, container: &[u8], limit: usize) -> Result<(), TooDeep> {
        if !self.recursive {
            return Ok(());
        }
        let limit = self.depth_limit(limit);
        if deeper_than(container, limit) {
            Err(TooDeep(limit))
        } else {
            Ok(())
        }
    }

    /// Whether the document conforms; documents too deep for a recursive schema are refused
    /// rather than risking the stack.
    pub fn is_valid(&self, container: &[u8], limit: usize) -> Result<bool, TooDeep> {
        self.guard(container, limit)?;
        Ok(self.validator.is_valid(Jsonb::root(container)))
    }

    /// Every issue, with the same depth guard. For a branching recursive schema and a
    /// document deeper than it can be explained cheaply, one issue says so instead.
    pub fn issues(&self, container: &[u8], limit: usize) -> Result<Vec<Issue>, TooDeep> {
        self.guard(container, limit)?;
        if self.validator.is_valid(Jsonb::root(container)) {
            return Ok(Vec::new());
        }
        if let Some(depth) = self.explain_depth {
            if deeper_than(container, depth) {
                return Ok(vec![Issue::general(
                    "$ref",
                    format!(
                        "the document does not conform; it nests more than {depth} levels, too deep \
                         to list every reason against this recursive schema"
                    ),
                )]);
            }
        }
        Ok(issues(&self.validator, container))
    }
}

fn has_ref(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(key, value)| {
            matches!(key.as_str(), "$ref" | "$dynamicRef" | "$recursiveRef") || has_ref(value)
        }),
        Value::Array(items) => items.iter().any(has_ref),
        _ => false,
    }
}

/// Whether the jsonb container nests more than `limit` arrays/objects deep. Iterative (no
/// recursion of our own), reads the bytes in place, stops as soon as the limit is passed.
pub fn deeper_than(container: &[u8], limit: usize) -> bool {
    const COUNT: u32 = 0x0FFF_FFFF;
    const SCALAR: u32 = 0x1000_0000;
    const OBJECT: u32 = 0x2000_0000;
    const OFFLEN: u32 = 0x0FFF_FFFF;
    const TYPE: u32 = 0x7000_0000;
    const HAS_OFF: u32 = 0x8000_0000;
    const CONTAINER: u32 = 0x5000_0000;
    let word = |bytes: &[u8], at: usize| -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
    };
    let mut stack: Vec<(&[u8], usize)> = vec![(container, 1)];
    while let Some((bytes, depth)) = stack.pop() {
        let header = word(bytes, 0);
        if header & SCALAR != 0 {
            continue;
        }
        if depth > limit {
            return true;
        }
        let count = (header & COUNT) as usize;
        let entries = if header & OBJECT != 0 {
            count * 2
        } else {
            count
        };
        let data = 4 + 4 * entries;
        let mut end = 0usize;
        for i in 0..entries {
            let entry = word(bytes, 4 + 4 * i);
            let start = end;
            end = if entry & HAS_OFF != 0 {
                (entry & OFFLEN) as usize
            } else {
                start + (entry & OFFLEN) as usize
            };
            if entry & TYPE == CONTAINER {
                let child = data + start.next_multiple_of(4);
                stack.push((&bytes[child..data + end], depth + 1));
            }
        }
    }
    false
}

/// Compiled validators keyed by (catalog instance, form version id). Versions are immutable,
/// so an entry never goes stale; the capacity bounds the backend's memory.
pub type ValidatorCache = crate::cache::Lru<(u32, i64), Rc<Compiled>>;

#[cfg(test)]
pub mod testkit {
    //! Encode test documents the way PostgreSQL stores them.
    pub use jsonschema_value::jsonb::encode::encode;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fault_report() -> Validator {
        compile(&json!({
            "type": "object",
            "required": ["site", "severity"],
            "properties": {
                "site": {"type": "string", "minLength": 1},
                "severity": {"type": "integer", "minimum": 1, "maximum": 5},
                "reported_at": {"type": "string", "format": "date-time"},
                "photos": {"type": "array", "items": {"type": "string"}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn valid_documents_pass_in_place() {
        let doc = testkit::encode(&json!({"site": "plant-7", "severity": 5}));
        assert!(fault_report().is_valid(Jsonb::root(&doc)));
        assert!(issues(&fault_report(), &doc).is_empty());
    }

    #[test]
    fn every_issue_names_path_and_keyword() {
        let doc = testkit::encode(&json!({"severity": 9}));
        let found = issues(&fault_report(), &doc);
        let mut pairs: Vec<(&str, &str)> = found
            .iter()
            .map(|i| (i.path.as_str(), i.keyword.as_str()))
            .collect();
        pairs.sort();
        assert_eq!(pairs, vec![("", "required"), ("/severity", "maximum")]);
        assert!(found.iter().any(|i| i.message.contains("\"site\"")));
    }

    #[test]
    fn every_issue_carries_its_rules_parameters_and_place_in_the_schema() {
        let validator = compile(&json!({
            "type": "object", "required": ["machine"],
            "properties": {
                "site": {"type": "object", "properties": {"building": {"type": "string", "minLength": 2}}},
                "severity": {"maximum": 5}, "email": {"format": "email"},
                "kind": {"enum": ["a", "b"]}, "code": {"pattern": "^[A-Z]+$"}, "n": {"type": ["integer", "null"]}},
            "additionalProperties": false}))
        .unwrap();
        let doc = testkit::encode(
            &json!({"site": {"building": "x"}, "severity": 9, "email": "x",
                                          "kind": "c", "code": "a1", "n": "1", "extra": 1}),
        );
        let found = issues(&validator, &doc);
        let by_keyword = |k: &str| found.iter().find(|i| i.keyword == k).unwrap();
        assert_eq!(by_keyword("required").params, json!({"missing": "machine"}));
        assert_eq!(by_keyword("required").field, "/machine");
        assert_eq!(by_keyword("minLength").params, json!({"limit": 2}));
        assert_eq!(
            by_keyword("minLength").schema_path,
            "/properties/site/properties/building/minLength"
        );
        assert_eq!(by_keyword("maximum").params, json!({"limit": 5}));
        assert_eq!(by_keyword("format").params, json!({"format": "email"}));
        assert_eq!(
            by_keyword("format").message,
            "\"x\" is not a valid email address"
        );
        assert_eq!(by_keyword("enum").params, json!({"allowed": ["a", "b"]}));
        assert_eq!(by_keyword("pattern").params, json!({"pattern": "^[A-Z]+$"}));
        let mut expected: Vec<String> =
            serde_json::from_value(by_keyword("type").params["expected"].clone()).unwrap();
        expected.sort();
        assert_eq!(expected, vec!["integer", "null"]);
        assert_eq!(
            by_keyword("additionalProperties").params,
            json!({"unexpected": "extra"})
        );
        assert_eq!(by_keyword("additionalProperties").field, "/extra");
    }

    fn fields(schema: Value, document: Value) -> Vec<(String, String, String)> {
        let validator = compile(&schema).unwrap();
        let mut found: Vec<(String, String, String)> =
            issues(&validator, &testkit::encode(&document))
                .into_iter()
                .map(|i| (i.keyword, i.path, i.field))
                .collect();
        found.sort();
        found
    }

    fn triple(keyword: &str, path: &str, field: &str) -> (String, String, String) {
        (keyword.into(), path.into(), field.into())
    }

    #[test]
    fn each_issue_names_the_field_it_belongs_to() {
        assert_eq!(
            fields(
                json!({"properties": {"site": {"required": ["name"]}}, "required": ["site", "a/b~c"]}),
                json!({"site": {}})
            ),
            vec![
                triple("required", "", "/a~1b~0c"),
                triple("required", "/site", "/site/name"),
            ]
        );
        assert_eq!(
            fields(
                json!({"properties": {"a": {}}, "additionalProperties": false}),
                json!({"a": 1, "x": 2, "y": 3})
            ),
            vec![
                triple("additionalProperties", "", "/x"),
                triple("additionalProperties", "", "/y"),
            ]
        );
        assert_eq!(
            fields(
                json!({"properties": {"a": {}}, "unevaluatedProperties": false}),
                json!({"a": 1, "z": 2})
            ),
            vec![triple("unevaluatedProperties", "", "/z")]
        );
        assert_eq!(
            fields(
                json!({"dependentRequired": {"card": ["expiry"]}}),
                json!({"card": "4111"})
            ),
            vec![triple("required", "", "/expiry")]
        );
        assert_eq!(
            fields(
                json!({"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"card": ["expiry"]}}),
                json!({"card": "4111"})
            ),
            vec![triple("required", "", "/expiry")]
        );
        assert_eq!(
            fields(
                json!({"propertyNames": {"pattern": "^[a-z]+$"}}),
                json!({"ok": 1, "Bad": 2})
            ),
            vec![triple("propertyNames", "", "/Bad")]
        );
        assert_eq!(
            fields(
                json!({"properties": {"n": {"type": "integer"}}}),
                json!({"n": "x"})
            ),
            vec![triple("type", "/n", "/n")]
        );
    }

    #[test]
    fn split_issues_say_which_property() {
        let validator =
            compile(&json!({"properties": {"a": {}}, "additionalProperties": false})).unwrap();
        let found = issues(&validator, &testkit::encode(&json!({"x": 1, "y": 2})));
        let said: Vec<(&str, &str)> = found
            .iter()
            .map(|i| (i.field.as_str(), i.message.as_str()))
            .collect();
        assert_eq!(
            said,
            vec![
                (
                    "/x",
                    "Additional properties are not allowed ('x' was unexpected)"
                ),
                (
                    "/y",
                    "Additional properties are not allowed ('y' was unexpected)"
                )
            ]
        );
        // Without properties to compare with, each extra property fails on its own.
        // Without properties beside it the crate says "False schema does not allow 1" about
        // the first member only; every extra member is named instead.
        let closed =
            compile(&json!({"properties": {"o": {"additionalProperties": false}}})).unwrap();
        let found = issues(&closed, &testkit::encode(&json!({"o": {"x": 1, "a/b": 2}})));
        let said: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|i| (i.path.as_str(), i.field.as_str(), i.keyword.as_str()))
            .collect();
        assert_eq!(
            said,
            // jsonb's order: shorter names first.
            vec![
                ("/o", "/o/x", "additionalProperties"),
                ("/o", "/o/a~1b", "additionalProperties")
            ]
        );
    }

    #[test]
    fn formats_are_asserted() {
        let bad = testkit::encode(&json!({"site": "x", "severity": 1, "reported_at": "yesterday"}));
        let good = testkit::encode(
            &json!({"site": "x", "severity": 1, "reported_at": "2026-11-25T10:00:00Z"}),
        );
        assert!(!fault_report().is_valid(Jsonb::root(&bad)));
        assert!(fault_report().is_valid(Jsonb::root(&good)));
    }

    /// Every format 2020-12 defines, with one value it accepts and one it refuses (the same
    /// table as tests/pg_regress/sql/formats.sql and the README).
    pub const FORMATS: [(&str, &str, &str); 19] = [
        ("date", "2026-11-29", "2026-02-30"),
        ("date-time", "2026-11-29T10:00:00Z", "2026-11-29 10:00"),
        ("time", "10:00:00+01:00", "25:00:00Z"),
        ("duration", "P1Y2M3DT4H", "P1H"),
        ("email", "ana@example.com", "ana.example.com"),
        ("idn-email", "用户@例子.广告", "ana@\u{0300}example.com"),
        ("hostname", "plant-7.example.com", "-plant.example.com"),
        ("idn-hostname", "例子.广告", "\u{0300}example.com"),
        ("ipv4", "192.0.2.1", "256.0.2.1"),
        ("ipv6", "2001:db8::1", "2001:db8::1::2"),
        ("uri", "https://example.com/a?b=c", "//example.com/a"),
        ("uri-reference", "../a?b=c", "https://exa mple.com"),
        ("iri", "https://例子.广告/路径", "/路径"),
        ("iri-reference", "/路径?q=1", "https://例子 广告"),
        (
            "uri-template",
            "https://example.com/{id}",
            "https://example.com/{id",
        ),
        (
            "uuid",
            "123e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456",
        ),
        ("json-pointer", "/a/b~0c", "a/b"),
        ("relative-json-pointer", "1/a", "/a"),
        ("regex", "^[a-z]+$", "(unclosed"),
    ];

    #[test]
    fn every_format_of_the_draft_is_asserted() {
        for (format, good, bad) in FORMATS {
            let v = compile(&json!({"type": "string", "format": format})).unwrap();
            assert!(
                v.is_valid(Jsonb::root(&testkit::encode(&json!(good)))),
                "{format}: {good:?} refused"
            );
            assert!(
                !v.is_valid(Jsonb::root(&testkit::encode(&json!(bad)))),
                "{format}: {bad:?} accepted"
            );
        }
    }

    #[test]
    fn idn_labels_with_disallowed_characters_are_refused() {
        let host = compile(&json!({"format": "idn-hostname"})).unwrap();
        let email = compile(&json!({"format": "idn-email"})).unwrap();
        for bad in [
            "a\u{3000}b.example",
            "\u{0301}a.example",
            "a\u{2488}.example",
        ] {
            assert!(
                !host.is_valid(Jsonb::root(&testkit::encode(&json!(bad)))),
                "{bad:?}"
            );
            let address = format!("ana@{bad}");
            assert!(
                !email.is_valid(Jsonb::root(&testkit::encode(&json!(address)))),
                "{address:?}"
            );
        }
    }

    #[test]
    fn scalars_and_nested_arrays_are_read() {
        let v = compile(&json!({"type": "array", "items": {"type": "array"}})).unwrap();
        assert!(v.is_valid(Jsonb::root(&testkit::encode(&json!([[1], [2, 3]])))));
        assert!(!v.is_valid(Jsonb::root(&testkit::encode(&json!([1])))));
        let n = compile(&json!({"type": "integer"})).unwrap();
        assert!(n.is_valid(Jsonb::root(&testkit::encode(&json!(7)))));
        assert!(n.is_valid(Jsonb::root(&testkit::encode(&json!(7.0)))));
        assert!(!n.is_valid(Jsonb::root(&testkit::encode(&json!(7.5)))));
    }

    #[test]
    fn depth_is_measured_without_recursion() {
        let nested = |n: usize| {
            let text = "[".repeat(n) + &"]".repeat(n);
            testkit::encode(&serde_json::from_str::<Value>(&text).unwrap())
        };
        assert!(!deeper_than(&nested(3), 3));
        assert!(deeper_than(&nested(4), 3));
        let doc = testkit::encode(&json!({"a": 1, "b": {"c": [1, {"d": [[]]}]}, "e": "x"}));
        // root, b, c, {d}, d, [] = six levels
        assert!(!deeper_than(&doc, 6));
        assert!(deeper_than(&doc, 5));
        assert!(!deeper_than(&testkit::encode(&json!(7)), 0));
    }

    #[test]
    fn big_recursive_schemas_get_a_lower_depth_limit() {
        let small = Compiled::new(&json!({"items": {"$ref": "#"}})).unwrap();
        assert_eq!(small.depth_limit(1000), 1000);
        let nested = (0..60).fold(
            json!({"items": {"$ref": "#/$defs/n"}}),
            |s, _| json!({"allOf": [s]}),
        );
        let big = Compiled::new(&json!({"$defs": {"n": nested}, "$ref": "#/$defs/n"})).unwrap();
        assert!(big.depth_limit(1000) * big.nodes <= STACK_STEPS);
        assert!(big.depth_limit(1000) >= 1);
    }

    #[test]
    fn issues_are_bounded_in_number_and_size() {
        let v = compile(&json!({"items": {"type": "string"}})).unwrap();
        let doc = testkit::encode(&Value::Array((0..300).map(|i| json!(i)).collect()));
        let found = issues(&v, &doc);
        assert_eq!(found.len(), MAX_ISSUES + 1);
        assert_eq!(found.last().unwrap().keyword, "more");
        let big = compile(&json!({"type": "string"})).unwrap();
        let doc = testkit::encode(&json!(["x".repeat(100_000)]));
        let found = issues(&big, &doc);
        assert!(
            found[0].message.len() <= MAX_MESSAGE + '…'.len_utf8(),
            "{}",
            found[0].message.len()
        );
        assert!(found[0].message.ends_with('…'));
    }

    #[test]
    fn branching_recursion_is_explained_only_when_shallow() {
        let c =
            Compiled::new(&json!({"oneOf": [{"items": {"$ref": "#"}}, {"items": {"$ref": "#"}}]}))
                .unwrap();
        assert_eq!(c.explain_depth, Some(16));
        let deep = testkit::encode(
            &serde_json::from_str::<Value>(&("[".repeat(30) + &"]".repeat(30))).unwrap(),
        );
        let found = c.issues(&deep, 1000).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].keyword, "$ref");
        assert_eq!(
            Compiled::new(&json!({"items": {"$ref": "#"}}))
                .unwrap()
                .explain_depth,
            None
        );
    }

    #[test]
    fn recursive_schemas_are_recognised() {
        assert!(
            Compiled::new(&json!({"items": {"$ref": "#"}}))
                .unwrap()
                .recursive
        );
        assert!(
            !Compiled::new(&json!({"items": {"type": "string"}}))
                .unwrap()
                .recursive
        );
    }

    #[test]
    fn hidden_values_are_left_out_of_issues() {
        let issue = |field: &str, message: &str| Issue {
            path: field.into(),
            field: field.into(),
            keyword: "maximum".into(),
            message: message.into(),
            params: serde_json::json!({"limit": 5}),
            schema_path: "/properties/x/maximum".into(),
        };
        let mut issues = vec![
            issue("/salary", "187345 is greater than the maximum of 150000"),
            issue("/a~1b/0", "9 is greater than the maximum of 5"),
            issue("/name", "7 is greater than the maximum of 5"),
        ];
        redact(&mut issues, &["salary".to_string(), "a/b".to_string()]);
        assert!(
            !issues[0].message.contains("187345"),
            "{}",
            issues[0].message
        );
        assert!(issues[0].message.contains("\"salary\"") && issues[0].message.contains("maximum"));
        assert!(!issues[1].message.contains('9'), "{}", issues[1].message);
        assert_eq!(issues[2].message, "7 is greater than the maximum of 5");
    }

    #[test]
    fn dates_postgres_cannot_hold_are_not_dates() {
        assert!(postgres_holds("0001-01-01"));
        assert!(!postgres_holds("0000-01-01"));
        assert!(!postgres_holds("0000-12-31T23:59:59Z"));
        assert!(postgres_holds("9999-12-31T23:59:59-15:59"));
        assert!(!postgres_holds("2026-11-29T10:00:00+16:00"));
        assert!(!postgres_holds("2026-11-29T10:00:00-23:59"));
        assert!(postgres_holds("2026-11-29T10:00:00.123456789z"));
        assert!(builtin_format("date", "2024-02-29") && !builtin_format("date", "2023-02-29"));
    }
}
