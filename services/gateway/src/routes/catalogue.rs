//! `GET /concerts` and `GET /schedules/{schedule_id}/seats`: browsing.

use axum::{
    extract::{Path, State},
    response::Response,
};
use faultline_contracts::http::{ConcertView, Problem, SeatView};
use faultline_kit::http::ApiError;
use tracing::field::Empty;

use super::AppState;
use crate::{
    auth::{AuthUser, Protected},
    domain::PathId,
};

/// Concerts with their schedules.
#[utoipa::path(
    get,
    path = "/concerts",
    tag = "catalogue",
    responses(
        (status = 200, description = "The catalogue", body = Vec<ConcertView>),
        Protected,
    )
)]
#[tracing::instrument(name = "concerts", skip_all, fields(user_id = Empty))]
pub async fn concerts(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Response, ApiError> {
    Ok(state
        .upstreams
        .inventory
        .get("/concerts")
        .await?
        .into_response())
}

/// A schedule's seats with their status (AVAILABLE, HELD, SOLD).
#[utoipa::path(
    get,
    path = "/schedules/{schedule_id}/seats",
    tag = "catalogue",
    params(("schedule_id" = String, Path, description = "A schedule id from /concerts")),
    responses(
        (status = 200, description = "The seats", body = Vec<SeatView>),
        (status = 404, description = "No such schedule", body = Problem),
        Protected,
    )
)]
#[tracing::instrument(name = "seats", skip_all, fields(user_id = Empty, schedule_id = %schedule_id))]
pub async fn seats(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(schedule_id): Path<String>,
) -> Result<Response, ApiError> {
    let schedule = PathId::parse(&schedule_id)
        .map_err(|_| ApiError::not_found(format!("no schedule {schedule_id:?}")))?;
    let answer = state
        .upstreams
        .inventory
        .get(&format!("/schedules/{schedule}/seats"))
        .await?;
    let mut response = answer.into_response();
    // Seats of a public catalogue: never the booking ids of other users.
    if response.status().is_success() {
        let body = axum::body::to_bytes(std::mem::take(response.body_mut()), usize::MAX)
            .await
            .map_err(ApiError::internal)?;
        let mut seats: Vec<SeatView> = serde_json::from_slice(&body).map_err(ApiError::internal)?;
        for seat in &mut seats {
            seat.booking_id = None;
        }
        return Ok(axum::response::IntoResponse::into_response(
            faultline_kit::http::Json(seats),
        ));
    }
    Ok(response)
}
