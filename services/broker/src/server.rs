//! [`serve`]: the accept loop, one task per connection, and Kafka's request framing
//! (a 4-byte big-endian length, then the request).
//!
//! Each connection handles its requests one at a time and answers in request order, as Kafka
//! does: librdkafka pipelines requests and matches responses by correlation id, but expects them
//! in order. A held Fetch or JoinGroup therefore delays only later requests *on its own
//! connection*; every other connection has its own task. librdkafka keeps the group coordinator
//! on a connection of its own, so heartbeats never queue behind a long-polling fetch.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::dispatch;

/// Kafka's default `socket.request.max.bytes`: a larger frame is refused before allocating.
const MAX_FRAME: usize = 100 * 1024 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the Kafka protocol on `listener` until `shutdown` resolves.
///
/// Creates `config.topics` first (an invalid one is an `InvalidInput` error). On shutdown every
/// connection is closed and all state — logs, groups, committed offsets — is dropped: the broker
/// keeps everything in memory, so a restart starts empty.
pub async fn serve(
    listener: TcpListener,
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let broker = Arc::new(Broker::new(config)?);
    let local = listener.local_addr()?;
    tracing::info!(
        %local,
        advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port),
        node_id = broker.config.node_id,
        "kafka-protocol broker listening"
    );
    let mut tasks = JoinSet::new();
    let timers = Arc::clone(&broker);
    tasks.spawn(async move { timers.groups.run_timers().await });

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tasks.spawn(connection(Arc::clone(&broker), stream, peer));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(error) = finished
                    && error.is_panic() {
                        tracing::error!(%error, "a connection task panicked");
                    }
            }
        }
    }
    tasks.shutdown().await;
    tracing::info!(%local, "kafka-protocol broker stopped");
    Ok(())
}

async fn connection(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connection opened");
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(%peer, %error, "connection read failed");
                break;
            }
        };
        match dispatch::handle(&broker, frame, peer).await {
            Ok(Some(response)) => {
                if let Err(error) = writer.write_all(&response).await {
                    tracing::debug!(%peer, %error, "connection write failed");
                    break;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection");
                break;
            }
        }
    }
    tracing::debug!(%peer, "connection closed");
}

/// Reads one length-prefixed frame; `None` on a clean end of stream between frames.
async fn read_frame(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> io::Result<Option<Bytes>> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = usize::try_from(i32::from_be_bytes(prefix))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative frame length"))?;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut frame = BytesMut::zeroed(length);
    reader.read_exact(&mut frame).await?;
    Ok(Some(frame.freeze()))
}
