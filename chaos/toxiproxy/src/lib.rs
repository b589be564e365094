//! Toxiproxy for the Faultline stack: its HTTP API and toxic semantics as an embedded server, and
//! the async client the chaos runner drives it (or a real Toxiproxy 2.12) with.
//!
//! - `api`: the wire types both sides share (proxies, toxics, error bodies, metric names).
//! - `server`: `serve(listener, shutdown)`, a Toxiproxy-compatible server on tokio.
//! - `client`: `Client`, status-checked, time-bounded and recordable control calls.
//!
//! Invariant: the client only assumes what real Toxiproxy documents, so anything that passes
//! against the embedded server passes against the real one (`tests/contract.rs` runs the same
//! checks against both when `FAULTLINE_TOXIPROXY_URL` is set).

pub mod api;
pub mod client;
pub mod server;

pub use api::{ApiErrorBody, Proxy, ProxyConfig, ProxyUpdate, Stream, Toxic, ToxicUpdate};
pub use client::{Client, Error, Exchange, ProxyBytes, ProxyMetrics, Recorder};
pub use server::serve;
