//! What every service's `startup.rs` assembles: the Kafka producer + outbox + dead-letter
//! bundle, and the task runner that keeps the HTTP server, the relay and the consumers running
//! until shutdown.
//!
//! Invariant: when any task fails, the whole service stops (and is restarted by whoever
//! supervises it) — a service never runs on with a dead consumer or relay.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::{
    config::CommonSettings,
    messaging::{Producer, dead_letter::DeadLetter},
    outbox::{
        Outbox,
        relay::{Relay, RelaySettings},
    },
    shutdown::CancellationToken,
    storage::Db,
};

/// A service's messaging handles.
#[derive(Debug, Clone)]
pub struct Messaging {
    instance_id: String,
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
            instance_id: settings.instance_id().to_owned(),
            message_timeout: Duration::from_millis(kafka.message_timeout_ms),
            dead_letter: DeadLetter::new(producer.clone(), &settings.service_name),
            producer,
            outbox: Outbox::new(),
        })
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

    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.spawn(async move { (name, task.await) });
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
