//! `POST /bookings` (idempotent, per user) and `GET /bookings/{booking_id}` (the owner only).

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use faultline_contracts::http::{
    BookSeatRequest, BookingAccepted, BookingView, CreateBookingRequest, Problem,
};
use faultline_kit::{
    http::{ApiError, parse_json},
    idempotency::http::{HEADER, key_from_headers},
};
use tracing::field::Empty;

use super::AppState;
use crate::{
    auth::{AuthUser, Protected},
    domain::PathId,
};

/// Books a seat for the authenticated user. The saga runs asynchronously: poll `status_url`.
///
/// The `Idempotency-Key` header is required: the same key and body replays the first answer
/// (header `Idempotent-Replayed: true`), the same key while the first request is still running
/// answers 409, the same key with another body 422. Keys expire after a day.
#[utoipa::path(
    post,
    path = "/bookings",
    tag = "bookings",
    request_body = BookSeatRequest,
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,128}$", description = "1 to 128 visible ASCII characters, unique per booking attempt")),
    responses(
        (status = 202, description = "Booking accepted; the saga is running", body = BookingAccepted,
         headers(("Location" = String, description = "The booking's status URL"))),
        (status = 400, description = "Malformed JSON or a missing or bad Idempotency-Key", body = Problem),
        (status = 409, description = "A request with this key is still being processed", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 422, description = "Invalid seat id, or the key was used with another body", body = Problem),
        Protected,
    )
)]
#[tracing::instrument(name = "book seat", skip_all, fields(user_id = Empty, booking_id = Empty, saga_id = Empty, idempotency.key = Empty))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key_from_headers(&headers)?;
    tracing::Span::current().record("idempotency.key", key.as_str());
    let request: BookSeatRequest = parse_json(&body)?;
    let forwarded = serde_json::to_vec(&CreateBookingRequest {
        user_id: user.0.to_string(),
        seat_id: request.seat_id,
    })
    .map_err(ApiError::internal)?;
    let answer = state
        .upstreams
        .reservation
        .post("/bookings", &[(HEADER, key.as_str())], forwarded)
        .await?;
    if answer.status == StatusCode::ACCEPTED
        && let Ok(accepted) = answer.json::<BookingAccepted>()
    {
        let span = tracing::Span::current();
        span.record("booking_id", accepted.booking_id.as_str());
        span.record("saga_id", accepted.saga_id.as_str());
    }
    tracing::info!(
        status = answer.status.as_u16(),
        replayed = answer.headers.contains_key("idempotent-replayed"),
        "booking request answered"
    );
    Ok(answer.into_response())
}

/// A booking of the authenticated user. Someone else's booking is a 404, like one that does not
/// exist.
#[utoipa::path(
    get,
    path = "/bookings/{booking_id}",
    tag = "bookings",
    params(("booking_id" = String, Path, description = "The id from the 202 answer")),
    responses(
        (status = 200, description = "The booking and its saga state", body = BookingView),
        (status = 404, description = "No such booking of this user", body = Problem),
        Protected,
    )
)]
#[tracing::instrument(name = "get booking", skip_all, fields(user_id = Empty, booking_id = %booking_id, saga_id = Empty))]
pub async fn one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no booking {booking_id:?}"));
    let booking = PathId::parse(&booking_id).map_err(|_| not_found())?;
    let answer = state
        .upstreams
        .reservation
        .get(&format!("/bookings/{booking}"))
        .await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    if answer.status.is_success() {
        let booking: BookingView = answer.json()?;
        if booking.user_id != user.0.as_str() {
            tracing::info!(owner_mismatch = true, "booking of another user requested");
            return Err(not_found());
        }
        tracing::Span::current().record("saga_id", booking.saga_id.as_str());
    }
    Ok(answer.into_response())
}
