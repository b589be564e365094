//! `POST /charges`: take points for a booking, once per `Idempotency-Key`.
//!
//! 201 charged, 402 declined (not enough points), 404 unknown wallet; each stored under the key
//! and replayed verbatim for a repeat. 409 while the first request with the key is in flight,
//! 422 when the key was used for another request.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use faultline_contracts::http::{ChargeRequest, ChargeResponse};
use faultline_kit::{
    http::ApiError,
    idempotency::{SavedResponse, http::key_from_headers},
};

use super::{AppState, parse_body, stored_response};
use crate::{
    domain::{Points, UserId},
    ledger::{self, ChargeOutcome},
};

const SCOPE: &str = "charges";

#[tracing::instrument(
    name = "charge points",
    skip_all,
    fields(booking_id = tracing::field::Empty, saga_id = tracing::field::Empty, idempotency.key = tracing::field::Empty, charge.outcome = tracing::field::Empty)
)]
pub async fn charge(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_from_headers(&headers)?;
    let request: ChargeRequest = parse_body(&body)?;
    let span = tracing::Span::current();
    span.record("booking_id", request.booking_id.as_str());
    span.record("saga_id", request.saga_id.as_str());
    span.record("idempotency.key", key.as_str());
    let user = UserId::parse(&request.user_id).map_err(ApiError::unprocessable)?;
    let amount = Points::parse(request.amount).map_err(ApiError::unprocessable)?;
    if request.booking_id.trim().is_empty() {
        return Err(ApiError::unprocessable("booking_id must not be empty"));
    }
    if let Some(early) = state
        .idempotency
        .gate(SCOPE, &key, "POST", "/charges", &body)
        .await?
    {
        return Ok(early);
    }
    let result = async {
        let mut tx = state.db.begin().await?;
        let outcome =
            ledger::charge(&mut tx, key.as_str(), &user, &request.booking_id, amount).await?;
        let (status, body, label) = match outcome {
            ChargeOutcome::Charged {
                charge_id,
                balance_after,
            } => (
                201,
                ChargeResponse {
                    charge_id,
                    status: "charged".into(),
                    amount: amount.value(),
                    balance_after,
                    reason: None,
                },
                "charged",
            ),
            ChargeOutcome::Declined {
                charge_id,
                balance,
                reason,
            } => (
                402,
                ChargeResponse {
                    charge_id,
                    status: "declined".into(),
                    amount: amount.value(),
                    balance_after: balance,
                    reason: Some(reason),
                },
                "declined",
            ),
            ChargeOutcome::UnknownWallet => {
                let saved = SavedResponse {
                    status: 404,
                    body: unknown_wallet_body(user.as_str()),
                };
                state
                    .idempotency
                    .complete(&mut tx, SCOPE, key.as_str(), &saved)
                    .await?;
                tx.commit().await?;
                return Ok::<_, sqlx::Error>((saved, "unknown_wallet"));
            }
        };
        let saved = SavedResponse {
            status,
            body: serde_json::to_string(&body).unwrap_or_default(),
        };
        state
            .idempotency
            .complete(&mut tx, SCOPE, key.as_str(), &saved)
            .await?;
        tx.commit().await?;
        Ok((saved, label))
    }
    .await;
    match result {
        Ok((saved, label)) => {
            span.record("charge.outcome", label);
            tracing::info!(charge.outcome = label, amount = amount.value(), user_id = %user.as_str(), "charge processed");
            Ok(stored_response(saved.status, saved.body))
        }
        Err(error) => {
            if let Err(abandon) = state.idempotency.abandon(SCOPE, key.as_str()).await {
                tracing::warn!(error = %abandon, "could not release the idempotency claim");
            }
            Err(ApiError::internal(error))
        }
    }
}

fn unknown_wallet_body(user_id: &str) -> String {
    serde_json::json!({
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": format!("no wallet for user {user_id:?}"),
    })
    .to_string()
}
