//! The Loki subset: the push API (protobuf + snappy, as tracing-loki and Promtail send it, or
//! JSON) and `query_range` for a stream selector with line filters.
//!
//! LogQL accepted: `{label="value", label!="value", …}` followed by any number of `|= "text"`
//! and `!= "text"` line filters. Anything else is answered 400, as Loki answers a query it
//! cannot parse.

use std::collections::BTreeMap;

use prost_loki::Message as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::StoredLine;

/// Parses Loki's label-set text `{a="b", c="d"}`.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    Ok(parse_selector(text)?
        .into_iter()
        .filter(|m| m.equal)
        .map(|m| (m.name, m.value))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    name: String,
    equal: bool,
    value: String,
}

fn parse_selector(text: &str) -> Result<Vec<Matcher>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("expected a stream selector {{…}}, got {text:?}"))?;
    let mut matchers = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once(['=', '!'])
            .ok_or_else(|| format!("bad matcher in {text:?}"))?;
        let equal = !rest[name.len()..].starts_with('!');
        let after = if equal {
            after
        } else {
            after
                .strip_prefix('=')
                .ok_or_else(|| format!("only = and != are supported in {text:?}"))?
        };
        if after.starts_with('~') {
            return Err(format!(
                "regular-expression matchers are not supported: {text:?}"
            ));
        }
        let after = after.trim_start();
        let quoted = after
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value in {text:?}"))?;
        let end = quoted
            .find('"')
            .ok_or_else(|| format!("unterminated value in {text:?}"))?;
        matchers.push(Matcher {
            name: name.trim().to_owned(),
            equal,
            value: quoted[..end].to_owned(),
        });
        rest = quoted[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(matchers)
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    matchers: Vec<Matcher>,
    /// (must contain, text)
    filters: Vec<(bool, String)>,
}

impl LogQuery {
    pub fn parse(query: &str) -> Result<Self, String> {
        let query = query.trim();
        let close = query
            .find('}')
            .ok_or_else(|| format!("expected a stream selector in {query:?}"))?;
        let matchers = parse_selector(&query[..=close])?;
        let mut filters = Vec::new();
        let mut rest = query[close + 1..].trim();
        while !rest.is_empty() {
            let (contains, after) = if let Some(after) = rest.strip_prefix("|=") {
                (true, after)
            } else if let Some(after) = rest.strip_prefix("!=") {
                (false, after)
            } else {
                return Err(format!(
                    "unsupported LogQL stage at {rest:?} (only |= and != line filters)"
                ));
            };
            let quoted = after
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| format!("expected a quoted filter at {after:?}"))?;
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("unterminated filter at {after:?}"))?;
            filters.push((contains, quoted[..end].to_owned()));
            rest = quoted[end + 1..].trim();
        }
        Ok(Self { matchers, filters })
    }

    pub fn matches(&self, line: &StoredLine) -> bool {
        self.matchers
            .iter()
            .all(|m| (line.labels.get(&m.name) == Some(&m.value)) == m.equal)
            && self
                .filters
                .iter()
                .all(|(contains, text)| line.line.contains(text.as_str()) == *contains)
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
