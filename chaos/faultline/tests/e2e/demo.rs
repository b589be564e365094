//! `faultline demo`: the narrated tour plays its five acts on one stack, names bookings worth
//! opening with working links, and exits 0 only when every invariant of every act held.

use std::process::Command;

#[test]
fn the_tour_plays_five_acts_on_one_stack_and_every_invariant_holds() {
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
        "demo failed:\n{stdout}\n{}",
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
