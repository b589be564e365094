//! Reservation killed with SIGKILL mid-saga and restarted: every saga still finishes, and
//! charges whose replies were lost before the kill are not charged twice after it.

use std::time::Duration;

use faultline_contracts::http::ReservationSummary;
use faultline_harness::{Backend, both_backends, wait::eventually};
use reservation::configuration::SagaSettings;

use crate::helpers::{Options, spawn_system};

both_backends!(a_reservation_killed_mid_saga_finishes_every_saga_after_restart);

async fn a_reservation_killed_mid_saga_finishes_every_saga_after_restart(backend: Backend) {
    // The restarted consumer gets its partitions back only after the broker's rejoin pause
    // (a rebalance): give holds time to be answered so every seat can still sell.
    let saga = SagaSettings {
        hold_timeout_ms: 30_000,
        ..Options::default().saga
    };
    let options = Options {
        seats: 20,
        reservation_process: true,
        payment_timeout_ms: 500,
        saga,
        ..Options::default()
    };
    let mut system = spawn_system(backend, options).await;
    // Payment commits charges but reservation never hears back: sagas pile up in CHARGING.
    system.lose_payment_replies().await;
    let mut accepted = Vec::new();
    for i in 0..30 {
        accepted.push(
            system
                .book(
                    &format!("user-{}", i % 5 + 1),
                    &format!("sched-1-{:03}", i % 20 + 1),
                )
                .await,
        );
    }
    eventually(
        "several charges committed with their replies lost",
        Duration::from_secs(30),
        || async { system.committed_charges().await >= 5 },
    )
    .await;
    let before: ReservationSummary = system
        .get(format!("{}/admin/summary", system.reservation))
        .await;
    assert!(
        before.pending > 0,
        "sagas are in flight when the process dies: {before:?}"
    );

    system.kill_reservation();
    system.heal_payment_link().await;
    system.restart_reservation().await;
    for booking in &accepted {
        system
            .terminal(&booking.booking_id, Duration::from_secs(60))
            .await;
    }
    let bookings = system.assert_invariants().await;
    let confirmed = bookings.iter().filter(|b| b.status == "CONFIRMED").count();
    assert_eq!(confirmed, 20, "every seat found a buyer: {bookings:#?}");
}
