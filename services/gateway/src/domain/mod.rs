//! The gateway's domain types: the ids it takes from tokens and paths.

mod path_id;

pub use faultline_contracts::ids::UserId;
pub use path_id::PathId;
