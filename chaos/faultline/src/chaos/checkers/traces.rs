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
use crate::chaos::{evidence::Span, handling::Handling, history::Operation, scenario::Invariant};

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

/// A service SIGKILLed during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub service: String,
    /// The process killed: the service's name, or `<service>-<replica>` of several (the instance
    /// id its relay writes as each message's producer).
    pub instance: String,
    /// On the history's clock (ms since the run started).
    pub at_ms: u64,
    /// The same instant in Unix ms (the clock Kafka record timestamps use).
    pub at_unix_ms: u64,
}

/// How long before its SIGKILL a process's ended spans may still sit in its unexported batch:
/// the batch span processor's export interval (5 s by default) plus the time an export takes.
pub const UNEXPORTED_MS: u64 = 6_000;

/// The kill that took a span's missing parent with it, if the evidence shows one. Two ways a
/// parent dies with a SIGKILLed process while its child lives on elsewhere:
/// - a consumer span whose message's `publish` span is exactly its missing parent
///   (`faultline.message.publish_span`, read from the message's `traceparent`), published by the
///   killed service's relay (`faultline.message.producer`) at most [`UNEXPORTED_MS`] before the
///   kill (`faultline.message.published_ms`, the record's timestamp);
/// - a `publish` span of the restarted service whose missing parent is exactly the span that
///   wrote its outbox row (`faultline.outbox.writer_span`), the row written
///   (`faultline.outbox.created_ms`) at most [`UNEXPORTED_MS`] before that service's kill;
/// - a saga step span of the killed service whose missing parent is exactly the span that
///   created the saga (`faultline.saga.writer_span`), the saga created
///   (`faultline.saga.created_ms`) at most [`UNEXPORTED_MS`] before the kill: another replica
///   (or the restarted one) ran a step of a saga the dead replica started;
/// - an HTTP server span of a service the killed one calls, begun at most [`UNEXPORTED_MS`]
///   before the kill: its parent is the killed caller's client span;
/// - a span whose parent is in its own process (none of the above kinds), sent by the killed
///   process itself (`service.instance.id`) and begun before the kill: the parent was still open
///   when the process died (a child ends, and is exported, before its parent).
///
/// Either way the parent ended in the killed process's last, never exported, span batch.
/// Anything else stays an orphan.
pub fn parent_lost_with<'k>(span: &Span, kills: &'k [Kill]) -> Option<&'k Kill> {
    let attribute = |name: &str| span.attributes.get(name).map(String::as_str);
    let millis = |name: &str| attribute(name).and_then(|v| v.parse::<u64>().ok());
    let before_kill =
        |at: u64, kill: &Kill| at <= kill.at_unix_ms && at + UNEXPORTED_MS >= kill.at_unix_ms;
    if attribute("faultline.message.publish_span") == Some(span.parent.as_str()) {
        let producer = attribute("faultline.message.producer")?;
        let published = millis("faultline.message.published_ms")?;
        return kills.iter().find(|kill| {
            // An instance id of the service's own naming (`<instance>-<host>` in compose)
            // counts as the same process too.
            let same_process = producer == kill.instance
                || producer
                    .strip_prefix(kill.instance.as_str())
                    .is_some_and(|rest| rest.starts_with('-') && kill.instance == kill.service);
            same_process && before_kill(published, kill)
        });
    }
    if attribute("http.route").is_some() {
        // An HTTP server span whose caller (per the topology) was killed at most
        // [`UNEXPORTED_MS`] after the request began: the caller's client span, its parent, ended
        // in the killed process's unexported batch (a replica killed mid-call; its twin carries
        // the saga on, so the caller's service is still in the trace).
        let started = span.start_ns / 1_000_000;
        return kills
            .iter()
            .find(|kill| calls(&kill.service, &span.service) && before_kill(started, kill));
    }
    if attribute("faultline.saga.writer_span") == Some(span.parent.as_str()) {
        let created = millis("faultline.saga.created_ms")?;
        return kills
            .iter()
            .find(|kill| kill.service == span.service && before_kill(created, kill));
    }
    if attribute("faultline.outbox.writer_span") == Some(span.parent.as_str()) {
        let written = millis("faultline.outbox.created_ms")?;
        return kills
            .iter()
            .find(|kill| kill.service == span.service && before_kill(written, kill));
    }
    // Every span the cases above describe continues a context from elsewhere; any other span's
    // parent is in its own process.
    let continues_a_remote_context = [
        "http.route",
        "faultline.message.publish_span",
        "faultline.outbox.writer_span",
        "faultline.saga.writer_span",
    ]
    .iter()
    .any(|name| attribute(name).is_some());
    if !continues_a_remote_context {
        let started = span.start_ns / 1_000_000;
        return kills
            .iter()
            .find(|kill| span.instance == kill.instance && started <= kill.at_unix_ms);
    }
    None
}

/// Whether `caller` calls `callee` over HTTP (a link of the topology between two services).
fn calls(caller: &str, callee: &str) -> bool {
    use faultline_contracts::topology::{Callee, Link};
    Link::SERVICE_CALLS.iter().any(|link| {
        link.caller().is_some_and(|c| c.name() == caller)
            && matches!(link.callee(), Callee::Service(s) if s.name() == callee)
    })
}

/// One booking's trace, judged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    /// What is wrong with it; empty when it is one connected tree.
    pub problems: Vec<String>,
    /// Spans whose parent is missing because it was lost with a killed process (see
    /// [`parent_lost_with`]): connected in fact, said so in the summary.
    pub reattached: Vec<String>,
}

/// What is wrong with one booking's trace, if anything, given the run's kills.
pub fn judge(op: &Operation, spans: &[Span], kills: &[Kill]) -> Judgement {
    let mut judgement = Judgement::default();
    let problems = &mut judgement.problems;
    if spans.is_empty() {
        problems.push("no trace with the client's trace id".into());
        return judgement;
    }
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut detached = Vec::new();
    for span in spans
        .iter()
        .filter(|s| !ids.contains(s.parent.as_str()) && s.parent != op.client_span_id)
    {
        // The replica that sent it, where the service runs several times.
        let sender = if span.instance.is_empty() || span.instance == span.service {
            span.service.as_str()
        } else {
            span.instance.as_str()
        };
        match parent_lost_with(span, kills) {
            Some(kill) => judgement.reattached.push(format!(
                "{sender}: {:?} (parent {:?} lost with {}'s SIGKILL at {} ms)",
                span.name, span.parent, kill.instance, kill.at_ms
            )),
            None => {
                // For a consumed message, who published it: the first thing to ask of an orphan.
                let published_by = span
                    .attributes
                    .get("faultline.message.producer")
                    .map(|producer| format!(", published by {producer}"))
                    .unwrap_or_default();
                detached.push(format!(
                    "{sender}: {:?} (parent {:?}{published_by})",
                    span.name, span.parent
                ));
            }
        }
    }
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
    judgement
}

/// Services SIGKILLed during the run; `started_unix_ms` is when the history's clock read 0.
fn kills(events: &[crate::chaos::history::Event], started_unix_ms: u64) -> Vec<Kill> {
    events
        .iter()
        .filter_map(|e| match e {
            crate::chaos::history::Event::Fault {
                phase: crate::chaos::history::Phase::Start,
                kind: crate::chaos::scenario::FaultKind::Kill { service, replica },
                time_ms,
                verified: true,
                ..
            } => Some(Kill {
                service: service.clone(),
                instance: match replica {
                    Some(replica) => crate::stack::replica_name(service, *replica),
                    None => service.clone(),
                },
                at_ms: *time_ms,
                at_unix_ms: started_unix_ms + *time_ms,
            }),
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
    kills: &[Kill],
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
        kills.iter().any(|kill| {
            kill.service == *service
                && kill.at_ms + 1_000 >= op.invoked_ms
                && kill.at_ms <= done.saturating_add(3_000)
        })
    });
    (all_killed && !missing.is_empty()).then(|| missing.join(", "))
}

/// Judges every booking's trace; also reads from them which replica handled which booking.
pub async fn check(input: &Input<'_>) -> (CheckResult, Option<Handling>) {
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
        let unknown = result(
            input,
            Invariant::Traces,
            Verdict::Unknown,
            "no booking reached an outcome: no trace to check".into(),
            Vec::new(),
        );
        return (unknown, None);
    }
    let kills = kills(input.events, input.from_ms);
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
                    if !grew && judge(op, &spans, &kills).problems.is_empty() {
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
        let unknown = result(
            input,
            Invariant::Traces,
            Verdict::Unknown,
            format!(
                "could not read traces: {}",
                errors[..errors.len().min(3)].join("; ")
            ),
            Vec::new(),
        );
        return (unknown, None);
    }
    let mut witnesses = Vec::new();
    let mut reattached = Vec::new();
    let mut spans_total = 0;
    let mut compensated = 0;
    let mut lost_to_kill = Vec::new();
    for op in &booked {
        let spans = traces.get(&op.op).map(Vec::as_slice).unwrap_or_default();
        spans_total += spans.len();
        if spans.iter().any(|s| s.name == "saga compensate release") {
            compensated += 1;
        }
        let Judgement {
            problems,
            reattached: lost_parents,
        } = judge(op, spans, &kills);
        reattached.extend(lost_parents);
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
    let excused = if reattached.is_empty() {
        excused
    } else {
        format!(
            "{excused}; {} orphan(s) re-attached: {}",
            reattached.len(),
            reattached.join(", ")
        )
    };
    let evicted = input.evidence.evicted_spans().await.unwrap_or(0);
    let (verdict, summary) = if bad > 0 && evicted > 0 {
        (
            Verdict::Unknown,
            format!(
                "{bad} of {} bookings' traces are incomplete, but the capture evicted {evicted} span(s) under its retention: not proven either way",
                booked.len()
            ),
        )
    } else if bad == 0 {
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
    let handling = crate::chaos::handling::summarise(
        booked
            .iter()
            .filter_map(|op| traces.get(&op.op).map(|spans| (*op, spans.as_slice()))),
        |trace_id| input.evidence.trace_link(trace_id),
    );
    (
        result(input, Invariant::Traces, verdict, summary, witnesses),
        handling,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "c1c1c1c1c1c1c1c1";

    fn op() -> Operation {
        Operation {
            op: 1,
            user: "alice".into(),
            seat: "S1-001".into(),
            intent: "fresh".into(),
            trace_id: "t".repeat(32),
            client_span_id: CLIENT.into(),
            invoked_ms: 1_000,
            completed_ms: Some(2_000),
            settled_ms: Some(2_000),
            outcome: None,
            booking_id: Some("b1".into()),
            status: Some("CONFIRMED".into()),
            detail: String::new(),
        }
    }

    fn span(service: &str, id: &str, parent: &str, attributes: &[(&str, &str)]) -> Span {
        Span {
            service: service.into(),
            instance: service.into(),
            name: format!("{service} work"),
            span_id: id.into(),
            parent: parent.into(),
            start_ns: 0,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A confirmed booking's trace in which inventory's spans died with it: reservation's
    /// consumer span points at inventory's `publish` span, which never arrived.
    fn trace_with_orphan(carried: &str, producer: &str, published_ms: &str) -> Vec<Span> {
        vec![
            span("gateway", "g1", CLIENT, &[]),
            span("reservation", "r1", "g1", &[]),
            span("inventory", "i1", "r1", &[]),
            span("payment", "p1", "r1", &[]),
            span("analytics", "a1", "r1", &[]),
            span(
                "reservation",
                "r2",
                "lost-publish",
                &[
                    ("faultline.message.publish_span", carried),
                    ("faultline.message.producer", producer),
                    ("faultline.message.published_ms", published_ms),
                ],
            ),
        ]
    }

    fn inventory_killed_at(unix_ms: u64) -> Vec<Kill> {
        vec![Kill {
            service: "inventory".into(),
            instance: "inventory".into(),
            at_ms: 1_500,
            at_unix_ms: unix_ms,
        }]
    }

    #[test]
    fn an_orphan_whose_parent_was_published_by_a_process_just_before_its_kill_is_reattached() {
        let spans = trace_with_orphan("lost-publish", "inventory", "100000");
        let judgement = judge(&op(), &spans, &inventory_killed_at(100_220));
        assert_eq!(judgement.problems, Vec::<String>::new());
        assert_eq!(judgement.reattached.len(), 1, "{judgement:?}");
        assert!(
            judgement.reattached[0].contains("lost with inventory's SIGKILL at 1500 ms"),
            "{judgement:?}"
        );
    }

    /// inventory wrote an outbox row, was killed before exporting the span that wrote it, and its
    /// restarted relay published the row: the publish span's parent is the lost writer.
    #[test]
    fn a_publish_span_whose_row_was_written_just_before_its_service_was_killed_is_reattached() {
        let mut spans = trace_with_orphan("unused", "inventory", "0");
        spans[5] = span(
            "inventory",
            "i2",
            "lost-writer",
            &[
                ("faultline.outbox.writer_span", "lost-writer"),
                ("faultline.outbox.created_ms", "100000"),
            ],
        );
        let judgement = judge(&op(), &spans, &inventory_killed_at(100_220));
        assert_eq!(judgement.problems, Vec::<String>::new());
        assert_eq!(judgement.reattached.len(), 1, "{judgement:?}");
        // The row written by another service, another writer, or after the kill: still a FAIL.
        for (service, writer, created) in [
            ("payment", "lost-writer", "100000"),
            ("inventory", "someone-else", "100000"),
            ("inventory", "lost-writer", "100500"),
        ] {
            spans[5] = span(
                service,
                "i2",
                "lost-writer",
                &[
                    ("faultline.outbox.writer_span", writer),
                    ("faultline.outbox.created_ms", created),
                ],
            );
            let judgement = judge(&op(), &spans, &inventory_killed_at(100_220));
            assert!(judgement.reattached.is_empty(), "{judgement:?}");
            assert!(!judgement.problems.is_empty(), "{judgement:?}");
        }
    }

    /// A reservation replica called payment and was killed before exporting its client span:
    /// payment's server span lost its parent; reservation's other replica carried on.
    #[test]
    fn a_server_span_whose_caller_was_killed_during_the_call_is_reattached() {
        let reservation_killed_at = |unix_ms| {
            vec![Kill {
                service: "reservation".into(),
                instance: "reservation-2".into(),
                at_ms: 1_500,
                at_unix_ms: unix_ms,
            }]
        };
        let mut spans = trace_with_orphan("unused", "reservation", "0");
        let charge = |service: &str, started_ms: u64| {
            let mut charge = span(service, "p2", "lost-client", &[("http.route", "/charges")]);
            charge.start_ns = started_ms * 1_000_000;
            charge
        };
        spans[5] = charge("payment", 100_000);
        let judgement = judge(&op(), &spans, &reservation_killed_at(100_220));
        assert_eq!(judgement.problems, Vec::<String>::new());
        assert_eq!(judgement.reattached.len(), 1, "{judgement:?}");
        // Begun after the kill, long before it, or in a service reservation does not call.
        for (service, started) in [
            ("payment", 100_500),
            ("payment", 80_000),
            ("inventory", 100_000),
        ] {
            spans[5] = charge(service, started);
            let judgement = judge(&op(), &spans, &reservation_killed_at(100_220));
            assert!(judgement.reattached.is_empty(), "{service}: {judgement:?}");
            assert!(!judgement.problems.is_empty(), "{service}: {judgement:?}");
        }
    }

    /// reservation-2 exported its finished `payment.charge` client span, then was killed while
    /// the saga step span around it was still open.
    #[test]
    fn a_span_whose_in_process_parent_was_still_open_at_the_kill_is_reattached() {
        let killed = vec![Kill {
            service: "reservation".into(),
            instance: "reservation-2".into(),
            at_ms: 1_500,
            at_unix_ms: 100_220,
        }];
        let mut spans = trace_with_orphan("unused", "reservation", "0");
        let charge = |instance: &str, started_ms: u64| {
            let mut charge = span("reservation", "r3", "open-step", &[]);
            charge.instance = instance.into();
            charge.start_ns = started_ms * 1_000_000;
            charge
        };
        spans[5] = charge("reservation-2", 100_000);
        let judgement = judge(&op(), &spans, &killed);
        assert_eq!(judgement.problems, Vec::<String>::new());
        assert_eq!(judgement.reattached.len(), 1, "{judgement:?}");
        // Sent by the other replica, or begun after the kill (the restarted process).
        for (instance, started) in [("reservation-1", 100_000), ("reservation-2", 100_500)] {
            spans[5] = charge(instance, started);
            let judgement = judge(&op(), &spans, &killed);
            assert!(judgement.reattached.is_empty(), "{instance}: {judgement:?}");
            assert!(!judgement.problems.is_empty(), "{instance}: {judgement:?}");
        }
    }

    #[test]
    fn an_orphan_the_kill_does_not_explain_still_fails() {
        let cases = [
            // No kill at all: a propagation bug.
            (
                trace_with_orphan("lost-publish", "inventory", "100000"),
                vec![],
            ),
            // The message carried another parent than the one missing: broken propagation.
            (
                trace_with_orphan("another-span", "inventory", "100000"),
                inventory_killed_at(100_220),
            ),
            // Published by a process that was not killed.
            (
                trace_with_orphan("lost-publish", "payment", "100000"),
                inventory_killed_at(100_220),
            ),
            // Published after the kill (by the restarted process, which exports its spans).
            (
                trace_with_orphan("lost-publish", "inventory", "100300"),
                inventory_killed_at(100_220),
            ),
            // Published long before the kill: that batch was exported.
            (
                trace_with_orphan("lost-publish", "inventory", "80000"),
                inventory_killed_at(100_220),
            ),
        ];
        for (spans, kills) in cases {
            let judgement = judge(&op(), &spans, &kills);
            assert!(judgement.reattached.is_empty(), "{judgement:?}");
            assert_eq!(judgement.problems.len(), 1, "{judgement:?}");
            assert!(
                judgement.problems[0].contains("not connected to the booking's tree"),
                "{judgement:?}"
            );
        }
        // A span without the message evidence (not a consumer span) is never re-attached.
        let mut spans = trace_with_orphan("lost-publish", "inventory", "100000");
        spans[5].attributes.clear();
        let judgement = judge(&op(), &spans, &inventory_killed_at(100_220));
        assert!(!judgement.problems.is_empty(), "{judgement:?}");
    }
}
