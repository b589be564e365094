//! Charges and refunds: idempotent by key, never negative, the ledger always sums.

use std::time::Duration;

use faultline_harness::{
    Backend, both_backends,
    wait::{Patience, eventually},
};
use sqlx::{Connection as _, Executor as _};

use crate::helpers::{charge_body, spawn_app};

both_backends!(
    a_repeated_key_replays_the_stored_answer_and_charges_once,
    a_key_reused_for_another_request_is_refused,
    bad_requests_get_clear_errors_and_change_nothing,
    a_charge_beyond_the_balance_is_declined_and_the_balance_never_goes_negative,
    a_refund_gives_back_once_and_voids_a_charge_that_has_not_arrived,
    a_booking_already_charged_is_not_charged_again_under_another_key,
);

async fn a_repeated_key_replays_the_stored_answer_and_charges_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app
        .charge("s1:charge", charge_body("alice", "b1", 100))
        .await;
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.expect("body");
    for _ in 0..3 {
        let again = app
            .charge("s1:charge", charge_body("alice", "b1", 100))
            .await;
        assert_eq!(again.status(), 201);
        assert_eq!(
            again
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("true")
        );
        assert_eq!(
            again.text().await.expect("body"),
            first_body,
            "replayed verbatim"
        );
    }
    assert_eq!(app.balance("alice").await, 400);
    let summary = app.summary().await;
    assert_eq!(summary.net_by_booking.len(), 1);
    assert_eq!(
        (
            summary.net_by_booking[0].charges,
            summary.net_by_booking[0].charged
        ),
        (1, 100)
    );
}

async fn a_key_reused_for_another_request_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.charge("k", charge_body("alice", "b1", 100))
            .await
            .status(),
        201
    );
    let misuse = app.charge("k", charge_body("alice", "b1", 200)).await;
    assert_eq!(misuse.status(), 422);
    assert_eq!(misuse.headers()["content-type"], "application/problem+json");
    assert_eq!(app.balance("alice").await, 400);
}

async fn a_booking_already_charged_is_not_charged_again_under_another_key(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.charge("first", charge_body("alice", "b1", 100))
            .await
            .status(),
        201
    );
    let again = app.charge("second", charge_body("alice", "b1", 100)).await;
    assert_eq!(again.status(), 402);
    let body: serde_json::Value = again.json().await.expect("json");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("already charged under another key")),
        "{body}"
    );
    assert_eq!(app.balance("alice").await, 400, "charged once");
    // Another booking of the same user is charged as usual.
    assert_eq!(
        app.charge("third", charge_body("alice", "b2", 100))
            .await
            .status(),
        201
    );
}

async fn bad_requests_get_clear_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/charges", app.address);
    let send = |key: Option<&str>, body: String| {
        let mut request = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let negative = send(Some("n"), charge_body("alice", "b", -5).to_string())
        .await
        .expect("send");
    assert_eq!(negative.status(), 422);
    let problem: serde_json::Value = negative.json().await.expect("problem json");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("must not be negative"),
        "{problem}"
    );
    assert_eq!(
        send(Some("m"), "{\"user_id\":".into())
            .await
            .expect("send")
            .status(),
        400,
        "malformed JSON"
    );
    assert_eq!(
        send(None, charge_body("alice", "b", 5).to_string())
            .await
            .expect("send")
            .status(),
        400,
        "no key"
    );
    assert_eq!(
        send(Some("bad key"), charge_body("alice", "b", 5).to_string())
            .await
            .expect("send")
            .status(),
        400
    );
    let oversized = serde_json::json!({ "user_id": "alice", "booking_id": "x".repeat(8 * 1024), "saga_id": "s", "amount": 1 });
    assert_eq!(
        send(Some("o"), oversized.to_string())
            .await
            .expect("send")
            .status(),
        413
    );
    let unknown = send(Some("u"), charge_body("nobody", "b", 5).to_string())
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.balance("alice").await, 500);
    assert_eq!(app.summary().await.net_by_booking.len(), 0);
}

async fn a_charge_beyond_the_balance_is_declined_and_the_balance_never_goes_negative(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    // 20 concurrent charges of 30 against 100 points: exactly 3 can succeed.
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            app.charge(&format!("c{i}"), charge_body("bob", &format!("b{i}"), 30))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 402).count(),
        17,
        "{statuses:?}"
    );
    assert_eq!(app.balance("bob").await, 10);
    let summary = app.summary().await;
    assert_eq!(summary.mismatched_wallets, 0);
    assert_eq!(summary.ledger_total, summary.balance_total);
    assert_eq!(summary.initial_total, 600);
}

async fn a_refund_gives_back_once_and_voids_a_charge_that_has_not_arrived(backend: Backend) {
    let app = spawn_app(backend).await;
    let refund = |key: &'static str, charge_key: &'static str| {
        app.http
            .post(format!("{}/refunds", app.address))
            .header("idempotency-key", key)
            .json(&serde_json::json!({ "charge_key": charge_key, "booking_id": "b1", "saga_id": "s1" }))
            .send()
    };
    assert_eq!(
        app.charge("s1:charge", charge_body("alice", "b1", 100))
            .await
            .status(),
        201
    );
    let first: serde_json::Value = refund("s1:refund", "s1:charge")
        .await
        .expect("refund")
        .json()
        .await
        .expect("json");
    assert_eq!(first["status"], "refunded");
    let other_key: serde_json::Value = refund("s1:refund-2", "s1:charge")
        .await
        .expect("refund")
        .json()
        .await
        .expect("json");
    assert_eq!(other_key["status"], "already_refunded");
    assert_eq!(app.balance("alice").await, 500);

    // A refund that overtakes its charge: nothing to refund, and the late charge is declined.
    let early: serde_json::Value = refund("s2:refund", "s2:charge")
        .await
        .expect("refund")
        .json()
        .await
        .expect("json");
    assert_eq!(early["status"], "nothing_to_refund");
    assert_eq!(
        app.charge("s2:charge", charge_body("alice", "b2", 100))
            .await
            .status(),
        402
    );
    assert_eq!(app.balance("alice").await, 500);
    let summary = app.summary().await;
    assert_eq!(summary.mismatched_wallets, 0);
    assert_eq!(
        summary.balance_total
            + summary
                .net_by_booking
                .iter()
                .map(|n| n.charged - n.refunded)
                .sum::<i64>(),
        600
    );
}

/// PostgreSQL only: it needs a row lock that blocks the charge after its key is claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_charge_whose_caller_gave_up_still_completes_and_replays() {
    let app = spawn_app(Backend::Postgres).await;
    let mut blocker = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    blocker.execute("BEGIN").await.expect("begin");
    blocker
        .execute("SELECT balance FROM wallets WHERE user_id = 'alice' FOR UPDATE")
        .await
        .expect("lock");

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let gave_up = impatient
        .post(format!("{}/charges", app.address))
        .header("idempotency-key", "s9:charge")
        .json(&charge_body("alice", "b9", 100))
        .send()
        .await;
    assert!(
        gave_up.is_err_and(|e| e.is_timeout()),
        "the caller times out while the charge waits on the lock"
    );
    blocker.execute("COMMIT").await.expect("release the lock");

    let status = eventually(
        "the abandoned charge to finish (409 while it is in flight)",
        Patience::within(Duration::from_secs(5)).every(Duration::from_millis(100)),
        || async {
            let status = app
                .charge("s9:charge", charge_body("alice", "b9", 100))
                .await
                .status()
                .as_u16();
            (status != 409).then_some(status)
        },
    )
    .await;
    assert_eq!(
        status, 201,
        "the abandoned request completed and its answer is replayed"
    );
    assert_eq!(app.balance("alice").await, 400, "charged once");
}
