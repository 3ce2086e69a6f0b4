//! Prefixed identifiers (`cli_`, `veh_`, `job_`, `prd_`, …) so a log line says what it is.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new random id such as `doc_3k9x0q2m7c1v5b8n`: the prefix, `_`, 16 base-36 characters (≈82 bits).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..16 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// Whether `id` has the given prefix and a well-formed body; use it to reject garbage early.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            !body.is_empty()
                && body.len() <= 64
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_prefixed_and_valid() {
        let a = new_id("doc");
        let b = new_id("doc");
        assert!(a.starts_with("doc_") && a.len() == 20);
        assert_ne!(a, b);
        assert!(is_valid("doc", &a));
        assert!(!is_valid("cli", &a));
        assert!(!is_valid("doc", "doc_"));
        assert!(!is_valid("doc", "doc_a b"));
    }
}
