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

/// How much the capture keeps: the newest spans and log lines up to these counts (a booking
/// leaves about 25 spans and 10 log lines). The chaos runner sizes it for its workload, so its
/// checkers never read an evicted trace; with the defaults, a long benchmark or an `up` left
/// running under load evicts its oldest items instead of growing without bound (peak RSS in
/// find-max runs of ~20,000 bookings: 1.4–1.5 GiB unbounded, 0.9 GiB keeping 250,000 of each,
/// 0.57 GiB with these defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl Retention {
    /// This retention, raised to keep at least `items` spans and `items` log lines.
    pub fn at_least(self, items: usize) -> Self {
        Self {
            max_spans: self.max_spans.max(items),
            max_lines: self.max_lines.max(items),
        }
    }
}

/// What [`Store::counts`] reports: kept and evicted items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub spans: usize,
    pub log_lines: usize,
    pub evicted_spans: u64,
    pub evicted_log_lines: u64,
}

/// Items kept up to a maximum, the oldest evicted first, evictions counted.
#[derive(Debug)]
struct Bounded<T> {
    items: VecDeque<T>,
    max: usize,
    evicted: u64,
    /// What the items are, for the log line (`spans`, `log lines`).
    what: &'static str,
}

impl<T> Bounded<T> {
    fn new(max: usize, what: &'static str) -> Self {
        Self {
            items: VecDeque::new(),
            max,
            evicted: 0,
            what,
        }
    }

    /// Appends `new`, evicting the oldest beyond the maximum.
    fn push(&mut self, new: Vec<T>) {
        self.items.extend(new);
        let excess = self.items.len().saturating_sub(self.max);
        if excess == 0 {
            return;
        }
        self.items.drain(..excess);
        let before = self.evicted;
        self.evicted += excess as u64;
        // Once at the first eviction, then every 100,000: a reader of the log learns the oldest
        // items are gone without a line per export.
        if before == 0 || before / 100_000 != self.evicted / 100_000 {
            tracing::warn!(
                max = self.max,
                evicted = self.evicted,
                "retention reached: evicting the oldest {}",
                self.what
            );
        }
    }
}

#[derive(Debug)]
struct Inner {
    spans: Bounded<StoredSpan>,
    lines: Bounded<StoredLine>,
}

/// The capture's memory, shared by the receivers and the query handlers.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

impl Store {
    /// An empty store keeping at most what `retention` allows.
    pub fn new(retention: Retention) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                spans: Bounded::new(retention.max_spans, "spans"),
                lines: Bounded::new(retention.max_lines, "log lines"),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for a push or a query, never across an await; a poisoned lock still holds whole
        // pushes only.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_spans(&self, spans: Vec<StoredSpan>) {
        self.lock().spans.push(spans);
    }

    pub fn add_lines(&self, lines: Vec<StoredLine>) {
        self.lock().lines.push(lines);
    }

    /// Every span of one trace, in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<StoredSpan> {
        let trace_id = trace_id.to_ascii_lowercase();
        self.lock()
            .spans
            .items
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Runs `query` over every kept span, oldest first, under the lock: a search reads in place
    /// rather than copying the whole store.
    pub fn with_spans<R>(&self, query: impl FnOnce(&[StoredSpan]) -> R) -> R {
        query(self.lock().spans.items.make_contiguous())
    }

    /// Runs `query` over every kept log line, oldest first, under the lock.
    pub fn with_lines<R>(&self, query: impl FnOnce(&[StoredLine]) -> R) -> R {
        query(self.lock().lines.items.make_contiguous())
    }

    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            spans: inner.spans.items.len(),
            log_lines: inner.lines.items.len(),
            evicted_spans: inner.spans.evicted,
            evicted_log_lines: inner.lines.evicted,
        }
    }
}

#[cfg(test)]
impl StoredSpan {
    /// A span of `service` for tests, with these attributes and a neutral rest (1 ns long, no
    /// parent, events or links); a test sets what else it needs with struct update syntax.
    pub(crate) fn for_test(
        trace_id: &str,
        span_id: &str,
        service: &str,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Self {
        Self {
            trace_id: trace_id.into(),
            span_id: span_id.into(),
            parent_span_id: String::new(),
            name: name.into(),
            kind: 1,
            start_unix_nano: 1,
            end_unix_nano: 2,
            service_name: service.into(),
            resource: std::sync::Arc::new([("service.name".to_owned(), service.to_owned())].into()),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            events: vec![],
            links: vec![],
            status_code: 0,
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
