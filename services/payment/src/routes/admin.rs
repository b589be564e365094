//! `GET /admin/summary`: the figures the points invariant is checked from.

use axum::extract::State;
use faultline_contracts::http::PaymentSummary;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::ledger;

#[tracing::instrument(name = "payment summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<PaymentSummary>, ApiError> {
    Ok(Json(ledger::summary(&state.db).await?))
}
