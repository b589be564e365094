//! `GET /admin/summary`: the figures the points invariant is checked from.

use axum::extract::State;
use faultline_contracts::http::PaymentSummary;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::ledger;

/// Balances, the points seeded, and the net charge of every booking.
#[utoipa::path(get, path = "/admin/summary", tag = "admin",
    responses((status = 200, description = "The summary", body = PaymentSummary)))]
#[tracing::instrument(name = "payment summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<PaymentSummary>, ApiError> {
    Ok(Json(ledger::summary(&state.db).await?))
}
