//! `POST /bookings` (start a saga, 202), `GET /bookings/{id}` (poll its status),
//! `GET /users/{user_id}/bookings`.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use faultline_contracts::http::{BookingAccepted, BookingView, CreateBookingRequest};
use faultline_kit::{
    http::{ApiError, Json},
    idempotency::{
        self, SavedResponse,
        http::{Effect, Executed, key_from_headers},
    },
};
use tracing::field::Empty;

use super::AppState;
use crate::{
    domain::{BookingId, SagaId, SeatId, UserId},
    saga::store,
};

/// Starts a booking saga. With an `Idempotency-Key` (the gateway always sends one) the request
/// is idempotent per user: the key's claim, the booking and its HoldSeat commit together, a
/// repeat replays the 202, a repeat while the first runs gets 409, another body with the key 422.
#[utoipa::path(
    post,
    path = "/bookings",
    tag = "bookings",
    request_body = CreateBookingRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,128}$",
            description = "Optional here (the gateway always sends one): 1 to 128 visible ASCII characters, per user")),
    responses(
        (status = 202, description = "Booking accepted; the saga is running", body = BookingAccepted,
         headers(("Location" = String, description = "The booking's status URL"))),
        (status = 400, description = "Malformed JSON or a malformed Idempotency-Key"),
        (status = 409, description = "A request with this key is still being processed"),
        (status = 422, description = "A bad user or seat id, or the key was used with another body"),
        (status = 503, description = "Too many bookings in flight (admission control)"),
    )
)]
#[tracing::instrument(name = "create booking", skip_all, fields(booking_id = Empty, saga_id = Empty, user_id = Empty, seat_id = Empty, idempotency.key = Empty))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateBookingRequest = faultline_kit::http::parse_json(&body)?;
    let span = tracing::Span::current();
    span.record("user_id", request.user_id.as_str());
    span.record("seat_id", request.seat_id.as_str());
    let user = UserId::parse(&request.user_id).map_err(ApiError::unprocessable)?;
    let seat = SeatId::parse(&request.seat_id).map_err(ApiError::unprocessable)?;
    let ticket = state.admission.admit()?;
    if !headers.contains_key(idempotency::http::HEADER) {
        let (booking_id, saga_id) = state.orchestrator.start_booking(&user, &seat).await?;
        ticket.keep();
        return Ok(accepted(&accepted_body(booking_id, saga_id)));
    }
    let key = key_from_headers(&headers)?;
    span.record("idempotency.key", key.as_str());
    let orchestrator = state.orchestrator.clone();
    let effect: Effect<()> = Box::new(move |tx| {
        Box::pin(async move {
            let (booking_id, saga_id) = orchestrator.start_booking_in(tx, &user, &seat).await?;
            let body =
                serde_json::to_string(&accepted_body(booking_id, saga_id)).unwrap_or_default();
            Ok((SavedResponse { status: 202, body }, ()))
        })
    });
    let scope = format!("bookings:{}", request.user_id);
    match state
        .idempotency
        .execute(
            state.orchestrator.db(),
            scope,
            &key,
            "POST",
            "/bookings",
            body,
            effect,
        )
        .await?
    {
        Executed::Early(response) => Ok(response),
        Executed::Done(saved, ()) => {
            ticket.keep();
            state.orchestrator.wake_relay();
            let body: BookingAccepted =
                serde_json::from_str(&saved.body).map_err(ApiError::internal)?;
            Ok(accepted(&body))
        }
    }
}

fn accepted_body(booking_id: BookingId, saga_id: SagaId) -> BookingAccepted {
    let status_url = format!("/bookings/{booking_id}");
    BookingAccepted {
        booking_id: booking_id.to_string(),
        saga_id: saga_id.to_string(),
        status: "PENDING".into(),
        status_url,
    }
}

/// The 202 answer, with the status URL also as `Location`.
fn accepted(body: &BookingAccepted) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(body.clone())).into_response();
    if let Ok(location) = HeaderValue::from_str(&body.status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A booking and its saga state.
#[utoipa::path(
    get,
    path = "/bookings/{booking_id}",
    tag = "bookings",
    params(("booking_id" = String, Path, description = "The id from the 202 answer")),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 404, description = "No such booking"),
    )
)]
#[tracing::instrument(name = "get booking", skip(state), fields(saga_id = Empty))]
pub async fn one(
    State(state): State<AppState>,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingView>, ApiError> {
    // An id no booking could have names no booking: the same 404.
    let found = match BookingId::parse(&booking_id) {
        Ok(id) => store::booking(state.orchestrator.db(), &id).await?,
        Err(_) => None,
    };
    let booking = found.ok_or_else(|| ApiError::not_found(format!("no booking {booking_id:?}")))?;
    tracing::Span::current().record("saga_id", booking.saga_id.as_str());
    Ok(Json(booking))
}

/// A user's bookings, newest first.
#[utoipa::path(
    get,
    path = "/users/{user_id}/bookings",
    tag = "bookings",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The user's bookings", body = Vec<BookingView>),
        (status = 400, description = "Not a user id"),
    )
)]
#[tracing::instrument(name = "bookings of user", skip(state))]
pub async fn of_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Vec<BookingView>>, ApiError> {
    let user = UserId::parse(&user_id).map_err(ApiError::bad_request)?;
    Ok(Json(
        store::bookings_of_user(state.orchestrator.db(), user.as_str()).await?,
    ))
}
