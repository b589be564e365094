//! Invariants 1–3 of the product contract, judged from what each service reports about its own
//! data (admin endpoints), never by joining across databases:
//!
//! 1. no seat held or sold by two bookings; seats sold = confirmed bookings;
//! 2. points conserved: balances + net charges = initial total; a confirmed booking is charged
//!    exactly once, any other nets to zero; every wallet's ledger sums to its balance;
//! 3. every saga terminal, no step run twice (no transition logged twice for a saga); no seat
//!    left HELD; no outbox row left unpublished.

use std::collections::{BTreeMap, BTreeSet};

use faultline_contracts::http::{
    BookingView, InventorySummary, PaymentSummary, ReservationSummary, SeatView,
};

/// What the services report.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bookings: Vec<BookingView>,
    pub seats: Vec<SeatView>,
    pub inventory: InventorySummary,
    pub reservation: ReservationSummary,
    pub payment: PaymentSummary,
}

/// One broken rule, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: u8,
    pub detail: String,
}

/// GETs `url` and decodes its JSON; a non-2xx answer is an error naming the URL.
pub async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
) -> anyhow::Result<T> {
    let response = http.get(&url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// Where each service answers (its own HTTP address, not the gateway's).
#[derive(Debug, Clone, Copy)]
pub struct ServiceUrls<'a> {
    pub reservation: &'a str,
    pub inventory: &'a str,
    pub payment: &'a str,
}

/// Reads every service's view.
pub async fn snapshot(http: &reqwest::Client, urls: ServiceUrls<'_>) -> anyhow::Result<Snapshot> {
    Ok(Snapshot {
        bookings: get(http, format!("{}/admin/bookings", urls.reservation)).await?,
        seats: get(http, format!("{}/admin/seats", urls.inventory)).await?,
        inventory: get(http, format!("{}/admin/summary", urls.inventory)).await?,
        reservation: get(http, format!("{}/admin/summary", urls.reservation)).await?,
        payment: get(http, format!("{}/admin/summary", urls.payment)).await?,
    })
}

/// Every violation of invariants 1–3 in `snapshot`, given the points the wallets started with.
pub fn check(snapshot: &Snapshot, initial_points: i64) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut violate =
        |invariant: u8, detail: String| violations.push(Violation { invariant, detail });

    // 1. seats
    let confirmed: BTreeMap<&str, &BookingView> = snapshot
        .bookings
        .iter()
        .filter(|b| b.status == "CONFIRMED")
        .map(|b| (b.booking_id.as_str(), b))
        .collect();
    let mut confirmed_seats = BTreeSet::new();
    for booking in confirmed.values() {
        if !confirmed_seats.insert(booking.seat_id.as_str()) {
            violate(
                1,
                format!(
                    "seat {} is confirmed for more than one booking",
                    booking.seat_id
                ),
            );
        }
    }
    let sold: Vec<&SeatView> = snapshot
        .seats
        .iter()
        .filter(|s| s.status == "SOLD")
        .collect();
    if sold.len() != confirmed.len() {
        violate(
            1,
            format!(
                "{} seats sold but {} bookings confirmed",
                sold.len(),
                confirmed.len()
            ),
        );
    }
    for seat in &sold {
        let owner = seat.booking_id.as_deref().unwrap_or_default();
        match confirmed.get(owner) {
            Some(booking) if booking.seat_id == seat.seat_id => {}
            _ => violate(
                1,
                format!(
                    "seat {} is sold to {owner:?}, not a confirmed booking of that seat",
                    seat.seat_id
                ),
            ),
        }
    }

    // 2. points
    let payment = &snapshot.payment;
    if payment.initial_total != initial_points {
        violate(
            2,
            format!(
                "wallets were seeded with {} points, expected {initial_points}",
                payment.initial_total
            ),
        );
    }
    if payment.mismatched_wallets != 0 {
        violate(
            2,
            format!(
                "{} wallets' ledgers do not sum to their balance",
                payment.mismatched_wallets
            ),
        );
    }
    let net: i64 = payment
        .net_by_booking
        .iter()
        .map(|n| n.charged - n.refunded)
        .sum();
    if payment.balance_total + net != payment.initial_total {
        violate(
            2,
            format!(
                "balances {} + net charges {net} ≠ initial {}",
                payment.balance_total, payment.initial_total
            ),
        );
    }
    let nets: BTreeMap<&str, _> = payment
        .net_by_booking
        .iter()
        .map(|n| (n.booking_id.as_str(), n))
        .collect();
    for booking in &snapshot.bookings {
        let net = nets.get(booking.booking_id.as_str());
        match (booking.status.as_str(), net) {
            ("CONFIRMED", Some(n))
                if n.charges == 1 && n.refunded == 0 && Some(n.charged) == booking.amount => {}
            ("CONFIRMED", n) => violate(
                2,
                format!(
                    "confirmed booking {} is not charged exactly once: {n:?}",
                    booking.booking_id
                ),
            ),
            (_, Some(n)) if n.charged != n.refunded => violate(
                2,
                format!(
                    "{} booking {} does not net to zero: {n:?}",
                    booking.status, booking.booking_id
                ),
            ),
            _ => {}
        }
    }

    // 3. everything finished
    if snapshot.reservation.pending > 0 {
        violate(
            3,
            format!("{} sagas are not terminal", snapshot.reservation.pending),
        );
    }
    if snapshot.inventory.held > 0 {
        violate(
            3,
            format!("{} seats are left HELD", snapshot.inventory.held),
        );
    }
    if snapshot.reservation.transitions_repeated > 0 {
        violate(
            3,
            format!(
                "{} saga transitions were logged twice (a step ran twice)",
                snapshot.reservation.transitions_repeated
            ),
        );
    }
    if snapshot.reservation.outbox_unpublished > 0 {
        violate(
            3,
            format!(
                "{} outbox rows are unpublished",
                snapshot.reservation.outbox_unpublished
            ),
        );
    }
    violations
}

#[cfg(test)]
mod tests {
    use faultline_contracts::http::BookingNet;

    use super::*;

    fn booking(id: &str, seat: &str, status: &str, amount: Option<i64>) -> BookingView {
        BookingView {
            booking_id: id.into(),
            saga_id: format!("s-{id}"),
            user_id: "u".into(),
            seat_id: seat.into(),
            status: status.into(),
            saga_state: status.into(),
            amount,
            reason: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn seat(id: &str, status: &str, booking: Option<&str>) -> SeatView {
        SeatView {
            seat_id: id.into(),
            schedule_id: "s".into(),
            concert_id: "c".into(),
            label: id.into(),
            price: 100,
            status: status.into(),
            booking_id: booking.map(Into::into),
        }
    }

    fn consistent() -> Snapshot {
        Snapshot {
            bookings: vec![
                booking("b1", "x", "CONFIRMED", Some(100)),
                booking("b2", "x", "REJECTED", None),
            ],
            seats: vec![seat("x", "SOLD", Some("b1")), seat("y", "AVAILABLE", None)],
            inventory: InventorySummary {
                available: 1,
                held: 0,
                sold: 1,
            },
            reservation: ReservationSummary {
                confirmed: 1,
                rejected: 1,
                ..Default::default()
            },
            payment: PaymentSummary {
                initial_total: 1000,
                balance_total: 900,
                ledger_total: 900,
                mismatched_wallets: 0,
                net_by_booking: vec![BookingNet {
                    booking_id: "b1".into(),
                    charged: 100,
                    refunded: 0,
                    charges: 1,
                }],
            },
        }
    }

    #[test]
    fn a_consistent_system_has_no_violation() {
        assert_eq!(check(&consistent(), 1000), vec![]);
    }

    #[test]
    fn a_seat_confirmed_twice_violates_invariant_one() {
        let mut snapshot = consistent();
        snapshot.bookings[1].status = "CONFIRMED".into();
        let violations = check(&snapshot, 1000);
        assert!(
            violations
                .iter()
                .any(|v| v.invariant == 1 && v.detail.contains("more than one")),
            "{violations:?}"
        );
    }

    #[test]
    fn a_double_charge_violates_invariant_two() {
        let mut snapshot = consistent();
        snapshot.payment.net_by_booking[0] = BookingNet {
            booking_id: "b1".into(),
            charged: 200,
            refunded: 0,
            charges: 2,
        };
        snapshot.payment.balance_total = 800;
        snapshot.payment.ledger_total = 800;
        let violations = check(&snapshot, 1000);
        assert!(
            violations
                .iter()
                .any(|v| v.invariant == 2 && v.detail.contains("exactly once")),
            "{violations:?}"
        );
    }

    #[test]
    fn lost_points_violate_invariant_two() {
        let mut snapshot = consistent();
        snapshot.payment.balance_total = 850;
        let violations = check(&snapshot, 1000);
        assert!(
            violations
                .iter()
                .any(|v| v.invariant == 2 && v.detail.contains("initial")),
            "{violations:?}"
        );
    }

    #[test]
    fn a_held_seat_or_a_pending_saga_violates_invariant_three() {
        let mut snapshot = consistent();
        snapshot.inventory.held = 1;
        snapshot.reservation.pending = 2;
        let found: Vec<u8> = check(&snapshot, 1000).iter().map(|v| v.invariant).collect();
        assert_eq!(found, vec![3, 3]);
    }
}
