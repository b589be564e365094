//! The tour (`faultline demo`): five acts on one running stack, each a chaos scenario run by the
//! chaos runner itself — the same plan generator, nemesis and Toxiproxy API, the same checkers —
//! so the demo has no second fault path.
//!
//! Each act is announced (its scenario's description is the narration), runs with a progress
//! line, and is summed up: what happened to its bookings, which faults met traffic, one or two
//! bookings worth opening with links to their trace and logs (the capture's viewer on the
//! embedded stack, built by the runner's own link builder), and the invariant verdicts of what
//! it just did. The acts' scenario files are `chaos/scenarios/tour/*.toml` (compiled in).
//!
//! One stack for all acts means one set of settings: the tour's stack has a 6 s charge deadline
//! (act 3's partition outlasts it, act 2's slowness does not), a 20 s hold deadline (act 5's
//! restart fits in it), and producers without idempotence and with a 1.5 s request timeout (act
//! 4's lost acknowledgements then turn into real duplicates). Each act books on a concert of its
//! own ([`catalogue`]), so no act finds its seats taken by an earlier one; the points invariant
//! holds over the whole tour, every act judging the wallets of all of them.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::{
    chaos::{
        evidence::Evidence,
        history::Operation,
        report,
        run::{self, RunOptions, RunOutcome, TargetSpec},
        target::Target,
    },
    seed::{Seed, SeedConcert, SeedSchedule, SeedUser},
    stack::{Stack, StackOptions},
};

/// What makes a booking worth opening after an act.
#[derive(Debug, Clone, Copy)]
pub struct Pick {
    /// The booking's final status.
    pub status: &'static str,
    /// Only a booking that met a fault: the plan sent it to meet one, or it was submitted while
    /// one was on.
    pub met_fault: bool,
    /// What the reader will see when they open it.
    pub why: &'static str,
}

/// A decision the services log when the act's story happens, counted in the act's window: the
/// summary says what the system did, from its own words.
#[derive(Debug, Clone, Copy)]
pub struct Sign {
    pub service: &'static str,
    /// A substring of the log message.
    pub message: &'static str,
    /// What the count means.
    pub label: &'static str,
}

const RETRIED: Sign = Sign {
    service: "reservation",
    message: "payment call got no decision; retrying with the same key",
    label: "payment calls without a decision, retried with the same idempotency key",
};
const BREAKER: Sign = Sign {
    service: "reservation",
    message: "circuit breaker state changed",
    label: "circuit breaker state changes",
};
const REFUNDED: Sign = Sign {
    service: "reservation",
    message: "refund done",
    label: "refunds (compensation, first step)",
};
const RELEASED: Sign = Sign {
    service: "reservation",
    message: "releasing the seat",
    label: "seats released (compensation, last step)",
};
const SKIPPED: [Sign; 3] = [
    Sign {
        service: "inventory",
        message: "duplicate message skipped",
        label: "duplicates skipped by inventory's inbox",
    },
    Sign {
        service: "reservation",
        message: "duplicate message skipped",
        label: "duplicates skipped by reservation's inbox",
    },
    Sign {
        service: "analytics",
        message: "duplicate message skipped",
        label: "duplicates skipped by analytics' inbox",
    },
];

/// One act of the tour.
#[derive(Debug)]
pub struct Act {
    pub title: &'static str,
    /// The act's scenario (TOML).
    pub scenario: &'static str,
    /// The bookings to point at, in order of preference (one per entry, when there is one).
    pub picks: &'static [Pick],
    /// What the logs should show of the act's story.
    pub signs: &'static [Sign],
}

/// The five acts, in order.
pub const ACTS: [Act; 5] = [
    Act {
        title: "Bookings that simply succeed",
        scenario: include_str!("../../../scenarios/tour/1-bookings.toml"),
        picks: &[
            Pick {
                status: "CONFIRMED",
                met_fault: false,
                why: "held, charged, sold, confirmed: one trace across four services",
            },
            Pick {
                status: "CANCELLED",
                met_fault: false,
                why: "payment declined: the seat is released (compensation)",
            },
        ],
        signs: &[RELEASED],
    },
    Act {
        title: "Payment slowed down",
        scenario: include_str!("../../../scenarios/tour/2-payment-slow.toml"),
        picks: &[Pick {
            status: "CONFIRMED",
            met_fault: true,
            why: "charges that timed out, retried with the same key, then went through",
        }],
        signs: &[RETRIED, BREAKER],
    },
    Act {
        title: "Payment partitioned",
        scenario: include_str!("../../../scenarios/tour/3-payment-partition.toml"),
        picks: &[Pick {
            status: "CANCELLED",
            met_fault: true,
            why: "an unknown charge past its deadline: refund, then release",
        }],
        signs: &[RETRIED, BREAKER, REFUNDED, RELEASED],
    },
    Act {
        title: "Duplicate deliveries",
        scenario: include_str!("../../../scenarios/tour/4-duplicates.toml"),
        picks: &[Pick {
            status: "CONFIRMED",
            met_fault: true,
            why: "its messages crossed the broker while acknowledgements were lost",
        }],
        signs: &SKIPPED,
    },
    Act {
        title: "A service killed and restarted",
        scenario: include_str!("../../../scenarios/tour/5-kill.toml"),
        picks: &[Pick {
            status: "CONFIRMED",
            met_fault: true,
            why: "in flight when inventory died; finished after the restart",
        }],
        signs: &SKIPPED,
    },
];

/// How much longer an act waits for its bookings on a running stack (see `play_acts`).
const RUNNING_STACK_EXTRA_SETTLE_MS: u64 = 35_000;

/// Seats per act's concert.
const SEATS_PER_ACT: u32 = 40;
/// What a seat costs: more than the two poor users have.
const PRICE: i64 = 150;

/// The tour's catalogue: eight users who can afford anything, two who cannot afford a seat, and
/// one concert per act (`act-N-1-001` …).
pub fn catalogue() -> Seed {
    catalogue_named("")
}

/// [`catalogue`] with every id prefixed: the tour's own users and concerts on a stack that holds
/// others, and those of earlier tours (`demo --target`).
pub fn catalogue_named(prefix: &str) -> Seed {
    let users = (1..=10)
        .map(|i| SeedUser {
            user_id: format!("{prefix}user-{i}"),
            points: if i <= 8 { 100_000 } else { 120 },
        })
        .collect();
    let concerts = (1..=ACTS.len())
        .map(|n| SeedConcert {
            id: format!("{prefix}concert-act-{n}"),
            title: format!("Act {n}: {}", ACTS[n - 1].title),
            schedules: vec![SeedSchedule {
                id: format!("{prefix}act-{n}-1"),
                starts_at: format!("2027-05-{n:02}T20:00:00Z"),
                seats: SEATS_PER_ACT,
                price: PRICE,
            }],
        })
        .collect();
    Seed { users, concerts }
}

/// What act `number` (from 1) may book: every user, only its own concert.
pub fn act_catalogue(seed: &Seed, number: usize) -> Seed {
    Seed {
        users: seed.users.clone(),
        concerts: seed.concerts[number - 1..number].to_vec(),
    }
}

/// The tour's stack: the catalogue and the settings every act can live with (module docs).
pub fn stack_options(run_dir: &Path, postgres: Option<String>) -> StackOptions {
    let mut options = StackOptions::new(run_dir.join("stack"));
    options.postgres = postgres;
    options.seed = catalogue();
    options.saga = serde_json::json!({ "charge_deadline_ms": 6_000, "hold_timeout_ms": 20_000 });
    options.kafka = serde_json::json!({
        "idempotent_producer": false,
        "extra": { "request.timeout.ms": "1500", "retry.backoff.ms": "100" },
    });
    options
}

/// How one act went.
#[derive(Debug)]
pub struct ActReport {
    pub title: &'static str,
    /// `None` when the act was skipped.
    pub outcome: Option<RunOutcome>,
    pub elapsed: Duration,
}

impl ActReport {
    /// Every invariant held (a skipped act judged nothing and so failed nothing).
    pub fn passed(&self) -> bool {
        self.outcome
            .as_ref()
            .is_none_or(|outcome| outcome.exit_code == report::EXIT_PASS)
    }
}

/// Where the tour plays.
#[derive(Debug, Clone)]
pub enum Stage {
    /// A stack the tour starts with its own settings and catalogue (SQLite, or PostgreSQL at
    /// this admin URL), and stops at the end.
    Embedded { postgres: Option<String> },
    /// A running stack given by its target file (compose, or another `faultline up`): the tour
    /// adds users and concerts of its own, keeps the stack's own settings, and skips the act
    /// that kills a process, which only the embedded stack allows.
    Running(PathBuf),
}

/// Plays every act on one stack — started for the tour, or a running one — and stops the stack
/// it started. True if every invariant of every act played held.
#[allow(clippy::print_stdout)]
pub async fn play(run_dir: &Path, stage: Stage, show_progress: bool) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    // Each demo's acts and run directories replace the previous demo's.
    for old in ["acts", "runs"] {
        let _ = std::fs::remove_dir_all(run_dir.join(old));
    }
    let (target, seed) = match &stage {
        Stage::Embedded { postgres } => {
            println!(
                "Starting the system ({}) in {} …",
                if postgres.is_some() {
                    "PostgreSQL"
                } else {
                    "SQLite"
                },
                run_dir.display()
            );
            let started = Instant::now();
            let stack = Stack::start(&exe, stack_options(run_dir, postgres.clone())).await?;
            println!(
                "Started in {:.1} s. Five acts follow, each on this same running system.\n",
                started.elapsed().as_secs_f64()
            );
            (Target::embedded(stack), catalogue())
        }
        Stage::Running(file) => {
            let mut target = Target::remote(file)?;
            // Ids of this tour alone: a stack keeps what earlier tours booked.
            let prefix = format!("tour{}-", crate::chaos::history::unix_ms() / 1000);
            let seed = catalogue_named(&prefix);
            println!(
                "Playing on the running system of {}: adding the tour's ten users and five concerts ({prefix}…).",
                file.display()
            );
            target
                .add_seed(&seed)
                .await
                .context("adding the tour's users and concerts")?;
            println!(
                "Its own settings apply (the embedded tour's stack has a 6 s charge deadline, so act 3's \
                 story can differ, and acts wait up to 35 s longer for bookings to settle), and act 5, \
                 which kills a process, is skipped.\n"
            );
            (target, seed)
        }
    };
    let target = Arc::new(target);
    let played = async {
        let initial_points = target.seeded_points().await?;
        let evidence = Evidence::new(&target.endpoints.telemetry, target.grafana_auth.as_deref())?;
        let tour_started = Instant::now();
        let acts = play_acts(
            run_dir,
            &exe,
            &target,
            &seed,
            initial_points,
            &evidence,
            show_progress,
        )
        .await?;
        Ok::<_, anyhow::Error>((acts, tour_started.elapsed()))
    }
    .await;
    let passed = played.map(|(acts, tour)| {
        println!("{}", summary_table(&acts));
        let passed = acts.iter().all(ActReport::passed);
        println!(
            "The tour took {:.0} s{}. {}",
            tour.as_secs_f64(),
            if matches!(stage, Stage::Embedded { .. }) {
                " after start-up"
            } else {
                ""
            },
            if !passed {
                "Invariants were violated or could not be judged: see the acts above."
            } else if acts.iter().any(|act| act.outcome.is_none()) {
                "Every invariant held in every act played."
            } else {
                "Every invariant held in every act."
            }
        );
        passed
    });
    if matches!(stage, Stage::Embedded { .. })
        && passed.is_ok()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        // The links above point into this stack's capture: a person at a terminal gets to open
        // them before it goes (a script or a test does not wait).
        println!(
            "\nThe system stays up so the links above work{}. Press Ctrl-C to stop it.",
            target
                .endpoints
                .telemetry
                .get("viewer")
                .map(|v| format!(" (every trace: {v})"))
                .unwrap_or_default()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    target.stop().await;
    passed
}

/// Why `scenario` cannot be played on `target`, if it cannot: process faults need the embedded
/// stack.
fn cannot_play(scenario: &crate::chaos::scenario::Scenario, target: &Target) -> Option<String> {
    let kills: Vec<&str> = scenario
        .nemesis
        .iter()
        .filter_map(|fault| fault.killed().map(|service| service.name()))
        .collect();
    (target.is_remote() && !kills.is_empty()).then(|| {
        format!(
            "Skipped: this act kills {} with SIGKILL, which the runner can do only to the stack it \
             started (`faultline demo` without --target).",
            kills.join(" and ")
        )
    })
}

#[allow(clippy::print_stdout)]
async fn play_acts(
    run_dir: &Path,
    exe: &Path,
    target: &Arc<Target>,
    seed: &Seed,
    initial_points: i64,
    evidence: &Evidence,
    show_progress: bool,
) -> anyhow::Result<Vec<ActReport>> {
    let acts_dir = run_dir.join("acts");
    std::fs::create_dir_all(&acts_dir)
        .with_context(|| format!("creating {}", acts_dir.display()))?;
    let mut reports = Vec::new();
    for (index, act) in ACTS.iter().enumerate() {
        let number = index + 1;
        let scenario = crate::chaos::scenario::Scenario::parse(act.scenario)
            .with_context(|| format!("act {number}'s scenario"))?;
        println!("━━ Act {number} of {}: {} ━━", ACTS.len(), act.title);
        println!("{}\n", scenario.description);
        if let Some(why) = cannot_play(&scenario, target) {
            println!("{why}\n");
            reports.push(ActReport {
                title: act.title,
                outcome: None,
                elapsed: Duration::ZERO,
            });
            continue;
        }
        let file = acts_dir.join(format!("{}.toml", scenario.name));
        if target.is_remote() {
            // A running stack keeps its own Kafka client settings, where librdkafka's 30 s
            // request timeout (not the tour stack's 1.5 s) decides when what lost
            // acknowledgements left in flight is sent again: the act waits that much longer
            // for its bookings to settle (it ends as soon as they have).
            let mut scenario = scenario.clone();
            scenario.workload.settle_ms += RUNNING_STACK_EXTRA_SETTLE_MS;
            std::fs::write(&file, toml::to_string(&scenario)?)?;
        } else {
            std::fs::write(&file, act.scenario)?;
        }
        let started = Instant::now();
        let outcome = run::run(&RunOptions {
            scenario: file,
            runs_dir: run_dir.join("runs"),
            target: TargetSpec::Shared {
                target: target.clone(),
                catalogue: act_catalogue(seed, number),
                initial_points,
            },
            exe: exe.to_path_buf(),
            progress: show_progress,
            break_inbox_for_test: false,
            load_scale: 1.0,
            seed: None,
        })
        .await;
        let elapsed = started.elapsed();
        println!("{}", act_summary(act, &outcome, elapsed, evidence).await);
        let report = ActReport {
            title: act.title,
            outcome: Some(outcome),
            elapsed,
        };
        reports.push(report);
    }
    Ok(reports)
}

/// What an act did, the bookings worth opening, and its verdicts.
async fn act_summary(
    act: &Act,
    outcome: &RunOutcome,
    elapsed: Duration,
    evidence: &Evidence,
) -> String {
    let Some(results) = &outcome.results else {
        return format!(
            "The act could not be played: {}\n",
            outcome.error.as_deref().unwrap_or("unknown error")
        );
    };
    let o = &results.operations;
    let mut text = format!(
        "In {:.0} s: {} bookings — {} confirmed, {} cancelled, {} rejected{}.\n",
        elapsed.as_secs_f64(),
        o.invoked,
        o.confirmed,
        o.cancelled,
        o.rejected,
        if o.info + o.fail > 0 {
            format!(", {} without a final answer", o.info + o.fail)
        } else {
            String::new()
        }
    );
    for fault in &results.faults {
        let met = match fault.fired {
            Some(true) => "met traffic",
            Some(false) => "met NO traffic",
            None => "traffic not measured",
        };
        text.push_str(&format!(
            "Fault: {} on {} for {} ms ({met}).\n",
            fault.kind,
            fault.target,
            fault.stop_ms.unwrap_or(fault.start_ms) - fault.start_ms
        ));
    }
    let from = results.started_at_unix_ms;
    let to = from + results.duration_ms;
    for sign in act.signs {
        let query = format!("{{service=\"{}\"}} |= \"{}\"", sign.service, sign.message);
        match evidence.logs(&query, from, to).await {
            Ok(lines) if sign.message == BREAKER.message && !lines.is_empty() => {
                let states: Vec<&str> = lines
                    .iter()
                    .filter_map(|l| l["circuit.state"].as_str())
                    .collect();
                text.push_str(&format!(
                    "Logs: {} {} (closed → {}).\n",
                    lines.len(),
                    sign.label,
                    states.join(" → ")
                ));
            }
            Ok(lines) => {
                text.push_str(&format!("Logs: {} {}.\n", lines.len(), sign.label));
            }
            Err(error) => text.push_str(&format!("Logs: {} unknown ({error:#}).\n", sign.label)),
        }
    }
    let picked = worth_opening(act, outcome);
    if !picked.is_empty() {
        text.push_str("Worth opening:\n");
    }
    for (pick, op) in picked {
        text.push_str(&format!(
            "  booking {} ({}) — {}\n    trace: {}\n    logs:  {}\n",
            op.booking_id.as_deref().unwrap_or("-"),
            pick.status,
            pick.why,
            evidence.trace_link(&op.trace_id),
            evidence.logs_link(&op.trace_id)
        ));
    }
    text.push_str(&report::table(results));
    if let Some(dir) = &outcome.run_dir {
        text.push_str(&format!(
            "\nReport: {}\n",
            dir.join("report.html").display()
        ));
    }
    text
}

/// One booking per pick of the act, when the run has one: the first with the wanted status (and,
/// if asked, sent to meet a fault), never the same booking twice.
pub fn worth_opening<'a>(act: &Act, outcome: &'a RunOutcome) -> Vec<(Pick, &'a Operation)> {
    let sent_to_meet: std::collections::BTreeSet<u32> = outcome
        .plan
        .iter()
        .flat_map(|plan| plan.ops.iter())
        .filter(|op| op.meets_fault.is_some())
        .map(|op| op.op)
        .collect();
    let windows: Vec<(u64, u64)> = outcome
        .results
        .iter()
        .flat_map(|r| r.faults.iter())
        .map(|f| (f.start_ms, f.stop_ms.unwrap_or(f.start_ms)))
        .collect();
    let met = |op: &Operation| {
        sent_to_meet.contains(&op.op)
            || windows
                .iter()
                .any(|(start, stop)| (*start..=*stop).contains(&op.invoked_ms))
    };
    let mut picked: Vec<(Pick, &Operation)> = Vec::new();
    for pick in act.picks {
        let found = outcome.operations.iter().find(|op| {
            op.status.as_deref() == Some(pick.status)
                && op.booking_id.is_some()
                && (!pick.met_fault || met(op))
                && !picked.iter().any(|(_, p)| p.op == op.op)
        });
        if let Some(op) = found {
            picked.push((*pick, op));
        }
    }
    picked
}

fn summary_table(acts: &[ActReport]) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(["act", "verdict", "bookings", "time"]);
    for (index, act) in acts.iter().enumerate() {
        let (verdict, bookings) = match act.outcome.as_ref().map(|o| &o.results) {
            Some(Some(results)) => (
                results.verdict.as_str().to_owned(),
                results.operations.invoked.to_string(),
            ),
            Some(None) => ("aborted".to_owned(), "-".to_owned()),
            None => ("skipped".to_owned(), "-".to_owned()),
        };
        table.add_row([
            format!("{}. {}", index + 1, act.title),
            verdict,
            bookings,
            format!("{:.0} s", act.elapsed.as_secs_f64()),
        ]);
    }
    table.to_string()
}

/// Where `demo` keeps its files by default.
pub fn default_run_dir() -> PathBuf {
    PathBuf::from(".faultline/demo")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{generator, scenario::Scenario};

    #[test]
    fn every_act_parses_plans_on_its_own_concert_and_needs_no_stack_settings() {
        let seed = catalogue();
        for (index, act) in ACTS.iter().enumerate() {
            let scenario = Scenario::parse(act.scenario)
                .unwrap_or_else(|e| panic!("act {}: {e:#}", index + 1));
            scenario
                .stack
                .ensure_default()
                .expect("no [stack] settings");
            assert!(scenario.name.starts_with(&format!("tour-{}-", index + 1)));
            let own = act_catalogue(&seed, index + 1);
            let plan = generator::plan(&scenario, &own).expect("a plan");
            let prefix = format!("act-{}-1-", index + 1);
            assert!(
                plan.ops.iter().all(|op| op.seat.starts_with(&prefix)),
                "act {} books outside its concert",
                index + 1
            );
            assert!(
                plan.ops.len() < SEATS_PER_ACT as usize,
                "a seat is left for the preflight booking"
            );
        }
    }

    #[test]
    fn poor_users_cannot_afford_a_seat_and_rich_ones_can_afford_every_act() {
        let seed = catalogue();
        let bookings: u32 = ACTS
            .iter()
            .map(|a| Scenario::parse(a.scenario).expect("act").workload.bookings)
            .sum();
        assert!(seed.users.iter().any(|u| u.points < PRICE));
        let rich: Vec<_> = seed.users.iter().filter(|u| u.points >= PRICE).collect();
        assert!(rich.iter().all(|u| u.points >= i64::from(bookings) * PRICE));
    }
}
