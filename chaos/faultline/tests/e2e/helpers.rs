//! Starting a stack the way `faultline up` does, and talking to its gateway as a user.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use faultline::stack::{Stack, StackOptions};
use faultline_contracts::http::BookingView;
use faultline_harness::wait::eventually;

pub struct TestStack {
    pub stack: Stack,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Starts a stack in a fresh run directory; `adjust` tweaks the options first.
pub async fn start(adjust: impl FnOnce(&mut StackOptions)) -> TestStack {
    faultline_harness::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(dir.path().join("run"));
    adjust(&mut options);
    let stack = Stack::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_faultline")),
        options,
    )
    .await
    .expect("the stack starts");
    TestStack {
        stack,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        _dir: dir,
    }
}

impl TestStack {
    pub fn gateway(&self, path: &str) -> String {
        format!("{}{path}", self.stack.endpoints().gateway_url)
    }

    pub fn token(&self, user: &str) -> String {
        self.stack
            .endpoints()
            .tokens
            .get(user)
            .cloned()
            .expect("a token for a seeded user")
    }

    /// `POST /bookings` as `user` with `key`.
    pub async fn book(&self, user: &str, key: &str, seat: &str) -> reqwest::Response {
        self.http
            .post(self.gateway("/bookings"))
            .bearer_auth(self.token(user))
            .header("idempotency-key", key)
            .json(&serde_json::json!({ "seat_id": seat }))
            .send()
            .await
            .expect("POST /bookings")
    }

    pub async fn get_as(&self, user: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.gateway(path))
            .bearer_auth(self.token(user))
            .send()
            .await
            .expect("GET")
    }

    /// Analytics' `GET /stats/summary`.
    pub async fn analytics_summary<T: serde::de::DeserializeOwned>(&self) -> T {
        let analytics = self.stack.endpoints().service("analytics");
        self.http
            .get(format!("{analytics}/stats/summary"))
            .send()
            .await
            .expect("GET /stats/summary")
            .json()
            .await
            .expect("summary json")
    }

    /// Polls the booking (as its owner) until its saga finished.
    pub async fn terminal(&self, user: &str, booking_id: &str) -> BookingView {
        eventually(
            &format!("booking {booking_id} to finish"),
            Duration::from_secs(30),
            || async {
                let booking: BookingView = self
                    .get_as(user, &format!("/bookings/{booking_id}"))
                    .await
                    .json()
                    .await
                    .expect("booking");
                (booking.status != "PENDING").then_some(booking)
            },
        )
        .await
    }
}

/// A problem+json answer's `detail`, after checking the status and content type.
pub async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.expect("problem json");
    body["detail"].as_str().unwrap_or_default().to_owned()
}

/// The lines of a run's output that say what went wrong (a failed or unknown verdict, an aborted
/// act, an error), to lead a failure message: CI shows only the head and tail of a long output.
pub fn failing_lines(output: &str) -> String {
    output
        .lines()
        .filter(|line| {
            // An unknown verdict sits in a table cell; "0 unknown" in a summary line is fine.
            [
                "FAIL",
                "ERROR",
                "┆ unknown",
                "aborted",
                "could not be played",
                "Error",
                "error:",
            ]
            .iter()
            .any(|word| line.contains(word))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Held by the tests that run whole chaos scenarios or the demo tour, so that no two of them
/// share the machine's two cores: their verdicts include timing (a recovery within 30 s, a
/// hand-over within the session timeout + 30 s), which two stacks at once can miss on a slow
/// machine without anything being wrong (the `overload` scenario recovered in 12 s alone and in
/// 30 s beside `replica-loss`).
pub fn one_scenario_at_a_time() -> MutexGuard<'static, ()> {
    static SCENARIOS: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one may still run.
    SCENARIOS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
