//! A booking's outcome, as counted by the read model: one counter column per outcome.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Cancelled,
    Rejected,
}

impl Outcome {
    /// The counter column of this outcome in `user_stats` and `concert_stats` (table and column
    /// names come from here only, never from input).
    pub fn column(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_column() {
        let columns =
            [Outcome::Confirmed, Outcome::Cancelled, Outcome::Rejected].map(Outcome::column);
        assert_eq!(columns, ["confirmed", "cancelled", "rejected"]);
    }
}
