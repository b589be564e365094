//! `GET /concerts`: the catalogue with each concert's schedules.

use axum::extract::State;
use faultline_contracts::http::ConcertView;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::store;

/// Concerts with their schedules.
#[utoipa::path(get, path = "/concerts", tag = "catalogue",
    responses((status = 200, description = "The catalogue", body = Vec<ConcertView>)))]
#[tracing::instrument(name = "list concerts", skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ConcertView>>, ApiError> {
    Ok(Json(store::concerts(&state.db).await?))
}
