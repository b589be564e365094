//! `GET /admin/summary` and `GET /admin/seats`, what the invariant checkers read, and
//! `POST /admin/catalogue`, which adds to the catalogue at run time.

use axum::{body::Bytes, extract::State, http::StatusCode};
use faultline_contracts::http::{CatalogueSeed, InventorySummary, SeatView};
use faultline_kit::http::{ApiError, Json};
use tracing::field::Empty;

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

/// Adds concerts, schedules and seats to the catalogue; rows that exist are left as they are.
/// For a tool that needs a catalogue of its own on a running stack (`faultline demo --target`).
#[utoipa::path(post, path = "/admin/catalogue", tag = "admin",
    request_body = CatalogueSeed,
    responses(
        (status = 204, description = "Added (what existed is unchanged)"),
        (status = 400, description = "Malformed JSON"),
        (status = 422, description = "A bad id, title, date, seat count or price, or too many seats"),
    ))]
#[tracing::instrument(name = "add to catalogue", skip_all, fields(concerts = Empty))]
pub async fn add_catalogue(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let seed: CatalogueSeed = faultline_kit::http::parse_json(&body)?;
    seed.validate().map_err(ApiError::unprocessable)?;
    tracing::Span::current().record("concerts", seed.concerts.len());
    store::seed(&state.db, &seed).await?;
    tracing::info!(concerts = seed.concerts.len(), "catalogue added");
    Ok(StatusCode::NO_CONTENT)
}
