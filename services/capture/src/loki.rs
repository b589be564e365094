//! The Loki subset: the push API (protobuf + snappy, as tracing-loki and Promtail send it, or
//! JSON) and `query_range` for a stream selector with line filters.
//!
//! LogQL accepted: `{label="value", label!="value", …}` followed by any number of `|= "text"`
//! and `!= "text"` line filters. Anything else is answered 400, as Loki answers a query it
//! cannot parse. Parsing and evaluation are `faultline_querylang::logql`'s (the parser the
//! deploy checks validate the dashboards with); this module narrows its AST to that subset.

use std::collections::BTreeMap;

use faultline_querylang::logql::{self, Op, Stage, parse_labels};
use prost_loki::Message as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::StoredLine;

/// A parsed query, within the capture's subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery(logql::LogQuery);

impl LogQuery {
    pub fn parse(query: &str) -> Result<Self, String> {
        let logql::Query::Log(parsed) = logql::parse_permissive(query)? else {
            return Err(format!(
                "metric queries are not supported in {query:?} (only a stream selector and line filters)"
            ));
        };
        if parsed
            .selector
            .iter()
            .any(|m| matches!(m.op, Op::Re | Op::NotRe))
        {
            return Err(format!(
                "regular-expression matchers are not supported: {query:?}"
            ));
        }
        let filter = |stage: &Stage| {
            matches!(
                stage,
                Stage::Line {
                    op: Op::Eq | Op::Ne,
                    ..
                }
            )
        };
        if let Some(stage) = parsed.stages.iter().find(|s| !filter(s)) {
            return Err(format!(
                "unsupported LogQL stage {stage:?} in {query:?} (only |= and != line filters)"
            ));
        }
        Ok(Self(parsed))
    }

    pub fn matches(&self, line: &StoredLine) -> bool {
        self.0.keeps(&line.labels, &line.line)
    }
}

/// Decodes a push body: protobuf (snappy-compressed) or JSON, by content type.
pub fn decode_push(content_type: &str, body: &[u8]) -> Result<Vec<StoredLine>, String> {
    if content_type.starts_with("application/json") {
        #[derive(Deserialize)]
        struct Push {
            streams: Vec<Stream>,
        }
        #[derive(Deserialize)]
        struct Stream {
            stream: BTreeMap<String, String>,
            values: Vec<(String, String)>,
        }
        let push: Push = serde_json::from_slice(body).map_err(|e| format!("bad JSON push: {e}"))?;
        let mut lines = Vec::new();
        for stream in push.streams {
            for (ts, line) in stream.values {
                let timestamp_ns = ts.parse().map_err(|_| format!("bad timestamp {ts:?}"))?;
                lines.push(StoredLine {
                    labels: stream.stream.clone(),
                    timestamp_ns,
                    line,
                });
            }
        }
        return Ok(lines);
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("bad snappy body: {e}"))?;
    let push = loki_api::logproto::PushRequest::decode(raw.as_slice())
        .map_err(|e| format!("bad protobuf push: {e}"))?;
    let mut lines = Vec::new();
    for stream in push.streams {
        let labels = parse_labels(&stream.labels)?;
        for entry in stream.entries {
            let timestamp_ns = entry
                .timestamp
                .map(|t| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos))
                .unwrap_or_default();
            lines.push(StoredLine {
                labels: labels.clone(),
                timestamp_ns,
                line: entry.line,
            });
        }
    }
    Ok(lines)
}

/// Loki's `query_range` answer (`resultType: streams`).
pub fn query_range(
    lines: &[StoredLine],
    query: &LogQuery,
    start_ns: i128,
    end_ns: i128,
    limit: usize,
    forward: bool,
) -> Value {
    let mut matched: Vec<&StoredLine> = lines
        .iter()
        .filter(|l| l.timestamp_ns >= start_ns && l.timestamp_ns <= end_ns && query.matches(l))
        .collect();
    matched.sort_by_key(|l| l.timestamp_ns);
    if !forward {
        matched.reverse();
    }
    matched.truncate(limit);
    let mut streams: BTreeMap<&BTreeMap<String, String>, Vec<Value>> = BTreeMap::new();
    for line in matched {
        streams
            .entry(&line.labels)
            .or_default()
            .push(json!([line.timestamp_ns.to_string(), line.line]));
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels, "values": values}))
        .collect();
    json!({"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}})
}

/// A Loki time parameter: nanoseconds since the epoch, or seconds with a fraction.
pub fn parse_time(value: &str) -> Option<i128> {
    if let Ok(n) = value.parse::<i128>() {
        // Loki treats small integers as seconds.
        return Some(if n < 10_000_000_000 {
            // Saturating: a hugely negative "time" is before everything, not an overflow.
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    value.parse::<f64>().ok().map(|s| (s * 1e9) as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(service: &str, text: &str) -> StoredLine {
        StoredLine {
            labels: [
                ("service".to_owned(), service.to_owned()),
                ("level".to_owned(), "INFO".to_owned()),
            ]
            .into(),
            timestamp_ns: 5,
            line: text.into(),
        }
    }

    #[test]
    fn a_selector_and_line_filters_narrow_the_lines() {
        let q = LogQuery::parse(r#"{service="reservation", level!="DEBUG"} |= "abc" != "skip""#)
            .expect("parses");
        assert!(q.matches(&line("reservation", "trace abc here")));
        assert!(!q.matches(&line("payment", "trace abc here")));
        assert!(!q.matches(&line("reservation", "trace abc skip")));
        assert!(!q.matches(&line("reservation", "nothing")));
    }

    #[test]
    fn unsupported_logql_is_an_error() {
        assert!(LogQuery::parse(r#"{service=~"res.*"}"#).is_err());
        assert!(LogQuery::parse(r#"{service="x"} | json"#).is_err());
        assert!(LogQuery::parse("rate({service=\"x\"}[1m])").is_err());
    }

    #[test]
    fn a_selector_matching_every_stream_is_answered() {
        // The viewer's end-to-end test asks for a trace's lines in every service this way;
        // Loki refuses such a selector, the capture answers it.
        let q = LogQuery::parse(r#"{service!=""} |= "abc""#).expect("parses");
        assert!(q.matches(&line("payment", "trace abc here")));
        assert!(!q.matches(&line("payment", "nothing")));
    }

    #[test]
    fn labels_text_parses() {
        let labels = parse_labels(r#"{level="info",service="gateway"}"#).expect("parses");
        assert_eq!(labels.get("service").map(String::as_str), Some("gateway"));
    }

    #[test]
    fn a_json_push_decodes() {
        let body = br#"{"streams":[{"stream":{"service":"x"},"values":[["1700000000000000000","hello"]]}]}"#;
        let lines = decode_push("application/json", body).expect("decodes");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line, "hello");
    }
}
