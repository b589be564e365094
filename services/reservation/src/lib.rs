//! reservation: bookings and the booking saga's orchestrator.
//!
//! - [`configuration`]: settings — payment's address and resilience policy, saga timing.
//! - [`startup`]: [`startup::Application::build`], used by `main` and the tests alike.
//! - [`domain`]: the saga's state machine and id newtypes.
//! - [`saga`]: the persisted state machine — store, orchestrator, timer.
//! - [`payment_client`]: charge and refund over HTTP through the kit's resilient stack.
//! - [`handler`]: the `inventory.events` consumer.
//! - [`routes`]: `POST /bookings`, status polling, admin views.

pub mod configuration;
pub mod domain;
pub mod handler;
pub mod payment_client;
pub mod routes;
pub mod saga;
pub mod startup;
