//! The bench's report: `bench.json` (every figure, for scripts and for comparing runs) and the
//! terminal tables (the figures a person looks at first).

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use faultline_harness::invariants::Violation;
use serde::Serialize;

use super::{
    figures::{Latency, OUTCOMES},
    find_max::StepReport,
    procs::Window,
    step::StepFigures,
};

/// Everything one `faultline bench` found.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// How it was invoked (secrets in URLs masked), so a figure can be reproduced.
    pub command: String,
    /// `embedded` or the target file.
    pub target: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// `on` or `off`: whether the services exported spans and log lines.
    pub telemetry: String,
    /// Where the bookings' seats and users came from.
    pub catalogue: String,
    /// The requested rate (the first rung for find-max) and the load's length, in seconds.
    pub rate: f64,
    pub duration_s: f64,
    pub deadline_ms: u64,
    /// No load: each process's CPU over `--idle` seconds.
    pub idle: Option<Window>,
    /// The load's figures (for find-max: the highest sustained rung, or the first when none
    /// was), at the top level so one run and a climb read the same.
    #[serde(flatten)]
    pub figures: Option<StepFigures>,
    /// Find-max: every rung climbed, and the highest sustained rate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sustained_per_s: Option<f64>,
    pub invariants: Verdict,
}

/// Invariants 1–3 after the run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub hold: bool,
    pub violations: Vec<ViolationView>,
}

/// One broken invariant.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationView {
    pub invariant: u8,
    pub detail: String,
}

impl Verdict {
    pub fn of(violations: &[Violation]) -> Self {
        Self {
            hold: violations.is_empty(),
            violations: violations
                .iter()
                .map(|v| ViolationView {
                    invariant: v.invariant,
                    detail: v.detail.clone(),
                })
                .collect(),
        }
    }
}

impl BenchReport {
    /// Writes `bench.json` (pretty, so a diff between two runs is readable).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// The tables for the terminal.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let mut run = table(["run", ""]);
        for (key, value) in [
            ("target", self.target.clone()),
            ("database", self.database.clone()),
            ("telemetry", self.telemetry.clone()),
            ("catalogue", self.catalogue.clone()),
            ("deadline", format!("{} ms", self.deadline_ms)),
        ] {
            run.add_row([key.to_owned(), value]);
        }
        out.push(run.to_string());
        if let Some(idle) = &self.idle {
            out.push(processes(idle, "idle").to_string());
        }
        if !self.steps.is_empty() {
            let mut steps = table([
                "rate/s",
                "accepted/s",
                "completed/s",
                "p99 saga",
                "refused",
                "stack CPU",
                "verdict",
            ]);
            for step in &self.steps {
                let o = &step.figures.outcome;
                steps.add_row([
                    format!("{:.0}", step.rate),
                    format!("{:.1}", o.accepted_per_s),
                    format!("{:.1}", o.completed_per_s),
                    ms(o.saga_latency_ms.map(|l| l.p99)),
                    o.refused.values().sum::<u64>().to_string(),
                    format!("{:.0} %", step.figures.load_window.stack_cpu_pct_of_core),
                    step.why_not.clone().unwrap_or_else(|| "sustained".into()),
                ]);
            }
            out.push(steps.to_string());
            let best = self
                .max_sustained_per_s
                .map_or("none (the first step already failed)".into(), |r| {
                    format!("{r:.0}/s")
                });
            let every_step_held = self.steps.iter().all(|s| s.sustained);
            out.push(format!(
                "max sustained: {best}{}",
                if every_step_held {
                    " (every step held: raise --max-rate to look higher)"
                } else {
                    ""
                }
            ));
        }
        if let Some(figures) = &self.figures {
            out.push(load(figures).to_string());
            out.push(processes(&figures.load_window, "load").to_string());
        }
        let mut verdict = table(["invariant", "verdict"]);
        for (number, name) in [
            (1, "1. no seat twice; sold = confirmed"),
            (2, "2. points conserved, charged once"),
            (3, "3. every saga terminal, nothing left over"),
        ] {
            let broken: Vec<&str> = self
                .invariants
                .violations
                .iter()
                .filter(|v| v.invariant == number)
                .map(|v| v.detail.as_str())
                .collect();
            verdict.add_row([
                name.to_owned(),
                if broken.is_empty() {
                    "pass".to_owned()
                } else {
                    format!("FAIL: {}", broken.join("; "))
                },
            ]);
        }
        out.push(verdict.to_string());
        out.join("\n")
    }
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header);
    table
}

fn ms(value: Option<u64>) -> String {
    value.map_or("–".into(), |v| format!("{v} ms"))
}

fn latency(value: Option<Latency>) -> String {
    value.map_or("–".into(), |l| {
        format!(
            "p50 {} · p90 {} · p99 {} · max {} ms",
            l.p50, l.p90, l.p99, l.max
        )
    })
}

/// The load figures of one phase.
fn load(figures: &StepFigures) -> Table {
    let o = &figures.outcome;
    let mut t = table(["load", ""]);
    let refused = if o.refused.is_empty() {
        "none".to_owned()
    } else {
        o.refused
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let outcomes = OUTCOMES
        .iter()
        .map(|s| format!("{s} {}", o.outcomes.get(*s).copied().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" · ");
    for (key, value) in [
        (
            "offered / accepted / completed",
            format!(
                "{:.1} / {:.1} / {:.1} per s",
                o.offered_per_s, o.accepted_per_s, o.completed_per_s
            ),
        ),
        (
            "requests / accepted",
            format!("{} / {}", o.requests, o.accepted),
        ),
        ("refused", refused),
        ("outcomes", outcomes),
        ("saga latency", latency(o.saga_latency_ms)),
        ("accept latency", latency(o.accept_latency_ms)),
        (
            "load / drain",
            format!(
                "{:.1} s / {:.1} s{}",
                o.load_s,
                figures.drain_s,
                if figures.drained {
                    ""
                } else {
                    " (not drained)"
                }
            ),
        ),
        (
            "send delay (client)",
            format!("max {} ms", o.max_send_delay_ms),
        ),
    ] {
        t.add_row([key.to_owned(), value]);
    }
    for (service, peak) in &figures.backlogs.outbox_lag {
        if let (Some(high), last) = (peak.peak, peak.last) {
            t.add_row([
                format!("outbox lag: {service}"),
                format!(
                    "peak {high}, final {}",
                    last.map_or("?".into(), |v| v.to_string())
                ),
            ]);
        }
    }
    for (service, groups) in &figures.backlogs.consumer_lag {
        for (group, peak) in groups {
            if let Some(high) = peak.peak {
                t.add_row([
                    format!("consumer lag: {service}/{group}"),
                    format!(
                        "peak {high}, final {}",
                        peak.last.map_or("?".into(), |v| v.to_string())
                    ),
                ]);
            }
        }
    }
    t
}

/// Per-process CPU and memory over a window.
fn processes(window: &Window, what: &str) -> Table {
    let mut t = table([
        &format!("process ({what}, {:.0} s)", window.window_s) as &str,
        "CPU s",
        "% of a core",
        "RSS MiB",
        "peak RSS MiB",
    ]);
    for (name, p) in &window.processes {
        t.add_row([
            name.clone(),
            format!("{:.2}", p.cpu_s),
            format!("{:.1}", p.cpu_pct_of_core),
            format!("{:.0}", p.rss_mib),
            format!("{:.0}", p.peak_rss_mib),
        ]);
    }
    t.add_row([
        "stack (all but the bench client)".to_owned(),
        format!("{:.2}", window.stack_cpu_s),
        format!("{:.1}", window.stack_cpu_pct_of_core),
        String::new(),
        format!("{:.0}", window.stack_peak_rss_mib),
    ]);
    t
}

/// The command line as given, with any URL's password masked.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let mut words = vec!["faultline".to_owned()];
    for arg in args.into_iter().skip(1) {
        let arg = mask_password(&arg);
        words.push(if arg.contains(' ') || arg.is_empty() {
            format!("'{arg}'")
        } else {
            arg
        });
    }
    words.join(" ")
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; anything else unchanged.
fn mask_password(arg: &str) -> String {
    let Some(scheme) = arg.find("://") else {
        return arg.to_owned();
    };
    let rest = &arg[scheme + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let colon = rest[..at].find(':').unwrap_or(at);
            format!(
                "{}{}:***{}",
                &arg[..scheme + 3],
                &rest[..colon],
                &rest[at..]
            )
        }
        _ => arg.to_owned(),
    }
}

/// A climb's headline figures (no one rung is "the" result): the highest sustained rung's, else
/// the first rung's.
pub fn headline(steps: &[StepReport]) -> Option<StepFigures> {
    steps
        .iter()
        .rev()
        .find(|s| s.sustained)
        .or(steps.first())
        .map(|s| s.figures.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_masked_in_the_command_line() {
        let line = command_line(
            [
                "/x/faultline",
                "bench",
                "--postgres",
                "postgres://admin:hunter2@db:5432/postgres",
                "--rate",
                "20",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            "faultline bench --postgres postgres://admin:***@db:5432/postgres --rate 20"
        );
    }

    #[test]
    fn a_url_without_a_password_is_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "http://h/a@b",
            "plain",
        ] {
            assert_eq!(mask_password(url), url);
        }
    }
}
