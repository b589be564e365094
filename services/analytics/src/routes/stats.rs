//! `GET /stats/summary`, `GET /stats/users/{user_id}`, `GET /stats/concerts`.

use axum::extract::{Path, State};
use faultline_contracts::http::{AnalyticsSummary, ConcertStats, Freshness, UserStats};
use faultline_kit::http::{ApiError, Json};
use sqlx::Row as _;

use super::AppState;

async fn freshness(state: &AppState) -> Result<Freshness, sqlx::Error> {
    let lag = state.lag.snapshot();
    let last_event_at_ms: Option<i64> =
        sqlx::query_scalar("SELECT MAX(last_event_at) FROM stream_position")
            .fetch_one(state.db.pool())
            .await?;
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
    let totals = sqlx::query(
        "SELECT CAST(COALESCE(SUM(confirmed), 0) AS BIGINT) AS confirmed, \
                CAST(COALESCE(SUM(cancelled), 0) AS BIGINT) AS cancelled, \
                CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS rejected FROM user_stats",
    )
    .fetch_one(state.db.pool())
    .await?;
    let revenue: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(revenue), 0) AS BIGINT) FROM concert_stats")
            .fetch_one(state.db.pool())
            .await?;
    let events_applied: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM stream_position")
            .fetch_one(state.db.pool())
            .await?;
    Ok(Json(AnalyticsSummary {
        confirmed: totals.try_get("confirmed")?,
        cancelled: totals.try_get("cancelled")?,
        rejected: totals.try_get("rejected")?,
        revenue,
        events_applied,
        freshness: freshness(&state).await?,
    }))
}

/// One user's counters.
#[utoipa::path(get, path = "/stats/users/{user_id}", tag = "stats",
    params(("user_id" = String, Path)),
    responses(
        (status = 200, description = "The user's counters", body = UserStats),
        (status = 404, description = "No booking of this user recorded"),
    ))]
#[tracing::instrument(name = "user stats", skip(state))]
pub async fn user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<UserStats>, ApiError> {
    let row = sqlx::query(
        "SELECT confirmed, cancelled, rejected, points_spent FROM user_stats WHERE user_id = $1",
    )
    .bind(&user_id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no bookings recorded for user {user_id:?}")))?;
    Ok(Json(UserStats {
        user_id,
        confirmed: row.try_get("confirmed")?,
        cancelled: row.try_get("cancelled")?,
        rejected: row.try_get("rejected")?,
        points_spent: row.try_get("points_spent")?,
    }))
}

/// Counters and revenue per concert.
#[utoipa::path(get, path = "/stats/concerts", tag = "stats",
    responses((status = 200, description = "Per concert", body = Vec<ConcertStats>)))]
#[tracing::instrument(name = "concert stats", skip_all)]
pub async fn concerts(State(state): State<AppState>) -> Result<Json<Vec<ConcertStats>>, ApiError> {
    let rows = sqlx::query(
        "SELECT concert_id, confirmed, cancelled, revenue FROM concert_stats ORDER BY concert_id",
    )
    .fetch_all(state.db.pool())
    .await?;
    let stats = rows
        .iter()
        .map(|row| {
            Ok(ConcertStats {
                concert_id: row.try_get("concert_id")?,
                confirmed: row.try_get("confirmed")?,
                cancelled: row.try_get("cancelled")?,
                revenue: row.try_get("revenue")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(stats))
}
