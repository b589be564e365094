//! Inventory's HTTP endpoints, one file per resource.

pub mod admin;
pub mod concerts;
pub mod seats;

use axum::{Router, routing::get};
use faultline_kit::storage::Db;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub readiness: faultline_kit::readiness::Readiness,
    pub db: Db,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/concerts", get(concerts::list))
        .route("/schedules/{schedule_id}/seats", get(seats::of_schedule))
        .route("/seats/{seat_id}", get(seats::one))
        .route("/admin/summary", get(admin::summary))
        .route("/admin/seats", get(admin::seats))
        .with_state(state.clone())
        .merge(faultline_kit::http::health_routes(
            Some(state.db.clone()),
            state.readiness.clone(),
        ))
}
