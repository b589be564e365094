//! `GET /me/bookings` and `GET /me/wallet`: the authenticated user's own data.

use axum::{extract::State, response::Response};
use faultline_contracts::http::{BookingView, Problem, WalletView};
use faultline_kit::http::ApiError;
use tracing::field::Empty;

use super::AppState;
use crate::auth::{AuthUser, Protected};

/// The authenticated user's bookings, newest first.
#[utoipa::path(
    get,
    path = "/me/bookings",
    tag = "me",
    responses(
        (status = 200, description = "The user's bookings", body = Vec<BookingView>),
        Protected,
    )
)]
#[tracing::instrument(name = "my bookings", skip_all, fields(user_id = Empty))]
pub async fn bookings(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    Ok(state
        .upstreams
        .reservation
        .get(&format!("/users/{}/bookings", user.0))
        .await?
        .into_response())
}

/// The authenticated user's point balance.
#[utoipa::path(
    get,
    path = "/me/wallet",
    tag = "me",
    responses(
        (status = 200, description = "The user's wallet", body = WalletView),
        (status = 404, description = "The user has no wallet", body = Problem),
        Protected,
    )
)]
#[tracing::instrument(name = "my wallet", skip_all, fields(user_id = Empty))]
pub async fn wallet(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    Ok(state
        .upstreams
        .payment
        .get(&format!("/wallets/{}", user.0))
        .await?
        .into_response())
}
