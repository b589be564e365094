//! The Tempo query subset: a trace by id, and search by span conditions.
//!
//! TraceQL accepted: one spanset `{ cond && cond … }` where a condition is
//! `span.<attr>`, `resource.<attr>`, `.<attr>` (either) or `name`, compared with `=` or `!=` to a
//! quoted string, a number or `true`/`false`. A trace matches when one of its spans meets every
//! condition (TraceQL's spanset semantics). Anything else is answered 400, as Tempo answers a
//! query it cannot parse. Parsing is `faultline_querylang::traceql`'s (the parser the deploy
//! checks validate the dashboards with); this module narrows its AST to that subset and
//! evaluates it on the stored spans.

use std::collections::BTreeMap;

use faultline_querylang::traceql::{self, Attribute, Comparison, Condition, Value as Operand};
use serde_json::{Value, json};

use crate::store::StoredSpan;

/// The trace in Tempo's `/api/traces/{id}` shape: OTLP JSON grouped in `batches` by resource,
/// one per sending process — two replicas of a service are two batches, each with its own
/// `service.instance.id` (grouped by service name, every replica's spans read as the first's).
pub fn trace_json(spans: &[StoredSpan]) -> Value {
    let mut by_resource: BTreeMap<&BTreeMap<String, String>, Vec<&StoredSpan>> = BTreeMap::new();
    for span in spans {
        by_resource.entry(&*span.resource).or_default().push(span);
    }
    let attributes = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect::<Vec<_>>()
    };
    let batches: Vec<Value> = by_resource
        .values()
        .map(|spans| {
            json!({
                "resource": {"attributes": attributes(&spans[0].resource)},
                "scopeSpans": [{
                    "scope": {"name": "faultline"},
                    "spans": spans.iter().map(|s| json!({
                        "traceId": s.trace_id,
                        "spanId": s.span_id,
                        "parentSpanId": s.parent_span_id,
                        "name": s.name,
                        "kind": kind_name(s.kind),
                        "startTimeUnixNano": s.start_unix_nano.to_string(),
                        "endTimeUnixNano": s.end_unix_nano.to_string(),
                        "attributes": attributes(&s.attributes),
                        "events": s.events.iter().map(|e| json!({
                            "name": e.name,
                            "timeUnixNano": e.time_unix_nano.to_string(),
                            "attributes": attributes(&e.attributes),
                        })).collect::<Vec<_>>(),
                        "links": s.links.iter().map(|(t, sp)| json!({"traceId": t, "spanId": sp})).collect::<Vec<_>>(),
                        "status": {"code": s.status_code},
                    })).collect::<Vec<_>>(),
                }],
            })
        })
        .collect();
    json!({ "batches": batches })
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

/// A parsed spanset, within the capture's subset: conditions joined by `&&`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    conditions: Vec<Condition>,
}

impl Query {
    pub fn parse(q: &str) -> Result<Self, String> {
        let parsed = traceql::parse(q).map_err(|e| format!("unsupported TraceQL {q:?}: {e}"))?;
        if let Some(function) = parsed.metrics {
            return Err(format!(
                "unsupported TraceQL {q:?}: metrics functions (| {function}) are not supported"
            ));
        }
        let [conditions] = <[Vec<Condition>; 1]>::try_from(parsed.spanset.alternatives)
            .map_err(|_| format!("unsupported TraceQL {q:?}: || is not supported"))?;
        for c in &conditions {
            let field = match &c.attribute {
                Attribute::Intrinsic(name) => name == "name",
                Attribute::Span(_) | Attribute::Resource(_) | Attribute::Unscoped(_) => true,
            };
            if !field || !matches!(c.op, Comparison::Eq | Comparison::Ne) {
                return Err(format!(
                    "unsupported TraceQL condition `{} {} …` in {q:?}: expected `field = value` or `field != value` on span., resource., . or name",
                    c.attribute, c.op
                ));
            }
        }
        Ok(Self { conditions })
    }

    /// The spanset `{ .<attribute> = "<value>" }` (span attribute, else resource attribute),
    /// built without parsing, so the value may hold any character (the viewer's form fields).
    pub fn attribute_equals(attribute: &str, value: &str) -> Self {
        Self {
            conditions: vec![Condition {
                attribute: Attribute::Unscoped(attribute.to_owned()),
                op: Comparison::Eq,
                value: Operand::Str(value.to_owned()),
            }],
        }
    }

    /// Whether `span` meets every condition (values compare as text: `1`, `true`, `"x"`).
    pub fn matches(&self, span: &StoredSpan) -> bool {
        self.conditions.iter().all(|c| {
            let actual = match &c.attribute {
                Attribute::Span(a) => span.attributes.get(a),
                Attribute::Resource(a) => span.resource.get(a),
                Attribute::Unscoped(a) => span.attributes.get(a).or_else(|| span.resource.get(a)),
                Attribute::Intrinsic(name) if name == "name" => Some(&span.name),
                // `parse` lets no other intrinsic through.
                Attribute::Intrinsic(_) => None,
            };
            let equal = c.op == Comparison::Eq;
            match actual {
                Some(actual) => (actual == c.value.text()) == equal,
                None => !equal,
            }
        })
    }
}

/// Tempo's search answer for the traces with a span matching `query`, newest first.
pub fn search(
    spans: &[StoredSpan],
    query: &Query,
    limit: usize,
    window_ns: Option<(u64, u64)>,
) -> Value {
    let mut traces: BTreeMap<&str, Vec<&StoredSpan>> = BTreeMap::new();
    for span in spans {
        traces.entry(&span.trace_id).or_default().push(span);
    }
    let mut found: Vec<Value> = traces
        .into_iter()
        .filter_map(|(trace_id, spans)| {
            let matched: Vec<&&StoredSpan> = spans.iter().filter(|s| query.matches(s)).collect();
            let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or_default();
            let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or_default();
            if matched.is_empty() || window_ns.is_some_and(|(from, to)| end < from || start > to) {
                return None;
            }
            let root = spans.iter().find(|s| s.parent_span_id.is_empty()).copied();
            Some(json!({
                "traceID": trace_id,
                "rootServiceName": root.map(|r| &*r.service_name).unwrap_or("<root span not yet received>"),
                "rootTraceName": root.map(|r| r.name.as_str()).unwrap_or_default(),
                "startTimeUnixNano": start.to_string(),
                "durationMs": (end.saturating_sub(start)) / 1_000_000,
                "spanSet": {
                    "matched": matched.len(),
                    "spans": matched.iter().map(|s| json!({"spanID": s.span_id, "name": s.name, "startTimeUnixNano": s.start_unix_nano.to_string()})).collect::<Vec<_>>(),
                },
            }))
        })
        .collect();
    found.sort_by(|a, b| {
        b["startTimeUnixNano"]
            .as_str()
            .cmp(&a["startTimeUnixNano"].as_str())
    });
    found.truncate(limit);
    json!({ "traces": found })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, attrs: &[(&str, &str)]) -> StoredSpan {
        StoredSpan::for_test("t", "s", "reservation", name, attrs)
    }

    #[test]
    fn all_conditions_must_hold_on_one_span() {
        let q = Query::parse(
            r#"{ span.saga.outcome = "CANCELLED" && resource.service.name = "reservation" }"#,
        )
        .expect("parses");
        assert!(q.matches(&span("x", &[("saga.outcome", "CANCELLED")])));
        assert!(!q.matches(&span("x", &[("saga.outcome", "CONFIRMED")])));
    }

    #[test]
    fn a_bare_boolean_and_an_unscoped_attribute_match() {
        let q = Query::parse("{ .messaging.duplicate = true }").expect("parses");
        assert!(q.matches(&span("consume", &[("messaging.duplicate", "true")])));
        assert!(!q.matches(&span("consume", &[])));
    }

    #[test]
    fn not_equal_matches_a_missing_attribute() {
        let q = Query::parse(r#"{ name != "publish" && span.x != "1" }"#).expect("parses");
        assert!(q.matches(&span("consume", &[])));
    }

    #[test]
    fn each_replica_of_a_service_is_a_batch_with_its_own_instance_id() {
        let replica = |span_id: &str, instance: &str| {
            let mut span = StoredSpan::for_test("t", span_id, "reservation", "saga charge", &[]);
            span.resource = std::sync::Arc::new(
                [
                    ("service.name".to_owned(), "reservation".to_owned()),
                    ("service.instance.id".to_owned(), instance.to_owned()),
                ]
                .into(),
            );
            span
        };
        let trace = trace_json(&[
            replica("a", "reservation-1"),
            replica("b", "reservation-2"),
            replica("c", "reservation-1"),
        ]);
        let senders: Vec<(String, usize)> = trace["batches"]
            .as_array()
            .expect("batches")
            .iter()
            .map(|batch| {
                let instance = batch["resource"]["attributes"]
                    .as_array()
                    .expect("attributes")
                    .iter()
                    .find(|a| a["key"] == "service.instance.id")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .expect("an instance id")
                    .to_owned();
                (
                    instance,
                    batch["scopeSpans"][0]["spans"]
                        .as_array()
                        .expect("spans")
                        .len(),
                )
            })
            .collect();
        assert_eq!(
            senders,
            [
                ("reservation-1".to_owned(), 2),
                ("reservation-2".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn an_unsupported_query_is_an_error() {
        assert!(Query::parse("{ duration > 1s }").is_err());
        assert!(Query::parse("span.x = 1").is_err());
    }
}
