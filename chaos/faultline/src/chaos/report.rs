//! What a run leaves behind in `runs/<scenario>/<timestamp>/`: `results.json`, `junit.xml`,
//! `report.html` (a timeline of fault windows and outcomes, verdicts with links to their
//! evidence) — beside `scenario.toml`, `plan.json` and `history.jsonl`, written as the run
//! goes — and the verdict table for the terminal.

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::{
    checkers::{CheckResult, Verdict},
    history::{Event, Operation, Outcome, Phase},
    scenario::Scenario,
};

/// Exit codes of `faultline run`.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_VIOLATED: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_ABORTED: u8 = 3;

/// The exit code for a verdict.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Pass => EXIT_PASS,
        Verdict::Fail => EXIT_VIOLATED,
        Verdict::Unknown => EXIT_UNKNOWN,
    }
}

/// `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub scenario: String,
    pub seed: u64,
    /// `embedded` or the target file.
    pub target: String,
    pub started_at_unix_ms: u64,
    pub duration_ms: u64,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub operations: OpCounts,
    pub invariants: Vec<CheckResult>,
    pub faults: Vec<FaultWindow>,
    /// Which replica handled which booking (absent when every service ran once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handling: Option<crate::chaos::handling::Handling>,
}

/// How the operations ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCounts {
    pub invoked: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub confirmed: usize,
    pub cancelled: usize,
    pub rejected: usize,
}

impl OpCounts {
    pub fn of(ops: &[Operation]) -> Self {
        let status = |s: &str| {
            ops.iter()
                .filter(|o| o.status.as_deref() == Some(s))
                .count()
        };
        let outcome = |x: Outcome| ops.iter().filter(|o| o.outcome == Some(x)).count();
        Self {
            invoked: ops.len(),
            ok: outcome(Outcome::Ok),
            fail: outcome(Outcome::Fail),
            info: outcome(Outcome::Info),
            confirmed: status("CONFIRMED"),
            cancelled: status("CANCELLED"),
            rejected: status("REJECTED"),
        }
    }
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultWindow {
    pub fault: usize,
    pub kind: String,
    pub target: String,
    pub start_ms: u64,
    pub stop_ms: Option<u64>,
    pub applied: bool,
    pub fired: Option<bool>,
    pub detail: String,
}

/// Fault windows from the history.
pub fn fault_windows(events: &[Event]) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    for event in events {
        if let Event::Fault {
            fault,
            phase,
            time_ms,
            kind,
            verified,
            fired,
            detail,
            ..
        } = event
        {
            match phase {
                Phase::Start => windows.push(FaultWindow {
                    fault: *fault,
                    kind: kind.name().to_owned(),
                    target: kind.target().to_owned(),
                    start_ms: *time_ms,
                    stop_ms: None,
                    applied: *verified,
                    fired: None,
                    detail: detail.clone(),
                }),
                Phase::Stop => {
                    if let Some(window) = windows.iter_mut().rev().find(|w| w.fault == *fault) {
                        window.stop_ms = Some(*time_ms);
                        window.fired = *fired;
                    }
                }
            }
        }
    }
    windows
}

/// The verdict table for the terminal.
pub fn table(results: &Results) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "invariant",
        "expected",
        "verdict",
        "evidence",
    ]);
    for check in &results.invariants {
        let mut evidence = check.summary.clone();
        for witness in check.witnesses.iter().take(3) {
            evidence.push_str(&format!(
                "\n· {} {}: {}",
                witness.booking_id.as_deref().unwrap_or("-"),
                witness.trace_id.as_deref().unwrap_or("-"),
                witness.detail
            ));
            if let Some(link) = &witness.trace_link {
                evidence.push_str(&format!("\n  {link}"));
            }
        }
        table.add_row([
            format!("{}. {}", check.number, check.invariant.name()),
            if check.expected { "yes" } else { "no" }.to_owned(),
            check.verdict.as_str().to_owned(),
            evidence,
        ]);
    }
    let o = &results.operations;
    let handling = results
        .handling
        .as_ref()
        .map(|h| format!("\n{}", crate::chaos::handling::line(h)))
        .unwrap_or_default();
    format!(
        "{} (seed {}): {} — {} operations: {} ok ({} confirmed, {} cancelled, {} rejected), {} failed, {} unknown; {} faults\n{table}{handling}",
        results.scenario,
        results.seed,
        results.verdict.as_str(),
        o.invoked,
        o.ok,
        o.confirmed,
        o.cancelled,
        o.rejected,
        o.fail,
        o.info,
        results.faults.len()
    )
}

/// Writes `results.json`, `junit.xml` and `report.html` into `dir`.
pub fn write(
    dir: &Path,
    results: &Results,
    scenario: &Scenario,
    ops: &[Operation],
) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(results)?,
    )?;
    std::fs::write(dir.join("junit.xml"), junit(results)?)?;
    std::fs::write(dir.join("report.html"), html(results, scenario, ops))?;
    Ok(())
}

fn junit(results: &Results) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("faultline");
    let mut suite = TestSuite::new(results.scenario.clone());
    for check in &results.invariants {
        let name = format!("{}. {}", check.number, check.invariant.name());
        let mut text = check.summary.clone();
        for witness in &check.witnesses {
            text.push_str(&format!(
                "\nbooking {} trace {}: {} {}",
                witness.booking_id.as_deref().unwrap_or("-"),
                witness.trace_id.as_deref().unwrap_or("-"),
                witness.detail,
                witness.trace_link.as_deref().unwrap_or_default()
            ));
        }
        let status = match check.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(check.summary.clone());
                status.set_type("violated");
                status.set_description(text.clone());
                status
            }
            // An unknown is not a pass: reported as a failure of type "unknown" when the
            // scenario expects the invariant, as skipped when it does not.
            Verdict::Unknown if check.expected => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(check.summary.clone());
                status.set_type("unknown");
                status.set_description(text.clone());
                status
            }
            Verdict::Unknown => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(check.summary.clone());
                status
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("faultline.{}", results.scenario));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

/// Escapes text for HTML. Hand-written: four characters, and every interpolation below goes
/// through it.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(results: &Results, scenario: &Scenario, ops: &[Operation]) -> String {
    let end = ops
        .iter()
        .filter_map(|o| o.completed_ms)
        .chain(results.faults.iter().filter_map(|f| f.stop_ms))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let width = 1000.0;
    let x = |ms: u64| 160.0 + (ms as f64 / end) * (width - 180.0);
    let mut svg = String::new();
    let rows = results.faults.len() + 1;
    let height = 40 + rows * 26 + 20;
    svg.push_str(&format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"12\">"
    ));
    for (i, fault) in results.faults.iter().enumerate() {
        let y = 30 + i * 26;
        let stop = fault.stop_ms.unwrap_or(fault.start_ms);
        let colour = match (fault.applied, fault.fired) {
            (false, _) | (_, Some(false)) => "#999",
            _ => "#d9534f",
        };
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{}\">{}</text><rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"18\" fill=\"{colour}\" opacity=\"0.8\"><title>{}</title></rect>",
            y + 13,
            esc(&format!("{} {}", fault.kind, fault.target)),
            x(fault.start_ms),
            (x(stop) - x(fault.start_ms)).max(3.0),
            esc(&format!("{} – {} ms: {}", fault.start_ms, stop, fault.detail))
        ));
    }
    let y = 30 + results.faults.len() * 26;
    svg.push_str(&format!("<text x=\"4\" y=\"{}\">bookings</text>", y + 13));
    for op in ops {
        let Some(done) = op.completed_ms else {
            continue;
        };
        let colour = match op.status.as_deref() {
            Some("CONFIRMED") => "#5cb85c",
            Some("CANCELLED") => "#f0ad4e",
            Some("REJECTED") => "#5bc0de",
            _ => "#333",
        };
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></line>",
            x(op.invoked_ms),
            x(done),
            y + 4 + (op.op as usize % 7) * 2,
            y + 4 + (op.op as usize % 7) * 2,
            esc(&format!(
                "op {} {} {} → {} ({} – {} ms) trace {}",
                op.op,
                op.user,
                op.seat,
                op.status.as_deref().unwrap_or("?"),
                op.invoked_ms,
                done,
                op.trace_id
            ))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"160\" y=\"{}\">0 ms</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{end:.0} ms</text></svg>",
        height - 4,
        width - 20.0,
        height - 4
    ));

    let mut verdicts = String::new();
    for check in &results.invariants {
        let mut witnesses = String::new();
        for w in &check.witnesses {
            let link = |label: &str, href: &Option<String>| {
                href.as_deref()
                    .map(|h| format!(" <a href=\"{}\">{label}</a>", esc(h)))
                    .unwrap_or_default()
            };
            witnesses.push_str(&format!(
                "<li><code>{}</code> <code>{}</code>: {}{}{}</li>",
                esc(w.booking_id.as_deref().unwrap_or("-")),
                esc(w.trace_id.as_deref().unwrap_or("-")),
                esc(&w.detail),
                link("trace", &w.trace_link),
                link("logs", &w.logs_link)
            ));
        }
        verdicts.push_str(&format!(
            "<tr class=\"{}\"><td>{}. {}</td><td>{}</td><td><b>{}</b></td><td>{}<ul>{witnesses}</ul></td></tr>",
            check.verdict.as_str().to_lowercase(),
            check.number,
            esc(check.title),
            if check.expected { "yes" } else { "no" },
            check.verdict.as_str(),
            esc(&check.summary)
        ));
    }
    let mut faults = String::new();
    for f in &results.faults {
        faults.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.fault,
            esc(&format!("{} {}", f.kind, f.target)),
            f.start_ms,
            f.stop_ms.map(|s| s.to_string()).unwrap_or_default(),
            match (f.applied, f.fired) {
                (false, _) => "not applied",
                (true, Some(false)) => "applied, never met traffic",
                (true, Some(true)) => "applied, fired",
                (true, None) => "applied",
            },
            esc(&f.detail)
        ));
    }
    let handling = results
        .handling
        .as_ref()
        .map(handling_section)
        .unwrap_or_default();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{name} — {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}tr.fail td{{background:#fbe3e4}}tr.unknown td{{background:#fff3cd}}tr.pass td{{background:#e6f4ea}}code{{font-size:11px}}</style></head>
<body><h1>{name}: {verdict}</h1><p>{description}</p>
<p>seed {seed} · target {target} · {duration} ms · exit code {exit} · files: <a href="results.json">results.json</a>, <a href="history.jsonl">history.jsonl</a>, <a href="junit.xml">junit.xml</a>, <a href="scenario.toml">scenario.toml</a></p>
<h2>Timeline</h2><p>Fault windows (red: in effect; grey: not applied or met no traffic) and bookings from submission to outcome (green confirmed, orange cancelled, blue rejected, black unknown). Hover for details.</p>{svg}
<h2>Verdicts</h2>{links_note}<table><tr><th>invariant</th><th>expected</th><th>verdict</th><th>evidence and witnesses</th></tr>{verdicts}</table>
<h2>Faults</h2><table><tr><th>#</th><th>fault</th><th>start ms</th><th>stop ms</th><th>effect</th><th>detail</th></tr>{faults}</table>
{handling}</body></html>"#,
        name = esc(&results.scenario),
        links_note = if results.target == "embedded" {
            "<p>Each witness links to its trace and log lines in the capture's viewer, which \
             lives as long as the stack it belongs to: this run's embedded stack stopped with the \
             run. To keep the links open, run against a running <code>faultline up</code> with \
             <code>--target &lt;its run dir&gt;/endpoints.json</code>.</p>"
        } else {
            ""
        },
        verdict = results.verdict.as_str(),
        description = esc(&scenario.description),
        seed = results.seed,
        target = esc(&results.target),
        duration = results.duration_ms,
        exit = results.exit_code,
    )
}

/// The report's "Replicas" section: each instance's share of the bookings, and the bookings
/// handed over from one replica of a service to another, each linking to its trace (whose
/// spans name their sender's `service.instance.id`).
fn handling_section(handling: &crate::chaos::handling::Handling) -> String {
    let shares: String = handling
        .instances
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.service),
                esc(&s.instance),
                s.bookings
            )
        })
        .collect();
    let examples: String = handling
        .examples
        .iter()
        .map(|h| {
            format!(
                "<li><code>{}</code> {}: {} <a href=\"{}\">trace</a></li>",
                esc(&h.booking_id),
                esc(&h.service),
                esc(&h.instances.join(" → ")),
                esc(&h.trace_link)
            )
        })
        .collect();
    format!(
        "<h2>Replicas</h2><p>Which instance of each service worked on how many bookings (an instance \
         appears in a booking's trace through its spans' <code>service.instance.id</code>), and \
         the {} booking(s) whose work moved from one replica of a service to another{}.</p>\
         <table><tr><th>service</th><th>instance</th><th>bookings</th></tr>{shares}</table><ul>{examples}</ul>",
        handling.handed_over,
        if handling.handed_over > handling.examples.len() {
            format!(" (the first {} below)", handling.examples.len())
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{checkers::Witness, scenario::Invariant};

    #[test]
    fn each_witness_links_to_its_trace_in_the_table_and_the_html() {
        const VIEWER: &str = "http://127.0.0.1:4000/ui/trace/4bf92f3577b34da6a3ce929d0e0e4736";
        let results = Results {
            scenario: "payment-latency".into(),
            seed: 1,
            target: "embedded".into(),
            started_at_unix_ms: 0,
            duration_ms: 10,
            verdict: Verdict::Fail,
            exit_code: EXIT_VIOLATED,
            operations: OpCounts::default(),
            handling: None,
            invariants: vec![CheckResult {
                invariant: Invariant::Logs,
                number: Invariant::Logs.number(),
                title: Invariant::Logs.title(),
                expected: true,
                verdict: Verdict::Fail,
                summary: "a line without its trace id".into(),
                witnesses: vec![Witness {
                    booking_id: Some("b-1".into()),
                    trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                    detail: "no trace id".into(),
                    trace_link: Some(VIEWER.into()),
                    logs_link: Some(format!("{VIEWER}#logs")),
                }],
            }],
            faults: vec![],
        };
        assert!(table(&results).contains(VIEWER), "{}", table(&results));
        let scenario = Scenario::parse(include_str!("../../../scenarios/payment-latency.toml"))
            .expect("a shipped scenario");
        let page = html(&results, &scenario, &[]);
        assert!(page.contains(&format!("<a href=\"{VIEWER}\">trace</a>")));
        assert!(page.contains(&format!("<a href=\"{VIEWER}#logs\">logs</a>")));
    }

    #[test]
    fn a_run_with_replicas_shows_each_instances_share_and_the_hand_overs() {
        let handling = crate::chaos::handling::Handling {
            instances: vec![crate::chaos::handling::Share {
                service: "reservation".into(),
                instance: "reservation-2".into(),
                bookings: 480,
            }],
            handed_over: 1,
            examples: vec![crate::chaos::handling::HandOver {
                booking_id: "b-7".into(),
                trace_id: "t7".into(),
                service: "reservation".into(),
                instances: vec!["reservation-2".into(), "reservation-1".into()],
                trace_link: "http://127.0.0.1:4000/ui/trace/t7".into(),
            }],
        };
        let section = handling_section(&handling);
        assert!(
            section.contains("<td>reservation-2</td><td>480</td>"),
            "{section}"
        );
        assert!(
            section.contains("reservation-2 → reservation-1 <a href=\"http://127.0.0.1:4000/ui/trace/t7\">trace</a>"),
            "{section}"
        );
    }
}
