//! Identifier newtypes every service parses the same way (parse, don't validate).

/// Declares a string id newtype accepting 1 to 64 ASCII letters, digits and `extra` characters.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, extra = [$($extra:literal),*]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                let valid = !raw.is_empty()
                    && raw.len() <= 64
                    && raw.chars().all(|c| c.is_ascii_alphanumeric() $(|| c == $extra)*);
                if valid {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(format!(concat!("{:?} is not a ", $what, " (1 to 64 letters, digits", $(", ", $extra,)* ")"), raw))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A seat id, e.g. `sched-1-001`.
    SeatId, "seat id", extra = ['-', '_', '.']
);
string_id!(
    /// A user id, e.g. `user-1`.
    UserId, "user id", extra = ['-', '_']
);
string_id!(
    /// A booking id: reservation makes UUIDs (`01a1fcd0-…`); tests use ids like `b-1`.
    BookingId, "booking id", extra = ['-', '_', '.']
);
string_id!(
    /// A saga id: reservation makes UUIDs; tests use ids like `saga-b-1`.
    SagaId, "saga id", extra = ['-', '_', '.']
);
string_id!(
    /// A concert id, e.g. `concert-1`.
    ConcertId, "concert id", extra = ['-', '_', '.']
);

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
            SeatId::parse("sched-1-001").map(|s| s.to_string()),
            Ok("sched-1-001".to_owned())
        );
    }

    #[test]
    fn a_uuid_is_a_booking_and_a_saga_id() {
        let uuid = "01a1fcd0-0000-7000-8000-000000000000";
        assert_eq!(
            BookingId::parse(uuid).map(|b| b.to_string()),
            Ok(uuid.to_owned())
        );
        assert_eq!(
            SagaId::parse(uuid).map(|s| s.to_string()),
            Ok(uuid.to_owned())
        );
    }

    #[test]
    fn a_booking_id_with_a_quote_is_rejected() {
        let err = BookingId::parse("b'1").unwrap_err();
        assert!(err.contains("is not a booking id"), "{err}");
    }

    #[test]
    fn a_seeded_concert_id_is_accepted() {
        assert!(ConcertId::parse("concert-1").is_ok());
        assert!(ConcertId::parse("").is_err());
    }

    #[test]
    fn a_user_id_with_spaces_is_rejected() {
        let err = UserId::parse("user 1").unwrap_err();
        assert!(err.contains("is not a user id"), "{err}");
    }

    #[test]
    fn a_user_id_of_65_characters_is_rejected() {
        assert!(UserId::parse(&"u".repeat(65)).is_err());
        assert!(UserId::parse(&"u".repeat(64)).is_ok());
    }
}
