//! The open-loop load: booking `i` is due at `t0 + i / rate` and is sent from its own task, so a
//! slow answer never delays the bookings after it (a closed loop would slow down with the system
//! and hide exactly the queueing a benchmark is for).
//!
//! Every latency is measured from the request's *intended* send time, never from when it was
//! actually sent: if the generator itself falls behind, that delay counts against the system
//! rather than vanishing (coordinated omission). How far behind the generator fell is reported
//! separately (`max_send_delay_ms`) so a saturated client can be told from a slow system.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use faultline_contracts::http::{BookSeatRequest, BookingAccepted};
use indicatif::ProgressBar;
use reqwest::StatusCode;

use super::workload::Booking;

/// How a booking request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 202, with the booking's id.
    Accepted(String),
    /// Anything else: the status code (`"429"`, `"503"`, …) or what failed (`"timeout"`,
    /// `"connect"`, `"transport"`, `"202-unreadable"`). Never retried: a refusal under overload
    /// is a result, not an accident to paper over.
    Refused(String),
}

/// One request of the load.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When it was due, as epoch milliseconds (the services' clocks use the same epoch).
    pub intended_ms: i64,
    /// From when it was due until its answer arrived.
    pub answered_after_ms: u64,
    pub answer: Answer,
}

/// What one load phase did.
#[derive(Debug)]
pub struct LoadResult {
    pub sent: Vec<Sent>,
    /// The longest any request was sent after it was due.
    pub max_send_delay_ms: u64,
    /// From the first due time until the last answer.
    pub wall: Duration,
}

/// One load phase: `bookings` at `rate` per second through `gateways` (booking `n` through
/// gateway `n` modulo their count: every gateway replica takes its share).
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    pub gateways: &'a [String],
    pub bookings: &'a [Booking],
    pub tokens: &'a std::collections::BTreeMap<String, String>,
    pub rate: f64,
    /// Makes idempotency keys unique across bench runs against the same stack.
    pub run_id: &'a str,
    /// Index of `bookings[0]` in the whole run (keys stay unique across find-max steps).
    pub first_index: usize,
}

/// The bench's one HTTP client: a pool big enough that each in-flight request has its own
/// connection, and a time limit so a lost answer ends as `timeout` instead of hanging the run.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(4_096)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?)
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Sends every booking of `load` on schedule and waits for every answer. `progress` counts
/// answers; its message shows accepted and refused so far.
pub async fn drive(
    http: &reqwest::Client,
    load: Load<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(load.rate > 0.0, "the rate must be positive");
    anyhow::ensure!(!load.gateways.is_empty(), "no gateway to send bookings to");
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let urls: Vec<String> = load
        .gateways
        .iter()
        .map(|gateway| format!("{}/bookings", gateway.trim_end_matches('/')))
        .collect();
    let t0 = Instant::now();
    let t0_ms = epoch_ms();
    let due = |i: usize| Duration::from_secs_f64(i as f64 / load.rate);
    let mut tasks = Vec::with_capacity(load.bookings.len());
    let mut max_send_delay = Duration::ZERO;
    let mut next = 0;
    while next < load.bookings.len() {
        // Everything already due goes out now, in one batch: after a stall (a busy runtime, a
        // coarse timer) the schedule catches up instead of drifting.
        let now = t0.elapsed();
        while next < load.bookings.len() && due(next) <= now {
            max_send_delay = max_send_delay.max(now - due(next));
            let booking = &load.bookings[next];
            let request = http
                .post(&urls[next % urls.len()])
                .bearer_auth(load.tokens.get(&booking.user).map_or("", String::as_str))
                .header(
                    "idempotency-key",
                    format!("bench-{}-{}", load.run_id, load.first_index + next),
                )
                .json(&BookSeatRequest {
                    seat_id: booking.seat.clone(),
                });
            let intended = t0 + due(next);
            let intended_ms = t0_ms + i64::try_from(due(next).as_millis()).unwrap_or(i64::MAX);
            let (accepted, refused, progress) =
                (accepted.clone(), refused.clone(), progress.clone());
            tasks.push(tokio::spawn(async move {
                let answer = answer_of(request.send().await).await;
                let answered_after_ms =
                    u64::try_from(intended.elapsed().as_millis()).unwrap_or(u64::MAX);
                let (a, r) = match &answer {
                    Answer::Accepted(_) => (
                        accepted.fetch_add(1, Ordering::Relaxed) + 1,
                        refused.load(Ordering::Relaxed),
                    ),
                    Answer::Refused(_) => (
                        accepted.load(Ordering::Relaxed),
                        refused.fetch_add(1, Ordering::Relaxed) + 1,
                    ),
                };
                progress.inc(1);
                progress.set_message(format!("{a} accepted · {r} refused"));
                Sent {
                    intended_ms,
                    answered_after_ms,
                    answer,
                }
            }));
            next += 1;
        }
        if next < load.bookings.len() {
            tokio::time::sleep_until((t0 + due(next)).into()).await;
        }
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        sent.push(task.await?);
    }
    Ok(LoadResult {
        sent,
        max_send_delay_ms: u64::try_from(max_send_delay.as_millis()).unwrap_or(u64::MAX),
        wall: t0.elapsed(),
    })
}

/// Sorts a response (or its failure) into an [`Answer`].
async fn answer_of(response: reqwest::Result<reqwest::Response>) -> Answer {
    match response {
        Ok(response) if response.status() == StatusCode::ACCEPTED => {
            match response.json::<BookingAccepted>().await {
                Ok(accepted) => Answer::Accepted(accepted.booking_id),
                Err(_) => Answer::Refused("202-unreadable".into()),
            }
        }
        Ok(response) => Answer::Refused(response.status().as_u16().to_string()),
        Err(error) if error.is_timeout() => Answer::Refused("timeout".into()),
        Err(error) if error.is_connect() => Answer::Refused("connect".into()),
        Err(_) => Answer::Refused("transport".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::{Json, Router, http::StatusCode as AxumStatus, routing::post};

    use super::*;

    /// A gateway stand-in: accepts even seats, answers 503 for odd ones, after `delay`.
    async fn fake_gateway(delay: Duration) -> String {
        let app = Router::new().route(
            "/bookings",
            post(move |Json(body): Json<BookSeatRequest>| async move {
                tokio::time::sleep(delay).await;
                let n: u32 = body.seat_id.parse().unwrap_or(0);
                if n.is_multiple_of(2) {
                    (
                        AxumStatus::ACCEPTED,
                        Json(
                            serde_json::json!({"booking_id": format!("b-{n}"), "saga_id": "s",
                            "status": "PENDING", "status_url": "/x"}),
                        ),
                    )
                } else {
                    (AxumStatus::SERVICE_UNAVAILABLE, Json(serde_json::json!({})))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_slow_answer_does_not_delay_later_sends() {
        let gateway = fake_gateway(Duration::from_millis(300)).await;
        let bookings: Vec<Booking> = (0..20)
            .map(|n| Booking {
                user: "u".into(),
                seat: n.to_string(),
            })
            .collect();
        let tokens = BTreeMap::from([("u".to_owned(), "t".to_owned())]);
        let started = Instant::now();
        let result = drive(
            &client().expect("client"),
            Load {
                gateways: std::slice::from_ref(&gateway),
                bookings: &bookings,
                tokens: &tokens,
                rate: 100.0,
                run_id: "test",
                first_index: 0,
            },
            &ProgressBar::hidden(),
        )
        .await
        .expect("load");
        // 20 requests at 100/s are all sent within 0.2 s; closed-loop they would take 6 s.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(result.sent.len(), 20);
        let accepted = result
            .sent
            .iter()
            .filter(|s| matches!(s.answer, Answer::Accepted(_)))
            .count();
        assert_eq!(accepted, 10);
        assert!(
            result
                .sent
                .iter()
                .any(|s| s.answer == Answer::Refused("503".into()))
        );
        assert!(result.sent.iter().all(|s| s.answered_after_ms >= 300));
        assert!(
            result
                .sent
                .windows(2)
                .all(|w| w[1].intended_ms >= w[0].intended_ms)
        );
    }
}
