//! What every service's `startup.rs` assembles: the Kafka producer + outbox + dead-letter
//! bundle, and the task runner that keeps the HTTP server, the relay and the consumers running
//! until shutdown.
//!
//! Invariant: when any task fails, the whole service stops (and is restarted by whoever
//! supervises it) — a service never runs on with a dead consumer or relay.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::{
    config::KafkaSettings,
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
    pub producer: Producer,
    pub outbox: Outbox,
    pub dead_letter: DeadLetter,
}

impl Messaging {
    pub fn new(settings: &KafkaSettings, service_name: &str) -> anyhow::Result<Self> {
        let producer = Producer::new(settings, service_name)?;
        Ok(Self {
            dead_letter: DeadLetter::new(producer.clone(), service_name),
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
            RelaySettings::default(),
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
