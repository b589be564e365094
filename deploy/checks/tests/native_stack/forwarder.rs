//! A plain TCP forwarder standing in for one Toxiproxy proxy outside Docker: it listens where
//! the proxy would, connects to the proxy's upstream, and counts the bytes each way as they
//! pass (a Kafka connection stays open for the whole test, so counts taken at close would stay
//! zero). It injects no faults: the chaos runner's faults are tested elsewhere; here the point
//! is that the compose wiring routes every link through its proxy.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// One running forwarder; stops (with all its connections) when dropped.
pub struct Forwarder {
    pub name: String,
    pub listen: SocketAddr,
    /// Client → upstream bytes.
    sent: Arc<AtomicU64>,
    /// Upstream → client bytes.
    received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`.
    pub async fn start(name: &str, upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let (up, down) = (sent.clone(), received.clone());
        let task = tokio::spawn(async move {
            // Dropped with the task: aborting the forwarder aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, up, down) = (upstream.clone(), up.clone(), down.clone());
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, up),
                        pump(server_read, client_write, down)
                    );
                });
            }
        });
        Ok(Self {
            name: name.to_owned(),
            listen,
            sent,
            received,
            task,
        })
    }

    /// Bytes forwarded (client → upstream, upstream → client) so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
