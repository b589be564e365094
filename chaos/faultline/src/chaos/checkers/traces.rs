//! Invariant 5: one connected trace per booking across every service it touched, with
//! compensation steps as spans in reverse order.
//!
//! Traces are read by id (Tempo's search skips the newest 30 s by default; trace-by-id does
//! not). The client's own span is not exported, so a booking's trace is connected when every
//! span's parent is in the trace or is the span id the client put in `traceparent`.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use super::{CheckResult, Input, Verdict, result};
use crate::chaos::{evidence::Span, history::Operation, scenario::Invariant};

/// How long traces may take to arrive and stop growing.
const SETTLE: Duration = Duration::from_secs(20);

/// Services a booking with this final status must have spans in.
pub fn required_services(status: &str) -> &'static [&'static str] {
    match status {
        "CONFIRMED" => &["gateway", "reservation", "inventory", "payment", "analytics"],
        _ => &["gateway", "reservation", "inventory", "analytics"],
    }
}

/// What is wrong with one booking's trace, if anything.
pub fn judge(op: &Operation, spans: &[Span]) -> Vec<String> {
    let mut problems = Vec::new();
    if spans.is_empty() {
        return vec!["no trace with the client's trace id".into()];
    }
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let detached: Vec<String> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent.as_str()) && s.parent != op.client_span_id)
        .map(|s| format!("{}: {:?} (parent {:?})", s.service, s.name, s.parent))
        .collect();
    if !detached.is_empty() {
        problems.push(format!(
            "{} span(s) not connected to the booking's tree: {}",
            detached.len(),
            detached.join(", ")
        ));
    }
    if !spans.iter().any(|s| s.parent == op.client_span_id) {
        problems.push("no span continues the client's traceparent".into());
    }
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    let status = op.status.as_deref().unwrap_or_default();
    let missing: Vec<&str> = required_services(status)
        .iter()
        .copied()
        .filter(|s| !services.contains(s))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("a {status} booking with no spans from {missing:?}"));
    }
    let first = |name: &str| {
        spans
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.start_ns)
            .min()
    };
    if status == "CANCELLED" {
        match (first("saga compensate refund"), first("saga compensate release")) {
            (Some(refund), Some(release)) if refund > release => problems.push(
                "compensation out of order: release ran before refund (reverse order is refund, then release)"
                    .into(),
            ),
            (_, None) => problems.push("a cancelled booking without a `saga compensate release` span".into()),
            _ => {}
        }
    }
    problems
}

pub async fn check(input: &Input<'_>) -> CheckResult {
    let booked: Vec<&Operation> = input
        .ops
        .iter()
        .filter(|o| {
            o.booking_id.is_some()
                && matches!(o.status.as_deref(), Some("CONFIRMED" | "CANCELLED" | "REJECTED"))
        })
        .collect();
    if booked.is_empty() {
        return result(
            input,
            Invariant::Traces,
            Verdict::Unknown,
            "no booking reached an outcome: no trace to check".into(),
            Vec::new(),
        );
    }
    // Poll until every trace is complete, or has stopped growing and the time is up.
    let started = Instant::now();
    let mut traces: BTreeMap<u32, Vec<Span>> = BTreeMap::new();
    let mut stable: BTreeSet<u32> = BTreeSet::new();
    let mut errors = Vec::new();
    loop {
        for op in &booked {
            if stable.contains(&op.op) {
                continue;
            }
            match input.evidence.trace(&op.trace_id).await {
                Ok(spans) => {
                    let grew = traces.get(&op.op).map(Vec::len) != Some(spans.len());
                    if !grew && judge(op, &spans).is_empty() {
                        stable.insert(op.op);
                    }
                    traces.insert(op.op, spans);
                }
                Err(error) => errors.push(format!("{}: {error:#}", op.trace_id)),
            }
        }
        if stable.len() == booked.len() || started.elapsed() > SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !errors.is_empty() && traces.is_empty() {
        return result(
            input,
            Invariant::Traces,
            Verdict::Unknown,
            format!("could not read traces: {}", errors[..errors.len().min(3)].join("; ")),
            Vec::new(),
        );
    }
    let mut witnesses = Vec::new();
    let mut spans_total = 0;
    let mut compensated = 0;
    for op in &booked {
        let spans = traces.get(&op.op).map(Vec::as_slice).unwrap_or_default();
        spans_total += spans.len();
        if spans.iter().any(|s| s.name == "saga compensate release") {
            compensated += 1;
        }
        let problems = judge(op, spans);
        if !problems.is_empty() {
            witnesses.push(input.witness(
                op.booking_id.as_deref(),
                Some(&op.trace_id),
                problems.join("; "),
            ));
        }
    }
    let bad = witnesses.len();
    let (verdict, summary) = if bad == 0 {
        (
            Verdict::Pass,
            format!(
                "{} bookings, each one connected trace ({spans_total} spans); {compensated} show compensation in reverse order",
                booked.len()
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!("{bad} of {} bookings' traces are broken or incomplete", booked.len()),
        )
    };
    result(input, Invariant::Traces, verdict, summary, witnesses)
}
