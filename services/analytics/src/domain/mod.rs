//! Analytics' domain types.

mod outcome;

pub use faultline_contracts::ids::{ConcertId, UserId};
pub use outcome::Outcome;
