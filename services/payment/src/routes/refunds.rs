//! `POST /refunds`: give back what was charged under `charge_key`, once per `Idempotency-Key`
//! and at most once per charge whatever the key. 200 with `refunded`, `already_refunded` or
//! `nothing_to_refund` (the charge never happened — and now never will).

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use faultline_contracts::http::{RefundRequest, RefundResponse};
use faultline_kit::{
    http::ApiError,
    idempotency::{
        SavedResponse,
        http::{Effect, Executed, key_from_headers},
    },
};
use tracing::field::Empty;

use super::{AppState, stored_response};
use crate::ledger::{self, RefundOutcome};

const SCOPE: &str = "refunds";

/// Gives back what was charged under `charge_key` (at most once), once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/refunds",
    tag = "payments",
    request_body = RefundRequest,
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,128}$",
            description = "1 to 128 visible ASCII characters; one refund per key")),
    responses(
        (status = 200, description = "`refunded`, `already_refunded` or `nothing_to_refund`", body = RefundResponse),
        (status = 400, description = "Malformed JSON or a missing or malformed Idempotency-Key"),
        (status = 409, description = "A request with this key is still being processed"),
        (status = 422, description = "An empty charge key or booking id, or the key was used with another body"),
    )
)]
#[tracing::instrument(
    name = "refund points",
    skip_all,
    fields(booking_id = Empty, saga_id = Empty, idempotency.key = Empty, refund.outcome = Empty)
)]
pub async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_from_headers(&headers)?;
    let request: RefundRequest = faultline_kit::http::parse_json(&body)?;
    let span = tracing::Span::current();
    span.record("booking_id", request.booking_id.as_str());
    span.record("saga_id", request.saga_id.as_str());
    span.record("idempotency.key", key.as_str());
    if request.charge_key.trim().is_empty() || request.booking_id.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "charge_key and booking_id must not be empty",
        ));
    }
    let (charge_key, booking_id) = (request.charge_key, request.booking_id);
    let effect: Effect<String> = Box::new(move |tx| {
        Box::pin(async move {
            let response = match ledger::refund(tx, &charge_key, &booking_id).await? {
                RefundOutcome::Refunded { amount } => RefundResponse {
                    status: "refunded".into(),
                    amount,
                },
                RefundOutcome::AlreadyRefunded { amount } => RefundResponse {
                    status: "already_refunded".into(),
                    amount,
                },
                RefundOutcome::NothingToRefund => RefundResponse {
                    status: "nothing_to_refund".into(),
                    amount: 0,
                },
            };
            let body = serde_json::to_string(&response).unwrap_or_default();
            Ok((SavedResponse { status: 200, body }, response.status))
        })
    });
    let executed = state
        .idempotency
        .execute(&state.db, SCOPE, &key, "POST", "/refunds", body, effect)
        .await?;
    let (saved, label) = match executed {
        Executed::Early(response) => return Ok(response),
        Executed::Done(saved, label) => (saved, label),
    };
    span.record("refund.outcome", label.as_str());
    tracing::info!(refund.outcome = %label, "refund processed");
    Ok(stored_response(saved.status, saved.body))
}
