//! Prefixed identifiers (`cli_`, `veh_`, `job_`, `prd_`, …) so a log line says what it is.

use base64::Engine;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

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

/// A new bearer secret (sign-in links, sessions, status links): 32 random bytes, base64url, 43
/// characters. Store only [`secret_hash`] of it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret as 64 hex digits: what the database keeps instead of the secret.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` looks like a secret from [`new_secret`] (cheap rejection before any lookup).
pub fn is_secret_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_random_url_safe_and_hashed() {
        let a = new_secret();
        assert!(is_secret_shaped(&a) && a != new_secret());
        assert_eq!(secret_hash(&a).len(), 64);
        assert_eq!(secret_hash("abc"), secret_hash("abc"));
        assert!(!is_secret_shaped("short"));
    }

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
