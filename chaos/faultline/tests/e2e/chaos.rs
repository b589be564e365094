//! The chaos runner end to end, as users and CI run it: the real `faultline` binary, every
//! shipped scenario against a fresh embedded stack each, exit codes and run directories; and a
//! deliberately broken build that the exactly-once checker must catch.

use std::{path::Path, process::Command};

use serde_json::Value;

fn faultline() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultline"));
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("FAULTLINE_POSTGRES_URL");
    command
}

/// Runs `faultline` with `args` and `--runs <runs>`; asserts its exit code; returns stdout.
fn run_expecting(code: i32, args: &[&str], runs: &Path) -> String {
    let output = faultline()
        .args(args)
        .arg("--runs")
        .arg(runs)
        .output()
        .expect("faultline runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "faultline {} exited otherwise; failing lines:\n{}\n\nwhole output:\n{stdout}\n{}",
        args.join(" "),
        crate::helpers::failing_lines(&stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn results_of(runs: &Path, scenario: &str) -> (std::path::PathBuf, Value) {
    let dir = std::fs::read_dir(runs.join(scenario))
        .unwrap_or_else(|e| panic!("no runs of {scenario}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max()
        .expect("a run directory");
    let results = std::fs::read(dir.join("results.json"))
        .unwrap_or_else(|e| panic!("{}: no results.json: {e}", dir.display()));
    (
        dir,
        serde_json::from_slice(&results).expect("results.json is JSON"),
    )
}

#[test]
fn every_shipped_scenario_passes_on_the_embedded_stack_and_replays_with_the_same_plan() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let runs = tempfile::tempdir().expect("tempdir");
    // The open-loop `overload` scenario is sized for a release build; this is a debug one.
    run_expecting(
        0,
        &["run", "--all", "--quiet", "--load-scale", "0.5"],
        runs.path(),
    );
    let scenarios = faultline::chaos::run::scenario_files(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios"
    )))
    .expect("scenarios");
    assert!(scenarios.len() >= 8, "the eight shipped scenarios");
    for file in &scenarios {
        let name = file.file_stem().and_then(|s| s.to_str()).expect("name");
        let (dir, results) = results_of(runs.path(), name);
        assert_eq!(results["verdict"], "pass", "{name}: {results:#}");
        for file in [
            "scenario.toml",
            "plan.json",
            "history.jsonl",
            "results.json",
            "junit.xml",
            "report.html",
        ] {
            assert!(dir.join(file).exists(), "{name}: {file} missing");
        }
        let recovery = results["invariants"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["invariant"] == "recovery"))
            .unwrap_or_else(|| panic!("{name}: no recovery check in {results:#}"));
        let scenario = faultline::chaos::scenario::Scenario::load(file).expect("scenario");
        if scenario.nemesis.is_empty() && scenario.random_nemesis.is_none() {
            // A fault-free scenario (overload) proves its point by the recovery check: the
            // overload was real (refusals happened) and the offered rate came back.
            assert_eq!(recovery["verdict"], "pass", "{name}: {recovery:#}");
            continue;
        }
        // Every fault was applied and healed, and recorded with its control calls.
        let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
        let faults: Vec<Value> = history
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .filter(|e| e["event"] == "fault")
            .collect();
        assert!(!faults.is_empty(), "{name}: no fault recorded");
        for fault in &faults {
            assert_eq!(fault["verified"], true, "{name}: {fault}");
            let kind = fault["kind"]["fault"].as_str().unwrap_or_default();
            if !matches!(kind, "kill" | "republish" | "poison") {
                assert!(
                    !fault["exchanges"].as_array().expect("exchanges").is_empty(),
                    "{name}: a network fault without its Toxiproxy calls: {fault}"
                );
            }
        }
    }

    // Replay: the same seed gives the same plan, and the run passes again.
    let (dir, _) = results_of(runs.path(), "poison-message");
    let output = faultline()
        .args(["replay", "--quiet", "--runs"])
        .arg(runs.path())
        .arg(&dir)
        .output()
        .expect("faultline replays");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "replay failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("the same plan"), "{stderr}");
}

#[test]
fn with_inbox_dedupe_broken_the_duplicates_scenario_fails_exactly_once_with_witnesses() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let runs = tempfile::tempdir().expect("tempdir");
    // A broken inbox must make the run fail (exit 1).
    run_expecting(
        1,
        &[
            "run",
            "broker-ack-loss-duplicates",
            "--quiet",
            "--break-inbox-for-test",
        ],
        runs.path(),
    );
    let (_, results) = results_of(runs.path(), "broker-ack-loss-duplicates");
    let check = results["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|c| c["invariant"] == "exactly-once")
        .expect("an exactly-once verdict")
        .clone();
    assert_eq!(check["verdict"], "fail", "{check:#}");
    let witnesses = check["witnesses"].as_array().expect("witnesses");
    assert!(!witnesses.is_empty(), "{check:#}");
    assert!(
        witnesses.iter().any(|w| w["booking_id"].is_string()
            && w["trace_id"].as_str().is_some_and(|t| t.len() == 32)
            && w["trace_link"].is_string()),
        "witnesses name a booking and its trace: {check:#}"
    );
}

#[test]
fn a_seed_sweep_runs_every_seed_summarises_them_and_each_run_replays_on_its_own_seed() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let runs = tempfile::tempdir().expect("tempdir");
    // The file says seed = 606: the sweep runs it and the seed after it.
    let stdout = run_expecting(
        0,
        &["run", "poison-message", "--seeds", "2", "--quiet"],
        runs.path(),
    );
    let sweep = stdout
        .split("Seed sweep:")
        .nth(1)
        .unwrap_or_else(|| panic!("no sweep summary:\n{stdout}"));
    let row = sweep
        .lines()
        .find(|l| l.contains("poison-message"))
        .unwrap_or_else(|| panic!("no row for the scenario:\n{sweep}"));
    let cells: Vec<&str> = row.split('┆').map(|c| c.trim_matches(['│', ' '])).collect();
    assert_eq!(cells[1..6], ["2", "2", "0", "0", "0"], "{row}");

    let mut dirs: Vec<_> = std::fs::read_dir(runs.path().join("poison-message"))
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let seed_of = |dir: &Path| {
        faultline::chaos::scenario::Scenario::load(&dir.join("scenario.toml"))
            .expect("the run's scenario")
            .seed
    };
    assert_eq!(
        dirs.iter().map(|d| seed_of(d)).collect::<Vec<_>>(),
        [606, 607]
    );
    let output = faultline()
        .args(["replay", "--quiet", "--runs"])
        .arg(runs.path())
        .arg(&dirs[1])
        .output()
        .expect("faultline replays");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "replay failed:\n{stderr}");
    assert!(stderr.contains("with seed 607: the same plan"), "{stderr}");
}

#[test]
fn replay_shrink_turns_the_broken_inbox_failure_into_a_handful_of_bookings_that_still_fails() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let runs = tempfile::tempdir().expect("tempdir");
    run_expecting(
        1,
        &[
            "run",
            "broker-ack-loss-duplicates",
            "--quiet",
            "--break-inbox-for-test",
        ],
        runs.path(),
    );
    let (dir, _) = results_of(runs.path(), "broker-ack-loss-duplicates");
    // No --break-inbox-for-test: the run directory says the run used the broken build.
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    let stdout = run_expecting(
        1,
        &[
            "replay",
            "--shrink",
            dir_arg,
            "--max-attempts",
            "8",
            "--quiet",
        ],
        runs.path(),
    );
    let attempts = stdout.lines().filter(|l| l.starts_with("attempt ")).count();
    assert!(
        (1..=8).contains(&attempts),
        "one line per attempt:\n{stdout}"
    );
    assert!(
        stdout.contains("shrunk from 24 bookings and 2 faults"),
        "{stdout}"
    );

    let file = dir.join("shrunk.toml");
    let shrunk = faultline::chaos::scenario::Scenario::load(&file)
        .unwrap_or_else(|e| panic!("the written scenario loads: {e:#}\n{stdout}"));
    let plan = shrunk.plan.as_ref().expect("an explicit plan");
    assert!(
        (1..=6).contains(&plan.ops.len()),
        "a handful of bookings: {}\n{stdout}",
        plan.ops.len()
    );
    assert!(plan.faults.len() <= 2, "{stdout}");

    // The written file fails again, on the same invariant, when run as any scenario is.
    let file_arg = file.to_str().expect("a UTF-8 path");
    run_expecting(
        1,
        &["run", file_arg, "--quiet", "--break-inbox-for-test"],
        runs.path(),
    );
    let (_, results) = results_of(runs.path(), "broker-ack-loss-duplicates-shrunk");
    let exactly_once = results["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|c| c["invariant"] == "exactly-once")
        .expect("an exactly-once verdict")
        .clone();
    assert_eq!(exactly_once["verdict"], "fail", "{exactly_once:#}");
}

/// Issue 11's proof on PostgreSQL: two replicas of every service, 1,000 bookings, one
/// reservation and one inventory replica SIGKILLed under load and restarted; the survivors take
/// over, every invariant holds (no saga step twice among them) and each replica kept its own
/// process, configuration and log.
#[test]
fn two_replicas_of_every_service_on_postgres_lose_one_each_and_every_booking_settles() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let runs = tempfile::tempdir().expect("tempdir");
    let server = faultline_harness::postgres::server_url();
    run_expecting(
        0,
        &["run", "replica-loss", "--quiet", "--postgres", &server],
        runs.path(),
    );
    let (dir, results) = results_of(runs.path(), "replica-loss");
    assert_eq!(results["verdict"], "pass", "{results:#}");
    let operations = &results["operations"];
    assert_eq!(operations["invoked"].as_u64(), Some(1001), "{operations}");
    assert!(
        operations["ok"].as_u64() >= Some(1000),
        "the bookings settled: {operations}"
    );
    let details: Vec<&str> = results["faults"]
        .as_array()
        .expect("faults")
        .iter()
        .filter_map(|fault| fault["detail"].as_str())
        .collect();
    assert_eq!(
        details,
        [
            "reservation-2: SIGKILL, process gone",
            "inventory-1: SIGKILL, process gone"
        ],
        "the kills hit one replica each"
    );
    // The survivors took over: no booking waited longer than the consumer session (after which
    // the dead replica's partitions move) plus 30 s, from its submission to its saga settling.
    const SESSION_TIMEOUT_MS: u64 = 6_000;
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    let events: Vec<Value> = history
        .lines()
        .map(|line| serde_json::from_str(line).expect("a history line is JSON"))
        .collect();
    let invoked: std::collections::BTreeMap<u64, u64> = events
        .iter()
        .filter(|e| e["event"] == "invoke")
        .filter_map(|e| Some((e["op"].as_u64()?, e["time_ms"].as_u64()?)))
        .collect();
    let slowest = events
        .iter()
        .filter(|e| e["event"] == "complete")
        .filter_map(|e| {
            let op = e["op"].as_u64()?;
            Some((e["settled_ms"].as_u64()? - invoked[&op], op))
        })
        .max()
        .expect("completed bookings");
    assert!(
        slowest.0 <= SESSION_TIMEOUT_MS + 30_000,
        "op {} took {} ms from submission to settling: longer than the session timeout plus 30 s",
        slowest.1,
        slowest.0
    );
    // Which replica handled which booking: every instance worked on bookings, and some bookings
    // moved from a killed replica to its survivor (the report's "Replicas" section).
    let handling = &results["handling"];
    assert!(
        handling["handed_over"].as_u64() >= Some(1),
        "no booking was handed over between replicas: {handling}"
    );
    let shares: Vec<(&str, u64)> = handling["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|s| Some((s["instance"].as_str()?, s["bookings"].as_u64()?)))
        .collect();
    for service in faultline_contracts::topology::Service::ALL_NAMES {
        for replica in 1..=2 {
            let instance = format!("{service}-{replica}");
            assert!(
                shares.iter().any(|(i, n)| *i == instance && *n > 0),
                "{instance} worked on no booking: {shares:?}"
            );
        }
    }
    let report = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(report.contains("<h2>Replicas</h2>"), "no Replicas section");
    for service in faultline_contracts::topology::Service::ALL_NAMES {
        for replica in 1..=2 {
            let log = dir.join(format!("stack/logs/{service}-{replica}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log:?}: {e}"));
            assert!(
                text.contains("listening"),
                "{service}-{replica} served: {log:?}"
            );
        }
    }
}
