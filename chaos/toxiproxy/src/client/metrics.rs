//! Reading Toxiproxy's `-proxy-metrics` Prometheus text into bytes per proxy and direction.
//!
//! Only the two byte counters are read; other families (Go runtime metrics with
//! `-runtime-metrics`) are skipped. Series of one proxy with different `listener`/`upstream`
//! labels (the proxy was moved) are summed, since the runner asks "how much went through `db`".
//!
//! Why hand-written and not a crate: `prometheus-parse` (last release 2023) splits labels on
//! `,` and `=`, so an escaped or comma-holding label value is misread, and it silently drops a
//! sample whose value does not parse, where we want an error naming the line; `openmetrics-parser`
//! is LGPL-3.0 and brings pest's derive macro; the others are single-release or unmaintained.
//! We read two counter families, and reading them takes under a hundred lines here.

use crate::api::{RECEIVED_BYTES_METRIC, SENT_BYTES_METRIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes through one proxy. Upstream is client→server: `upstream_received` is what clients sent
/// into the proxy, `upstream_sent` what reached the server; downstream is the way back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyBytes {
    pub upstream_sent: u64,
    pub upstream_received: u64,
    pub downstream_sent: u64,
    pub downstream_received: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyMetrics {
    pub proxies: BTreeMap<String, ProxyBytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {reason}")]
pub struct MetricsParseError {
    pub line: usize,
    pub reason: String,
}

impl ProxyMetrics {
    /// Bytes through `proxy`; zeros for a proxy with no series yet (Toxiproxy creates them when
    /// a connection ends; our server when it starts).
    pub fn proxy(&self, proxy: &str) -> ProxyBytes {
        self.proxies.get(proxy).copied().unwrap_or_default()
    }

    pub fn parse(text: &str) -> Result<Self, MetricsParseError> {
        let mut metrics = ProxyMetrics::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: String| MetricsParseError {
                line: index + 1,
                reason,
            };
            let name_end = line
                .find(|c: char| c == '{' || c.is_whitespace())
                .unwrap_or(line.len());
            let sent = match &line[..name_end] {
                SENT_BYTES_METRIC => true,
                RECEIVED_BYTES_METRIC => false,
                _ => continue,
            };
            let (labels, rest) = parse_labels(&line[name_end..]).map_err(fail)?;
            let value = parse_value(rest).map_err(fail)?;
            let label = |name: &str| {
                labels
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str())
                    .ok_or_else(|| fail(format!("no {name} label")))
            };
            let proxy = label("proxy")?;
            let bytes = metrics.proxies.entry(proxy.to_owned()).or_default();
            let counter = match (label("direction")?, sent) {
                ("upstream", true) => &mut bytes.upstream_sent,
                ("upstream", false) => &mut bytes.upstream_received,
                ("downstream", true) => &mut bytes.downstream_sent,
                ("downstream", false) => &mut bytes.downstream_received,
                (other, _) => return Err(fail(format!("unknown direction {other:?}"))),
            };
            *counter = counter.saturating_add(value);
        }
        Ok(metrics)
    }
}

/// Parses `{name="value",...}` (possibly absent) and returns the labels and what follows.
type Labels = Vec<(String, String)>;

fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let text = text.trim_start();
    let Some(mut rest) = text.strip_prefix('{') else {
        return Ok((Vec::new(), text));
    };
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim().to_owned();
        let quoted = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated escape in label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name, value));
        rest = quoted[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The sample value, with an optional timestamp after it. Go's client prints large counters in
/// exponent form (`1.048576e+06`), so the value is read as a float.
fn parse_value(text: &str) -> Result<u64, String> {
    let token = text.split_whitespace().next().ok_or("no sample value")?;
    let value: f64 = token
        .parse()
        .map_err(|_| format!("sample value {token:?} is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("sample value {token:?} is not a byte count"));
    }
    // Byte counters are integers; float64 holds them exactly up to 2^53.
    Ok(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOXIPROXY_OUTPUT: &str = r#"# HELP toxiproxy_proxy_received_bytes_total 
# TYPE toxiproxy_proxy_received_bytes_total counter
toxiproxy_proxy_received_bytes_total{direction="downstream",listener="127.0.0.1:21212",proxy="db",upstream="localhost:5432"} 1.048576e+06
toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:21212",proxy="db",upstream="localhost:5432"} 42
# HELP toxiproxy_proxy_sent_bytes_total 
# TYPE toxiproxy_proxy_sent_bytes_total counter
toxiproxy_proxy_sent_bytes_total{direction="downstream",listener="127.0.0.1:21212",proxy="db",upstream="localhost:5432"} 1.048576e+06
toxiproxy_proxy_sent_bytes_total{direction="upstream",listener="127.0.0.1:21212",proxy="db",upstream="localhost:5432"} 40
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 12
"#;

    #[test]
    fn toxiproxy_output_reads_as_bytes_per_direction() {
        let metrics = ProxyMetrics::parse(TOXIPROXY_OUTPUT).unwrap();
        assert_eq!(
            metrics.proxy("db"),
            ProxyBytes {
                upstream_sent: 40,
                upstream_received: 42,
                downstream_sent: 1_048_576,
                downstream_received: 1_048_576,
            }
        );
        assert_eq!(metrics.proxies.len(), 1);
    }

    #[test]
    fn series_of_a_moved_proxy_are_summed() {
        let text = "toxiproxy_proxy_sent_bytes_total{direction=\"upstream\",listener=\"a:1\",proxy=\"db\",upstream=\"u\"} 5\n\
                    toxiproxy_proxy_sent_bytes_total{direction=\"upstream\",listener=\"a:2\",proxy=\"db\",upstream=\"u\"} 7\n";
        assert_eq!(
            ProxyMetrics::parse(text).unwrap().proxy("db").upstream_sent,
            12
        );
    }

    #[test]
    fn escaped_label_values_and_timestamps_are_understood() {
        let text = "toxiproxy_proxy_received_bytes_total{proxy=\"we\\\"ird\\\\name\", direction=\"downstream\"} 3 1700000000000\n";
        let metrics = ProxyMetrics::parse(text).unwrap();
        assert_eq!(metrics.proxy("we\"ird\\name").downstream_received, 3);
    }

    #[test]
    fn an_empty_answer_has_no_proxies() {
        let metrics = ProxyMetrics::parse("").unwrap();
        assert!(metrics.proxies.is_empty());
        assert_eq!(metrics.proxy("db"), ProxyBytes::default());
    }

    #[test]
    fn a_series_without_a_proxy_label_is_an_error() {
        let err =
            ProxyMetrics::parse("toxiproxy_proxy_sent_bytes_total{direction=\"upstream\"} 1\n")
                .unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn a_non_numeric_value_is_an_error() {
        let text = "toxiproxy_proxy_sent_bytes_total{direction=\"upstream\",proxy=\"db\"} lots\n";
        assert!(ProxyMetrics::parse(text).is_err());
    }

    #[test]
    fn an_unterminated_label_value_is_an_error() {
        let text = "toxiproxy_proxy_sent_bytes_total{direction=\"upstream,proxy=\"db\"} 1\n";
        assert!(ProxyMetrics::parse(text).is_err());
    }

    #[test]
    fn other_families_are_skipped_even_when_odd() {
        let text = "some_histogram_bucket{le=\"+Inf\"} +Inf\n";
        assert!(ProxyMetrics::parse(text).unwrap().proxies.is_empty());
    }
}
