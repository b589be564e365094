//! The search page (`/ui/`): a form — booking id, trace id, outcome, service, a TraceQL-subset
//! query — and the newest matching traces, each with its root span, start, duration, services,
//! outcome and marks. A trace matches when, for every filled-in field, one of its spans matches
//! that field (so "booking X through payment" is two conditions on two different spans).

use std::collections::{BTreeSet, HashMap};

use super::html::{self, badge, esc, url_param};
use crate::{store::StoredSpan, tempo};

/// At most this many traces are listed.
pub const MAX_TRACES: usize = 50;

/// The saga outcomes reservation records as `saga.outcome`.
const OUTCOMES: [&str; 3] = ["CONFIRMED", "CANCELLED", "REJECTED"];

/// The form as submitted (an empty field is as good as absent).
#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchForm {
    pub trace: Option<String>,
    pub booking: Option<String>,
    pub outcome: Option<String>,
    pub service: Option<String>,
    pub q: Option<String>,
    /// `all` lists every trace; anything else only traces that carry a booking id.
    pub show: Option<String>,
}

/// What the form asks for.
#[derive(Debug)]
pub enum Request {
    /// A trace id: the answer is that trace's page.
    Trace(String),
    Search(Search),
}

/// A checked search.
#[derive(Debug, Default)]
pub struct Search {
    booking: Option<String>,
    outcome: Option<String>,
    service: Option<String>,
    q: Option<String>,
    all: bool,
    /// One spanset per filled-in field; each must be met by some span of the trace.
    spansets: Vec<tempo::Query>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl Request {
    /// Checks the form; the error names the field and what is wrong with it.
    pub fn parse(form: &SearchForm) -> Result<Self, String> {
        if let Some(trace) = given(&form.trace) {
            if !html::is_hex(&trace, 32) {
                return Err(format!(
                    "trace id {trace:?} is malformed: a trace id is 32 hexadecimal digits"
                ));
            }
            return Ok(Self::Trace(trace.to_ascii_lowercase()));
        }
        let mut search = Search {
            booking: given(&form.booking),
            outcome: given(&form.outcome).map(|o| o.to_ascii_uppercase()),
            service: given(&form.service),
            q: given(&form.q),
            all: form.show.as_deref() == Some("all"),
            spansets: Vec::new(),
        };
        if let Some(booking) = &search.booking {
            search
                .spansets
                .push(tempo::Query::attribute_equals("booking_id", booking));
        }
        if let Some(outcome) = &search.outcome {
            if !OUTCOMES.contains(&outcome.as_str()) {
                return Err(format!(
                    "outcome {outcome:?} is not a saga outcome: use CONFIRMED, CANCELLED or REJECTED"
                ));
            }
            search
                .spansets
                .push(tempo::Query::attribute_equals("saga.outcome", outcome));
        }
        if let Some(service) = &search.service {
            search
                .spansets
                .push(tempo::Query::attribute_equals("service.name", service));
        }
        if let Some(q) = &search.q {
            search
                .spansets
                .push(tempo::Query::parse(q).map_err(|e| format!("query: {e}"))?);
        }
        Ok(Self::Search(search))
    }
}

/// What the list shows of one trace, gathered in one pass over the store.
#[derive(Debug)]
struct Summary<'a> {
    trace_id: &'a str,
    start: u64,
    end: u64,
    root: Option<&'a StoredSpan>,
    services: BTreeSet<&'a str>,
    /// The latest `saga.outcome` (by span end).
    outcome: Option<(u64, &'a str)>,
    booking: Option<&'a str>,
    spans: usize,
    compensated: bool,
    duplicate: bool,
    error: bool,
    /// Which of the search's spansets some span met.
    met: Vec<bool>,
}

/// A compensation step: reservation's `saga compensate …` spans, its `saga refund` retries and
/// payment's refund endpoint, or any span recording `compensation.outcome`.
pub fn is_compensation(span: &StoredSpan) -> bool {
    span.name.contains("compensate")
        || span.name.contains("refund")
        || span.attributes.contains_key("compensation.outcome")
}

/// A consumed message skipped by the inbox as a duplicate (`messaging.duplicate = true`).
pub fn is_duplicate_skip(span: &StoredSpan) -> bool {
    span.attributes
        .get("messaging.duplicate")
        .is_some_and(|v| v == "true")
}

impl Search {
    /// The page: the form, then the newest matching traces over `spans` (read in place).
    pub fn render(&self, spans: &[StoredSpan]) -> String {
        let mut traces: HashMap<&str, Summary<'_>> = HashMap::new();
        let mut known_services: BTreeSet<&str> = BTreeSet::new();
        for span in spans {
            known_services.insert(&span.service_name);
            let summary = traces.entry(&span.trace_id).or_insert_with(|| Summary {
                trace_id: &span.trace_id,
                start: u64::MAX,
                end: 0,
                root: None,
                services: BTreeSet::new(),
                outcome: None,
                booking: None,
                spans: 0,
                compensated: false,
                duplicate: false,
                error: false,
                met: vec![false; self.spansets.len()],
            });
            summary.start = summary.start.min(span.start_unix_nano);
            summary.end = summary.end.max(span.end_unix_nano);
            if span.parent_span_id.is_empty() {
                summary.root = Some(span);
            }
            summary.services.insert(&span.service_name);
            if let Some(outcome) = span.attributes.get("saga.outcome")
                && summary
                    .outcome
                    .is_none_or(|(end, _)| end <= span.end_unix_nano)
            {
                summary.outcome = Some((span.end_unix_nano, outcome));
            }
            if summary.booking.is_none() {
                summary.booking = span.attributes.get("booking_id").map(String::as_str);
            }
            summary.spans += 1;
            summary.compensated |= is_compensation(span);
            summary.duplicate |= is_duplicate_skip(span);
            summary.error |= span.status_code == 2;
            for (met, spanset) in summary.met.iter_mut().zip(&self.spansets) {
                *met = *met || spanset.matches(span);
            }
        }
        let total = traces.len();
        let mut found: Vec<Summary<'_>> = traces
            .into_values()
            .filter(|s| s.met.iter().all(|m| *m) && (self.all || s.booking.is_some()))
            .collect();
        let matched = found.len();
        found.sort_by(|a, b| b.start.cmp(&a.start).then(a.trace_id.cmp(b.trace_id)));
        found.truncate(MAX_TRACES);

        let mut rows = String::new();
        for s in &found {
            rows.push_str(&row(s));
        }
        let listing = if found.is_empty() {
            format!(
                "<p class=\"muted\">No trace matches ({total} traces in the capture{}).</p>",
                if self.all {
                    ""
                } else {
                    "; only traces with a booking id are listed — choose “all traces” for the rest"
                }
            )
        } else {
            format!(
                "<p class=\"muted\">{matched} of {total} traces match; the newest {} are listed.</p>\
<table class=\"traces\"><tr><th>started (UTC)</th><th>trace</th><th>root span</th><th>booking</th>\
<th>duration</th><th>services</th><th>outcome</th><th>spans</th></tr>{rows}</table>",
                found.len()
            )
        };
        format!("<h1>Traces</h1>{}{listing}", self.form(&known_services))
    }

    /// The search form, filled in with this search.
    pub fn form(&self, services: &BTreeSet<&str>) -> String {
        let value = |v: &Option<String>| esc(v.as_deref().unwrap_or_default());
        let mut outcomes = String::from("<option value=\"\">any</option>");
        for outcome in OUTCOMES {
            let selected = if self.outcome.as_deref() == Some(outcome) {
                " selected"
            } else {
                ""
            };
            outcomes.push_str(&format!("<option{selected}>{outcome}</option>"));
        }
        let options: String = services
            .iter()
            .map(|s| format!("<option value=\"{}\">", esc(s)))
            .collect();
        let show = |all: bool| if self.all == all { " selected" } else { "" };
        format!(
            "<form class=\"search\" method=\"get\" action=\"/ui/\">\
<label>booking id<input name=\"booking\" value=\"{booking}\" size=\"38\"></label>\
<label>trace id<input name=\"trace\" size=\"34\" placeholder=\"32 hex digits\"></label>\
<label>outcome<select name=\"outcome\">{outcomes}</select></label>\
<label>service<input name=\"service\" list=\"services\" value=\"{service}\" size=\"12\"></label>\
<datalist id=\"services\">{options}</datalist>\
<label>span attributes (TraceQL subset)<input name=\"q\" value=\"{q}\" placeholder='{{ span.messaging.duplicate = true }}'></label>\
<label>show<select name=\"show\"><option value=\"bookings\"{bookings}>bookings</option><option value=\"all\"{all}>all traces</option></select></label>\
<button type=\"submit\">Search</button></form>\
<p class=\"muted\">TraceQL subset: one spanset <code>{{ cond &amp;&amp; cond }}</code>, a condition \
<code>span.&lt;attr&gt;</code>, <code>resource.&lt;attr&gt;</code>, <code>.&lt;attr&gt;</code> or \
<code>name</code>, <code>=</code> or <code>!=</code> a quoted string, number or boolean.</p>",
            booking = value(&self.booking),
            service = value(&self.service),
            q = value(&self.q),
            bookings = show(false),
            all = show(true),
        )
    }
}

fn row(s: &Summary<'_>) -> String {
    let root = match s.root {
        Some(root) => format!(
            "{} {}",
            html::service_chip(&root.service_name),
            esc(&root.name)
        ),
        None => badge("orphan", "root span not received"),
    };
    let booking = s
        .booking
        .map(|b| {
            format!(
                "<a class=\"mono\" href=\"/ui/?booking={}\">{}</a>",
                url_param(b),
                esc(b)
            )
        })
        .unwrap_or_default();
    let services: String = s.services.iter().map(|x| html::service_chip(x)).collect();
    let mut outcome = s
        .outcome
        .map(|(_, o)| badge(o, o))
        .unwrap_or_else(|| "<span class=\"muted\">—</span>".to_owned());
    if s.compensated {
        outcome.push_str(&badge("comp", "compensation"));
    }
    if s.duplicate {
        outcome.push_str(&badge("dup", "duplicate skipped"));
    }
    if s.error {
        outcome.push_str(&badge("err", "error"));
    }
    // The trace id is hex from the OTLP decoder, so it is safe in a path.
    format!(
        "<tr class=\"trace\" data-trace-id=\"{id}\"><td class=\"mono\">{started}</td>\
<td><a class=\"mono\" href=\"/ui/trace/{id}\">{id}</a></td><td>{root}</td><td>{booking}</td>\
<td>{duration}</td><td>{services}</td><td>{outcome}</td><td>{spans}</td></tr>",
        id = esc(s.trace_id),
        started = html::clock(i128::from(s.start)),
        duration = html::duration(s.end.saturating_sub(s.start)),
        spans = s.spans,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, service: &str, attrs: &[(&str, &str)]) -> StoredSpan {
        StoredSpan::for_test(trace, &format!("{trace}-{service}"), service, "span", attrs)
    }

    fn search(form: SearchForm) -> Search {
        match Request::parse(&form).expect("parses") {
            Request::Search(search) => search,
            Request::Trace(_) => panic!("a search"),
        }
    }

    #[test]
    fn each_field_may_be_met_by_a_different_span_of_the_trace() {
        let spans = [
            span("aaa", "gateway", &[("booking_id", "b-1")]),
            span("aaa", "payment", &[]),
            span("bbb", "gateway", &[("booking_id", "b-2")]),
        ];
        let page = search(SearchForm {
            booking: Some("b-1".into()),
            service: Some("payment".into()),
            ..SearchForm::default()
        })
        .render(&spans);
        assert!(page.contains("data-trace-id=\"aaa\""), "{page}");
        assert!(!page.contains("data-trace-id=\"bbb\""), "{page}");
    }

    #[test]
    fn traces_without_a_booking_are_listed_only_when_asked() {
        let spans = [span("ccc", "reservation", &[])];
        let bookings = search(SearchForm::default()).render(&spans);
        assert!(!bookings.contains("data-trace-id=\"ccc\""));
        let all = search(SearchForm {
            show: Some("all".into()),
            ..SearchForm::default()
        })
        .render(&spans);
        assert!(all.contains("data-trace-id=\"ccc\""));
    }

    #[test]
    fn bad_fields_are_named_in_the_error() {
        let error = |form: SearchForm| Request::parse(&form).expect_err("refused");
        assert!(
            error(SearchForm {
                trace: Some("xyz".into()),
                ..SearchForm::default()
            })
            .contains("trace id")
        );
        assert!(
            error(SearchForm {
                outcome: Some("maybe".into()),
                ..SearchForm::default()
            })
            .contains("MAYBE")
        );
        assert!(
            error(SearchForm {
                q: Some("{ duration > 1s }".into()),
                ..SearchForm::default()
            })
            .starts_with("query: ")
        );
    }

    #[test]
    fn a_trace_id_goes_to_its_page() {
        let request = Request::parse(&SearchForm {
            trace: Some("4BF92F3577B34DA6A3CE929D0E0E4736".into()),
            ..SearchForm::default()
        });
        assert!(
            matches!(request, Ok(Request::Trace(id)) if id == "4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
