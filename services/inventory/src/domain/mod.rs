//! Inventory's domain types.

mod seat_status;

pub use faultline_contracts::ids::SeatId;
pub use seat_status::SeatStatus;
