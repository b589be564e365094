//! The gateway's contract: auth, ownership, idempotency, rate limit, bad input, the OpenAPI
//! document, and the circuit breaker toward reservation.

use std::time::Duration;

use faultline_contracts::http::{BookingAccepted, BookingView, WalletView};

use crate::helpers::{problem, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_valid_token_gets_in_and_a_user_sees_only_their_own() {
    let t = start(|_| {}).await;
    let url = t.gateway("/me/bookings");
    let none = t.http.get(&url).send().await.expect("GET");
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    problem(none, 401).await;
    problem(
        t.http
            .get(&url)
            .bearer_auth("garbage")
            .send()
            .await
            .expect("GET"),
        401,
    )
    .await;
    let forged = gateway::auth::Tokens::new(b"not-the-secret", Duration::from_secs(60))
        .mint("user-1")
        .expect("mint");
    problem(
        t.http
            .get(&url)
            .bearer_auth(forged)
            .send()
            .await
            .expect("GET"),
        401,
    )
    .await;

    let accepted: BookingAccepted = t
        .book("user-1", "k1", "saga-live-1-001")
        .await
        .json()
        .await
        .expect("accepted");
    assert_eq!(
        t.terminal("user-1", &accepted.booking_id).await.status,
        "CONFIRMED"
    );
    // user-2 cannot see user-1's booking: the same 404 as for a booking that does not exist.
    let theirs = problem(
        t.get_as("user-2", &format!("/bookings/{}", accepted.booking_id))
            .await,
        404,
    )
    .await;
    let missing = problem(
        t.get_as("user-2", "/bookings/01a1fcd0-0000-7000-8000-000000000000")
            .await,
        404,
    )
    .await;
    assert!(theirs.starts_with("no booking") && missing.starts_with("no booking"));
    let mine: Vec<BookingView> = t
        .get_as("user-1", "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    let others: Vec<BookingView> = t
        .get_as("user-2", "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine.len(), 1);
    assert!(others.is_empty());
    let wallet: WalletView = t
        .get_as("user-1", "/me/wallet")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!((wallet.user_id.as_str(), wallet.balance), ("user-1", 900));
    let seats: Vec<serde_json::Value> = t
        .get_as("user-2", "/schedules/saga-live-1/seats")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(seats.len(), 40);
    assert_eq!(seats[0]["status"], "SOLD");
    assert!(
        seats[0]["booking_id"].is_null(),
        "browsing never shows whose booking holds a seat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_refuses_misuse_and_makes_one_booking_of_64_racing_requests() {
    let t = start(|_| {}).await;
    problem(
        t.http
            .post(t.gateway("/bookings"))
            .bearer_auth(t.token("user-1"))
            .json(&serde_json::json!({"seat_id": "saga-live-1-002"}))
            .send()
            .await
            .expect("POST"),
        400,
    )
    .await;

    let first = t.book("user-1", "key-a", "saga-live-1-002").await;
    assert_eq!(first.status(), 202);
    let first: BookingAccepted = first.json().await.expect("json");
    let again = t.book("user-1", "key-a", "saga-live-1-002").await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again
            .json::<BookingAccepted>()
            .await
            .expect("json")
            .booking_id,
        first.booking_id
    );
    let misuse = problem(t.book("user-1", "key-a", "saga-live-1-003").await, 422).await;
    assert!(misuse.contains("different request"), "{misuse}");
    // The same key from another user is another key.
    assert_eq!(
        t.book("user-2", "key-a", "saga-live-1-003").await.status(),
        202
    );

    let racing = (0..64).map(|_| {
        let t = &t;
        async move {
            let response = t.book("user-3", "race", "saga-live-1-010").await;
            let status = response.status().as_u16();
            let booking = if status == 202 {
                Some(
                    response
                        .json::<BookingAccepted>()
                        .await
                        .expect("json")
                        .booking_id,
                )
            } else {
                None
            };
            (status, booking)
        }
    });
    let answers = futures::future::join_all(racing).await;
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 202 || *status == 409),
        "{answers:?}"
    );
    let mut ids: Vec<&String> = answers.iter().filter_map(|(_, id)| id.as_ref()).collect();
    assert!(
        !ids.is_empty(),
        "at least the first request was answered 202"
    );
    ids.dedup();
    assert_eq!(ids.len(), 1, "every 202 names the same booking");
    let bookings: Vec<BookingView> = t
        .get_as("user-3", "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bookings.len(), 1, "64 racing requests made one booking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_too_many_requests_get_clear_answers() {
    let t = start(|options| options.rate_limit = (1, 5)).await;
    let post = |body: String| {
        t.http
            .post(t.gateway("/bookings"))
            .bearer_auth(t.token("user-4"))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = problem(post("{\"seat_id\":".into()).await.expect("POST"), 400).await;
    assert!(malformed.contains("malformed JSON"), "{malformed}");
    let invalid = problem(
        post("{\"seat_id\":\"no/such seat\"}".into())
            .await
            .expect("POST"),
        422,
    )
    .await;
    assert!(invalid.contains("is not a seat id"), "{invalid}");
    problem(
        post(format!("{{\"seat_id\":\"{}\"}}", "x".repeat(100 * 1024)))
            .await
            .expect("POST"),
        413,
    )
    .await;
    // Past the burst of 5, the user is told when to come back; others are not affected.
    let mut limited = None;
    for _ in 0..10 {
        let response = t.get_as("user-4", "/me/wallet").await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the rate limit answers 429 past the burst");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    problem(limited, 429).await;
    assert_eq!(t.get_as("user-5", "/me/wallet").await.status(), 200);

    // The OpenAPI document describes exactly the routes served (the kit's included).
    let doc: serde_json::Value = t
        .http
        .get(t.gateway("/openapi.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/admin/contract",
            "/admin/inbox",
            "/admin/load",
            "/bookings",
            "/bookings/{booking_id}",
            "/concerts",
            "/health",
            "/me/bookings",
            "/me/wallet",
            "/ready",
            "/schedules/{schedule_id}/seats"
        ]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_to_reservation_is_a_fast_503_with_retry_after() {
    let mut t = start(|_| {}).await;
    t.stack.kill("reservation").expect("kill reservation");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let response = t
            .book("user-6", &format!("cb-{i}"), "saga-live-1-020")
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            assert!(
                response.headers().contains_key("retry-after"),
                "503 carries Retry-After"
            );
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&503),
        "the breaker opened after repeated failures: {statuses:?}"
    );
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 502),
        "failures before it opened: {statuses:?}"
    );
    t.stack.restart("reservation").await.expect("restart");
    // The breaker's open window (2 s, in the gateway's process) is the thing under test: its end
    // shows only to the very request that follows it, so this wait is time itself, not a poll.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let accepted = t.book("user-6", "after", "saga-live-1-020").await;
    assert_eq!(
        accepted.status(),
        202,
        "the breaker closed again once reservation answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_works_the_same_on_postgres() {
    let t =
        start(|options| options.postgres = Some(faultline_harness::postgres::server_url())).await;
    assert_eq!(t.stack.endpoints().database, "postgres");
    let accepted: BookingAccepted = t
        .book("user-1", "pg", "comp-tour-1-001")
        .await
        .json()
        .await
        .expect("json");
    let replay = t.book("user-1", "pg", "comp-tour-1-001").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        t.terminal("user-1", &accepted.booking_id).await.status,
        "CONFIRMED"
    );
    let poor: BookingAccepted = t
        .book("user-9", "pg-poor", "comp-tour-1-002")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        t.terminal("user-9", &poor.booking_id).await.status,
        "CANCELLED"
    );
}
