//! Grafana's provisioning: the datasources (fixed uids, Tempo ↔ Loki correlation both ways,
//! `$` escaping) and the dashboards (valid JSON, known datasources, plausible LogQL/TraceQL that
//! matches what the services log and trace, the chaos runner's fault-window annotation).

use std::collections::{BTreeMap, BTreeSet};

use faultline_querylang::{logql, traceql};
use regex::Regex;
use serde_json::Value;

use crate::Problems;

/// The datasource uids everything else names.
pub const TEMPO_UID: &str = "tempo";
pub const LOKI_UID: &str = "loki";
/// Grafana's built-in datasource (annotations).
pub const GRAFANA_UID: &str = "-- Grafana --";

/// The labels the services' log streams carry: the kit labels each stream with `service`,
/// tracing-loki adds `level`; Loki 3 derives `service_name` from `service`.
pub const STREAM_LABELS: [&str; 3] = ["service", "level", "service_name"];

/// The tag the chaos runner puts on every fault-window annotation.
pub const FAULT_TAG: &str = "faultline";

/// A trace id as the services write it (32 hex digits), for substituting into templates.
pub const SAMPLE_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// In provisioning files Grafana expands `$VAR` / `${VAR}` from its environment and reads `$$`
/// as `$`. A template variable such as `${__trace.traceId}` must therefore be written `$${…}`,
/// or it is silently replaced by an empty string. Returns the text with `$$` unescaped.
pub fn unescape_provisioning(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if chars.peek() == Some(&'$') {
                chars.next();
                out.push('$');
            } else {
                let rest: String = chars.clone().take(30).collect();
                return Err(format!(
                    "an unescaped $ before {rest:?}: Grafana would expand it from its environment (write $$)"
                ));
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// One provisioned datasource.
#[derive(Debug, Clone)]
pub struct Datasource {
    pub name: String,
    pub kind: String,
    pub uid: String,
    pub url: String,
    pub json_data: Value,
}

/// Parses a datasources provisioning file (after checking its `$` escaping).
pub fn parse_datasources(text: &str) -> anyhow::Result<Vec<Datasource>> {
    let unescaped = unescape_provisioning(text).map_err(anyhow::Error::msg)?;
    let doc = crate::yaml::parse(&unescaped)?;
    anyhow::ensure!(
        doc.get("apiVersion").and_then(Value::as_u64) == Some(1),
        "apiVersion must be 1"
    );
    let list = doc
        .get("datasources")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("no datasources list"))?;
    list.iter()
        .map(|d| {
            let text = |key: &str| {
                d.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Ok(Datasource {
                name: text("name"),
                kind: text("type"),
                uid: text("uid"),
                url: text("url"),
                json_data: d.get("jsonData").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// The query the Tempo datasource runs for "logs of this trace", with Grafana's template
/// variables filled in for `trace_id`.
pub fn traces_to_logs_query(tempo: &Datasource, trace_id: &str) -> Option<String> {
    let query = tempo.json_data.pointer("/tracesToLogsV2/query")?.as_str()?;
    Some(query.replace("${__trace.traceId}", trace_id))
}

/// The trace id the Loki datasource's derived field finds in `line`, if any.
pub fn derived_trace_id(loki: &Datasource, line: &str) -> Option<String> {
    let fields = loki.json_data.get("derivedFields")?.as_array()?;
    fields.iter().find_map(|field| {
        if field.get("datasourceUid").and_then(Value::as_str) != Some(TEMPO_UID) {
            return None;
        }
        let regex = Regex::new(field.get("matcherRegex")?.as_str()?).ok()?;
        Some(regex.captures(line)?.get(1)?.as_str().to_owned())
    })
}

/// Fixed, unique uids; Tempo and Loki at `url`s the caller vouches for; correlation both ways:
/// Tempo's trace → logs query is plausible LogQL over the services' stream labels and finds a
/// line by its trace id; Loki's derived field turns `sample_line`'s trace id into a Tempo link.
pub fn check_datasources(
    datasources: &[Datasource],
    sample_line: &str,
    url_ok: &dyn Fn(&str) -> Option<String>,
) -> Problems {
    let mut problems = Problems::new();
    let mut uids = BTreeSet::new();
    for d in datasources {
        if d.uid.is_empty() {
            problems.push(format!("datasource {} has no fixed uid", d.name));
        } else if !uids.insert(d.uid.clone()) {
            problems.push(format!("datasource uid {} is used twice", d.uid));
        }
        if let Some(problem) = url_ok(&d.url) {
            problems.push(format!("datasource {}: {problem}", d.name));
        }
    }
    let find = |uid: &str, kind: &str| datasources.iter().find(|d| d.uid == uid && d.kind == kind);
    let (Some(tempo), Some(loki)) = (find(TEMPO_UID, "tempo"), find(LOKI_UID, "loki")) else {
        problems.push(format!(
            "expected a tempo datasource with uid {TEMPO_UID} and a loki one with uid {LOKI_UID}"
        ));
        return problems;
    };

    let to_logs = &tempo.json_data["tracesToLogsV2"];
    if to_logs["datasourceUid"] != LOKI_UID {
        problems.push("Tempo's tracesToLogsV2 does not point at the Loki datasource".into());
    }
    if to_logs["customQuery"] != true {
        problems.push("Tempo's tracesToLogsV2 needs customQuery: true (the generated query changed across Grafana versions)".into());
    }
    let raw_query = to_logs["query"].as_str().unwrap_or_default();
    if !raw_query.contains("${__trace.traceId}") {
        problems.push("Tempo's trace → logs query does not use ${__trace.traceId}".into());
    }
    match traces_to_logs_query(tempo, SAMPLE_TRACE_ID).map(|q| logql::parse(&q)) {
        Some(Ok(query)) => {
            problems.extend(check_selector_labels(
                "Tempo's trace → logs query",
                query.log_query(),
            ));
            let stream: BTreeMap<String, String> =
                [("service".to_owned(), "reservation".to_owned())].into();
            let line = sample_line.replace("TRACE_ID", SAMPLE_TRACE_ID);
            if query.log_query().evaluate(&stream, &line).is_none() {
                problems.push(format!(
                    "Tempo's trace → logs query does not find the line {line}"
                ));
            }
            let other = sample_line.replace("TRACE_ID", "00000000000000000000000000000001");
            if query.log_query().evaluate(&stream, &other).is_some() {
                problems.push("Tempo's trace → logs query also finds other traces' lines".into());
            }
        }
        Some(Err(error)) => problems.push(format!(
            "Tempo's trace → logs query is not valid LogQL: {error}"
        )),
        None => problems.push("Tempo's tracesToLogsV2 has no query".into()),
    }

    let line = sample_line.replace("TRACE_ID", SAMPLE_TRACE_ID);
    match derived_trace_id(loki, &line) {
        Some(id) if id == SAMPLE_TRACE_ID => {}
        Some(id) => problems.push(format!(
            "Loki's derived field captures {id:?}, not the trace id"
        )),
        None => problems.push(format!(
            "no Loki derived field links the trace id of {line} to Tempo"
        )),
    }
    let links_raw_value = loki.json_data["derivedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| {
            f["url"]
                .as_str()
                .is_some_and(|u| u.contains("${__value.raw}"))
        });
    if !links_raw_value {
        problems.push("Loki's derived field must link ${__value.raw} (the captured id)".into());
    }
    problems
}

fn check_selector_labels(what: &str, query: &logql::LogQuery) -> Problems {
    query
        .selector
        .iter()
        .filter(|m| !STREAM_LABELS.contains(&m.label.as_str()))
        .map(|m| format!("{what}: selects on label {:?}, which no service stream carries (labels: {STREAM_LABELS:?})", m.label))
        .collect()
}

/// The panels of a dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Whether `source` (the services' code) can produce a JSON field that Loki's `json` parser
/// names `label` (`saga_outcome` comes from a field written `saga.outcome` or `saga_outcome`).
fn code_writes_field(label: &str, source: &str) -> bool {
    let dotted = label.replace('_', ".");
    code_names_field(&dotted, source) || code_names_field(label, source)
}

/// Whether `source` names the tracing field `field`: `field = …` right after `(` or `,` (an
/// event's or a span's field list) or `record("field"`. A whole name only: `outcome` is not
/// `saga.outcome`, and `let outcome = …` is no field.
fn code_names_field(field: &str, source: &str) -> bool {
    let field = regex::escape(field);
    let pattern = format!(r#"[(,]\s*{field}\s*=[^=]|record\(\s*"{field}""#);
    Regex::new(&pattern).is_ok_and(|re| re.is_match(source))
}

/// Checks one dashboard: its uid and title, every panel's and target's datasource, each query
/// (plausible for its datasource's language, selecting on real stream labels, filtering on
/// texts the services log, grouping by fields they write, naming span attributes they set),
/// and the fault-window annotation.
pub fn check_dashboard(
    file: &str,
    text: &str,
    datasources: &[Datasource],
    source: &str,
) -> Problems {
    let mut problems = Problems::new();
    let dashboard: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(error) => return vec![format!("{file}: not valid JSON: {error}")],
    };
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{file}: no {key}"));
        }
    }
    let kind_of = |uid: &str| -> Option<String> {
        if uid == GRAFANA_UID {
            return Some("grafana".into());
        }
        datasources
            .iter()
            .find(|d| d.uid == uid)
            .map(|d| d.kind.clone())
    };
    let known_panel_types = [
        "row",
        "timeseries",
        "table",
        "logs",
        "stat",
        "barchart",
        "state-timeline",
        "traces",
        "text",
    ];
    let all = panels(&dashboard);
    if all.iter().filter(|p| p["type"] != "row").count() == 0 {
        problems.push(format!("{file}: no panels"));
    }
    for panel in all {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let where_ = format!("{file}: panel {title:?}");
        let kind = panel["type"].as_str().unwrap_or_default();
        if !known_panel_types.contains(&kind) {
            problems.push(format!("{where_}: unknown panel type {kind:?}"));
        }
        if kind == "row" {
            continue;
        }
        if panel["gridPos"].get("w").is_none() {
            problems.push(format!("{where_}: no gridPos"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() && kind != "text" {
            problems.push(format!("{where_}: no queries"));
        }
        for target in targets {
            let uid = target["datasource"]["uid"]
                .as_str()
                .or_else(|| panel["datasource"]["uid"].as_str())
                .unwrap_or_default();
            match kind_of(uid).as_deref() {
                Some("loki") => {
                    let expr = target["expr"].as_str().unwrap_or_default();
                    problems.extend(check_logql(&where_, expr, source));
                }
                Some("tempo") => {
                    let query = target["query"].as_str().unwrap_or_default();
                    problems.extend(check_traceql(&where_, query, source));
                }
                Some(other) => problems.push(format!("{where_}: queries a {other} datasource")),
                None => problems.push(format!(
                    "{where_}: datasource uid {uid:?} is not provisioned"
                )),
            }
        }
    }
    let fault_windows = dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| {
            a["datasource"]["uid"] == GRAFANA_UID
                && a["enable"] == true
                && a["target"]["type"] == "tags"
                && a["target"]["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|t| t == FAULT_TAG))
        });
    if !fault_windows {
        problems.push(format!(
            "{file}: no enabled annotation query on Grafana annotations tagged {FAULT_TAG:?} (the chaos runner's fault windows)"
        ));
    }
    problems
}

/// A LogQL panel query: valid, selecting on real stream labels, filtering on texts the services
/// write, grouping by labels the streams or the services' JSON fields provide.
pub fn check_logql(where_: &str, expr: &str, source: &str) -> Problems {
    let mut problems = Problems::new();
    let query = match logql::parse(expr) {
        Ok(q) => q,
        Err(error) => return vec![format!("{where_}: not valid LogQL ({error}): {expr}")],
    };
    problems.extend(check_selector_labels(where_, query.log_query()));
    for text in query.log_query().required_texts() {
        if !source.contains(&text) {
            problems.push(format!(
                "{where_}: filters on {text:?}, which no service logs"
            ));
        }
    }
    for label in query.grouping() {
        let from_stream = STREAM_LABELS.contains(&label.as_str());
        let from_json = query.log_query().parses_json() && code_writes_field(label, source);
        if !from_stream && !from_json {
            problems.push(format!("{where_}: groups by {label:?}, which neither a stream label nor a logged field provides"));
        }
    }
    problems
}

/// A TraceQL panel query: valid, naming only span attributes the services set.
pub fn check_traceql(where_: &str, query: &str, source: &str) -> Problems {
    match traceql::parse(query) {
        Ok(q) => q
            .span_attributes()
            .into_iter()
            .filter(|a| !code_names_field(a, source))
            .map(|a| format!("{where_}: span attribute {a:?} is set by no service"))
            .collect(),
        Err(error) => vec![format!("{where_}: not valid TraceQL ({error}): {query}")],
    }
}

/// A dashboards provisioning file loads files from the folder the compose file mounts the
/// repository's dashboards at.
pub fn check_dashboard_provider(text: &str, mounted_at: &str) -> Problems {
    let doc = match crate::yaml::parse(text) {
        Ok(d) => d,
        Err(error) => return vec![format!("dashboards provisioning: {error}")],
    };
    let providers = doc["providers"].as_array().cloned().unwrap_or_default();
    if providers.is_empty() {
        return vec!["dashboards provisioning: no providers".into()];
    }
    providers
        .iter()
        .filter(|p| p["type"] != "file" || p["options"]["path"] != mounted_at)
        .map(|p| {
            format!(
                "dashboard provider {}: expected type file at {mounted_at}",
                p["name"]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"message":"saga finished","saga.outcome":"CANCELLED","trace_id":"TRACE_ID","span_id":"00f067aa0ba902b7"}"#;

    const GOOD: &str = r#"apiVersion: 1
datasources:
  - {name: Tempo, type: tempo, uid: tempo, url: "http://tempo:3200", jsonData: {tracesToLogsV2: {datasourceUid: loki, customQuery: true, query: '{service=~".+"} |= "$${__trace.traceId}"'}}}
  - {name: Loki, type: loki, uid: loki, url: "http://loki:3100", jsonData: {derivedFields: [{datasourceUid: tempo, matcherType: regex, matcherRegex: '"trace_id":"(\w+)"', url: "$${__value.raw}"}]}}
"#;

    #[test]
    fn correlated_datasources_pass() {
        let ds = parse_datasources(GOOD).expect("parses");
        assert!(check_datasources(&ds, LINE, &|_| None).is_empty());
    }

    #[test]
    fn an_unescaped_template_variable_is_refused() {
        assert!(parse_datasources(&GOOD.replace("$${__trace", "${__trace")).is_err());
    }

    #[test]
    fn broken_correlations_are_problems() {
        let cases = [
            (
                GOOD.replace("datasourceUid: loki", "datasourceUid: nope"),
                "does not point at the Loki",
            ),
            (
                GOOD.replace(r#"(\w+)"#, r#"(\d+)"#),
                "no Loki derived field",
            ),
            (
                GOOD.replace("|= \"$${__trace.traceId}\"", ""),
                "does not use ${__trace.traceId}",
            ),
            (
                GOOD.replace("service=~", "trace_id=~"),
                "selects on label \"trace_id\"",
            ),
            (
                GOOD.replace("uid: loki,", "uid: logs,"),
                "expected a tempo datasource",
            ),
            (
                GOOD.replace("customQuery: true", "customQuery: false"),
                "customQuery",
            ),
        ];
        for (text, expected) in cases {
            let ds = parse_datasources(&text).expect("parses");
            let problems = check_datasources(&ds, LINE, &|_| None);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }

    fn dashboard(expr: &str, tempo_query: &str, annotation_tag: &str) -> String {
        serde_json::json!({
            "uid": "d", "title": "D",
            "annotations": {"list": [{"datasource": {"type": "grafana", "uid": GRAFANA_UID}, "enable": true,
                "target": {"type": "tags", "tags": [annotation_tag]}}]},
            "panels": [
                {"type": "timeseries", "title": "a", "gridPos": {"h": 1, "w": 1, "x": 0, "y": 0},
                 "targets": [{"datasource": {"type": "loki", "uid": "loki"}, "expr": expr}]},
                {"type": "table", "title": "b", "gridPos": {"h": 1, "w": 1, "x": 0, "y": 0},
                 "targets": [{"datasource": {"type": "tempo", "uid": "tempo"}, "query": tempo_query}]}
            ]
        })
        .to_string()
    }

    const SOURCE: &str = r#"tracing::info!(saga.outcome = x, "saga finished"); span.record("outbox.lag_ms", 1); let outcome = 1;"#;

    #[test]
    fn a_dashboard_matching_the_code_passes() {
        let ds = parse_datasources(GOOD).expect("parses");
        let text = dashboard(
            r#"sum by (saga_outcome) (count_over_time({service="reservation"} |= "saga finished" | json [$__interval]))"#,
            "{ span.outbox.lag_ms >= 0 } | max_over_time(span.outbox.lag_ms)",
            FAULT_TAG,
        );
        assert_eq!(
            check_dashboard("d.json", &text, &ds, SOURCE),
            Problems::new()
        );
    }

    #[test]
    fn queries_that_do_not_match_the_code_or_the_language_are_problems() {
        let ds = parse_datasources(GOOD).expect("parses");
        let cases = [
            (
                dashboard(
                    r#"{service="reservation"} |= "saga done""#,
                    "{ }",
                    FAULT_TAG,
                ),
                "which no service logs",
            ),
            (
                dashboard(
                    r#"sum by (outcome) (count_over_time({service="r"} | json [1m]))"#,
                    "{ }",
                    FAULT_TAG,
                ),
                "groups by \"outcome\"",
            ),
            (
                dashboard(r#"{app="reservation"}"#, "{ }", FAULT_TAG),
                "selects on label \"app\"",
            ),
            (
                dashboard(r#"{service="reservation""#, "{ }", FAULT_TAG),
                "not valid LogQL",
            ),
            (
                dashboard(
                    r#"{service="r"}"#,
                    r#"{ span.saga.result = "x" }"#,
                    FAULT_TAG,
                ),
                "set by no service",
            ),
            (
                dashboard(r#"{service="r"}"#, "span.saga.outcome", FAULT_TAG),
                "not valid TraceQL",
            ),
            (
                dashboard(r#"{service="r"}"#, "{ }", "chaos"),
                "fault windows",
            ),
            (
                dashboard(r#"{service="r"}"#, "{ }", FAULT_TAG)
                    .replace("\"uid\":\"loki\"", "\"uid\":\"logs\""),
                "not provisioned",
            ),
            ("{".to_owned(), "not valid JSON"),
        ];
        for (text, expected) in cases {
            let problems = check_dashboard("d.json", &text, &ds, SOURCE);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_provider_reading_another_folder_is_a_problem() {
        let text = "apiVersion: 1\nproviders:\n  - name: f\n    type: file\n    options:\n      path: /elsewhere\n";
        assert_eq!(
            check_dashboard_provider(text, "/var/lib/grafana/dashboards").len(),
            1
        );
        assert!(
            check_dashboard_provider(
                &text.replace("/elsewhere", "/var/lib/grafana/dashboards"),
                "/var/lib/grafana/dashboards"
            )
            .is_empty()
        );
    }
}
