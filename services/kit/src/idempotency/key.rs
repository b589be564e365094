//! The idempotency key newtype and the request fingerprint.

use sha2::{Digest as _, Sha256};

/// A client-chosen key: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("the idempotency key must not be empty".into());
        }
        if raw.len() > 128 {
            return Err(format!(
                "the idempotency key must be at most 128 characters, got {}",
                raw.len()
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the idempotency key must be visible ASCII without spaces".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 over method, path and body: what "the same request" means for a key.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_is_rejected() {
        assert!(IdempotencyKey::parse("").is_err());
    }

    #[test]
    fn a_key_with_a_space_is_rejected() {
        assert!(IdempotencyKey::parse("a b").is_err());
    }

    #[test]
    fn a_key_of_129_characters_is_rejected() {
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
    }

    #[test]
    fn a_different_body_gives_a_different_fingerprint() {
        let a = fingerprint("POST", "/charges", br#"{"amount":1}"#);
        let b = fingerprint("POST", "/charges", br#"{"amount":2}"#);
        assert_ne!(a, b);
        assert_eq!(a, fingerprint("POST", "/charges", br#"{"amount":1}"#));
    }
}
