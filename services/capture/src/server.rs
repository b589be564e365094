//! The capture's HTTP server: receivers, query endpoints, the viewer's pages, readiness.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::{get, post},
};
use faultline_kit::shutdown::CancellationToken;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::{loki, otlp, store::Store, tempo, ui};

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn receive_traces(State(store): State<Store>, body: Bytes) -> Response {
    match otlp::decode(&body) {
        Ok(spans) => {
            store.add_spans(spans);
            // An empty ExportTraceServiceResponse.
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::<u8>::new(),
            )
                .into_response()
        }
        Err(error) => bad_request(format!("cannot decode OTLP traces: {error}")),
    }
}

async fn trace_by_id(State(store): State<Store>, Path(trace_id): Path<String>) -> Response {
    let spans = store.trace(&trace_id);
    if spans.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            format!("trace not found: {trace_id}"),
        )
            .into_response();
    }
    axum::Json(tempo::trace_json(&spans)).into_response()
}

#[derive(Deserialize)]
struct SearchParams {
    q: String,
    limit: Option<usize>,
    start: Option<u64>,
    end: Option<u64>,
}

async fn search(State(store): State<Store>, Query(params): Query<SearchParams>) -> Response {
    let query = match tempo::Query::parse(&params.q) {
        Ok(query) => query,
        Err(error) => return bad_request(error),
    };
    let window = match (params.start, params.end) {
        (Some(start), Some(end)) => Some((start * 1_000_000_000, end * 1_000_000_000)),
        _ => None,
    };
    let limit = params.limit.unwrap_or(20);
    axum::Json(store.with_spans(|spans| tempo::search(spans, &query, limit, window)))
        .into_response()
}

async fn push_logs(State(store): State<Store>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    match loki::decode_push(content_type, &body) {
        Ok(lines) => {
            store.add_lines(lines);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => bad_request(error),
    }
}

#[derive(Deserialize)]
struct RangeParams {
    query: String,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    direction: Option<String>,
}

async fn query_range(State(store): State<Store>, Query(params): Query<RangeParams>) -> Response {
    let query = match loki::LogQuery::parse(&params.query) {
        Ok(query) => query,
        Err(error) => return bad_request(error),
    };
    let start = params
        .start
        .as_deref()
        .and_then(loki::parse_time)
        .unwrap_or(0);
    let end = params
        .end
        .as_deref()
        .and_then(loki::parse_time)
        .unwrap_or(i128::MAX);
    let forward = params.direction.as_deref() == Some("forward");
    let limit = params.limit.unwrap_or(100);
    axum::Json(
        store.with_lines(|lines| loki::query_range(lines, &query, start, end, limit, forward)),
    )
    .into_response()
}

async fn stats(State(store): State<Store>) -> Response {
    axum::Json(store.counts()).into_response()
}

/// Every route of the capture over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/v1/traces", post(receive_traces))
        .route("/api/traces/{trace_id}", get(trace_by_id))
        .route("/api/search", get(search))
        .route("/loki/api/v1/push", post(push_logs))
        .route("/loki/api/v1/query_range", get(query_range))
        .route("/stats", get(stats))
        .route("/ready", get(|| async { "ready" }))
        .route("/health", get(|| async { "ok" }))
        .merge(ui::router())
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(store)
}

/// Serves the capture on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    faultline_kit::http::serve(listener, router(store), shutdown).await
}
