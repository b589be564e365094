//! `POST /charges`: take points for a booking, once per `Idempotency-Key`.
//!
//! 201 charged, 402 declined (not enough points), 404 unknown wallet; each stored under the key
//! and replayed verbatim for a repeat. 409 while the first request with the key is in flight,
//! 422 when the key was used for another request.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use faultline_contracts::http::{ChargeRequest, ChargeResponse};
use faultline_kit::{
    http::ApiError,
    idempotency::{
        SavedResponse,
        http::{Effect, Executed, key_from_headers},
    },
};
use tracing::field::Empty;

use super::{AppState, stored_response};
use crate::{
    domain::{Points, UserId},
    ledger::{self, ChargeOutcome},
};

const SCOPE: &str = "charges";

/// Takes `amount` points from the user's wallet for a booking, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/charges",
    tag = "payments",
    request_body = ChargeRequest,
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,128}$",
            description = "1 to 128 visible ASCII characters; one charge per key")),
    responses(
        (status = 201, description = "Charged", body = ChargeResponse),
        (status = 400, description = "Malformed JSON or a missing or malformed Idempotency-Key"),
        (status = 402, description = "Declined: not enough points", body = ChargeResponse),
        (status = 404, description = "No wallet for this user"),
        (status = 409, description = "A request with this key is still being processed"),
        (status = 422, description = "A bad user id, amount or booking id, or the key was used with another body"),
    )
)]
#[tracing::instrument(
    name = "charge points",
    skip_all,
    fields(booking_id = Empty, saga_id = Empty, idempotency.key = Empty, charge.outcome = Empty)
)]
pub async fn charge(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_from_headers(&headers)?;
    let request: ChargeRequest = faultline_kit::http::parse_json(&body)?;
    let span = tracing::Span::current();
    span.record("booking_id", request.booking_id.as_str());
    span.record("saga_id", request.saga_id.as_str());
    span.record("idempotency.key", key.as_str());
    let user = UserId::parse(&request.user_id).map_err(ApiError::unprocessable)?;
    let amount = Points::parse(request.amount).map_err(ApiError::unprocessable)?;
    if request.booking_id.trim().is_empty() {
        return Err(ApiError::unprocessable("booking_id must not be empty"));
    }
    let charge_key = key.as_str().to_owned();
    let booking_id = request.booking_id;
    let effect: Effect<&'static str> = Box::new(move |tx| {
        Box::pin(async move {
            let outcome = ledger::charge(tx, &charge_key, &user, &booking_id, amount).await?;
            let (status, response, label) = match outcome {
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
                    let body = unknown_wallet_body(user.as_str());
                    return Ok((SavedResponse { status: 404, body }, "unknown_wallet"));
                }
            };
            let body = serde_json::to_string(&response).unwrap_or_default();
            Ok((SavedResponse { status, body }, label))
        })
    });
    let executed = state
        .idempotency
        .execute(&state.db, SCOPE, &key, "POST", "/charges", body, effect)
        .await?;
    let (saved, label) = match executed {
        Executed::Early(response) => return Ok(response),
        Executed::Done(saved, label) => (saved, label),
    };
    span.record("charge.outcome", label);
    tracing::info!(
        charge.outcome = label,
        amount = amount.value(),
        "charge processed"
    );
    Ok(stored_response(saved.status, saved.body))
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
