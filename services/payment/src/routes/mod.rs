//! Payment's HTTP endpoints, one file per resource.

pub mod admin;
pub mod charges;
pub mod refunds;
pub mod wallets;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::{get, post},
};
use faultline_kit::{idempotency::IdempotencyStore, storage::Db};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub readiness: faultline_kit::readiness::Readiness,
    pub db: Db,
    pub idempotency: IdempotencyStore,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/charges", post(charges::charge))
        .route("/refunds", post(refunds::refund))
        .route("/wallets/{user_id}", get(wallets::wallet))
        .route("/admin/summary", get(admin::summary))
        .with_state(state.clone())
        .merge(faultline_kit::http::health_routes(
            Some(state.db.clone()),
            state.readiness.clone(),
        ))
}

/// A JSON answer with a stored status (the same bytes a replay will send).
fn stored_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
