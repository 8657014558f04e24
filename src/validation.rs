//! Validation: compiled validators over PostgreSQL `jsonb` bytes, the errors a user sees,
//! and the bounded per-backend cache of compiled validators.
//!
//! Pure logic, no pgrx: documents arrive as jsonb container bytes (`Jsonb::root`) and are read
//! in place; errors are built only when a document is invalid.

use std::collections::HashMap;
use std::hash::Hash;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub path: String,
    pub keyword: String,
    pub message: String,
}

/// Compile a (bundled, self-contained) schema. Formats are asserted: a form that says
/// `date-time` means it. The default retriever fetches nothing.
pub fn compile(schema: &Value) -> Result<Validator, CompileError> {
    let draft = crate::definitions::draft_of(schema)
        .map(|(draft, _)| draft)
        .unwrap_or(jsonschema::Draft::Draft202012);
    jsonschema::options_for::<Jsonb>()
        .with_draft(draft)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| CompileError::Schema {
            pointer: error.instance_path().to_string(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        })
}

/// Every reason `container` (jsonb bytes without the varlena header) fails `validator`,
/// in document order.
pub fn issues(validator: &Validator, container: &[u8]) -> Vec<Issue> {
    let mut issues: Vec<Issue> = validator
        .iter_errors(Jsonb::root(container))
        .map(|error| Issue {
            path: error.instance_path().to_string(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        })
        .collect();
    // Errors past the representation's nesting limit are reported on a side channel.
    if let Some(message) = jsonschema::json::jsonb::take_pending_error() {
        issues.push(Issue {
            path: String::new(),
            keyword: "depth".into(),
            message,
        });
    }
    issues
}

/// A least-recently-used map with a fixed capacity.
///
/// Eviction scans for the oldest entry: O(n), paid only on an insert into a full cache,
/// which is a schema compilation anyway (orders of magnitude dearer).
pub struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (V, u64)>,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(value, used)| {
            *used = tick;
            value.clone()
        })
    }

    pub fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                    .expect("a full cache has an entry");
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, self.tick));
    }

    /// Change the capacity, evicting the least recently used entries that no longer fit.
    pub fn resize(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
                .expect("an over-full cache has an entry");
            self.entries.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Compiled validators keyed by (catalog instance, form version id). Versions are immutable,
/// so an entry never goes stale; the capacity bounds the backend's memory.
pub type ValidatorCache = Lru<(u32, i64), Rc<Validator>>;

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
    fn formats_are_asserted() {
        let bad = testkit::encode(&json!({"site": "x", "severity": 1, "reported_at": "yesterday"}));
        let good = testkit::encode(
            &json!({"site": "x", "severity": 1, "reported_at": "2026-11-25T10:00:00Z"}),
        );
        assert!(!fault_report().is_valid(Jsonb::root(&bad)));
        assert!(fault_report().is_valid(Jsonb::root(&good)));
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
    fn lru_evicts_the_least_recently_used() {
        let mut lru: Lru<i64, i64> = Lru::new(2);
        lru.insert(1, 10);
        lru.insert(2, 20);
        assert_eq!(lru.get(&1), Some(10));
        lru.insert(3, 30);
        assert_eq!(lru.get(&2), None);
        assert_eq!(lru.get(&1), Some(10));
        assert_eq!(lru.get(&3), Some(30));
        assert_eq!(lru.len(), 2);
        lru.resize(1);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get(&3), Some(30));
    }
}
