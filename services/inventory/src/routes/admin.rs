//! `GET /admin/summary` and `GET /admin/seats`: what the invariant checkers read.

use axum::extract::State;
use faultline_contracts::http::{InventorySummary, SeatView};
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::store;

/// Seats by status.
#[utoipa::path(get, path = "/admin/summary", tag = "admin",
    responses((status = 200, description = "The summary", body = InventorySummary)))]
#[tracing::instrument(name = "inventory summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<InventorySummary>, ApiError> {
    Ok(Json(store::summary(&state.db).await?))
}

/// Every seat (what the invariant checkers read).
#[utoipa::path(get, path = "/admin/seats", tag = "admin",
    responses((status = 200, description = "The seats", body = Vec<SeatView>)))]
#[tracing::instrument(name = "all seats", skip_all)]
pub async fn seats(State(state): State<AppState>) -> Result<Json<Vec<SeatView>>, ApiError> {
    Ok(Json(store::all_seats(&state.db).await?))
}
