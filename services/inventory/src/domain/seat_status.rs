//! A seat's status.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Held => "HELD",
            Self::Sold => "SOLD",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "AVAILABLE" => Ok(Self::Available),
            "HELD" => Ok(Self::Held),
            "SOLD" => Ok(Self::Sold),
            other => Err(format!("{other:?} is not a seat status")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for s in [SeatStatus::Available, SeatStatus::Held, SeatStatus::Sold] {
            assert_eq!(SeatStatus::parse(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn a_lowercase_status_is_rejected() {
        assert!(SeatStatus::parse("held").is_err());
    }
}
