//! The gateway in-process in front of in-process reservation, inventory and payment: what its
//! own code decides (who gets in, what browsing shows). The booking flow end to end is in
//! chaos/faultline/tests/e2e/gateway.rs.

mod auth;
mod catalogue;
mod helpers;
