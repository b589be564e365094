//! `GET /stats/summary`, `GET /stats/users/{user_id}`, `GET /stats/concerts`.

use axum::extract::{Path, State};
use faultline_contracts::http::{AnalyticsSummary, ConcertStats, Freshness, UserStats};
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::{domain::UserId, store};

async fn freshness(state: &AppState) -> Result<Freshness, sqlx::Error> {
    let lag = state.lag.snapshot();
    let last_event_at_ms = store::last_event_at(&state.db).await?;
    Ok(Freshness {
        messages_behind: lag.messages_behind,
        measured_at_ms: lag.measured_at_ms,
        last_event_at_ms,
        stale: lag.messages_behind != Some(0),
    })
}

/// Bookings by outcome, revenue and events applied, with freshness.
#[utoipa::path(get, path = "/stats/summary", tag = "stats",
    responses((status = 200, description = "The totals", body = AnalyticsSummary)))]
#[tracing::instrument(name = "analytics summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<AnalyticsSummary>, ApiError> {
    let totals = store::totals(&state.db).await?;
    Ok(Json(AnalyticsSummary {
        confirmed: totals.confirmed,
        cancelled: totals.cancelled,
        rejected: totals.rejected,
        revenue: totals.revenue,
        events_applied: totals.events_applied,
        freshness: freshness(&state).await?,
    }))
}

/// One user's counters.
#[utoipa::path(get, path = "/stats/users/{user_id}", tag = "stats",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The user's counters", body = UserStats),
        (status = 400, description = "Not a user id"),
        (status = 404, description = "No booking of this user recorded"),
    ))]
#[tracing::instrument(name = "user stats", skip(state))]
pub async fn user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<UserStats>, ApiError> {
    let user = UserId::parse(&user_id).map_err(ApiError::bad_request)?;
    store::user(&state.db, &user)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no bookings recorded for user {user_id:?}")))
}

/// Counters and revenue per concert.
#[utoipa::path(get, path = "/stats/concerts", tag = "stats",
    responses((status = 200, description = "Per concert", body = Vec<ConcertStats>)))]
#[tracing::instrument(name = "concert stats", skip_all)]
pub async fn concerts(State(state): State<AppState>) -> Result<Json<Vec<ConcertStats>>, ApiError> {
    Ok(Json(store::concerts(&state.db).await?))
}
