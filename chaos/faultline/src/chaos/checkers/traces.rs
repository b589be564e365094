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
        "CONFIRMED" => &[
            "gateway",
            "reservation",
            "inventory",
            "payment",
            "analytics",
        ],
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

/// Services SIGKILLed during the run, with when (history ms).
fn kills(events: &[crate::chaos::history::Event]) -> Vec<(String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            crate::chaos::history::Event::Fault {
                phase: crate::chaos::history::Phase::Start,
                kind: crate::chaos::scenario::FaultKind::Kill { service },
                time_ms,
                verified: true,
                ..
            } => Some((service.clone(), *time_ms)),
            _ => None,
        })
        .collect()
}

/// A trace whose only problem is missing spans of services that were SIGKILLed while the
/// booking was under way (or just after): those spans died in the killed process's export
/// batch. Returns the services, or `None` when the trace has any other problem.
fn excused_by_kill(
    op: &Operation,
    spans: &[Span],
    kills: &[(String, u64)],
    problems: &[String],
) -> Option<String> {
    if problems.is_empty() || problems.len() > 1 || !problems[0].contains("with no spans from") {
        return None;
    }
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    let status = op.status.as_deref().unwrap_or_default();
    let missing: Vec<&str> = required_services(status)
        .iter()
        .copied()
        .filter(|s| !services.contains(s))
        .collect();
    let done = op.completed_ms.unwrap_or(u64::MAX);
    let all_killed = missing.iter().all(|service| {
        kills.iter().any(|(killed, at)| {
            killed == service && *at + 1_000 >= op.invoked_ms && *at <= done.saturating_add(3_000)
        })
    });
    (all_killed && !missing.is_empty()).then(|| missing.join(", "))
}

pub async fn check(input: &Input<'_>) -> CheckResult {
    let booked: Vec<&Operation> = input
        .ops
        .iter()
        .filter(|o| {
            o.booking_id.is_some()
                && matches!(
                    o.status.as_deref(),
                    Some("CONFIRMED" | "CANCELLED" | "REJECTED")
                )
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
            format!(
                "could not read traces: {}",
                errors[..errors.len().min(3)].join("; ")
            ),
            Vec::new(),
        );
    }
    let kills = kills(input.events);
    let mut witnesses = Vec::new();
    let mut spans_total = 0;
    let mut compensated = 0;
    let mut lost_to_kill = Vec::new();
    for op in &booked {
        let spans = traces.get(&op.op).map(Vec::as_slice).unwrap_or_default();
        spans_total += spans.len();
        if spans.iter().any(|s| s.name == "saga compensate release") {
            compensated += 1;
        }
        let problems = judge(op, spans);
        if let Some(service) = excused_by_kill(op, spans, &kills, &problems) {
            lost_to_kill.push(format!("{} ({service})", op.trace_id));
            continue;
        }
        if !problems.is_empty() {
            witnesses.push(input.witness(
                op.booking_id.as_deref(),
                Some(&op.trace_id),
                problems.join("; "),
            ));
        }
    }
    let bad = witnesses.len();
    let excused = if lost_to_kill.is_empty() {
        String::new()
    } else {
        format!(
            "; {} trace(s) lack only spans of a service SIGKILLed while it worked on them (a killed process cannot flush its span batch): {}",
            lost_to_kill.len(),
            lost_to_kill.join(", ")
        )
    };
    let (verdict, summary) = if bad == 0 {
        (
            Verdict::Pass,
            format!(
                "{} bookings, each one connected trace ({spans_total} spans); {compensated} show compensation in reverse order{excused}",
                booked.len()
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "{bad} of {} bookings' traces are broken or incomplete",
                booked.len()
            ),
        )
    };
    result(input, Invariant::Traces, verdict, summary, witnesses)
}
