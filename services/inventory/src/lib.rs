//! inventory: concerts, schedules and seats; holds, sells and releases seats for bookings.
//!
//! - [`configuration`]: settings, including the seed catalogue.
//! - [`startup`]: [`startup::Application::build`], used by `main` and the tests alike.
//! - [`domain`]: newtypes for seat and booking ids and seat statuses.
//! - [`store`]: the seat table's conditional updates and the seeding.
//! - [`handler`]: the `inventory.commands` consumer (HoldSeat, ConfirmSeat, ReleaseSeat).
//! - [`routes`]: browsing and admin HTTP endpoints.
//!
//! Talks to Kafka only; nobody calls it over HTTP on the booking path.

pub mod configuration;
pub mod domain;
pub mod handler;
pub mod routes;
pub mod startup;
pub mod store;
