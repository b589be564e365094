//! A user id: 1 to 64 characters of letters, digits, `-` and `_`.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a user id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_user_id_is_rejected() {
        assert!(UserId::parse("").is_err());
    }

    #[test]
    fn a_user_id_with_spaces_is_rejected() {
        assert!(UserId::parse("user 1").is_err());
    }
}
