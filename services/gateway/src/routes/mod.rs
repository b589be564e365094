//! The gateway's public routes, one file per resource, registered through utoipa-axum so the
//! OpenAPI document at `/openapi.json` is generated from the same handlers and cannot drift
//! (the kit completes it, serves it and checks every answer against it).

pub mod bookings;
pub mod catalogue;
pub mod me;

use axum::Router;
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
    pub users: crate::users::Users,
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

/// Everything the gateway serves: the API, the kit's routes, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(bookings::create))
        .routes(routes!(bookings::one))
        .routes(routes!(me::bookings))
        .routes(routes!(me::wallet))
        .routes(routes!(catalogue::concerts))
        .routes(routes!(catalogue::seats))
        .with_state(state);
    faultline_kit::openapi::serve(api, (None, readiness))
}
