//! Analytics counts an event delivered three times once, and says how current it is.

use std::time::Duration;

use faultline_contracts::{
    http::{AnalyticsSummary, BookingAccepted, UserStats},
    topics,
};
use faultline_harness::{
    topic_reader,
    wait::{Patience, eventually},
};
use faultline_kit::messaging::headers;

use crate::helpers::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_event_delivered_three_times_is_counted_once() {
    let t = start(|_| {}).await;
    let accepted: BookingAccepted = t
        .book("user-7", "a1", "saga-live-1-030")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        t.terminal("user-7", &accepted.booking_id).await.status,
        "CONFIRMED"
    );

    let bootstrap = t.stack.endpoints().broker.clone();
    let mine = |r: &topic_reader::Record| {
        String::from_utf8_lossy(&r.payload).contains(&accepted.booking_id)
    };
    let original = topic_reader::find(
        &bootstrap,
        topics::BOOKING_EVENTS,
        Duration::from_secs(20),
        mine,
    )
    .await
    .expect("the BookingConfirmed event");
    for _ in 0..2 {
        topic_reader::republish(&bootstrap, topics::BOOKING_EVENTS, &original)
            .await
            .expect("redeliver");
    }
    let redelivered_at = faultline_kit::storage::now_ms();
    let copies = topic_reader::read_until(
        &bootstrap,
        topics::BOOKING_EVENTS,
        Duration::from_secs(20),
        |rs| rs.iter().filter(|r| mine(r)).count() >= 3,
    )
    .await
    .expect("read");
    let id = original
        .headers
        .get(headers::MESSAGE_ID)
        .expect("message id");
    assert_eq!(
        copies
            .iter()
            .filter(|r| r.headers.get(headers::MESSAGE_ID) == Some(id))
            .count(),
        3,
        "the event really is on the topic three times"
    );

    // Wait until analytics reports, from a measurement after the copies, that it is caught up.
    let summary = eventually(
        "analytics to report it caught up after the copies",
        Patience::within(Duration::from_secs(20)).every(Duration::from_millis(100)),
        || async {
            let summary: AnalyticsSummary = t.analytics_summary().await;
            if summary.freshness.messages_behind == Some(0)
                && summary.freshness.measured_at_ms > redelivered_at + 500
            {
                Ok(summary)
            } else {
                Err(format!("{summary:?}"))
            }
        },
    )
    .await;
    assert!(!summary.freshness.stale);
    assert_eq!(
        (summary.confirmed, summary.events_applied, summary.revenue),
        (1, 1, 100),
        "{summary:?}"
    );
    let analytics = t.stack.endpoints().service("analytics");
    let user: UserStats = t
        .http
        .get(format!("{analytics}/stats/users/user-7"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!((user.confirmed, user.points_spent), (1, 100));
}
