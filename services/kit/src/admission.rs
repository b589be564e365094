//! Admission control on work in flight: a service refuses new work at once — 503 with
//! `Retry-After` — while it already holds more unfinished work than it can finish in time.
//!
//! Why in flight and not a rate: the rate a system sustains moves with the machine, the build,
//! the database, faults and telemetry; the amount of accepted, unfinished work is what makes
//! every accepted request late when it grows (Little's law: delay = in flight / throughput).
//! The limit follows from the same law: the throughput measured over the last seconds times the
//! queueing delay the service accepts (`target_delay_ms`), between `min_in_flight` and
//! `max_in_flight`. A release build on two cores and a debug build a fifth as fast thereby both
//! keep accepted work about `target_delay_ms` from done, and refuse the rest immediately instead
//! of queueing it past its deadline.
//!
//! The gauge ([`InFlight`]) is set from the database (the source of truth) every `refresh_ms`,
//! and counts each admission at once so a burst between two refreshes is not let through.
//! Throughput is what left the gauge: the previous count plus this process's admissions minus the
//! new count (exact for one replica; with several, each counts only its own admissions and
//! underestimates, which errs on the side of refusing).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use axum::http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::{http::ApiError, readiness::InFlight, shutdown::CancellationToken};

/// How much work in flight a service accepts.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct AdmissionSettings {
    /// The queueing delay accepted work may face: the limit is the measured throughput times
    /// this.
    pub target_delay_ms: u64,
    /// The limit never falls below this: at start-up, before any throughput was measured, and
    /// for a burst of concurrent requests (racing retries of one idempotency key included) on
    /// a quiet system.
    pub min_in_flight: i64,
    /// Nor rises above this. 0 switches admission control off.
    pub max_in_flight: i64,
    /// The `Retry-After` of a refusal, in seconds.
    pub retry_after_secs: u64,
    /// How often the gauge is re-read from the database.
    pub refresh_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            target_delay_ms: 2_000,
            min_in_flight: 100,
            max_in_flight: 2_000,
            retry_after_secs: 1,
            refresh_ms: 100,
        }
    }
}

/// An admitted request's place in the gauge: given back when dropped unless [`Ticket::keep`] was
/// called — a replayed, conflicting or failed request created no work and must not count.
#[derive(Debug)]
#[must_use = "a ticket dropped at once gives its place back"]
pub struct Ticket {
    admission: Admission,
    kept: bool,
}

impl Ticket {
    /// The request became work in flight (the gauge's next refresh finds it in the database).
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.kept {
            self.admission.in_flight.add(-1);
            self.admission.admitted.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Admits or refuses new work against an [`InFlight`] gauge and the current limit.
#[derive(Debug, Clone)]
pub struct Admission {
    in_flight: InFlight,
    /// Admissions since the last refresh (for the throughput estimate).
    admitted: Arc<AtomicI64>,
    /// The current limit (see the module docs).
    limit: Arc<AtomicI64>,
    settings: AdmissionSettings,
}

impl Admission {
    pub fn new(in_flight: InFlight, settings: AdmissionSettings) -> Self {
        let admission = Self {
            in_flight,
            admitted: Arc::default(),
            limit: Arc::default(),
            settings,
        };
        // Before any throughput was measured: the floor.
        admission
            .limit
            .store(admission.limit_for(0.0), Ordering::Relaxed);
        admission
    }

    /// The limit in force now.
    pub fn limit(&self) -> i64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// The limit for a measured throughput (work finished per second).
    fn limit_for(&self, throughput_per_s: f64) -> i64 {
        let s = &self.settings;
        if s.max_in_flight <= 0 {
            return 0;
        }
        let by_delay = (throughput_per_s * s.target_delay_ms as f64 / 1000.0) as i64;
        by_delay.clamp(s.min_in_flight.clamp(1, s.max_in_flight), s.max_in_flight)
    }

    /// The gauge this admission judges by.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Counts one unit of new work in — for as long as the returned [`Ticket`] says it became
    /// work (see [`Ticket::keep`]) — or refuses it with 503 and `Retry-After`.
    pub fn admit(&self) -> Result<Ticket, ApiError> {
        let limit = self.limit();
        let current = self.in_flight.get();
        if limit > 0 && current >= limit {
            tracing::debug!(in_flight = current, limit, "admission refused");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{current} requests are still in flight (limit {limit}); retry after {} s",
                    self.settings.retry_after_secs
                ),
            )
            .with_header(
                header::RETRY_AFTER,
                HeaderValue::from(self.settings.retry_after_secs),
            ));
        }
        self.in_flight.add(1);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            kept: false,
        })
    }

    /// Re-reads the gauge with `count` every `refresh_ms` until `shutdown`, and moves the limit
    /// with the throughput measured (an exponentially weighted average over about two seconds).
    /// A failed count keeps the last values (and says so) rather than stopping the service.
    pub async fn refresh<F, Fut>(&self, count: F, shutdown: CancellationToken) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<i64, sqlx::Error>>,
    {
        let period = Duration::from_millis(self.settings.refresh_ms.max(10));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refusing = false;
        let mut throughput = 0.0_f64;
        let mut last: Option<(Instant, i64)> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let admitted = self.admitted.swap(0, Ordering::Relaxed);
            let now_count = match count().await {
                Ok(value) => value,
                Err(error) => {
                    tracing::warn!(%error, "cannot count the work in flight");
                    continue;
                }
            };
            self.in_flight.set(now_count);
            let now = Instant::now();
            if let Some((at, before)) = last {
                let seconds = now.duration_since(at).as_secs_f64().max(1e-3);
                let finished = (before + admitted - now_count).max(0) as f64;
                let weight = (seconds / 2.0).min(1.0);
                throughput += weight * (finished / seconds - throughput);
            }
            last = Some((now, now_count));
            let limit = self.limit_for(throughput);
            self.limit.store(limit, Ordering::Relaxed);
            let over = limit > 0 && now_count >= limit;
            if over != refusing {
                refusing = over;
                if over {
                    tracing::warn!(
                        in_flight = now_count,
                        limit,
                        throughput_per_s = throughput,
                        "overloaded: refusing new work with 503 until in-flight work drains"
                    );
                } else {
                    tracing::info!(
                        in_flight = now_count,
                        limit,
                        throughput_per_s = throughput,
                        "admitting new work again"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limit: i64) -> Admission {
        Admission::new(
            InFlight::default(),
            AdmissionSettings {
                max_in_flight: limit,
                min_in_flight: limit,
                ..Default::default()
            },
        )
    }

    #[test]
    fn work_is_admitted_up_to_the_limit_and_then_refused_with_retry_after() {
        let admission = admission(2);
        admission.admit().expect("first").keep();
        admission.admit().expect("second").keep();
        let refused = admission.admit().expect_err("third is over the limit");
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            refused
                .headers
                .iter()
                .any(|(name, _)| name == header::RETRY_AFTER)
        );
        assert_eq!(admission.in_flight().get(), 2);
    }

    #[test]
    fn finished_work_makes_room_again() {
        let admission = admission(1);
        admission.admit().expect("first").keep();
        assert!(admission.admit().is_err());
        admission.in_flight().set(0);
        admission.admit().expect("room again").keep();
    }

    #[test]
    fn the_limit_is_throughput_times_the_target_delay_within_its_bounds() {
        let admission = Admission::new(
            InFlight::default(),
            AdmissionSettings {
                target_delay_ms: 2_000,
                min_in_flight: 20,
                max_in_flight: 500,
                ..Default::default()
            },
        );
        assert_eq!(admission.limit(), 20, "before any measurement: the floor");
        assert_eq!(admission.limit_for(0.0), 20);
        assert_eq!(admission.limit_for(100.0), 200);
        assert_eq!(admission.limit_for(10_000.0), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_follows_the_throughput_the_gauge_shows() {
        let admission = Admission::new(
            InFlight::default(),
            AdmissionSettings {
                target_delay_ms: 1_000,
                min_in_flight: 5,
                max_in_flight: 10_000,
                refresh_ms: 100,
                ..Default::default()
            },
        );
        // 50 admitted and 50 finished every 100 ms: 500 per second, none left over.
        let shutdown = CancellationToken::new();
        let refresher = {
            let (admission, shutdown) = (admission.clone(), shutdown.clone());
            tokio::spawn(async move { admission.refresh(|| async { Ok(0) }, shutdown).await })
        };
        for _ in 0..40 {
            for _ in 0..50 {
                admission.admitted.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown.cancel();
        refresher.await.expect("joined").expect("refreshed");
        let limit = admission.limit();
        assert!(
            (400..=520).contains(&limit),
            "about 500/s × 1 s, got {limit}"
        );
    }

    #[test]
    fn a_request_that_created_nothing_gives_its_place_back() {
        let admission = admission(1);
        let replayed = admission.admit().expect("admitted");
        assert!(
            admission.admit().is_err(),
            "the place is taken while it runs"
        );
        drop(replayed);
        assert_eq!(admission.in_flight().get(), 0);
        admission.admit().expect("the place is free again").keep();
    }

    #[test]
    fn a_limit_of_zero_admits_everything() {
        let admission = admission(0);
        for _ in 0..10 {
            admission.admit().expect("admitted").keep();
        }
    }
}
