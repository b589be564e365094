//! What the capture keeps: spans (flattened from OTLP) and log lines (with their labels).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

/// One span as received.
#[derive(Debug, Clone)]
pub struct StoredSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub service_name: Arc<str>,
    /// Shared by every span of one export's resource (a span's own copy made the store about
    /// twice the size).
    pub resource: Arc<BTreeMap<String, String>>,
    pub attributes: BTreeMap<String, String>,
    pub events: Vec<StoredEvent>,
    /// Trace id / span id pairs this span links to.
    pub links: Vec<(String, String)>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
}

/// A span event.
#[derive(Debug, Clone)]
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

/// How much the capture keeps: the newest spans and log lines up to these counts. A run of the
/// lab's size fits several times over (the largest shipped scenario, `overload`, leaves about
/// 30,000 spans: some 25 per settled booking, and 10 log lines); a long benchmark or an `up` left
/// running under load evicts its oldest items instead of growing without bound (measured:
/// 250,000 of each peaked at 0.9 GiB of RSS, so the defaults stay under half a GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub max_spans: usize,
    pub max_lines: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_spans: 100_000,
            max_lines: 100_000,
        }
    }
}

/// What [`Store::counts`] reports: kept and evicted items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub spans: usize,
    pub log_lines: usize,
    pub evicted_spans: u64,
    pub evicted_log_lines: u64,
}

#[derive(Debug, Default)]
struct Inner {
    retention: Retention,
    spans: VecDeque<StoredSpan>,
    lines: VecDeque<StoredLine>,
    evicted_spans: u64,
    evicted_lines: u64,
}

/// Appends `items` to `kept`, evicting the oldest beyond `max`; returns how many were evicted.
fn push_bounded<T>(kept: &mut VecDeque<T>, items: Vec<T>, max: usize) -> u64 {
    kept.extend(items);
    let excess = kept.len().saturating_sub(max);
    kept.drain(..excess);
    excess as u64
}

/// The capture's memory, shared by the receivers and the query handlers.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

impl Store {
    /// An empty store keeping at most what `retention` allows.
    pub fn new(retention: Retention) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                retention,
                ..Inner::default()
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for a push or a query, never across an await; a poisoned lock still holds whole
        // pushes only.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_spans(&self, spans: Vec<StoredSpan>) {
        let mut inner = self.lock();
        let max = inner.retention.max_spans;
        let evicted = push_bounded(&mut inner.spans, spans, max);
        if evicted > 0 {
            // Once at the first eviction, then every 100,000: a reader of the log learns the
            // oldest traces are gone without a line per export.
            if inner.evicted_spans / 100_000 != (inner.evicted_spans + evicted) / 100_000
                || inner.evicted_spans == 0
            {
                tracing::warn!(
                    max_spans = max,
                    evicted = inner.evicted_spans + evicted,
                    "span retention reached: evicting the oldest spans"
                );
            }
            inner.evicted_spans += evicted;
        }
    }

    pub fn add_lines(&self, lines: Vec<StoredLine>) {
        let mut inner = self.lock();
        let max = inner.retention.max_lines;
        let evicted = push_bounded(&mut inner.lines, lines, max);
        if evicted > 0 {
            if inner.evicted_lines / 100_000 != (inner.evicted_lines + evicted) / 100_000
                || inner.evicted_lines == 0
            {
                tracing::warn!(
                    max_lines = max,
                    evicted = inner.evicted_lines + evicted,
                    "log retention reached: evicting the oldest log lines"
                );
            }
            inner.evicted_lines += evicted;
        }
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

    /// Runs `query` over every kept span, oldest first, under the lock: a search reads in place
    /// rather than copying the whole store.
    pub fn with_spans<R>(&self, query: impl FnOnce(&[StoredSpan]) -> R) -> R {
        query(self.lock().spans.make_contiguous())
    }

    /// Runs `query` over every kept log line, oldest first, under the lock.
    pub fn with_lines<R>(&self, query: impl FnOnce(&[StoredLine]) -> R) -> R {
        query(self.lock().lines.make_contiguous())
    }

    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            spans: inner.spans.len(),
            log_lines: inner.lines.len(),
            evicted_spans: inner.evicted_spans,
            evicted_log_lines: inner.evicted_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: i128) -> StoredLine {
        StoredLine {
            labels: BTreeMap::new(),
            timestamp_ns: n,
            line: n.to_string(),
        }
    }

    #[test]
    fn the_oldest_items_are_evicted_beyond_the_retention_and_counted() {
        let store = Store::new(Retention {
            max_spans: 10,
            max_lines: 3,
        });
        store.add_lines((0..2).map(line).collect());
        store.add_lines((2..5).map(line).collect());
        let kept =
            store.with_lines(|lines| lines.iter().map(|l| l.timestamp_ns).collect::<Vec<_>>());
        assert_eq!(kept, vec![2, 3, 4], "the newest three, oldest first");
        assert_eq!(
            store.counts(),
            Counts {
                spans: 0,
                log_lines: 3,
                evicted_spans: 0,
                evicted_log_lines: 2
            }
        );
    }
}
