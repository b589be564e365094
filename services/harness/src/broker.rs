//! The embedded Kafka-protocol broker for tests: `faultline-broker` (in memory) on a free port of
//! 127.0.0.1, with every Faultline topic created, served on a thread of its own.
//!
//! Why a thread with its own runtime: a test that blocks its own runtime (or a librdkafka call
//! that blocks a worker) must never stall the broker its clients are waiting on. The embedded
//! stack runs the same broker as a child process instead (`faultline service broker`), so it can
//! be paused, killed and measured like every other process.

use std::time::Duration;

use anyhow::Context as _;
use faultline_kit::config::KafkaSettings;
use tokio::sync::oneshot;

/// A running broker; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the broker is created with: every Faultline topic with `partitions` partitions.
pub fn config(advertised: &str, partitions: i32) -> anyhow::Result<faultline_broker::BrokerConfig> {
    let (host, port) = advertised
        .rsplit_once(':')
        .with_context(|| format!("advertised address {advertised:?} is not host:port"))?;
    Ok(faultline_broker::BrokerConfig {
        advertised_host: host.to_owned(),
        advertised_port: port
            .parse()
            .with_context(|| format!("advertised port in {advertised:?}"))?,
        node_id: 1,
        default_partitions: partitions,
        topics: faultline_contracts::topics::ALL
            .iter()
            .map(|topic| ((*topic).to_owned(), partitions))
            .collect(),
    })
}

impl EmbeddedBroker {
    /// A broker advertising its own address, with every Faultline topic (`partitions` each).
    pub async fn start(partitions: i32) -> anyhow::Result<Self> {
        let port = crate::free_port()?;
        Self::start_on(port, &format!("127.0.0.1:{port}"), partitions).await
    }

    /// A broker on `port` advertising `advertised` (`host:port`; a proxy's address when every
    /// client must go through a proxy).
    pub async fn start_on(port: u16, advertised: &str, partitions: i32) -> anyhow::Result<Self> {
        let config = config(advertised, partitions)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("binding the broker to 127.0.0.1:{port}"))?;
        listener.set_nonblocking(true)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("faultline-broker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the broker's runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let served = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            faultline_broker::serve(listener, config, async move {
                                let _either_way = stopped.await;
                            })
                            .await
                        }
                        Err(error) => Err(error),
                    };
                    if let Err(error) = served {
                        tracing::error!(%error, "the embedded broker stopped");
                    }
                });
            })?;
        Ok(Self {
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:port`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client settings pointing at this broker.
    pub fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings::new(self.bootstrap())
    }

    /// Stops the broker (its logs, groups and offsets are gone: it keeps them in memory).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _already_stopped = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Serving stops once every connection closed; clients may keep theirs open, so the
            // thread is not waited on for long.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
