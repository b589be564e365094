//! Checkers: one per invariant of the product contract, each judging the run from the
//! services' own reports (admin endpoints, never a join across databases) and from the traces
//! and logs (Tempo and Loki, or the capture). Verdicts are pass / fail / unknown and merge as
//! fail > unknown > pass.
//!
//! - [`business`]: 1 seats, 2 points, 3 terminal (the judge shared with the tests,
//!   `faultline_harness::invariants`, plus witnesses);
//! - [`exactly_once`]: 4, from each consumer's inbox counts and the analytics read model;
//! - [`traces`]: 5, one connected trace per booking, compensation in reverse order;
//! - [`logs`]: 6, trace ids on every line of a booking, decisions in the logs;
//! - [`recovery`]: 7, throughput back after an overload phase (open-loop workloads).
//!
//! A fault that never fired makes every expected verdict at best unknown: a pass under a fault
//! that was not there proves nothing.

pub mod business;
pub mod exactly_once;
pub mod logs;
pub mod recovery;
pub mod traces;

use serde::{Deserialize, Serialize};

use super::{
    evidence::Evidence,
    history::{Event, Operation, Phase},
    scenario::{Invariant, Scenario},
    target::Target,
};

/// A checker's judgement.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Unknown,
    Fail,
}

impl Verdict {
    /// Jepsen's merge: false > unknown > true.
    pub fn merge(self, other: Verdict) -> Verdict {
        self.max(other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Unknown => "unknown",
            Verdict::Fail => "FAIL",
        }
    }
}

/// Something that shows a verdict: a booking and its trace, with links to look at it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Witness {
    pub booking_id: Option<String>,
    pub trace_id: Option<String>,
    pub detail: String,
    pub trace_link: Option<String>,
    pub logs_link: Option<String>,
}

/// One checker's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub invariant: Invariant,
    pub number: u8,
    pub title: &'static str,
    /// Whether the scenario names this invariant in `expect`.
    pub expected: bool,
    pub verdict: Verdict,
    pub summary: String,
    /// At most [`MAX_WITNESSES`] of them.
    pub witnesses: Vec<Witness>,
}

/// Enough witnesses to look at; the summary gives the count.
pub const MAX_WITNESSES: usize = 20;

/// What the checkers read.
pub struct Input<'a> {
    pub scenario: &'a Scenario,
    pub ops: &'a [Operation],
    pub events: &'a [Event],
    pub target: &'a Target,
    pub evidence: &'a Evidence,
    pub http: reqwest::Client,
    pub initial_points: i64,
    /// The run's window, Unix ms (for log queries).
    pub from_ms: u64,
    pub to_ms: u64,
}

impl Input<'_> {
    /// The trace id the client gave the booking.
    pub fn trace_of(&self, booking_id: &str) -> Option<&str> {
        self.ops
            .iter()
            .find(|o| o.booking_id.as_deref() == Some(booking_id))
            .map(|o| o.trace_id.as_str())
    }

    pub fn witness(
        &self,
        booking_id: Option<&str>,
        trace_id: Option<&str>,
        detail: String,
    ) -> Witness {
        let trace_id = trace_id
            .map(str::to_owned)
            .or_else(|| booking_id.and_then(|b| self.trace_of(b)).map(str::to_owned));
        Witness {
            booking_id: booking_id.map(str::to_owned),
            trace_link: trace_id.as_deref().map(|t| self.evidence.trace_link(t)),
            logs_link: trace_id.as_deref().map(|t| self.evidence.logs_link(t)),
            trace_id,
            detail,
        }
    }
}

/// A result before the runner's fault rule is applied.
pub fn result(
    input: &Input<'_>,
    invariant: Invariant,
    verdict: Verdict,
    summary: String,
    mut witnesses: Vec<Witness>,
) -> CheckResult {
    witnesses.truncate(MAX_WITNESSES);
    CheckResult {
        invariant,
        number: invariant.number(),
        title: invariant.title(),
        expected: input.scenario.expect.contains(&invariant),
        verdict,
        summary,
        witnesses,
    }
}

/// Faults that did not take effect or that no traffic met, described.
pub fn faults_not_fired(events: &[Event]) -> Vec<String> {
    let mut problems = Vec::new();
    for event in events {
        if let Event::Fault {
            fault,
            phase,
            kind,
            verified,
            fired,
            detail,
            ..
        } = event
        {
            match phase {
                Phase::Start if !verified => problems.push(format!(
                    "fault {fault} ({}) was not applied: {detail}",
                    kind.name()
                )),
                Phase::Stop if *fired == Some(false) => problems.push(format!(
                    "fault {fault} ({} on {}) never met any traffic",
                    kind.name(),
                    kind.target()
                )),
                _ => {}
            }
        }
    }
    problems
}

/// What the checkers found: the verdicts, and which replica handled which booking.
#[derive(Debug)]
pub struct Checked {
    pub invariants: Vec<CheckResult>,
    /// `None` when every service ran as one instance.
    pub handling: Option<crate::chaos::handling::Handling>,
}

/// Runs every checker, then caps expected verdicts at unknown when a fault never fired.
pub async fn check_all(input: &Input<'_>) -> Checked {
    let mut results = business::check(input).await;
    results.push(exactly_once::check(input).await);
    let (traces, handling) = traces::check(input).await;
    results.push(traces);
    results.push(logs::check(input).await);
    results.push(recovery::check(input));
    let problems = faults_not_fired(input.events);
    if !problems.is_empty() {
        for result in &mut results {
            if result.expected && result.verdict == Verdict::Pass {
                result.verdict = Verdict::Unknown;
                result.summary = format!(
                    "{} — but not proven under the scenario's faults: {}",
                    result.summary,
                    problems.join("; ")
                );
            }
        }
    }
    Checked {
        invariants: results,
        handling,
    }
}

/// The run's verdict: every failure counts; unknowns count where the scenario expects a proof.
pub fn overall(results: &[CheckResult]) -> Verdict {
    results
        .iter()
        .fold(Verdict::Pass, |acc, r| match r.verdict {
            Verdict::Fail => Verdict::Fail,
            Verdict::Unknown if r.expected => acc.merge(Verdict::Unknown),
            _ => acc,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_merge_fail_over_unknown_over_pass() {
        assert_eq!(Verdict::Pass.merge(Verdict::Unknown), Verdict::Unknown);
        assert_eq!(Verdict::Unknown.merge(Verdict::Fail), Verdict::Fail);
        assert_eq!(Verdict::Fail.merge(Verdict::Pass), Verdict::Fail);
        assert_eq!(Verdict::Pass.merge(Verdict::Pass), Verdict::Pass);
    }
}
