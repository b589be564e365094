//! Hostile input against the running stack: forged, expired, premature, oversized and misplaced
//! tokens; one user going after another's booking and Idempotency-Key; CR/LF, `..`, encoded
//! slashes and very long ids in headers and paths. Each must get a clear 4xx — 401 with
//! `WWW-Authenticate`, 404 without effect, 400 — and never a 5xx; afterwards no service has
//! answered a status its OpenAPI document does not list.

use std::time::Duration;

use faultline_contracts::http::{BookingAccepted, BookingView, WalletView};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestStack, problem, start};

/// Request headers: (name, value).
type Headers = Vec<(&'static str, String)>;

const SERVICES: [&str; 5] = faultline_contracts::topology::Service::ALL_NAMES;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The stack's token key, from the gateway's config in the run directory.
fn tokens(stack: &TestStack) -> gateway::auth::Tokens {
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(stack.stack.run_dir().join("config").join("gateway.json"))
            .expect("gateway config"),
    )
    .expect("json");
    let secret = config["auth"]["secret"].as_str().expect("auth.secret");
    gateway::auth::Tokens::new(secret.as_bytes(), Duration::from_secs(3600))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Sends `raw` (a whole HTTP/1.1 request) to `base_url` and returns the status code.
async fn raw_status(base_url: &str, raw: &str) -> u16 {
    let address = base_url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    socket.write_all(raw.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("read");
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {line:?}"))
}

async fn assert_no_undocumented_status(stack: &TestStack) {
    for service in SERVICES {
        let url = stack.stack.endpoints().service(service);
        let report: serde_json::Value = stack
            .http
            .get(format!("{url}/admin/contract"))
            .send()
            .await
            .expect("GET /admin/contract")
            .json()
            .await
            .expect("json");
        assert_eq!(
            report["undocumented"],
            serde_json::json!([]),
            "{service} answered statuses its document does not list"
        );
    }
}

#[tokio::test]
async fn every_bad_token_is_a_401_with_www_authenticate() {
    let stack = start(|_| {}).await;
    let keys = tokens(&stack);
    let later = now() + 600;
    let alg_none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(format!(r#"{{"sub":"user-1","exp":{later}}}"#).as_bytes())
    );
    let good = stack.token("user-1");
    let sign = |claims: serde_json::Value| keys.sign_claims(&claims).expect("sign");
    let bearer = |token: &str| vec![("authorization", format!("Bearer {token}"))];
    let other_key = gateway::auth::Tokens::new(b"not the secret", Duration::from_secs(60))
        .mint("user-1")
        .expect("mint");
    // (what, the request's headers, the reason the 401 must give)
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("alg none", bearer(&alg_none), "invalid token"),
        ("another key", bearer(&other_key), "InvalidSignature"),
        (
            "expired",
            bearer(&sign(
                serde_json::json!({"sub": "user-1", "iat": now() - 600, "exp": now() - 10}),
            )),
            "ExpiredSignature",
        ),
        (
            "not valid yet",
            bearer(&sign(
                serde_json::json!({"sub": "user-1", "iat": now(), "exp": later, "nbf": later - 60}),
            )),
            "ImmatureSignature",
        ),
        (
            "no subject",
            bearer(&sign(serde_json::json!({"iat": now(), "exp": later}))),
            "sub",
        ),
        (
            "a subject that is not a seeded user",
            bearer(&sign(
                serde_json::json!({"sub": "user-404", "iat": now(), "exp": later}),
            )),
            "not a user",
        ),
        (
            "a subject that is not even a user id",
            bearer(&sign(
                serde_json::json!({"sub": "../admin", "iat": now(), "exp": later}),
            )),
            "not a user",
        ),
        (
            "a 100 KB token",
            bearer(&"a".repeat(100 * 1024)),
            "more than 4096",
        ),
        (
            "the token in another header",
            vec![("x-authorization", format!("Bearer {good}"))],
            "a bearer token is required",
        ),
        (
            "another scheme",
            vec![("authorization", format!("Token {good}"))],
            "must be `Bearer",
        ),
        (
            "basic auth",
            vec![(
                "authorization",
                format!("Basic {}", base64url(b"user-1:pw")),
            )],
            "must be `Bearer",
        ),
        (
            "no scheme",
            vec![("authorization", good.clone())],
            "must be `Bearer",
        ),
        (
            "two tokens",
            bearer(&format!("{good} {good}")),
            "invalid token",
        ),
    ];
    for (name, headers, reason) in cases {
        for path in ["/me/wallet", "/me/bookings", "/concerts", "/bookings/x"] {
            let mut request = stack.http.get(stack.gateway(path));
            for (header, value) in &headers {
                request = request.header(*header, value);
            }
            let response = request.send().await.expect("GET");
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.as_bytes()),
                Some(&b"Bearer"[..]),
                "{name} on {path}"
            );
            let detail = problem(response, 401).await;
            assert!(detail.contains(reason), "{name} on {path}: {detail}");
        }
    }
    // The token in the query string is not a token either.
    let response = stack
        .http
        .get(stack.gateway(&format!("/me/wallet?access_token={good}")))
        .send()
        .await
        .expect("GET");
    problem(response, 401).await;
    // And a lower-case scheme is still the bearer scheme (RFC 9110: case-insensitive).
    let response = stack
        .http
        .get(stack.gateway("/me/wallet"))
        .header("authorization", format!("bearer {good}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_no_undocumented_status(&stack).await;
}

#[tokio::test]
async fn a_user_cannot_read_pay_for_or_replay_another_users_booking() {
    let stack = start(|_| {}).await;
    let (a, b) = ("user-1", "user-2");
    let seat = "saga-live-1-007";
    let answer = stack.book(b, "shared-key", seat).await;
    assert_eq!(answer.status(), 202);
    let b_booking: BookingAccepted = answer.json().await.expect("accepted");
    assert_eq!(
        stack.terminal(b, &b_booking.booking_id).await.status,
        "CONFIRMED"
    );

    // Reading it: 404, exactly like a booking that does not exist.
    let foreign = stack
        .get_as(a, &format!("/bookings/{}", b_booking.booking_id))
        .await;
    let foreign_detail = problem(foreign, 404).await;
    let missing = stack.get_as(a, "/bookings/no-such-booking").await;
    let missing_detail = problem(missing, 404).await;
    assert_eq!(
        foreign_detail.replace(&b_booking.booking_id, "ID"),
        missing_detail.replace("no-such-booking", "ID")
    );
    let mine: Vec<BookingView> = stack
        .get_as(a, "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    assert!(mine.iter().all(|booking| booking.user_id == a), "{mine:?}");

    // Replaying B's key (with B's very body): A's own request, never B's stored answer.
    let answer = stack.book(a, "shared-key", seat).await;
    assert_eq!(answer.status(), 202);
    assert!(answer.headers().get("idempotent-replayed").is_none());
    let a_booking: BookingAccepted = answer.json().await.expect("accepted");
    assert_ne!(a_booking.booking_id, b_booking.booking_id);
    let a_outcome = stack.terminal(a, &a_booking.booking_id).await;
    assert_eq!(
        a_outcome.status, "REJECTED",
        "the seat is B's: {a_outcome:?}"
    );
    assert_eq!(a_outcome.user_id, a);

    // Booking in B's name through the body: the token decides whose booking it is.
    let answer = stack
        .http
        .post(stack.gateway("/bookings"))
        .bearer_auth(stack.token(a))
        .header("idempotency-key", "in-bs-name")
        .json(&serde_json::json!({"seat_id": "saga-live-1-008", "user_id": b}))
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status(), 202);
    let smuggled: BookingAccepted = answer.json().await.expect("accepted");
    assert_eq!(stack.terminal(a, &smuggled.booking_id).await.user_id, a);
    problem(
        stack
            .get_as(b, &format!("/bookings/{}", smuggled.booking_id))
            .await,
        404,
    )
    .await;

    // No effect on B: still one confirmed booking, charged once; B's wallet only paid for it.
    let b_view: BookingView = stack
        .get_as(b, &format!("/bookings/{}", b_booking.booking_id))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(b_view.status, "CONFIRMED");
    let b_wallet: WalletView = stack
        .get_as(b, "/me/wallet")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(b_wallet.balance, 1000 - b_view.amount.expect("an amount"));
    let b_bookings: Vec<BookingView> = stack
        .get_as(b, "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(b_bookings.len(), 1, "{b_bookings:?}");
    assert_no_undocumented_status(&stack).await;
}

#[tokio::test]
async fn header_and_path_injection_is_a_400_or_404_never_a_5xx() {
    let stack = start(|_| {}).await;
    let token = stack.token("user-1");
    let gateway = stack.stack.endpoints().gateway_url.clone();
    let long_id = "a".repeat(8 * 1024);
    let paths = [
        "/bookings/..%2F..%2Fadmin%2Fsummary".to_owned(),
        "/bookings/%2e%2e".to_owned(),
        "/bookings/..".to_owned(),
        "/bookings/%2F".to_owned(),
        "/bookings/a%00b".to_owned(),
        "/bookings/%FF%FE".to_owned(),
        "/bookings/a%0d%0aSet-Cookie:%20x=1".to_owned(),
        format!("/bookings/{long_id}"),
        "/schedules/..%2Fadmin/seats".to_owned(),
        "/schedules/%2e%2e%2f%2e%2e%2fconcerts/seats".to_owned(),
        format!("/schedules/{long_id}/seats"),
        "/me/../admin/summary".to_owned(),
        "/%2e%2e/admin/summary".to_owned(),
    ];
    for path in &paths {
        let status = raw_status(
            &gateway,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(matches!(status, 400 | 404), "GET {path}: {status}");
    }
    // The same ids straight at the services behind the gateway.
    for (service, template) in [
        ("reservation", "/bookings/{}"),
        ("reservation", "/users/{}/bookings"),
        ("reservation", "/admin/sagas/{}/log"),
        ("inventory", "/seats/{}"),
        ("inventory", "/schedules/{}/seats"),
        ("payment", "/wallets/{}"),
        ("analytics", "/stats/users/{}"),
    ] {
        let base = stack.stack.endpoints().service(service).to_owned();
        for id in [
            "..%2F..%2Fadmin%2Fsummary",
            "%2e%2e",
            "%FF",
            "a%0d%0ab",
            long_id.as_str(),
        ] {
            let path = template.replace("{}", id);
            let status = raw_status(
                &base,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(
                matches!(status, 400 | 404),
                "{service} GET {path}: {status}"
            );
        }
    }
    // A CR and other bytes a header value may not hold: refused before any handler, or by the
    // key's own rules. (A bare LF ends the header line — HTTP/1.1 lets a server read it so — and
    // what follows is another header: no byte of it reaches the key.)
    let body = r#"{"seat_id":"saga-live-1-009"}"#;
    for key in [
        "a\rb", "a\r\n b", "a\u{0}b", "a\u{1}b", "a\u{7f}b", "kéy", "a b",
    ] {
        let status = raw_status(
            &gateway,
            &format!(
                "POST /bookings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        assert_eq!(status, 400, "Idempotency-Key {key:?}");
    }
    let status = raw_status(
        &gateway,
        &format!(
            "POST /bookings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Idempotency-Key: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            "k".repeat(8 * 1024),
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 400, "a very long Idempotency-Key");
    // Nothing was booked by any of it.
    let mine: Vec<BookingView> = stack
        .get_as("user-1", "/me/bookings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine, vec![]);
    assert_no_undocumented_status(&stack).await;
}
