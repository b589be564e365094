//! The resilient HTTP client stack for service-to-service calls.
//!
//! Layer order, outermost first, and why:
//! 1. **bulkhead** (`LoadShed` over `ConcurrencyLimit`): at most `max_in_flight` calls at once;
//!    one more is refused at once (`Overloaded`) rather than queued, so a slow dependency cannot
//!    pile up this service's tasks. Refusals never reach the breaker: they say nothing about the
//!    dependency.
//! 2. **circuit breaker**: fails fast while the dependency keeps failing; counts timeouts,
//!    connection errors and 5xx answers.
//! 3. **timeout**: bounds each call; an elapsed call is an unknown outcome for the caller.
//! 4. reqwest, with its connection pool (one pool per client, never a connection per request).
//!
//! Retries are not in the stack: the caller decides, because only it knows whether a retry is
//! safe (our callers retry with the same idempotency key, with [`super::backoff`]).

use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

use super::{
    BoxError,
    circuit_breaker::{Breaker, BreakerSettings, CircuitBreakerLayer},
};

/// The configurable form of a [`ClientPolicy`], flattened into a service's settings for each
/// dependency (`timeout_ms`, `max_in_flight`, `breaker_failure_threshold`, `breaker_open_ms`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    pub timeout_ms: u64,
    pub max_in_flight: usize,
    pub breaker_failure_threshold: u32,
    pub breaker_open_ms: u64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 2_000,
            max_in_flight: 128,
            breaker_failure_threshold: 5,
            breaker_open_ms: 2_000,
        }
    }
}

impl ClientSettings {
    pub fn policy(&self) -> ClientPolicy {
        ClientPolicy {
            timeout: Duration::from_millis(self.timeout_ms),
            max_in_flight: self.max_in_flight,
            breaker: BreakerSettings {
                failure_threshold: self.breaker_failure_threshold,
                open_for: Duration::from_millis(self.breaker_open_ms),
            },
        }
    }
}

/// Tuning of one dependency's stack.
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub breaker: BreakerSettings,
}

/// A cloneable HTTP service with the whole stack; clones share the bulkhead and the breaker.
#[derive(Clone)]
pub struct ResilientClient {
    service: BoxCloneSyncService<reqwest::Request, reqwest::Response, BoxError>,
    http: reqwest::Client,
    breaker: Breaker,
}

impl std::fmt::Debug for ResilientClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientClient")
            .field("breaker", &self.breaker.state())
            .finish()
    }
}

/// What the breaker counts as the dependency failing. A 503 that carries `Retry-After` is the
/// dependency's own admission control refusing work it cannot finish in time (see
/// [`crate::admission`]): it is alive and answering, so opening the circuit on it would turn a
/// brief overload into a blanket outage.
fn is_failure(result: &Result<reqwest::Response, BoxError>) -> bool {
    match result {
        Ok(response) => {
            let deliberate_refusal = response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                && response
                    .headers()
                    .contains_key(reqwest::header::RETRY_AFTER);
            response.status().is_server_error() && !deliberate_refusal
        }
        Err(_) => true,
    }
}

impl ResilientClient {
    /// Builds the stack for the dependency called `name` (used in breaker logs).
    pub fn new(name: &str, policy: &ClientPolicy) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        let breaker = Breaker::new(name, policy.breaker.clone());
        let service = ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(policy.max_in_flight)
            .layer(CircuitBreakerLayer::new(breaker.clone(), is_failure))
            .timeout(policy.timeout)
            .service(http.clone())
            .map_err(Into::<BoxError>::into);
        Ok(Self {
            service: BoxCloneSyncService::new(service),
            http,
            breaker,
        })
    }

    /// A request builder on the underlying client (for building, not sending).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` through the stack, with the current trace context injected.
    pub async fn send(&self, mut request: reqwest::Request) -> Result<reqwest::Response, BoxError> {
        crate::telemetry::inject_http(request.headers_mut());
        self.service.clone().oneshot(request).await
    }
}
