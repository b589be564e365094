//! `GET /admin/summary`, the figures the points invariant is checked from, and
//! `POST /admin/wallets`, which creates wallets at run time.

use axum::{body::Bytes, extract::State, http::StatusCode};
use faultline_contracts::http::{PaymentSummary, WalletsSeed};
use faultline_kit::http::{ApiError, Json};
use tracing::field::Empty;

use super::AppState;
use crate::ledger;

/// Balances, the points seeded, and the net charge of every booking.
#[utoipa::path(get, path = "/admin/summary", tag = "admin",
    responses((status = 200, description = "The summary", body = PaymentSummary)))]
#[tracing::instrument(name = "payment summary", skip_all)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<PaymentSummary>, ApiError> {
    Ok(Json(ledger::summary(&state.db).await?))
}

/// Creates wallets with their SEED ledger entries; a wallet that exists is left as it is. For a
/// tool that needs users of its own on a running stack (`faultline demo --target`).
#[utoipa::path(post, path = "/admin/wallets", tag = "admin",
    request_body = WalletsSeed,
    responses(
        (status = 204, description = "Created (what existed is unchanged)"),
        (status = 400, description = "Malformed JSON"),
        (status = 422, description = "A bad user id or points, or too many wallets"),
    ))]
#[tracing::instrument(name = "create wallets", skip_all, fields(wallets = Empty))]
pub async fn add_wallets(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let seed: WalletsSeed = faultline_kit::http::parse_json(&body)?;
    seed.validate().map_err(ApiError::unprocessable)?;
    tracing::Span::current().record("wallets", seed.wallets.len());
    ledger::seed(&state.db, &seed)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(wallets = seed.wallets.len(), "wallets created");
    Ok(StatusCode::NO_CONTENT)
}
