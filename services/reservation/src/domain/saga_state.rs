//! The booking saga's states and the transitions between them.
//!
//! ```text
//! HOLDING ──SeatHeld──▶ CHARGING ──charged──▶ CONFIRMING ──SeatSold──▶ CONFIRMED
//!    │                     │  │                    │
//!    │ SeatUnavailable     │  │ deadline passed,   │ SeatSaleRefused
//!    ▼                     │  │ outcome unknown    ▼
//! REJECTED        declined │  └──────────────▶ REFUNDING ──refunded──▶ RELEASING ──SeatReleased──▶ CANCELLED
//!    hold deadline passed ─┴────────────────────────────────────────────▶ RELEASING
//! ```
//! Compensation runs in reverse order of the steps: refund (undoes the charge), then release
//! (undoes the hold).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaState {
    Holding,
    Charging,
    Confirming,
    Refunding,
    Releasing,
    Confirmed,
    Cancelled,
    Rejected,
}

impl SagaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holding => "HOLDING",
            Self::Charging => "CHARGING",
            Self::Confirming => "CONFIRMING",
            Self::Refunding => "REFUNDING",
            Self::Releasing => "RELEASING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw {
            "HOLDING" => Self::Holding,
            "CHARGING" => Self::Charging,
            "CONFIRMING" => Self::Confirming,
            "REFUNDING" => Self::Refunding,
            "RELEASING" => Self::Releasing,
            "CONFIRMED" => Self::Confirmed,
            "CANCELLED" => Self::Cancelled,
            "REJECTED" => Self::Rejected,
            other => return Err(format!("{other:?} is not a saga state")),
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Confirmed | Self::Cancelled | Self::Rejected)
    }

    /// The booking status a user sees in this state.
    pub fn booking_status(self) -> &'static str {
        match self {
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Rejected => "REJECTED",
            _ => "PENDING",
        }
    }

    /// The guard: whether the state machine has an edge from `self` to `to`.
    pub fn can_go_to(self, to: Self) -> bool {
        use SagaState::*;
        matches!(
            (self, to),
            (Holding, Charging | Rejected | Releasing)
                | (Charging, Confirming | Releasing | Refunding)
                | (Confirming, Confirmed | Refunding)
                | (Refunding, Releasing)
                | (Releasing, Cancelled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SagaState; 8] = [
        SagaState::Holding,
        SagaState::Charging,
        SagaState::Confirming,
        SagaState::Refunding,
        SagaState::Releasing,
        SagaState::Confirmed,
        SagaState::Cancelled,
        SagaState::Rejected,
    ];

    #[test]
    fn a_terminal_state_goes_nowhere() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(!from.can_go_to(to), "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn a_cancelled_booking_cannot_be_resurrected_to_confirmed() {
        assert!(!SagaState::Cancelled.can_go_to(SagaState::Confirmed));
        assert!(!SagaState::Releasing.can_go_to(SagaState::Confirmed));
    }

    #[test]
    fn compensation_refunds_before_it_releases() {
        assert!(SagaState::Refunding.can_go_to(SagaState::Releasing));
        assert!(!SagaState::Releasing.can_go_to(SagaState::Refunding));
    }

    #[test]
    fn every_state_round_trips() {
        for s in ALL {
            assert_eq!(SagaState::parse(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn every_non_terminal_state_reaches_a_terminal_one() {
        for start in ALL.into_iter().filter(|s| !s.is_terminal()) {
            let mut seen = vec![start];
            let mut frontier = vec![start];
            while let Some(s) = frontier.pop() {
                for to in ALL {
                    if s.can_go_to(to) && !seen.contains(&to) {
                        seen.push(to);
                        frontier.push(to);
                    }
                }
            }
            assert!(
                seen.iter().any(|s| s.is_terminal()),
                "{start:?} is a dead end"
            );
        }
    }
}
