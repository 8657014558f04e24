//! `{"transition": "<state>"}`: the record moves to the state (an UPDATE of `state`, which
//! runs the records triggers again, nested); nothing is written when it is there already.

/// The state to write, or None when the record is in it already.
pub fn plan<'a>(current: &str, to: &'a str) -> Option<&'a str> {
    (current != to).then_some(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_when_the_state_changes() {
        assert_eq!(plan("open", "done"), Some("done"));
        assert_eq!(plan("done", "done"), None);
    }
}
