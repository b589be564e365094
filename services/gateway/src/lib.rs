//! gateway: the only public API of Faultline.
//!
//! - [`configuration`]: settings — upstream addresses, token secret, rate limit.
//! - [`startup`]: [`startup::Application::build`], used by `main` and the tests alike.
//! - [`domain`]: the ids it handles — the user id (from faultline-contracts) and [`domain::PathId`],
//!   a booking or schedule id safe to forward as one upstream URL segment.
//! - [`auth`]: HMAC-signed bearer tokens (JWT, HS256) and the authenticated-user extractor,
//!   which also applies the per-user rate limit.
//! - [`users`]: the user directory — a token's subject must be a user (a wallet at payment).
//! - [`upstream`]: calls to reservation, inventory and payment through the kit's resilient
//!   client; an open circuit is a fast 503 with `Retry-After`.
//! - [`routes`]: bookings (idempotent create, status), `/me`, browsing, the OpenAPI document
//!   (served and checked by the kit's `openapi` module, like every service's).
//!
//! Writes go to reservation only; inventory and payment are read for browsing and the wallet.
//!
//! No `store` module, unlike the other services: the gateway keeps no state of its own (no
//! database; the only memory is the per-process user cache and rate-limit buckets), so it has
//! no SQL to hold.

pub mod auth;
pub mod configuration;
pub mod domain;
pub mod routes;
pub mod startup;
pub mod upstream;
pub mod users;
