//! `faultline`: start the embedded system (`up`), or run the demo workload against it (`demo`).

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

#[derive(Subcommand)]
enum Command {
    /// Start the broker and the five services; print the endpoints and a token; stop on Ctrl-C.
    Up(StackArgs),
    /// Start the system, drive a mixed booking workload, print the outcome, stop. Exits 0 only
    /// if invariants 1–3 hold.
    Demo(StackArgs),
    /// Run one service in this process (how `up` starts its children).
    #[command(hide = true)]
    Service { name: String },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faultline: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Service { name } => faultline::services::run(&name).await.map(|()| true),
            Command::Up(args) => up(args.options(".faultline/up")).await.map(|()| true),
            Command::Demo(args) => demo(args.options(".faultline/demo")).await,
        }
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("faultline: {error:#}");
            std::process::ExitCode::from(3)
        }
    }
}

fn init_logging() {
    let _ = faultline_kit::telemetry::init_with_default_filter("faultline", "warn");
}

#[allow(clippy::print_stdout)]
async fn up(options: StackOptions) -> anyhow::Result<()> {
    init_logging();
    let started = std::time::Instant::now();
    let shutdown = faultline_kit::shutdown::on_signal();
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
    println!("  broker      {}", endpoints.broker);
    if let Some(capture) = endpoints.telemetry.get("tempo") {
        println!(
            "  telemetry   {capture}  (capture: Tempo /api/traces, /api/search; Loki /loki/api/v1/query_range)"
        );
    }
    println!("  database    {}", endpoints.database);
    println!(
        "  endpoints   {}",
        stack.run_dir().join("endpoints.json").display()
    );
    println!();
    let token = endpoints.tokens.get("user-1").cloned().unwrap_or_default();
    println!("Try it (user-1):");
    println!("  export TOKEN={token}");
    println!(
        "  curl -s -XPOST {}/bookings -H \"authorization: Bearer $TOKEN\" -H 'idempotency-key: first-try' \\\n       -H 'content-type: application/json' -d '{{\"seat_id\":\"saga-live-1-001\"}}'",
        endpoints.gateway_url
    );
    println!(
        "  curl -s {}/me/bookings -H \"authorization: Bearer $TOKEN\"",
        endpoints.gateway_url
    );
    println!();
    println!("Ctrl-C (or SIGTERM) stops everything.");
    let mut reported = std::collections::BTreeSet::new();
    while !shutdown.is_cancelled() {
        for (name, status) in stack.exited() {
            if reported.insert(name) {
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
