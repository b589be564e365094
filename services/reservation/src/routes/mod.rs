//! Reservation's HTTP endpoints, one file per resource.

pub mod admin;
pub mod bookings;

use axum::{
    Router,
    routing::{get, post},
};

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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/bookings", post(bookings::create))
        .route("/bookings/{booking_id}", get(bookings::one))
        .route("/users/{user_id}/bookings", get(bookings::of_user))
        .route("/admin/summary", get(admin::summary))
        .route("/admin/bookings", get(admin::bookings))
        .route("/admin/sagas/{saga_id}/log", get(admin::saga_log))
        .with_state(state.clone())
        .merge(faultline_kit::http::health_routes(
            Some(state.orchestrator.db().clone()),
            state.readiness.clone(),
        ))
}
