//! A TCP proxy that can black-hole everything passing through it (bytes are held, not dropped,
//! as TCP retransmission would deliver them once a partition heals).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    paused: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listener`, forwarding every connection to `target`.
    pub fn start(listener: TcpListener, target: SocketAddr) -> Self {
        let addr = listener.local_addr().expect("proxy address");
        let (paused, _) = watch::channel(false);
        let task = tokio::spawn({
            let paused = paused.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(client_read, server_write, paused.subscribe()));
                    tokio::spawn(pump(server_read, client_write, paused.subscribe()));
                }
            }
        });
        Self { addr, paused, task }
    }

    pub fn black_hole(&self, on: bool) {
        self.paused.send_replace(on);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_while_paused(paused: &mut watch::Receiver<bool>) -> bool {
    while *paused.borrow_and_update() {
        if paused.changed().await.is_err() {
            return false;
        }
    }
    true
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut paused: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if !wait_while_paused(&mut paused).await {
            break;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = paused.changed() => continue,
        };
        let Ok(read @ 1..) = read else { break };
        if !wait_while_paused(&mut paused).await || to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
