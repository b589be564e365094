//! Invariant 7, recovery after overload: once the overload phases end, the system carries the
//! offered rate again within `recover_within_ms`: every booking offered from then on is accepted
//! and reaches a terminal state within `booking_deadline_ms` of its submission.
//!
//! The overload itself must be proven: if nothing was refused while it lasted (no 503 or 429
//! with `Retry-After`), the system was never overloaded and the verdict is unknown. A scenario
//! without an overload phase has nothing to recover from: pass, and it says so.

use super::{CheckResult, Input, Verdict, Witness, result};
use crate::chaos::{
    history::{Operation, Outcome},
    run::PREFLIGHT_OP,
    scenario::Invariant,
};

/// Accepted, and terminal within the deadline of its submission (by reservation's record of
/// when it settled; when the watcher saw it otherwise).
fn carried(op: &Operation, deadline_ms: u64) -> bool {
    op.outcome == Some(Outcome::Ok)
        && op
            .settled_ms
            .or(op.completed_ms)
            .is_some_and(|done| done.saturating_sub(op.invoked_ms) <= deadline_ms)
}

fn refused(op: &Operation) -> bool {
    op.outcome == Some(Outcome::Fail) && op.status.as_deref() == Some("REFUSED")
}

pub fn check(input: &Input<'_>) -> CheckResult {
    let workload = &input.scenario.workload;
    let Some(overload_end) = workload.overload_end_ms() else {
        return result(
            input,
            Invariant::Recovery,
            Verdict::Pass,
            "no overload phase in this scenario: nothing to recover from".into(),
            Vec::new(),
        );
    };
    let ops: Vec<&Operation> = input.ops.iter().filter(|o| o.op < PREFLIGHT_OP).collect();
    let Some(start) = ops.iter().map(|o| o.invoked_ms).min() else {
        return result(
            input,
            Invariant::Recovery,
            Verdict::Unknown,
            "no booking was submitted".into(),
            Vec::new(),
        );
    };
    let end = start + overload_end;
    let deadline = workload.booking_deadline_ms;
    let during: Vec<&&Operation> = ops.iter().filter(|o| o.invoked_ms < end).collect();
    let refusals = during.iter().filter(|o| refused(o)).count();
    let accepted_during = during.iter().filter(|o| o.booking_id.is_some()).count();
    if refusals == 0 {
        return result(
            input,
            Invariant::Recovery,
            Verdict::Unknown,
            format!(
                "the overload never made the system refuse a booking ({accepted_during} of {} accepted): overload not proven",
                during.len()
            ),
            Vec::new(),
        );
    }
    let mut after: Vec<&&Operation> = ops.iter().filter(|o| o.invoked_ms >= end).collect();
    after.sort_by_key(|o| o.invoked_ms);
    let recovered_at = after
        .iter()
        .filter(|o| !carried(o, deadline))
        .map(|o| o.invoked_ms + 1)
        .max()
        .unwrap_or(end);
    let recovery_ms = recovered_at - end;
    let carried_after = after
        .iter()
        .filter(|o| o.invoked_ms >= recovered_at)
        .count();
    let last_rate = workload.phases.last().map_or(1.0, |p| p.rate_per_s);
    let needed = ((2.0 * last_rate).ceil() as usize).max(10);
    let overload = format!(
        "during the overload {refusals} booking(s) were refused at the door and {accepted_during} accepted"
    );
    if recovery_ms > workload.recover_within_ms {
        let witnesses: Vec<Witness> = after
            .iter()
            .filter(|o| o.invoked_ms >= end + workload.recover_within_ms && !carried(o, deadline))
            .map(|o| {
                input.witness(
                    o.booking_id.as_deref(),
                    Some(&o.trace_id),
                    format!(
                        "submitted {} ms after the overload ended: {}",
                        o.invoked_ms - end,
                        o.status.as_deref().unwrap_or(&o.detail)
                    ),
                )
            })
            .collect();
        return result(
            input,
            Invariant::Recovery,
            Verdict::Fail,
            format!(
                "{overload}; bookings were still refused or late {recovery_ms} ms after it ended (allowed {} ms; deadline {deadline} ms)",
                workload.recover_within_ms
            ),
            witnesses,
        );
    }
    if carried_after < needed {
        return result(
            input,
            Invariant::Recovery,
            Verdict::Unknown,
            format!(
                "{overload}; recovered {recovery_ms} ms after it ended, but only {carried_after} booking(s) followed (need {needed} to call the rate back)"
            ),
            Vec::new(),
        );
    }
    result(
        input,
        Invariant::Recovery,
        Verdict::Pass,
        format!(
            "{overload}; from {recovery_ms} ms after it ended, every one of {carried_after} bookings offered at {last_rate}/s was accepted and terminal within {deadline} ms"
        ),
        Vec::new(),
    )
}
