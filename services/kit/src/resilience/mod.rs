//! Resilience for outgoing calls, as tower layers, plus the jittered backoff retries use.
//!
//! - [`backoff`]: exponential backoff with jitter, as a pure function of the attempt number.
//! - [`circuit_breaker`]: opens after consecutive failures, fails fast while open, lets one
//!   probe through when half-open, logs every state change.
//! - [`client`]: the assembled stack for a service-to-service HTTP client.
//!
//! Bulkhead and timeout are tower's own (`ConcurrencyLimit` + `LoadShed`, `Timeout`).

pub mod backoff;
pub mod circuit_breaker;
pub mod client;

/// The error type of tower stacks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an error from a resilient call was, found by walking its source chain.
///
/// The distinction that matters to callers: [`FailureKind::was_sent`] — a request that was never
/// sent certainly had no effect; one that timed out may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The call exceeded its timeout: the outcome is unknown.
    Timeout,
    /// The bulkhead was full: the call was never made.
    Overloaded,
    /// The circuit is open: the call was never made.
    CircuitOpen,
    /// The connection could not be made: the request was never sent.
    Connect,
    /// Anything else (reset mid-request, bad response, …): the outcome may be unknown.
    Other,
}

impl FailureKind {
    /// Whether the request may have reached the server.
    pub fn was_sent(self) -> bool {
        matches!(self, Self::Timeout | Self::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Overloaded => "bulkhead_full",
            Self::CircuitOpen => "circuit_open",
            Self::Connect => "connect",
            Self::Other => "other",
        }
    }
}

/// Classifies `error` by what caused it.
pub fn classify(error: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<tower::timeout::error::Elapsed>() {
            return FailureKind::Timeout;
        }
        if e.is::<tower::load_shed::error::Overloaded>() {
            return FailureKind::Overloaded;
        }
        if e.is::<circuit_breaker::CircuitOpen>() {
            return FailureKind::CircuitOpen;
        }
        if let Some(reqwest) = e.downcast_ref::<reqwest::Error>() {
            if reqwest.is_timeout() {
                return FailureKind::Timeout;
            }
            if reqwest.is_connect() {
                return FailureKind::Connect;
            }
        }
        current = e.source();
    }
    FailureKind::Other
}
