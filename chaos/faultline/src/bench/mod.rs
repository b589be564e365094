//! `faultline bench`: a load generator built into the launcher — an open-loop booking load
//! through the gateway at a fixed rate (or a climb to the highest sustainable one), with latency
//! histograms, per-process CPU and memory, service backlogs and the invariants' verdict.
//!
//! - [`workload`]: the bookings to make — a generated catalogue, a `--seed` file's, or a
//!   running target's free seats — each on its own seat, by a user who can afford it.
//! - [`load`]: the open-loop sender (intended send times, no retries, one pooled client).
//! - [`figures`]: the drain, and from answers + reservation's bookings to rates, outcomes and
//!   latencies (hdrhistogram, coordinated-omission corrected).
//! - [`procs`]: per-process CPU seconds and resident memory over a window, from `/proc`.
//! - [`lag`]: every service's `/admin/load`, sampled each second (peak and final).
//! - [`step`]: one load phase end to end, the unit of a run and of each find-max rung.
//! - [`find_max`]: the rate ladder and what "sustained" means.
//! - [`report`]: `bench.json` and the terminal tables.
//!
//! With `--target FILE` (an `endpoints.json` from `faultline up`) the bench books as the users
//! the file has tokens for, on the seats its inventory lists as AVAILABLE, within its wallets'
//! balances; it does not take `--seed` (the target's catalogue is read from the target), and
//! invariant 2 starts from the total payment reports it seeded.

pub mod figures;
pub mod find_max;
pub mod lag;
pub mod load;
pub mod procs;
pub mod report;
pub mod step;
pub mod workload;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use faultline_harness::invariants::{self, ServiceUrls, Violation};

use self::{
    find_max::{Ladder, StepReport},
    procs::{Tree, Window},
    report::{BenchReport, Verdict},
    step::{Context, Phase, StepFigures},
    workload::Booking,
};
use crate::{
    endpoints::Endpoints,
    seed::Seed,
    stack::{Stack, StackOptions},
};

/// The per-user rate limit of a benched stack: far above any bench rate, so what refuses load
/// is the gateway's admission control, not one user's quota (the bench has only 100 users).
const RATE_LIMIT: (u32, u32) = (10_000, 10_000);
/// Before measuring idle: consumer groups finish joining and start-up work settles, so idle
/// means the steady state rather than the tail of start-up.
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// The least time a drain may take before sagas still pending are judged as such.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// A stack the bench starts (and stops) with these options; seeded from `seed_file`, or
    /// with a catalogue generated for the run.
    Embedded {
        stack: Box<StackOptions>,
        seed_file: Option<PathBuf>,
    },
    /// A running stack's `endpoints.json`.
    Remote(PathBuf),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub target: TargetSpec,
    /// The faultline binary the embedded services run from.
    pub exe: PathBuf,
    pub rate: f64,
    /// Seconds of load; 0 for none (with `idle_s`, an idle measurement alone).
    pub duration_s: f64,
    /// Climb this ladder instead of one phase at `rate`.
    pub find_max: Option<Ladder>,
    /// Seconds of no load to measure before the load; 0 for none.
    pub idle_s: f64,
    pub deadline_ms: u64,
    /// The invocation, for the report.
    pub command: String,
    pub show_progress: bool,
}

/// Runs the bench; the caller writes and prints the report.
pub async fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        options.rate.is_finite() && options.rate > 0.0,
        "--rate must be a positive number"
    );
    anyhow::ensure!(
        options.duration_s.is_finite() && options.duration_s >= 0.0,
        "--duration must be 0 or more seconds"
    );
    if let Some(ladder) = &options.find_max {
        anyhow::ensure!(
            ladder.start >= 1.0 && ladder.factor >= 1.0 && ladder.step_s > 0.0,
            "--find-max needs --start-rate ≥ 1, --step-factor ≥ 1 and --step-duration > 0"
        );
        anyhow::ensure!(
            !ladder.rates().is_empty(),
            "--max-rate {} is below --start-rate {}: there is no step to run",
            ladder.max,
            ladder.start
        );
    }
    raise_open_files_limit();
    let needed = match (&options.find_max, options.duration_s > 0.0) {
        (Some(ladder), _) => ladder.total_bookings(),
        (None, true) => find_max::bookings_for(options.rate, options.duration_s),
        (None, false) => 0,
    };
    match options.target.clone() {
        TargetSpec::Embedded { stack, seed_file } => {
            embedded(&options, *stack, seed_file.as_deref(), needed).await
        }
        TargetSpec::Remote(file) => remote(&options, &file, needed).await,
    }
}

/// Seeds and starts a stack, measures it, stops it.
async fn embedded(
    options: &BenchOptions,
    mut stack_options: StackOptions,
    seed_file: Option<&Path>,
    needed: u64,
) -> anyhow::Result<BenchReport> {
    let (seed, catalogue) = match seed_file {
        Some(path) => (Seed::load(path)?, format!("seed file {}", path.display())),
        None => {
            let seed = workload::generated_seed(needed);
            let description = format!(
                "generated: {} users, {} seats",
                seed.users.len(),
                seed.seat_count()
            );
            (seed, description)
        }
    };
    // Checked before anything starts: a too-small seed fails in a second, not a minute.
    let bookings = plan_from_seed(&seed, needed)?;
    stack_options.seed = seed.clone();
    stack_options.rate_limit = RATE_LIMIT;
    let telemetry = if stack_options.telemetry { "on" } else { "off" };
    let postgres = stack_options.postgres.is_some();
    remove_previous_report(&stack_options.run_dir)?;
    let mut stack = Stack::start(&options.exe, stack_options).await?;
    let context = Context {
        http: load::client()?,
        endpoints: stack.endpoints().clone(),
        tree: Tree {
            root: Some(std::process::id()),
            root_name: procs::CLIENT,
            postgres,
        },
        run_id: run_id(),
        show_progress: options.show_progress,
        drain_limit: drain_limit(options.deadline_ms),
    };
    let measured = measure(&context, options, &bookings, Some(seed.initial_points())).await;
    stack.stop(Duration::from_secs(10));
    let header = Header {
        target: "embedded".into(),
        telemetry: telemetry.into(),
        catalogue,
    };
    Ok(assemble(options, &context.endpoints, header, measured?))
}

/// Measures a running stack.
async fn remote(options: &BenchOptions, file: &Path, needed: u64) -> anyhow::Result<BenchReport> {
    let http = load::client()?;
    let endpoints = read_endpoints(file)?;
    let bookings = if needed > 0 {
        workload::from_target(&http, &endpoints, needed).await?
    } else {
        Vec::new()
    };
    // pid 0 would make the "tree" every process on the machine.
    let launcher = (endpoints.launcher_pid != 0
        && Path::new(&format!("/proc/{}", endpoints.launcher_pid)).exists())
    .then_some(endpoints.launcher_pid);
    let context = Context {
        http,
        endpoints: endpoints.clone(),
        tree: Tree {
            root: launcher,
            root_name: "launcher",
            postgres: endpoints.database == "postgres",
        },
        run_id: run_id(),
        show_progress: options.show_progress,
        drain_limit: drain_limit(options.deadline_ms),
    };
    let measured = measure(&context, options, &bookings, None).await?;
    let header = Header {
        target: file.display().to_string(),
        // What the file says: a stack with telemetry URLs exports to them.
        telemetry: if endpoints.telemetry.is_empty() {
            "off"
        } else {
            "on"
        }
        .into(),
        catalogue: format!("target: {}", workload::describe(&bookings)),
    };
    Ok(assemble(options, &endpoints, header, measured))
}

fn plan_from_seed(seed: &Seed, needed: u64) -> anyhow::Result<Vec<Booking>> {
    if needed == 0 {
        return Ok(Vec::new());
    }
    workload::from_seed(seed, needed)
}

/// What was measured, before it becomes a report.
struct Measured {
    idle: Option<Window>,
    single: Option<StepFigures>,
    steps: Vec<StepReport>,
    max_sustained: Option<f64>,
    violations: Vec<Violation>,
}

/// How the run was set up, for the report's header.
struct Header {
    target: String,
    telemetry: String,
    catalogue: String,
}

/// Idle, then the load (one phase or the climb), then the invariants.
async fn measure(
    context: &Context,
    options: &BenchOptions,
    bookings: &[Booking],
    initial_points: Option<i64>,
) -> anyhow::Result<Measured> {
    let idle = if options.idle_s > 0.0 {
        let spinner = if context.show_progress {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        spinner.enable_steady_tick(Duration::from_millis(200));
        spinner.set_message(format!("idle: {:.0} s of no load", options.idle_s));
        tokio::time::sleep(IDLE_SETTLE).await;
        let before = context.tree.snapshot();
        tokio::time::sleep(Duration::from_secs_f64(options.idle_s)).await;
        let window = procs::between(&before, &context.tree.snapshot());
        spinner.finish_with_message(format!(
            "idle: the stack used {:.1} % of one core",
            window.stack_cpu_pct_of_core
        ));
        Some(window)
    } else {
        None
    };
    let (mut single, mut steps, mut max_sustained) = (None, Vec::new(), None);
    if let Some(ladder) = options.find_max {
        (steps, max_sustained) =
            find_max::run(context, ladder, bookings, options.deadline_ms).await?;
    } else if !bookings.is_empty() {
        let label = format!("{}/s for {} s", options.rate, options.duration_s);
        single = Some(
            step::run(
                context,
                Phase {
                    label: &label,
                    rate: options.rate,
                    duration_s: options.duration_s,
                    bookings,
                    first_index: 0,
                },
            )
            .await?,
        );
    }
    let urls = ServiceUrls {
        reservation: context.endpoints.service("reservation"),
        inventory: context.endpoints.service("inventory"),
        payment: context.endpoints.service("payment"),
    };
    let snapshot = invariants::snapshot(&context.http, urls).await?;
    let initial = initial_points.unwrap_or(snapshot.payment.initial_total);
    Ok(Measured {
        idle,
        single,
        steps,
        max_sustained,
        violations: invariants::check(&snapshot, initial),
    })
}

fn assemble(
    options: &BenchOptions,
    endpoints: &Endpoints,
    header: Header,
    m: Measured,
) -> BenchReport {
    let (rate, duration_s) = match &options.find_max {
        Some(ladder) => (ladder.start, ladder.step_s),
        None => (options.rate, options.duration_s),
    };
    BenchReport {
        command: options.command.clone(),
        target: header.target,
        database: endpoints.database.clone(),
        telemetry: header.telemetry,
        catalogue: header.catalogue,
        rate,
        duration_s,
        deadline_ms: options.deadline_ms,
        idle: m.idle,
        figures: m.single.or_else(|| report::headline(&m.steps)),
        steps: m.steps,
        max_sustained_per_s: m.max_sustained,
        invariants: Verdict::of(&m.violations),
    }
}

fn read_endpoints(file: &Path) -> anyhow::Result<Endpoints> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading target {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("target {} is not an endpoints file", file.display()))
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

fn drain_limit(deadline_ms: u64) -> Duration {
    DRAIN_LIMIT.max(Duration::from_millis(deadline_ms.saturating_mul(2)))
}

/// The stack refuses to wipe a run directory holding files it did not write; an earlier
/// bench's report is ours, so it goes first.
fn remove_previous_report(run_dir: &Path) -> anyhow::Result<()> {
    let previous = run_dir.join("bench.json");
    if previous.exists() {
        std::fs::remove_file(&previous)
            .with_context(|| format!("removing the previous {}", previous.display()))?;
    }
    Ok(())
}

/// Each in-flight request holds a socket in the bench and one in the gateway (the services
/// inherit this limit): the usual soft limit of 1,024 would turn a backlog into connect errors.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, soft, hard, "could not raise the open-files limit");
    }
}
