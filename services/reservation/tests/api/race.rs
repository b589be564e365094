//! 200 bookings racing for 20 seats.

use std::time::Duration;

use faultline_harness::{Backend, both_backends};

use crate::helpers::{Options, spawn_system};

both_backends!(two_hundred_bookings_racing_for_twenty_seats_confirm_exactly_twenty);

async fn two_hundred_bookings_racing_for_twenty_seats_confirm_exactly_twenty(backend: Backend) {
    let options = Options {
        seats: 20,
        wallets: (1..=50).map(|i| (format!("user-{i}"), 1_000)).collect(),
        ..Options::default()
    };
    let system = spawn_system(backend, options).await;
    let requests = (0..200).map(|i| {
        let system = &system;
        async move {
            system
                .book(
                    &format!("user-{}", i % 50 + 1),
                    &format!("sched-1-{:03}", i % 20 + 1),
                )
                .await
        }
    });
    let accepted = futures::future::join_all(requests).await;
    for booking in &accepted {
        system
            .terminal(&booking.booking_id, Duration::from_secs(120))
            .await;
    }
    let bookings = system.assert_invariants().await;
    let count = |status: &str| bookings.iter().filter(|b| b.status == status).count();
    assert_eq!(bookings.len(), 200);
    assert_eq!(count("CONFIRMED"), 20, "one booking per seat");
    assert_eq!(count("REJECTED"), 180);
    let mut seats: Vec<&str> = bookings
        .iter()
        .filter(|b| b.status == "CONFIRMED")
        .map(|b| b.seat_id.as_str())
        .collect();
    seats.sort_unstable();
    seats.dedup();
    assert_eq!(seats.len(), 20, "no seat confirmed twice");
}
