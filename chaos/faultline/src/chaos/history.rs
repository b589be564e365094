//! The history: every operation's invocation and completion (ok / fail / info) and every
//! fault's start and stop with the exact control requests and responses, in the order they
//! happened. Written line by line to `history.jsonl` as the run goes (a crashed run keeps what it
//! did) and kept in memory for the checkers and the report.

use std::{
    io::Write as _,
    path::Path,
    sync::Mutex,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use faultline_toxiproxy::client::Exchange;
use serde::{Deserialize, Serialize};

use super::scenario::FaultKind;

/// How an operation ended, in Jepsen's terms.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, and the booking reached the status given.
    Ok,
    /// It certainly did not happen (refused before any effect).
    Fail,
    /// Unknown: it may or may not have happened (timeout, 5xx, never settled).
    Info,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The client starts an operation.
    Invoke {
        op: u32,
        time_ms: u64,
        user: String,
        seat: String,
        intent: String,
        trace_id: String,
        /// The span id the client put in `traceparent`: the parent of the booking's root span
        /// (the runner does not export spans of its own).
        client_span_id: String,
        idempotency_key: String,
    },
    /// The operation's end.
    Complete {
        op: u32,
        time_ms: u64,
        outcome: Outcome,
        booking_id: Option<String>,
        /// The booking's final status (CONFIRMED, CANCELLED, REJECTED) or the failure.
        status: Option<String>,
        detail: String,
        /// Submissions made (retries reuse the idempotency key).
        attempts: u32,
        /// When the booking reached its final status by reservation's own record
        /// (`updated_at`), on the history's clock: `time_ms` is when the watcher saw it, which
        /// lags under load.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settled_ms: Option<u64>,
    },
    /// A fault was applied (`start`) or healed (`stop`).
    Fault {
        fault: usize,
        phase: Phase,
        time_ms: u64,
        kind: FaultKind,
        /// The control change was read back and is in effect (start) / gone (stop).
        verified: bool,
        /// Evidence that traffic met the fault (bytes through the link during its window),
        /// where it can be measured; `None` where it cannot.
        fired: Option<bool>,
        detail: String,
        /// Every Toxiproxy call made for this step, request and response.
        exchanges: Vec<Exchange>,
    },
    /// Anything else worth knowing when reading the run (preflight, cleanup, settling).
    Note { time_ms: u64, text: String },
}

/// Start or stop of a fault window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Start,
    Stop,
}

/// The run's history, shared by client, nemesis and checkers.
#[derive(Debug)]
pub struct History {
    started: Instant,
    started_unix_ms: u64,
    events: Mutex<Vec<Event>>,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl History {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            events: Mutex::new(Vec::new()),
            file: Mutex::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        })
    }

    /// Milliseconds since the run started (the history's clock).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// When the history's clock read 0, in Unix ms.
    pub fn started_unix_ms(&self) -> u64 {
        self.started_unix_ms
    }

    /// Appends `event` to memory and to the file (flushed: a crash loses nothing recorded).
    pub fn record(&self, event: Event) {
        if let Ok(mut file) = self.file.lock()
            && let Ok(line) = serde_json::to_string(&event)
        {
            let _ = writeln!(file, "{line}");
            let _ = file.flush();
        }
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    pub fn note(&self, text: impl Into<String>) {
        self.record(Event::Note {
            time_ms: self.now_ms(),
            text: text.into(),
        });
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// One operation as the checkers see it: its invocation joined with its completion.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Operation {
    pub op: u32,
    pub user: String,
    pub seat: String,
    pub intent: String,
    pub trace_id: String,
    pub client_span_id: String,
    pub invoked_ms: u64,
    pub completed_ms: Option<u64>,
    /// See `Event::Complete::settled_ms`.
    pub settled_ms: Option<u64>,
    pub outcome: Option<Outcome>,
    pub booking_id: Option<String>,
    pub status: Option<String>,
    pub detail: String,
}

/// Joins invocations with completions.
pub fn operations(events: &[Event]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    for event in events {
        match event {
            Event::Invoke {
                op,
                time_ms,
                user,
                seat,
                intent,
                trace_id,
                client_span_id,
                ..
            } => ops.push(Operation {
                op: *op,
                user: user.clone(),
                seat: seat.clone(),
                intent: intent.clone(),
                trace_id: trace_id.clone(),
                client_span_id: client_span_id.clone(),
                invoked_ms: *time_ms,
                completed_ms: None,
                settled_ms: None,
                outcome: None,
                booking_id: None,
                status: None,
                detail: String::new(),
            }),
            Event::Complete {
                op,
                time_ms,
                outcome,
                booking_id,
                status,
                detail,
                settled_ms,
                ..
            } => {
                if let Some(operation) = ops.iter_mut().find(|o| o.op == *op) {
                    operation.completed_ms = Some(*time_ms);
                    operation.settled_ms = *settled_ms;
                    operation.outcome = Some(*outcome);
                    operation.booking_id = booking_id.clone();
                    operation.status = status.clone();
                    operation.detail = detail.clone();
                }
            }
            _ => {}
        }
    }
    ops
}
