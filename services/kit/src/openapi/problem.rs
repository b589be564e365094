//! Completing a document the same way for every service: problem+json error bodies, the headers
//! that come with them, and the statuses the shared HTTP stack answers on its own.
//!
//! Handlers list their statuses with a description only (`(status = 404, description = "…")`);
//! this is the one place that says what an error body and its headers look like, so no document
//! can call an error body `application/json` again.

use utoipa::{
    PartialSchema as _, ToSchema as _,
    openapi::{
        Content, OpenApi, PathItem, Ref, RefOr, Response,
        header::HeaderBuilder,
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Type},
    },
};

use super::headers;
use faultline_contracts::http::Problem;

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every operation of a path item with its method, upper case.
pub fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Completes `openapi` (see the module docs).
pub fn complete(openapi: &mut OpenApi) {
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    for item in openapi.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let reads_path_or_query = parameters.iter().any(|p| {
        matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
    });
    let idempotent = parameters.iter().any(|p| {
        matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Header
            && p.name.eq_ignore_ascii_case(headers::IDEMPOTENCY_KEY))
    });
    let responses = &mut operation.responses.responses;
    // What the shared stack answers whatever the handler does.
    if reads_path_or_query {
        responses.entry("400".into()).or_insert_with(|| {
            RefOr::T(Response::new(
                "A path or query parameter that cannot be read (not UTF-8, wrong type)",
            ))
        });
    }
    if operation.request_body.is_some() {
        responses.entry("413".into()).or_insert_with(|| {
            RefOr::T(Response::new("The body is larger than the service accepts"))
        });
    }
    responses.entry("500".into()).or_insert_with(|| {
        RefOr::T(Response::new(
            "An unexpected failure (a database error); the cause is logged, not sent",
        ))
    });
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if is_error(status) && carries_problem(response) {
            response.content.clear();
            response.content.insert(
                PROBLEM_JSON.into(),
                RefOr::T(Content::new(Some(Ref::from_schema_name(Problem::name())))),
            );
        }
        let mut header = |name: &str, description: &str, schema: ObjectBuilder| {
            response.headers.entry(name.into()).or_insert_with(|| {
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(schema))
                        .description(Some(description))
                        .build(),
                )
            });
        };
        match status.as_str() {
            "401" => header(
                headers::WWW_AUTHENTICATE,
                "The scheme to authenticate with: `Bearer`",
                ObjectBuilder::new().schema_type(Type::String),
            ),
            "409" | "429" | "503" => header(
                headers::RETRY_AFTER,
                "Seconds to wait before retrying",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$")),
            ),
            _ => {}
        }
        if idempotent {
            header(
                headers::IDEMPOTENT_REPLAYED,
                "`true` when this is the stored answer to an earlier request with the same \
                 Idempotency-Key",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["true"])),
            );
        }
    }
}

fn is_error(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

/// An error response described without a body, or with `body = Problem`: the body every
/// [`crate::http::ApiError`] renders. Anything else (e.g. `/ready`'s 503 with component states)
/// is left as the handler documented it.
fn carries_problem(response: &Response) -> bool {
    let problem_ref = format!("#/components/schemas/{}", Problem::name());
    response.content.is_empty()
        || response.content.values().all(|content| {
            matches!(content, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == problem_ref))
        })
}

#[cfg(test)]
mod tests {
    use utoipa_axum::{router::OpenApiRouter, routes};

    use super::*;

    #[utoipa::path(
        post,
        path = "/things/{id}",
        params(
            ("id" = String, Path),
            ("Idempotency-Key" = String, Header),
        ),
        request_body = String,
        responses(
            (status = 201, description = "made"),
            (status = 401, description = "who are you"),
            (status = 429, description = "slow down", body = Problem),
        )
    )]
    async fn make() {}

    fn document() -> serde_json::Value {
        let (_, mut openapi) = OpenApiRouter::<()>::new()
            .routes(routes!(make))
            .split_for_parts();
        complete(&mut openapi);
        serde_json::to_value(&openapi).expect("json")
    }

    #[test]
    fn error_bodies_are_problem_json_and_carry_their_headers() {
        let doc = document();
        let responses = &doc["paths"]["/things/{id}"]["post"]["responses"];
        for status in ["400", "401", "413", "429", "500"] {
            assert_eq!(
                responses[status]["content"][PROBLEM_JSON]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{status}: {responses}"
            );
            assert!(
                responses[status]["content"]["application/json"].is_null(),
                "{status}"
            );
        }
        assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
        assert!(responses["201"]["headers"]["Idempotent-Replayed"].is_object());
        assert!(responses["201"]["content"].is_null());
        assert!(doc["components"]["schemas"]["Problem"].is_object());
    }
}
