//! From what the load sent and what reservation says became of it, to the figures of one load
//! phase: rates, refusals by status, outcomes, and the two latency distributions.
//!
//! Saga latency is a booking's terminal `updated_at_ms` minus its request's intended send time:
//! what a client who wanted to book at that moment waited for the outcome. Bookings still
//! PENDING after the drain have no latency; they are counted, and a run with any fails find-max.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use faultline_contracts::http::{BookingView, ReservationSummary};
use faultline_harness::invariants::get;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::Serialize;

use super::load::{Answer, LoadResult};

/// The statuses a booking can end (or be left) in, always all reported.
pub const OUTCOMES: [&str; 4] = ["CONFIRMED", "CANCELLED", "REJECTED", "PENDING"];

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Latency {
    /// `None` for an empty histogram: no value is better than a made-up zero.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        })
    }
}

/// Milliseconds up to an hour at 3 significant digits: anything slower is clamped to an hour
/// (`saturating_record`) rather than dropped.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000, 3)?)
}

/// What one load phase came to.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Requests sent.
    pub requests: u64,
    pub accepted: u64,
    pub offered_per_s: f64,
    pub accepted_per_s: f64,
    /// Bookings that reached a terminal status, per second of load time.
    pub completed_per_s: f64,
    /// Requests not accepted, by status code or failure.
    pub refused: BTreeMap<String, u64>,
    pub saga_latency_ms: Option<Latency>,
    pub accept_latency_ms: Option<Latency>,
    /// Accepted bookings by status after the drain.
    pub outcomes: BTreeMap<String, u64>,
    /// The longest a request left after it was due (the generator keeping up, or not).
    pub max_send_delay_ms: u64,
    /// From the first due time until the last answer.
    pub load_s: f64,
}

/// Judges `load` (planned to last `duration_s`) against reservation's `bookings`.
pub fn outcome(
    load: &LoadResult,
    bookings: &[BookingView],
    duration_s: f64,
) -> anyhow::Result<Outcome> {
    let by_id: HashMap<&str, &BookingView> = bookings
        .iter()
        .map(|b| (b.booking_id.as_str(), b))
        .collect();
    let mut saga = histogram()?;
    let mut accept = histogram()?;
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> =
        OUTCOMES.iter().map(|s| ((*s).to_owned(), 0)).collect();
    let mut accepted = 0;
    for sent in &load.sent {
        accept.saturating_record(sent.answered_after_ms);
        let id = match &sent.answer {
            Answer::Accepted(id) => id,
            Answer::Refused(why) => {
                *refused.entry(why.clone()).or_default() += 1;
                continue;
            }
        };
        accepted += 1;
        // A 202 whose booking reservation does not list is still in flight as far as we know.
        let status = by_id
            .get(id.as_str())
            .map_or("PENDING", |b| b.status.as_str());
        *outcomes.entry(status.to_owned()).or_default() += 1;
        if let Some(booking) = by_id.get(id.as_str()).filter(|b| b.status != "PENDING") {
            // Clocks can disagree by a millisecond; a negative latency is a zero.
            let waited = u64::try_from(booking.updated_at_ms - sent.intended_ms).unwrap_or(0);
            saga.saturating_record(waited);
        }
    }
    let per_s = |n: u64| {
        if duration_s > 0.0 {
            n as f64 / duration_s
        } else {
            0.0
        }
    };
    let requests = load.sent.len() as u64;
    Ok(Outcome {
        requests,
        accepted,
        offered_per_s: per_s(requests),
        accepted_per_s: per_s(accepted),
        completed_per_s: per_s(saga.len()),
        refused,
        saga_latency_ms: Latency::of(&saga),
        accept_latency_ms: Latency::of(&accept),
        outcomes,
        max_send_delay_ms: load.max_send_delay_ms,
        load_s: load.wall.as_secs_f64(),
    })
}

/// Waits until reservation has no saga left pending (polling its summary every 500 ms), at most
/// `limit`. Returns how long it took and whether it got there. `progress` shows what is left.
pub async fn drain(
    http: &reqwest::Client,
    reservation: &str,
    limit: Duration,
    progress: &ProgressBar,
) -> anyhow::Result<(Duration, bool)> {
    let started = Instant::now();
    loop {
        let summary: ReservationSummary = get(http, format!("{reservation}/admin/summary")).await?;
        progress.set_message(format!("draining: {} sagas pending", summary.pending));
        if summary.pending == 0 {
            return Ok((started.elapsed(), true));
        }
        if started.elapsed() >= limit {
            return Ok((started.elapsed(), false));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every booking reservation has (read once, after the drain).
pub async fn bookings(
    http: &reqwest::Client,
    reservation: &str,
) -> anyhow::Result<Vec<BookingView>> {
    get(http, format!("{reservation}/admin/bookings")).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::Sent;

    fn view(id: &str, status: &str, updated_at_ms: i64) -> BookingView {
        BookingView {
            booking_id: id.into(),
            saga_id: "s".into(),
            user_id: "u".into(),
            seat_id: "x".into(),
            status: status.into(),
            saga_state: status.into(),
            amount: None,
            reason: None,
            created_at_ms: 0,
            updated_at_ms,
        }
    }

    fn sent(intended_ms: i64, after: u64, answer: Answer) -> Sent {
        Sent {
            intended_ms,
            answered_after_ms: after,
            answer,
        }
    }

    fn load() -> LoadResult {
        LoadResult {
            sent: vec![
                sent(1_000, 5, Answer::Accepted("a".into())),
                sent(1_100, 7, Answer::Accepted("b".into())),
                sent(1_200, 9, Answer::Accepted("c".into())),
                sent(1_300, 2, Answer::Refused("503".into())),
            ],
            max_send_delay_ms: 1,
            wall: Duration::from_secs(2),
        }
    }

    #[test]
    fn saga_latency_runs_from_the_intended_send_time_to_the_terminal_update() {
        let bookings = [view("a", "CONFIRMED", 1_250), view("b", "CANCELLED", 1_400)];
        let outcome = outcome(&load(), &bookings, 2.0).expect("figures");
        let saga = outcome.saga_latency_ms.expect("two terminal sagas");
        assert_eq!((saga.count, saga.p50, saga.max), (2, 250, 300));
        assert_eq!(outcome.accept_latency_ms.map(|l| l.max), Some(9));
    }

    #[test]
    fn refusals_are_counted_by_status_and_unknown_bookings_are_pending() {
        let bookings = [view("a", "CONFIRMED", 1_250), view("b", "PENDING", 1_100)];
        let outcome = outcome(&load(), &bookings, 2.0).expect("figures");
        assert_eq!(outcome.refused, BTreeMap::from([("503".to_owned(), 1)]));
        assert_eq!(outcome.outcomes["CONFIRMED"], 1);
        assert_eq!(
            outcome.outcomes["PENDING"], 2,
            "b is pending, c is not listed"
        );
        assert_eq!(outcome.outcomes["REJECTED"], 0);
        assert_eq!((outcome.requests, outcome.accepted), (4, 3));
        assert!((outcome.offered_per_s - 2.0).abs() < 1e-9);
        assert!((outcome.completed_per_s - 0.5).abs() < 1e-9);
    }

    #[test]
    fn no_terminal_saga_means_no_saga_latency() {
        let outcome = outcome(&load(), &[], 2.0).expect("figures");
        assert_eq!(outcome.saga_latency_ms, None);
    }
}
