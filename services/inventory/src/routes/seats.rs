//! `GET /schedules/{id}/seats` and `GET /seats/{id}`: seats with their status.

use axum::extract::{Path, State};
use faultline_contracts::http::SeatView;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::{domain::SeatId, store};

/// A schedule's seats with their status.
#[utoipa::path(get, path = "/schedules/{schedule_id}/seats", tag = "catalogue",
    params(("schedule_id" = String, Path)),
    responses(
        (status = 200, description = "The seats", body = Vec<SeatView>),
        (status = 404, description = "No such schedule"),
    ))]
#[tracing::instrument(name = "seats of schedule", skip(state))]
pub async fn of_schedule(
    State(state): State<AppState>,
    Path(schedule_id): Path<String>,
) -> Result<Json<Vec<SeatView>>, ApiError> {
    if !store::schedule_exists(&state.db, &schedule_id).await? {
        return Err(ApiError::not_found(format!("no schedule {schedule_id:?}")));
    }
    Ok(Json(
        store::seats_of_schedule(&state.db, &schedule_id).await?,
    ))
}

/// One seat with its status.
#[utoipa::path(get, path = "/seats/{seat_id}", tag = "catalogue",
    params(("seat_id" = String, Path, pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "The seat", body = SeatView),
        (status = 400, description = "Not a seat id"),
        (status = 404, description = "No such seat"),
    ))]
#[tracing::instrument(name = "get seat", skip(state))]
pub async fn one(
    State(state): State<AppState>,
    Path(seat_id): Path<String>,
) -> Result<Json<SeatView>, ApiError> {
    let seat = SeatId::parse(&seat_id).map_err(ApiError::bad_request)?;
    store::seat(&state.db, &seat)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no seat {seat_id:?}")))
}
