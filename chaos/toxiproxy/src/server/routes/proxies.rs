//! `/proxies`, `/proxies/{proxy}`, `/populate` and `/reset`.

use crate::api::{PopulateResponse, Proxy};
use crate::server::body;
use crate::server::error::ApiError;
use crate::server::registry::{ProxyChange, ProxyInput, Registry};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[tracing::instrument(skip_all)]
pub(super) async fn index(State(registry): State<Arc<Registry>>) -> Json<BTreeMap<String, Proxy>> {
    Json(registry.list().await)
}

#[tracing::instrument(skip_all)]
pub(super) async fn create(
    State(registry): State<Arc<Registry>>,
    request: Bytes,
) -> Result<(StatusCode, Json<Proxy>), ApiError> {
    let input = proxy_input(&body::object(&request)?, None)?;
    let proxy = registry.create(input).await?;
    Ok((StatusCode::CREATED, Json(proxy)))
}

/// 201 with `{"proxies": [...]}`; on error the error's status, with the error fields beside the
/// proxies handled before it, as Toxiproxy answers.
#[tracing::instrument(skip_all)]
pub(super) async fn populate(State(registry): State<Arc<Registry>>, request: Bytes) -> Response {
    let inputs = match populate_inputs(&request) {
        Ok(inputs) => inputs,
        Err(err) => return populate_answer(Vec::new(), Some(err)),
    };
    let (proxies, err) = registry.populate(inputs).await;
    populate_answer(proxies, err)
}

#[tracing::instrument(skip_all, fields(proxy = %name))]
pub(super) async fn show(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
) -> Result<Json<Proxy>, ApiError> {
    Ok(Json(registry.get(&name).await?))
}

/// POST (deprecated in Toxiproxy) and PATCH alike.
#[tracing::instrument(skip_all, fields(proxy = %name))]
pub(super) async fn update(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    request: Bytes,
) -> Result<Json<Proxy>, ApiError> {
    // Toxiproxy looks the proxy up before reading the body: an unknown proxy is a 404 even
    // with a bad body.
    registry.get(&name).await?;
    let input = body::object(&request)?;
    let change = ProxyChange {
        listen: body::string(&input, "listen")?,
        upstream: body::string(&input, "upstream")?,
        enabled: body::boolean(&input, "enabled")?,
    };
    Ok(Json(registry.update(&name, change).await?))
}

#[tracing::instrument(skip_all, fields(proxy = %name))]
pub(super) async fn delete(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    registry.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all)]
pub(super) async fn reset(State(registry): State<Arc<Registry>>) -> Result<StatusCode, ApiError> {
    registry.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `index` numbers the proxy in populate's messages ("name at proxy 2").
fn proxy_input(input: &Map<String, Value>, index: Option<usize>) -> Result<ProxyInput, ApiError> {
    let at = index.map_or_else(String::new, |i| format!(" at proxy {}", i + 1));
    let name = body::string(input, "name")?.unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::missing_field(format!("name{at}")));
    }
    let upstream = body::string(input, "upstream")?.unwrap_or_default();
    if upstream.is_empty() {
        return Err(ApiError::missing_field(format!("upstream{at}")));
    }
    Ok(ProxyInput {
        name,
        listen: body::string(input, "listen")?.unwrap_or_default(),
        upstream,
        enabled: body::boolean(input, "enabled")?.unwrap_or(true),
    })
}

/// Every element is checked before any proxy is touched, as Toxiproxy does.
fn populate_inputs(request: &[u8]) -> Result<Vec<ProxyInput>, ApiError> {
    let Value::Array(items) = body::json(request)? else {
        return Err(ApiError::bad_body("expected a JSON array of proxies"));
    };
    let objects = items
        .into_iter()
        .map(body::into_object)
        .collect::<Result<Vec<_>, _>>()?;
    objects
        .iter()
        .enumerate()
        .map(|(i, object)| proxy_input(object, Some(i)))
        .collect()
}

fn populate_answer(proxies: Vec<Proxy>, err: Option<ApiError>) -> Response {
    let status = err.as_ref().map_or(StatusCode::CREATED, |err| err.status);
    let answer = PopulateResponse {
        error: err.as_ref().map(|err| err.message.clone()),
        status: err.as_ref().map(|err| err.status.as_u16()),
        proxies,
    };
    (status, Json(answer)).into_response()
}
