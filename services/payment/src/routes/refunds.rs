//! `POST /refunds`: give back what was charged under `charge_key`, once per `Idempotency-Key`
//! and at most once per charge whatever the key. 200 with `refunded`, `already_refunded` or
//! `nothing_to_refund` (the charge never happened — and now never will).

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use faultline_contracts::http::{RefundRequest, RefundResponse};
use faultline_kit::{
    http::ApiError,
    idempotency::{SavedResponse, http::key_from_headers},
};

use super::{AppState, parse_body, stored_response};
use crate::ledger::{self, RefundOutcome};

const SCOPE: &str = "refunds";

#[tracing::instrument(
    name = "refund points",
    skip_all,
    fields(booking_id = tracing::field::Empty, saga_id = tracing::field::Empty, idempotency.key = tracing::field::Empty, refund.outcome = tracing::field::Empty)
)]
pub async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_from_headers(&headers)?;
    let request: RefundRequest = parse_body(&body)?;
    let span = tracing::Span::current();
    span.record("booking_id", request.booking_id.as_str());
    span.record("saga_id", request.saga_id.as_str());
    span.record("idempotency.key", key.as_str());
    if request.charge_key.trim().is_empty() || request.booking_id.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "charge_key and booking_id must not be empty",
        ));
    }
    if let Some(early) = state
        .idempotency
        .gate(SCOPE, &key, "POST", "/refunds", &body)
        .await?
    {
        return Ok(early);
    }
    let result = async {
        let mut tx = state.db.begin().await?;
        let outcome = ledger::refund(&mut tx, &request.charge_key, &request.booking_id).await?;
        let body = match outcome {
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
        let saved = SavedResponse {
            status: 200,
            body: serde_json::to_string(&body).unwrap_or_default(),
        };
        state
            .idempotency
            .complete(&mut tx, SCOPE, key.as_str(), &saved)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>((saved, body.status))
    }
    .await;
    match result {
        Ok((saved, label)) => {
            span.record("refund.outcome", label.as_str());
            tracing::info!(refund.outcome = %label, "refund processed");
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
