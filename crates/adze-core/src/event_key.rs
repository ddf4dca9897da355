//! Event triggers: a workflow's trigger matches an event key exactly, or as a pattern in
//! which each `*` stands for any run of characters (`"user:*"` matches `"user:create"`).

/// Whether `key` matches the trigger `pattern`.
pub fn matches(pattern: &str, key: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == key;
    };
    let Some(mut remaining) = key.strip_prefix(first) else {
        return false;
    };
    let mut pieces: Vec<&str> = rest.split('*').collect();
    let last = pieces.pop().unwrap_or_default();
    for piece in pieces {
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn exact_keys() {
        assert!(matches("user:create", "user:create"));
        assert!(!matches("user:create", "user:created"));
        assert!(!matches("user:create", "user"));
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "anything"));
        assert!(matches("user:*", "user:create"));
        assert!(matches("user:*", "user:"));
        assert!(!matches("user:*", "order:create"));
        assert!(matches("*:create", "user:create"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-x-c-y-b"));
        assert!(!matches("ab*ba", "aba"));
    }
}
