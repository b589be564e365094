//! One proxy: its settings, its listener while enabled, and the connections that listener
//! accepted. Disabling it closes the listener (new clients get ECONNREFUSED) and every live
//! connection, before the API answers, as Toxiproxy's `stop` does.

use crate::api::{self, Stream};
use crate::server::error::ApiError;
use crate::server::link::{self, LinkContext};
use crate::server::metrics::Metrics;
use crate::server::toxic::Toxics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where an empty `listen` binds. Toxiproxy binds every interface; we keep the embedded stack
/// on loopback.
const DEFAULT_LISTEN: &str = "127.0.0.1:0";

#[derive(Debug)]
pub(crate) struct ProxyHandle {
    pub name: String,
    /// As given until the proxy starts, then the bound address (port 0 resolved), as Toxiproxy.
    pub listen: String,
    pub upstream: String,
    pub toxics: Toxics,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    accept: JoinHandle<()>,
    connections: TaskTracker,
}

impl ProxyHandle {
    pub fn new(name: String, listen: String, upstream: String) -> Self {
        Self {
            name,
            listen,
            upstream,
            toxics: Toxics::default(),
            running: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.running.is_some()
    }

    pub fn to_api(&self) -> api::Proxy {
        api::Proxy {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.enabled(),
            toxics: self.toxics.list(),
        }
    }

    /// Binds the listener and starts accepting. The caller checks `enabled()` first.
    pub async fn start(&mut self, metrics: &Metrics) -> Result<(), ApiError> {
        let addr = resolve(&self.listen).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| ApiError::internal(format!("listen tcp {addr}: {err}")))?;
        let bound = listener
            .local_addr()
            .map_err(|err| ApiError::internal(format!("listen tcp {addr}: {err}")))?;
        self.listen = bound.to_string();

        let ctx = Arc::new(LinkContext {
            proxy: self.name.clone(),
            upstream: self.upstream.clone(),
            chain: self.toxics.subscribe(),
            upstream_counters: metrics.counters(
                Stream::Upstream,
                &self.name,
                &self.listen,
                &self.upstream,
            ),
            downstream_counters: metrics.counters(
                Stream::Downstream,
                &self.name,
                &self.listen,
                &self.upstream,
            ),
            next: Default::default(),
        });
        let cancel = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            ctx,
            cancel.clone(),
            connections.clone(),
        ));
        tracing::info!(proxy = %self.name, listen = %self.listen, upstream = %self.upstream,
            "started proxy");
        self.running = Some(Running {
            cancel,
            accept,
            connections,
        });
        Ok(())
    }

    /// Closes the listener, then every connection, and returns once both are gone.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.cancel.cancel();
        // The accept loop owns the listener: once it has returned the port refuses connections.
        let _ = running.accept.await;
        running.connections.close();
        running.connections.wait().await;
        tracing::info!(proxy = %self.name, "terminated proxy");
    }

    /// Toxiproxy's `Differs`: the new listen address is resolved before comparing, so
    /// `localhost:8080` equals a bound `127.0.0.1:8080` but `127.0.0.1:0` never equals a bound port.
    pub async fn differs(&self, listen: &str, upstream: &str) -> Result<bool, ApiError> {
        let listen = resolve(listen).await?.to_string();
        Ok(listen != self.listen || upstream != self.upstream)
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        // A handle dropped without `stop` (a replaced proxy whose stop was skipped, a panic)
        // must not leave its listener and connections running.
        if let Some(running) = &self.running {
            running.cancel.cancel();
        }
    }
}

/// Resolves a listen address, preferring IPv4 as Go's resolver does for `localhost`.
async fn resolve(listen: &str) -> Result<SocketAddr, ApiError> {
    let listen = if listen.is_empty() {
        DEFAULT_LISTEN
    } else {
        listen
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|err| ApiError::internal(format!("address {listen}: {err}")))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ApiError::internal(format!("address {listen}: no addresses")))
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<LinkContext>,
    cancel: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _)) => {
                connections.spawn(link::run(client, ctx.clone(), cancel.clone()));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning. Toxiproxy
                // stops accepting for good here; a pause is kinder.
                tracing::warn!(proxy = %ctx.proxy, error = %err, "error while accepting client");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}
