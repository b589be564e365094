//! HTTP idempotency keys: the first request with a key runs; a repeat gets the stored response.
//!
//! Improves on zero2prod's version in three ways: the request is fingerprinted (same key,
//! different body → 422 rather than a wrong replay), an in-flight first request is visible
//! (a concurrent repeat gets 409 instead of waiting on a row lock), and keys expire.
//!
//! Protocol: [`IdempotencyStore::begin`] claims the key in its own short transaction (so the
//! claim is visible to concurrent requests at once). On `Start`, the handler does its effect in
//! its transaction and calls [`IdempotencyStore::complete`] in that same transaction, so the
//! effect and the stored response commit together. If it fails without an effect it calls
//! [`IdempotencyStore::abandon`]; if the process dies, the claim's lease expires and a retry
//! takes over.

pub mod http;
mod key;
mod store;

pub use key::{IdempotencyKey, fingerprint};
pub use store::{IdempotencyStore, NextAction, SavedResponse};
