//! `POST /bookings` (start a saga, 202), `GET /bookings/{id}` (poll its status),
//! `GET /users/{user_id}/bookings`.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use faultline_contracts::http::{BookingAccepted, BookingView, CreateBookingRequest};
use faultline_kit::http::{ApiError, Json};
use tracing::field::Empty;

use super::AppState;
use crate::{
    domain::{SeatId, UserId},
    saga::store,
};

#[tracing::instrument(name = "create booking", skip_all, fields(booking_id = Empty, saga_id = Empty, user_id = %request.user_id, seat_id = %request.seat_id))]
pub async fn create(
    State(state): State<AppState>,
    Json(request): Json<CreateBookingRequest>,
) -> Result<Response, ApiError> {
    let user = UserId::parse(&request.user_id).map_err(ApiError::unprocessable)?;
    let seat = SeatId::parse(&request.seat_id).map_err(ApiError::unprocessable)?;
    let (booking_id, saga_id) = state.orchestrator.start_booking(&user, &seat).await?;
    let status_url = format!("/bookings/{booking_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(BookingAccepted {
            booking_id,
            saga_id,
            status: "PENDING".into(),
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[tracing::instrument(name = "get booking", skip(state), fields(saga_id = Empty))]
pub async fn one(
    State(state): State<AppState>,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingView>, ApiError> {
    let booking = store::booking(state.orchestrator.db(), &booking_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no booking {booking_id:?}")))?;
    tracing::Span::current().record("saga_id", booking.saga_id.as_str());
    Ok(Json(booking))
}

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
