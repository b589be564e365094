//! Every service's OpenAPI 3.1 document, generated from its handlers, and the check that keeps
//! it truthful.
//!
//! A service registers its handlers on a utoipa-axum [`OpenApiRouter`] (each handler carries a
//! `#[utoipa::path]` listing the statuses it answers) and hands it to [`serve`], which:
//! - adds the kit's own routes (`/health`, `/ready`, `/admin/inbox`, `/admin/load`,
//!   `/admin/contract`), documented like the service's;
//! - completes the document the same way everywhere ([`problem::complete`]): error bodies are
//!   `application/problem+json` with the headers that come with them, and the statuses the
//!   shared stack itself answers (413, a bad path or query, 500) are listed;
//! - serves it at `GET /openapi.json`;
//! - wraps every operation in the [`conformance`] layer, which records each answer whose status
//!   the document does not list for its operation, logs it, and reports it at
//!   `GET /admin/contract`.
//!
//! Why a layer and not a hand-kept list: the service tests, the hostile-input tests and the CI
//! fuzz run (`.ci/fuzz-http`) all drive real requests through it, so a handler that starts
//! answering an undocumented status is caught by whichever of them reaches that path first.

pub mod conformance;
pub mod problem;

use axum::{Router, routing::get};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use conformance::{Conformance, ContractReport};

/// Header names as documents spell them.
pub mod headers {
    pub const RETRY_AFTER: &str = "Retry-After";
    pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
    pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
    pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
    pub const LOCATION: &str = "Location";
}

/// A service's document before its routes are added.
pub fn document(title: &str, description: &str) -> OpenApi {
    let mut openapi = OpenApi::default();
    openapi.info.title = title.to_owned();
    openapi.info.description = Some(description.to_owned());
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi
}

/// Everything a service serves: `api` (its documented routes), the kit's routes
/// ([`crate::health::routes`]), `/openapi.json`, all behind the conformance layer.
pub fn serve(api: OpenApiRouter, health: crate::health::HealthState) -> Router {
    let conformance = Conformance::default();
    let (router, mut openapi) = api
        .merge(crate::health::routes(health, conformance.clone()))
        .split_for_parts();
    problem::complete(&mut openapi);
    conformance.set_document(&openapi);
    conformance.layer(router).route(
        "/openapi.json",
        get(move || async move { axum::Json(openapi) }),
    )
}
