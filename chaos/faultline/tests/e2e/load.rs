//! Load on the whole stack: a consumer that loses its group session gets its partitions back by
//! itself, and an overloaded system refuses at the door (503 + `Retry-After`) while every booking
//! it accepted still finishes.

use std::time::{Duration, Instant};

use faultline_harness::wait::{Patience, eventually};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::helpers;

/// Every service's `/ready` answers 200.
async fn all_ready(stack: &helpers::TestStack) -> bool {
    for url in stack.stack.endpoints().services.values() {
        let ready = stack
            .http
            .get(format!("{url}/ready"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if !ready {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_get_their_partitions_back_after_the_broker_stalls_past_their_session() {
    const SESSION_MS: u64 = 6_000;
    let stack = helpers::start(|options| {
        options.kafka = serde_json::json!({ "session_timeout_ms": SESSION_MS });
    })
    .await;
    let broker = Pid::from_raw(stack.stack.broker_pid() as i32);

    // The broker stops answering anything (heartbeats included) for longer than the session.
    kill(broker, Signal::SIGSTOP).expect("SIGSTOP the broker");
    let paused = Instant::now();
    let mut saw_unready = false;
    while paused.elapsed() < Duration::from_millis(SESSION_MS + 5_000) {
        saw_unready |= !all_ready(&stack).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    kill(broker, Signal::SIGCONT).expect("SIGCONT the broker");
    assert!(
        saw_unready,
        "no consumer noticed that its group session was lost while the broker was stopped"
    );

    // Back within the session timeout plus 30 s, whatever the broker did with the old members.
    eventually(
        "every consumer to get its partitions back after the broker resumed",
        Patience::within(Duration::from_millis(SESSION_MS + 30_000))
            .every(Duration::from_millis(250)),
        || all_ready(&stack),
    )
    .await;
    let answer = stack
        .book("user-1", "after-the-stall", "saga-live-1-001")
        .await;
    assert_eq!(answer.status(), 202);
    let accepted: faultline_contracts::http::BookingAccepted =
        answer.json().await.expect("202 body");
    let booking = stack.terminal("user-1", &accepted.booking_id).await;
    assert_eq!(booking.status, "CONFIRMED", "{booking:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_at_the_door_and_every_accepted_booking_finishes() {
    const LIMIT: i64 = 20;
    let stack = helpers::start(|options| {
        options.admission = serde_json::json!({ "max_in_flight": LIMIT });
        options.rate_limit = (10_000, 10_000);
    })
    .await;
    // 70 seats, all at once: far more than LIMIT can be in flight.
    let seats: Vec<String> = (1..=40)
        .map(|n| format!("saga-live-1-{n:03}"))
        .chain((1..=30).map(|n| format!("comp-tour-1-{n:03}")))
        .collect();
    let answers = futures::future::join_all(seats.iter().enumerate().map(|(i, seat)| {
        let stack = &stack;
        async move {
            let user = format!("user-{}", i % 8 + 1);
            let started = Instant::now();
            let answer = stack.book(&user, &format!("burst-{i}"), seat).await;
            (user, answer, started.elapsed())
        }
    }))
    .await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (user, answer, took) in answers {
        match answer.status().as_u16() {
            202 => {
                let body: faultline_contracts::http::BookingAccepted =
                    answer.json().await.expect("202 body");
                accepted.push((user, body.booking_id));
            }
            503 => {
                assert!(
                    answer.headers().contains_key("retry-after"),
                    "a refusal says when to come back"
                );
                assert!(
                    took < Duration::from_secs(2),
                    "a refusal is fast, not queued ({took:?})"
                );
                helpers::problem(answer, 503).await;
                refused += 1;
            }
            other => panic!("unexpected answer {other} under overload"),
        }
    }
    assert!(
        refused > 0,
        "nothing was refused: the burst never overloaded admission control"
    );
    assert!(!accepted.is_empty(), "admission control refused everything");
    for (user, booking_id) in &accepted {
        let booking = stack.terminal(user, booking_id).await;
        assert_ne!(booking.status, "PENDING");
    }
    // Once the accepted work drained, new bookings are admitted again (the gauge is re-read
    // from the database every 100 ms).
    eventually(
        "admission control to admit again after the work in flight drained",
        Patience::within(Duration::from_secs(2)).every(Duration::from_millis(100)),
        || async {
            let answer = stack.book("user-1", "after-the-burst", &seats[0]).await;
            match answer.status().as_u16() {
                202 => Ok(()),
                refused => Err(format!("still refused with {refused}")),
            }
        },
    )
    .await;
}

/// The benchmark as a user runs it, briefly: it starts its own stack, drives an open-loop load,
/// and writes `bench.json` with every figure the README quotes. Not a speed check: a benchmark
/// proves speed, this proves the benchmark works.
#[test]
fn a_short_bench_completes_and_writes_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("bench");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "bench",
            "--rate",
            "20",
            "--duration",
            "3",
            "--idle",
            "1",
            "--quiet",
        ])
        .arg("--run-dir")
        .arg(&run_dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run faultline bench");
    assert!(status.success(), "faultline bench failed: {status}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("bench.json")).expect("bench.json written"),
    )
    .expect("bench.json is JSON");
    for field in [
        "offered_per_s",
        "accepted_per_s",
        "completed_per_s",
        "refused",
        "saga_latency_ms",
        "outcomes",
        "processes",
        "outbox_lag",
        "consumer_lag",
        "idle",
        "invariants",
    ] {
        assert!(
            report.get(field).is_some(),
            "bench.json lacks {field}: {report}"
        );
    }
    assert_eq!(report["requests"], 60, "20/s for 3 s");
    assert_eq!(
        report["outcomes"]["PENDING"], 0,
        "every booking finished: {}",
        report["outcomes"]
    );
    for process in ["broker", "reservation", "inventory", "payment", "gateway"] {
        assert!(
            report["processes"][process]["cpu_s"].is_number(),
            "no CPU figure for {process}: {}",
            report["processes"]
        );
    }
}
