//! Admission control on work in flight: a service refuses new work at once — 503 with
//! `Retry-After` — while it already holds more unfinished work than it can finish in time.
//!
//! Why in flight and not a rate: the rate a system sustains moves with the machine, the database,
//! faults and telemetry; the amount of accepted, unfinished work is what makes every accepted
//! request late when it grows (Little's law: latency = in flight / throughput). Bounding it keeps
//! accepted work finishing within its deadline and turns the rest into an honest, immediate
//! refusal instead of a queue that silently outgrows its deadlines.
//!
//! The gauge ([`InFlight`]) is set from the database (the source of truth, shared by replicas)
//! every `refresh_ms`, and counts each admission at once so a burst between two refreshes is not
//! let through.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::{http::ApiError, readiness::InFlight, shutdown::CancellationToken};

/// How much work in flight a service accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdmissionSettings {
    /// New work is refused while this much is unfinished. 0 switches admission control off.
    pub max_in_flight: i64,
    /// The `Retry-After` of a refusal, in seconds.
    pub retry_after_secs: u64,
    /// How often the gauge is re-read from the database.
    pub refresh_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 1_000,
            retry_after_secs: 1,
            refresh_ms: 100,
        }
    }
}

/// Admits or refuses new work against an [`InFlight`] gauge.
#[derive(Debug, Clone)]
pub struct Admission {
    in_flight: InFlight,
    settings: AdmissionSettings,
}

impl Admission {
    pub fn new(in_flight: InFlight, settings: AdmissionSettings) -> Self {
        Self {
            in_flight,
            settings,
        }
    }

    /// The gauge this admission judges by.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Counts one unit of new work in, or refuses it with 503 and `Retry-After`.
    pub fn admit(&self) -> Result<(), ApiError> {
        let limit = self.settings.max_in_flight;
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
        Ok(())
    }

    /// Re-reads the gauge with `count` every `refresh_ms` until `shutdown`. A failed count keeps
    /// the last value (and says so) rather than stopping the service.
    pub async fn refresh<F, Fut>(&self, count: F, shutdown: CancellationToken) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<i64, sqlx::Error>>,
    {
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.settings.refresh_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refused_before = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            match count().await {
                Ok(value) => {
                    self.in_flight.set(value);
                    let refusing =
                        self.settings.max_in_flight > 0 && value >= self.settings.max_in_flight;
                    if refusing != refused_before {
                        refused_before = refusing;
                        if refusing {
                            tracing::warn!(
                                in_flight = value,
                                limit = self.settings.max_in_flight,
                                "overloaded: refusing new work with 503 until in-flight work drains"
                            );
                        } else {
                            tracing::info!(
                                in_flight = value,
                                limit = self.settings.max_in_flight,
                                "admitting new work again"
                            );
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot count the work in flight"),
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
                ..Default::default()
            },
        )
    }

    #[test]
    fn work_is_admitted_up_to_the_limit_and_then_refused_with_retry_after() {
        let admission = admission(2);
        assert!(admission.admit().is_ok());
        assert!(admission.admit().is_ok());
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
        assert!(admission.admit().is_ok());
        assert!(admission.admit().is_err());
        admission.in_flight().set(0);
        assert!(admission.admit().is_ok());
    }

    #[test]
    fn a_limit_of_zero_admits_everything() {
        let admission = admission(0);
        for _ in 0..10 {
            assert!(admission.admit().is_ok());
        }
    }
}
