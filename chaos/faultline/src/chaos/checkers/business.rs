//! Invariants 1–3 from what reservation, inventory and payment report about their own data,
//! judged by the shared `faultline_harness::invariants`, with the bookings each violation
//! names as witnesses.

use faultline_harness::invariants::{self, ServiceUrls};

use super::{CheckResult, Input, Verdict, Witness, result};
use crate::chaos::scenario::Invariant;

pub async fn check(input: &Input<'_>) -> Vec<CheckResult> {
    let urls = ServiceUrls {
        reservation: input.target.service("reservation"),
        inventory: input.target.service("inventory"),
        payment: input.target.service("payment"),
    };
    let snapshot = match invariants::snapshot(&input.http, urls).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            return [Invariant::Seats, Invariant::Points, Invariant::Terminal]
                .into_iter()
                .map(|invariant| {
                    result(
                        input,
                        invariant,
                        Verdict::Unknown,
                        format!("could not read the services' reports: {error:#}"),
                        Vec::new(),
                    )
                })
                .collect();
        }
    };
    let violations = invariants::check(&snapshot, input.initial_points);
    let mut results = Vec::new();
    for invariant in [Invariant::Seats, Invariant::Points, Invariant::Terminal] {
        let broken: Vec<&invariants::Violation> = violations
            .iter()
            .filter(|v| v.invariant == invariant.number())
            .collect();
        let mut witnesses: Vec<Witness> = Vec::new();
        for violation in &broken {
            let named: Vec<&str> = snapshot
                .bookings
                .iter()
                .filter(|b| {
                    violation.detail.contains(&b.booking_id)
                        || violation.detail.contains(&b.seat_id)
                })
                .map(|b| b.booking_id.as_str())
                .collect();
            if named.is_empty() {
                witnesses.push(input.witness(None, None, violation.detail.clone()));
            }
            for booking in named {
                witnesses.push(input.witness(Some(booking), None, violation.detail.clone()));
            }
        }
        let bookings = snapshot.bookings.len();
        let (verdict, summary) = if broken.is_empty() {
            let summary = match invariant {
                Invariant::Seats => format!(
                    "{} seats sold, {} bookings confirmed, no seat twice",
                    snapshot.inventory.sold, snapshot.reservation.confirmed
                ),
                Invariant::Points => format!(
                    "balances + net charges = {} points, as seeded; {} bookings' charges net correctly",
                    snapshot.payment.initial_total,
                    snapshot.payment.net_by_booking.len()
                ),
                _ => format!(
                    "all {bookings} sagas terminal, no step twice; no seat held; outbox empty"
                ),
            };
            (Verdict::Pass, summary)
        } else {
            (
                Verdict::Fail,
                broken
                    .iter()
                    .map(|v| v.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        results.push(result(input, invariant, verdict, summary, witnesses));
    }
    results
}
