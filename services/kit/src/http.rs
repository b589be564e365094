//! The HTTP stack every service runs, and the errors it answers with.
//!
//! [`router_layers`] wraps a service's routes the same way everywhere (outermost first):
//! 1. a request span `http.server` that continues the caller's W3C trace (a garbage or missing
//!    `traceparent` starts a new root) and records the response status;
//! 2. error answers that are not JSON (axum's own rejections) rewritten as problem+json;
//! 3. a body limit: larger bodies are answered 413 before any handler runs.
//!
//! Handlers take [`Json`] instead of axum's, so malformed JSON is a 400 problem+json body, and
//! return [`ApiError`], rendered as RFC 9457 problem details.

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use faultline_contracts::http::Problem;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tracing::{Span, field::Empty};

use crate::shutdown::CancellationToken;

/// An error answer: a status and a human-readable detail, rendered as problem+json.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    /// A 500 that logs the cause and tells the caller only that it happened.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            problem_type: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// axum's JSON extractor with its rejections rendered as problem+json (400 malformed, 413 too
/// large, 415 wrong content type, 422 wrong shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON body read as bytes (kept whole for an idempotency fingerprint): malformed JSON
/// → 400, well-formed JSON of the wrong shape → 422, both problem+json.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Every request body is a JSON object; serde would also read a struct from an array of its
    // fields (`[]` is a struct whose fields all have defaults), which no schema here allows.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => ApiError::unprocessable("invalid request: the body must be a JSON object"),
            Err(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        });
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable(format!("invalid request: {e}"))
        }
        _ => ApiError::bad_request(format!("malformed JSON: {e}")),
    })
}

/// The request span: continues the caller's trace from the request headers.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{} {}", request.method(), route),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
        trace_id = Empty,
            span_id = Empty,
    );
    crate::telemetry::continue_trace(
        &span,
        &opentelemetry_http::HeaderExtractor(request.headers()),
    );
    crate::telemetry::record_ids(&span);
    span
}

/// Rewrites an error answer that is not JSON (axum's own rejections: 413 from the body limit,
/// 404 for an unknown route, 405, a bad path parameter) as problem+json, keeping its status,
/// its text as the detail, and its other headers (`Allow`, `Retry-After`).
async fn problem_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let mut problem = ApiError::new(
        status,
        if detail.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            detail
        },
    );
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem = problem.with_header(name.clone(), value.clone());
        }
    }
    problem.into_response()
}

/// Wraps a service's routes in the standard stack (see the module docs for the order).
pub fn router_layers(router: Router, body_limit_bytes: usize) -> Router {
    router
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::map_response(problem_json))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    |response: &Response, latency: std::time::Duration, span: &Span| {
                        span.record("http.response.status_code", response.status().as_u16());
                        tracing::debug!(status = response.status().as_u16(), ?latency, "response");
                    },
                ),
        )
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Defaults {
        #[serde(default)]
        #[allow(dead_code)]
        items: Vec<u32>,
    }

    #[test]
    fn only_a_json_object_is_a_request_body() {
        assert!(parse_json::<Defaults>(br#" {"items": [1]}"#).is_ok());
        // serde alone would read these as a struct of defaults (or of its fields in order).
        for body in [&b"[]"[..], b"[[1]]", b"7", b"\"x\""] {
            let error = parse_json::<Defaults>(body).expect_err("not an object");
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
        }
        assert_eq!(
            parse_json::<Defaults>(b"[1,")
                .expect_err("malformed")
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_json::<Defaults>(b"{\"items\": [1")
                .expect_err("malformed")
                .status,
            StatusCode::BAD_REQUEST
        );
    }
}
