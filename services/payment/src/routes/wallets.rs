//! `GET /wallets/{user_id}`: a wallet's balance.

use axum::extract::{Path, State};
use faultline_contracts::http::WalletView;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::{domain::UserId, ledger};

#[tracing::instrument(name = "get wallet", skip(state))]
pub async fn wallet(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let user = UserId::parse(&user_id).map_err(ApiError::bad_request)?;
    ledger::wallet(&state.db, &user)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no wallet for user {user_id:?}")))
}
