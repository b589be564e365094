//! HTTP idempotency keys: the first request with a key runs; a repeat gets the stored response.
//!
//! Improves on zero2prod's version in three ways: the request is fingerprinted (same key,
//! different body → 422 rather than a wrong replay), a repeat of a
//! request still running waits for it and replays its answer (never runs twice), and keys
//! expire.
//!
//! Protocol: [`IdempotencyStore::claim`] claims the key, the handler does its effect and
//! [`IdempotencyStore::complete`] stores the response, all in ONE transaction (see
//! [`IdempotencyStore::execute`]): claim, effect and stored response commit together or not at
//! all, so a failure leaves nothing to abandon and a crash leaves nothing to expire. A
//! concurrent repeat waits for the first request's transaction (PostgreSQL's unique-index lock,
//! SQLite's single writer) and then replays its answer. One commit per request: a claim in its
//! own transaction would cost a second one on the hot path of every booking and charge.
//! (Earlier versions claimed in a separate transaction; a bare claim they left behind still
//! answers 409 while its lease lasts and is taken over after.)

pub mod http;
mod key;
mod store;

pub use key::{IdempotencyKey, fingerprint};
pub use store::{IdempotencyStore, NextAction, SavedResponse};
