//! Seed sweeps: which seeds `faultline run --seed S | --seeds N | --seeds A..B` runs a scenario
//! on, and the summary of a sweep (per scenario: passed, failed, unknown, aborted, and where each
//! run that did not pass is, so `faultline replay` can reproduce it).

use std::{collections::BTreeMap, fmt, path::PathBuf, str::FromStr};

use super::report;

/// The seeds to run each scenario on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seeds {
    /// The scenario file's own seed.
    #[default]
    Own,
    /// This seed, whatever the file says.
    One(u64),
    /// `N` seeds starting at the file's own: its seed, seed + 1, … (so `--seeds 1` is the file's
    /// seed alone, and every seed of a sweep is reproducible from the file).
    FromOwn(u64),
    /// The seeds from `start` up to `end`, inclusive.
    Range { start: u64, end: u64 },
}

/// The largest sweep one command may ask for (a typo such as `--seeds 1..9999999` would otherwise
/// run for days).
pub const MAX_SWEEP: u64 = 10_000;

impl FromStr for Seeds {
    type Err = String;

    /// `N` (seeds from the file's own), `A..B` (A up to B, B excluded, as in Rust) or `A..=B`
    /// (B included).
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not a seed (a whole number ≥ 0)"))
        };
        let (start, end) = if let Some((a, b)) = text.split_once("..=") {
            (number(a)?, number(b)?)
        } else if let Some((a, b)) = text.split_once("..") {
            let (a, b) = (number(a)?, number(b)?);
            if b <= a {
                return Err(format!(
                    "the seed range {text:?} is empty (A..B excludes B)"
                ));
            }
            (a, b - 1)
        } else {
            let n = number(text)?;
            if n == 0 || n > MAX_SWEEP {
                return Err(format!("--seeds takes 1 to {MAX_SWEEP} runs, not {n}"));
            }
            return Ok(Seeds::FromOwn(n));
        };
        if end < start {
            return Err(format!("the seed range {text:?} is empty"));
        }
        if end - start >= MAX_SWEEP {
            return Err(format!(
                "the seed range {text:?} holds more than {MAX_SWEEP} seeds"
            ));
        }
        Ok(Seeds::Range { start, end })
    }
}

impl Seeds {
    /// The seeds to run a scenario whose file says `own` on, in order.
    pub fn for_scenario(&self, own: u64) -> Vec<u64> {
        match *self {
            Seeds::Own => vec![own],
            Seeds::One(seed) => vec![seed],
            Seeds::FromOwn(n) => (0..n).map(|i| own.wrapping_add(i)).collect(),
            Seeds::Range { start, end } => (start..=end).collect(),
        }
    }

    /// Whether more than one run per scenario is asked for (the sweep summary is then printed).
    pub fn is_sweep(&self) -> bool {
        match *self {
            Seeds::Own | Seeds::One(_) => false,
            Seeds::FromOwn(n) => n > 1,
            Seeds::Range { start, end } => end > start,
        }
    }
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub seed: u64,
    pub exit_code: u8,
    pub run_dir: Option<PathBuf>,
}

/// Per scenario, the runs of a sweep in the order they ran.
#[derive(Debug, Default)]
pub struct Sweep {
    scenarios: BTreeMap<String, Vec<SweepRun>>,
}

/// A scenario's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub aborted: usize,
}

impl Sweep {
    pub fn record(&mut self, scenario: &str, run: SweepRun) {
        self.scenarios
            .entry(scenario.to_owned())
            .or_default()
            .push(run);
    }

    pub fn tally(&self, scenario: &str) -> Tally {
        let mut tally = Tally::default();
        for run in self.scenarios.get(scenario).into_iter().flatten() {
            match run.exit_code {
                report::EXIT_PASS => tally.passed += 1,
                report::EXIT_VIOLATED => tally.failed += 1,
                report::EXIT_UNKNOWN => tally.unknown += 1,
                _ => tally.aborted += 1,
            }
        }
        tally
    }

    /// The summary table: one row per scenario, then one per run that did not pass.
    pub fn table(&self) -> comfy_table::Table {
        let mut table = comfy_table::Table::new();
        table
            .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_header([
                "scenario",
                "seeds",
                "pass",
                "fail",
                "unknown",
                "aborted",
                "not passed",
            ]);
        for (scenario, runs) in &self.scenarios {
            let tally = self.tally(scenario);
            let not_passed: Vec<String> = runs
                .iter()
                .filter(|run| run.exit_code != report::EXIT_PASS)
                .map(|run| {
                    let dir = run.run_dir.as_ref().map_or_else(
                        || "(no run directory)".to_owned(),
                        |d| d.display().to_string(),
                    );
                    format!("seed {} {}: {dir}", run.seed, Outcome(run.exit_code))
                })
                .collect();
            table.add_row([
                scenario.clone(),
                runs.len().to_string(),
                tally.passed.to_string(),
                tally.failed.to_string(),
                tally.unknown.to_string(),
                tally.aborted.to_string(),
                if not_passed.is_empty() {
                    "—".to_owned()
                } else {
                    not_passed.join("\n")
                },
            ]);
        }
        table
    }
}

/// An exit code as the word a person reads.
struct Outcome(u8);

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            report::EXIT_PASS => "PASS",
            report::EXIT_VIOLATED => "FAIL",
            report::EXIT_UNKNOWN => "UNKNOWN",
            _ => "ABORTED",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_starts_at_the_file_seed_and_ranges_follow_rust() {
        assert_eq!("3".parse(), Ok(Seeds::FromOwn(3)));
        assert_eq!(Seeds::FromOwn(3).for_scenario(7001), vec![7001, 7002, 7003]);
        assert_eq!(
            "10..13".parse::<Seeds>().map(|s| s.for_scenario(1)),
            Ok(vec![10, 11, 12])
        );
        assert_eq!(
            "10..=13".parse::<Seeds>().map(|s| s.for_scenario(1)),
            Ok(vec![10, 11, 12, 13])
        );
        assert_eq!(Seeds::One(5).for_scenario(1), vec![5]);
        assert_eq!(Seeds::Own.for_scenario(1), vec![1]);
        assert!(!Seeds::FromOwn(1).is_sweep());
        assert!(Seeds::FromOwn(2).is_sweep());
    }

    #[test]
    fn empty_huge_or_garbled_seed_lists_are_refused_with_the_reason() {
        for (text, reason) in [
            ("0", "1 to"),
            ("5..5", "empty"),
            ("6..=5", "empty"),
            ("0..20000", "more than"),
            ("x", "not a seed"),
            ("1..y", "not a seed"),
            ("-3", "not a seed"),
        ] {
            let error = text.parse::<Seeds>().expect_err(text);
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn the_summary_counts_each_outcome_and_lists_every_run_that_did_not_pass() {
        let mut sweep = Sweep::default();
        for (seed, code) in [
            (1, report::EXIT_PASS),
            (2, report::EXIT_VIOLATED),
            (3, report::EXIT_UNKNOWN),
            (4, report::EXIT_PASS),
        ] {
            sweep.record(
                "mixed",
                SweepRun {
                    seed,
                    exit_code: code,
                    run_dir: Some(PathBuf::from(format!("runs/mixed/{seed}"))),
                },
            );
        }
        assert_eq!(
            sweep.tally("mixed"),
            Tally {
                passed: 2,
                failed: 1,
                unknown: 1,
                aborted: 0
            }
        );
        let table = sweep.table().to_string();
        assert!(table.contains("seed 2 FAIL: runs/mixed/2"), "{table}");
        assert!(table.contains("seed 3 UNKNOWN: runs/mixed/3"), "{table}");
        assert!(!table.contains("runs/mixed/1"), "{table}");
    }
}
