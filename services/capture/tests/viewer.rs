//! The viewer over HTTP: a trace page with its spans and log lines, the search, the log search,
//! and a page — never a 500 — for every kind of bad input.

use std::sync::Arc;

use faultline_capture::{
    server,
    store::{Store, StoredLine, StoredSpan},
};
use faultline_kit::shutdown::CancellationToken;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn span(id: &str, parent: &str, service: &str, name: &str, start_ms: u64) -> StoredSpan {
    let booking = [("booking_id".to_owned(), "b-<1>".to_owned())];
    StoredSpan {
        trace_id: TRACE.into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        name: name.into(),
        kind: 2,
        start_unix_nano: 1_700_000_000_000_000_000 + start_ms * 1_000_000,
        end_unix_nano: 1_700_000_000_000_000_000 + (start_ms + 5) * 1_000_000,
        service_name: service.into(),
        resource: Arc::new([("service.name".to_owned(), service.to_owned())].into()),
        attributes: booking.into_iter().collect(),
        events: vec![],
        links: vec![],
        status_code: 0,
    }
}

async fn start() -> (String, reqwest::Client, CancellationToken) {
    let store = Store::default();
    store.add_spans(vec![
        span("00000000000000a1", "", "gateway", "POST /bookings", 0),
        span(
            "00000000000000b2",
            "00000000000000a1",
            "reservation",
            "saga compensate refund",
            10,
        ),
        span(
            "00000000000000c3",
            "00000000000000b2",
            "payment",
            "POST /refunds",
            12,
        ),
    ]);
    store.add_lines(vec![StoredLine {
        labels: [
            ("service".to_owned(), "reservation".to_owned()),
            ("level".to_owned(), "info".to_owned()),
        ]
        .into(),
        timestamp_ns: 1_700_000_000_011_000_000,
        line: format!(
            r#"{{"message":"refund done <ok>","trace_id":"{TRACE}","span_id":"00000000000000b2","refund.status":"refunded"}}"#
        ),
    }]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(listener, store, stop.clone()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    (url, http, stop)
}

/// Status, content type and body of `GET path`.
async fn get(http: &reqwest::Client, url: &str, path: &str) -> (u16, String, String) {
    let response = http.get(format!("{url}{path}")).send().await.expect("GET");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_trace_page_shows_the_tree_and_the_log_lines_linked_to_their_spans() {
    let (url, http, _stop) = start().await;
    let (status, content_type, page) = get(&http, &url, &format!("/ui/trace/{TRACE}")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    for (id, depth) in [("a1", 0), ("b2", 1), ("c3", 2)] {
        assert!(
            page.contains(&format!("id=\"span-00000000000000{id}\""))
                && page.contains(&format!(
                    "data-span-id=\"00000000000000{id}\" data-parent-id"
                )),
            "span {id}"
        );
        assert!(page.contains(&format!("data-depth=\"{depth}\"")));
    }
    assert!(page.contains("class=\"span compensation\""));
    assert!(
        page.contains("refund done &lt;ok&gt;"),
        "captured text is escaped"
    );
    assert!(page.contains("b-&lt;1&gt;"));
    assert!(
        page.contains("href=\"#span-00000000000000b2\""),
        "the line links to its span"
    );
    assert!(page.contains(&format!("href=\"/ui/trace/{TRACE}\"")));
}

#[tokio::test]
async fn the_search_finds_the_trace_by_booking_and_service_and_a_trace_id_redirects() {
    let (url, http, _stop) = start().await;
    let (status, _, page) = get(&http, &url, "/ui/?booking=b-%3C1%3E&service=payment").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("data-trace-id=\"{TRACE}\"")),
        "{page}"
    );
    let (_, _, none) = get(&http, &url, "/ui/?booking=b-2").await;
    assert!(!none.contains(&format!("data-trace-id=\"{TRACE}\"")));
    let redirect = http
        .get(format!("{url}/ui/?trace={}", TRACE.to_uppercase()))
        .send()
        .await
        .expect("GET");
    assert_eq!(redirect.status(), 303);
    assert_eq!(redirect.headers()["location"], format!("/ui/trace/{TRACE}"));
    let (status, _, logs) = get(&http, &url, "/ui/logs?service=reservation&text=refund").await;
    assert_eq!(status, 200);
    assert!(logs.contains(&format!("/ui/trace/{TRACE}#span-00000000000000b2")));
}

#[tokio::test]
async fn bad_input_gets_a_page_that_says_what_is_wrong() {
    let (url, http, _stop) = start().await;
    for (path, status, says) in [
        (
            "/ui/trace/00000000000000000000000000000001",
            404,
            "holds no span of trace",
        ),
        ("/ui/trace/not-a-trace", 400, "32 hexadecimal digits"),
        ("/ui/trace/%FF%FE", 400, "Malformed trace id"),
        (
            "/ui/?q=%7B%20duration%20%3E%201s%20%7D",
            400,
            "unsupported TraceQL",
        ),
        ("/ui/?outcome=maybe", 400, "not a saga outcome"),
        ("/ui/?trace=123", 400, "malformed"),
        ("/ui/logs?level=loud", 400, "not a log level"),
        ("/ui/nothing/here", 404, "no page /ui/nothing/here"),
    ] {
        let (got, content_type, page) = get(&http, &url, path).await;
        assert_eq!(got, status, "{path}: {page}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(page.contains(says), "{path} should say {says:?}: {page}");
    }
    let redirect = http.get(format!("{url}/ui")).send().await.expect("GET");
    assert_eq!(redirect.headers()["location"], "/ui/");
}
