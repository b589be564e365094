//! One load phase, end to end — the unit both a plain run and every find-max step are made of:
//! start sampling backlogs, read the processes, send the load, read the processes again, drain,
//! read reservation's bookings once, and turn it all into [`StepFigures`].

use std::{collections::BTreeMap, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{
    figures::{self, Outcome},
    lag::{Backlogs, Sampler},
    load::{self, Load},
    procs::{self, Tree, Window},
    workload::Booking,
};
use crate::endpoints::Endpoints;

/// What every phase of one bench run shares.
#[derive(Debug)]
pub struct Context {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub tree: Tree,
    /// Unique per bench run: idempotency keys never collide with an earlier run's.
    pub run_id: String,
    pub show_progress: bool,
    /// How long a drain may take before the phase is judged with sagas still pending.
    pub drain_limit: Duration,
}

/// One phase to run.
#[derive(Debug, Clone, Copy)]
pub struct Phase<'a> {
    pub label: &'a str,
    pub rate: f64,
    pub duration_s: f64,
    pub bookings: &'a [Booking],
    /// Index of `bookings[0]` among all the run's bookings.
    pub first_index: usize,
}

/// Everything measured in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct StepFigures {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Per process, over the load (first due time to last answer).
    #[serde(flatten)]
    pub load_window: Window,
    /// How long the drain took; whether every saga got terminal within the limit.
    pub drain_s: f64,
    pub drained: bool,
    /// The stack's CPU while draining (work the load left queued).
    pub drain_stack_cpu_s: f64,
    #[serde(flatten)]
    pub backlogs: Backlogs,
}

/// Runs `phase` against the stack of `context`.
pub async fn run(context: &Context, phase: Phase<'_>) -> anyhow::Result<StepFigures> {
    let progress = if context.show_progress {
        ProgressBar::new(phase.bookings.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(ProgressStyle::with_template(
        "{spinner} {prefix} [{elapsed_precise}] {bar:40} {pos}/{len} answered · {msg}",
    )?);
    progress.set_prefix(phase.label.to_owned());
    progress.enable_steady_tick(Duration::from_millis(200));

    let services: BTreeMap<String, String> = context.endpoints.services.clone();
    let gateways = context.endpoints.gateways();
    let sampler = Sampler::start(context.http.clone(), services);
    let before = context.tree.snapshot();
    let result = load::drive(
        &context.http,
        Load {
            gateways: &gateways,
            bookings: phase.bookings,
            tokens: &context.endpoints.tokens,
            rate: phase.rate,
            run_id: &context.run_id,
            first_index: phase.first_index,
        },
        &progress,
    )
    .await;
    let after_load = context.tree.snapshot();
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            sampler.finish().await;
            progress.abandon();
            return Err(error);
        }
    };
    let reservation = context.endpoints.service("reservation");
    let drained = figures::drain(&context.http, reservation, context.drain_limit, &progress).await;
    let after_drain = context.tree.snapshot();
    let backlogs = sampler.finish().await;
    let (drain, drained) = drained?;
    progress.finish_with_message(if drained {
        "drained".to_owned()
    } else {
        format!("sagas still pending after {:.0} s", drain.as_secs_f64())
    });
    let bookings = figures::bookings(&context.http, reservation).await?;
    let outcome = figures::outcome(&result, &bookings, phase.duration_s)?;
    Ok(StepFigures {
        outcome,
        load_window: procs::between(&before, &after_load),
        drain_s: drain.as_secs_f64(),
        drained,
        drain_stack_cpu_s: procs::between(&after_load, &after_drain).stack_cpu_s,
        backlogs,
    })
}
