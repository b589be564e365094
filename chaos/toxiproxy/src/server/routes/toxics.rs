//! `/proxies/{proxy}/toxics` and `/proxies/{proxy}/toxics/{toxic}`.

use crate::api::Toxic;
use crate::server::error::ApiError;
use crate::server::registry::Registry;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

#[tracing::instrument(skip_all, fields(proxy = %proxy))]
pub(super) async fn index(
    State(registry): State<Arc<Registry>>,
    Path(proxy): Path<String>,
) -> Result<Json<Vec<Toxic>>, ApiError> {
    let toxics = registry.with_toxics(&proxy, |t| Ok(t.list())).await?;
    Ok(Json(toxics))
}

/// Answers 200, not 201, as Toxiproxy does.
#[tracing::instrument(skip_all, fields(proxy = %proxy))]
pub(super) async fn create(
    State(registry): State<Arc<Registry>>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Json<Toxic>, ApiError> {
    let toxic = registry.with_toxics(&proxy, |t| t.add(&body)).await?;
    tracing::info!(toxic = %toxic.name, r#type = %toxic.r#type, stream = %toxic.stream, "added toxic");
    Ok(Json(toxic))
}

#[tracing::instrument(skip_all, fields(proxy = %proxy, toxic = %toxic))]
pub(super) async fn show(
    State(registry): State<Arc<Registry>>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<Json<Toxic>, ApiError> {
    let found = registry
        .with_toxics(&proxy, |t| {
            t.get(&toxic).ok_or_else(ApiError::toxic_not_found)
        })
        .await?;
    Ok(Json(found))
}

#[tracing::instrument(skip_all, fields(proxy = %proxy, toxic = %toxic))]
pub(super) async fn update(
    State(registry): State<Arc<Registry>>,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Toxic>, ApiError> {
    let updated = registry
        .with_toxics(&proxy, |t| t.update(&toxic, &body))
        .await?;
    Ok(Json(updated))
}

#[tracing::instrument(skip_all, fields(proxy = %proxy, toxic = %toxic))]
pub(super) async fn delete(
    State(registry): State<Arc<Registry>>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    registry.with_toxics(&proxy, |t| t.remove(&toxic)).await?;
    tracing::info!("removed toxic");
    Ok(StatusCode::NO_CONTENT)
}
