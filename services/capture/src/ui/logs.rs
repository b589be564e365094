//! Log lines as the viewer shows them: a captured Loki line read into level, service, message
//! and fields (tracing-loki sends each event as a JSON object: `message`, the event's fields,
//! the fields of its spans — `trace_id` and `span_id` among them, recorded by the kit's
//! `telemetry::record_ids` — then `_spans`, `_target`, `_file`, …), the lines of one trace,
//! the `/ui/logs` search, and the table both pages render.

use std::collections::BTreeMap;

use serde_json::Value;

use super::html::{self, esc, url_param};
use crate::store::StoredLine;

/// At most this many lines on a page.
pub const MAX_LINES: usize = 1000;

/// One log line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub timestamp_ns: i128,
    pub service: String,
    /// Upper case: `INFO`, `WARN`, …
    pub level: String,
    pub message: String,
    /// Every other field, as text (the source-location fields left out).
    pub fields: BTreeMap<String, String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl LogLine {
    /// Reads a captured line; a line that is not a JSON object is all message.
    pub fn read(stored: &StoredLine) -> Self {
        let label = |name: &str| stored.labels.get(name).cloned().unwrap_or_default();
        let mut line = Self {
            timestamp_ns: stored.timestamp_ns,
            service: label("service"),
            level: label("level").to_ascii_uppercase(),
            message: stored.line.clone(),
            fields: BTreeMap::new(),
            trace_id: None,
            span_id: None,
        };
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&stored.line) else {
            return line;
        };
        line.message.clear();
        for (key, value) in object {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            match key.as_str() {
                "message" => line.message = text,
                "trace_id" => line.trace_id = Some(text.to_ascii_lowercase()),
                "span_id" => line.span_id = Some(text.to_ascii_lowercase()),
                "_module_path" | "_file" | "_line" => {}
                _ => {
                    line.fields.insert(key, text);
                }
            }
        }
        line
    }

    /// The trace id, when it is a real one (not absent, malformed or all zeros).
    pub fn trace(&self) -> Option<&str> {
        self.trace_id
            .as_deref()
            .filter(|t| html::is_hex(t, 32) && t.bytes().any(|b| b != b'0'))
    }

    fn span(&self) -> Option<&str> {
        self.span_id
            .as_deref()
            .filter(|s| html::is_hex(s, 16) && s.bytes().any(|b| b != b'0'))
    }
}

/// Every line whose `trace_id` field is `trace_id`, oldest first (at most [`MAX_LINES`]).
/// A substring test first, so only the trace's own lines are parsed.
pub fn of_trace(lines: &[StoredLine], trace_id: &str) -> Vec<LogLine> {
    let mut found: Vec<LogLine> = lines
        .iter()
        .filter(|l| l.line.contains(trace_id))
        .map(LogLine::read)
        .filter(|l| l.trace_id.as_deref() == Some(trace_id))
        .take(MAX_LINES)
        .collect();
    found.sort_by_key(|l| l.timestamp_ns);
    found
}

/// The `/ui/logs` form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogForm {
    pub service: Option<String>,
    pub level: Option<String>,
    pub text: Option<String>,
}

/// A checked [`LogForm`].
#[derive(Debug, Default)]
pub struct LogFilter {
    service: Option<String>,
    level: Option<String>,
    text: Option<String>,
}

impl LogFilter {
    /// Checks the form; the error names the field.
    pub fn parse(form: &LogForm) -> Result<Self, String> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let level = given(&form.level).map(|l| l.to_ascii_uppercase());
        if let Some(level) = &level
            && !["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level.as_str())
        {
            return Err(format!(
                "level {level:?} is not a log level: use TRACE, DEBUG, INFO, WARN or ERROR"
            ));
        }
        Ok(Self {
            service: given(&form.service),
            level,
            text: given(&form.text),
        })
    }

    fn matches(&self, line: &StoredLine) -> bool {
        self.service
            .as_ref()
            .is_none_or(|s| line.labels.get("service") == Some(s))
            && self.level.as_ref().is_none_or(|l| {
                line.labels
                    .get("level")
                    .is_some_and(|v| v.eq_ignore_ascii_case(l))
            })
            && self
                .text
                .as_ref()
                .is_none_or(|t| line.line.contains(t.as_str()))
    }

    /// The newest `limit` matching lines, newest first.
    pub fn newest(&self, lines: &[StoredLine], limit: usize) -> Vec<LogLine> {
        let mut found: Vec<&StoredLine> = lines.iter().filter(|l| self.matches(l)).collect();
        found.sort_by_key(|l| std::cmp::Reverse(l.timestamp_ns));
        found.into_iter().take(limit).map(LogLine::read).collect()
    }

    /// The search form, filled in with this filter.
    pub fn form(&self) -> String {
        let value = |v: &Option<String>| esc(v.as_deref().unwrap_or_default());
        let mut levels = String::from("<option value=\"\">any</option>");
        for level in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
            let selected = if self.level.as_deref() == Some(level) {
                " selected"
            } else {
                ""
            };
            levels.push_str(&format!("<option{selected}>{level}</option>"));
        }
        format!(
            "<form class=\"search\" method=\"get\" action=\"/ui/logs\">\
<label>service<input name=\"service\" value=\"{}\" placeholder=\"reservation\"></label>\
<label>level<select name=\"level\">{levels}</select></label>\
<label>text contains<input name=\"text\" value=\"{}\" placeholder=\"compensating\"></label>\
<button type=\"submit\">Search log lines</button></form>",
            value(&self.service),
            value(&self.text),
        )
    }
}

/// Where a line's links go: on a trace page its span is on the same page.
#[derive(Debug, Clone, Copy)]
pub enum Context<'a> {
    /// On the page of this trace: times relative to its start, span links are fragments to
    /// the spans it has.
    Trace {
        start_ns: u64,
        span_ids: &'a std::collections::HashSet<&'a str>,
    },
    /// On the log search page.
    Search,
}

/// Fields shown only on demand: what the line inherits from its spans rather than says.
const CONTEXT_PREFIXES: [&str; 7] = [
    "_",
    "messaging.",
    "faultline.",
    "otel.",
    "http.",
    "url.",
    "code.",
];

/// The table of `lines`.
pub fn table(lines: &[LogLine], context: Context<'_>) -> String {
    let mut rows = String::new();
    for (n, line) in lines.iter().enumerate() {
        let time = match context {
            Context::Trace { start_ns, .. } => format!(
                "+{}<br><span class=\"muted\">{}</span>",
                html::duration((line.timestamp_ns - i128::from(start_ns)).max(0) as u64),
                html::clock(line.timestamp_ns)
            ),
            Context::Search => html::clock(line.timestamp_ns),
        };
        // The event's own fields inline; the context every line of a unit of work repeats
        // (its spans' messaging, HTTP and source fields) on demand.
        let (mut fields, mut inherited, mut hidden) = (String::new(), String::new(), 0);
        for (key, value) in &line.fields {
            let field = format!("<span><i>{}=</i>{}</span>", esc(key), esc(value));
            if CONTEXT_PREFIXES.iter().any(|p| key.starts_with(p)) {
                inherited.push_str(&field);
                hidden += 1;
            } else {
                fields.push_str(&field);
            }
        }
        if hidden > 0 {
            fields.push_str(&format!(
                "<details><summary class=\"muted\">{hidden} context fields</summary>{inherited}</details>"
            ));
        }
        let links = match (line.trace(), line.span(), context) {
            (Some(trace), Some(span), Context::Trace { span_ids, .. }) => {
                let span_link = if span_ids.contains(span) {
                    format!("<a class=\"span-link\" href=\"#span-{span}\">span</a>")
                } else {
                    format!(
                        "<span class=\"muted\" title=\"span {span} was not received\">span not received</span>"
                    )
                };
                format!("{span_link} <a class=\"trace-link\" href=\"/ui/trace/{trace}\">trace</a>")
            }
            (Some(trace), Some(span), Context::Search) => format!(
                "<a class=\"span-link\" href=\"/ui/trace/{trace}#span-{span}\">span</a> \
<a class=\"trace-link\" href=\"/ui/trace/{trace}\">trace</a>"
            ),
            (Some(trace), None, _) => {
                format!("<a class=\"trace-link\" href=\"/ui/trace/{trace}\">trace</a>")
            }
            (None, _, _) => "<span class=\"muted\">no trace</span>".to_owned(),
        };
        rows.push_str(&format!(
            "<tr class=\"log lvl-{level}\" id=\"log-{n}\" data-trace-id=\"{trace}\" data-span-id=\"{span}\">\
<td class=\"mono\">{time}</td><td class=\"lvl\">{level}</td><td>{service}</td>\
<td class=\"msg\">{message}</td><td class=\"fields\">{fields}</td><td>{links}</td></tr>",
            level = esc(&line.level),
            trace = esc(line.trace_id.as_deref().unwrap_or_default()),
            span = esc(line.span_id.as_deref().unwrap_or_default()),
            service = if line.service.is_empty() {
                String::new()
            } else {
                html::service_chip(&line.service)
            },
            message = esc(&line.message),
        ));
    }
    if rows.is_empty() {
        return "<p class=\"muted\">No log lines.</p>".to_owned();
    }
    format!(
        "<table class=\"logs\"><tr><th>time</th><th>level</th><th>service</th><th>message</th><th>fields</th><th></th></tr>{rows}</table>"
    )
}

/// A link to the log search for `service`.
pub fn service_logs_link(service: &str) -> String {
    format!(
        "<a href=\"/ui/logs?service={}\">{} log lines</a>",
        url_param(service),
        esc(service)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(line: &str) -> StoredLine {
        StoredLine {
            labels: [
                ("service".to_owned(), "reservation".to_owned()),
                ("level".to_owned(), "info".to_owned()),
            ]
            .into(),
            timestamp_ns: 7,
            line: line.to_owned(),
        }
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_tracing_loki_line_reads_into_message_ids_and_fields() {
        let line = LogLine::read(&stored(&format!(
            r#"{{"message":"refund done","refund.status":"refunded","trace_id":"{TRACE}","span_id":"00F067AA0BA902B7","saga.attempt":2,"_spans":["saga.step"],"_file":"x.rs","_line":3}}"#
        )));
        assert_eq!(line.message, "refund done");
        assert_eq!(line.level, "INFO");
        assert_eq!(line.trace(), Some(TRACE));
        assert_eq!(line.span(), Some("00f067aa0ba902b7"));
        assert_eq!(line.fields["saga.attempt"], "2");
        assert!(!line.fields.contains_key("_file"));
    }

    #[test]
    fn a_plain_line_is_all_message_and_links_to_no_trace() {
        let line = LogLine::read(&stored("plain <b>text</b>"));
        assert_eq!(line.message, "plain <b>text</b>");
        assert_eq!(line.trace(), None);
        let table = table(&[line], Context::Search);
        assert!(table.contains("plain &lt;b&gt;text&lt;/b&gt;"));
        assert!(table.contains("no trace"));
    }

    #[test]
    fn only_the_lines_carrying_the_trace_id_field_are_the_trace_s() {
        let lines = [
            stored(&format!(r#"{{"message":"a","trace_id":"{TRACE}"}}"#)),
            stored(&format!(
                r#"{{"message":"mentions {TRACE}","trace_id":"other"}}"#
            )),
        ];
        let found = of_trace(&lines, TRACE);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message, "a");
    }

    #[test]
    fn an_unknown_level_is_refused_by_name() {
        let error = LogFilter::parse(&LogForm {
            level: Some("loud".into()),
            ..LogForm::default()
        })
        .expect_err("refused");
        assert!(error.contains("LOUD"), "{error}");
    }
}
