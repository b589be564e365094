//! Who talks to whom, and on which port. Every `host:port` a service's environment (or the
//! chaos runner's target file, or a proxy's upstream) points to must be a port its target
//! listens on; every link the chaos runner faults goes through its Toxiproxy proxy; the broker
//! advertises the proxy, so no client bypasses it.
//!
//! What each container listens on is read from where it is configured: the Faultline services'
//! `FAULTLINE__HTTP__PORT`, Kafka's `KAFKA_LISTENERS`, Toxiproxy's API port and proxies, Tempo's
//! and Loki's YAML, Grafana's and PostgreSQL's defaults.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use faultline_contracts::topology::{Callee, Link, Service};
use regex::Regex;
use serde_json::Value;

use crate::{
    Problems,
    compose::{Compose, interpolate},
    toxiproxy::Proxy,
};

/// The compose setting through which a service-to-service call's caller learns its callee's
/// address (which must be the call's proxy).
pub fn setting(call: Link) -> Option<&'static str> {
    match call {
        Link::GatewayReservation => Some("FAULTLINE__UPSTREAM__RESERVATION_URL"),
        Link::GatewayInventory => Some("FAULTLINE__UPSTREAM__INVENTORY_URL"),
        Link::GatewayPayment => Some("FAULTLINE__UPSTREAM__PAYMENT_URL"),
        Link::ReservationPayment => Some("FAULTLINE__PAYMENT__BASE_URL"),
        Link::Kafka | Link::Postgres(_) => None,
    }
}

/// Infrastructure the services reach directly: telemetry is the observer, not a subject.
pub const DIRECT_INFRA: [&str; 2] = ["tempo", "loki"];

/// `host:port` after the start, a space, `/`, `@`, `,` or `=` (the shared pattern of
/// [`addresses`] and the native rewrite).
pub static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[\s/@,=])([A-Za-z][A-Za-z0-9_.-]*):(\d{1,5})\b").expect("a valid pattern")
});

/// The `host:port` pairs in a value (URLs, bootstrap lists, listener specs, `id@host:port`).
/// Hosts are names (compose services), never IP literals.
pub fn addresses(text: &str) -> Vec<(String, u16)> {
    ADDRESS
        .captures_iter(text)
        .filter_map(|c| Some((c[2].to_owned(), c[3].parse().ok()?)))
        .collect()
}

fn repository(image: &str) -> &str {
    let last_colon = image.rfind(':').filter(|&i| !image[i..].contains('/'));
    last_colon.map(|i| &image[..i]).unwrap_or(image)
}

fn yaml_port(value: &Value, path: &[&str]) -> Option<u16> {
    let mut node = value;
    for key in path {
        node = node.get(key)?;
    }
    node.as_u64().and_then(|p| u16::try_from(p).ok())
}

/// What each compose service listens on, from its configuration.
pub fn listeners(
    compose: &Compose,
    proxies: &[Proxy],
    tempo: &Value,
    loki: &Value,
) -> BTreeMap<String, BTreeSet<u16>> {
    let mut table = BTreeMap::new();
    for (name, service) in &compose.services {
        let env = compose.environment(name).unwrap_or_default();
        let mut ports = BTreeSet::new();
        if let Some(port) = env
            .get("FAULTLINE__HTTP__PORT")
            .and_then(|p| p.parse().ok())
        {
            ports.insert(port);
        }
        match service.image.as_deref().map(repository) {
            Some("apache/kafka") => {
                for listener in env
                    .get("KAFKA_LISTENERS")
                    .into_iter()
                    .flat_map(|l| l.split(','))
                {
                    if let Some(port) = listener.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
                    {
                        ports.insert(port);
                    }
                }
            }
            Some("postgres") => {
                ports.insert(
                    env.get("PGPORT")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(5432),
                );
            }
            Some("ghcr.io/shopify/toxiproxy") => {
                let api = service
                    .command
                    .iter()
                    .find_map(|arg| arg.strip_prefix("-port="))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(8474);
                ports.insert(api);
                ports.extend(proxies.iter().filter_map(Proxy::listen_port));
            }
            Some("grafana/tempo") => {
                ports.insert(yaml_port(tempo, &["server", "http_listen_port"]).unwrap_or(3200));
                if let Some(protocols) = tempo
                    .pointer("/distributor/receivers/otlp/protocols")
                    .and_then(Value::as_object)
                {
                    for protocol in protocols.values() {
                        if let Some(port) = protocol
                            .get("endpoint")
                            .and_then(Value::as_str)
                            .and_then(|e| e.rsplit_once(':'))
                            .and_then(|(_, p)| p.parse().ok())
                        {
                            ports.insert(port);
                        }
                    }
                }
            }
            Some("grafana/loki") => {
                ports.insert(yaml_port(loki, &["server", "http_listen_port"]).unwrap_or(3100));
            }
            Some("grafana/grafana") => {
                ports.insert(
                    env.get("GF_SERVER_HTTP_PORT")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(3000),
                );
            }
            _ => {}
        }
        table.insert(name.clone(), ports);
    }
    table
}

/// `(host, port)` must be a compose service listening on that port. `from` names the caller in
/// the problem.
pub fn check_address(
    from: &str,
    host: &str,
    port: u16,
    listeners: &BTreeMap<String, BTreeSet<u16>>,
) -> Option<String> {
    match listeners.get(host) {
        None => Some(format!("{from}: {host}:{port} names no compose service")),
        Some(ports) if ports.is_empty() => Some(format!(
            "{from}: {host}:{port}: cannot tell what {host} listens on"
        )),
        Some(ports) if !ports.contains(&port) => Some(format!(
            "{from}: {host}:{port}, but {host} listens on {ports:?}"
        )),
        Some(_) => None,
    }
}

/// Every address in every service's environment, every proxy upstream and every URL of the
/// chaos target file is a port its target listens on.
pub fn check_addresses(
    compose: &Compose,
    proxies: &[Proxy],
    target: &Value,
    listeners: &BTreeMap<String, BTreeSet<u16>>,
) -> Problems {
    let mut problems = Problems::new();
    for name in compose.services.keys() {
        let env = match compose.environment(name) {
            Ok(env) => env,
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        for (key, value) in &env {
            for (host, port) in addresses(value) {
                problems.extend(check_address(
                    &format!("{name} {key}"),
                    &host,
                    port,
                    listeners,
                ));
            }
        }
    }
    for proxy in proxies {
        match proxy.upstream_address() {
            Some((host, port)) => problems.extend(check_address(
                &format!("proxy {}", proxy.name),
                &host,
                port,
                listeners,
            )),
            None => problems.push(format!("proxy {}: bad upstream", proxy.name)),
        }
    }
    // Every address the runner calls is on the compose network; the one a person opens from
    // the host (`telemetry.grafana_public`) is checked against Grafana's published port in
    // `check_target`.
    let mut called = target.clone();
    if let Some(telemetry) = called.get_mut("telemetry").and_then(Value::as_object_mut) {
        telemetry.remove("grafana_public");
    }
    let mut target_strings = Vec::new();
    strings(&called, &mut target_strings);
    for text in target_strings {
        for (host, port) in addresses(&text) {
            problems.extend(check_address("compose-target.json", &host, port, listeners));
        }
    }
    problems
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn proxy_for<'a>(proxies: &'a [Proxy], host: &str, port: u16) -> Option<&'a Proxy> {
    (host == "toxiproxy")
        .then(|| proxies.iter().find(|p| p.listen_port() == Some(port)))
        .flatten()
}

/// Every link the chaos runner faults goes through the proxy named for it: each service's
/// database through `<service>-postgres` to its own database, each broker client through
/// `kafka`, each call between services ([`Link::SERVICE_CALLS`]) through its proxy. No service names
/// the broker, PostgreSQL or another service directly; Kafka advertises the `kafka` proxy;
/// every proxy is used.
pub fn check_links(compose: &Compose, proxies: &[Proxy], init_sql: &str) -> Problems {
    let mut problems = Problems::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let expect_proxy = |problems: &mut Problems,
                        used: &mut BTreeSet<String>,
                        what: &str,
                        value: Option<&String>,
                        proxy: &str,
                        upstream: (&str, Option<u16>)| {
        let Some(value) = value else {
            problems.push(format!("{what} is not configured"));
            return;
        };
        let Some((host, port)) = addresses(value).into_iter().next() else {
            problems.push(format!("{what} = {value:?} has no host:port"));
            return;
        };
        match proxy_for(proxies, &host, port) {
            Some(p) if p.name == proxy => {
                used.insert(p.name.clone());
                let target = p.upstream_address();
                let wanted_port_ok = upstream
                    .1
                    .is_none_or(|w| target.as_ref().map(|t| t.1) == Some(w));
                if target.as_ref().map(|t| t.0.as_str()) != Some(upstream.0) || !wanted_port_ok {
                    problems.push(format!(
                        "{what}: proxy {proxy} leads to {}, not {}{}",
                        p.upstream,
                        upstream.0,
                        upstream.1.map(|p| format!(":{p}")).unwrap_or_default()
                    ));
                }
            }
            Some(p) => problems.push(format!("{what} goes through proxy {}, not {proxy}", p.name)),
            None => problems.push(format!(
                "{what} = {value:?} bypasses Toxiproxy (expected proxy {proxy})"
            )),
        }
    };
    let env = |name: &str| compose.environment(name).unwrap_or_default();
    let http_port = |name: &str| {
        env(name)
            .get("FAULTLINE__HTTP__PORT")
            .and_then(|p| p.parse().ok())
    };
    let kafka_client_port = env("kafka")
        .get("KAFKA_LISTENERS")
        .and_then(|l| {
            l.split(',')
                .find(|l| l.starts_with("CLIENT://"))
                .map(str::to_owned)
        })
        .and_then(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse().ok()));

    for service in Service::ALL {
        let name = service.name();
        let env = env(name);
        if let Some(url) = env.get("FAULTLINE__DATABASE__URL") {
            expect_proxy(
                &mut problems,
                &mut used,
                &format!("{name}'s database"),
                Some(url),
                Link::Postgres(service).proxy_name(),
                ("postgres", Some(5432)),
            );
            let database = url.rsplit('/').next().unwrap_or_default();
            if database != name {
                problems.push(format!(
                    "{name}'s database is {database:?}, not its own ({name})"
                ));
            }
            if !init_sql.contains(&format!("CREATE DATABASE {name};")) {
                problems.push(format!(
                    "the PostgreSQL init script does not create database {name}"
                ));
            }
        }
        if env.contains_key("FAULTLINE__KAFKA__BOOTSTRAP_SERVERS") {
            expect_proxy(
                &mut problems,
                &mut used,
                &format!("{name}'s broker"),
                env.get("FAULTLINE__KAFKA__BOOTSTRAP_SERVERS"),
                Link::Kafka.proxy_name(),
                ("kafka", kafka_client_port),
            );
        }
        for (key, value) in &env {
            for (host, _) in addresses(value) {
                let direct_ok = DIRECT_INFRA.contains(&host.as_str()) || host == "toxiproxy";
                if !direct_ok {
                    problems.push(format!(
                        "{name} {key}: reaches {host} directly, not through Toxiproxy"
                    ));
                }
            }
        }
    }
    for call in Link::SERVICE_CALLS {
        let (Some(caller), Callee::Service(callee), Some(setting)) =
            (call.caller(), call.callee(), setting(call))
        else {
            problems.push(format!("{call}: not a call between services"));
            continue;
        };
        expect_proxy(
            &mut problems,
            &mut used,
            &format!("{caller} → {callee}"),
            env(caller.name()).get(setting),
            call.proxy_name(),
            (callee.name(), http_port(callee.name())),
        );
    }
    // What the broker tells clients to connect to after bootstrapping.
    let advertised = env("kafka")
        .get("KAFKA_ADVERTISED_LISTENERS")
        .and_then(|l| {
            l.split(',')
                .find(|l| l.starts_with("CLIENT://"))
                .map(str::to_owned)
        });
    expect_proxy(
        &mut problems,
        &mut used,
        "Kafka's advertised client listener",
        advertised.as_ref(),
        "kafka",
        ("kafka", kafka_client_port),
    );
    for proxy in proxies {
        if !used.contains(&proxy.name) {
            problems.push(format!("proxy {} is used by nothing", proxy.name));
        }
    }
    problems
}

/// The chaos runner's target file: the gateway and each service at their own address, the
/// Toxiproxy API, the broker address the services use, Tempo, Loki and Grafana, PostgreSQL.
pub fn check_target(compose: &Compose, target: &Value) -> Problems {
    let mut problems = Problems::new();
    let text = |pointer: &str| {
        target
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let host_of = |url: &str| addresses(url).into_iter().next().map(|(h, _)| h);
    if host_of(text("/gateway_url")).as_deref() != Some("gateway") {
        problems.push("target: gateway_url is not the gateway".into());
    }
    for name in Service::ALL.map(Service::name) {
        if host_of(text(&format!("/services/{name}"))).as_deref() != Some(name) {
            problems.push(format!(
                "target: services.{name} is not {name}'s own address"
            ));
        }
    }
    if host_of(text("/toxiproxy_url")).as_deref() != Some("toxiproxy") {
        problems.push("target: toxiproxy_url is not Toxiproxy".into());
    }
    let bootstrap = compose
        .environment("inventory")
        .ok()
        .and_then(|e| e.get("FAULTLINE__KAFKA__BOOTSTRAP_SERVERS").cloned());
    if bootstrap.as_deref() != Some(text("/broker")) {
        problems.push(format!(
            "target: broker {:?} is not the services' {bootstrap:?}",
            text("/broker")
        ));
    }
    for (key, host) in [("tempo", "tempo"), ("loki", "loki"), ("grafana", "grafana")] {
        if host_of(text(&format!("/telemetry/{key}"))).as_deref() != Some(host) {
            problems.push(format!("target: telemetry.{key} is not {host}"));
        }
    }
    if text("/database") != "postgres" {
        problems.push("target: database must be postgres".into());
    }
    if let Some(public) = target
        .pointer("/telemetry/grafana_public")
        .and_then(Value::as_str)
    {
        let published: Vec<String> = compose
            .services
            .get("grafana")
            .map(|grafana| grafana.ports.iter().map(|p| resolved(p)).collect())
            .unwrap_or_default();
        let on_host = addresses(public)
            .into_iter()
            .next()
            .is_some_and(|(host, port)| {
                ["localhost", "127.0.0.1"].contains(&host.as_str())
                    && published
                        .iter()
                        .any(|mapping| mapping == &format!("127.0.0.1:{port}:3000"))
            });
        if !on_host {
            problems.push(format!(
                "target: telemetry.grafana_public {public:?} is not Grafana's published port {published:?}"
            ));
        }
    }
    problems
}

/// The same interpolation compose does, for callers that hold raw strings.
pub fn resolved(text: &str) -> String {
    interpolate(text, &|_| None).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy;

    #[test]
    fn addresses_are_found_in_urls_listener_lists_and_voter_lists() {
        assert_eq!(
            addresses("postgres://u:pw@toxiproxy:15433/payment"),
            [("toxiproxy".to_owned(), 15433)]
        );
        assert_eq!(
            addresses("CLIENT://toxiproxy:19092,INTERNAL://kafka:29092,CONTROLLER://:9093"),
            [("toxiproxy".to_owned(), 19092), ("kafka".to_owned(), 29092)]
        );
        assert_eq!(addresses("1@kafka:9093"), [("kafka".to_owned(), 9093)]);
        assert!(addresses("CLIENT:PLAINTEXT,admin:secret").is_empty());
    }

    const MINI: &str = "services:
  toxiproxy:
    image: ghcr.io/shopify/toxiproxy:2.12.0
  postgres:
    image: postgres:18.6
  kafka:
    image: apache/kafka:4.3.1
    environment:
      KAFKA_LISTENERS: CLIENT://:9092,CONTROLLER://:9093
      KAFKA_ADVERTISED_LISTENERS: CLIENT://kafka:9092
  payment:
    image: x:1.0
    environment:
      FAULTLINE__HTTP__PORT: 8080
      FAULTLINE__DATABASE__URL: postgres://p:p@postgres:5432/payment
  reservation:
    image: x:1.0
    environment:
      FAULTLINE__HTTP__PORT: 8080
      FAULTLINE__DATABASE__URL: postgres://p:p@toxiproxy:15433/reservation
      FAULTLINE__KAFKA__BOOTSTRAP_SERVERS: toxiproxy:19092
      FAULTLINE__PAYMENT__BASE_URL: http://payment:8081
";

    fn mini_proxies() -> Vec<Proxy> {
        toxiproxy::parse(
            r#"[{"name":"kafka","listen":"0.0.0.0:19092","upstream":"kafka:9092"},
                {"name":"payment-postgres","listen":"0.0.0.0:15433","upstream":"postgres:5432"},
                {"name":"spare","listen":"0.0.0.0:15499","upstream":"postgres:5433"}]"#,
        )
        .expect("parses")
    }

    #[test]
    fn a_port_the_target_does_not_listen_on_is_a_problem() {
        let compose = Compose::parse(MINI).expect("parses");
        let proxies = mini_proxies();
        let table = listeners(&compose, &proxies, &Value::Null, &Value::Null);
        assert!(table["toxiproxy"].contains(&8474) && table["toxiproxy"].contains(&19092));
        let problems = check_addresses(&compose, &proxies, &Value::Null, &table);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("payment:8081, but payment listens on")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("proxy spare: postgres:5433")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_bypassed_or_misnamed_proxy_and_an_advertised_broker_address_are_problems() {
        let compose = Compose::parse(MINI).expect("parses");
        let problems = check_links(&compose, &mini_proxies(), "CREATE DATABASE payment;");
        let has = |text: &str| problems.iter().any(|p| p.contains(text));
        assert!(
            has("payment's database = \"postgres://p:p@postgres:5432/payment\" bypasses"),
            "{problems:?}"
        );
        assert!(
            has(
                "reservation's database goes through proxy payment-postgres, not reservation-postgres"
            ),
            "{problems:?}"
        );
        assert!(has("does not create database reservation"), "{problems:?}");
        assert!(
            has("reservation FAULTLINE__PAYMENT__BASE_URL: reaches payment directly"),
            "{problems:?}"
        );
        assert!(
            has("Kafka's advertised client listener = \"CLIENT://kafka:9092\" bypasses"),
            "{problems:?}"
        );
        assert!(has("proxy spare is used by nothing"), "{problems:?}");
    }

    #[test]
    fn a_target_file_pointing_at_the_wrong_places_is_a_problem() {
        let compose = Compose::parse(MINI).expect("parses");
        let target = serde_json::json!({"gateway_url": "http://toxiproxy:18001", "broker": "kafka:9092", "database": "sqlite"});
        let problems = check_target(&compose, &target);
        assert!(problems.len() >= 5, "{problems:?}");
    }
}
