//! analytics: the data-platform sink — booking outcomes as a read model (CQRS).
//!
//! - [`configuration`]: its settings (the common sections only).
//! - [`startup`]: [`startup::Application::build`], used by `main` and the tests alike.
//! - [`domain`]: the user id newtype and the outcomes it counts.
//! - [`store`]: all its SQL — the counter bumps and the read-model queries.
//! - [`handler`]: the `booking.events` consumer, turning each outcome into counter bumps.
//! - [`routes`]: `/stats/…` queries, each with how far the model lags the event stream.
//!
//! Talks to Kafka only; deduplicated by the kit's inbox, so a redelivered event counts once.

pub mod configuration;
pub mod domain;
pub mod handler;
pub mod routes;
pub mod startup;
pub mod store;
