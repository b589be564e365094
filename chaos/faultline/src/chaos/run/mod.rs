//! One chaos run, start to finish: load the scenario, plan it from its seed, bring up (or reach)
//! the target, prove every link goes through its proxy (preflight), run the workload and the
//! nemesis together, heal everything (always — on error, panic and Ctrl-C too), wait for the
//! system to settle, judge, and write the run directory.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

mod artifacts;
mod preflight;
mod schedule;
mod settle;

pub use preflight::PREFLIGHT_OP;

use super::{
    checkers,
    client::Client,
    evidence::Evidence,
    generator::{self, Plan},
    history,
    nemesis::Nemesis,
    report::{self, EXIT_ABORTED, Results},
    scenario::Scenario,
    target::Target,
};
use crate::{
    seed::Seed,
    stack::{Stack, StackOptions},
};

/// What to run against.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// Start the embedded stack for the run (PostgreSQL when a server URL is given).
    Embedded { postgres: Option<String> },
    /// A running stack described by a target file (compose).
    Remote(PathBuf),
    /// A stack the caller started and keeps (the demo's tour runs its acts one after another on
    /// one stack): the run neither starts nor stops it, and plans its bookings on `catalogue`
    /// — the part of the stack's seed that is this run's alone — instead of the scenario's.
    /// Scenario `[stack]` settings cannot apply to a running stack and are refused.
    Shared {
        target: Arc<Target>,
        catalogue: Seed,
        /// What payment's wallets were seeded with, all of them (the points invariant's
        /// reference: the stack holds more than `catalogue`).
        initial_points: i64,
    },
}

/// How to run one scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Runs go to `<runs_dir>/<scenario>/<timestamp>/`.
    pub runs_dir: PathBuf,
    pub target: TargetSpec,
    /// The binary the embedded services run from.
    pub exe: PathBuf,
    pub progress: bool,
    /// Test-only: start the embedded services with inbox deduplication switched off, to prove
    /// the exactly-once checker can fail.
    pub break_inbox_for_test: bool,
    /// Multiplies the rates of open-loop workloads (`workload.phases`); see
    /// [`Scenario::scale_load`].
    pub load_scale: f64,
    /// Runs the scenario on this seed instead of its file's (`--seed`, `--seeds`); the run
    /// directory's `scenario.toml` records it, so `replay` needs no flag.
    pub seed: Option<u64>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub scenario: String,
    pub run_dir: Option<PathBuf>,
    pub results: Option<Results>,
    pub exit_code: u8,
    /// Why the run was aborted (exit code 3).
    pub error: Option<String>,
    /// Every operation as the history tells it (empty when aborted): who booked what, its trace
    /// id, booking id and outcome — what a caller picks bookings worth opening from.
    pub operations: Vec<history::Operation>,
    /// The plan that ran (`None` when none could be made).
    pub plan: Option<Plan>,
}

/// Runs one scenario; never panics, always cleans up.
pub async fn run(options: &RunOptions) -> RunOutcome {
    let name = options
        .scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aborted = |run_dir: Option<PathBuf>, error: anyhow::Error| RunOutcome {
        scenario: name.clone(),
        run_dir,
        results: None,
        exit_code: EXIT_ABORTED,
        error: Some(format!("{error:#}")),
        operations: Vec::new(),
        plan: None,
    };
    let scenario =
        match Scenario::load(&options.scenario).and_then(|s| s.scale_load(options.load_scale)) {
            Ok(mut s) => {
                s.seed = options.seed.unwrap_or(s.seed);
                s
            }
            Err(error) => return aborted(None, error),
        };
    let seed = match &options.target {
        TargetSpec::Shared { catalogue, .. } => {
            if let Err(error) = scenario.stack.ensure_default() {
                return aborted(None, error);
            }
            catalogue.clone()
        }
        _ => scenario.catalogue(),
    };
    let plan = match generator::plan(&scenario, &seed) {
        Ok(plan) => plan,
        Err(error) => return aborted(None, error),
    };
    let run_dir = options
        .runs_dir
        .join(&scenario.name)
        .join(history::unix_ms().to_string());
    match execute(options, &scenario, &plan, &seed, &run_dir).await {
        Ok((results, operations)) => RunOutcome {
            scenario: scenario.name.clone(),
            run_dir: Some(run_dir),
            exit_code: results.exit_code,
            results: Some(results),
            error: None,
            operations,
            plan: Some(plan),
        },
        Err(error) => {
            let _ = std::fs::write(run_dir.join("aborted.txt"), format!("{error:#}\n"));
            aborted(Some(run_dir), error)
        }
    }
}

async fn execute(
    options: &RunOptions,
    scenario: &Scenario,
    plan: &Plan,
    seed: &Seed,
    run_dir: &Path,
) -> anyhow::Result<(Results, Vec<history::Operation>)> {
    let (history, target_name) = artifacts::record_inputs(options, scenario, plan, run_dir)?;

    let progress = if options.progress {
        ProgressBar::new(plan.ops.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(ProgressStyle::with_template(
        "{spinner} {prefix} [{elapsed_precise}] {bar:30} {pos}/{len} bookings settled · {msg}",
    )?);
    progress.set_prefix(scenario.name.clone());
    progress.enable_steady_tick(Duration::from_millis(200));
    progress.set_message("starting the stack");

    let target = match &options.target {
        TargetSpec::Embedded { postgres } => {
            let stack_options = embedded_options(options, scenario, seed, run_dir, postgres)?;
            Arc::new(Target::embedded(
                Stack::start(&options.exe, stack_options).await?,
            ))
        }
        TargetSpec::Remote(file) => Arc::new(Target::remote(file)?),
        TargetSpec::Shared { target, .. } => target.clone(),
    };
    let initial_points = match &options.target {
        TargetSpec::Embedded { .. } => seed.initial_points(),
        TargetSpec::Shared { initial_points, .. } => *initial_points,
        // A running stack's wallets are what it holds — another tool may have added some, as
        // `demo --target` does — so what payment holds before the run is the reference.
        TargetSpec::Remote(_) => target.seeded_points().await?,
    };
    let nemesis = Arc::new(Nemesis::new(target.clone(), history.clone())?);
    let client = Client::new(
        &target.endpoints.gateways(),
        target.endpoints.tokens.clone(),
        history.clone(),
    )?;
    let evidence = Evidence::new(&target.endpoints.telemetry, target.grafana_auth.as_deref())?;

    // The workload and the nemesis run in their own task: a panic there, or Ctrl-C here, still
    // reaches the cleanup below.
    let body = {
        let (target, nemesis, client, history, plan, progress) = (
            target.clone(),
            nemesis.clone(),
            client.clone(),
            history.clone(),
            plan.clone(),
            progress.clone(),
        );
        let settle_ms = scenario.workload.settle_ms;
        let spread_ms = scenario.workload.span_ms();
        let concurrency = scenario.workload.concurrency as usize;
        let seed = seed.clone();
        tokio::spawn(async move {
            preflight::preflight(&target, &client, &history, &plan, &seed, &progress).await?;
            schedule::schedule(
                &target,
                &nemesis,
                &client,
                &history,
                &plan,
                &progress,
                concurrency,
            )
            .await?;
            nemesis.cleanup().await;
            progress.set_message("faults healed; waiting for every booking to settle");
            let deadline = Duration::from_millis(spread_ms.max(plan.faults_end_ms()) + settle_ms);
            settle::settle(&target, &client, &history, &progress, deadline).await
        })
    };
    let abort = body.abort_handle();
    let outcome = tokio::select! {
        joined = body => match joined {
            Ok(result) => result,
            Err(error) => Err(anyhow::anyhow!("the run panicked: {error}")),
        },
        _ = tokio::signal::ctrl_c() => {
            abort.abort();
            Err(anyhow::anyhow!("interrupted (Ctrl-C)"))
        }
    };
    // Always: every proxy reset, every killed service restarted.
    nemesis.cleanup().await;
    if let Err(error) = outcome {
        progress.abandon_with_message(format!("aborted: {error:#}"));
        stop_unless_shared(options, &target).await;
        return Err(error);
    }

    progress.set_message("checking");
    let events = history.events();
    let ops = history::operations(&events);
    let input = checkers::Input {
        scenario,
        ops: &ops,
        events: &events,
        target: &target,
        evidence: &evidence,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?,
        initial_points,
        from_ms: history.started_unix_ms(),
        to_ms: history::unix_ms(),
    };
    let checkers::Checked {
        invariants,
        handling,
    } = checkers::check_all(&input).await;
    let verdict = checkers::overall(&invariants);
    let faults = report::fault_windows(&events);
    artifacts::annotate_faults(&evidence, &history, scenario, &faults).await;
    let results = Results {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        target: target_name,
        started_at_unix_ms: history.started_unix_ms(),
        duration_ms: history.now_ms(),
        verdict,
        exit_code: report::exit_code(verdict),
        operations: report::OpCounts::of(&ops),
        invariants,
        faults,
        handling,
    };
    report::write(run_dir, &results, scenario, &ops)?;
    progress.finish_with_message(results.verdict.as_str());
    stop_unless_shared(options, &target).await;
    Ok((results, ops))
}

/// Stops the stack the run started; a shared one is its owner's to stop.
async fn stop_unless_shared(options: &RunOptions, target: &Target) {
    if !matches!(options.target, TargetSpec::Shared { .. }) {
        target.stop().await;
    }
}

/// The embedded stack a scenario asks for: its `[stack]` settings, its catalogue, room in the
/// capture for its whole workload.
fn embedded_options(
    options: &RunOptions,
    scenario: &Scenario,
    seed: &Seed,
    run_dir: &Path,
    postgres: &Option<String>,
) -> anyhow::Result<StackOptions> {
    let mut stack_options = StackOptions::new(run_dir.join("stack"));
    stack_options.postgres = postgres.clone();
    stack_options.saga = serde_json::Value::Object(scenario.stack.saga.clone());
    stack_options.admission = serde_json::Value::Object(scenario.stack.admission.clone());
    stack_options.seed = seed.clone();
    stack_options.replicas = scenario.stack.replicas.unwrap_or(1);
    // Room for every span and line of the workload (about 25 spans and 10 lines per
    // settled booking, a few per refused one), ten times over: the traces and logs
    // checkers read them after the run, and an evicted span would read as a broken trace.
    stack_options.capture_retention = faultline_capture::store::Retention::default()
        .at_least(250 * scenario.workload.bookings as usize);
    if scenario.stack.load_seats.is_some() {
        // Open-loop load: admission control, not the per-user rate limit, decides.
        stack_options.rate_limit = (10_000, 10_000);
    }
    let mut kafka = serde_json::Map::new();
    if let Some(idempotent) = scenario.stack.idempotent_producer {
        kafka.insert("idempotent_producer".into(), idempotent.into());
    }
    if let Some(session) = scenario.stack.session_timeout_ms {
        kafka.insert("session_timeout_ms".into(), session.into());
    }
    if !scenario.stack.kafka.is_empty() {
        kafka.insert("extra".into(), serde_json::to_value(&scenario.stack.kafka)?);
    }
    stack_options.kafka = serde_json::Value::Object(kafka);
    if options.break_inbox_for_test {
        stack_options.env.push((
            faultline_kit::messaging::consumer::DISABLE_DEDUPE_FOR_TEST.into(),
            "1".into(),
        ));
    }
    Ok(stack_options)
}

/// The scenario files in `dir`, sorted.
pub fn scenario_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The worst of several exit codes: aborted > violated > unknown > pass.
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes
        .into_iter()
        .max_by_key(|code| match *code {
            report::EXIT_ABORTED => 3,
            report::EXIT_VIOLATED => 2,
            report::EXIT_UNKNOWN => 1,
            _ => 0,
        })
        .unwrap_or(report::EXIT_PASS)
}

/// Reads what `faultline replay` needs from a run directory: the scenario as it ran (with its
/// seed) and how the target was chosen.
pub fn replay_source(
    run_dir: &Path,
) -> anyhow::Result<(PathBuf, BTreeMap<String, serde_json::Value>)> {
    let scenario = run_dir.join("scenario.toml");
    anyhow::ensure!(
        scenario.exists(),
        "{} holds no scenario.toml: not a run directory",
        run_dir.display()
    );
    let run: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json"))?)?;
    Ok((scenario, run))
}

/// The target a recorded run ran against (from its `run.json`): the embedded stack (on
/// `postgres` when given) or the same target file.
pub fn recorded_target(
    recorded: &BTreeMap<String, serde_json::Value>,
    postgres: Option<String>,
) -> TargetSpec {
    match recorded.get("target").and_then(|t| t.as_str()) {
        Some("embedded") | None => TargetSpec::Embedded { postgres },
        Some(file) => TargetSpec::Remote(PathBuf::from(file)),
    }
}

/// Whether a recorded run ran the deliberately broken build (`--break-inbox-for-test`).
pub fn recorded_broken_inbox(recorded: &BTreeMap<String, serde_json::Value>) -> bool {
    recorded
        .get("break_inbox_for_test")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}
