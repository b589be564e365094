//! Every message of a finished booking delivered twice more: each consumer applies it once.

use std::time::Duration;

use faultline_contracts::topics;
use faultline_harness::{Backend, both_backends, topic_reader};
use faultline_kit::messaging::headers;

use crate::helpers::{Options, PRICE, spawn_system};

both_backends!(every_message_delivered_three_times_has_one_effect_per_consumer);

async fn every_message_delivered_three_times_has_one_effect_per_consumer(backend: Backend) {
    let system = spawn_system(backend, Options::default()).await;
    let accepted = system.book("user-1", "sched-1-007").await;
    assert_eq!(
        system
            .terminal(&accepted.booking_id, Duration::from_secs(30))
            .await
            .status,
        "CONFIRMED"
    );
    let log_before = system.saga_log(&accepted.saga_id).await;

    let mut redelivered = Vec::new();
    for topic in [topics::INVENTORY_COMMANDS, topics::INVENTORY_EVENTS] {
        let records = topic_reader::read_until(
            &system.broker.bootstrap(),
            topic,
            Duration::from_secs(20),
            |r| {
                r.iter()
                    .filter(|r| String::from_utf8_lossy(&r.payload).contains(&accepted.booking_id))
                    .count()
                    >= 2
            },
        )
        .await
        .expect("read");
        for record in records
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.payload).contains(&accepted.booking_id))
        {
            for _ in 0..2 {
                topic_reader::republish(&system.broker.bootstrap(), topic, record)
                    .await
                    .expect("redeliver");
            }
            redelivered.push(
                record
                    .headers
                    .get(headers::MESSAGE_ID)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    assert_eq!(
        redelivered.len(),
        4,
        "HoldSeat, ConfirmSeat, SeatHeld and SeatSold each delivered twice more"
    );

    // A booking after the copies on the same seat key: once it is done, the copies were consumed.
    let marker = system.book("user-2", "sched-1-007").await;
    assert_eq!(
        system
            .terminal(&marker.booking_id, Duration::from_secs(30))
            .await
            .status,
        "REJECTED"
    );

    assert_eq!(
        system.saga_log(&accepted.saga_id).await,
        log_before,
        "no saga transition from a duplicate"
    );
    let summary = system.payment_summary().await;
    let net = summary
        .net_by_booking
        .iter()
        .find(|n| n.booking_id == accepted.booking_id)
        .expect("charged");
    assert_eq!((net.charges, net.charged), (1, PRICE));
    let seat = system.seat("sched-1-007").await;
    assert_eq!(
        (seat.status.as_str(), seat.booking_id.as_deref()),
        ("SOLD", Some(accepted.booking_id.as_str()))
    );
    system.assert_invariants().await;
}
