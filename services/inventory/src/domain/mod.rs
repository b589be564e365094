//! Inventory's domain types.

mod seat_status;

pub use faultline_contracts::ids::{BookingId, SeatId};
pub use seat_status::SeatStatus;
