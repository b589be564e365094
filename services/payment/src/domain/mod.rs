//! Payment's domain types.

mod points;

pub use faultline_contracts::ids::UserId;
pub use points::Points;
