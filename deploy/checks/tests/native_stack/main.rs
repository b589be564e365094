//! The compose environment works outside Docker (issue 6, item 3): the five services' own
//! binaries start with exactly the `environment:` docker-compose.yml gives them, against
//! natively started dependencies, with only compose addresses rewritten (see
//! `faultline_deploy_checks::native`):
//!
//! - `toxiproxy:<port>` → a forwarder per proxy of deploy/toxiproxy/toxiproxy.json, leading to
//!   the native stand-in of the proxy's upstream;
//! - `kafka:9092` → the embedded broker advertising the `kafka` forwarder, as Kafka advertises the
//!   proxy in compose;
//! - `postgres:5432` → the local PostgreSQL (a fresh database per service; the test fails if
//!   PostgreSQL is unreachable, it never skips);
//! - `tempo:4318` and `loki:3100` → the telemetry capture, which receives OTLP and Loki pushes
//!   as Tempo and Loki do;
//! - `<service>:8080` → the service on a free port of 127.0.0.1.
//!
//! Then one booking is confirmed and one is compensated (a wallet too small), through the
//! gateway with a token minted by the gateway binary from the same environment, and the test
//! checks what the compose stack promises: every proxy carried traffic both ways; Grafana's
//! Tempo → Loki query finds exactly the compensated booking's lines across services, and the
//! Loki → Tempo derived field turns each of them back into its trace id; the dashboards'
//! LogQL and TraceQL find the outcomes and the compensation in what the services really sent.

mod forwarder;
mod processes;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use faultline_capture::store::{Store, StoredLine};
use faultline_deploy_checks::{
    compose::Compose,
    grafana,
    native::{self, NativeMap},
    repo, toxiproxy,
};
use faultline_harness::wait::{Patience, eventually};
use faultline_querylang::logql;
use forwarder::Forwarder;
use processes::Children;
use serde_json::Value;

const SERVICES_IN_START_ORDER: [&str; 5] = faultline_contracts::topology::Service::ALL_NAMES;

/// `host:port` of a URL such as `postgres://user@127.0.0.1:5432/db`.
fn host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let after_user = after_scheme
        .rsplit_once('@')
        .map(|(_, r)| r)
        .unwrap_or(after_scheme);
    after_user.split('/').next().unwrap_or_default().to_owned()
}

struct Booking {
    booking_id: String,
    trace_id: String,
}

async fn book(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    seat: &str,
    trace_id: &str,
) -> Booking {
    let response = http
        .post(format!("{gateway}/bookings"))
        .bearer_auth(token)
        .header("idempotency-key", format!("native-{seat}"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({ "seat_id": seat }))
        .send()
        .await
        .expect("POST /bookings");
    assert_eq!(response.status(), 202, "booking {seat} not accepted");
    let accepted: Value = response.json().await.expect("json");
    Booking {
        booking_id: accepted["booking_id"]
            .as_str()
            .expect("booking_id")
            .to_owned(),
        trace_id: trace_id.to_owned(),
    }
}

async fn final_status(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    booking: &Booking,
) -> String {
    eventually(
        &format!("booking {} to finish", booking.booking_id),
        Patience::within(Duration::from_secs(60)).every(Duration::from_millis(100)),
        || async {
            let view: Value = http
                .get(format!("{gateway}/bookings/{}", booking.booking_id))
                .bearer_auth(token)
                .send()
                .await
                .expect("GET /bookings/{id}")
                .json()
                .await
                .expect("json");
            let status = view["status"].as_str().unwrap_or_default().to_owned();
            if status != "PENDING" && !status.is_empty() {
                Ok(status)
            } else {
                Err(format!("it stayed {status:?}"))
            }
        },
    )
    .await
}

/// The lines (with their labels) of the given trace id, once `services` have all sent some.
async fn settled_lines(store: &Store, trace_id: &str, services: &[&str]) -> Vec<StoredLine> {
    eventually(
        &format!("log lines of trace {trace_id} from each of {services:?}"),
        Patience::within(Duration::from_secs(30)).every(Duration::from_millis(200)),
        || async {
            let lines: Vec<StoredLine> = store.with_lines(|lines| {
                lines
                    .iter()
                    .filter(|l| l.line.contains(trace_id))
                    .cloned()
                    .collect()
            });
            let seen: BTreeSet<&str> = lines
                .iter()
                .filter_map(|l| l.labels.get("service").map(String::as_str))
                .collect();
            if services.iter().all(|s| seen.contains(s)) {
                Ok(store.with_lines(<[StoredLine]>::to_vec))
            } else {
                Err(format!("they came from {seen:?} only"))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_run_natively_with_their_compose_environment() {
    let binaries = tokio::task::spawn_blocking(|| processes::build(&SERVICES_IN_START_ORDER))
        .await
        .expect("build task");
    let compose = Compose::load().expect("compose file");
    let proxies = toxiproxy::load().expect("proxies");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut map = NativeMap::default();

    // The telemetry capture stands in for Tempo (OTLP/HTTP) and Loki (push API).
    let store = Store::default();
    let capture = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let capture_addr = capture.local_addr().expect("addr").to_string();
    let stop_capture = faultline_kit::shutdown::CancellationToken::new();
    tokio::spawn(faultline_capture::server::serve(
        capture,
        store.clone(),
        stop_capture.clone(),
    ));
    map.address("tempo", 4318, capture_addr.clone())
        .address("loki", 3100, capture_addr);

    // Each service on a free port.
    let mut native_ports = BTreeMap::new();
    for name in SERVICES_IN_START_ORDER {
        let port = faultline_harness::free_port().expect("port");
        native_ports.insert(name, port);
        map.address(name, 8080, format!("127.0.0.1:{port}"));
    }

    // A fresh database per service, on the local PostgreSQL.
    let mut postgres_server = String::new();
    for name in ["reservation", "inventory", "payment", "analytics"] {
        let url = faultline_harness::postgres::fresh_database(name)
            .await
            .expect(
                "PostgreSQL must be running at 127.0.0.1:5432 (or FAULTLINE_TEST_POSTGRES_URL)",
            );
        postgres_server = host_port(&url);
        let native_name = url.rsplit('/').next().expect("a database name").to_owned();
        map.databases.insert(name.to_owned(), native_name);
    }

    // One forwarder per Toxiproxy proxy, each leading to its upstream's native stand-in.
    let broker_port = faultline_harness::free_port().expect("port");
    let mut forwarders = Vec::new();
    for proxy in &proxies {
        let (host, port) = proxy.upstream_address().expect("upstream");
        let upstream = match host.as_str() {
            "kafka" => format!("127.0.0.1:{broker_port}"),
            "postgres" => postgres_server.clone(),
            service => map
                .addresses
                .get(&(service.to_owned(), port))
                .unwrap_or_else(|| panic!("proxy {}: no native {service}:{port}", proxy.name))
                .clone(),
        };
        let forwarder = Forwarder::start(&proxy.name, upstream)
            .await
            .expect("forwarder");
        map.address(
            "toxiproxy",
            proxy.listen_port().expect("listen port"),
            forwarder.listen.to_string(),
        );
        forwarders.push(forwarder);
    }

    // The broker advertises what compose's Kafka advertises (the `kafka` proxy), rewritten.
    let kafka_env = compose.environment("kafka").expect("kafka");
    let advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        .split(',')
        .find_map(|l| l.strip_prefix("CLIENT://"))
        .expect("a CLIENT listener");
    let advertised =
        native::rewrite_value(advertised, &map).expect("the advertised proxy has a forwarder");
    let _broker = faultline_harness::broker::EmbeddedBroker::start_on(broker_port, &advertised, 4)
        .await
        .expect("the embedded broker");

    // The services: the compose command, the compose environment, rewritten addresses only.
    let root = repo::root();
    let mut children = Children::default();
    let mut environments = BTreeMap::new();
    for name in SERVICES_IN_START_ORDER {
        let service = compose.service(name).expect("service");
        let env = native::environment(&compose, name, &map, &root)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let (binary, args) = service.command.split_first().expect("a command");
        children.spawn(
            name,
            &binaries[binary.as_str()],
            args,
            &env,
            dir.path().join(format!("{name}.log")),
        );
        environments.insert(name, env);
    }
    for name in SERVICES_IN_START_ORDER {
        let url = format!("http://127.0.0.1:{}/ready", native_ports[name]);
        children
            .wait_ready(name, &url, Duration::from_secs(90))
            .await;
    }

    // Tokens from the gateway binary itself, with the gateway's compose secret.
    let mint = |user: &str| {
        processes::run(
            &binaries["gateway"],
            &["mint-token", "--user", user],
            &environments["gateway"],
        )
    };
    let (rich, poor) = (mint("user-1"), mint("user-9"));
    let gateway = format!("http://127.0.0.1:{}", native_ports["gateway"]);
    let http = reqwest::Client::new();
    let confirmed = book(
        &http,
        &gateway,
        &rich,
        "saga-live-1-001",
        "11111111111111111111111111111111",
    )
    .await;
    // user-9 holds 120 points; this seat costs 150: payment declines, reservation compensates.
    let cancelled = book(
        &http,
        &gateway,
        &poor,
        "comp-tour-1-001",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    )
    .await;
    assert_eq!(
        final_status(&http, &gateway, &rich, &confirmed).await,
        "CONFIRMED"
    );
    assert_eq!(
        final_status(&http, &gateway, &poor, &cancelled).await,
        "CANCELLED"
    );

    // The gateway's reads go through their proxies too.
    for path in ["/concerts", "/me/wallet"] {
        let response = http
            .get(format!("{gateway}{path}"))
            .bearer_auth(&rich)
            .send()
            .await
            .expect("GET");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
    }

    // Every link went through its proxy, both ways.
    for forwarder in &forwarders {
        let (sent, received) = forwarder.bytes();
        assert!(
            sent > 0 && received > 0,
            "proxy {} carried {sent} bytes up and {received} down",
            forwarder.name
        );
    }

    let lines = settled_lines(
        &store,
        &cancelled.trace_id,
        &["gateway", "reservation", "inventory", "payment"],
    )
    .await;

    // Tempo → Loki: Grafana's trace-to-logs query finds this trace's lines in every service
    // that handled it, and nothing else.
    let datasources = grafana::parse_datasources(
        &repo::read("deploy/grafana/provisioning/datasources/datasources.yaml").expect("readable"),
    )
    .expect("datasources");
    let tempo = datasources
        .iter()
        .find(|d| d.uid == grafana::TEMPO_UID)
        .expect("tempo");
    let loki = datasources
        .iter()
        .find(|d| d.uid == grafana::LOKI_UID)
        .expect("loki");
    let to_logs = logql::parse(
        &grafana::traces_to_logs_query(tempo, &cancelled.trace_id).expect("a trace → logs query"),
    )
    .expect("valid LogQL");
    let found: Vec<&StoredLine> = lines
        .iter()
        .filter(|l| to_logs.log_query().evaluate(&l.labels, &l.line).is_some())
        .collect();
    let services: BTreeSet<&str> = found
        .iter()
        .filter_map(|l| l.labels.get("service").map(String::as_str))
        .collect();
    for service in ["gateway", "reservation", "inventory", "payment"] {
        assert!(
            services.contains(service),
            "trace → logs found no line of {service}: {services:?}"
        );
    }
    // Loki → Tempo: each of those lines links back to the trace.
    for line in &found {
        assert_eq!(
            grafana::derived_trace_id(loki, &line.line).as_deref(),
            Some(cancelled.trace_id.as_str()),
            "the derived field must link {} to its trace",
            line.line
        );
    }
    assert!(
        found.iter().any(|l| l.line.contains("compensating")),
        "the compensation decision is among the trace's lines"
    );

    // The dashboards' queries find the outcomes and the compensation in the real lines.
    let dashboard: Value = serde_json::from_str(
        &repo::read("deploy/grafana/dashboards/faultline-chaos.json").expect("dashboard"),
    )
    .expect("json");
    let panel_query = |title: &str| -> logql::Query {
        let panel = dashboard["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        logql::parse(panel["targets"][0]["expr"].as_str().expect("a LogQL expr")).expect("valid")
    };
    let values = |title: &str, label: &str| -> BTreeSet<String> {
        let query = panel_query(title);
        lines
            .iter()
            .filter_map(|l| query.log_query().evaluate(&l.labels, &l.line))
            .filter_map(|labels| labels.get(label).cloned())
            .collect()
    };
    let outcomes = values("Booking outcomes", "saga_outcome");
    assert!(
        outcomes.contains("CONFIRMED") && outcomes.contains("CANCELLED"),
        "the outcomes panel sees {outcomes:?}"
    );
    let steps = values("Compensations by step", "saga_step");
    assert!(
        steps.contains("release"),
        "the compensations panel sees {steps:?}"
    );
    let decisions = panel_query("Compensation decisions and late replies");
    assert!(
        lines
            .iter()
            .any(|l| decisions.log_query().evaluate(&l.labels, &l.line).is_some()),
        "the compensation-decisions panel shows nothing"
    );

    // The "Compensated bookings" TraceQL finds the compensated booking's trace (through the
    // capture's TraceQL subset, which this equality query stays within).
    let compensated = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["title"] == "Compensated bookings (open one in Explore)")
        .and_then(|p| p["targets"][0]["query"].as_str())
        .expect("the TraceQL panel");
    let traceql =
        faultline_capture::tempo::Query::parse(compensated).expect("within the capture's subset");
    // Spans leave in batches (OTEL_BSP_SCHEDULE_DELAY, 5 s by default, as in compose), each
    // process on its own clock: wait until every service's spans of the trace are in.
    eventually(
        "every service's spans of the compensated trace, found by the panel's TraceQL",
        Patience::within(Duration::from_secs(30)).every(Duration::from_millis(200)),
        || async {
            let spans = store.trace(&cancelled.trace_id);
            let services: BTreeSet<&str> = spans.iter().map(|s| &*s.service_name).collect();
            let found = spans.iter().any(|span| traceql.matches(span));
            let complete = ["gateway", "reservation", "inventory", "payment"]
                .iter()
                .all(|s| services.contains(s));
            if found && complete {
                Ok(())
            } else {
                Err(format!(
                    "the trace has spans of {services:?}; {compensated} finds it: {found}"
                ))
            }
        },
    )
    .await;
    stop_capture.cancel();
}
