//! Reservation's domain types.

mod saga_state;

pub use faultline_contracts::ids::{BookingId, SagaId, SeatId, UserId};
pub use saga_state::SagaState;
