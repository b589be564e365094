//! The gateway's settings: the common sections, where the upstreams are, the token secret and
//! the per-user rate limit. It keeps no database.

use faultline_kit::{
    app::ServiceSettings,
    config::CommonSettings,
    resilience::{circuit_breaker::BreakerSettings, client::ClientPolicy},
};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub auth: AuthSettings,
    pub upstream: UpstreamSettings,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

/// Bearer tokens: HS256 with this secret.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub secret: SecretString,
    #[serde(default = "default_token_ttl_secs")]
    pub token_ttl_secs: u64,
}

fn default_token_ttl_secs() -> u64 {
    7 * 24 * 3600
}

/// The services behind the gateway and the policy for calling them.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub reservation_url: String,
    pub inventory_url: String,
    pub payment_url: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_failure_threshold")]
    pub breaker_failure_threshold: u32,
    #[serde(default = "default_open_ms")]
    pub breaker_open_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3_000
}
fn default_max_in_flight() -> usize {
    256
}
fn default_failure_threshold() -> u32 {
    5
}
fn default_open_ms() -> u64 {
    2_000
}

impl UpstreamSettings {
    pub fn new(reservation_url: &str, inventory_url: &str, payment_url: &str) -> Self {
        Self {
            reservation_url: reservation_url.to_owned(),
            inventory_url: inventory_url.to_owned(),
            payment_url: payment_url.to_owned(),
            timeout_ms: default_timeout_ms(),
            max_in_flight: default_max_in_flight(),
            breaker_failure_threshold: default_failure_threshold(),
            breaker_open_ms: default_open_ms(),
        }
    }

    pub fn policy(&self) -> ClientPolicy {
        ClientPolicy {
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            max_in_flight: self.max_in_flight,
            breaker: BreakerSettings {
                failure_threshold: self.breaker_failure_threshold,
                open_for: std::time::Duration::from_millis(self.breaker_open_ms),
            },
        }
    }
}

/// Requests per user: a sustained rate with a burst allowance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_second: 50,
            burst: 100,
        }
    }
}
