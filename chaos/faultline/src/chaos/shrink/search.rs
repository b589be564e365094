//! The search of `replay --shrink`, with no I/O: which smaller plan to try next, given which
//! earlier ones still failed (the strategy is described in [`super`]). Tested here against
//! made-up failure conditions instead of a stack.

use std::{fmt, ops::Range};

use crate::chaos::generator::Plan;

/// Durations are halved down to this, no further: a shorter fault hardly meets any traffic.
pub const MIN_FAULT_MS: u64 = 250;

/// How big a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub bookings: usize,
    pub faults: usize,
    /// The faults' durations, summed.
    pub fault_ms: u64,
}

impl Size {
    pub fn of(plan: &Plan) -> Self {
        Self {
            bookings: plan.ops.len(),
            faults: plan.faults.len(),
            fault_ms: plan.faults.iter().map(|f| f.for_ms).sum(),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, one: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {one}s")
            }
        };
        write!(
            f,
            "{} and {}",
            plural(self.bookings, "booking"),
            plural(self.faults, "fault")
        )?;
        if self.fault_ms > 0 {
            write!(f, " ({:.1} s of faults)", self.fault_ms as f64 / 1000.0)?;
        }
        Ok(())
    }
}

/// `len` items in `n` contiguous chunks of nearly equal size (`1 ≤ n ≤ len`).
pub fn chunks(len: usize, n: usize) -> Vec<Range<usize>> {
    (0..n).map(|i| i * len / n..(i + 1) * len / n).collect()
}

/// The plan with only the bookings whose index (in time order) `keep` accepts.
pub fn with_bookings(plan: &Plan, keep: impl Fn(usize) -> bool) -> Plan {
    Plan {
        ops: plan
            .ops
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, op)| op.clone())
            .collect(),
        ..plan.clone()
    }
}

/// The plan without fault `index`: the bookings sent to meet it become ordinary ones, and the
/// later faults' numbers move down one.
pub fn without_fault(plan: &Plan, index: usize) -> Plan {
    let mut plan = plan.clone();
    plan.faults.remove(index);
    for op in &mut plan.ops {
        op.meets_fault = match op.meets_fault {
            Some(f) if f == index => None,
            Some(f) if f > index => Some(f - 1),
            other => other,
        };
    }
    plan
}

/// The plan with fault `index` lasting half as long, or `None` for an instant fault or one that
/// would drop below [`MIN_FAULT_MS`].
pub fn shortened(plan: &Plan, index: usize) -> Option<Plan> {
    let fault = plan.faults.get(index)?;
    let half = fault.for_ms / 2;
    if fault.kind.instant() || half < MIN_FAULT_MS {
        return None;
    }
    let mut plan = plan.clone();
    plan.faults[index].for_ms = half;
    Some(plan)
}

/// What a candidate tries, relative to the best plan so far (bookings and faults numbered from 1).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    KeepBookings {
        from: usize,
        to: usize,
        of: usize,
    },
    DropBookings {
        from: usize,
        to: usize,
        of: usize,
    },
    DropFault {
        index: usize,
        what: String,
    },
    Shorten {
        index: usize,
        what: String,
        from_ms: u64,
        to_ms: u64,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = |from: usize, to: usize| {
            if to == from + 1 {
                format!("booking {to}")
            } else {
                format!("bookings {}–{to}", from + 1)
            }
        };
        match self {
            Step::KeepBookings { from, to, of } => write!(f, "keep {} of {of}", range(*from, *to)),
            Step::DropBookings { from, to, of } => write!(f, "drop {} of {of}", range(*from, *to)),
            Step::DropFault { index, what } => write!(f, "drop fault {} ({what})", index + 1),
            Step::Shorten {
                index,
                what,
                from_ms,
                to_ms,
            } => write!(
                f,
                "fault {} ({what}) for {to_ms} ms, not {from_ms}",
                index + 1
            ),
        }
    }
}

/// A plan to run, and how it came about.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub plan: Plan,
    pub step: Step,
}

/// Where the search is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// ddmin over the bookings: `granularity` chunks; candidate `next` of this level (the first
    /// `granularity` keep one chunk, the rest drop one); `spent` attempts so far in this pass.
    Bookings {
        granularity: usize,
        next: usize,
        spent: u32,
    },
    DropFaults {
        next: usize,
    },
    Shorten {
        next: usize,
    },
    Done,
}

/// The search, as a state machine with no I/O: [`Shrinker::next_candidate`] hands out a
/// candidate, [`Shrinker::record`] says whether it still failed; [`Shrinker::best`] is the
/// smallest plan seen failing.
#[derive(Debug)]
pub struct Shrinker {
    best: Plan,
    stage: Stage,
    max_attempts: u32,
    attempts: u32,
    /// Attempts this round's bookings pass may spend.
    bookings_budget: u32,
    /// Whether dropping or shortening faults got anywhere since the bookings pass last ran.
    faults_progress: bool,
    tried: Vec<Plan>,
    pending: Option<(Step, Plan)>,
}

impl Shrinker {
    /// A search from `plan` (which failed) that runs at most `max_attempts` candidates.
    pub fn new(plan: Plan, max_attempts: u32) -> Self {
        let mut shrinker = Self {
            best: plan,
            stage: Stage::Done,
            max_attempts,
            attempts: 0,
            bookings_budget: 0,
            faults_progress: false,
            tried: Vec::new(),
            pending: None,
        };
        shrinker.start_round();
        shrinker
    }

    /// The smallest plan seen failing (the original until a candidate fails).
    pub fn best(&self) -> &Plan {
        &self.best
    }

    /// Candidates handed out so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts the passes again from the bookings, with a budget that leaves one attempt per
    /// fault to each of the later passes (but takes at least half of what is left).
    fn start_round(&mut self) {
        let remaining = self.max_attempts.saturating_sub(self.attempts);
        let lasting = self
            .best
            .faults
            .iter()
            .filter(|f| !f.kind.instant())
            .count();
        let reserve = (self.best.faults.len() + lasting) as u32;
        self.bookings_budget = (remaining / 2).max(remaining.saturating_sub(reserve));
        self.faults_progress = false;
        self.stage = Stage::Bookings {
            granularity: 2,
            next: 0,
            spent: 0,
        };
    }

    /// The next candidate to run, or `None` when the search is over: nothing smaller left to
    /// try, or the attempts spent.
    pub fn next_candidate(&mut self) -> Option<Candidate> {
        loop {
            if self.attempts >= self.max_attempts {
                return None;
            }
            let (plan, step) = match self.stage {
                Stage::Done => return None,
                Stage::Bookings {
                    granularity,
                    next,
                    spent,
                } => {
                    let len = self.best.ops.len();
                    if len <= 1 || spent >= self.bookings_budget {
                        self.stage = Stage::DropFaults { next: 0 };
                        continue;
                    }
                    // With two chunks, dropping one is keeping the other: halves only.
                    let level = if granularity == 2 { 2 } else { 2 * granularity };
                    if next >= level {
                        self.stage = if granularity < len {
                            Stage::Bookings {
                                granularity: (2 * granularity).min(len),
                                next: 0,
                                spent,
                            }
                        } else {
                            Stage::DropFaults { next: 0 }
                        };
                        continue;
                    }
                    self.stage = Stage::Bookings {
                        granularity,
                        next: next + 1,
                        spent,
                    };
                    let ranges = chunks(len, granularity);
                    if next < granularity {
                        let range = ranges[next].clone();
                        let step = Step::KeepBookings {
                            from: range.start,
                            to: range.end,
                            of: len,
                        };
                        (with_bookings(&self.best, |i| range.contains(&i)), step)
                    } else {
                        let range = ranges[next - granularity].clone();
                        let step = Step::DropBookings {
                            from: range.start,
                            to: range.end,
                            of: len,
                        };
                        (with_bookings(&self.best, |i| !range.contains(&i)), step)
                    }
                }
                Stage::DropFaults { next } => {
                    let Some(fault) = self.best.faults.get(next) else {
                        self.stage = Stage::Shorten { next: 0 };
                        continue;
                    };
                    let what = format!("{} {}", fault.kind.name(), fault.kind.target());
                    self.stage = Stage::DropFaults { next: next + 1 };
                    let step = Step::DropFault { index: next, what };
                    (without_fault(&self.best, next), step)
                }
                Stage::Shorten { next } => {
                    let Some(fault) = self.best.faults.get(next) else {
                        if self.faults_progress && self.best.ops.len() > 1 {
                            self.start_round();
                        } else {
                            self.stage = Stage::Done;
                        }
                        continue;
                    };
                    self.stage = Stage::Shorten { next: next + 1 };
                    let Some(plan) = shortened(&self.best, next) else {
                        continue;
                    };
                    let step = Step::Shorten {
                        index: next,
                        what: format!("{} {}", fault.kind.name(), fault.kind.target()),
                        from_ms: fault.for_ms,
                        to_ms: plan.faults[next].for_ms,
                    };
                    (plan, step)
                }
            };
            if self.tried.contains(&plan) {
                continue;
            }
            self.tried.push(plan.clone());
            if let Stage::Bookings { spent, .. } = &mut self.stage {
                *spent += 1;
            }
            self.attempts += 1;
            self.pending = Some((step.clone(), plan.clone()));
            return Some(Candidate { plan, step });
        }
    }

    /// Whether the candidate last handed out still failed; if so it becomes the best plan and
    /// the pass goes on from it.
    pub fn record(&mut self, still_fails: bool) {
        let Some((step, plan)) = self.pending.take() else {
            return;
        };
        if !still_fails {
            return;
        }
        self.best = plan;
        let spent = match self.stage {
            Stage::Bookings { spent, .. } => spent,
            _ => 0,
        };
        self.stage = match step {
            Step::KeepBookings { .. } => Stage::Bookings {
                granularity: 2,
                next: 0,
                spent,
            },
            Step::DropBookings { .. } => {
                let granularity = match self.stage {
                    Stage::Bookings { granularity, .. } => granularity,
                    _ => 3,
                };
                Stage::Bookings {
                    granularity: (granularity - 1).max(2),
                    next: 0,
                    spent,
                }
            }
            // The same index now names the next fault, or the same one again, shorter.
            Step::DropFault { index, .. } => {
                self.faults_progress = true;
                Stage::DropFaults { next: index }
            }
            Step::Shorten { index, .. } => {
                self.faults_progress = true;
                Stage::Shorten { next: index }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{
        generator::PlannedOp,
        scenario::{Fault, FaultKind},
    };

    fn plan(bookings: u32, faults: &[u64]) -> Plan {
        Plan {
            seed: 1,
            ops: (0..bookings)
                .map(|op| PlannedOp {
                    op,
                    at_ms: u64::from(op) * 100,
                    user: "user-1".into(),
                    seat: format!("seat-{op}"),
                    intent: "fresh".into(),
                    meets_fault: (op == 0 && !faults.is_empty()).then_some(0),
                })
                .collect(),
            faults: faults
                .iter()
                .enumerate()
                .map(|(i, for_ms)| Fault {
                    at_ms: 1000 * i as u64,
                    for_ms: *for_ms,
                    kind: FaultKind::LostAcks {
                        link: "kafka".into(),
                    },
                })
                .collect(),
        }
    }

    fn ops(plan: &Plan) -> Vec<u32> {
        plan.ops.iter().map(|o| o.op).collect()
    }

    /// Runs the search against `fails` instead of a stack.
    fn search(start: Plan, max: u32, fails: impl Fn(&Plan) -> bool) -> (Plan, u32, Vec<Plan>) {
        let mut shrinker = Shrinker::new(start, max);
        let mut seen = Vec::new();
        while let Some(candidate) = shrinker.next_candidate() {
            seen.push(candidate.plan.clone());
            shrinker.record(fails(&candidate.plan));
        }
        (shrinker.best().clone(), shrinker.attempts(), seen)
    }

    #[test]
    fn chunks_cover_everything_in_order_with_nearly_equal_sizes() {
        assert_eq!(chunks(24, 2), [0..12, 12..24]);
        assert_eq!(chunks(7, 3), [0..2, 2..4, 4..7]);
        assert_eq!(chunks(3, 3), [0..1, 1..2, 2..3]);
    }

    #[test]
    fn dropping_a_fault_frees_its_bookings_and_renumbers_the_later_faults() {
        let mut start = plan(4, &[2000, 2000, 2000]);
        start.ops[1].meets_fault = Some(1);
        start.ops[2].meets_fault = Some(2);
        let dropped = without_fault(&start, 1);
        assert_eq!(dropped.faults.len(), 2);
        let meets: Vec<Option<usize>> = dropped.ops.iter().map(|o| o.meets_fault).collect();
        assert_eq!(meets, [Some(0), None, Some(1), None]);
    }

    #[test]
    fn a_fault_is_halved_down_to_the_minimum_and_an_instant_one_not_at_all() {
        let start = plan(1, &[2000]);
        let once = shortened(&start, 0).expect("halved");
        assert_eq!(once.faults[0].for_ms, 1000);
        assert!(shortened(&plan(1, &[400]), 0).is_none(), "200 ms < minimum");
        let mut instant = plan(1, &[0]);
        instant.faults[0].kind = FaultKind::Republish {
            topic: "inventory.commands".into(),
            count: 2,
        };
        assert!(shortened(&instant, 0).is_none());
    }

    #[test]
    fn halving_finds_the_one_booking_that_matters_in_a_few_attempts() {
        let (best, attempts, _) = search(plan(24, &[]), 20, |p| ops(p).contains(&17));
        assert_eq!(ops(&best), [17]);
        // At most two halves per halving: 24 → 12 → 6 → 3 → 2 → 1.
        assert!(attempts <= 10, "{attempts} attempts");
    }

    #[test]
    fn two_distant_bookings_that_fail_only_together_are_both_kept() {
        let (best, _, _) = search(plan(24, &[]), 40, |p| {
            ops(p).contains(&3) && ops(p).contains(&20)
        });
        assert_eq!(ops(&best), [3, 20]);
    }

    #[test]
    fn then_faults_are_dropped_and_the_rest_shortened_to_what_still_fails() {
        // Fails with booking 5 under a lost-acks fault of at least 600 ms.
        let (best, attempts, _) = search(plan(12, &[2500, 2500]), 30, |p| {
            ops(p).contains(&5) && p.faults.iter().any(|f| f.for_ms >= 600)
        });
        assert_eq!(ops(&best), [5]);
        assert_eq!(best.faults.len(), 1);
        assert_eq!(best.faults[0].for_ms, 625, "2500 → 1250 → 625; 312 passes");
        assert!(attempts <= 30);
    }

    #[test]
    fn the_budget_bounds_the_attempts_and_leaves_some_for_the_faults() {
        let (best, attempts, seen) = search(plan(60, &[2500, 2500, 2500]), 9, |p| {
            ops(p).contains(&41) && !p.faults.is_empty()
        });
        assert_eq!(attempts, 9);
        assert_eq!(seen.len(), 9);
        assert!(best.ops.len() < 60);
        assert!(
            seen.iter()
                .any(|p| p.ops.len() == best.ops.len() && p.faults.len() < 3),
            "the faults pass got attempts too"
        );
    }

    #[test]
    fn no_candidate_runs_twice_and_without_a_failure_the_original_stays() {
        let start = plan(6, &[2000]);
        let (best, _, seen) = search(start.clone(), 100, |_| false);
        assert_eq!(best, start);
        for (i, a) in seen.iter().enumerate() {
            assert!(!seen[..i].contains(a), "candidate {i} ran twice");
        }
        // Every candidate is smaller than the original in some way.
        for candidate in &seen {
            let (a, b) = (Size::of(candidate), Size::of(&start));
            assert!(
                a.bookings < b.bookings || a.faults < b.faults || a.fault_ms < b.fault_ms,
                "{a} is no smaller than {b}"
            );
        }
    }
}
