//! An id taken from a public path (a booking or schedule id) that may be forwarded to an
//! upstream as one URL segment.
//!
//! Why not the upstream's own id rules: the gateway only has to make sure the id cannot change
//! *which* upstream URL is called (no `/`, no `..`); an id that passes here but does not exist
//! upstream is the upstream's 404.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathId(String);

impl PathId {
    /// 1 to 64 ASCII letters, digits, `-`, `_` and `.`, but not `.` or `..`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && raw != "."
            && raw != "..";
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not an id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PathId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_booking_id_is_accepted() {
        let id = "01a1fcd0-0000-7000-8000-000000000000";
        assert_eq!(PathId::parse(id).map(|p| p.to_string()), Ok(id.to_owned()));
    }

    #[test]
    fn an_id_that_would_change_the_upstream_path_is_rejected() {
        for raw in ["", ".", "..", "a/b", "a?b", "a b", "%2e%2e"] {
            assert!(PathId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn an_id_of_65_characters_is_rejected() {
        assert!(PathId::parse(&"x".repeat(65)).is_err());
        assert!(PathId::parse(&"x".repeat(64)).is_ok());
    }
}
