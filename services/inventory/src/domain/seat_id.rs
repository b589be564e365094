//! A seat id: 1 to 64 characters of letters, digits, `-`, `_` and `.`.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatId(String);

impl SeatId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a seat id"))
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
    fn an_empty_seat_id_is_rejected() {
        assert!(SeatId::parse("").is_err());
    }

    #[test]
    fn a_seat_id_with_a_slash_is_rejected() {
        assert!(SeatId::parse("a/b").is_err());
    }

    #[test]
    fn a_seeded_seat_id_is_accepted() {
        assert_eq!(
            SeatId::parse("sched-1-001").map(|s| s.0),
            Ok("sched-1-001".to_owned())
        );
    }
}
