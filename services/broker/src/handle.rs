//! [`EmbeddedBroker`]: a broker on an ephemeral local port, for tests and the embedded mode
//! (bind, advertise the bound port, serve until stopped).

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::BrokerConfig;
use crate::server::serve;

/// A running broker on `127.0.0.1:<ephemeral>`; dropping it stops the broker too.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl EmbeddedBroker {
    /// Binds `127.0.0.1:0`, creates `topics`, and serves on the current tokio runtime.
    pub async fn start(topics: Vec<(String, i32)>, default_partitions: i32) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let config = BrokerConfig {
            advertised_host: addr.ip().to_string(),
            advertised_port: addr.port(),
            node_id: 1,
            default_partitions,
            topics,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _either_way = stopped.await;
        };
        let task = tokio::spawn(serve(listener, config, shutdown));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// Stops serving and waits until every connection is closed.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _already_stopped = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _already_stopped = stop.send(());
        }
    }
}
