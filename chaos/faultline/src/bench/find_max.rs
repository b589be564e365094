//! `--find-max`: the highest booking rate the stack sustains. The rate climbs a ladder (each
//! rung `factor` times the last, rounded), each rung a full load phase on fresh seats followed by
//! a drain and a short pause; the climb stops at the first rung that is not sustained, or at the
//! top of the ladder.
//!
//! Sustained means all of: terminal sagas per second ≥ 98 % of the offered rate (refusals and
//! sagas that do not finish both pull it down), p99 saga latency within the saga deadline, and
//! nothing left PENDING after the drain.

use std::time::Duration;

use serde::Serialize;

use super::{
    step::{self, Context, Phase, StepFigures},
    workload::Booking,
};

/// The share of the offered rate that must complete.
const COMPLETED_SHARE: f64 = 0.98;
/// Between rungs, after the drain: lets consumer lag and the relays settle, so a rung does not
/// start on the previous one's leftovers.
const PAUSE: Duration = Duration::from_secs(2);

/// The rates to try and how long each lasts.
#[derive(Debug, Clone, Copy)]
pub struct Ladder {
    pub start: f64,
    pub factor: f64,
    pub max: f64,
    pub step_s: f64,
}

impl Ladder {
    /// Every rung's rate, from `start` up to at most `max`; each at least 1/s above the last so
    /// a factor close to 1 still climbs.
    pub fn rates(&self) -> Vec<f64> {
        let mut rates = Vec::new();
        let mut rate = self.start.round().max(1.0);
        while rate <= self.max {
            rates.push(rate);
            rate = (rate * self.factor).round().max(rate + 1.0);
        }
        rates
    }

    /// How many bookings rung `rate` sends.
    pub fn bookings_at(&self, rate: f64) -> u64 {
        bookings_for(rate, self.step_s)
    }

    /// Bookings needed if every rung is climbed: the catalogue must hold this many.
    pub fn total_bookings(&self) -> u64 {
        self.rates().iter().map(|r| self.bookings_at(*r)).sum()
    }
}

/// Bookings a phase of `rate` per second for `duration_s` sends (at least one).
pub fn bookings_for(rate: f64, duration_s: f64) -> u64 {
    ((rate * duration_s).ceil() as u64).max(1)
}

/// One rung as reported.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub rate: f64,
    pub duration_s: f64,
    pub sustained: bool,
    /// Why not, when not sustained.
    pub why_not: Option<String>,
    #[serde(flatten)]
    pub figures: StepFigures,
}

/// Whether a phase at `rate` was sustained; the reasons it was not, otherwise.
pub fn judge(figures: &StepFigures, deadline_ms: u64) -> Result<(), String> {
    let outcome = &figures.outcome;
    let mut why = Vec::new();
    if outcome.completed_per_s < COMPLETED_SHARE * outcome.offered_per_s {
        why.push(format!(
            "completed {:.1}/s < {:.0} % of offered {:.1}/s",
            outcome.completed_per_s,
            COMPLETED_SHARE * 100.0,
            outcome.offered_per_s
        ));
    }
    match outcome.saga_latency_ms {
        Some(latency) if latency.p99 > deadline_ms => why.push(format!(
            "p99 saga latency {} ms > deadline {deadline_ms} ms",
            latency.p99
        )),
        Some(_) => {}
        None => why.push("no saga completed".into()),
    }
    let pending = outcome.outcomes.get("PENDING").copied().unwrap_or_default();
    if pending > 0 || !figures.drained {
        why.push(format!("{pending} bookings still PENDING after the drain"));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

/// Climbs `ladder` with `bookings` (enough for every rung, see [`Ladder::total_bookings`]).
/// Returns every rung's report and the highest sustained rate.
pub async fn run(
    context: &Context,
    ladder: Ladder,
    bookings: &[Booking],
    deadline_ms: u64,
) -> anyhow::Result<(Vec<StepReport>, Option<f64>)> {
    let rates = ladder.rates();
    let mut steps = Vec::new();
    let mut best = None;
    let mut used = 0;
    for (n, rate) in rates.iter().enumerate() {
        let count = usize::try_from(ladder.bookings_at(*rate))?;
        let slice = bookings.get(used..used + count).ok_or_else(|| {
            anyhow::anyhow!(
                "the catalogue ran out of bookings at {rate}/s (a bug: it was sized for the ladder)"
            )
        })?;
        let label = format!("step {}/{} at {rate}/s", n + 1, rates.len());
        let figures = step::run(
            context,
            Phase {
                label: &label,
                rate: *rate,
                duration_s: ladder.step_s,
                bookings: slice,
                first_index: used,
            },
        )
        .await?;
        used += count;
        let verdict = judge(&figures, deadline_ms);
        if verdict.is_ok() {
            best = Some(*rate);
        }
        let sustained = verdict.is_ok();
        steps.push(StepReport {
            rate: *rate,
            duration_s: ladder.step_s,
            sustained,
            why_not: verdict.err(),
            figures,
        });
        if !sustained {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok((steps, best))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bench::{figures::Latency, figures::Outcome, lag::Backlogs, procs::Window};

    fn figures(offered: f64, completed: f64, p99: u64, pending: u64) -> StepFigures {
        StepFigures {
            outcome: Outcome {
                requests: 0,
                accepted: 0,
                offered_per_s: offered,
                accepted_per_s: offered,
                completed_per_s: completed,
                refused: BTreeMap::new(),
                saga_latency_ms: Some(Latency {
                    count: 1,
                    p50: p99 / 2,
                    p90: p99,
                    p99,
                    max: p99,
                }),
                accept_latency_ms: None,
                outcomes: BTreeMap::from([("PENDING".to_owned(), pending)]),
                max_send_delay_ms: 0,
                load_s: 1.0,
            },
            load_window: Window {
                window_s: 1.0,
                processes: BTreeMap::new(),
                stack_cpu_s: 0.0,
                stack_cpu_pct_of_core: 0.0,
                stack_peak_rss_mib: 0.0,
            },
            drain_s: 0.0,
            drained: pending == 0,
            drain_stack_cpu_s: 0.0,
            backlogs: Backlogs::default(),
        }
    }

    #[test]
    fn the_ladder_climbs_by_the_factor_up_to_the_maximum() {
        let ladder = Ladder {
            start: 50.0,
            factor: 1.25,
            max: 200.0,
            step_s: 10.0,
        };
        assert_eq!(
            ladder.rates(),
            vec![50.0, 63.0, 79.0, 99.0, 124.0, 155.0, 194.0]
        );
        assert_eq!(ladder.total_bookings(), 7_640);
    }

    #[test]
    fn a_factor_of_one_still_climbs() {
        let ladder = Ladder {
            start: 1.0,
            factor: 1.0,
            max: 3.0,
            step_s: 1.0,
        };
        assert_eq!(ladder.rates(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn a_phase_that_keeps_up_is_sustained() {
        assert_eq!(judge(&figures(100.0, 99.0, 800, 0), 10_000), Ok(()));
    }

    #[test]
    fn too_few_completions_are_not_sustained() {
        let why = judge(&figures(100.0, 90.0, 800, 0), 10_000).expect_err("90 %");
        assert!(why.contains("completed"), "{why}");
    }

    #[test]
    fn a_p99_past_the_deadline_is_not_sustained() {
        let why = judge(&figures(100.0, 100.0, 12_000, 0), 10_000).expect_err("slow");
        assert!(why.contains("p99"), "{why}");
    }

    #[test]
    fn a_saga_left_pending_is_not_sustained() {
        let why = judge(&figures(100.0, 100.0, 800, 3), 10_000).expect_err("pending");
        assert!(why.contains("3 bookings still PENDING"), "{why}");
    }
}
