//! The capture's HTTP server: receivers, query endpoints, `/stats` — documented through
//! utoipa-axum and served by the kit's [`faultline_kit::openapi::serve`] like every service's
//! API (`/openapi.json`, `/health`, `/ready`, the conformance layer, problem+json errors) — and
//! the viewer's pages beside them.
//!
//! Why the viewer is not in the document: its pages are for people (HTML forms, links and
//! redirects between pages, a catch-all 404 page under `/ui/`), not an API a client is written
//! against; its own tests (`tests/viewer.rs`, the end-to-end browser test) hold it to its
//! behaviour, and its error pages stay HTML where the API's errors are problem+json.

use axum::{
    Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, Path, Query, State,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use faultline_kit::{http::ApiError, readiness::Readiness, shutdown::CancellationToken};
use serde::Deserialize;
use tokio::net::TcpListener;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{loki, otlp, store::Store, tempo, ui};

/// The largest export or push accepted (a batch exporter's worst case, with room).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// A binary request or response body (a protobuf message, snappy-compressed for Loki).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// Any JSON value: the Tempo and Loki answers, whose shapes are theirs (see [`tempo`], [`loki`]).
#[derive(utoipa::ToSchema)]
#[schema(value_type = Object)]
pub struct AnyJson(pub serde_json::Value);

/// Loki's JSON push body (documentation: `loki::decode_push` reads it).
#[derive(utoipa::ToSchema)]
pub struct LokiPush {
    pub streams: Vec<LokiStream>,
}

/// One stream of a JSON push: its labels and `[timestamp in ns as a string, line]` pairs.
#[derive(utoipa::ToSchema)]
pub struct LokiStream {
    pub stream: std::collections::BTreeMap<String, String>,
    #[schema(value_type = Vec<Vec<String>>)]
    pub values: Vec<(String, String)>,
}

fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))
}

fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// Receives an OTLP/HTTP trace export (`ExportTraceServiceRequest`, protobuf), as the
/// OpenTelemetry SDK's HTTP exporter sends it to Tempo.
#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "receivers",
    request_body(content = Option<Binary>, content_type = "application/x-protobuf",
        description = "An OTLP `ExportTraceServiceRequest` (none: an empty export)"),
    responses(
        (status = 200, description = "Stored; an empty `ExportTraceServiceResponse`",
            body = Binary, content_type = "application/x-protobuf"),
        (status = 400, description = "The body is not an OTLP trace export"),
    )
)]
async fn receive_traces(
    State(store): State<Store>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_of(body)?;
    let spans = otlp::decode(&body)
        .map_err(|error| ApiError::bad_request(format!("cannot decode OTLP traces: {error}")))?;
    store.add_spans(spans);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response())
}

/// A trace by id, in Tempo's OTLP-JSON shape.
#[utoipa::path(
    get,
    path = "/api/traces/{trace_id}",
    tag = "tempo",
    params(("trace_id" = String, Path, description = "The trace id (hexadecimal)")),
    responses(
        (status = 200, description = "The trace's spans (`batches`)", body = AnyJson),
        (status = 404, description = "No span of this trace is held"),
    )
)]
async fn trace_by_id(
    State(store): State<Store>,
    trace_id: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let Path(trace_id) =
        trace_id.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let spans = store.trace(&trace_id);
    if spans.is_empty() {
        return Err(ApiError::not_found(format!("trace not found: {trace_id}")));
    }
    Ok(axum::Json(tempo::trace_json(&spans)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// A TraceQL subset: span-attribute conditions joined by `&&`.
    q: String,
    /// At most this many traces (20 by default).
    limit: Option<usize>,
    /// Window start, seconds since the epoch (with `end`).
    start: Option<u64>,
    /// Window end, seconds since the epoch (with `start`).
    end: Option<u64>,
}

/// Traces matching a TraceQL subset, as Tempo's `/api/search` answers.
#[utoipa::path(
    get,
    path = "/api/search",
    tag = "tempo",
    params(SearchParams),
    responses(
        (status = 200, description = "The matching traces (`traces`)", body = AnyJson),
        (status = 400, description = "A query outside the supported subset, or bad parameters"),
    )
)]
async fn search(
    State(store): State<Store>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let params = query_of(params)?;
    let query = tempo::Query::parse(&params.q).map_err(ApiError::bad_request)?;
    let window = match (params.start, params.end) {
        (Some(start), Some(end)) => Some((
            start.saturating_mul(1_000_000_000),
            end.saturating_mul(1_000_000_000),
        )),
        _ => None,
    };
    let limit = params.limit.unwrap_or(20);
    Ok(axum::Json(store.with_spans(|spans| {
        tempo::search(spans, &query, limit, window)
    })))
}

/// Receives a Loki push, as tracing-loki and Promtail send it to Loki.
#[utoipa::path(
    post,
    path = "/loki/api/v1/push",
    tag = "receivers",
    request_body(
        description = "A Loki `PushRequest`: protobuf compressed with snappy (raw format; the \
                       default when no content type is given), or Loki's JSON push",
        content(
            (Binary = "application/x-protobuf"),
            (LokiPush = "application/json"),
        )
    ),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "The body is not a Loki push of its content type"),
    )
)]
async fn push_logs(
    State(store): State<Store>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_of(body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let lines = loki::decode_push(content_type, &body).map_err(ApiError::bad_request)?;
    store.add_lines(lines);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeParams {
    /// A stream selector `{label="value", …}` with `|=` / `!=` line filters.
    query: String,
    /// From: nanoseconds since the epoch, or seconds (with a fraction).
    start: Option<String>,
    /// To: as `start`.
    end: Option<String>,
    /// At most this many lines (100 by default).
    limit: Option<usize>,
    /// `forward` (oldest first) or `backward` (the default).
    direction: Option<String>,
}

/// Log lines matching a selector and line filters, as Loki's `query_range` answers.
#[utoipa::path(
    get,
    path = "/loki/api/v1/query_range",
    tag = "loki",
    params(RangeParams),
    responses(
        (status = 200, description = "The matching streams (`data.result`)", body = AnyJson),
        (status = 400, description = "A query outside the supported subset, or bad parameters"),
    )
)]
async fn query_range(
    State(store): State<Store>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let params = query_of(params)?;
    let query = loki::LogQuery::parse(&params.query).map_err(ApiError::bad_request)?;
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
    Ok(axum::Json(store.with_lines(|lines| {
        loki::query_range(lines, &query, start, end, limit, forward)
    })))
}

/// What the capture holds and has evicted.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "operations",
    responses((status = 200, description = "Spans and log lines kept and evicted", body = crate::store::Counts))
)]
async fn stats(State(store): State<Store>) -> axum::Json<crate::store::Counts> {
    axum::Json(store.counts())
}

/// Every route of the capture over `store`: the documented API with the kit's routes and
/// `/openapi.json`, then the viewer.
pub fn router(store: Store) -> Router {
    let api = OpenApiRouter::with_openapi(faultline_kit::openapi::document(
        "Faultline capture",
        "The telemetry capture of the embedded stack: OTLP/HTTP and Loki receivers, and the \
         subset of Tempo's and Loki's query APIs the checks use (anything outside it is a 400). \
         The viewer for people under /ui/ is not part of this API.",
    ))
    .routes(routes!(receive_traces))
    .routes(routes!(trace_by_id))
    .routes(routes!(search))
    .routes(routes!(push_logs))
    .routes(routes!(query_range))
    .routes(routes!(stats))
    .with_state(store.clone());
    // No database; nothing to wait for: ready as soon as it listens.
    faultline_kit::openapi::serve(api, (None, Readiness::new()))
        .merge(ui::router().with_state(store))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Serves the capture on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    faultline_kit::http::serve(listener, router(store), shutdown).await
}
