//! The viewer: traces and log lines in a browser, rendered on the server (no JavaScript, no
//! build step), for the embedded stack where there is no Grafana.
//!
//! - `GET /ui/`: search ([`search`]) — by booking id, trace id, outcome, service or a TraceQL
//!   subset query — listing the newest matching traces.
//! - `GET /ui/trace/<trace_id>`: one trace ([`trace`]) — waterfall, compensation steps, and
//!   every log line of the trace, each linking to its span. Stable: reports and the launcher
//!   print these URLs.
//! - `GET /ui/logs`: the newest log lines by service, level or text ([`logs`]), each linking
//!   to its trace.
//!
//! Bad input answers a page that says what is wrong — 400 for a malformed id or query, 404 for
//! a trace the capture does not hold — never a 500. Pages read the store in place under its
//! lock (a search never copies the store; a trace page copies that trace's spans only).
//! [`html`] holds the escaping every page goes through.

pub mod html;
pub mod logs;
pub mod search;
pub mod trace;

use axum::{
    Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{Html, IntoResponse as _, Redirect, Response},
    routing::get,
};

use crate::store::Store;

/// The viewer's home (the search page); a trace's page is `/ui/trace/<trace_id>`.
pub const HOME: &str = "/ui/";

/// The viewer's routes, to be merged into the capture's router.
pub fn router() -> Router<Store> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(search_page))
        .route("/ui/trace/{trace_id}", get(trace_page))
        .route("/ui/logs", get(logs_page))
        .route("/ui/{*rest}", get(no_such_page))
}

/// A page with a status.
fn respond(status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(html::page(title, body))).into_response()
}

/// The page for input the viewer cannot use: what was wrong, and the way back.
fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    respond(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"problem\">{}</p><p><a href=\"/ui/\">Search traces</a> · <a href=\"/ui/logs\">log lines</a></p>",
            html::esc(title),
            html::esc(message)
        ),
    )
}

fn bad_query(rejection: &QueryRejection) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Malformed query string",
        &rejection.body_text(),
    )
}

async fn search_page(
    State(store): State<Store>,
    form: Result<Query<search::SearchForm>, QueryRejection>,
) -> Response {
    let Query(form) = match form {
        Ok(form) => form,
        Err(rejection) => return bad_query(&rejection),
    };
    match search::Request::parse(&form) {
        Ok(search::Request::Trace(trace_id)) => {
            Redirect::to(&format!("/ui/trace/{trace_id}")).into_response()
        }
        Ok(search::Request::Search(search)) => {
            let body = store.with_spans(|spans| search.render(spans));
            respond(StatusCode::OK, "Traces", &body)
        }
        Err(message) => problem(StatusCode::BAD_REQUEST, "Malformed search", &message),
    }
}

async fn trace_page(
    State(store): State<Store>,
    trace_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(trace_id)) = trace_id else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Malformed trace id",
            "the path does not decode to a trace id",
        );
    };
    if !html::is_hex(&trace_id, 32) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Malformed trace id",
            &format!("{trace_id:?} is not a trace id: a trace id is 32 hexadecimal digits"),
        );
    }
    let trace_id = trace_id.to_ascii_lowercase();
    let spans = store.trace(&trace_id);
    if spans.is_empty() {
        let counts = store.counts();
        return problem(
            StatusCode::NOT_FOUND,
            "Trace not found",
            &format!(
                "The capture holds no span of trace {trace_id}. Exporters send spans in batches, \
                 so a trace just made may need a second; the capture keeps the newest {} spans \
                 and has evicted {} so far.",
                counts.spans, counts.evicted_spans
            ),
        );
    }
    let lines = store.with_lines(|lines| logs::of_trace(lines, &trace_id));
    respond(
        StatusCode::OK,
        &format!("Trace {trace_id}"),
        &trace::render(&trace_id, &spans, &lines),
    )
}

/// How many lines the log search lists.
const LOG_PAGE: usize = 200;

async fn logs_page(
    State(store): State<Store>,
    form: Result<Query<logs::LogForm>, QueryRejection>,
) -> Response {
    let Query(form) = match form {
        Ok(form) => form,
        Err(rejection) => return bad_query(&rejection),
    };
    let filter = match logs::LogFilter::parse(&form) {
        Ok(filter) => filter,
        Err(message) => {
            return problem(StatusCode::BAD_REQUEST, "Malformed log search", &message);
        }
    };
    let lines = store.with_lines(|lines| filter.newest(lines, LOG_PAGE));
    let body = format!(
        "<h1>Log lines</h1>{}<p class=\"muted\">The newest {LOG_PAGE} matching lines, newest first. \
Each line with a trace id links to its trace.</p>{}",
        filter.form(),
        logs::table(&lines, logs::Context::Search)
    );
    respond(StatusCode::OK, "Log lines", &body)
}

async fn no_such_page(Path(rest): Path<String>) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "No such page",
        &format!(
            "The viewer has no page /ui/{rest}: it serves /ui/ (search), /ui/trace/<trace id> and /ui/logs."
        ),
    )
}
