//! Test plumbing: the embedded server on port 0, the optional real Toxiproxy, echo upstreams
//! and socket helpers. The contract checks themselves live in `contract.rs`.

use faultline_toxiproxy::{Client, Proxy, ProxyConfig};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

/// Set to a Toxiproxy 2.12 API URL (started with `-proxy-metrics`, on this machine, used by
/// nothing else: `/reset` touches every proxy on it) to run the contract against it too.
pub const REAL_URL_VAR: &str = "FAULTLINE_TOXIPROXY_URL";

/// How long an expected event (a close, a reset, a counter) may take before the check fails.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(5);

/// Runs against the real server share its state, so they take turns.
pub static REAL_SERVER: Mutex<()> = Mutex::const_new(());

/// A server under test, reached only through the client, with names unique to one test run so
/// runs against a shared real server cannot collide.
pub struct Target {
    pub label: &'static str,
    pub client: Client,
    prefix: String,
}

impl Target {
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// Creates an enabled proxy on a port the server picks.
    pub async fn proxy(&self, suffix: &str, upstream: SocketAddr) -> Proxy {
        self.client
            .create_proxy(&ProxyConfig::new(
                self.name(suffix),
                "127.0.0.1:0",
                upstream.to_string(),
            ))
            .await
            .expect("create proxy")
    }

    /// Deletes every proxy this run created (real server only; the embedded one just stops).
    pub async fn clean_up(&self) {
        let Ok(proxies) = self.client.proxies().await else {
            return;
        };
        for name in proxies.keys().filter(|name| name.starts_with(&self.prefix)) {
            let _ = self.client.delete_proxy(name).await;
        }
    }
}

fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("fl-{test}-{}-{nanos}", std::process::id())
}

pub struct Embedded {
    pub target: Target,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    pub async fn start(test: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind API");
        let address = listener.local_addr().expect("API address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(faultline_toxiproxy::serve(listener, async move {
            let _ = stopped.await;
        }));
        let client = Client::new(format!("http://{address}")).expect("client");
        Self {
            target: Target {
                label: "embedded",
                client,
                prefix: prefix(test),
            },
            stop,
            server,
        }
    }

    /// Stops the server; it must have closed every proxy and connection within the deadline.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(EVENT_DEADLINE, self.server)
            .await
            .expect("the server shuts down within the deadline")
            .expect("server task")
            .expect("server ended cleanly");
    }
}

/// The real Toxiproxy named by `FAULTLINE_TOXIPROXY_URL`, if set.
pub fn real(test: &str) -> Option<Target> {
    let url = std::env::var(REAL_URL_VAR).ok()?;
    let client = Client::new(&url).expect("FAULTLINE_TOXIPROXY_URL is not a valid URL");
    Some(Target {
        label: "real Toxiproxy",
        client,
        prefix: prefix(test),
    })
}

/// A TCP echo server counting the bytes it received.
pub struct Echo {
    pub address: SocketAddr,
    pub received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let address = listener.local_addr().expect("echo address");
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0; 16 * 1024];
                    loop {
                        let n = match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if socket.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            address,
            received,
            task,
        }
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn listen_address(proxy: &Proxy) -> SocketAddr {
    proxy.listen.parse().expect("listen is host:port")
}

pub async fn connect(proxy: &Proxy) -> TcpStream {
    let stream = TcpStream::connect(listen_address(proxy))
        .await
        .expect("connect through proxy");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Sends `payload` and reads the same number of bytes back; the time that took.
pub async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Duration {
    let started = Instant::now();
    stream.write_all(payload).await.expect("write");
    let mut back = vec![0; payload.len()];
    tokio::time::timeout(EVENT_DEADLINE, stream.read_exact(&mut back))
        .await
        .expect("echo within the deadline")
        .expect("read echo");
    assert_eq!(back, payload, "the echo came back altered");
    started.elapsed()
}

/// Reads until the peer closes; the bytes read before, and how it closed.
pub async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut data = Vec::new();
    let mut buffer = [0; 4096];
    let outcome = tokio::time::timeout(EVENT_DEADLINE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(()),
                Ok(n) => data.extend_from_slice(&buffer[..n]),
                Err(err) => return Err(err),
            }
        }
    })
    .await
    .expect("the connection closes within the deadline");
    (data, outcome)
}

/// Asserts nothing arrives on `stream` for `quiet` (absence cannot be awaited as an event).
pub async fn assert_silent(stream: &mut TcpStream, quiet: Duration) {
    let mut buffer = [0; 64];
    if let Ok(read) = tokio::time::timeout(quiet, stream.read(&mut buffer)).await {
        panic!("expected silence, got {read:?}");
    }
}
