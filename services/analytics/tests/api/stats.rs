//! The `/stats` queries answer what the consumer recorded; bad input gets a problem answer.

use faultline_contracts::{
    http::{ConcertStats, UserStats},
    messages::{BookingCancelled, BookingConfirmed, BookingRejected},
};
use faultline_harness::{Backend, both_backends};

use crate::helpers::spawn_app;

both_backends!(
    the_stats_count_every_outcome_by_user_and_concert,
    a_bad_or_unknown_user_id_gets_a_problem_answer,
    an_event_naming_an_impossible_id_is_dead_lettered_and_the_next_one_counted,
);

fn confirmed(booking: &str, user: &str, concert: &str, amount: i64) -> BookingConfirmed {
    BookingConfirmed {
        booking_id: booking.into(),
        user_id: user.into(),
        seat_id: format!("seat-{booking}"),
        concert_id: concert.into(),
        amount,
    }
}

async fn the_stats_count_every_outcome_by_user_and_concert(backend: Backend) {
    let app = spawn_app(backend).await;
    let empty = app.summary().await;
    assert_eq!(
        (empty.confirmed, empty.revenue, empty.events_applied),
        (0, 0, 0)
    );
    assert_eq!(empty.freshness.last_event_at_ms, None);

    app.publish(&confirmed("b-1", "user-1", "concert-1", 100))
        .await;
    app.publish(&confirmed("b-2", "user-1", "concert-2", 50))
        .await;
    app.publish(&BookingCancelled {
        booking_id: "b-3".into(),
        user_id: "user-1".into(),
        seat_id: "seat-b-3".into(),
        concert_id: Some("concert-1".into()),
        reason: "payment declined".into(),
    })
    .await;
    app.publish(&BookingRejected {
        booking_id: "b-4".into(),
        user_id: "user-2".into(),
        seat_id: "seat-b-4".into(),
        reason: "seat unavailable".into(),
    })
    .await;

    let summary = app.applied(4).await;
    assert_eq!(
        (
            summary.confirmed,
            summary.cancelled,
            summary.rejected,
            summary.revenue,
            summary.events_applied
        ),
        (2, 1, 1, 150, 4)
    );
    assert!(summary.freshness.last_event_at_ms.is_some());

    let user: UserStats = app
        .get("/stats/users/user-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        user,
        UserStats {
            user_id: "user-1".into(),
            confirmed: 2,
            cancelled: 1,
            rejected: 0,
            points_spent: 150,
        }
    );
    let rejected: UserStats = app
        .get("/stats/users/user-2")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!((rejected.rejected, rejected.points_spent), (1, 0));

    let concerts: Vec<ConcertStats> = app.get("/stats/concerts").await.json().await.expect("json");
    assert_eq!(
        concerts,
        [
            ConcertStats {
                concert_id: "concert-1".into(),
                confirmed: 1,
                cancelled: 1,
                revenue: 100,
            },
            ConcertStats {
                concert_id: "concert-2".into(),
                confirmed: 1,
                cancelled: 0,
                revenue: 50,
            },
        ]
    );
}

async fn a_bad_or_unknown_user_id_gets_a_problem_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let bad = app.get("/stats/users/not%20a%20user").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    let detail = bad.text().await.expect("body");
    assert!(detail.contains("is not a user id"), "{detail}");

    let unknown = app.get("/stats/users/nobody").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = unknown.json().await.expect("problem json");
    assert_eq!(
        problem["detail"],
        "no bookings recorded for user \"nobody\""
    );
}

async fn an_event_naming_an_impossible_id_is_dead_lettered_and_the_next_one_counted(
    backend: Backend,
) {
    use faultline_contracts::topics;
    use faultline_kit::messaging::headers;
    let app = spawn_app(backend).await;
    app.publish(&confirmed("b-1", "user 1", "concert-1", 100))
        .await;
    app.publish(&confirmed("b-2", "user-1", "concert 1", 100))
        .await;
    app.publish(&confirmed("b-3", "user-1", "concert-1", 40))
        .await;
    let summary = app.applied(1).await;
    assert_eq!((summary.confirmed, summary.revenue), (1, 40));
    let dead = faultline_harness::topic_reader::read_until(
        &app.broker.bootstrap(),
        topics::DEAD_LETTER,
        std::time::Duration::from_secs(30),
        |r| r.len() >= 2,
    )
    .await
    .expect("read dead letters");
    let reasons: Vec<&str> = dead
        .iter()
        .filter_map(|r| {
            r.headers
                .get(headers::DEAD_LETTER_REASON)
                .map(String::as_str)
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{dead:?}");
    // Keyed by booking, the two may sit on different partitions: in either order.
    for why in [
        "\"user 1\" is not a user id",
        "\"concert 1\" is not a concert id",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(why)),
            "{why}: {reasons:?}"
        );
    }
}
