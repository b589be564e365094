//! After the faults: waits until every booking has its outcome and the system is quiet, or the
//! deadline passes.

use std::time::Duration;

use indicatif::ProgressBar;

use super::schedule::completed;
use crate::chaos::{client::Client, history::History, target::Target};

/// Waits until every operation has its outcome and the system is quiet (no saga pending, no
/// seat held, outbox drained, analytics caught up), or the deadline (from the workload's start)
/// passes; operations still open then complete as unknown.
pub(super) async fn settle(
    target: &Target,
    client: &Client,
    history: &History,
    progress: &ProgressBar,
    deadline: Duration,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let reservation = target.service("reservation").to_owned();
    let quiet = || async {
        let urls = faultline_harness::invariants::ServiceUrls {
            reservation: target.service("reservation"),
            inventory: target.service("inventory"),
            payment: target.service("payment"),
        };
        let snapshot = faultline_harness::invariants::snapshot(&http, urls)
            .await
            .ok()?;
        let analytics: faultline_contracts::http::AnalyticsSummary = http
            .get(format!("{}/stats/summary", target.service("analytics")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let r = &snapshot.reservation;
        let settled = r.pending == 0
            && r.outbox_unpublished == 0
            && snapshot.inventory.held == 0
            && analytics.freshness.messages_behind == Some(0)
            && analytics.confirmed + analytics.cancelled + analytics.rejected
                >= r.confirmed + r.cancelled + r.rejected;
        Some(settled)
    };
    loop {
        let _ = client.watch_once(&reservation).await;
        progress.set_position(completed(history));
        if client.waiting() == 0 && quiet().await == Some(true) {
            history.note(format!("settled after {} ms", history.now_ms()));
            return Ok(());
        }
        if Duration::from_millis(history.now_ms()) > deadline {
            client.give_up("not terminal when the settle deadline passed");
            history.note(format!(
                "settle deadline ({} ms) passed with the system not quiet",
                deadline.as_millis()
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
