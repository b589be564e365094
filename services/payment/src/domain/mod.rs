//! Payment's domain types.

mod points;
mod user_id;

pub use points::Points;
pub use user_id::UserId;
