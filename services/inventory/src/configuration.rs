//! Inventory's settings: the common sections plus the catalogue seeded at start-up.

use faultline_kit::{app::ServiceSettings, config::CommonSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    #[serde(default)]
    pub seed: SeedSettings,
}

/// The catalogue: inserted at start-up if missing (existing rows are left as they are).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SeedSettings {
    #[serde(default)]
    pub concerts: Vec<ConcertSeed>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConcertSeed {
    pub id: String,
    pub title: String,
    pub schedules: Vec<ScheduleSeed>,
}

/// One performance with `seats` seats at `price` points each, ids `{schedule id}-{n:03}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSeed {
    pub id: String,
    pub starts_at: String,
    pub seats: u32,
    pub price: i64,
}

impl ScheduleSeed {
    /// The id of seat number `n` (1-based).
    pub fn seat_id(&self, n: u32) -> String {
        format!("{}-{n:03}", self.id)
    }
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}
