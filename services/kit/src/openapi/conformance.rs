//! The conformance layer: every answer's status checked against the document.
//!
//! The layer sits inside the router, where axum has already matched the route, so it knows the
//! operation (method + path template) of each request. An answer whose status the operation does
//! not list is counted, logged once per (operation, status) at WARN, and reported by
//! `GET /admin/contract`; the answer itself goes out unchanged (the check observes, it does not
//! decide). Requests that match no operation (an unknown path, a method the path does not have)
//! are not operations of the document and are not judged.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, RwLock},
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use serde::{Deserialize, Serialize};
use utoipa::openapi::OpenApi;

/// An operation: METHOD and path template.
type Operation = (String, String);
/// (METHOD, path template, status).
type Answer = (String, String, u16);

/// What the document lists, and what was answered beyond it.
#[derive(Debug, Clone, Default)]
pub struct Conformance {
    /// (METHOD, path template) → documented statuses (`"404"`, `"4XX"`, `"default"`).
    documented: Arc<RwLock<BTreeMap<Operation, BTreeSet<String>>>>,
    /// (METHOD, path template, status) → how many answers.
    undocumented: Arc<Mutex<BTreeMap<Answer, u64>>>,
}

/// `GET /admin/contract`: answers the document does not allow, and how many requests were judged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContractReport {
    /// Operations in the document.
    pub operations: usize,
    /// Every (operation, status) answered that the operation does not list.
    pub undocumented: Vec<UndocumentedStatus>,
}

/// One status an operation answered without documenting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UndocumentedStatus {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub count: u64,
}

impl Conformance {
    /// Learns the operations of `openapi` and their statuses.
    pub fn set_document(&self, openapi: &OpenApi) {
        let mut documented = BTreeMap::new();
        for (path, item) in &openapi.paths.paths {
            for (method, operation) in super::problem::operations(item) {
                documented.insert(
                    (method.to_owned(), path.clone()),
                    operation.responses.responses.keys().cloned().collect(),
                );
            }
        }
        *self
            .documented
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = documented;
    }

    /// `router` with every answer judged.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), judge))
    }

    /// Whether `status` is a documented answer of `method path` (`None`: not an operation).
    pub fn allows(&self, method: &str, path: &str, status: u16) -> Option<bool> {
        let documented = self
            .documented
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let statuses = documented.get(&(method.to_owned(), path.to_owned()))?;
        let class = format!("{}XX", status / 100);
        Some(
            statuses.contains(&status.to_string())
                || statuses.contains(&class)
                || statuses.contains("default"),
        )
    }

    /// Records one answer; `true` if it was documented (or not an operation).
    pub fn observe(&self, method: &str, path: &str, status: u16) -> bool {
        if self.allows(method, path, status) != Some(false) {
            return true;
        }
        let mut undocumented = self
            .undocumented
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = undocumented
            .entry((method.to_owned(), path.to_owned(), status))
            .or_default();
        *count += 1;
        if *count == 1 {
            tracing::warn!(
                contract.undocumented_status = status,
                http.request.method = method,
                http.route = path,
                "answered a status the OpenAPI document does not list for this operation"
            );
        }
        false
    }

    /// What was answered beyond the document so far.
    pub fn report(&self) -> ContractReport {
        let operations = self
            .documented
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        let undocumented = self
            .undocumented
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((method, path, status), count)| UndocumentedStatus {
                method: method.clone(),
                path: path.clone(),
                status: *status,
                count: *count,
            })
            .collect();
        ContractReport {
            operations,
            undocumented,
        }
    }
}

async fn judge(State(conformance): State<Conformance>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    if let Some(path) = path {
        // HEAD is answered by the GET handler, with GET's statuses.
        let method = if method == "HEAD" {
            "GET".to_owned()
        } else {
            method
        };
        conformance.observe(&method, &path, response.status().as_u16());
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::StatusCode};
    use tower::ServiceExt as _;
    use utoipa_axum::{router::OpenApiRouter, routes};

    use super::*;

    /// Answers 200 or, with `?teapot`, a status its document does not list.
    #[utoipa::path(get, path = "/brew", responses((status = 200, description = "brewed")))]
    async fn brew(request: Request) -> StatusCode {
        if request.uri().query() == Some("teapot") {
            StatusCode::IM_A_TEAPOT
        } else {
            StatusCode::OK
        }
    }

    async fn get(router: &Router, uri: &str) -> StatusCode {
        router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
            .await
            .expect("an answer")
            .status()
    }

    fn app() -> (Router, Conformance) {
        let (router, openapi) = OpenApiRouter::new().routes(routes!(brew)).split_for_parts();
        let conformance = Conformance::default();
        conformance.set_document(&openapi);
        (conformance.layer(router), conformance)
    }

    #[tokio::test]
    async fn a_documented_status_is_not_reported() {
        let (router, conformance) = app();
        assert_eq!(get(&router, "/brew").await, StatusCode::OK);
        assert_eq!(conformance.report().undocumented, vec![]);
        assert_eq!(conformance.report().operations, 1);
    }

    #[tokio::test]
    async fn a_handler_answering_an_undocumented_status_is_caught() {
        let (router, conformance) = app();
        assert_eq!(get(&router, "/brew?teapot").await, StatusCode::IM_A_TEAPOT);
        assert_eq!(get(&router, "/brew?teapot").await, StatusCode::IM_A_TEAPOT);
        assert_eq!(
            conformance.report().undocumented,
            vec![UndocumentedStatus {
                method: "GET".into(),
                path: "/brew".into(),
                status: 418,
                count: 2,
            }]
        );
    }

    #[tokio::test]
    async fn requests_outside_the_document_are_not_judged() {
        let (router, conformance) = app();
        assert_eq!(get(&router, "/nowhere").await, StatusCode::NOT_FOUND);
        assert_eq!(conformance.report().undocumented, vec![]);
    }

    #[test]
    fn a_status_class_or_default_covers_its_statuses() {
        let conformance = Conformance::default();
        let mut openapi = OpenApi::default();
        let responses = utoipa::openapi::ResponsesBuilder::new()
            .response("4XX", utoipa::openapi::Response::new("client errors"))
            .build();
        let operation = utoipa::openapi::path::OperationBuilder::new()
            .responses(responses)
            .build();
        openapi
            .paths
            .add_path_operation("/x", vec![utoipa::openapi::HttpMethod::Get], operation);
        conformance.set_document(&openapi);
        assert_eq!(conformance.allows("GET", "/x", 404), Some(true));
        assert_eq!(conformance.allows("GET", "/x", 500), Some(false));
        assert_eq!(conformance.allows("POST", "/x", 500), None);
    }
}
