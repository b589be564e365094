//! `GET /health`: 200 when the database answers.

use axum::extract::State;
use faultline_kit::http::ApiError;

use super::AppState;

#[tracing::instrument(name = "health", skip_all)]
pub async fn health(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1").execute(state.db.pool()).await?;
    Ok("ok")
}
