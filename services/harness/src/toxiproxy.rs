//! The embedded Toxiproxy (`faultline-toxiproxy`) for tests: its server on a free port of
//! 127.0.0.1, in-process on the caller's runtime, and a client to add proxies and toxics with.
//!
//! Tests break a link between two services with the same proxy and toxics the chaos runner uses
//! (the launcher runs this server as a child process instead, `faultline service toxiproxy`).

use anyhow::Context as _;
use faultline_toxiproxy::{Client, Proxy, ProxyConfig};
use tokio::{net::TcpListener, sync::oneshot};

/// A running server; stopped (every proxy and proxied connection closed) when dropped.
#[derive(Debug)]
pub struct EmbeddedToxiproxy {
    client: Client,
    stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedToxiproxy {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Toxiproxy API")?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _either_way = stopped.await;
            };
            if let Err(error) = faultline_toxiproxy::serve(listener, shutdown).await {
                tracing::error!(%error, "the embedded Toxiproxy stopped");
            }
        });
        Ok(Self {
            client: Client::new(format!("http://{address}"))?,
            stop: Some(stop),
        })
    }

    /// The API client (proxies, toxics, metrics).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A new enabled proxy `name` to `upstream` (`host:port`), listening on a free port; its
    /// `listen` is that `127.0.0.1:port`.
    pub async fn proxy(&self, name: &str, upstream: &str) -> anyhow::Result<Proxy> {
        self.client
            .create_proxy(&ProxyConfig::new(name, "127.0.0.1:0", upstream))
            .await
            .with_context(|| format!("creating proxy {name} to {upstream}"))
    }
}

impl Drop for EmbeddedToxiproxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _already_stopped = stop.send(());
        }
    }
}
