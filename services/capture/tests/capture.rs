//! The capture receives what the services' exporters really send, and answers the queries.

use std::time::Duration;

use faultline_capture::{server, store::Store};
use faultline_kit::shutdown::CancellationToken;
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt as _;

async fn start() -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(listener, Store::default(), stop.clone()));
    (url, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_come_back_by_trace_id_and_by_search() {
    let (url, _stop) = start().await;
    let provider =
        faultline_kit::telemetry::tracer_provider_to("reservation", Some(&url)).expect("provider");
    faultline_kit::telemetry::install_propagator();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!("http.server", otel.kind = "server");
        let _root = root.enter();
        let child = tracing::info_span!(
            "saga.compensate",
            saga.step = "refund",
            saga.outcome = "CANCELLED"
        );
        let _child = child.enter();
        tracing::info!(messaging.duplicate = true, "duplicate message skipped");
        faultline_kit::telemetry::trace_id(&root)
    });
    let flushed = tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .expect("join");
    assert!(flushed.is_ok(), "{flushed:?}");

    let http = reqwest::Client::new();
    let trace: serde_json::Value = http
        .get(format!("{url}/api/traces/{trace_id}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let batch = &trace["batches"][0];
    assert_eq!(
        batch["resource"]["attributes"]
            .as_array()
            .expect("attrs")
            .iter()
            .find(|a| a["key"] == "service.name")
            .expect("service.name")["value"]["stringValue"],
        "reservation"
    );
    assert!(
        batch["resource"]["attributes"]
            .as_array()
            .expect("attrs")
            .iter()
            .any(|a| a["key"] == "service.instance.id")
    );
    let spans = batch["scopeSpans"][0]["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
    let root = spans
        .iter()
        .find(|s| s["name"] == "http.server")
        .expect("root");
    let child = spans
        .iter()
        .find(|s| s["name"] == "saga.compensate")
        .expect("child");
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(child["parentSpanId"], root["spanId"]);
    assert_eq!(child["events"][0]["name"], "duplicate message skipped");

    let found: serde_json::Value = http
        .get(format!("{url}/api/search"))
        .query(&[(
            "q",
            r#"{ span.saga.step = "refund" && resource.service.name = "reservation" }"#,
        )])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(found["traces"][0]["traceID"], trace_id.as_str());
    assert_eq!(found["traces"][0]["rootServiceName"], "reservation");
    let none: serde_json::Value = http
        .get(format!("{url}/api/search"))
        .query(&[("q", r#"{ span.saga.step = "charge" }"#)])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(none["traces"].as_array().map(Vec::len), Some(0));
    let bad = http
        .get(format!("{url}/api/search"))
        .query(&[("q", "{ duration > 1s }")])
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status(), 400);
    assert_eq!(
        http.get(format!("{url}/api/traces/00000000000000000000000000000001"))
            .send()
            .await
            .expect("GET")
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_log_lines_come_back_by_trace_id() {
    let (url, _stop) = start().await;
    let (layer, controller, task) = tracing_loki::builder()
        .label("service", "payment")
        .expect("label")
        .build_controller_url(url.parse().expect("url"))
        .expect("loki layer");
    let task = tokio::spawn(task);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "charge points",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            booking_id = "b-1"
        );
        let _entered = span.enter();
        tracing::info!(charge.outcome = "charged", "charge processed");
        tracing::warn!("something else");
    });
    controller.shutdown().await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("flushed")
        .expect("task");

    let result: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/loki/api/v1/query_range"))
        .query(&[
            (
                "query",
                r#"{service="payment"} |= "4bf92f3577b34da6a3ce929d0e0e4736""#,
            ),
            ("limit", "10"),
        ])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(result["status"], "success");
    let streams = result["data"]["result"].as_array().expect("streams");
    let lines: Vec<&str> = streams
        .iter()
        .flat_map(|s| s["values"].as_array().into_iter().flatten())
        .filter_map(|v| v[1].as_str())
        .collect();
    assert_eq!(lines.len(), 2, "{result}");
    for line in &lines {
        let json: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(
            json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "the trace id is a field of the line"
        );
        assert_eq!(json["booking_id"], "b-1");
    }
    let levels: Vec<&str> = streams
        .iter()
        .filter_map(|s| s["stream"]["level"].as_str())
        .collect();
    assert!(
        levels.contains(&"INFO") || levels.contains(&"info"),
        "{levels:?}"
    );
    assert!(
        streams
            .iter()
            .all(|s| s["stream"].as_object().map(|o| o.len()) == Some(2)),
        "only service and level are labels"
    );
}
