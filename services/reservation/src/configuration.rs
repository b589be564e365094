//! Reservation's settings: the common sections, how to reach payment, and the saga's timing.

use faultline_kit::{
    admission::AdmissionSettings, app::ServiceSettings, config::CommonSettings,
    resilience::client::ClientSettings,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub payment: PaymentSettings,
    #[serde(default)]
    pub saga: SagaSettings,
    /// How many bookings may be in flight (sagas not yet terminal) before new ones are refused.
    #[serde(default)]
    pub admission: AdmissionSettings,
    /// How long a booking request's idempotency key is remembered.
    #[serde(default = "default_key_ttl_secs")]
    pub idempotency_ttl_secs: u64,
}

fn default_key_ttl_secs() -> u64 {
    24 * 3600
}

impl Settings {
    /// Reservation reaching payment at `payment`, every other setting at its default.
    pub fn new(common: CommonSettings, payment: PaymentSettings) -> Self {
        Self {
            common,
            payment,
            saga: SagaSettings::default(),
            admission: AdmissionSettings::default(),
            idempotency_ttl_secs: default_key_ttl_secs(),
        }
    }
}

/// The payment dependency and its resilience policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentSettings {
    pub base_url: String,
    #[serde(flatten)]
    pub client: ClientSettings,
}

impl PaymentSettings {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            client: ClientSettings::default(),
        }
    }
}

/// The saga's deadlines and retry timing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SagaSettings {
    /// How long inventory has to answer HoldSeat before the saga compensates.
    pub hold_timeout_ms: u64,
    /// How long the charge step may retry an unknown outcome before compensating.
    pub charge_deadline_ms: u64,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// How often the timer looks for due sagas it was not told about.
    pub scan_interval_ms: u64,
    /// Saga steps running at once (a bulkhead for the timer).
    pub max_concurrent_steps: usize,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            hold_timeout_ms: 10_000,
            charge_deadline_ms: 10_000,
            retry_base_ms: 100,
            retry_cap_ms: 2_000,
            scan_interval_ms: 200,
            max_concurrent_steps: 128,
        }
    }
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}
