//! The workload's client: submits bookings through the gateway like a real client — bearer
//! token, an `Idempotency-Key` reused on every retry, and a `traceparent` with a trace id the
//! runner chose, so each operation's trace and logs can be found afterwards — and records every
//! invocation and completion in the history.
//!
//! Completion is observed by one watcher reading reservation's `/admin/bookings` (one request
//! per round for all operations, instead of every operation polling the gateway: polls would
//! add spans and log lines to the bookings' traces).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use faultline_contracts::http::{BookingAccepted, BookingView};
use reqwest::StatusCode;

use super::{
    generator::PlannedOp,
    history::{Event, History, Outcome},
};

/// How many times a submission is tried (same idempotency key) before it is left unknown.
const ATTEMPTS: u32 = 4;

/// What a submission came to.
#[derive(Debug)]
pub enum Submitted {
    /// 202: the booking exists; its outcome comes later.
    Accepted { booking_id: String, attempts: u32 },
    /// Definitely refused (4xx other than 429, or 429/503 with `Retry-After` on every attempt):
    /// nothing happened.
    Refused { detail: String, attempts: u32 },
    /// Never got a definite answer: it may exist or not.
    Unknown { detail: String, attempts: u32 },
}

/// Submits bookings; shared by every operation of a run.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Every gateway replica; operation `n` goes to gateway `n` modulo their count.
    gateways: Vec<String>,
    tokens: Arc<BTreeMap<String, String>>,
    history: Arc<History>,
    /// op → booking id, for operations waiting for their outcome.
    pending: Arc<Mutex<HashMap<u32, String>>>,
    /// When the last watch round started (Unix ms; 0 before the first).
    last_watch_unix_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// A watch round asks for bookings changed since the previous round started, minus this: a
/// booking's `updated_at` is stamped inside its transaction, which may commit a little later.
const WATCH_OVERLAP_MS: u64 = 5_000;

fn random_hex(bytes: usize) -> String {
    let mut hex = String::new();
    while hex.len() < bytes * 2 {
        hex.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    hex.truncate(bytes * 2);
    hex
}

impl Client {
    pub fn new(
        gateways: &[String],
        tokens: BTreeMap<String, String>,
        history: Arc<History>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!gateways.is_empty(), "no gateway to send bookings to");
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            gateways: gateways
                .iter()
                .map(|g| g.trim_end_matches('/').to_owned())
                .collect(),
            tokens: Arc::new(tokens),
            history,
            pending: Arc::default(),
            last_watch_unix_ms: Arc::default(),
        })
    }

    /// Invokes `op`: records the invocation, submits, and records a completion now if the
    /// submission already settled it (refused or unknown); accepted ones wait for the watcher.
    pub async fn invoke(&self, op: &PlannedOp) {
        let trace_id = random_hex(16);
        let client_span_id = random_hex(8);
        let key = uuid::Uuid::new_v4().to_string();
        self.history.record(Event::Invoke {
            op: op.op,
            time_ms: self.history.now_ms(),
            user: op.user.clone(),
            seat: op.seat.clone(),
            intent: op.intent.clone(),
            trace_id: trace_id.clone(),
            client_span_id: client_span_id.clone(),
            idempotency_key: key.clone(),
        });
        let traceparent = format!("00-{trace_id}-{client_span_id}-01");
        match self.submit(op, &key, &traceparent).await {
            Submitted::Accepted {
                booking_id,
                attempts,
            } => {
                if let Ok(mut pending) = self.pending.lock() {
                    pending.insert(op.op, booking_id.clone());
                }
                tracing::debug!(op = op.op, booking_id, attempts, "accepted");
            }
            Submitted::Refused { detail, attempts } => self.complete(
                op.op,
                Outcome::Fail,
                None,
                Some("REFUSED".into()),
                detail,
                attempts,
            ),
            Submitted::Unknown { detail, attempts } => {
                self.complete(op.op, Outcome::Info, None, None, detail, attempts)
            }
        }
    }

    async fn submit(&self, op: &PlannedOp, key: &str, traceparent: &str) -> Submitted {
        let token = self.tokens.get(&op.user).cloned().unwrap_or_default();
        let mut last = String::new();
        let mut refused_at_the_door = false;
        // An operation keeps its gateway for its retries (any would do: the gateway is
        // stateless, and reservation answers a repeated Idempotency-Key from its database).
        let gateway = &self.gateways[op.op as usize % self.gateways.len()];
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(format!("{gateway}/bookings"))
                .bearer_auth(&token)
                .header("Idempotency-Key", key)
                .header("traceparent", traceparent)
                .json(&serde_json::json!({ "seat_id": op.seat }))
                .send()
                .await;
            let retry_after = match sent {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {
                    return match response.json::<BookingAccepted>().await {
                        Ok(accepted) => Submitted::Accepted {
                            booking_id: accepted.booking_id,
                            attempts: attempt,
                        },
                        Err(error) => Submitted::Unknown {
                            detail: format!("202 with an unreadable body: {error}"),
                            attempts: attempt,
                        },
                    };
                }
                Ok(response)
                    if response.status().is_client_error()
                        && response.status() != StatusCode::TOO_MANY_REQUESTS
                        && response.status() != StatusCode::CONFLICT =>
                {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    return Submitted::Refused {
                        detail: format!("{status}: {body}"),
                        attempts: attempt,
                    };
                }
                Ok(response) => {
                    // 409 (the first attempt is still in flight), 429, 5xx: try again.
                    refused_at_the_door = matches!(
                        response.status(),
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) && response.headers().contains_key("retry-after");
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    last = format!(
                        "{}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                    wait
                }
                Err(error) => {
                    refused_at_the_door = false;
                    last = format!("transport: {error}");
                    None
                }
            };
            if attempt < ATTEMPTS {
                let backoff = Duration::from_millis(250 * 2u64.pow(attempt - 1));
                tokio::time::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(3)))
                    .await;
            }
        }
        if refused_at_the_door {
            // The last answer was a 503 or 429 with `Retry-After`: admission control, the rate
            // limit or an open circuit — the gateway or reservation refused before doing
            // anything, so nothing was booked.
            return Submitted::Refused {
                detail: format!("refused on every one of {ATTEMPTS} attempts; last: {last}"),
                attempts: ATTEMPTS,
            };
        }
        Submitted::Unknown {
            detail: format!("no definite answer after {ATTEMPTS} attempts; last: {last}"),
            attempts: ATTEMPTS,
        }
    }

    fn complete(
        &self,
        op: u32,
        outcome: Outcome,
        booking_id: Option<String>,
        status: Option<String>,
        detail: String,
        attempts: u32,
    ) {
        self.history.record(Event::Complete {
            op,
            time_ms: self.history.now_ms(),
            outcome,
            booking_id,
            status,
            detail,
            attempts,
            settled_ms: None,
        });
    }

    /// Operations still waiting for their outcome.
    pub fn waiting(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or_default()
    }

    /// One watcher round: completes every waiting operation whose booking is terminal. Returns
    /// how many completed.
    pub async fn watch_once(&self, reservation: &str) -> anyhow::Result<usize> {
        if self.waiting() == 0 {
            return Ok(0);
        }
        let started = super::history::unix_ms();
        // Advanced only after a round succeeded, so a failed round never skips anything.
        let previous = self
            .last_watch_unix_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let since = previous.saturating_sub(WATCH_OVERLAP_MS);
        let bookings: Vec<BookingView> = self
            .http
            .get(format!(
                "{reservation}/admin/bookings?updated_since={since}"
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.last_watch_unix_ms
            .fetch_max(started, std::sync::atomic::Ordering::Relaxed);
        let by_id: HashMap<&str, &BookingView> = bookings
            .iter()
            .map(|b| (b.booking_id.as_str(), b))
            .collect();
        let done: Vec<(u32, String, String, i64)> = {
            let Ok(pending) = self.pending.lock() else {
                return Ok(0);
            };
            pending
                .iter()
                .filter_map(|(op, id)| {
                    by_id
                        .get(id.as_str())
                        .filter(|b| b.status != "PENDING")
                        .map(|b| (*op, id.clone(), b.status.clone(), b.updated_at_ms))
                })
                .collect()
        };
        for (op, booking_id, status, updated_at_ms) in &done {
            if let Ok(mut pending) = self.pending.lock() {
                pending.remove(op);
            }
            let settled_ms = u64::try_from(*updated_at_ms)
                .ok()
                .map(|at| at.saturating_sub(self.history.started_unix_ms()));
            self.history.record(Event::Complete {
                op: *op,
                time_ms: self.history.now_ms(),
                outcome: Outcome::Ok,
                booking_id: Some(booking_id.clone()),
                status: Some(status.clone()),
                detail: String::new(),
                attempts: 0,
                settled_ms,
            });
        }
        Ok(done.len())
    }

    /// Completes every operation still waiting as unknown (the settle deadline passed).
    pub fn give_up(&self, why: &str) {
        let left: Vec<(u32, String)> = self
            .pending
            .lock()
            .map(|mut p| p.drain().collect())
            .unwrap_or_default();
        for (op, booking_id) in left {
            self.complete(
                op,
                Outcome::Info,
                Some(booking_id),
                Some("PENDING".into()),
                why.to_owned(),
                0,
            );
        }
    }
}
