//! The demo: a mixed booking workload through the gateway — bookings that succeed, seats
//! already taken, wallets too small — with a live progress bar, an outcome table, and a verdict
//! on invariants 1–3.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use faultline_contracts::http::{AnalyticsSummary, BookingAccepted, ReservationSummary};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use faultline_harness::invariants::{self, ServiceUrls, Violation};

use crate::{endpoints::Endpoints, seed::Seed};

/// One planned booking and the outcome the plan expects.
#[derive(Debug, Clone)]
struct Planned {
    user: String,
    seat: String,
    expect: &'static str,
}

/// The workload: first bookings of free seats (confirmed), second bookings of the same seats
/// (rejected), and users who cannot afford the dearer concert (cancelled after compensation).
fn plan(seed: &Seed) -> Vec<Planned> {
    let rich: Vec<&str> = seed
        .users
        .iter()
        .filter(|u| u.points >= 1_000)
        .map(|u| u.user_id.as_str())
        .collect();
    let poor: Vec<&str> = seed
        .users
        .iter()
        .filter(|u| u.points < 150)
        .map(|u| u.user_id.as_str())
        .collect();
    let cheap = Seed::seat_ids(&seed.concerts[0].schedules[0]);
    let dear = Seed::seat_ids(&seed.concerts[1].schedules[0]);
    let mut plan = Vec::new();
    for (i, seat) in cheap.iter().take(30).enumerate() {
        plan.push(Planned {
            user: rich[i % rich.len()].into(),
            seat: seat.clone(),
            expect: "CONFIRMED",
        });
    }
    for (i, seat) in cheap.iter().take(15).enumerate() {
        plan.push(Planned {
            user: rich[(i + 3) % rich.len()].into(),
            seat: seat.clone(),
            expect: "REJECTED",
        });
    }
    for (i, seat) in dear.iter().take(10).enumerate() {
        plan.push(Planned {
            user: poor[i % poor.len()].into(),
            seat: seat.clone(),
            expect: "CANCELLED",
        });
    }
    for (i, seat) in dear.iter().skip(10).take(10).enumerate() {
        plan.push(Planned {
            user: rich[i % rich.len()].into(),
            seat: seat.clone(),
            expect: "CONFIRMED",
        });
    }
    plan
}

/// What the demo found.
#[derive(Debug)]
pub struct DemoReport {
    pub submitted: usize,
    pub expected: [(&'static str, usize); 3],
    pub outcomes: ReservationSummary,
    pub seats_sold: i64,
    pub points_before: i64,
    pub points_after: i64,
    pub analytics: Option<AnalyticsSummary>,
    pub violations: Vec<Violation>,
    pub elapsed: Duration,
    /// Start-up time of the stack, when the caller measured it.
    pub startup: Option<Duration>,
    /// Peak resident memory of the launcher, services and broker together, when measured.
    pub peak_rss_mib: Option<f64>,
}

impl DemoReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The outcome table and the invariant verdicts, for the terminal.
    pub fn render(&self) -> String {
        let mut outcomes = Table::new();
        outcomes
            .load_style(UTF8_FULL_CONDENSED)
            .set_header(["outcome", "planned", "actual"]);
        let actual = [
            self.outcomes.confirmed,
            self.outcomes.cancelled,
            self.outcomes.rejected,
        ];
        for ((status, planned), actual) in self.expected.iter().zip(actual) {
            outcomes.add_row([status.to_string(), planned.to_string(), actual.to_string()]);
        }
        outcomes.add_row([
            "PENDING".to_string(),
            "0".to_string(),
            self.outcomes.pending.to_string(),
        ]);

        let mut figures = Table::new();
        figures
            .load_style(UTF8_FULL_CONDENSED)
            .set_header(["figure", "value"]);
        figures.add_row(["bookings submitted".to_string(), self.submitted.to_string()]);
        figures.add_row([
            "seats sold / bookings confirmed".to_string(),
            format!("{} / {}", self.seats_sold, self.outcomes.confirmed),
        ]);
        figures.add_row([
            "points before → after".to_string(),
            format!("{} → {}", self.points_before, self.points_after),
        ]);
        if let Some(analytics) = &self.analytics {
            figures.add_row([
                "analytics: confirmed / revenue".to_string(),
                format!("{} / {}", analytics.confirmed, analytics.revenue),
            ]);
            figures.add_row([
                "analytics: messages behind".to_string(),
                analytics
                    .freshness
                    .messages_behind
                    .map_or("unknown".to_string(), |n| n.to_string()),
            ]);
        }
        if let Some(startup) = self.startup {
            figures.add_row([
                "start-up (broker + 5 services ready)".to_string(),
                format!("{:.1} s", startup.as_secs_f64()),
            ]);
        }
        figures.add_row([
            "workload wall time".to_string(),
            format!("{:.1} s", self.elapsed.as_secs_f64()),
        ]);
        if let Some(peak) = self.peak_rss_mib {
            figures.add_row([
                "peak RSS, whole process tree".to_string(),
                format!("{peak:.0} MiB"),
            ]);
        }

        let mut verdicts = Table::new();
        verdicts
            .load_style(UTF8_FULL_CONDENSED)
            .set_header(["invariant", "verdict"]);
        for (number, name) in [
            (1, "1. no seat twice; sold = confirmed"),
            (2, "2. points conserved, charged once"),
            (3, "3. every saga terminal, nothing left over"),
        ] {
            let broken: Vec<&str> = self
                .violations
                .iter()
                .filter(|v| v.invariant == number)
                .map(|v| v.detail.as_str())
                .collect();
            let verdict = if broken.is_empty() {
                "pass".to_string()
            } else {
                format!("FAIL: {}", broken.join("; "))
            };
            verdicts.add_row([name.to_string(), verdict]);
        }
        format!("{outcomes}\n{figures}\n{verdicts}")
    }
}

/// Runs the workload against a running stack.
pub async fn run(
    endpoints: &Endpoints,
    seed: &Seed,
    show_progress: bool,
) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let plan = plan(seed);
    let expect = |status: &str| plan.iter().filter(|p| p.expect == status).count();
    let expected = [
        ("CONFIRMED", expect("CONFIRMED")),
        ("CANCELLED", expect("CANCELLED")),
        ("REJECTED", expect("REJECTED")),
    ];
    let progress = if show_progress {
        ProgressBar::new(plan.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} sagas finished · {msg}",
    )?);

    // Submit: a bounded number of requests in flight, each with its own idempotency key.
    let permits = Arc::new(Semaphore::new(16));
    let mut submissions = Vec::new();
    for (i, planned) in plan.iter().enumerate() {
        let permit = permits.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), format!("{}/bookings", endpoints.gateway_url));
        let token = endpoints
            .tokens
            .get(&planned.user)
            .cloned()
            .unwrap_or_default();
        let body = serde_json::json!({ "seat_id": planned.seat });
        submissions.push(tokio::spawn(async move {
            let answer = http
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", format!("demo-{i}"))
                .json(&body)
                .send()
                .await;
            drop(permit);
            let answer = answer?;
            anyhow::ensure!(
                answer.status() == 202,
                "booking {i} was refused: {}",
                answer.status()
            );
            Ok(answer.json::<BookingAccepted>().await?)
        }));
        if i == 29 {
            // The contested bookings come after the first ones were accepted.
            for submission in submissions.drain(..) {
                submission.await??;
            }
        }
    }
    for submission in submissions {
        submission.await??;
    }

    // Watch the sagas finish.
    let reservation = endpoints.service("reservation").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let outcomes = loop {
        let summary: ReservationSummary = http
            .get(format!("{reservation}/admin/summary"))
            .send()
            .await?
            .json()
            .await?;
        let finished = summary.confirmed + summary.cancelled + summary.rejected;
        progress.set_position(finished as u64);
        progress.set_message(format!(
            "{} confirmed · {} cancelled · {} rejected",
            summary.confirmed, summary.cancelled, summary.rejected
        ));
        if summary.pending == 0 && finished as usize >= plan.len() || Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    progress.finish();

    // Let analytics catch up (it reports its own lag), then judge.
    let analytics_url = format!("{}/stats/summary", endpoints.service("analytics"));
    let mut analytics = None;
    for _ in 0..100 {
        let summary: AnalyticsSummary = http.get(&analytics_url).send().await?.json().await?;
        let caught_up =
            summary.confirmed == outcomes.confirmed && summary.freshness.messages_behind == Some(0);
        analytics = Some(summary);
        if caught_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let urls = ServiceUrls {
        reservation: endpoints.service("reservation"),
        inventory: endpoints.service("inventory"),
        payment: endpoints.service("payment"),
    };
    let snapshot = invariants::snapshot(&http, urls).await?;
    let violations = invariants::check(&snapshot, seed.initial_points());
    Ok(DemoReport {
        submitted: plan.len(),
        expected,
        seats_sold: snapshot.inventory.sold,
        points_before: snapshot.payment.initial_total,
        points_after: snapshot.payment.balance_total,
        outcomes: snapshot.reservation,
        analytics,
        violations,
        elapsed: started.elapsed(),
        startup: None,
        peak_rss_mib: None,
    })
}
