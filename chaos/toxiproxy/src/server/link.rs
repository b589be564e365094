//! One proxied connection: dial the upstream, run both directions' pipelines, close (or reset)
//! both sockets together.
//!
//! As in Toxiproxy, when either direction ends the whole connection closes: Toxiproxy closes
//! the destination socket outright, which fails the reader of the other direction, so there is
//! no TCP half-close through a proxy.
//!
//! One extension for the embedded stack's replicas: an upstream may list several addresses
//! separated by commas. It stands in for a DNS name with one address per replica, as Docker's
//! DNS gives Toxiproxy in compose: each new connection starts at the next address in turn and,
//! like Go's dialer trying a name's addresses, falls back to the following ones when one refuses.

use crate::api::Stream;
use crate::server::metrics::Counters;
use crate::server::pipeline::{Chunk, Ending, Pipeline};
use crate::server::toxic::Chain;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// io.Copy's buffer size in Toxiproxy.
const READ_BUFFER: usize = 32 * 1024;
/// Chunks queued per direction while toxics hold data back. With `READ_BUFFER` this bounds a
/// connection's queued data to 16 MiB; once full, reading stops and TCP pushes back on the
/// sender. (Toxiproxy's latency buffer is 1024 chunks; 256 still carries 8 MB per latency
/// period, plenty for fault injection.)
const QUEUED_CHUNKS: usize = 256;

/// What every connection of one proxy run shares.
#[derive(Debug)]
pub(crate) struct LinkContext {
    pub proxy: String,
    pub upstream: String,
    pub chain: watch::Receiver<Chain>,
    pub upstream_counters: Arc<Counters>,
    pub downstream_counters: Arc<Counters>,
    /// Where the next connection starts among the upstream's addresses.
    pub next: AtomicUsize,
}

impl LinkContext {
    /// Connects to the upstream: its one address, or the next of its several in turn, trying
    /// the others when that one fails. Returns the last error when none answers.
    async fn dial(&self) -> std::io::Result<TcpStream> {
        let addresses: Vec<&str> = self.upstream.split(',').map(str::trim).collect();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = None;
        for offset in 0..addresses.len() {
            let address = addresses[(first + offset) % addresses.len()];
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no upstream address")))
    }
}

/// Serves one accepted client until either side or a toxic ends it, or `cancel` fires (the
/// proxy was disabled, deleted or the server is shutting down).
pub(crate) async fn run(mut client: TcpStream, ctx: Arc<LinkContext>, cancel: CancellationToken) {
    let dialled = tokio::select! {
        () = cancel.cancelled() => return,
        dialled = ctx.dial() => dialled,
    };
    let mut upstream = match dialled {
        Ok(upstream) => upstream,
        Err(err) => {
            // Toxiproxy closes the client when it cannot reach the upstream.
            tracing::warn!(proxy = %ctx.proxy, upstream = %ctx.upstream, error = %err,
                "unable to open connection to upstream");
            return;
        }
    };
    // Go sets TCP_NODELAY on every connection; without it latency tests measure Nagle.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let ending = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let (to_upstream, upstream_queue) = mpsc::channel(QUEUED_CHUNKS);
        let (to_downstream, downstream_queue) = mpsc::channel(QUEUED_CHUNKS);
        let up = Pipeline::new(
            Stream::Upstream,
            ctx.chain.clone(),
            upstream_queue,
            upstream_write,
            ctx.upstream_counters.clone(),
        );
        let down = Pipeline::new(
            Stream::Downstream,
            ctx.chain.clone(),
            downstream_queue,
            client_write,
            ctx.downstream_counters.clone(),
        );
        let readers = async {
            tokio::join!(
                read(client_read, to_upstream, &ctx.upstream_counters),
                read(upstream_read, to_downstream, &ctx.downstream_counters),
            );
            // A reader finishing only closes its queue; its pipeline decides when to end.
            std::future::pending::<Ending>().await
        };
        tokio::select! {
            () = cancel.cancelled() => Ending::Close,
            ending = up.run() => ending,
            ending = down.run() => ending,
            ending = readers => ending,
        }
    };

    if ending == Ending::Reset {
        // SO_LINGER 0 makes the close below send RST instead of FIN, as Toxiproxy's reset_peer.
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}

/// Copies the source into the queue until end of stream or a read error (Toxiproxy treats both
/// as the end), counting received bytes as they arrive.
async fn read<R: AsyncRead + Unpin>(
    mut source: R,
    queue: mpsc::Sender<Chunk>,
    counters: &Counters,
) {
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let n = match source.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        counters.add_received(n);
        let chunk = Chunk {
            data: buffer[..n].to_vec(),
            received: Instant::now(),
        };
        if queue.send(chunk).await.is_err() {
            return;
        }
    }
}
