//! The saga timer: runs sagas whose `due_at` has passed — hold deadlines, charge retries and
//! deadlines, refund retries — and sagas whose next step a reply just claimed for this instance.
//!
//! Deadlines live in the database, not in sleeping tasks, so a restarted service picks up
//! exactly where the dead one stopped: the first scan finds every overdue saga. Concurrency is
//! bounded (a semaphore), and a saga runs at most once at a time (the claim in
//! [`super::store::claim_due`], or the one the reply's transition made).

use std::{sync::Arc, time::Duration};

use faultline_kit::shutdown::CancellationToken;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use super::{Orchestrator, orchestrator::Wake, store};

/// Runs until `shutdown`, then waits for the steps in progress.
pub async fn run(
    orchestrator: Orchestrator,
    mut triggers: mpsc::UnboundedReceiver<Wake>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match store::release_own_claims(orchestrator.db(), orchestrator.instance_id()).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(
            released,
            "took back saga claims of this instance's previous run"
        ),
        Err(error) => tracing::warn!(%error, "cannot release this instance's old saga claims"),
    }
    let settings = orchestrator.settings().clone();
    let permits = Arc::new(Semaphore::new(settings.max_concurrent_steps));
    let tracker = TaskTracker::new();
    let mut scan = tokio::time::interval(Duration::from_millis(settings.scan_interval_ms));
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let spawn = |wake: Wake, permit: tokio::sync::OwnedSemaphorePermit| {
        let orchestrator = orchestrator.clone();
        tracker.spawn(async move {
            if let Err(error) = orchestrator.drive(&wake).await {
                tracing::warn!(?wake, error = %format!("{error:#}"), "saga step failed; it stays due and will be retried");
            }
            drop(permit);
        });
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(wake) = triggers.recv() => {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                spawn(wake, permit);
            }
            _ = scan.tick() => {
                match store::due(orchestrator.db(), 500).await {
                    Ok(due) => {
                        for saga_id in due {
                            let Ok(permit) = permits.clone().acquire_owned().await else { break };
                            spawn(Wake::Due(saga_id), permit);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot read due sagas"),
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
    tracing::info!("saga timer stopped");
    Ok(())
}
