//! What the capture keeps: spans (flattened from OTLP) and log lines (with their labels).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use serde::Serialize;

/// One span as received.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub service_name: String,
    pub resource: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    pub events: Vec<StoredEvent>,
    /// Trace id / span id pairs this span links to.
    pub links: Vec<(String, String)>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
}

/// A span event.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
}

/// One log line.
#[derive(Debug, Clone)]
pub struct StoredLine {
    pub labels: BTreeMap<String, String>,
    pub timestamp_ns: i128,
    pub line: String,
}

#[derive(Debug, Default)]
struct Inner {
    spans: Vec<StoredSpan>,
    lines: Vec<StoredLine>,
}

/// The capture's memory, shared by the receivers and the query handlers.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for a push or a copy, never across an await; a poisoned lock still holds whole
        // pushes only.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_spans(&self, spans: Vec<StoredSpan>) {
        self.lock().spans.extend(spans);
    }

    pub fn add_lines(&self, lines: Vec<StoredLine>) {
        self.lock().lines.extend(lines);
    }

    /// Every span of one trace, in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<StoredSpan> {
        let trace_id = trace_id.to_ascii_lowercase();
        self.lock()
            .spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// A copy of every span.
    pub fn spans(&self) -> Vec<StoredSpan> {
        self.lock().spans.clone()
    }

    /// A copy of every log line.
    pub fn lines(&self) -> Vec<StoredLine> {
        self.lock().lines.clone()
    }

    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.spans.len(), inner.lines.len())
    }
}
