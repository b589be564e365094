//! payment: point wallets, their ledger, and idempotent charges and refunds.
//!
//! - [`configuration`]: settings, including the seeded wallets.
//! - [`startup`]: [`startup::Application::build`], used by `main` and the tests alike.
//! - [`domain`]: newtypes for points and user ids.
//! - [`ledger`]: charge, refund, seed — each one transaction that moves a balance and writes
//!   its ledger entry.
//! - [`routes`]: `POST /charges`, `POST /refunds` (idempotency keys required), wallets, admin.
//!
//! An HTTP server only: it never touches Kafka.

pub mod configuration;
pub mod domain;
pub mod ledger;
pub mod routes;
pub mod startup;
