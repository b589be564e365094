//! Inventory's settings: the common sections plus the catalogue seeded at start-up.

use faultline_kit::{app::ServiceSettings, config::CommonSettings};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    #[serde(default)]
    pub seed: SeedSettings,
}

/// The catalogue: inserted at start-up if missing (existing rows are left as they are) — the
/// same shape `POST /admin/catalogue` adds at run time.
pub type SeedSettings = CatalogueSeed;

pub use faultline_contracts::http::{CatalogueSeed, ConcertSeed, ScheduleSeed};

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}
