//! `GET /admin/summary`, `GET /admin/bookings`, `GET /admin/sagas/{id}/log`: what the
//! invariant checkers and tests read.

use axum::extract::{Path, State};
use faultline_contracts::http::{BookingView, ReservationSummary, SagaLogEntry};
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::{domain::SagaId, saga::store};

/// Bookings by status, and outbox rows not yet published.
#[utoipa::path(get, path = "/admin/summary", tag = "admin",
    responses((status = 200, description = "The summary", body = ReservationSummary)))]
#[tracing::instrument(name = "reservation summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<ReservationSummary>, ApiError> {
    Ok(Json(store::summary(state.orchestrator.db()).await?))
}

/// `?updated_since=<Unix ms>` limits the answer to bookings changed since then.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingsQuery {
    /// Unix milliseconds.
    updated_since: Option<i64>,
}

/// Every booking (what the invariant checkers read).
#[utoipa::path(get, path = "/admin/bookings", tag = "admin", params(BookingsQuery),
    responses((status = 200, description = "The bookings", body = Vec<BookingView>)))]
#[tracing::instrument(name = "all bookings", skip_all)]
pub async fn bookings(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<BookingsQuery>,
) -> Result<Json<Vec<BookingView>>, ApiError> {
    Ok(Json(
        store::all_bookings(state.orchestrator.db(), query.updated_since).await?,
    ))
}

/// A saga's transitions, oldest first.
#[utoipa::path(get, path = "/admin/sagas/{saga_id}/log", tag = "admin",
    params(("saga_id" = String, Path)),
    responses(
        (status = 200, description = "The transitions", body = Vec<SagaLogEntry>),
        (status = 404, description = "No such saga"),
    ))]
#[tracing::instrument(name = "saga log", skip(state))]
pub async fn saga_log(
    State(state): State<AppState>,
    Path(saga_id): Path<String>,
) -> Result<Json<Vec<SagaLogEntry>>, ApiError> {
    // An id no saga could have names no saga: the same 404.
    let log = match SagaId::parse(&saga_id) {
        Ok(id) => store::saga_log(state.orchestrator.db(), &id).await?,
        Err(_) => Vec::new(),
    };
    if log.is_empty() {
        return Err(ApiError::not_found(format!("no saga {saga_id:?}")));
    }
    Ok(Json(log))
}
