//! One connected trace per booking across every service, with its logs correlated, as the
//! capture (standing in for Tempo and Loki) received them.

use std::{
    cell::Cell,
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use faultline_contracts::http::BookingAccepted;
use faultline_harness::wait::{Patience, eventually};
use serde_json::Value;

use crate::helpers::{TestStack, start};

/// One span of a trace, read by the runner's own reader (the checkers' code path).
type SpanInfo = faultline::chaos::evidence::Span;

/// A trace's spans by span id.
struct Trace {
    spans: BTreeMap<String, SpanInfo>,
}

impl Trace {
    fn from_tempo(json: &Value) -> Self {
        Self {
            spans: faultline::chaos::evidence::spans_of(json)
                .into_iter()
                .map(|span| (span.span_id.clone(), span))
                .collect(),
        }
    }

    fn services(&self) -> BTreeSet<&str> {
        self.spans
            .values()
            .map(|span| span.service.as_str())
            .collect()
    }

    /// Spans whose parent is not in the trace.
    fn roots(&self) -> Vec<&SpanInfo> {
        self.spans
            .values()
            .filter(|span| !self.spans.contains_key(&span.parent))
            .collect()
    }
}

/// Polls the capture until the trace holds spans of every one of `services` and stops growing.
async fn settled_trace(t: &TestStack, trace_id: &str, services: &[&str]) -> Trace {
    let tempo = t.stack.endpoints().telemetry["tempo"].clone();
    let last = Cell::new(0);
    eventually(
        &format!("trace {trace_id} to hold spans of {services:?} and stop growing"),
        Patience::within(Duration::from_secs(20)).every(Duration::from_millis(400)),
        || async {
            let response = t
                .http
                .get(format!("{tempo}/api/traces/{trace_id}"))
                .send()
                .await
                .expect("GET trace");
            if !response.status().is_success() {
                return Err(format!("GET trace: {}", response.status()));
            }
            let trace = Trace::from_tempo(&response.json().await.expect("json"));
            let complete = services.iter().all(|s| trace.services().contains(s));
            let previous = last.replace(trace.spans.len());
            if complete && trace.spans.len() == previous {
                return Ok(trace);
            }
            let spans: Vec<String> = trace
                .spans
                .values()
                .map(|span| format!("{}: {} (parent {})", span.service, span.name, span.parent))
                .collect();
            Err(format!("it has {}", spans.join("; ")))
        },
    )
    .await
}

fn random_hex(bytes: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..bytes * 2].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_is_one_connected_trace_across_every_service_with_its_logs() {
    let t = start(|_| {}).await;
    let (accepted, trace_id, client_span) = traced_booking(&t, "user-1", "saga-live-1-005").await;
    assert_eq!(
        t.terminal("user-1", &accepted.booking_id).await.status,
        "CONFIRMED"
    );

    let trace = settled_trace(
        &t,
        &trace_id,
        &[
            "gateway",
            "reservation",
            "inventory",
            "payment",
            "analytics",
        ],
    )
    .await;
    let roots = trace.roots();
    assert_eq!(roots.len(), 1, "one tree, no orphan: {:?}", roots);
    let SpanInfo {
        service,
        name,
        parent,
        ..
    } = roots[0];
    assert_eq!(
        (service.as_str(), parent.as_str()),
        ("gateway", client_span.as_str()),
        "rooted at the gateway's server span ({name}) under the caller's span"
    );
    let names: BTreeSet<&str> = trace
        .spans
        .values()
        .map(|span| span.name.as_str())
        .collect();
    for expected in [
        "POST /bookings",
        "process inventory.commands",
        "process inventory.events",
        "publish inventory.commands",
        "saga charge",
        "POST /charges",
    ] {
        assert!(
            names.contains(expected),
            "no span {expected:?} in {names:?}"
        );
    }
    assert!(
        trace.spans.values().any(
            |span| span.attributes.get("saga.outcome").map(String::as_str) == Some("CONFIRMED")
        ),
        "the saga's outcome is a span attribute"
    );

    // Every log line of that trace, from every service, carries its trace id as a field.
    let loki = t.stack.endpoints().telemetry["loki"].clone();
    let result: Value = t
        .http
        .get(format!("{loki}/loki/api/v1/query_range"))
        .query(&[
            (
                "query",
                format!(r#"{{service="reservation"}} |= "{trace_id}""#),
            ),
            ("limit", "1000".into()),
        ])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let lines: Vec<Value> = result["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .map(|v| serde_json::from_str(v[1].as_str().unwrap_or_default()).expect("JSON line"))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("saga finished"))),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l["trace_id"] == trace_id.as_str()),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_traceparent_starts_a_new_trace_and_the_booking_succeeds() {
    let t = start(|_| {}).await;
    let accepted = t
        .http
        .post(t.gateway("/bookings"))
        .bearer_auth(t.token("user-2"))
        .header("idempotency-key", "garbage-trace")
        .header("traceparent", "00-not-a-trace-at-all")
        .json(&serde_json::json!({ "seat_id": "saga-live-1-006" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(accepted.status(), 202);
    let accepted: BookingAccepted = accepted.json().await.expect("json");
    assert_eq!(
        t.terminal("user-2", &accepted.booking_id).await.status,
        "CONFIRMED"
    );

    let tempo = t.stack.endpoints().telemetry["tempo"].clone();
    let trace_id = eventually(
        &format!("a trace for booking {}", accepted.booking_id),
        Patience::within(Duration::from_secs(20)).every(Duration::from_millis(300)),
        || async {
            let found: Value = t
                .http
                .get(format!("{tempo}/api/search"))
                .query(&[(
                    "q",
                    format!(
                        r#"{{ span.booking_id = "{}" && name = "create booking" }}"#,
                        accepted.booking_id
                    ),
                )])
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("json");
            found["traces"][0]["traceID"].as_str().map(str::to_owned)
        },
    )
    .await;
    assert_eq!(trace_id.len(), 32);
    let trace = settled_trace(
        &t,
        &trace_id,
        &["gateway", "reservation", "inventory", "payment"],
    )
    .await;
    let roots = trace.roots();
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert!(roots[0].parent.is_empty(), "a new root: no parent at all");
}

/// Books `seat` as `user` under a known trace: returns the booking, the trace id and the
/// caller's span id the gateway's span must hang under.
async fn traced_booking(
    t: &TestStack,
    user: &str,
    seat: &str,
) -> (BookingAccepted, String, String) {
    let trace_id = format!("{}{}", random_hex(8), random_hex(8));
    let client_span = random_hex(8);
    let accepted = t
        .http
        .post(t.gateway("/bookings"))
        .bearer_auth(t.token(user))
        .header("idempotency-key", format!("traced-{seat}"))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&serde_json::json!({ "seat_id": seat }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    (accepted, trace_id, client_span)
}

/// Waits for the booking to finish by watching reservation's admin view (no per-booking polling
/// requests, so every log line naming the booking belongs to its saga).
async fn finished_quietly(t: &TestStack, booking_id: &str) -> String {
    let reservation = t.stack.endpoints().service("reservation").to_owned();
    eventually(
        &format!("booking {booking_id} to finish"),
        Patience::within(Duration::from_secs(30)).every(Duration::from_millis(100)),
        || async {
            let bookings: Vec<Value> = t
                .http
                .get(format!("{reservation}/admin/bookings"))
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("json");
            bookings
                .iter()
                .find(|b| b["booking_id"] == booking_id)
                .and_then(|b| b["status"].as_str())
                .filter(|status| *status != "PENDING")
                .map(str::to_owned)
        },
    )
    .await
}

/// The JSON log lines of `service` containing `text`.
async fn log_lines(t: &TestStack, service: &str, text: &str) -> Vec<Value> {
    let loki = t.stack.endpoints().telemetry["loki"].clone();
    let result: Value = t
        .http
        .get(format!("{loki}/loki/api/v1/query_range"))
        .query(&[
            ("query", format!(r#"{{service="{service}"}} |= "{text}""#)),
            ("limit", "5000".into()),
        ])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    result["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .map(|v| serde_json::from_str(v[1].as_str().unwrap_or_default()).expect("JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensated_booking_shows_its_compensation_in_reverse_order_and_every_log_line_its_trace_id()
 {
    let t = start(|options| options.saga = serde_json::json!({ "charge_deadline_ms": 1500 })).await;
    // Payment refuses connections (its proxy disabled): the charge is known not to have been
    // sent, so the compensation's refund is skipped. (Killing payment behind its proxy would
    // make the outcome unknown — connect succeeds, then the proxy hangs up — and the refund
    // would wait for payment to come back.)
    faultline_toxiproxy::Client::new(t.stack.toxiproxy_url())
        .expect("toxiproxy client")
        .set_enabled("reservation-payment", false)
        .await
        .expect("disable reservation-payment");
    let (accepted, trace_id, _) = traced_booking(&t, "user-3", "saga-live-1-007").await;
    assert_eq!(
        finished_quietly(&t, &accepted.booking_id).await,
        "CANCELLED"
    );

    let trace = settled_trace(
        &t,
        &trace_id,
        &["gateway", "reservation", "inventory", "analytics"],
    )
    .await;
    assert_eq!(trace.roots().len(), 1, "one tree");
    let first = |name: &str| {
        trace
            .spans
            .values()
            .filter(|s| s.name == name)
            .map(|s| s.start_ns)
            .min()
            .unwrap_or_else(|| panic!("no span {name:?}"))
    };
    let (charge, refund, release) = (
        first("saga charge"),
        first("saga compensate refund"),
        first("saga compensate release"),
    );
    assert!(
        charge < refund && refund < release,
        "charge {charge} < refund {refund} < release {release}: compensation runs in reverse order"
    );
    assert!(
        trace
            .spans
            .values()
            .any(|s| s.attributes.get("saga.outcome").map(String::as_str) == Some("CANCELLED"))
    );
    assert!(
        trace
            .spans
            .values()
            .any(|s| s.name == "saga compensate refund"
                && s.attributes.get("compensation.outcome").map(String::as_str) == Some("skipped"))
    );

    // Every line any service logged for this booking carries the booking's trace id.
    let mut seen = 0;
    for service in ["gateway", "reservation", "inventory", "analytics"] {
        let lines = log_lines(&t, service, &accepted.booking_id).await;
        assert!(
            !lines.is_empty(),
            "{service} logged nothing for the booking"
        );
        for line in &lines {
            assert_eq!(line["trace_id"], trace_id.as_str(), "{service}: {line}");
            let span_id = line["span_id"].as_str().unwrap_or_default();
            assert!(
                span_id.len() == 16 && span_id != "0000000000000000",
                "{service}: a span id on every line: {line}"
            );
        }
        seen += lines.len();
    }
    let compensation = log_lines(&t, "reservation", &trace_id).await;
    assert!(
        compensation.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("compensating"))),
        "the compensation decision is in the logs"
    );
    assert!(seen > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_shows_its_duplicate_skip_under_the_original_trace() {
    let t = start(|_| {}).await;
    let (accepted, trace_id, _) = traced_booking(&t, "user-4", "saga-live-1-008").await;
    assert_eq!(
        finished_quietly(&t, &accepted.booking_id).await,
        "CONFIRMED"
    );

    let bootstrap = t.stack.endpoints().broker.clone();
    let held = |r: &faultline_harness::topic_reader::Record| {
        String::from_utf8_lossy(&r.payload).contains(&accepted.booking_id)
            && r.headers.get("event-type").map(String::as_str) == Some("SeatHeld")
    };
    let original = faultline_harness::topic_reader::find(
        &bootstrap,
        faultline_contracts::topics::INVENTORY_EVENTS,
        Duration::from_secs(20),
        held,
    )
    .await
    .expect("the SeatHeld event");
    faultline_harness::topic_reader::republish(
        &bootstrap,
        faultline_contracts::topics::INVENTORY_EVENTS,
        &original,
    )
    .await
    .expect("redeliver");

    let tempo = t.stack.endpoints().telemetry["tempo"].clone();
    let trace = eventually(
        &format!("a duplicate skip under trace {trace_id}"),
        Patience::within(Duration::from_secs(20)).every(Duration::from_millis(300)),
        || async {
            let found: Value = t
                .http
                .get(format!("{tempo}/api/search"))
                .query(&[("q", "{ span.messaging.duplicate = true }")])
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("json");
            let trace = found["traces"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|tr| tr["traceID"] == trace_id.as_str())
                .cloned();
            trace.ok_or_else(|| format!("search found {found}"))
        },
    )
    .await;
    assert_eq!(
        trace["spanSet"]["spans"][0]["name"],
        "process inventory.events"
    );
    let lines = log_lines(&t, "reservation", "duplicate message skipped").await;
    assert!(
        lines.iter().any(|l| l["trace_id"] == trace_id.as_str()),
        "the dedupe decision is in the logs under the trace: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_no_span_of_a_finished_booking_is_missing() {
    // Spans would wait a minute in the exporters' batches: only the flush at shutdown sends them.
    let mut t = start(|options| options.span_batch_delay_ms = 60_000).await;
    let (accepted, trace_id, _) = traced_booking(&t, "user-5", "saga-live-1-009").await;
    assert_eq!(
        finished_quietly(&t, &accepted.booking_id).await,
        "CONFIRMED"
    );
    // The saga's last hop (BookingConfirmed → analytics) may still be in flight when reservation
    // reports CONFIRMED: stop nothing before analytics has applied it, or its span never exists.
    eventually(
        "analytics to count the booking",
        Patience::within(Duration::from_secs(20)).every(Duration::from_millis(100)),
        || async {
            let summary: Value = t.analytics_summary().await;
            if summary["confirmed"].as_i64() >= Some(1) {
                Ok(())
            } else {
                Err(summary.to_string())
            }
        },
    )
    .await;
    let tempo = t.stack.endpoints().telemetry["tempo"].clone();
    let before = t
        .http
        .get(format!("{tempo}/api/traces/{trace_id}"))
        .send()
        .await
        .expect("GET")
        .status();
    assert_eq!(
        before, 404,
        "nothing exported yet: the batch delay holds the spans"
    );
    for service in [
        "gateway",
        "reservation",
        "inventory",
        "payment",
        "analytics",
    ] {
        t.stack
            .stop_service(service, Duration::from_secs(10))
            .expect("SIGTERM");
    }
    let trace = settled_trace(
        &t,
        &trace_id,
        &[
            "gateway",
            "reservation",
            "inventory",
            "payment",
            "analytics",
        ],
    )
    .await;
    assert_eq!(trace.roots().len(), 1, "one tree, every parent present");
    let names: BTreeSet<&str> = trace.spans.values().map(|s| s.name.as_str()).collect();
    for expected in [
        "POST /bookings",
        "saga charge",
        "POST /charges",
        "process booking.events",
        "saga reply SeatSold",
    ] {
        assert!(
            names.contains(expected),
            "{expected:?} missing after shutdown: {names:?}"
        );
    }
}
