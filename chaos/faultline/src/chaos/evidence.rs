//! Reading traces and logs back: from Tempo and Loki directly, through Grafana's datasource
//! proxy when a Grafana URL is given (`/api/datasources/proxy/uid/<uid>/…`), or from the
//! embedded capture, which answers the same subset of both APIs. Also the one place the links
//! every witness carries are built: Grafana Explore when there is a Grafana (compose), the
//! capture's viewer (`<viewer>/trace/<trace_id>`) on the embedded stack.

use std::collections::BTreeMap;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::Value;

/// The datasource uids `deploy/grafana` provisions.
pub const TEMPO_UID: &str = "tempo";
pub const LOKI_UID: &str = "loki";

/// The most lines one Loki query answers (Loki's default `max_entries_limit_per_query`).
const LOG_PAGE: usize = 5_000;

/// One log entry of a `query_range` page.
struct LogEntry {
    timestamp_ns: i128,
    /// The stream's labels, as a key.
    stream: String,
    text: String,
    line: Value,
}

/// Where traces and logs are read.
#[derive(Debug, Clone)]
pub struct Evidence {
    http: reqwest::Client,
    tempo: String,
    loki: String,
    grafana: Option<String>,
    /// Grafana as links name it: `telemetry.grafana_public` when the target gives one.
    grafana_links: Option<String>,
    /// The capture's viewer (`…/ui`), when the telemetry is the embedded capture's.
    viewer: Option<String>,
    grafana_auth: Option<(String, String)>,
}

/// One span, as the checkers need it.
#[derive(Debug, Clone, Default)]
pub struct Span {
    pub service: String,
    /// The process that sent it: its resource's `service.instance.id` (a replica's name).
    pub instance: String,
    pub name: String,
    pub span_id: String,
    pub parent: String,
    pub start_ns: u64,
    pub attributes: BTreeMap<String, String>,
}

/// Tempo returns ids as hex (OTLP/JSON) from some endpoints and base64 (standard alphabet,
/// padded or not) from others: both are read as lowercase hex.
pub fn normalize_id(id: &str, bytes: usize) -> String {
    if id.len() == bytes * 2 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        return id.to_ascii_lowercase();
    }
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(id)
        .ok()
        .filter(|raw| raw.len() == bytes)
        .map(hex::encode)
        .unwrap_or_else(|| id.to_owned())
}

/// Reads a Tempo trace-by-id answer (`{"batches": [...]}` or v2's `{"trace": {"resourceSpans":
/// [...]}}`) into spans.
pub fn spans_of(json: &Value) -> Vec<Span> {
    let batches = json["batches"]
        .as_array()
        .or_else(|| json["trace"]["resourceSpans"].as_array())
        .or_else(|| json["resourceSpans"].as_array());
    let mut spans = Vec::new();
    for batch in batches.into_iter().flatten() {
        let resource = |key: &str| {
            batch["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == key)
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let (service, instance) = (resource("service.name"), resource("service.instance.id"));
        let scopes = batch["scopeSpans"]
            .as_array()
            .or_else(|| batch["instrumentationLibrarySpans"].as_array());
        for scope in scopes.into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let attributes = span["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let value = &a["value"];
                        let text = value["stringValue"]
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| value["intValue"].as_str().map(str::to_owned))
                            .or_else(|| value["intValue"].as_i64().map(|i| i.to_string()))
                            .or_else(|| value["boolValue"].as_bool().map(|b| b.to_string()))
                            .unwrap_or_default();
                        (a["key"].as_str().unwrap_or_default().to_owned(), text)
                    })
                    .collect();
                spans.push(Span {
                    service: service.clone(),
                    instance: instance.clone(),
                    name: span["name"].as_str().unwrap_or_default().to_owned(),
                    span_id: normalize_id(span["spanId"].as_str().unwrap_or_default(), 8),
                    parent: normalize_id(span["parentSpanId"].as_str().unwrap_or_default(), 8),
                    start_ns: span["startTimeUnixNano"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .or_else(|| span["startTimeUnixNano"].as_u64())
                        .unwrap_or_default(),
                    attributes,
                });
            }
        }
    }
    spans
}

impl Evidence {
    pub fn new(
        telemetry: &BTreeMap<String, String>,
        grafana_auth: Option<&str>,
    ) -> anyhow::Result<Self> {
        let grafana = telemetry
            .get("grafana")
            .map(|g| g.trim_end_matches('/').to_owned());
        let (tempo, loki) = match &grafana {
            Some(grafana) => (
                format!("{grafana}/api/datasources/proxy/uid/{TEMPO_UID}"),
                format!("{grafana}/api/datasources/proxy/uid/{LOKI_UID}"),
            ),
            None => (
                telemetry
                    .get("tempo")
                    .context("the target names no tempo URL")?
                    .trim_end_matches('/')
                    .to_owned(),
                telemetry
                    .get("loki")
                    .context("the target names no loki URL")?
                    .trim_end_matches('/')
                    .to_owned(),
            ),
        };
        let grafana_auth =
            grafana_auth.and_then(|a| a.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()?,
            tempo,
            loki,
            grafana,
            viewer: telemetry
                .get("viewer")
                .map(|v| v.trim_end_matches('/').to_owned()),
            // A person opens links from outside the stack's network (the host, for compose),
            // where Grafana answers at another address than the one the runner calls.
            grafana_links: telemetry
                .get("grafana_public")
                .or(telemetry.get("grafana"))
                .map(|g| g.trim_end_matches('/').to_owned()),
            grafana_auth,
        })
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.grafana_auth {
            Some((user, password)) if self.grafana.is_some() => {
                request.basic_auth(user, Some(password))
            }
            _ => request,
        }
    }

    /// Spans the embedded capture evicted under its retention (`GET /stats`), if the trace
    /// source is the capture; `None` for Tempo, which has no such endpoint.
    pub async fn evicted_spans(&self) -> Option<u64> {
        let response = self
            .get(&format!("{}/stats", self.tempo))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let stats: Value = response.json().await.ok()?;
        stats["evicted_spans"].as_u64()
    }

    /// The spans of `trace_id`; empty when Tempo does not know it (yet).
    pub async fn trace(&self, trace_id: &str) -> anyhow::Result<Vec<Span>> {
        let response = self
            .get(&format!("{}/api/traces/{trace_id}", self.tempo))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let response = response.error_for_status()?;
        Ok(spans_of(&response.json().await?))
    }

    /// Log lines (parsed JSON when they are JSON, else `{"line": …}`) matching a LogQL stream
    /// selector and line filter, between two Unix-ms instants, oldest first — all of them: Loki
    /// answers at most [`LOG_PAGE`] lines a query (its `max_entries_limit_per_query`), so the
    /// range is read page by page, each starting at the last timestamp of the one before. A
    /// checker reading only the first page would miss a busy run's late lines (the
    /// compensations an overload causes, say) and report them absent.
    pub async fn logs(&self, query: &str, from_ms: u64, to_ms: u64) -> anyhow::Result<Vec<Value>> {
        let end_ns = i128::from(to_ms) * 1_000_000;
        let mut start_ns = i128::from(from_ms) * 1_000_000;
        let mut lines = Vec::new();
        // Every entry read so far at `start_ns`, the timestamp the next page starts at again
        // (several lines can share a nanosecond): each is skipped once when it comes back.
        let mut seen_at_start: Vec<(String, String)> = Vec::new();
        loop {
            let page = self.logs_page(query, start_ns, end_ns).await?;
            let full = page.len() >= LOG_PAGE;
            let Some(last_ns) = page.last().map(|entry| entry.timestamp_ns) else {
                break;
            };
            let mut to_skip = seen_at_start.clone();
            let mut at_last = Vec::new();
            let mut fresh = 0usize;
            for entry in page {
                let key = (entry.stream.clone(), entry.text.clone());
                if entry.timestamp_ns == start_ns
                    && let Some(seen) = to_skip.iter().position(|k| *k == key)
                {
                    to_skip.swap_remove(seen);
                    continue;
                }
                if entry.timestamp_ns == last_ns {
                    at_last.push(key);
                }
                fresh += 1;
                lines.push(entry.line);
            }
            if !full {
                break;
            }
            anyhow::ensure!(
                fresh > 0,
                "more than {LOG_PAGE} log lines share one nanosecond ({last_ns}): they cannot be paged"
            );
            if last_ns != start_ns {
                seen_at_start.clear();
            }
            seen_at_start.extend(at_last);
            start_ns = last_ns;
        }
        Ok(lines)
    }

    /// One `query_range` page from `start_ns`, oldest first.
    async fn logs_page(
        &self,
        query: &str,
        start_ns: i128,
        end_ns: i128,
    ) -> anyhow::Result<Vec<LogEntry>> {
        let response = self
            .get(&format!("{}/loki/api/v1/query_range", self.loki))
            .query(&[
                ("query", query.to_owned()),
                ("start", start_ns.to_string()),
                ("end", end_ns.to_string()),
                ("limit", LOG_PAGE.to_string()),
                ("direction", "forward".to_owned()),
            ])
            .send()
            .await?
            .error_for_status()?;
        let json: Value = response.json().await?;
        let mut entries = Vec::new();
        for stream in json["data"]["result"].as_array().into_iter().flatten() {
            let labels = stream["stream"].as_object();
            let stream_key = labels.map(|l| format!("{l:?}")).unwrap_or_default();
            for value in stream["values"].as_array().into_iter().flatten() {
                let text = value[1].as_str().unwrap_or_default();
                let timestamp_ns: i128 = value[0]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("a Loki entry without a timestamp: {value}"))?;
                let mut line: Value = serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::json!({ "line": text }));
                if let (Some(object), Some(labels)) = (line.as_object_mut(), labels) {
                    object.insert("_labels".into(), Value::Object(labels.clone()));
                }
                entries.push(LogEntry {
                    timestamp_ns,
                    stream: stream_key.clone(),
                    text: text.to_owned(),
                    line,
                });
            }
        }
        // Streams come one after another; the page is one time line.
        entries.sort_by_key(|entry| entry.timestamp_ns);
        Ok(entries)
    }

    /// A link to the trace: Grafana Explore when there is a Grafana, else the capture's viewer
    /// (its trace page), else the trace's JSON.
    pub fn trace_link(&self, trace_id: &str) -> String {
        match (&self.grafana_links, &self.viewer) {
            (Some(grafana), _) => explore_link(
                grafana,
                TEMPO_UID,
                "tempo",
                &serde_json::json!({ "queryType": "traceql", "query": trace_id }),
            ),
            (None, Some(viewer)) => format!("{viewer}/trace/{trace_id}"),
            (None, None) => format!("{}/api/traces/{trace_id}", self.tempo),
        }
    }

    /// A link to the trace's log lines: Grafana Explore on Loki, else the log section of the
    /// viewer's trace page, else the Loki query.
    pub fn logs_link(&self, trace_id: &str) -> String {
        let query = format!("{{service=~\".+\"}} |= \"{trace_id}\"");
        match (&self.grafana_links, &self.viewer) {
            (Some(grafana), _) => explore_link(
                grafana,
                LOKI_UID,
                "loki",
                &serde_json::json!({ "expr": query, "queryType": "range" }),
            ),
            (None, Some(viewer)) => format!("{viewer}/trace/{trace_id}#logs"),
            (None, None) => {
                let base = format!("{}/loki/api/v1/query_range", self.loki);
                match reqwest::Url::parse(&base) {
                    Ok(mut url) => {
                        url.query_pairs_mut().append_pair("query", &query);
                        url.to_string()
                    }
                    Err(_) => base,
                }
            }
        }
    }

    /// Marks a fault window on Grafana's dashboards (`POST /api/annotations`).
    pub async fn annotate(
        &self,
        from_ms: u64,
        to_ms: u64,
        tags: &[String],
        text: &str,
    ) -> anyhow::Result<()> {
        let Some(grafana) = &self.grafana else {
            return Ok(());
        };
        let mut request =
            self.http
                .post(format!("{grafana}/api/annotations"))
                .json(&serde_json::json!({
                    "time": from_ms, "timeEnd": to_ms, "tags": tags, "text": text,
                }));
        if let Some((user, password)) = &self.grafana_auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await?.error_for_status()?;
        Ok(())
    }
}

/// A Grafana Explore URL with one query pane on datasource `uid`.
fn explore_link(grafana: &str, uid: &str, kind: &str, query: &Value) -> String {
    let mut query = query.clone();
    if let Some(object) = query.as_object_mut() {
        object.insert("refId".into(), "A".into());
        object.insert(
            "datasource".into(),
            serde_json::json!({ "type": kind, "uid": uid }),
        );
    }
    let panes = serde_json::json!({
        "a": { "datasource": uid, "queries": [query], "range": { "from": "now-6h", "to": "now" } }
    });
    let mut url = match reqwest::Url::parse(&format!("{grafana}/explore")) {
        Ok(url) => url,
        Err(_) => return format!("{grafana}/explore"),
    };
    url.query_pairs_mut()
        .append_pair("schemaVersion", "1")
        .append_pair("panes", &panes.to_string())
        .append_pair("orgId", "1");
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(telemetry: &[(&str, &str)]) -> Evidence {
        let telemetry = telemetry
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Evidence::new(&telemetry, None).expect("evidence")
    }

    /// More lines than one Loki answer holds, with several sharing the nanosecond where a page
    /// ends: every line comes back once, oldest first, from the real capture.
    #[tokio::test]
    async fn logs_are_read_page_by_page_to_the_last_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = faultline_kit::shutdown::CancellationToken::new();
        let store = faultline_capture::store::Store::new(Default::default());
        let server = tokio::spawn(faultline_capture::server::serve(
            listener,
            store,
            stop.clone(),
        ));
        let base_ns: u64 = 1_800_000_000_000_000_000;
        let total = 2 * LOG_PAGE + 7;
        // Lines 4,990–5,019 share one nanosecond, across the first page's end.
        let values: Vec<(String, String)> = (0..total)
            .map(|n| {
                let at = if (4_990..5_020).contains(&n) {
                    4_990
                } else {
                    n
                };
                (
                    (base_ns + at as u64).to_string(),
                    format!(r#"{{"n":{n},"message":"line {n}"}}"#),
                )
            })
            .collect();
        let push = serde_json::json!({
            "streams": [{"stream": {"service": "reservation"}, "values": values}]
        });
        reqwest::Client::new()
            .post(format!("{url}/loki/api/v1/push"))
            .json(&push)
            .send()
            .await
            .expect("push")
            .error_for_status()
            .expect("push accepted");
        let evidence = evidence(&[("tempo", &url), ("loki", &url)]);
        let from_ms = base_ns / 1_000_000;
        let lines = evidence
            .logs(r#"{service="reservation"}"#, from_ms, from_ms + 1_000)
            .await
            .expect("logs");
        let mut numbers: Vec<u64> = lines
            .iter()
            .map(|line| line["n"].as_u64().expect("n"))
            .collect();
        assert_eq!(numbers.len(), total, "every line, none twice");
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), total, "no line twice");
        stop.cancel();
        server.await.expect("capture task").expect("capture");
    }

    #[test]
    fn witnesses_link_to_the_viewer_on_the_embedded_stack_and_to_explore_with_grafana() {
        const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
        let capture = "http://127.0.0.1:4000";
        let embedded = evidence(&[
            ("tempo", capture),
            ("loki", capture),
            ("viewer", "http://127.0.0.1:4000/ui/"),
        ]);
        assert_eq!(
            embedded.trace_link(TRACE),
            format!("{capture}/ui/trace/{TRACE}")
        );
        assert_eq!(
            embedded.logs_link(TRACE),
            format!("{capture}/ui/trace/{TRACE}#logs")
        );
        let compose = evidence(&[("grafana", "http://localhost:3000")]);
        assert!(
            compose
                .trace_link(TRACE)
                .starts_with("http://localhost:3000/explore?")
        );
        // compose: the runner calls Grafana on the compose network, a person opens the links
        // on the host.
        let published = evidence(&[
            ("grafana", "http://grafana:3000"),
            ("grafana_public", "http://localhost:3000/"),
        ]);
        for link in [published.trace_link(TRACE), published.logs_link(TRACE)] {
            assert!(link.starts_with("http://localhost:3000/explore?"), "{link}");
        }
        assert!(
            published
                .loki
                .starts_with("http://grafana:3000/api/datasources/proxy/")
        );
        let bare_tempo = evidence(&[("tempo", "http://t:3200"), ("loki", "http://l:3100")]);
        assert_eq!(
            bare_tempo.trace_link(TRACE),
            format!("http://t:3200/api/traces/{TRACE}")
        );
    }

    #[test]
    fn hex_and_base64_ids_read_the_same() {
        assert_eq!(normalize_id("00F067AA0BA902B7", 8), "00f067aa0ba902b7");
        assert_eq!(normalize_id("APBnqgupArc=", 8), "00f067aa0ba902b7");
        assert_eq!(normalize_id("APBnqgupArc", 8), "00f067aa0ba902b7");
    }
}
