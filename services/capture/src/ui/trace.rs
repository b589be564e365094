//! The trace page (`/ui/trace/<trace_id>`): what the trace is (booking, outcome, services,
//! duration), its compensation steps in the order they ran, the waterfall — every span a bar
//! on one time axis, nested under its parent, coloured by service, compensation and
//! duplicate-skip spans badged, attributes and events in a `<details>` — and below it every
//! log line of the trace, each linking to its span (`#span-<span_id>`).

use std::collections::{HashMap, HashSet};

use super::{
    html::{self, badge, esc, url_param},
    logs::{self, LogLine},
    search::{is_compensation, is_duplicate_skip},
};
use crate::store::StoredSpan;

/// One row of the waterfall: a span and how deep it sits.
struct Row<'a> {
    span: &'a StoredSpan,
    depth: usize,
    /// Its parent id names a span this trace does not have (not received, or evicted).
    orphan: bool,
}

/// The spans in tree order: each root (by start), then its children depth-first, each level
/// by start time. A span whose parent is missing is a root of its own, marked; spans caught in
/// a parent cycle (malformed input) still appear, at the end.
fn tree(spans: &[StoredSpan]) -> Vec<Row<'_>> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&StoredSpan>> = HashMap::new();
    let mut roots: Vec<&StoredSpan> = Vec::new();
    for span in spans {
        if span.parent_span_id.is_empty() || !ids.contains(span.parent_span_id.as_str()) {
            roots.push(span);
        } else {
            children.entry(&span.parent_span_id).or_default().push(span);
        }
    }
    let by_start = |a: &&StoredSpan, b: &&StoredSpan| {
        a.start_unix_nano
            .cmp(&b.start_unix_nano)
            .then(a.span_id.cmp(&b.span_id))
    };
    roots.sort_by(by_start);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }
    let mut rows = Vec::with_capacity(spans.len());
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<(&StoredSpan, usize)> = roots.iter().rev().map(|s| (*s, 0)).collect();
    while let Some((span, depth)) = stack.pop() {
        if !seen.insert(&span.span_id) {
            continue;
        }
        rows.push(Row {
            span,
            depth,
            orphan: !span.parent_span_id.is_empty() && !ids.contains(span.parent_span_id.as_str()),
        });
        if let Some(kids) = children.get(span.span_id.as_str()) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    for span in spans {
        if !seen.contains(span.span_id.as_str()) {
            rows.push(Row {
                span,
                depth: 0,
                orphan: true,
            });
        }
    }
    rows
}

/// The page body for a trace with `spans` (at least one) and its log `lines`.
pub fn render(trace_id: &str, spans: &[StoredSpan], lines: &[LogLine]) -> String {
    let start = spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or_default();
    let end = spans
        .iter()
        .map(|s| s.end_unix_nano)
        .max()
        .unwrap_or_default()
        .max(start);
    let total = (end - start).max(1) as f64;
    let rows = tree(spans);

    let mut services: Vec<&str> = spans.iter().map(|s| &*s.service_name).collect();
    services.sort_unstable();
    services.dedup();
    let latest = |key: &str| {
        spans
            .iter()
            .filter_map(|s| s.attributes.get(key).map(|v| (s.end_unix_nano, v.as_str())))
            .max()
            .map(|(_, v)| v)
    };
    let booking = latest("booking_id");
    let outcome = latest("saga.outcome");

    let mut facts = format!(
        "<div class=\"facts\"><span><b>started</b> {} UTC</span><span><b>duration</b> {}</span>\
<span><b>spans</b> {}</span><span><b>services</b> {}</span>",
        html::clock(i128::from(start)),
        html::duration(end - start),
        spans.len(),
        services
            .iter()
            .map(|s| html::service_chip(s))
            .collect::<String>()
    );
    if let Some(booking) = booking {
        facts.push_str(&format!(
            "<span><b>booking</b> <a class=\"mono\" href=\"/ui/?booking={}\">{}</a></span>",
            url_param(booking),
            esc(booking)
        ));
    }
    if let Some(outcome) = outcome {
        facts.push_str(&format!(
            "<span><b>outcome</b> {}</span>",
            badge(outcome, outcome)
        ));
    }
    facts.push_str(&format!(
        "<span><a href=\"#logs\">{} log lines ↓</a></span><span><a href=\"/api/traces/{id}\">Tempo JSON</a></span></div>",
        lines.len(),
        id = esc(trace_id)
    ));

    let mut marks = String::new();
    let mut compensation: Vec<&StoredSpan> = spans.iter().filter(|s| is_compensation(s)).collect();
    compensation.sort_by_key(|s| s.start_unix_nano);
    if !compensation.is_empty() {
        marks.push_str(
            "<h2>Compensation, in the order it ran</h2><ol class=\"comp\" id=\"compensation\">",
        );
        for span in compensation {
            marks.push_str(&format!(
                "<li data-span-id=\"{id}\" data-name=\"{name}\"><a href=\"#span-{id}\">{name}</a> {chip} at +{at}{result}</li>",
                id = esc(&span.span_id),
                name = esc(&span.name),
                chip = html::service_chip(&span.service_name),
                at = html::duration(span.start_unix_nano.saturating_sub(start)),
                result = span
                    .attributes
                    .get("compensation.outcome")
                    .map(|o| format!(" — {}", esc(o)))
                    .unwrap_or_default(),
            ));
        }
        marks.push_str("</ol>");
    }

    // Services more than one instance of which sent spans of this trace: their spans say which.
    let mut instances: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        std::collections::BTreeMap::new();
    for span in spans.iter() {
        if let Some(instance) = span.resource.get("service.instance.id") {
            instances
                .entry(&*span.service_name)
                .or_default()
                .insert(instance);
        }
    }
    let replicated: std::collections::BTreeSet<&str> = instances
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(service, _)| service)
        .collect();
    let mut waterfall = String::new();
    for row in &rows {
        waterfall.push_str(&span_row(row, start, total, &replicated));
    }
    let ticks: String = (0..=4)
        .map(|i| {
            format!(
                "<span style=\"left:{}%\">{}</span>",
                i * 25,
                html::duration((end - start) * i / 4)
            )
        })
        .collect();
    let span_ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let log_table = logs::table(
        lines,
        logs::Context::Trace {
            start_ns: start,
            span_ids: &span_ids,
        },
    );
    format!(
        "<h1>Trace <code id=\"trace-id\">{id}</code></h1>{facts}{marks}\
<h2>Spans</h2><p class=\"muted\">Click a span for its attributes and events.</p>\
<div class=\"waterfall\" id=\"waterfall\"><div class=\"axis\"><span>span</span><span class=\"ticks\">{ticks}</span></div>{waterfall}</div>\
<h2 id=\"logs\">Log lines of this trace, every service, in time order</h2>{log_table}",
        id = esc(trace_id),
    )
}

/// One span: its summary row (label and bar) and, on demand, its details.
fn span_row(
    row: &Row<'_>,
    start: u64,
    total: f64,
    replicated: &std::collections::BTreeSet<&str>,
) -> String {
    let span = row.span;
    let colour = html::service_colour(&span.service_name);
    let offset = span.start_unix_nano.saturating_sub(start);
    let length = span.end_unix_nano.saturating_sub(span.start_unix_nano);
    let left = offset as f64 / total * 100.0;
    let width = (length as f64 / total * 100.0).min(100.0 - left).max(0.0);
    let mut badges = String::new();
    // Which replica sent it, where several instances of its service worked on this trace: a
    // saga handed over from one replica to another shows as the instance changing down the tree.
    if let Some(instance) = span
        .resource
        .get("service.instance.id")
        .filter(|_| replicated.contains(&*span.service_name))
    {
        badges.push_str(&badge("inst", instance));
    }
    let compensation = is_compensation(span);
    if compensation {
        badges.push_str(&badge("comp", "compensation"));
    }
    let duplicate = is_duplicate_skip(span);
    if duplicate {
        badges.push_str(&badge("dup", "duplicate skipped"));
    }
    if span.status_code == 2 {
        badges.push_str(&badge("err", "error"));
    }
    if row.orphan {
        badges.push_str(&badge("orphan", "parent not received"));
    }
    let mut classes = String::from("span");
    if compensation {
        classes.push_str(" compensation");
    }
    if duplicate {
        classes.push_str(" duplicate");
    }
    // The duration sits right of the bar, or left of it when the bar ends near the edge.
    let dur_at = if left + width > 85.0 {
        format!("right:{:.3}%;text-align:right", 100.0 - left)
    } else {
        format!("left:{:.3}%", left + width)
    };
    format!(
        "<details class=\"{classes}\" id=\"span-{id}\" data-span-id=\"{id}\" data-parent-id=\"{parent}\" \
data-service=\"{service}\" data-name=\"{name}\" data-depth=\"{depth}\" data-start-ns=\"{start_ns}\">\
<summary><span class=\"label\" style=\"padding-left:{indent}px\">{chip} {name}{badges}</span>\
<span class=\"lane\"><span class=\"bar\" style=\"left:{left:.3}%;width:{width:.3}%;background:{colour}\"></span>\
<span class=\"dur\" style=\"{dur_at}\">{duration}</span></span></summary>{detail}</details>",
        id = esc(&span.span_id),
        parent = esc(&span.parent_span_id),
        service = esc(&span.service_name),
        name = esc(&span.name),
        depth = row.depth,
        start_ns = span.start_unix_nano,
        indent = row.depth * 16,
        chip = html::service_chip(&span.service_name),
        duration = html::duration(length),
        detail = detail(span, start),
    )
}

/// A span's attributes, events, links and ids.
fn detail(span: &StoredSpan, start: u64) -> String {
    let mut attributes = String::new();
    for (key, value) in &span.attributes {
        attributes.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            esc(key),
            esc(value)
        ));
    }
    let mut events = String::new();
    for event in &span.events {
        let fields: String = event
            .attributes
            .iter()
            .map(|(k, v)| format!("<span><i>{}=</i>{}</span>", esc(k), esc(v)))
            .collect();
        events.push_str(&format!(
            "<tr><td class=\"mono\">+{}</td><td>{}</td><td class=\"fields\">{fields}</td></tr>",
            html::duration(event.time_unix_nano.saturating_sub(start)),
            esc(&event.name)
        ));
    }
    let links: String = span
        .links
        .iter()
        .map(|(trace, linked)| {
            if html::is_hex(trace, 32) {
                format!(
                    "<li><a class=\"mono\" href=\"/ui/trace/{t}#span-{s}\">{t} / {s}</a></li>",
                    t = esc(trace),
                    s = esc(linked)
                )
            } else {
                format!("<li class=\"mono\">{} / {}</li>", esc(trace), esc(linked))
            }
        })
        .collect();
    let status = match span.status_code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    };
    let mut out = format!(
        "<div class=\"detail\"><p><span class=\"mono\">span {} · parent {}</span> · {} · status {status} · \
starts at +{} · lasts {}</p>",
        esc(&span.span_id),
        if span.parent_span_id.is_empty() {
            "none (root)".to_owned()
        } else {
            esc(&span.parent_span_id)
        },
        esc(kind(span.kind)),
        html::duration(span.start_unix_nano.saturating_sub(start)),
        html::duration(span.end_unix_nano.saturating_sub(span.start_unix_nano)),
    );
    if !attributes.is_empty() {
        out.push_str(&format!(
            "<table><tr><th>attribute</th><th>value</th></tr>{attributes}</table>"
        ));
    }
    if !events.is_empty() {
        out.push_str(&format!(
            "<p><b>Events</b></p><table><tr><th>at</th><th>event</th><th>attributes</th></tr>{events}</table>"
        ));
    }
    if !links.is_empty() {
        out.push_str(&format!("<p><b>Links</b></p><ul>{links}</ul>"));
    }
    out.push_str("</div>");
    out
}

fn kind(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, name: &str, start: u64) -> StoredSpan {
        StoredSpan {
            parent_span_id: parent.into(),
            start_unix_nano: start,
            end_unix_nano: start + 10,
            ..StoredSpan::for_test(
                "4bf92f3577b34da6a3ce929d0e0e4736",
                id,
                "reservation",
                name,
                &[],
            )
        }
    }

    #[test]
    fn spans_nest_under_their_parents_in_start_order() {
        let spans = [
            span("c2", "root", "second child", 30),
            span("root", "", "root", 0),
            span("g1", "c1", "grandchild", 25),
            span("c1", "root", "first child", 20),
            span("o", "missing", "orphan", 5),
        ];
        let order: Vec<(&str, usize, bool)> = tree(&spans)
            .iter()
            .map(|r| (r.span.span_id.as_str(), r.depth, r.orphan))
            .collect();
        assert_eq!(
            order,
            vec![
                ("root", 0, false),
                ("c1", 1, false),
                ("g1", 2, false),
                ("c2", 1, false),
                ("o", 0, true)
            ]
        );
    }

    #[test]
    fn a_trace_two_replicas_of_a_service_worked_on_names_each_spans_replica() {
        let from = |instance: &str, mut span: StoredSpan| {
            span.resource = std::sync::Arc::new(
                [
                    ("service.name".to_owned(), "reservation".to_owned()),
                    ("service.instance.id".to_owned(), instance.to_owned()),
                ]
                .into(),
            );
            span
        };
        let badge = |instance: &str| format!("<span class=\"badge inst\">{instance}</span>");
        let handed_over = [
            from("reservation-2", span("root", "", "POST /bookings", 0)),
            from("reservation-1", span("step", "root", "saga charge", 20)),
        ];
        let page = render("4bf92f3577b34da6a3ce929d0e0e4736", &handed_over, &[]);
        assert!(page.contains(&badge("reservation-2")), "{page}");
        assert!(page.contains(&badge("reservation-1")), "{page}");
        let one_replica = [
            from("reservation-1", span("root", "", "POST /bookings", 0)),
            from("reservation-1", span("step", "root", "saga charge", 20)),
        ];
        let page = render("4bf92f3577b34da6a3ce929d0e0e4736", &one_replica, &[]);
        assert!(!page.contains("badge inst"), "{page}");
    }

    #[test]
    fn a_parent_cycle_still_shows_every_span_once() {
        let spans = [span("a", "b", "a", 0), span("b", "a", "b", 1)];
        assert_eq!(tree(&spans).len(), 2);
    }

    #[test]
    fn compensation_is_listed_in_the_order_it_ran_and_badged() {
        let spans = [
            span("root", "", "POST /bookings", 0),
            span("rel", "root", "saga compensate release", 50),
            span("ref", "root", "saga compensate refund", 40),
        ];
        let page = render("4bf92f3577b34da6a3ce929d0e0e4736", &spans, &[]);
        let refund = page
            .find("<li data-span-id=\"ref\"")
            .expect("refund listed");
        let release = page
            .find("<li data-span-id=\"rel\"")
            .expect("release listed");
        assert!(refund < release);
        assert!(page.contains("class=\"span compensation\" id=\"span-ref\""));
    }
}
