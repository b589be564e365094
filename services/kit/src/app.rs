//! What every service's `main.rs` and `startup.rs` share: [`run_main`] (settings, telemetry,
//! signals, run, flush), the Kafka producer + outbox + dead-letter bundle, and the task runner
//! that keeps the HTTP server, the relay and the consumers running until shutdown.
//!
//! Invariant: when any task fails, the whole service stops (and is restarted by whoever
//! supervises it) — a service never runs on with a dead consumer or relay.

use std::time::Duration;

use tokio::task::JoinSet;

use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::{
    config::CommonSettings,
    messaging::{Consumer, Handler},
    messaging::{Producer, dead_letter::DeadLetter},
    outbox::{
        Outbox,
        relay::{Relay, RelaySettings},
    },
    shutdown::CancellationToken,
    storage::Db,
};

/// A service's settings: whatever it has, plus the common sections.
pub trait ServiceSettings: DeserializeOwned {
    fn common(&self) -> &CommonSettings;
}

/// The whole of a service's `main`: load settings (file → environment), install telemetry, run
/// `service` until SIGTERM or Ctrl-C, log a failure, flush telemetry.
pub async fn run_main<S, F, Fut>(service: F) -> anyhow::Result<()>
where
    S: ServiceSettings,
    F: FnOnce(S, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings: S = crate::config::load(None)?;
    let name = settings.common().service_name.clone();
    let telemetry = crate::telemetry::init_instance(&name, &settings.common().instance_id())?;
    let shutdown = crate::shutdown::on_signal();
    let result = service(settings, shutdown).await;
    if let Err(error) = &result {
        tracing::error!(service = %name, error = %format!("{error:#}"), "service stopped with an error");
    }
    telemetry.shutdown().await;
    result
}

/// Binds the service's HTTP port (0 picks a free one) and logs where it listens.
pub async fn bind(common: &CommonSettings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind((common.http.host.as_str(), common.http.port)).await?;
    tracing::info!(
        service = %common.service_name,
        address = %listener.local_addr()?,
        database = %common.database.as_ref().map(|d| d.redacted_url()).unwrap_or_else(|| "none".into()),
        "listening"
    );
    Ok(listener)
}

/// A service's messaging handles.
#[derive(Debug, Clone)]
pub struct Messaging {
    service_name: String,
    instance_id: String,
    kafka: crate::config::KafkaSettings,
    message_timeout: Duration,
    pub producer: Producer,
    pub outbox: Outbox,
    pub dead_letter: DeadLetter,
}

impl Messaging {
    /// Requires the Kafka section of `settings`.
    pub fn new(settings: &CommonSettings) -> anyhow::Result<Self> {
        let kafka = settings.kafka()?;
        let producer = Producer::new(kafka, &settings.service_name)?;
        Ok(Self {
            service_name: settings.service_name.clone(),
            instance_id: settings.instance_id(),
            kafka: kafka.clone(),
            message_timeout: Duration::from_millis(kafka.message_timeout_ms),
            dead_letter: DeadLetter::new(producer.clone(), &settings.service_name),
            producer,
            outbox: Outbox::new(),
        })
    }

    /// A consumer of `topics` in the service's own group (its name), dead-lettering through this
    /// bundle, waking this outbox's relay after every commit, and registered in `readiness`.
    pub fn consumer<H: Handler>(
        &self,
        db: &Db,
        topics: &[&str],
        handler: H,
        readiness: &crate::readiness::Readiness,
    ) -> Consumer<H> {
        Consumer::new(
            self.service_name.clone(),
            self.instance_id.clone(),
            topics,
            self.kafka.clone(),
            db.clone(),
            self.dead_letter.clone(),
            std::sync::Arc::new(handler),
        )
        .with_outbox(self.outbox.clone())
        .with_readiness(readiness)
    }

    /// The relay for this service's outbox.
    pub fn relay(&self, db: &Db) -> Relay {
        Relay::new(
            db.clone(),
            self.producer.clone(),
            &self.outbox,
            RelaySettings::new(&self.instance_id, self.message_timeout),
        )
    }
}

/// Runs a service's long-lived tasks until shutdown or until one of them fails.
#[derive(Debug)]
pub struct Runner {
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Runner {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    /// The token tasks should stop on.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves `router` on `listener` until shutdown.
    pub fn spawn_http(&mut self, listener: TcpListener, router: axum::Router) {
        let token = self.shutdown();
        self.spawn("http", async move {
            Ok(crate::http::serve(listener, router, token).await?)
        });
    }

    /// Runs the outbox relay until shutdown.
    pub fn spawn_relay(&mut self, relay: Relay) {
        let token = self.shutdown();
        self.spawn("outbox-relay", async move {
            relay.run(token).await;
            Ok(())
        });
    }

    /// Runs the retention janitor over `db` until shutdown.
    pub fn spawn_janitor(&mut self, db: &Db) {
        let (db, token) = (db.clone(), self.shutdown());
        self.spawn(
            "janitor",
            crate::janitor::run(db, crate::janitor::Retention::default(), token),
        );
    }

    /// Runs a consumer until shutdown.
    pub fn spawn_consumer<H: Handler>(&mut self, consumer: Consumer<H>) {
        let token = self.shutdown();
        self.spawn("consumer", consumer.run(token));
    }

    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.spawn(async move { (name, task.await) });
    }

    /// [`Runner::run`] with the services' grace of 10 s, then closes `db`.
    pub async fn run_then_close(self, db: &Db) -> anyhow::Result<()> {
        let result = self.run(Duration::from_secs(10)).await;
        db.close().await;
        result
    }

    /// Waits for shutdown (or a failed task), then gives every task `grace` to finish.
    pub async fn run(mut self, grace: Duration) -> anyhow::Result<()> {
        let mut failure = None;
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            Some(joined) = self.tasks.join_next() => {
                failure = Some(describe(joined));
                self.shutdown.cancel();
            }
        }
        let drain = async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(error) = describe(joined) {
                    tracing::error!(error = %format!("{error:#}"), "task failed during shutdown");
                }
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(?grace, "tasks did not stop in time; aborting them");
            self.tasks.abort_all();
        }
        match failure {
            Some(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }
}

fn describe(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((name, Ok(()))) => {
            tracing::info!(task = name, "task finished");
            Ok(())
        }
        Ok((name, Err(error))) => Err(error.context(format!("task {name} failed"))),
        Err(error) => Err(anyhow::anyhow!("task panicked: {error}")),
    }
}
