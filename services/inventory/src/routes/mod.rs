//! Inventory's HTTP endpoints, one file per resource, registered through utoipa-axum so its
//! `/openapi.json` is generated from the same handlers (completed and checked by the kit's
//! `openapi` module).

pub mod admin;
pub mod concerts;
pub mod seats;

use axum::Router;
use faultline_kit::storage::Db;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub readiness: faultline_kit::readiness::Readiness,
    pub db: Db,
}

/// Everything inventory serves: its API, the kit's routes, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(faultline_kit::openapi::document(
        "Faultline inventory",
        "Concerts, schedules and seats (internal: read by the gateway and the checkers).",
    ))
    .routes(routes!(concerts::list))
    .routes(routes!(seats::of_schedule))
    .routes(routes!(seats::one))
    .routes(routes!(admin::summary))
    .routes(routes!(admin::seats))
    .routes(routes!(admin::add_catalogue))
    .with_state(state.clone());
    faultline_kit::openapi::serve(api, (Some(state.db.clone()), state.readiness.clone()))
}
