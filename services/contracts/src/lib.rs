//! Wire contracts shared by every producer and consumer in Faultline.
//!
//! - [`messages`]: Kafka commands and events. Every type names its topic, its event type, its
//!   schema version and the aggregate id used as the Kafka key (so one aggregate keeps its order).
//! - [`http`]: request and response bodies of the services' HTTP APIs.
//! - [`ids`]: id newtypes (seat, user, booking, saga, concert) every service parses the same way.
//! - [`topics`]: the topic names, created up front by the launcher and the tests.
//! - [`topology`]: the services, topics and network links as types.
//!
//! Invariant: a producer and its consumers depend on the same type here; nothing on the wire is
//! written by hand elsewhere.

pub mod http;
pub mod ids;
pub mod messages;
pub mod topics;
pub mod topology;

pub use messages::{ContractError, Message};
