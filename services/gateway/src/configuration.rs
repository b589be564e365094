//! The gateway's settings: the common sections, where the upstreams are, the token secret and
//! the per-user rate limit. It keeps no database.

use faultline_kit::{
    app::ServiceSettings, config::CommonSettings, resilience::client::ClientSettings,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    #[serde(serialize_with = "faultline_kit::config::expose_secret")]
    pub secret: SecretString,
    #[serde(default = "default_token_ttl_secs")]
    pub token_ttl_secs: u64,
}

fn default_token_ttl_secs() -> u64 {
    7 * 24 * 3600
}

impl AuthSettings {
    /// Tokens signed with `secret`, valid for the default time.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: SecretString::from(secret.into()),
            token_ttl_secs: default_token_ttl_secs(),
        }
    }
}

/// The services behind the gateway and the policy for calling them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamSettings {
    pub reservation_url: String,
    pub inventory_url: String,
    pub payment_url: String,
    #[serde(flatten)]
    pub client: ClientSettings,
}

/// Requests per user: a sustained rate with a burst allowance.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
