//! Invariant 4: a message delivered N times has one effect per consumer — and duplicates really
//! happened, else the verdict is unknown.
//!
//! Two independent readings: each consumer's inbox (deliveries and committed effects per message,
//! `GET /admin/inbox`), and the analytics read model, whose counts must equal reservation's
//! (a duplicated booking event applied twice shows up there even if an inbox lied).

use faultline_contracts::http::{AnalyticsSummary, InboxReport, ReservationSummary};

use super::{CheckResult, Input, Verdict, result};
use crate::chaos::scenario::Invariant;

/// Services whose consumers are checked.
pub const CONSUMERS: [&str; 3] = ["inventory", "reservation", "analytics"];

async fn get<T: serde::de::DeserializeOwned>(input: &Input<'_>, url: String) -> anyhow::Result<T> {
    faultline_harness::invariants::get(&input.http, url).await
}

/// Every consumer's inbox report.
pub async fn inboxes(input: &Input<'_>) -> anyhow::Result<Vec<(String, InboxReport)>> {
    let mut reports = Vec::new();
    for service in CONSUMERS {
        let report: InboxReport = get(
            input,
            format!("{}/admin/inbox", input.target.service(service)),
        )
        .await?;
        reports.push((service.to_owned(), report));
    }
    Ok(reports)
}

pub async fn check(input: &Input<'_>) -> CheckResult {
    let unknown = |why: String| {
        result(
            input,
            Invariant::ExactlyOnce,
            Verdict::Unknown,
            why,
            Vec::new(),
        )
    };
    let reports = match inboxes(input).await {
        Ok(reports) => reports,
        Err(error) => return unknown(format!("could not read the inboxes: {error:#}")),
    };
    let mut witnesses = Vec::new();
    let mut duplicates = 0;
    let mut repeated_effects = 0;
    let mut per_consumer = Vec::new();
    for (service, report) in &reports {
        for consumer in &report.consumers {
            let extra = consumer.deliveries - consumer.messages;
            duplicates += extra;
            if extra > 0 {
                per_consumer.push(format!("{}: {extra}", consumer.consumer));
            }
            for entry in &consumer.repeated {
                if entry.applied != 1 {
                    repeated_effects += 1;
                    witnesses.push(input.witness(
                        entry.booking_id.as_deref(),
                        entry.trace_id.as_deref(),
                        format!(
                            "{service}/{}: message {} on {} delivered {} times, applied {} times",
                            consumer.consumer,
                            entry.message_id,
                            entry.topic,
                            entry.deliveries,
                            entry.applied
                        ),
                    ));
                }
            }
        }
    }

    // The read model against the source of truth.
    let mut model_problems = Vec::new();
    let truth: anyhow::Result<ReservationSummary> = get(
        input,
        format!("{}/admin/summary", input.target.service("reservation")),
    )
    .await;
    let model: anyhow::Result<AnalyticsSummary> = get(
        input,
        format!("{}/stats/summary", input.target.service("analytics")),
    )
    .await;
    match (truth, model) {
        (Ok(truth), Ok(model)) => {
            for (what, expected, actual) in [
                ("confirmed", truth.confirmed, model.confirmed),
                ("cancelled", truth.cancelled, model.cancelled),
                ("rejected", truth.rejected, model.rejected),
            ] {
                if expected != actual {
                    model_problems.push(format!(
                        "analytics counts {actual} {what} bookings, reservation {expected}"
                    ));
                }
            }
        }
        (truth, model) => {
            let error = truth.err().or(model.err()).map(|e| format!("{e:#}"));
            return unknown(format!(
                "could not compare analytics with reservation: {}",
                error.unwrap_or_default()
            ));
        }
    }
    for problem in &model_problems {
        witnesses.push(input.witness(None, None, problem.clone()));
    }

    let (verdict, summary) = if repeated_effects > 0 || !model_problems.is_empty() {
        let mut parts = Vec::new();
        if repeated_effects > 0 {
            parts.push(format!(
                "{repeated_effects} duplicated message(s) had more than one effect"
            ));
        }
        parts.extend(model_problems);
        (Verdict::Fail, parts.join("; "))
    } else if duplicates == 0 {
        (
            Verdict::Unknown,
            "no message was delivered twice to any consumer: nothing was proven".to_owned(),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "{duplicates} duplicate deliveries ({}), each skipped: one effect per message; \
                 analytics agrees with reservation",
                per_consumer.join(", ")
            ),
        )
    };
    result(input, Invariant::ExactlyOnce, verdict, summary, witnesses)
}
