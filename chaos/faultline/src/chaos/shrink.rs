//! `faultline replay --shrink <run dir>`: from a failing run, search for a smaller plan that still
//! fails, Jepsen/proptest-style, and write it as a scenario file with an explicit `plan`.
//!
//! Why an explicit plan: the same seed with fewer bookings or faults draws a different plan (the
//! generator also spaces faults and moves bookings into their windows), so a shrunk plan can only
//! be kept as written — the scenario's `[plan]` section, which `run` and `replay` take as is.
//!
//! Every candidate is run for real (a fresh embedded stack, 10–30 s), so the search is a bounded
//! sequence of passes over the recorded `plan.json`, the ones that can remove most per attempt
//! first:
//!
//! - **Bookings**, by delta debugging (Zeller's ddmin) over the bookings in time order: keep one
//!   of n contiguous chunks (first half, second half, …), else drop one, else split finer. A
//!   failing candidate becomes the new best and the search starts again from halves; 24 bookings
//!   reach 3 in three attempts when the first half keeps failing. The pass may spend at most what
//!   the later passes do not need (one attempt per fault each), and never less than half of what
//!   is left.
//! - **Faults**, one at a time: drop it; bookings sent to meet it become ordinary bookings.
//! - **Durations**: halve each lasting fault while it still fails, down to [`MIN_FAULT_MS`].
//!
//! If dropping or shortening faults got anywhere, the passes run again while attempts remain.
//! The search stops at `--max-attempts` ([`DEFAULT_MAX_ATTEMPTS`]); a candidate never runs twice
//! during it. Then the smallest plan that failed runs once more, and is written only if it fails
//! again (faults such as lost acknowledgements depend on timing); if it does not, the next
//! smaller plan that failed is confirmed the same way, down to the recorded run's own plan.
//!
//! A candidate *still fails* when every invariant that failed in the recorded run fails again —
//! not on any failure, an unknown verdict or an abort. Chaos runs are not deterministic: a
//! candidate that passes by luck is only a missed reduction, never a wrong result, because the
//! plan written out is exactly one that was seen failing (the recorded run's own plan when no
//! candidate failed). The run's deliberately broken build (`--break-inbox-for-test`, recorded in
//! `run.json`) is kept for every attempt.
//!
//! Files: each candidate is `RUN_DIR/shrink/attempt-NN.toml`, its run goes to
//! `<runs>/<scenario>-shrunk/<timestamp>/`; the result is `RUN_DIR/shrunk.toml` (or `--out`), a
//! scenario with a comment on top saying where it came from and how to run it.
//!
//! Candidate generation ([`search`]: [`Shrinker`], [`chunks`], [`without_fault`],
//! [`shortened`]) is pure and tested without a stack; [`shrink`] (here) drives it against the
//! runner and writes the result.

pub mod search;

pub use search::{
    Candidate, MIN_FAULT_MS, Shrinker, Size, Step, chunks, shortened, with_bookings, without_fault,
};

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use serde::Deserialize;

use super::{
    checkers::Verdict,
    generator::Plan,
    report::Results,
    run::{self, RunOptions},
    scenario::{ExplicitPlan, FaultSpec, Invariant, Scenario},
};

/// Attempts when `--max-attempts` is not given: at 10–30 s each, under ten minutes.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;

/// The invariants a run failed.
pub fn failed(checks: impl IntoIterator<Item = (Invariant, Verdict)>) -> BTreeSet<Invariant> {
    checks
        .into_iter()
        .filter(|(_, verdict)| *verdict == Verdict::Fail)
        .map(|(invariant, _)| invariant)
        .collect()
}

/// Whether a candidate failed every invariant the recorded run failed.
pub fn still_fails(required: &BTreeSet<Invariant>, failed: &BTreeSet<Invariant>) -> bool {
    !required.is_empty() && required.is_subset(failed)
}

/// The scenario a shrunk run runs: the recorded one with `plan` as its explicit plan, renamed
/// `<name>-shrunk` so that its runs go to a directory of their own.
pub fn shrunk_scenario(original: &Scenario, plan: &Plan) -> Scenario {
    let base = original
        .name
        .strip_suffix("-shrunk")
        .unwrap_or(&original.name);
    let mut scenario = original.clone();
    scenario.name = format!("{base}-shrunk");
    if original.plan.is_none() {
        scenario.description = format!(
            "{} (Shrunk by `faultline replay --shrink`: an explicit plan that still fails.)",
            original.description
        );
    }
    scenario.workload.bookings = plan.ops.len() as u32;
    scenario.nemesis.clear();
    scenario.random_nemesis = None;
    scenario.plan = Some(ExplicitPlan {
        ops: plan.ops.clone(),
        faults: plan
            .faults
            .iter()
            .map(|fault| {
                // A plan is made from parsed specs and the generator's topology-typed choices.
                FaultSpec::from_fault(fault)
                    .expect("a plan's faults name the topology's links, services and topics")
            })
            .collect(),
    });
    scenario
}

/// A scenario file's text, with `comments` as `#` lines on top.
pub fn scenario_text(scenario: &Scenario, comments: &[String]) -> anyhow::Result<String> {
    let mut text = String::new();
    for line in comments {
        text.push_str(&format!("# {line}\n"));
    }
    text.push_str(&toml::to_string_pretty(scenario)?);
    Ok(text)
}

/// What `replay --shrink` needs.
#[derive(Debug, Clone)]
pub struct ShrinkOptions {
    /// The failing run (`runs/<scenario>/<timestamp>`).
    pub run_dir: PathBuf,
    /// Where the attempts' runs go (`<runs>/<scenario>-shrunk/<timestamp>/`).
    pub runs_dir: PathBuf,
    /// PostgreSQL for the embedded stack, as for `replay`.
    pub postgres: Option<String>,
    pub exe: PathBuf,
    /// Each attempt's progress bar.
    pub progress: bool,
    /// Run the broken build even if the recorded run did not say so.
    pub break_inbox_for_test: bool,
    pub max_attempts: u32,
    /// The scenario file to write (default `<run dir>/shrunk.toml`).
    pub out: Option<PathBuf>,
}

/// What the search reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// An attempt starts.
    Trying {
        number: u32,
        max: u32,
        step: &'a Step,
        size: Size,
    },
    /// It ended: `outcome` in words (`FAIL exactly-once`, `pass`, `aborted: …`).
    Tried {
        still_fails: bool,
        outcome: &'a str,
        run_dir: Option<&'a Path>,
    },
    /// A plan that failed once runs again before it is written: faults such as lost
    /// acknowledgements depend on timing, and a plan that failed by chance would not reproduce.
    Confirming { size: Size },
}

/// How the search ended.
#[derive(Debug)]
pub struct Shrunk {
    pub original: Size,
    pub shrunk: Size,
    pub attempts: u32,
    /// The scenario file written.
    pub file: PathBuf,
    /// The run that saw the written plan fail (the recorded run itself if no candidate failed).
    pub failing_run: PathBuf,
    /// The invariants every accepted candidate failed.
    pub invariants: BTreeSet<Invariant>,
    /// Whether the runs used the broken build (`faultline run` needs the flag too).
    pub broken_inbox: bool,
    /// Ctrl-C stopped the search early.
    pub interrupted: bool,
}

/// The run's verdict and checks, as `results.json` has them.
#[derive(Deserialize)]
struct RecordedResults {
    verdict: Verdict,
    invariants: Vec<RecordedCheck>,
}

#[derive(Deserialize)]
struct RecordedCheck {
    invariant: Invariant,
    verdict: Verdict,
}

/// Shrinks the failing run in `options.run_dir`; errors if it did not fail.
pub async fn shrink(
    options: &ShrinkOptions,
    mut report: impl FnMut(Progress<'_>),
) -> anyhow::Result<Shrunk> {
    let run_dir = &options.run_dir;
    let (scenario_file, recorded) = run::replay_source(run_dir)?;
    let results_file = run_dir.join("results.json");
    anyhow::ensure!(
        results_file.exists(),
        "nothing to shrink: the run in {} has no results.json (it was aborted)",
        run_dir.display()
    );
    let results: RecordedResults = serde_json::from_slice(&std::fs::read(&results_file)?)
        .with_context(|| format!("reading {}", results_file.display()))?;
    let required = failed(results.invariants.iter().map(|c| (c.invariant, c.verdict)));
    anyhow::ensure!(
        !required.is_empty(),
        "nothing to shrink: the run {}",
        match results.verdict {
            Verdict::Pass => "passed",
            _ => "failed no invariant (its verdict was unknown)",
        }
    );
    let scenario = Scenario::load(&scenario_file)?;
    anyhow::ensure!(
        scenario.workload.phases.is_empty(),
        "{} is an open-loop workload: its bookings are its rates, and shrinking them would change what it tests",
        scenario.name
    );
    let plan_file = run_dir.join("plan.json");
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(&plan_file).with_context(|| format!("reading {}", plan_file.display()))?,
    )
    .with_context(|| format!("reading {}", plan_file.display()))?;
    let broken_inbox = options.break_inbox_for_test || run::recorded_broken_inbox(&recorded);
    let target = run::recorded_target(&recorded, options.postgres.clone());
    let attempts_dir = run_dir.join("shrink");
    std::fs::create_dir_all(&attempts_dir)
        .with_context(|| format!("creating {}", attempts_dir.display()))?;

    // Ctrl-C ends the attempt under way (the runner heals and stops it) and then the search.
    let interrupted = Arc::new(AtomicBool::new(false));
    let listener = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
            }
        })
    };

    let mut shrinker = Shrinker::new(plan.clone(), options.max_attempts);
    // Every plan that failed, smallest last, with its run.
    let mut failed_plans: Vec<(Plan, PathBuf)> = Vec::new();
    let attempt = |number: String, plan: Plan| {
        let file = attempts_dir.join(format!("attempt-{number}.toml"));
        let scenario = &scenario;
        let target = target.clone();
        async move {
            std::fs::write(
                &file,
                scenario_text(&shrunk_scenario(scenario, &plan), &[])?,
            )
            .with_context(|| format!("writing {}", file.display()))?;
            let outcome = run::run(&RunOptions {
                scenario: file,
                runs_dir: options.runs_dir.clone(),
                target,
                exe: options.exe.clone(),
                progress: options.progress,
                break_inbox_for_test: broken_inbox,
                load_scale: 1.0,
                seed: None,
            })
            .await;
            Ok::<_, anyhow::Error>(outcome)
        }
    };
    while !interrupted.load(Ordering::SeqCst) {
        let Some(candidate) = shrinker.next_candidate() else {
            break;
        };
        let number = shrinker.attempts();
        report(Progress::Trying {
            number,
            max: options.max_attempts,
            step: &candidate.step,
            size: Size::of(&candidate.plan),
        });
        let outcome = attempt(format!("{number:02}"), candidate.plan.clone()).await?;
        let (fails, words) = judge(&required, outcome.results.as_ref(), outcome.error);
        shrinker.record(fails);
        if fails && let Some(dir) = &outcome.run_dir {
            failed_plans.push((candidate.plan.clone(), dir.clone()));
        }
        report(Progress::Tried {
            still_fails: fails,
            outcome: &words,
            run_dir: outcome.run_dir.as_deref(),
        });
    }
    // The smallest plan that fails again; the recorded run's own plan if none does.
    let mut best = plan.clone();
    let mut failing_run = run_dir.clone();
    while let Some((candidate, first_run)) = failed_plans.pop() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        report(Progress::Confirming {
            size: Size::of(&candidate),
        });
        let number = format!("confirm-{}", failed_plans.len() + 1);
        let outcome = attempt(number, candidate.clone()).await?;
        let (fails, words) = judge(&required, outcome.results.as_ref(), outcome.error);
        report(Progress::Tried {
            still_fails: fails,
            outcome: &words,
            run_dir: outcome.run_dir.as_deref(),
        });
        if fails {
            best = candidate;
            failing_run = outcome.run_dir.unwrap_or(first_run);
            break;
        }
    }
    listener.abort();
    let best = &best;
    let (original, shrunk) = (Size::of(&plan), Size::of(best));
    let file = options
        .out
        .clone()
        .unwrap_or_else(|| run_dir.join("shrunk.toml"));
    let names: Vec<&str> = required.iter().map(|i| i.name()).collect();
    let mut comments = vec![
        format!(
            "Shrunk by `faultline replay --shrink {}`: from {original} to {shrunk} in {} attempts.",
            run_dir.display(),
            shrinker.attempts()
        ),
        format!(
            "It fails {} (seen in {}).",
            names.join(", "),
            failing_run.display()
        ),
    ];
    if broken_inbox {
        comments.push(
            "It ran on the deliberately broken build: `faultline run <this file> --break-inbox-for-test`."
                .to_owned(),
        );
    }
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &file,
        scenario_text(&shrunk_scenario(&scenario, best), &comments)?,
    )
    .with_context(|| format!("writing {}", file.display()))?;
    Ok(Shrunk {
        original,
        shrunk,
        attempts: shrinker.attempts(),
        file,
        failing_run,
        invariants: required,
        broken_inbox,
        interrupted: interrupted.load(Ordering::SeqCst),
    })
}

/// Whether an attempt still fails, and its outcome in words.
fn judge(
    required: &BTreeSet<Invariant>,
    results: Option<&Results>,
    error: Option<String>,
) -> (bool, String) {
    let Some(results) = results else {
        return (
            false,
            format!("aborted: {}", error.unwrap_or_else(|| "no results".into())),
        );
    };
    let got = failed(results.invariants.iter().map(|c| (c.invariant, c.verdict)));
    let names =
        |set: &BTreeSet<Invariant>| set.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ");
    let words = if got.is_empty() {
        results.verdict.as_str().to_owned()
    } else {
        format!("FAIL {}", names(&got))
    };
    (still_fails(required, &got), words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_still_fails_only_if_every_originally_failing_invariant_fails_again() {
        let required: BTreeSet<_> = [Invariant::ExactlyOnce, Invariant::Points].into();
        let both = failed([
            (Invariant::ExactlyOnce, Verdict::Fail),
            (Invariant::Points, Verdict::Fail),
            (Invariant::Traces, Verdict::Fail),
        ]);
        assert!(still_fails(&required, &both));
        let one = failed([
            (Invariant::ExactlyOnce, Verdict::Fail),
            (Invariant::Points, Verdict::Unknown),
        ]);
        assert!(!still_fails(&required, &one));
        assert!(
            !still_fails(&BTreeSet::new(), &both),
            "nothing to keep failing"
        );
    }

    #[test]
    fn the_written_scenario_parses_back_and_plans_exactly_the_shrunk_plan() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/broker-ack-loss-duplicates.toml"
        ))
        .expect("shipped scenario");
        let original = Scenario::parse(&text).expect("scenario");
        let full = crate::chaos::generator::plan(&original, &original.catalogue()).expect("plan");
        let mut small = with_bookings(&full, |i| i < 4);
        small = without_fault(&small, 1);
        small.faults[0].for_ms = 1250;
        let scenario = shrunk_scenario(&original, &small);
        let text = scenario_text(&scenario, &["a comment".into()]).expect("toml");
        assert!(text.starts_with("# a comment\n"), "{text}");
        let parsed = Scenario::parse(&text).expect("the written file parses");
        assert_eq!(parsed, scenario);
        assert_eq!(parsed.name, "broker-ack-loss-duplicates-shrunk");
        assert_eq!(parsed.workload.bookings, 4);
        let planned = crate::chaos::generator::plan(&parsed, &parsed.catalogue()).expect("plan");
        assert_eq!(planned, small);
        // Shrinking a shrunk run keeps the name.
        assert_eq!(shrunk_scenario(&parsed, &small).name, parsed.name);
    }

    /// A run directory whose run ended with `results` (`None`: aborted, no results.json).
    fn recorded_run(results: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/broker-ack-loss-duplicates.toml"
        );
        std::fs::copy(scenario, dir.path().join("scenario.toml")).expect("scenario.toml");
        std::fs::write(dir.path().join("run.json"), r#"{"target": "embedded"}"#).expect("run");
        if let Some(results) = results {
            std::fs::write(dir.path().join("results.json"), results).expect("results");
        }
        dir
    }

    #[tokio::test]
    async fn a_run_that_did_not_fail_is_refused_before_anything_runs() {
        let cases = [
            (
                Some(
                    r#"{"verdict": "pass", "invariants": [{"invariant": "seats", "verdict": "pass"}]}"#,
                ),
                "nothing to shrink: the run passed",
            ),
            (
                Some(
                    r#"{"verdict": "unknown", "invariants": [{"invariant": "exactly-once", "verdict": "unknown"}]}"#,
                ),
                "nothing to shrink: the run failed no invariant",
            ),
            (None, "nothing to shrink: the run in"),
        ];
        for (results, expected) in cases {
            let dir = recorded_run(results);
            let options = ShrinkOptions {
                run_dir: dir.path().to_owned(),
                runs_dir: dir.path().join("runs"),
                postgres: None,
                exe: PathBuf::from("/nonexistent/faultline"),
                progress: false,
                break_inbox_for_test: false,
                max_attempts: 3,
                out: None,
            };
            let mut attempts = 0;
            let error = shrink(&options, |_| attempts += 1)
                .await
                .expect_err("nothing to shrink");
            assert!(format!("{error:#}").contains(expected), "{error:#}");
            assert_eq!(attempts, 0);
            assert!(!dir.path().join("shrunk.toml").exists());
        }
    }
}
