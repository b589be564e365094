//! Byte counters per proxy link, rendered as Toxiproxy's `-proxy-metrics` Prometheus series.
//!
//! Series are keyed by the same labels as Toxiproxy's (`direction`, `listener`, `proxy`,
//! `upstream`), so a proxy that moved or was deleted keeps its old series, as a Prometheus
//! `CounterVec` does.

use crate::api::{RECEIVED_BYTES_METRIC, SENT_BYTES_METRIC, Stream};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One series pair. Atomics, because every chunk of every connection bumps them and the data
/// path must not contend on a lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
}

impl Counters {
    pub fn add_received(&self, bytes: usize) {
        self.received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn add_sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Label values in the order Prometheus prints them (label names sorted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    direction: &'static str,
    listener: String,
    proxy: String,
    upstream: String,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    // A std mutex: it is held only to look up or insert a series, never across an await.
    series: Mutex<BTreeMap<Labels, Arc<Counters>>>,
}

impl Metrics {
    pub fn counters(
        &self,
        direction: Stream,
        proxy: &str,
        listener: &str,
        upstream: &str,
    ) -> Arc<Counters> {
        let labels = Labels {
            direction: direction.as_str(),
            listener: listener.to_owned(),
            proxy: proxy.to_owned(),
            upstream: upstream.to_owned(),
        };
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels)
            .or_default()
            .clone()
    }

    /// Prometheus text format 0.0.4. Like client_golang, a family with no series is left out.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        if series.is_empty() {
            return out;
        }
        for (name, sent) in [(RECEIVED_BYTES_METRIC, false), (SENT_BYTES_METRIC, true)] {
            let _ = writeln!(out, "# HELP {name} ");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, counters) in series.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{direction=\"{}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {}",
                    labels.direction,
                    escape(&labels.listener),
                    escape(&labels.proxy),
                    escape(&labels.upstream),
                    if sent {
                        &counters.sent
                    } else {
                        &counters.received
                    }
                    .load(Ordering::Relaxed),
                );
            }
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_rendered_before_the_first_link() {
        assert_eq!(Metrics::default().render(), "");
    }

    #[test]
    fn each_direction_is_its_own_series_with_sorted_labels() {
        let metrics = Metrics::default();
        metrics
            .counters(Stream::Upstream, "db", "127.0.0.1:1", "127.0.0.1:2")
            .add_received(7);
        metrics
            .counters(Stream::Downstream, "db", "127.0.0.1:1", "127.0.0.1:2")
            .add_sent(3);
        let text = metrics.render();
        assert!(text.contains(
            "toxiproxy_proxy_received_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:1\",proxy=\"db\",upstream=\"127.0.0.1:2\"} 7"
        ));
        assert!(text.contains(
            "toxiproxy_proxy_sent_bytes_total{direction=\"downstream\",listener=\"127.0.0.1:1\",proxy=\"db\",upstream=\"127.0.0.1:2\"} 3"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
