//! `GET /wallets/{user_id}`: a wallet's balance.

use axum::extract::{Path, State};
use faultline_contracts::http::WalletView;
use faultline_kit::http::{ApiError, Json};

use super::AppState;
use crate::{domain::UserId, ledger};

/// A wallet's balance.
#[utoipa::path(get, path = "/wallets/{user_id}", tag = "wallets",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 400, description = "Not a user id"),
        (status = 404, description = "No wallet for this user"),
    ))]
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
