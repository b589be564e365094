//! An embedded server with Toxiproxy 2.12's HTTP API and toxic semantics, so the stack and the
//! chaos runner can use Toxiproxy's client code without the Go binary.
//!
//! Why the proxying is ours and not the `noxious` crate (1.0.4, "a Rust port of Toxiproxy"):
//! it builds here, but it lacks what this server must give:
//! - no `reset_peer` toxic, and its links wrap the sockets in `FramedRead`/`FramedWrite` behind
//!   its own socket traits, so there is no `TcpStream` left to set `SO_LINGER` 0 on for a RST;
//! - no byte counters, so nothing to serve `/metrics` from;
//! - removing a `timeout` toxic does not close the connection: every toxic event disbands and
//!   re-creates all links of the proxy without it, so the black-holed connection lives on,
//!   where Toxiproxy closes it (the duplicate-delivery scenarios depend on that close);
//! - toxic changes re-create each live link in turn inside the event handler, so one change
//!   waits on every connection (the hang we must avoid);
//! - it would add tokio-util 0.6, rand 0.8, async-trait, bmrng and mockall_double to the tree.
//!
//! Map:
//! - `routes/`: the HTTP API (axum), one file per URL family.
//! - `registry`: the proxy set and every control operation, under one lock.
//! - `proxy`: one proxy's listener and connections; enable/disable.
//! - `toxic`: toxic parsing and validation, and the chain links read.
//! - `link`: one connection, both directions, FIN or RST at the end.
//! - `pipeline`: one direction through the toxics: the toxic semantics.
//! - `metrics`: byte counters in Toxiproxy's Prometheus names.
//! - `body`, `error`: request parsing and error answers as Toxiproxy words them.

mod body;
mod error;
mod link;
mod metrics;
mod pipeline;
mod proxy;
mod registry;
mod routes;
mod toxic;

use anyhow::Context as _;
use registry::Registry;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use routes::TOXIPROXY_VERSION;

/// Serves the API on `listener` until `shutdown` completes, then closes every proxy listener and
/// every proxied connection before returning.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let registry = Arc::new(Registry::default());
    let address = listener.local_addr().ok();
    tracing::info!(
        ?address,
        version = TOXIPROXY_VERSION,
        "starting Toxiproxy API server"
    );
    let served = axum::serve(listener, routes::router(registry.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .context("Toxiproxy API server failed");
    registry.shutdown().await;
    served
}
