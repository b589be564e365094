//! Analytics' HTTP queries; every answer carries the model's freshness. Registered through
//! utoipa-axum so its `/openapi.json` is generated from the same handlers (completed and checked
//! by the kit's `openapi` module).

pub mod stats;

use axum::Router;
use faultline_kit::{messaging::lag::ConsumerLag, readiness::Readiness, storage::Db};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub lag: ConsumerLag,
    pub readiness: Readiness,
}

/// Everything analytics serves: its API, the kit's routes, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(faultline_kit::openapi::document(
        "Faultline analytics",
        "The booking read model (CQRS); every answer says how fresh it is.",
    ))
    .routes(routes!(stats::summary))
    .routes(routes!(stats::user))
    .routes(routes!(stats::concerts))
    .with_state(state.clone());
    faultline_kit::openapi::serve(api, (Some(state.db.clone()), state.readiness.clone()))
}
