//! The embedded Kafka-protocol broker: tansu with sqlite storage, on a free port.
//!
//! tansu's `memory://` engine cannot resume a consumer group from a committed offset, so the
//! storage is always `sqlite://` in the broker's directory. Clients must use 127.0.0.1 (tansu
//! listens on IPv4). Topics are created before the broker is handed out: tansu does not
//! auto-create them.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use faultline_kit::config::KafkaSettings;

/// A running tansu process; killed when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// Environment variables tansu reads that must not leak in from our own environment.
const TANSU_ENV: [&str; 6] = [
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

impl EmbeddedBroker {
    /// Starts tansu with its data and log in `dir`, advertising its own address, and creates
    /// every Faultline topic with `partitions` partitions.
    pub async fn start(dir: &Path, partitions: i32) -> anyhow::Result<Self> {
        let port = crate::free_port()?;
        Self::start_on(dir, port, &format!("127.0.0.1:{port}"), partitions).await
    }

    /// Starts tansu on `port`, advertising `advertised` (`host:port`; a proxy's address when
    /// every client must go through a proxy).
    pub async fn start_on(
        dir: &Path,
        port: u16,
        advertised: &str,
        partitions: i32,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let binary = crate::tansu::binary()?;
        let log = std::fs::File::create(dir.join("broker.log"))?;
        let mut command = Command::new(&binary);
        command
            .current_dir(dir)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .arg("--storage-engine")
            .arg("sqlite://broker.db")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for var in TANSU_ENV {
            command.env_remove(var);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut broker = Self {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        broker.wait_until_listening(Duration::from_secs(30))?;
        broker.create_topics(partitions).await?;
        Ok(broker)
    }

    fn wait_until_listening(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "tansu exited early ({status}); see {}",
                    self.dir.join("broker.log").display()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "tansu did not listen on 127.0.0.1:{} within {limit:?}; see {}",
                self.port,
                self.dir.join("broker.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn create_topics(&self, partitions: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let attempt = faultline_kit::messaging::admin::create_topics(
                &self.kafka_settings(),
                &faultline_contracts::topics::ALL,
                partitions,
            )
            .await;
            match attempt {
                Ok(()) => return Ok(()),
                Err(error) if started.elapsed() < Duration::from_secs(20) => {
                    tracing::debug!(%error, "topic creation not ready yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error.context("creating topics on tansu")),
            }
        }
    }

    /// `127.0.0.1:port`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client settings pointing at this broker.
    pub fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings::new(self.bootstrap())
    }

    /// Stops the broker (SIGKILL; its sqlite storage survives for a restart).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
