//! Who gets in: a token signed with the gateway's secret whose subject is a user (a wallet at
//! payment); everyone else gets a 401 with `WWW-Authenticate: Bearer` and never reaches an
//! upstream's data.

use faultline_contracts::http::{BookingView, WalletView};
use faultline_harness::{Backend, both_backends};

use crate::helpers::{problem, spawn_app};

both_backends!(
    a_token_whose_subject_is_not_a_user_is_refused,
    an_expired_token_or_another_scheme_is_refused,
    a_user_reads_their_own_wallet_and_bookings,
);

async fn a_token_whose_subject_is_not_a_user_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for subject in ["ghost", "not a user id", ""] {
        let refused = app.get_as(subject, "/me/wallet").await;
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        let detail = problem(refused, 401).await;
        assert!(detail.contains("not a user"), "{subject:?}: {detail}");
    }
    // The same refusal for every protected route, browsing included.
    for path in ["/concerts", "/me/bookings", "/schedules/sched-1/seats"] {
        problem(app.get_as("ghost", path).await, 401).await;
    }
}

async fn an_expired_token_or_another_scheme_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expired = app
        .tokens
        .sign_claims(&serde_json::json!({"sub": "user-1", "iat": now - 120, "exp": now - 60}))
        .expect("sign");
    let detail = problem(
        app.get_with("/me/wallet", Some(&format!("Bearer {expired}")))
            .await,
        401,
    )
    .await;
    assert!(detail.contains("invalid token"), "{detail}");

    let minted = app.tokens.mint("user-1").expect("mint");
    let detail = problem(
        app.get_with("/me/wallet", Some(&format!("Token {minted}")))
            .await,
        401,
    )
    .await;
    assert!(detail.contains("must be `Bearer <token>`"), "{detail}");
    // The scheme is case-insensitive.
    let lower = app
        .get_with("/me/wallet", Some(&format!("bearer {minted}")))
        .await;
    assert_eq!(lower.status(), 200);
}

async fn a_user_reads_their_own_wallet_and_bookings(backend: Backend) {
    let app = spawn_app(backend).await;
    // Twice: the second request is let in by the user cache, with the same answer.
    for _ in 0..2 {
        let wallet: WalletView = app
            .get_as("user-1", "/me/wallet")
            .await
            .json()
            .await
            .expect("wallet json");
        assert_eq!((wallet.user_id.as_str(), wallet.balance), ("user-1", 700));
    }
    let bookings: Vec<BookingView> = app
        .get_as("user-1", "/me/bookings")
        .await
        .json()
        .await
        .expect("bookings json");
    assert!(bookings.is_empty());
    // A booking id that cannot be one URL segment is a 404 before reservation is asked.
    for id in ["a%20b", "a%2Fb", &"x".repeat(65)] {
        let detail = problem(app.get_as("user-1", &format!("/bookings/{id}")).await, 404).await;
        assert!(detail.starts_with("no booking"), "{id}: {detail}");
    }
}
