//! Topic matching, the one definition: which events an outbox consumer reads and a webhook
//! receives. The SQL function `lowcode.topic_matches` (poll_events, consumer_lag) and webhook
//! delivery both call [`matches`].
//!
//! A topic list holds exact names (`fault.severe`), prefixes (`fault.*`: every topic that
//! starts with `fault.`) and `*` (every topic). No list (NULL) or an empty one: every topic.

/// Does `topic` match `topics` (None or empty: every topic)?
pub fn matches<S: AsRef<str>>(topic: &str, topics: Option<&[S]>) -> bool {
    let Some(topics) = topics else {
        return true;
    };
    topics.is_empty() || topics.iter().any(|t| pattern_matches(t.as_ref(), topic))
}

/// One entry of a topic list against a topic.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    pattern == topic
        || pattern == "*"
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            topic
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_prefix_star_and_all() {
        assert!(matches::<String>("fault.severe", None));
        assert!(matches("fault.severe", Some(&t(&[]))));
        assert!(matches("fault.severe", Some(&t(&["fault.severe"]))));
        assert!(matches("fault.severe", Some(&t(&["fault.*"]))));
        assert!(matches("fault.a.b", Some(&t(&["fault.*"]))));
        assert!(matches("anything", Some(&t(&["x", "*"]))));
        assert!(!matches("faulty.x", Some(&t(&["fault.*"]))));
        assert!(!matches("fault", Some(&t(&["fault.*"]))));
        assert!(!matches("fault.minor", Some(&t(&["fault.severe"]))));
        assert!(!matches("fault.severe", Some(&t(&["fault.sev*"]))));
    }
}
