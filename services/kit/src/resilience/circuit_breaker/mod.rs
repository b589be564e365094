//! A circuit breaker as a tower layer.
//!
//! Written here rather than taken from a crate: the kept crates (`failsafe`) are not tower
//! layers, and we need three things together — the tower `Layer`/`Service` shape so it stacks
//! with tower's timeout and bulkhead, a response classifier (a 5xx is a failure even though the
//! call "succeeded"), and a tracing event on every state change so a person can see the breaker
//! open in the logs and traces.
//!
//! States: **closed** counts consecutive failures and opens at the threshold; **open** fails
//! every call at once with [`CircuitOpen`] until the cool-down passes; **half-open** lets one
//! probe through — success closes, failure re-opens.

mod error;
mod future;
mod layer;

pub use error::CircuitOpen;
pub use layer::CircuitBreakerLayer;

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tower::Service;

use super::BoxError;

/// Breaker tuning.
#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe is allowed.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(2),
        }
    }
}

/// The breaker's state, as reported and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

/// Shared breaker state. A std `Mutex`, not tokio's: it is held for a few instructions and never
/// across an await.
#[derive(Debug, Clone)]
pub struct Breaker {
    name: Arc<str>,
    settings: BreakerSettings,
    inner: Arc<Mutex<Inner>>,
}

impl Breaker {
    pub fn new(name: &str, settings: BreakerSettings) -> Self {
        Self {
            name: name.into(),
            settings,
            inner: Arc::new(Mutex::new(Inner {
                state: State::Closed,
                consecutive_failures: 0,
                opened_at: None,
                probe_in_flight: false,
            })),
        }
    }

    pub fn state(&self) -> State {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a single assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn transition(&self, inner: &mut Inner, to: State) {
        if inner.state != to {
            tracing::warn!(
                circuit.name = %self.name,
                circuit.from = inner.state.as_str(),
                circuit.state = to.as_str(),
                circuit.consecutive_failures = inner.consecutive_failures,
                "circuit breaker state changed"
            );
            inner.state = to;
        }
    }

    /// Whether a call may go through now; `Err` means fail fast. `Ok(true)` marks a probe.
    fn admit(&self) -> Result<bool, CircuitOpen> {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(false),
            State::Open => {
                let cooled = inner
                    .opened_at
                    .is_some_and(|at| at.elapsed() >= self.settings.open_for);
                if cooled && !inner.probe_in_flight {
                    self.transition(&mut inner, State::HalfOpen);
                    inner.probe_in_flight = true;
                    Ok(true)
                } else {
                    Err(CircuitOpen {
                        name: self.name.to_string(),
                    })
                }
            }
            State::HalfOpen => {
                if inner.probe_in_flight {
                    Err(CircuitOpen {
                        name: self.name.to_string(),
                    })
                } else {
                    inner.probe_in_flight = true;
                    Ok(true)
                }
            }
        }
    }

    fn record(&self, success: bool, probe: bool) {
        let mut inner = self.lock();
        if probe {
            inner.probe_in_flight = false;
        }
        if success {
            inner.consecutive_failures = 0;
            if inner.state != State::Closed {
                self.transition(&mut inner, State::Closed);
                inner.opened_at = None;
            }
        } else {
            inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
            let trip = match inner.state {
                State::Closed => inner.consecutive_failures >= self.settings.failure_threshold,
                State::HalfOpen => probe,
                State::Open => false,
            };
            if trip {
                inner.opened_at = Some(Instant::now());
                self.transition(&mut inner, State::Open);
            }
        }
    }
}

/// Decides whether a completed call counts as a failure.
pub type Classifier<Res> = fn(&Result<Res, BoxError>) -> bool;

/// The breaker wrapped around a service.
pub struct CircuitBreaker<S, Res> {
    inner: S,
    breaker: Breaker,
    is_failure: Classifier<Res>,
}

// Not derived: a derive would demand `Res: Clone`, which responses are not.
impl<S: Clone, Res> Clone for CircuitBreaker<S, Res> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            is_failure: self.is_failure,
        }
    }
}

impl<S, Req> Service<Req> for CircuitBreaker<S, S::Response>
where
    S: Service<Req> + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = future::ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let probe = match self.breaker.admit() {
            Ok(probe) => probe,
            Err(open) => return future::ResponseFuture::failed(open),
        };
        let call = self.inner.call(request);
        let breaker = self.breaker.clone();
        let is_failure = self.is_failure;
        future::ResponseFuture::new(async move {
            let result = call.await.map_err(Into::into);
            breaker.record(!is_failure(&result), probe);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceExt as _, service_fn};

    fn failing_when_negative(result: &Result<i32, BoxError>) -> bool {
        !matches!(result, Ok(n) if *n >= 0)
    }

    #[tokio::test]
    async fn the_circuit_opens_after_the_threshold_and_fails_fast() {
        let breaker = Breaker::new(
            "test",
            BreakerSettings {
                failure_threshold: 3,
                open_for: Duration::from_secs(60),
            },
        );
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = calls.clone();
        let inner = service_fn(move |n: i32| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, BoxError>(n) }
        });
        let service =
            CircuitBreakerLayer::new(breaker.clone(), failing_when_negative).layer_service(inner);
        for _ in 0..3 {
            let _ = service.clone().oneshot(-1).await;
        }
        assert_eq!(breaker.state(), State::Open);
        let err = service.clone().oneshot(1).await.unwrap_err();
        assert_eq!(
            super::super::classify(err.as_ref()),
            super::super::FailureKind::CircuitOpen
        );
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "no call while open"
        );
    }

    #[tokio::test]
    async fn a_successful_probe_closes_the_circuit_and_a_failed_one_reopens_it() {
        let breaker = Breaker::new(
            "test",
            BreakerSettings {
                failure_threshold: 1,
                open_for: Duration::from_millis(20),
            },
        );
        let service = CircuitBreakerLayer::new(breaker.clone(), failing_when_negative)
            .layer_service(service_fn(|n: i32| async move { Ok::<_, BoxError>(n) }));
        let _ = service.clone().oneshot(-1).await;
        assert_eq!(breaker.state(), State::Open);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let _ = service.clone().oneshot(-1).await;
        assert_eq!(breaker.state(), State::Open, "failed probe re-opens");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(service.clone().oneshot(7).await.expect("probe passes"), 7);
        assert_eq!(breaker.state(), State::Closed);
    }
}
