//! What a run leaves besides its verdict: its inputs written before anything starts (the
//! scenario as run, the plan, how it was run), and each fault window written to Grafana as an
//! annotation once it is over.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use serde_json::json;

use super::{RunOptions, TargetSpec};
use crate::chaos::{
    evidence::Evidence, generator::Plan, history::History, report::FaultWindow, scenario::Scenario,
};

/// Writes `scenario.toml`, `plan.json` and `run.json` into `run_dir` and opens its history;
/// returns the history and the target's name as the results record it.
pub(super) fn record_inputs(
    options: &RunOptions,
    scenario: &Scenario,
    plan: &Plan,
    run_dir: &Path,
) -> anyhow::Result<(Arc<History>, String)> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    std::fs::write(
        run_dir.join("scenario.toml"),
        toml::to_string_pretty(scenario)?,
    )?;
    std::fs::write(run_dir.join("plan.json"), serde_json::to_vec_pretty(plan)?)?;
    let history = Arc::new(History::create(&run_dir.join("history.jsonl"))?);
    let target_name = match &options.target {
        TargetSpec::Embedded { .. } => "embedded".to_owned(),
        TargetSpec::Remote(file) => file.display().to_string(),
        TargetSpec::Shared { target, .. } => target.kind().to_owned(),
    };
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_vec_pretty(&json!({
            "scenario_file": options.scenario,
            "target": target_name,
            "postgres": matches!(&options.target, TargetSpec::Embedded { postgres: Some(_) }),
            // A deliberately broken build: `replay` (and `replay --shrink`) run it broken again.
            "break_inbox_for_test": options.break_inbox_for_test,
        }))?,
    )?;
    Ok((history, target_name))
}

/// Each fault window as a Grafana annotation tagged `faultline` (where there is a Grafana); a
/// failure is noted in the history, not fatal.
pub(super) async fn annotate_faults(
    evidence: &Evidence,
    history: &History,
    scenario: &Scenario,
    faults: &[FaultWindow],
) {
    for fault in faults {
        let stop = fault.stop_ms.unwrap_or(fault.start_ms);
        let tags = vec![
            "faultline".to_owned(),
            "fault".to_owned(),
            scenario.name.clone(),
            fault.kind.clone(),
        ];
        if let Err(error) = evidence
            .annotate(
                history.started_unix_ms() + fault.start_ms,
                history.started_unix_ms() + stop,
                &tags,
                &format!("{} {}: {}", fault.kind, fault.target, fault.detail),
            )
            .await
        {
            history.note(format!(
                "annotation for fault {} failed: {error:#}",
                fault.fault
            ));
        }
    }
}
