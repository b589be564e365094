//! `faultline demo`: the narrated tour plays its five acts on one stack, names bookings worth
//! opening with working links, and exits 0 only when every invariant of every act held.

use std::process::Command;

#[test]
fn the_tour_plays_five_acts_on_one_stack_and_every_invariant_holds() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["demo", "--quiet", "--run-dir"])
        .arg(dir.path())
        .env_remove("FAULTLINE_POSTGRES_URL")
        .output()
        .expect("faultline demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "demo failed; failing lines:\n{}\n\nwhole output:\n{stdout}\n{}",
        crate::helpers::failing_lines(&stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for number in 1..=5 {
        assert!(
            stdout.contains(&format!("━━ Act {number} of 5:")),
            "act {number} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("Every invariant held in every act."),
        "{stdout}"
    );
    // Each act names at least one booking worth opening, with its trace and logs.
    assert_eq!(
        stdout.matches("Worth opening:").count(),
        5,
        "every act points at a booking:\n{stdout}"
    );
    // The story happened, in the services' own words.
    assert!(
        logged(act(&stdout, 3), "refunds") > 0,
        "the partition act shows refunds:\n{stdout}"
    );
    assert!(
        logged(act(&stdout, 4), "duplicates skipped") > 0,
        "the duplicates act shows skips:\n{stdout}"
    );
    // The links answer: the first trace link of the tour names a trace the capture has.
    let trace_link = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("trace: "))
        .unwrap_or_else(|| panic!("no trace link:\n{stdout}"));
    assert!(trace_link.starts_with("http://127.0.0.1:"), "{trace_link}");
}

/// The text of act `number`.
fn act(stdout: &str, number: usize) -> &str {
    let start = stdout
        .find(&format!("━━ Act {number} of 5:"))
        .expect("the act");
    let rest = &stdout[start..];
    let end = rest[3..].find("━━ Act ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The sum of the counts on the act's `Logs: N …` lines that mention `what`.
fn logged(act: &str, what: &str) -> u64 {
    act.lines()
        .filter_map(|l| l.strip_prefix("Logs: "))
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `faultline up` in the background, stopped with SIGTERM when dropped (a failed assertion too).
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

#[test]
fn the_tour_plays_again_and_again_on_a_running_stack_given_by_its_target_file() {
    let _alone = crate::helpers::one_scenario_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("up");
    let up = Up(Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["up", "--run-dir"])
        .arg(&run_dir)
        .env_remove("FAULTLINE_POSTGRES_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn faultline up"));
    let started = std::time::Instant::now();
    let endpoints = run_dir.join("endpoints.json");
    while faultline::endpoints::Endpoints::read(&run_dir).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "faultline up never wrote endpoints.json"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let gateway: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("config/gateway.json")).expect("the gateway's config"),
    )
    .expect("json");
    let secret = gateway["auth"]["secret"]
        .as_str()
        .expect("the gateway's secret");

    // Twice on one stack: each tour books on users and concerts of its own, so the second does
    // not find its seats taken or its wallets spent by the first.
    for round in 1..=2 {
        let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["demo", "--quiet", "--target"])
            .arg(&endpoints)
            .arg("--run-dir")
            .arg(dir.path().join(format!("demo-{round}")))
            .env("FAULTLINE_JWT_SECRET", secret)
            .env_remove("FAULTLINE_POSTGRES_URL")
            .output()
            .expect("faultline demo --target runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "round {round}: demo --target failed; failing lines:\n{}\n\nwhole output:\n{stdout}\n{}",
            crate::helpers::failing_lines(&stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for number in 1..=4 {
            let played = act(&stdout, number);
            assert!(
                played.contains("bookings —") && played.contains("│ 1. seats"),
                "round {round}: act {number} was not played:\n{played}"
            );
        }
        assert!(
            act(&stdout, 5).contains("Skipped: this act kills inventory with SIGKILL"),
            "round {round}: act 5 needs the embedded stack:\n{stdout}"
        );
        assert!(
            stdout.contains("Every invariant held in every act played."),
            "round {round}:\n{stdout}"
        );
        assert!(
            stdout.contains("/ui/trace/"),
            "round {round}: links into the running stack's viewer:\n{stdout}"
        );
    }

    // What the tours added left the running stack consistent as a whole.
    let check = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "--target"])
        .arg(&endpoints)
        .output()
        .expect("faultline check runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    drop(up);
}
