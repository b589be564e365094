//! Payment's settings: the common sections plus the wallets seeded at start-up.

use faultline_kit::{app::ServiceSettings, config::CommonSettings};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    #[serde(default)]
    pub seed: SeedSettings,
    /// How long a charge or refund key is remembered.
    #[serde(default = "default_key_ttl_secs")]
    pub idempotency_ttl_secs: u64,
}

fn default_key_ttl_secs() -> u64 {
    24 * 3600
}

impl Settings {
    /// Payment with `seed`'s wallets, every other setting at its default.
    pub fn new(common: CommonSettings, seed: SeedSettings) -> Self {
        Self {
            common,
            seed,
            idempotency_ttl_secs: default_key_ttl_secs(),
        }
    }
}

/// Wallets created at start-up if missing (existing wallets are left as they are) — the same
/// shape `POST /admin/wallets` creates at run time.
pub type SeedSettings = WalletsSeed;

pub use faultline_contracts::http::{WalletSeed, WalletsSeed};

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}
