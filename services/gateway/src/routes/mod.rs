//! The gateway's public routes, one file per resource, registered through utoipa-axum so the
//! OpenAPI document at `/openapi.json` is generated from the same handlers and cannot drift.

pub mod bookings;
pub mod catalogue;
pub mod me;

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{RateLimiter, Tokens},
    upstream::Upstreams,
};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub tokens: Tokens,
    pub rate_limiter: RateLimiter,
    pub upstreams: Upstreams,
    pub readiness: faultline_kit::readiness::Readiness,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Faultline gateway", description = "The public API of the Faultline booking lab."),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Whether an id from a path may be put into an upstream URL as one segment (ids are letters,
/// digits, `-`, `_` and `.`; anything else cannot exist upstream).
fn is_path_segment(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && id != "."
        && id != ".."
}

/// The API routes and the OpenAPI document describing exactly them.
pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(bookings::create))
        .routes(routes!(bookings::one))
        .routes(routes!(me::bookings))
        .routes(routes!(me::wallet))
        .routes(routes!(catalogue::concerts))
        .routes(routes!(catalogue::seats))
        .with_state(state.clone())
        .split_for_parts();
    (router, openapi)
}

/// Everything the gateway serves: the API, `/openapi.json`, `/health`, `/ready`.
pub fn router(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let (api, openapi) = api(state);
    api.route("/openapi.json", get(move || async move { Json(openapi) }))
        .merge(faultline_kit::http::health_routes(None, readiness))
}
