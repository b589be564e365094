//! The routes every service serves besides its own, documented like its own:
//! `GET /health` (alive: 200 when the database answers), `GET /ready` (200 when every registered
//! component is ready, else 503 with the components' states), `GET /admin/inbox` (what the
//! consumers received: [`crate::inbox::report`]), `GET /admin/load` (consumer lag, unpublished
//! outbox rows, in-flight work: [`crate::readiness::Load`]) and `GET /admin/contract` (answers
//! the OpenAPI document does not list: [`crate::openapi::conformance`]).
//!
//! They take no credentials even on the gateway: they say nothing about any user.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse as _, Response},
};
use faultline_contracts::http::{InboxReport, LoadReport};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::ApiError,
    openapi::{Conformance, ContractReport},
    readiness::Readiness,
    storage::Db,
};

/// What the kit's routes read: the service's database (none for the gateway) and readiness.
pub type HealthState = (Option<Db>, Readiness);

/// The kit's routes, documented.
pub fn routes(state: HealthState, conformance: Conformance) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(inbox))
        .routes(routes!(load))
        .with_state(state)
        .merge(
            OpenApiRouter::new()
                .routes(routes!(contract))
                .with_state(conformance),
        )
}

/// Alive: the process answers and its database does.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
async fn health(State((db, _)): State<HealthState>) -> Result<&'static str, ApiError> {
    if let Some(db) = db {
        sqlx::query("SELECT 1").execute(db.pool()).await?;
    }
    Ok("ok")
}

/// Ready for traffic: every component (each consumer has its partitions) is ready.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready; every component's state", body = std::collections::BTreeMap<String, bool>),
        (status = 503, description = "Not ready; every component's state", body = std::collections::BTreeMap<String, bool>),
    )
)]
async fn ready(State((_, readiness)): State<HealthState>) -> Response {
    let (ready, components) = readiness.snapshot();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(components)).into_response()
}

/// What each consumer received: deliveries per message id (duplicates included).
#[utoipa::path(
    get,
    path = "/admin/inbox",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The inbox report", body = InboxReport))
)]
async fn inbox(State((db, _)): State<HealthState>) -> Result<axum::Json<InboxReport>, ApiError> {
    match db {
        Some(db) => Ok(axum::Json(crate::inbox::report(&db).await?)),
        None => Ok(axum::Json(Default::default())),
    }
}

/// Consumer lag, unpublished outbox rows and work in flight.
#[utoipa::path(
    get,
    path = "/admin/load",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The load figures", body = LoadReport))
)]
async fn load(
    State((db, readiness)): State<HealthState>,
) -> Result<axum::Json<LoadReport>, ApiError> {
    let (consumer_lag, in_flight) = readiness.load().snapshot();
    let outbox_unpublished = match db {
        Some(db) => Some(crate::outbox::unpublished(db.pool()).await?),
        None => None,
    };
    Ok(axum::Json(LoadReport {
        consumer_lag,
        outbox_unpublished,
        in_flight,
    }))
}

/// Answers this service gave with a status its OpenAPI document does not list for the
/// operation (empty when the document is truthful about everything answered so far).
#[utoipa::path(
    get,
    path = "/admin/contract",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Undocumented answers so far", body = ContractReport))
)]
async fn contract(State(conformance): State<Conformance>) -> axum::Json<ContractReport> {
    axum::Json(conformance.report())
}
