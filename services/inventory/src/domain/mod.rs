//! Inventory's domain types.

mod seat_id;
mod seat_status;

pub use seat_id::SeatId;
pub use seat_status::SeatStatus;
