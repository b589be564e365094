//! Reservation's HTTP endpoints, one file per resource, registered through utoipa-axum so its
//! `/openapi.json` is generated from the same handlers (completed and checked by the kit's
//! `openapi` module).

pub mod admin;
pub mod bookings;

use axum::Router;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::saga::Orchestrator;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub idempotency: faultline_kit::idempotency::IdempotencyStore,
    pub readiness: faultline_kit::readiness::Readiness,
    pub orchestrator: Orchestrator,
    /// Refuses new bookings while too many are in flight.
    pub admission: faultline_kit::admission::Admission,
}

/// Everything reservation serves: its API, the kit's routes, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(faultline_kit::openapi::document(
        "Faultline reservation",
        "Bookings and the booking saga (internal: called by the gateway and the checkers).",
    ))
    .routes(routes!(bookings::create))
    .routes(routes!(bookings::one))
    .routes(routes!(bookings::of_user))
    .routes(routes!(admin::summary))
    .routes(routes!(admin::bookings))
    .routes(routes!(admin::saga_log))
    .with_state(state.clone());
    faultline_kit::openapi::serve(
        api,
        (
            Some(state.orchestrator.db().clone()),
            state.readiness.clone(),
        ),
    )
}
