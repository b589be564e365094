//! Invariant 6: every log line emitted for a booking carries its trace id; compensation and
//! dedupe decisions appear in Loki under that trace id.
//!
//! Lines are read per service (`{service="…"}`, the services' only stream label besides the
//! level) over the run's window. A line is "for" a booking when it names the booking's id.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CheckResult, Input, Verdict, exactly_once, result};
use crate::chaos::scenario::Invariant;

const SERVICES: [&str; 5] = faultline_contracts::topology::Service::ALL_NAMES;

fn message(line: &Value) -> &str {
    line["message"]
        .as_str()
        .or_else(|| line["line"].as_str())
        .unwrap_or_default()
}

pub async fn check(input: &Input<'_>) -> CheckResult {
    let bookings: BTreeMap<&str, &str> = input
        .ops
        .iter()
        .filter_map(|o| o.booking_id.as_deref().map(|b| (b, o.trace_id.as_str())))
        .collect();
    if bookings.is_empty() {
        return result(
            input,
            Invariant::Logs,
            Verdict::Unknown,
            "no booking was made: no log line to check".into(),
            Vec::new(),
        );
    }
    let mut lines: Vec<(String, Value)> = Vec::new();
    for service in SERVICES {
        let query = format!("{{service=\"{service}\"}}");
        match input
            .evidence
            .logs(
                &query,
                input.from_ms.saturating_sub(1_000),
                input.to_ms + 1_000,
            )
            .await
        {
            Ok(found) => lines.extend(found.into_iter().map(|l| (service.to_owned(), l))),
            Err(error) => {
                return result(
                    input,
                    Invariant::Logs,
                    Verdict::Unknown,
                    format!("could not read {service}'s logs: {error:#}"),
                    Vec::new(),
                );
            }
        }
    }

    let mut witnesses = Vec::new();
    let mut checked = 0;
    let mut untraced = 0;
    for (service, line) in &lines {
        let text = line.to_string();
        for (booking, trace) in &bookings {
            if !text.contains(booking) {
                continue;
            }
            checked += 1;
            let carried = line["trace_id"].as_str().unwrap_or_default();
            if carried != *trace {
                untraced += 1;
                witnesses.push(input.witness(
                    Some(booking),
                    Some(trace),
                    format!(
                        "{service} logged {:?} for the booking with trace_id {carried:?}",
                        message(line)
                    ),
                ));
            }
        }
    }
    let under = |trace: &str, needle: &str| {
        lines
            .iter()
            .any(|(_, l)| l["trace_id"].as_str() == Some(trace) && message(l).contains(needle))
    };
    // Compensation decisions, for every booking that was compensated.
    let mut decisions = 0;
    for op in input
        .ops
        .iter()
        .filter(|o| o.status.as_deref() == Some("CANCELLED"))
    {
        decisions += 1;
        if !under(&op.trace_id, "compensat") && !under(&op.trace_id, "releasing the seat") {
            witnesses.push(input.witness(
                op.booking_id.as_deref(),
                Some(&op.trace_id),
                "a cancelled booking with no compensation decision in the logs under its trace id"
                    .into(),
            ));
        }
    }
    // Dedupe decisions, for every message a consumer received more than once.
    if let Ok(reports) = exactly_once::inboxes(input).await {
        for (service, report) in reports {
            for consumer in report.consumers {
                for entry in consumer.repeated.iter().filter(|e| e.deliveries > 1) {
                    let Some(trace) = entry.trace_id.as_deref() else {
                        continue;
                    };
                    decisions += 1;
                    if !under(trace, "duplicate message skipped")
                        && !skipped_before(input, &service, trace).await
                    {
                        witnesses.push(input.witness(
                            entry.booking_id.as_deref(),
                            Some(trace),
                            format!(
                                "{service}: message {} was delivered {} times but no duplicate skip is logged under its trace id",
                                entry.message_id, entry.deliveries
                            ),
                        ));
                    }
                }
            }
        }
    }
    let (verdict, summary) = if checked == 0 {
        (
            Verdict::Unknown,
            format!(
                "{} log lines read, none names a booking of this run",
                lines.len()
            ),
        )
    } else if witnesses.is_empty() {
        (
            Verdict::Pass,
            format!(
                "{checked} lines name a booking, each with its trace id; {decisions} compensation/dedupe decisions found under their traces"
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "{untraced} of {checked} lines lack their booking's trace id; {} decisions missing",
                witnesses.len() - untraced
            ),
        )
    };
    result(input, Invariant::Logs, verdict, summary, witnesses)
}

/// Whether `service` logged a duplicate skip under `trace` in the hour before this run's window.
/// On a stack shared by several runs (the demo's tour), a message of an earlier run's booking
/// can have been delivered twice and skipped then: its inbox row still counts both deliveries,
/// and its skip is in the logs, only earlier than this run.
async fn skipped_before(input: &Input<'_>, service: &str, trace: &str) -> bool {
    let query = format!("{{service=\"{service}\"}} |= \"{trace}\"");
    let from = input.to_ms.saturating_sub(3_600_000);
    match input.evidence.logs(&query, from, input.to_ms + 1_000).await {
        Ok(lines) => lines.iter().any(|l| {
            l["trace_id"].as_str() == Some(trace)
                && message(l).contains("duplicate message skipped")
        }),
        Err(_) => false,
    }
}
