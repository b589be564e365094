//! The HTTP API: one route table, Toxiproxy 2.12's paths and methods.
//!
//! Layer order: `refuse_browsers` runs before any handler, as Toxiproxy's
//! `stopBrowsersMiddleware` does (a web page must not be able to drive the proxies).

mod meta;
mod proxies;
mod toxics;

use crate::server::registry::Registry;
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

pub use meta::TOXIPROXY_VERSION;

pub(crate) fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/version", get(meta::version))
        .route("/metrics", get(meta::metrics))
        .route("/reset", post(proxies::reset))
        .route("/populate", post(proxies::populate))
        .route("/proxies", get(proxies::index).post(proxies::create))
        .route(
            "/proxies/{proxy}",
            get(proxies::show)
                .post(proxies::update)
                .patch(proxies::update)
                .delete(proxies::delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxics::index).post(toxics::create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxics::show)
                .post(toxics::update)
                .patch(toxics::update)
                .delete(toxics::delete),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(refuse_browsers))
        .with_state(registry)
}

async fn refuse_browsers(request: Request, next: Next) -> Response {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .is_some_and(|agent| agent.starts_with("Mozilla/"));
    if from_browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(request).await
}

/// Go's default 404 body, which is also what a client sees for `/metrics` on a Toxiproxy
/// started without `-proxy-metrics`.
async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}
