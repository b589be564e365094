//! Analytics' domain types.

mod outcome;

pub use faultline_contracts::ids::UserId;
pub use outcome::Outcome;
