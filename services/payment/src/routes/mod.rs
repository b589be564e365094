//! Payment's HTTP endpoints, one file per resource, registered through utoipa-axum so its
//! `/openapi.json` is generated from the same handlers (completed and checked by the kit's
//! `openapi` module).

pub mod admin;
pub mod charges;
pub mod refunds;
pub mod wallets;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use faultline_kit::{idempotency::IdempotencyStore, storage::Db};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub readiness: faultline_kit::readiness::Readiness,
    pub db: Db,
    pub idempotency: IdempotencyStore,
}

/// Everything payment serves: its API, the kit's routes, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(faultline_kit::openapi::document(
        "Faultline payment",
        "Point wallets, charges and refunds (internal: called by reservation and the gateway).",
    ))
    .routes(routes!(charges::charge))
    .routes(routes!(refunds::refund))
    .routes(routes!(wallets::wallet))
    .routes(routes!(admin::summary))
    .routes(routes!(admin::add_wallets))
    .with_state(state.clone());
    faultline_kit::openapi::serve(api, (Some(state.db.clone()), state.readiness.clone()))
}

/// A stored answer as first sent: the same bytes and media type a replay will send.
fn stored_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(faultline_kit::idempotency::http::content_type(status)),
    );
    response
}
