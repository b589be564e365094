//! Failure paths: declined charge, payment unreachable, lost replies, payment unreachable after
//! it committed.

use std::time::Duration;

use faultline_harness::{Backend, both_backends, wait::eventually};
use reservation::configuration::SagaSettings;

use faultline_contracts::http::BookingAccepted;

use crate::helpers::{Options, PRICE, TestSystem, spawn_system};

both_backends!(
    a_passed_hold_deadline_compensates_and_the_late_reply_changes_nothing,
    too_few_points_cancels_and_releases_the_seat,
    an_unreachable_payment_cancels_without_charging,
    a_lost_reply_is_retried_with_the_same_key_and_charged_once,
    a_charge_committed_then_unreachable_past_the_deadline_is_refunded_once,
);

fn short_deadlines() -> SagaSettings {
    SagaSettings {
        charge_deadline_ms: 1_500,
        retry_base_ms: 50,
        retry_cap_ms: 300,
        ..SagaSettings::default()
    }
}

async fn a_passed_hold_deadline_compensates_and_the_late_reply_changes_nothing(backend: Backend) {
    // A zero hold timeout: the deadline has passed before inventory can answer.
    let saga = SagaSettings {
        hold_timeout_ms: 0,
        ..Options::default().saga
    };
    let system = spawn_system(
        backend,
        Options {
            saga,
            ..Options::default()
        },
    )
    .await;
    let accepted = system.book("user-1", "sched-1-008").await;
    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CANCELLED", "{booking:?}");
    let events: Vec<String> = system
        .saga_log(&accepted.saga_id)
        .await
        .into_iter()
        .map(|e| format!("{}:{}", e.to_state, e.event))
        .collect();
    assert_eq!(
        events,
        [
            "HOLDING:booking requested",
            "RELEASING:hold deadline passed",
            "CANCELLED:SeatReleased"
        ]
    );
    // The SeatHeld that arrived after compensation did not resurrect the saga or charge anyone,
    // and the hold it answered was released.
    assert_eq!(system.seat("sched-1-008").await.status, "AVAILABLE");
    assert_eq!(system.wallet("user-1").await, 1_000);
    system.assert_invariants().await;
}

async fn too_few_points_cancels_and_releases_the_seat(backend: Backend) {
    let system = spawn_system(
        backend,
        Options {
            wallets: vec![("poor".into(), PRICE / 2)],
            ..Options::default()
        },
    )
    .await;
    let accepted = system.book("poor", "sched-1-003").await;
    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CANCELLED", "{booking:?}");
    assert!(
        booking
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("insufficient points")),
        "{booking:?}"
    );
    assert_eq!(
        system.seat("sched-1-003").await.status,
        "AVAILABLE",
        "the seat is released"
    );
    assert_eq!(system.wallet("poor").await, PRICE / 2);
    let log = system.saga_log(&accepted.saga_id).await;
    let path: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.to_state.as_str(), e.event.as_str()))
        .collect();
    assert_eq!(
        path,
        [
            ("HOLDING", "booking requested"),
            ("CHARGING", "SeatHeld"),
            ("RELEASING", "charge declined"),
            ("CANCELLED", "SeatReleased")
        ]
    );
    system.assert_invariants().await;
}

async fn an_unreachable_payment_cancels_without_charging(backend: Backend) {
    let closed = format!(
        "http://127.0.0.1:{}",
        faultline_harness::free_port().expect("port")
    );
    let options = Options {
        saga: short_deadlines(),
        payment_timeout_ms: 300,
        payment_url_override: Some(closed),
        ..Options::default()
    };
    let system = spawn_system(backend, options).await;
    let accepted = system.book("user-1", "sched-1-004").await;
    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CANCELLED", "{booking:?}");
    let events: Vec<String> = system
        .saga_log(&accepted.saga_id)
        .await
        .into_iter()
        .map(|e| format!("{}:{}", e.to_state, e.event))
        .collect();
    assert_eq!(
        events,
        [
            "HOLDING:booking requested",
            "CHARGING:SeatHeld",
            "REFUNDING:charge deadline passed",
            "RELEASING:refund skipped",
            "CANCELLED:SeatReleased"
        ],
        "compensated in reverse order; no refund needed for a charge that never left"
    );
    assert_eq!(system.seat("sched-1-004").await.status, "AVAILABLE");
    assert_eq!(system.wallet("user-1").await, 1_000);
    system.assert_invariants().await;
}

/// A system whose booking of `seat` got as far as a charge that payment committed but whose
/// reply the proxy swallowed; the proxy still loses replies when this returns.
async fn charge_with_its_reply_lost(backend: Backend, seat: &str) -> (TestSystem, BookingAccepted) {
    let options = Options {
        saga: short_deadlines(),
        payment_timeout_ms: 300,
        ..Options::default()
    };
    let system = spawn_system(backend, options).await;
    system.lose_payment_replies().await;
    let accepted = system.book("user-1", seat).await;
    eventually(
        "payment to commit a charge whose reply is lost",
        Duration::from_secs(20),
        || async { system.committed_charges().await >= 1 },
    )
    .await;
    (system, accepted)
}

async fn a_lost_reply_is_retried_with_the_same_key_and_charged_once(backend: Backend) {
    let (system, accepted) = charge_with_its_reply_lost(backend, "sched-1-005").await;
    let sent_while_lost = system.bytes_to_payment().await;
    system.heal_payment_link().await;
    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CONFIRMED", "{booking:?}");
    assert!(
        system.bytes_to_payment().await > sent_while_lost,
        "the charge was sent again"
    );
    let summary = system.payment_summary().await;
    let net = summary
        .net_by_booking
        .iter()
        .find(|n| n.booking_id == accepted.booking_id)
        .expect("charged");
    assert_eq!(
        (net.charges, net.charged, net.refunded),
        (1, PRICE, 0),
        "charged exactly once"
    );
    assert_eq!(system.wallet("user-1").await, 1_000 - PRICE);
    system.assert_invariants().await;
}

async fn a_charge_committed_then_unreachable_past_the_deadline_is_refunded_once(backend: Backend) {
    let (system, accepted) = charge_with_its_reply_lost(backend, "sched-1-006").await;
    system.black_hole_payment().await;
    eventually(
        "the charge step deadline to pass",
        Duration::from_secs(20),
        || async {
            (system.booking(&accepted.booking_id).await.saga_state == "REFUNDING").then_some(())
        },
    )
    .await;
    // Refunds keep retrying while payment is unreachable; heal the link.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        system.booking(&accepted.booking_id).await.saga_state,
        "REFUNDING",
        "no refund got through the black hole"
    );
    system.heal_payment_link().await;
    let booking = system
        .terminal(&accepted.booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(booking.status, "CANCELLED", "{booking:?}");
    let summary = system.payment_summary().await;
    let net = summary
        .net_by_booking
        .iter()
        .find(|n| n.booking_id == accepted.booking_id)
        .expect("charged then refunded");
    assert_eq!(
        (net.charges, net.charged, net.refunded),
        (1, PRICE, PRICE),
        "refunded exactly once"
    );
    assert_eq!(system.wallet("user-1").await, 1_000);
    let events: Vec<String> = system
        .saga_log(&accepted.saga_id)
        .await
        .into_iter()
        .map(|e| format!("{}:{}", e.to_state, e.event))
        .collect();
    assert_eq!(
        events[2..],
        [
            "REFUNDING:charge deadline passed",
            "RELEASING:refunded",
            "CANCELLED:SeatReleased"
        ]
    );
    system.assert_invariants().await;
}
