//! The API's error answers: Toxiproxy's messages and status codes, as `{"error", "status"}` JSON.

use crate::api::ApiErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Display;

/// An error answer. The messages are Toxiproxy's own (api.go) so a caller can match on them
/// whichever server it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_body(reason: impl Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {reason}"),
        )
    }

    pub fn missing_field(field: impl Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    pub fn proxy_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    pub fn proxy_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "proxy already exists")
    }

    pub fn invalid_stream() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        )
    }

    pub fn invalid_toxic_type() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid toxic type")
    }

    pub fn toxic_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "toxic already exists")
    }

    pub fn toxic_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    /// Toxiproxy answers 500 with the bare Go error for anything it did not classify, such as a
    /// listen address that cannot be bound.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody {
            error: self.message.clone(),
            status: self.status.as_u16(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
