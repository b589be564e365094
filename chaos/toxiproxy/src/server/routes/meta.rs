//! `GET /version` and `GET /metrics`.

use crate::server::registry::Registry;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;

/// The Toxiproxy release whose API and semantics this server follows.
pub const TOXIPROXY_VERSION: &str = "2.12.0";

#[tracing::instrument(skip_all)]
pub(super) async fn version() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        format!("{{\"version\": \"{TOXIPROXY_VERSION}\"}}\n"),
    )
}

/// Always on here; real Toxiproxy serves it only with `-proxy-metrics`.
#[tracing::instrument(skip_all)]
pub(super) async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        registry.metrics().render(),
    )
}
