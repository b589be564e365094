//! `faultline`: start the embedded system (`up`), run the demo workload against it (`demo`),
//! run chaos scenarios (`run`, `run --all`, `replay`, `replay --shrink`), measure it under load
//! (`bench`), judge a running stack's invariants 1–3 (`check`).

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use faultline::{
    demo,
    stack::{Stack, StackOptions},
};

#[derive(Parser)]
#[command(name = "faultline", about = "The Faultline booking-saga lab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct StackArgs {
    /// Where databases, logs, configs and endpoints.json go (wiped at start).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Use this PostgreSQL server (admin URL) instead of SQLite files: one fresh database per
    /// service.
    #[arg(long, env = "FAULTLINE_POSTGRES_URL")]
    postgres: Option<String>,
}

impl StackArgs {
    fn options(self, default_dir: &str) -> StackOptions {
        let mut options =
            StackOptions::new(self.run_dir.unwrap_or_else(|| PathBuf::from(default_dir)));
        options.postgres = self.postgres;
        options
    }
}

#[derive(clap::Args)]
struct DemoArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The fast mixed workload (no faults) with an outcome table, instead of the tour.
    #[arg(long)]
    quick: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// Play the tour on a running stack (compose, or another `faultline up`) described by this
    /// target file, instead of starting one: the tour adds users and concerts of its own (the
    /// tokens are signed with $FAULTLINE_JWT_SECRET, the gateway's secret), links go to Grafana
    /// when the file names it, and the act that kills a process is skipped.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["quick", "postgres"])]
    target: Option<PathBuf>,
}

/// How many processes each service runs as and how many partitions each topic has.
#[derive(clap::Args)]
struct ScaleArgs {
    /// Processes per service (reservation, inventory, payment, analytics, gateway), sharing each
    /// service's database and the broker; every link's proxy spreads connections over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    replicas: u32,
    /// Partitions of every topic: at most this many replicas of a consumer get work.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=64))]
    partitions: i32,
}

impl ScaleArgs {
    fn apply(&self, options: &mut StackOptions) {
        options.replicas = self.replicas;
        options.partitions = self.partitions;
    }
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    scale: ScaleArgs,
    /// Seed users, wallets and the catalogue from this TOML file instead of the demo's.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Telemetry {
    On,
    Off,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Where the embedded stack's databases, logs and configs go, and bench.json.
    #[arg(long, default_value = ".faultline/bench")]
    run_dir: PathBuf,
    /// Use this PostgreSQL server (admin URL) instead of SQLite files (embedded stack only).
    #[arg(long, env = "FAULTLINE_POSTGRES_URL")]
    postgres: Option<String>,
    /// Load a running stack described by this endpoints.json (from `faultline up`) instead of
    /// starting one: books as its users, on its AVAILABLE seats, within its wallets.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["seed", "telemetry"])]
    target: Option<PathBuf>,
    /// Seed the embedded stack from this TOML file (it must hold enough seats and points for
    /// the run); without it a catalogue big enough for the run is generated.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Bookings per second, sent open-loop (each on schedule, whatever earlier answers do).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of load (0: none, e.g. with --idle alone).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Climb from --start-rate by --step-factor until a step is not sustained (or past
    /// --max-rate); report the highest sustained rate.
    #[arg(long)]
    find_max: bool,
    /// Find-max: the first step's rate, per second (--rate and --duration are not used).
    #[arg(long, default_value_t = 50.0, requires = "find_max")]
    start_rate: f64,
    /// Find-max: each step's rate is the previous one's times this (rounded, at least +1/s).
    #[arg(long, default_value_t = 1.25, requires = "find_max")]
    step_factor: f64,
    /// Find-max: the highest rate tried (the generated catalogue is sized for every step).
    #[arg(long, default_value_t = 1_000.0, requires = "find_max")]
    max_rate: f64,
    /// Find-max: seconds of load per step (each followed by a drain and a 2 s pause).
    #[arg(long, default_value_t = 15.0, requires = "find_max")]
    step_duration: f64,
    /// The saga deadline: a sustained rate keeps p99 saga latency within it.
    #[arg(long, default_value_t = 10_000)]
    deadline_ms: u64,
    /// Before the load, measure this many seconds of no load (per-process CPU).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    idle: f64,
    /// Whether the services export spans and log lines (embedded stack; default on).
    #[arg(long, value_enum)]
    telemetry: Option<Telemetry>,
    /// Write the report here instead of RUN_DIR/bench.json.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    scale: ScaleArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start the broker and the five services; print the endpoints and a token; stop on Ctrl-C.
    Up(UpArgs),
    /// Start the system and play the tour: five narrated acts (bookings that succeed, payment
    /// slowed down, payment partitioned, duplicate deliveries, a service killed), each with
    /// bookings worth opening and its invariant verdicts. Exits 0 only if every invariant held.
    /// With --quick: the fast mixed workload and its outcome table instead.
    Demo(DemoArgs),
    /// Run chaos scenarios and judge every invariant. Exit code: 0 pass, 1 violated, 2 unknown,
    /// 3 aborted (the worst over all scenarios run).
    Run(RunArgs),
    /// Run a recorded run's scenario again with the same seed (and the same kind of target). With
    /// --shrink, search a failing run for a smaller plan that still fails and write it as a
    /// scenario file (exit 1 when written).
    Replay {
        /// A run directory (`runs/<scenario>/<timestamp>`).
        run_dir: PathBuf,
        /// Search for a smaller plan (fewer bookings, fewer and shorter faults) that fails the
        /// same invariants, running each candidate; write it as a scenario file with an explicit
        /// plan.
        #[arg(long)]
        shrink: bool,
        /// --shrink: run at most this many candidates (each a full run, 10–30 s).
        #[arg(
            long,
            default_value_t = faultline::chaos::shrink::DEFAULT_MAX_ATTEMPTS,
            requires = "shrink"
        )]
        max_attempts: u32,
        /// --shrink: write the scenario file here instead of RUN_DIR/shrunk.toml.
        #[arg(long, value_name = "FILE", requires = "shrink")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: RunCommon,
    },
    /// Print the JSON Schema of scenario files.
    ScenarioSchema,
    /// Drive an open-loop booking load through the gateway and report throughput, latency
    /// percentiles, per-process CPU and memory, backlogs and invariants 1–3 (also to
    /// bench.json). Exits 0 only if the invariants hold.
    Bench(BenchArgs),
    /// Judge invariants 1–3 of a running stack (the `endpoints.json` of `faultline up`): wait up
    /// to --settle seconds for every saga to finish, then check seats, points and leftovers from
    /// the services' admin endpoints. Exit code: 0 hold, 1 violated.
    Check {
        /// The running stack's `endpoints.json`.
        #[arg(long)]
        target: PathBuf,
        /// Seconds to wait for sagas in flight to finish before judging.
        #[arg(long, default_value_t = 60)]
        settle: u64,
    },
    /// Run one service in this process (how `up` starts its children).
    #[command(hide = true)]
    Service { name: String },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario files or names (a name is looked up in --scenarios).
    scenarios: Vec<String>,
    /// Run every scenario in --scenarios.
    #[arg(long)]
    all: bool,
    /// Where scenario names are looked up.
    #[arg(long, default_value = "chaos/scenarios", env = "FAULTLINE_SCENARIOS")]
    scenarios_dir: PathBuf,
    /// A running stack (compose) described by a target file, instead of the embedded stack.
    #[arg(long)]
    target: Option<PathBuf>,
    /// Run on this seed instead of the scenario file's (recorded in the run directory, so
    /// `replay` reproduces it).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A seed sweep: `N` runs per scenario on its file's seed and the N−1 after it, or the seeds
    /// `A..B` (B excluded) or `A..=B`; ends with a summary of passes, failures and unknowns per
    /// scenario and the run directory of every run that did not pass.
    #[arg(long, value_name = "N|A..B")]
    seeds: Option<faultline::chaos::sweep::Seeds>,
    #[command(flatten)]
    common: RunCommon,
}

#[derive(clap::Args)]
struct RunCommon {
    /// Where runs are written (`<runs>/<scenario>/<timestamp>/`).
    #[arg(long, default_value = "runs", env = "FAULTLINE_RUNS")]
    runs: PathBuf,
    /// For the embedded stack: PostgreSQL (admin URL) instead of SQLite files.
    #[arg(long, env = "FAULTLINE_POSTGRES_URL")]
    postgres: Option<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Multiplies the rates of open-loop scenarios (`workload.phases`, e.g. `overload`, sized
    /// for a release build on two cores). The test suite runs its debug build with 0.5: a debug
    /// build sustains well under half a release build's rate, so that is still an overload. The
    /// run directory records the scaled scenario, so `replay` needs no flag.
    #[arg(long, default_value_t = 1.0)]
    load_scale: f64,
    /// Test-only: start the embedded services with inbox deduplication switched off (a
    /// deliberately broken build, to show the exactly-once checker failing).
    #[arg(long, hide = true)]
    break_inbox_for_test: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, Command::Service { .. }) {
        // A stack is six or more processes on a couple of cores: one async worker each (plus
        // the threads librdkafka, sqlx's SQLite worker and the exporters bring) measured less
        // CPU and a third of the saga latency than a worker per core, whose work stealing
        // mostly wakes threads (bench at 100/s: p50 136 ms vs 655 ms, CPU 147 % vs 153 %).
        // TOKIO_WORKER_THREADS still overrides it.
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            builder.worker_threads(1);
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faultline: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Service { name } => faultline::services::run(&name).await.map(|()| 0),
            Command::Up(args) => match up_options(args) {
                Ok(options) => up(options).await.map(|()| 0),
                Err(error) => Err(error),
            },
            Command::Bench(args) => bench(args).await,
            Command::Demo(args) if args.quick => demo(args.stack.options(".faultline/demo"))
                .await
                .map(|passed| if passed { 0 } else { 1 }),
            Command::Demo(args) => {
                init_logging();
                let run_dir = args
                    .stack
                    .run_dir
                    .unwrap_or_else(faultline::demo::tour::default_run_dir);
                let stage = match args.target {
                    Some(file) => faultline::demo::tour::Stage::Running(file),
                    None => faultline::demo::tour::Stage::Embedded {
                        postgres: args.stack.postgres,
                    },
                };
                faultline::demo::tour::play(&run_dir, stage, !args.quiet)
                    .await
                    .map(|passed| if passed { 0 } else { 1 })
            }
            Command::Run(args) => chaos_run(args).await,
            Command::Replay {
                run_dir,
                shrink: true,
                max_attempts,
                out,
                common,
            } => shrink(run_dir, max_attempts, out, common).await,
            Command::Replay {
                run_dir, common, ..
            } => replay(run_dir, common).await,
            Command::ScenarioSchema => print_schema().map(|()| 0),
            Command::Check { target, settle } => check(&target, Duration::from_secs(settle)).await,
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("faultline: {error:#}");
            std::process::ExitCode::from(3)
        }
    }
}

/// `faultline check`: invariants 1–3 of a running stack, once its sagas have settled. The
/// initial points are the ones payment reports it was seeded with (a running stack's seed file
/// is not at hand); the judge is the one `demo --quick` and `bench` use.
#[allow(clippy::print_stdout)]
async fn check(target: &std::path::Path, settle: Duration) -> anyhow::Result<u8> {
    use faultline_harness::invariants::{self, ServiceUrls};
    let endpoints: faultline::endpoints::Endpoints =
        serde_json::from_slice(&std::fs::read(target)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    let urls = ServiceUrls {
        reservation: endpoints.service("reservation"),
        inventory: endpoints.service("inventory"),
        payment: endpoints.service("payment"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let deadline = std::time::Instant::now() + settle;
    let snapshot = loop {
        let snapshot = invariants::snapshot(&http, urls).await?;
        let settled = snapshot.reservation.pending == 0
            && snapshot.inventory.held == 0
            && snapshot.reservation.outbox_unpublished == 0;
        if settled || std::time::Instant::now() >= deadline {
            break snapshot;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let violations = invariants::check(&snapshot, snapshot.payment.initial_total);
    println!(
        "bookings {} (confirmed {}, cancelled {}, rejected {}, pending {}); seats sold {}, held {}; \
         points {} of {} in wallets",
        snapshot.bookings.len(),
        snapshot.reservation.confirmed,
        snapshot.reservation.cancelled,
        snapshot.reservation.rejected,
        snapshot.reservation.pending,
        snapshot.inventory.sold,
        snapshot.inventory.held,
        snapshot.payment.balance_total,
        snapshot.payment.initial_total,
    );
    for violation in &violations {
        println!(
            "invariant {} violated: {}",
            violation.invariant, violation.detail
        );
    }
    if violations.is_empty() {
        println!("invariants 1-3 hold");
        Ok(0)
    } else {
        Ok(1)
    }
}

#[allow(clippy::print_stdout)]
fn print_schema() -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&faultline::chaos::scenario::schema())?
    );
    Ok(())
}

/// `faultline run`: every scenario asked for, one after the other, each on its own fresh
/// embedded stack (or against the target). Returns the worst exit code.
async fn chaos_run(args: RunArgs) -> anyhow::Result<u8> {
    use faultline::chaos::run;
    init_logging();
    let mut files = Vec::new();
    if args.all {
        files.extend(run::scenario_files(&args.scenarios_dir)?);
    }
    for name in &args.scenarios {
        let path = PathBuf::from(name);
        files.push(if path.exists() {
            path
        } else {
            args.scenarios_dir.join(format!("{name}.toml"))
        });
    }
    anyhow::ensure!(
        !files.is_empty(),
        "name a scenario (e.g. `faultline run payment-latency`) or pass --all"
    );
    let target = match args.target {
        Some(file) => run::TargetSpec::Remote(file),
        None => run::TargetSpec::Embedded {
            postgres: args.common.postgres.clone(),
        },
    };
    let seeds = match (args.seed, args.seeds) {
        (Some(seed), _) => faultline::chaos::sweep::Seeds::One(seed),
        (None, Some(seeds)) => seeds,
        (None, None) => faultline::chaos::sweep::Seeds::Own,
    };
    run_scenarios(files, target, &args.common, &seeds).await
}

/// `faultline replay <run dir>`: the recorded scenario (with its seed) against the same kind
/// of target; says whether the plan came out identical.
async fn replay(run_dir: PathBuf, mut common: RunCommon) -> anyhow::Result<u8> {
    use faultline::chaos::run;
    init_logging();
    let (scenario, recorded) = run::replay_source(&run_dir)?;
    // A run of the deliberately broken build replays broken.
    common.break_inbox_for_test |= run::recorded_broken_inbox(&recorded);
    let parsed = faultline::chaos::scenario::Scenario::load(&scenario)?;
    let plan = faultline::chaos::generator::plan(&parsed, &parsed.catalogue())?;
    let recorded_plan: faultline::chaos::generator::Plan =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json"))?)?;
    anyhow::ensure!(
        plan == recorded_plan,
        "seed {} no longer yields the recorded plan (the generator or the seeded catalogue changed)",
        parsed.seed
    );
    eprintln!(
        "faultline: replaying {} with seed {}: the same plan ({} operations, {} faults){}",
        parsed.name,
        parsed.seed,
        plan.ops.len(),
        plan.faults.len(),
        if common.break_inbox_for_test {
            " on the broken-inbox build"
        } else {
            ""
        }
    );
    let target = run::recorded_target(&recorded, common.postgres.clone());
    let code = run_scenarios(
        vec![scenario],
        target,
        &common,
        &faultline::chaos::sweep::Seeds::Own,
    )
    .await?;
    Ok(code)
}

/// `faultline replay --shrink <run dir>`: a smaller plan that still fails, written as a scenario
/// file; one line per attempt. Exit 1 (violated) once written; an error if the run did not fail.
#[allow(clippy::print_stdout)]
async fn shrink(
    run_dir: PathBuf,
    max_attempts: u32,
    out: Option<PathBuf>,
    common: RunCommon,
) -> anyhow::Result<u8> {
    use std::io::Write as _;

    use faultline::chaos::{report, shrink};
    init_logging();
    let options = shrink::ShrinkOptions {
        run_dir,
        runs_dir: common.runs.clone(),
        postgres: common.postgres.clone(),
        exe: std::env::current_exe()?,
        // One line per attempt is the progress; a bar per run would interleave with it.
        progress: false,
        break_inbox_for_test: common.break_inbox_for_test,
        max_attempts,
        out,
    };
    eprintln!(
        "faultline: shrinking {} (at most {max_attempts} attempts, each a full run)",
        options.run_dir.display()
    );
    let shrunk = shrink::shrink(&options, |progress| match progress {
        shrink::Progress::Trying {
            number,
            max,
            step,
            size,
        } => {
            print!("attempt {number}/{max}: {step} → {size} … ");
            let _ = std::io::stdout().flush();
        }
        shrink::Progress::Confirming { size } => {
            print!("confirming {size} (it must fail again) … ");
            let _ = std::io::stdout().flush();
        }
        shrink::Progress::Tried {
            still_fails,
            outcome,
            run_dir,
        } => {
            let kept = if still_fails { "kept" } else { "rejected" };
            match run_dir {
                Some(dir) => println!("{outcome}: {kept} ({})", dir.display()),
                None => println!("{outcome}: {kept}"),
            }
        }
    })
    .await?;
    let invariants: Vec<&str> = shrunk.invariants.iter().map(|i| i.name()).collect();
    println!(
        "shrunk from {} to {} in {} attempts{}; it fails {}",
        shrunk.original,
        shrunk.shrunk,
        shrunk.attempts,
        if shrunk.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        invariants.join(", ")
    );
    let flag = if shrunk.broken_inbox {
        " --break-inbox-for-test"
    } else {
        ""
    };
    println!(
        "scenario written to {}  (run it: faultline run {}{flag})",
        shrunk.file.display(),
        shrunk.file.display()
    );
    println!(
        "failing run: {}  (faultline replay {})",
        shrunk.failing_run.display(),
        shrunk.failing_run.display()
    );
    Ok(report::EXIT_VIOLATED)
}

#[allow(clippy::print_stdout)]
async fn run_scenarios(
    files: Vec<PathBuf>,
    target: faultline::chaos::run::TargetSpec,
    common: &RunCommon,
    seeds: &faultline::chaos::sweep::Seeds,
) -> anyhow::Result<u8> {
    use faultline::chaos::{report, run, scenario::Scenario, sweep};
    let mut summary = comfy_table::Table::new();
    summary
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(["scenario", "seed", "verdict", "exit", "run directory"]);
    let mut sweep = sweep::Sweep::default();
    let mut codes = Vec::new();
    for file in files {
        // A file that does not load runs once on its own seed and aborts with the reason.
        let own = Scenario::load(&file).map(|s| s.seed);
        let runs: Vec<Option<u64>> = match &own {
            Ok(own) if *seeds != sweep::Seeds::Own => {
                seeds.for_scenario(*own).into_iter().map(Some).collect()
            }
            _ => vec![None],
        };
        for seed in runs {
            let options = run::RunOptions {
                scenario: file.clone(),
                runs_dir: common.runs.clone(),
                target: target.clone(),
                exe: std::env::current_exe()?,
                progress: !common.quiet,
                break_inbox_for_test: common.break_inbox_for_test,
                load_scale: common.load_scale,
                seed,
            };
            let outcome = run::run(&options).await;
            let verdict = match (&outcome.results, &outcome.error) {
                (Some(results), _) => {
                    println!("{}", report::table(results));
                    results.verdict.as_str().to_owned()
                }
                (None, Some(error)) => {
                    eprintln!("faultline: {} aborted: {error}", file.display());
                    "ABORTED".to_owned()
                }
                (None, None) => "ABORTED".to_owned(),
            };
            let seed = seed.or_else(|| own.as_ref().ok().copied());
            summary.add_row([
                outcome.scenario.clone(),
                seed.map(|s| s.to_string()).unwrap_or_default(),
                verdict,
                outcome.exit_code.to_string(),
                outcome
                    .run_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            ]);
            sweep.record(
                &outcome.scenario,
                sweep::SweepRun {
                    seed: seed.unwrap_or_default(),
                    exit_code: outcome.exit_code,
                    run_dir: outcome.run_dir.clone(),
                },
            );
            codes.push(outcome.exit_code);
        }
    }
    println!("{summary}");
    if seeds.is_sweep() {
        println!("Seed sweep:\n{}", sweep.table());
    }
    Ok(run::worst_exit(codes))
}

fn init_logging() {
    let _ = faultline_kit::telemetry::init_with_default_filter("faultline", "warn");
}

#[allow(clippy::print_stdout)]
async fn up(options: StackOptions) -> anyhow::Result<()> {
    init_logging();
    let started = std::time::Instant::now();
    let shutdown = faultline_kit::shutdown::on_signal();
    let seed = options.seed.clone();
    eprintln!(
        "faultline: starting the broker and five services in {} …",
        options.run_dir.display()
    );
    let mut stack = Stack::start(&std::env::current_exe()?, options).await?;
    let endpoints = stack.endpoints().clone();
    println!(
        "Faultline is up (ready in {:.1} s).",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("  gateway     {}", endpoints.gateway_url);
    for (name, url) in endpoints
        .services
        .iter()
        .filter(|(name, _)| *name != "gateway")
    {
        println!("  {name:<11} {url}");
    }
    println!("  broker      {}  (through its proxy)", endpoints.broker);
    if let Some(toxiproxy) = &endpoints.toxiproxy_url {
        println!("  toxiproxy   {toxiproxy}  (Toxiproxy API: every link is a proxy)");
    }
    if let Some(capture) = endpoints.telemetry.get("tempo") {
        println!(
            "  telemetry   {capture}  (capture: Tempo /api/traces, /api/search; Loki /loki/api/v1/query_range)"
        );
    }
    if let Some(viewer) = endpoints.telemetry.get("viewer") {
        println!("  viewer      {viewer}  (traces and their log lines in a browser)");
    }
    println!("  database    {}", endpoints.database);
    println!(
        "  endpoints   {}",
        stack.run_dir().join("endpoints.json").display()
    );
    println!();
    let user = seed
        .users
        .first()
        .map(|u| u.user_id.clone())
        .unwrap_or_default();
    let seat = seed
        .concerts
        .iter()
        .flat_map(|c| &c.schedules)
        .next()
        .and_then(|s| faultline::seed::Seed::seat_ids(s).into_iter().next())
        .unwrap_or_default();
    let token = endpoints.tokens.get(&user).cloned().unwrap_or_default();
    println!("Try it ({user}):");
    println!("  export TOKEN={token}");
    println!(
        "  curl -s -XPOST {}/bookings -H \"authorization: Bearer $TOKEN\" -H 'idempotency-key: first-try' \\\n       -H 'content-type: application/json' -d '{{\"seat_id\":\"{seat}\"}}'",
        endpoints.gateway_url
    );
    println!(
        "  curl -s {}/me/bookings -H \"authorization: Bearer $TOKEN\"",
        endpoints.gateway_url
    );
    if let Some(viewer) = endpoints.telemetry.get("viewer") {
        println!("  open {viewer} — the booking's trace, its spans and log lines");
    }
    println!();
    println!("Ctrl-C (or SIGTERM) stops everything.");
    let mut reported = std::collections::BTreeSet::new();
    while !shutdown.is_cancelled() {
        for (name, status) in stack.exited() {
            if reported.insert(name.clone()) {
                eprintln!(
                    "faultline: {name} exited ({status}); see {}",
                    stack
                        .run_dir()
                        .join("logs")
                        .join(format!("{name}.log"))
                        .display()
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    eprintln!("faultline: stopping …");
    stack.stop(Duration::from_secs(10));
    eprintln!("faultline: stopped.");
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn demo(options: StackOptions) -> anyhow::Result<bool> {
    init_logging();
    let seed = options.seed.clone();
    eprintln!(
        "faultline: starting the system in {} …",
        options.run_dir.display()
    );
    let memory = faultline::measure::PeakRss::start();
    let started = std::time::Instant::now();
    let mut stack = Stack::start(&std::env::current_exe()?, options).await?;
    let startup = started.elapsed();
    let report = demo::run(stack.endpoints(), &seed, true).await;
    let peak = memory.peak_mib();
    stack.stop(Duration::from_secs(10));
    let mut report = report?;
    report.startup = Some(startup);
    report.peak_rss_mib = Some(peak);
    println!("{}", report.render());
    if report.passed() {
        println!("All invariants hold.");
    } else {
        println!("Invariants violated.");
    }
    Ok(report.passed())
}

/// `up`'s options: the stack's, seeded from `--seed` when given.
fn up_options(args: UpArgs) -> anyhow::Result<StackOptions> {
    let mut options = args.stack.options(".faultline/up");
    args.scale.apply(&mut options);
    if let Some(path) = &args.seed {
        options.seed = faultline::seed::Seed::load(path)?;
    }
    Ok(options)
}

/// `faultline bench`: runs it, writes bench.json, prints the tables. 0 if invariants 1–3 hold.
#[allow(clippy::print_stdout)]
async fn bench(args: BenchArgs) -> anyhow::Result<u8> {
    use faultline::bench::{self, TargetSpec, find_max::Ladder, report};
    init_logging();
    let exe = std::env::current_exe()?;
    let target = match &args.target {
        Some(file) => TargetSpec::Remote(file.clone()),
        None => {
            let mut stack = StackOptions::new(&args.run_dir);
            stack.postgres = args.postgres.clone();
            stack.telemetry = !matches!(args.telemetry, Some(Telemetry::Off));
            args.scale.apply(&mut stack);
            TargetSpec::Embedded {
                stack: Box::new(stack),
                seed_file: args.seed.clone(),
            }
        }
    };
    let find_max = args.find_max.then_some(Ladder {
        start: args.start_rate,
        factor: args.step_factor,
        max: args.max_rate,
        step_s: args.step_duration,
    });
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("bench.json"));
    if args.target.is_none() {
        eprintln!(
            "faultline: starting the system in {} …",
            args.run_dir.display()
        );
    }
    let report = bench::run(bench::BenchOptions {
        target,
        exe,
        rate: args.rate,
        duration_s: args.duration,
        find_max,
        idle_s: args.idle,
        deadline_ms: args.deadline_ms,
        command: report::command_line(std::env::args()),
        show_progress: !args.quiet,
    })
    .await?;
    report.write(&out)?;
    println!("{}", report.render());
    println!("Report: {}", out.display());
    if report.invariants.hold {
        println!("All invariants hold.");
        Ok(0)
    } else {
        println!("Invariants violated.");
        Ok(1)
    }
}
