//! Analytics' HTTP queries; every answer carries the model's freshness.

pub mod stats;

use axum::{Router, routing::get};
use faultline_kit::{messaging::lag::ConsumerLag, readiness::Readiness, storage::Db};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub lag: ConsumerLag,
    pub readiness: Readiness,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/stats/summary", get(stats::summary))
        .route("/stats/users/{user_id}", get(stats::user))
        .route("/stats/concerts", get(stats::concerts))
        .with_state(state.clone())
        .merge(faultline_kit::http::health_routes(
            Some(state.db.clone()),
            state.readiness.clone(),
        ))
}
