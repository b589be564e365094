//! A booking that goes all the way: held, charged once, sold, confirmed.

use std::time::Duration;

use faultline_harness::{Backend, both_backends};

use crate::helpers::{Options, PRICE, spawn_system};

both_backends!(
    a_booking_is_held_charged_sold_and_confirmed,
    a_taken_seat_is_rejected_and_charges_nothing
);

async fn a_booking_is_held_charged_sold_and_confirmed(backend: Backend) {
    let system = spawn_system(backend, Options::default()).await;
    let accepted = system.book("user-1", "sched-1-001").await;
    assert_eq!(accepted.status, "PENDING");
    assert_eq!(
        accepted.status_url,
        format!("/bookings/{}", accepted.booking_id)
    );

    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CONFIRMED", "{booking:?}");
    assert_eq!(booking.amount, Some(PRICE));
    assert_eq!(system.wallet("user-1").await, 1_000 - PRICE);
    let seat = system.seat("sched-1-001").await;
    assert_eq!(
        (seat.status.as_str(), seat.booking_id.as_deref()),
        ("SOLD", Some(accepted.booking_id.as_str()))
    );
    let steps: Vec<String> = system
        .saga_log(&accepted.saga_id)
        .await
        .into_iter()
        .map(|e| e.to_state)
        .collect();
    assert_eq!(steps, ["HOLDING", "CHARGING", "CONFIRMING", "CONFIRMED"]);
    system.assert_invariants().await;
}

async fn a_taken_seat_is_rejected_and_charges_nothing(backend: Backend) {
    let system = spawn_system(backend, Options::default()).await;
    let first = system.book("user-1", "sched-1-002").await;
    assert_eq!(
        system
            .terminal(&first.booking_id, Duration::from_secs(30))
            .await
            .status,
        "CONFIRMED"
    );

    let second = system.book("user-2", "sched-1-002").await;
    let booking = system
        .terminal(&second.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "REJECTED", "{booking:?}");
    assert!(
        booking
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("SOLD")),
        "{booking:?}"
    );
    assert_eq!(system.wallet("user-2").await, 1_000, "nothing charged");
    let steps: Vec<String> = system
        .saga_log(&second.saga_id)
        .await
        .into_iter()
        .map(|e| e.to_state)
        .collect();
    assert_eq!(steps, ["HOLDING", "REJECTED"]);
    system.assert_invariants().await;
}
