//! The command consumer: exactly one effect per message id, poison to the dead-letter topic.

use std::{collections::BTreeMap, time::Duration};

use faultline_contracts::{
    messages::{HoldSeat, InventoryEvent},
    topics,
};
use faultline_harness::{Backend, both_backends, topic_reader, wait::eventually};
use faultline_kit::messaging::{OutboundMessage, headers};

use crate::helpers::spawn_app;

fn hold(booking: &str, seat: &str) -> HoldSeat {
    HoldSeat {
        booking_id: booking.into(),
        saga_id: format!("saga-{booking}"),
        seat_id: seat.into(),
        user_id: "u-1".into(),
    }
}

both_backends!(
    a_command_delivered_three_times_has_one_effect,
    a_poison_message_is_dead_lettered_and_the_next_one_processed
);

async fn a_command_delivered_three_times_has_one_effect(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = OutboundMessage::new(&hold("b-1", "sched-1-001"));
    for _ in 0..3 {
        app.producer.send_message(&first).await.expect("send");
    }
    // Same seat → same key → same partition: processed after the three copies.
    let marker = OutboundMessage::new(&hold("b-2", "sched-1-001"));
    app.producer
        .send_message(&marker)
        .await
        .expect("send marker");

    let replies = topic_reader::read_until(
        &app.broker.bootstrap(),
        topics::INVENTORY_EVENTS,
        Duration::from_secs(30),
        |records| {
            records
                .iter()
                .any(|r| String::from_utf8_lossy(&r.payload).contains("b-2"))
        },
    )
    .await
    .expect("read replies");
    let decoded: Vec<InventoryEvent> = replies
        .iter()
        .map(|r| {
            InventoryEvent::decode(
                r.headers.get(headers::EVENT_TYPE).map(String::as_str),
                &r.payload,
            )
            .expect("decodes")
        })
        .collect();
    let held_b1 = decoded
        .iter()
        .filter(|e| matches!(e, InventoryEvent::SeatHeld(h) if h.booking_id == "b-1"))
        .count();
    let unavailable_b2 = decoded
        .iter()
        .filter(|e| matches!(e, InventoryEvent::SeatUnavailable(u) if u.booking_id == "b-2"))
        .count();
    assert_eq!(held_b1, 1, "one SeatHeld for three deliveries: {decoded:?}");
    assert_eq!(
        unavailable_b2, 1,
        "the seat was taken for the marker: {decoded:?}"
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM seat_history WHERE booking_id = $1",
            "b-1"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM inbox WHERE message_id = $1",
            &first.id
        )
        .await,
        1
    );
    assert_eq!(app.seat_status("sched-1-001").await, "HELD");
    // The reply carries the trace headers and a fresh message id of its own.
    assert!(
        replies
            .iter()
            .all(|r| r.headers.contains_key(headers::MESSAGE_ID)
                && r.headers.get(headers::SCHEMA_VERSION).map(String::as_str) == Some("1"))
    );
}

async fn a_poison_message_is_dead_lettered_and_the_next_one_processed(backend: Backend) {
    let app = spawn_app(backend).await;
    let poison_headers: BTreeMap<String, String> = [
        (headers::MESSAGE_ID.to_owned(), "poison-1".to_owned()),
        (headers::EVENT_TYPE.to_owned(), "HoldSeat".to_owned()),
    ]
    .into();
    app.producer
        .send(
            topics::INVENTORY_COMMANDS,
            "sched-1-002",
            b"\xff{not json",
            &poison_headers,
        )
        .await
        .expect("send poison");
    let violating = OutboundMessage::new(&hold("", "sched-1-002"));
    app.producer
        .send_message(&violating)
        .await
        .expect("send contract violation");
    app.producer
        .send_message(&OutboundMessage::new(&hold("b-3", "sched-1-002")))
        .await
        .expect("send valid");

    eventually(
        "the valid hold after the poison is applied",
        Duration::from_secs(30),
        || async { app.seat_status("sched-1-002").await == "HELD" },
    )
    .await;
    let dead = topic_reader::read_until(
        &app.broker.bootstrap(),
        topics::DEAD_LETTER,
        Duration::from_secs(30),
        |r| r.len() >= 2,
    )
    .await
    .expect("read dead letters");
    assert_eq!(dead.len(), 2, "{dead:?}");
    let reasons: Vec<&str> = dead
        .iter()
        .map(|r| {
            r.headers
                .get(headers::DEAD_LETTER_REASON)
                .map(String::as_str)
                .unwrap_or_default()
        })
        .collect();
    assert!(reasons[0].contains("not a JSON envelope"), "{reasons:?}");
    assert!(
        reasons[1].contains("booking_id must not be empty"),
        "{reasons:?}"
    );
    assert!(
        dead[0]
            .headers
            .get(headers::DEAD_LETTER_SOURCE)
            .is_some_and(|s| s.starts_with("inventory.commands/"))
    );
    assert_eq!(
        dead[0].payload, b"\xff{not json",
        "the original payload is kept"
    );
}
