//! The run's timeline: every planned booking at its time, under bounded concurrency (except
//! those sent to meet a fault), and every fault window, while outcomes are watched.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use indicatif::ProgressBar;
use tokio::sync::Semaphore;

use super::PREFLIGHT_OP;
use crate::chaos::{
    client::Client,
    generator::Plan,
    history::{Event, History},
    nemesis::Nemesis,
    target::Target,
};

/// Runs the plan: every operation at its time (bounded concurrency, except for the bookings
/// sent to meet a fault) and every fault window.
pub(super) async fn schedule(
    target: &Target,
    nemesis: &Arc<Nemesis>,
    client: &Client,
    history: &Arc<History>,
    plan: &Plan,
    progress: &ProgressBar,
    concurrency: usize,
) -> anyhow::Result<()> {
    progress.set_message("workload running");
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for op in plan.ops.clone() {
        let (client, permits) = (client.clone(), permits.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until((started + Duration::from_millis(op.at_ms)).into()).await;
            // A booking sent to meet a fault goes on time: waiting for a slot held by bookings
            // an earlier fault stalled would miss its fault's window.
            let _permit = match op.meets_fault {
                Some(_) => None,
                None => Some(permits.acquire_owned().await),
            };
            client.invoke(&op).await;
        });
    }
    let mut faults = tokio::task::JoinSet::new();
    for (index, fault) in plan.faults.iter().cloned().enumerate() {
        let (nemesis, progress) = (nemesis.clone(), progress.clone());
        faults.spawn(async move {
            tokio::time::sleep_until((started + Duration::from_millis(fault.at_ms)).into()).await;
            progress.set_message(format!(
                "fault: {} {}",
                fault.kind.name(),
                fault.kind.target()
            ));
            let applied = nemesis.start(index, &fault).await;
            tokio::time::sleep(Duration::from_millis(fault.for_ms)).await;
            nemesis.stop(applied).await;
            progress.set_message("workload running");
        });
    }
    // Watch outcomes while submissions and faults proceed.
    let reservation = target.service("reservation").to_owned();
    while !(tasks.is_empty() && faults.is_empty()) {
        tokio::select! {
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => joined?,
            Some(joined) = faults.join_next(), if !faults.is_empty() => joined?,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Err(error) = client.watch_once(&reservation).await {
                    tracing::debug!(%error, "watch round failed");
                }
                progress.set_position(completed(history));
            }
        }
    }
    Ok(())
}

pub(super) fn completed(history: &History) -> u64 {
    history
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Complete { op, .. } if *op != PREFLIGHT_OP))
        .count() as u64
}
