//! The static checks can fail on the real files: each case breaks one thing in a copy of a
//! repository file, in memory, and the check that guards it must then report a problem (while
//! the unbroken file passes). A check that stays green whatever the input proves nothing.

use faultline_deploy_checks::{
    Problems, backends,
    compose::Compose,
    compose_checks, grafana, replicas, repo, topology,
    toxiproxy::{self, Proxy},
    yaml,
};

/// Runs `check` on `original` (must pass) and on `original` with `from` replaced by `to` (must
/// not); `from` must occur in the file, so a case cannot rot silently when the file changes.
fn caught(file: &str, from: &str, to: &str, check: &dyn Fn(&str) -> Problems) {
    let original = repo::read(file).expect("readable");
    assert!(
        original.contains(from),
        "{file} no longer contains {from:?}: update this case"
    );
    assert_eq!(
        check(&original),
        Problems::new(),
        "{file} must pass before it is broken"
    );
    let broken = original.replacen(from, to, 1);
    let problems = check(&broken);
    eprintln!("{from:?} → {to:?}: {problems:?}");
    assert!(
        !problems.is_empty(),
        "{file} with {from:?} → {to:?} passed the check"
    );
}

fn proxies() -> Vec<Proxy> {
    toxiproxy::load().expect("proxies")
}

fn yaml_file(path: &str) -> serde_json::Value {
    yaml::parse(&repo::read(path).expect("readable")).expect("parses")
}

/// Every compose check, as the static test runs them.
fn compose_problems(text: &str) -> Problems {
    let compose = match Compose::parse(text) {
        Ok(c) => c,
        Err(error) => return vec![format!("{error:#}")],
    };
    let proxies = proxies();
    let exists = |p: &str| repo::path(p.trim_start_matches("./")).exists();
    let listeners = topology::listeners(
        &compose,
        &proxies,
        &yaml_file("deploy/tempo/tempo.yaml"),
        &yaml_file("deploy/loki/loki.yaml"),
    );
    let init = repo::read("deploy/postgres/init-databases.sql").expect("init");
    let target = serde_json::from_str(&repo::read("deploy/chaos/compose-target.json").expect("t"))
        .expect("json");
    let mut problems = Problems::new();
    problems.extend(compose_checks::check_images(&compose));
    problems.extend(compose_checks::check_dependencies(&compose));
    problems.extend(compose_checks::check_health_and_restarts(&compose));
    problems.extend(compose_checks::check_exposure(&compose));
    problems.extend(compose_checks::check_variables(&compose));
    problems.extend(compose_checks::check_shared_secrets(&compose));
    problems.extend(compose_checks::check_bind_mounts(&compose, &exists));
    problems.extend(compose_checks::check_config_files(&compose, &exists));
    problems.extend(compose_checks::check_kraft(&compose, "kafka"));
    problems.extend(compose_checks::check_topics(
        &compose,
        "kafka-init",
        &faultline_contracts::topics::ALL,
        4,
    ));
    problems.extend(topology::check_addresses(
        &compose, &proxies, &target, &listeners,
    ));
    problems.extend(topology::check_links(&compose, &proxies, &init));
    problems.extend(topology::check_target(&compose, &target));
    problems.extend(replicas::check_replicas(&compose));
    problems.extend(replicas::check_upstreams(&compose, &proxies));
    problems.extend(replicas::check_partitions(&compose, "kafka-init"));
    problems
}

#[test]
fn breaking_the_compose_file_is_caught() {
    let file = "docker-compose.yml";
    let cases = [
        // An unpinned image.
        ("image: grafana/tempo:3.0.3", "image: grafana/tempo:latest"),
        // Grafana published on another host port than the links in the target file name.
        (
            "\"127.0.0.1:${GRAFANA_PORT:-3000}:3000\"",
            "\"127.0.0.1:${GRAFANA_PORT:-3300}:3000\"",
        ),
        // The broker advertising itself: clients would bypass the proxy after bootstrapping.
        (
            "CLIENT://toxiproxy:19092,INTERNAL",
            "CLIENT://kafka:9092,INTERNAL",
        ),
        // A database reached directly, and one through another service's proxy.
        ("@toxiproxy:15433/payment", "@postgres:5432/payment"),
        ("@toxiproxy:15433/payment", "@toxiproxy:15434/payment"),
        // A read that skips its proxy.
        (
            "FAULTLINE__UPSTREAM__INVENTORY_URL: http://toxiproxy:18003",
            "FAULTLINE__UPSTREAM__INVENTORY_URL: http://inventory:8080",
        ),
        // A port nothing listens on (reservation → payment; telemetry).
        (
            "FAULTLINE__PAYMENT__BASE_URL: http://toxiproxy:18002",
            "FAULTLINE__PAYMENT__BASE_URL: http://toxiproxy:18009",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT: http://tempo:4318",
            "OTEL_EXPORTER_OTLP_ENDPOINT: http://tempo:4319",
        ),
        // Waiting for a one-shot job to be healthy, which it never is.
        (
            "kafka-init:\n        condition: service_completed_successfully",
            "kafka-init:\n        condition: service_healthy",
        ),
        // Published on every interface; a network that lets the backend out.
        (
            "\"127.0.0.1:${GRAFANA_PORT:-3000}:3000\"",
            "\"${GRAFANA_PORT:-3000}:3000\"",
        ),
        (
            "  internal:\n    internal: true",
            "  internal:\n    internal: false",
        ),
        // The runner minting tokens with another secret than the gateway checks.
        (
            "FAULTLINE_JWT_SECRET: ${FAULTLINE_JWT_SECRET:-faultline-demo-secret-change-me}",
            "FAULTLINE_JWT_SECRET: ${FAULTLINE_JWT_SECRET:-another}",
        ),
        // A settings file that is not mounted where the service looks.
        (
            "FAULTLINE_CONFIG: /etc/faultline/payment.toml",
            "FAULTLINE_CONFIG: /etc/faultline/missing.toml",
        ),
        // A topic nobody creates.
        ("inventory.events booking.events", "inventory.events"),
        // A service that does not come back after the chaos runner kills it.
        (
            "x-service: &service\n  <<: *faultline-image\n  restart: unless-stopped",
            "x-service: &service\n  <<: *faultline-image\n  restart: on-failure",
        ),
        // An invalid KRaft cluster id.
        (
            "CLUSTER_ID: o69TO24NX9uoPl_073z_1w",
            "CLUSTER_ID: faultline",
        ),
    ];
    for (from, to) in cases {
        caught(file, from, to, &compose_problems);
    }
}

#[test]
fn breaking_the_replicas_is_caught() {
    // Each case must be named by the replica checks themselves, not only by some other check.
    let replica_problems = |text: &str| -> Problems {
        let compose = match Compose::parse(text) {
            Ok(c) => c,
            Err(error) => return vec![format!("{error:#}")],
        };
        let mut problems = replicas::check_replicas(&compose);
        problems.extend(replicas::check_upstreams(&compose, &proxies()));
        problems.extend(replicas::check_partitions(&compose, "kafka-init"));
        problems
    };
    let file = "docker-compose.yml";
    let cases = [
        // One container per service.
        ("  deploy:\n    replicas: 2\n", ""),
        ("replicas: 2", "replicas: 1"),
        // More replicas than partitions (and than the gateway's published range).
        ("replicas: 2", "replicas: 5"),
        ("--partitions 4", "--partitions 1"),
        // One instance id for both replicas, or none (the service name for both).
        (
            "FAULTLINE__INSTANCE_ID: \"reservation-{hostname}\"",
            "FAULTLINE__INSTANCE_ID: reservation-1",
        ),
        (
            "      FAULTLINE__INSTANCE_ID: \"analytics-{hostname}\"\n",
            "",
        ),
        // A fixed container name (one container only) or host name (one instance id).
        (
            "    command: [\"inventory\"]\n",
            "    command: [\"inventory\"]\n    container_name: faultline-inventory\n",
        ),
        (
            "    command: [\"payment\"]\n",
            "    command: [\"payment\"]\n    hostname: payment\n",
        ),
        // One host port for two gateways.
        (
            "\"127.0.0.1:${GATEWAY_PORT:-8080}-${GATEWAY_PORT_2:-8081}:8080\"",
            "\"127.0.0.1:${GATEWAY_PORT:-8080}:8080\"",
        ),
        // No replica reports its readiness.
        (
            "    start_period: 10s\n\n# Telemetry",
            "    start_period: 10s\n    disable: true\n\n# Telemetry",
        ),
    ];
    for (from, to) in cases {
        caught(file, from, to, &replica_problems);
    }
}

#[test]
fn breaking_the_toxiproxy_config_is_caught() {
    let check = |text: &str| -> Problems {
        let proxies = match toxiproxy::parse(text) {
            Ok(p) => p,
            Err(error) => return vec![error.to_string()],
        };
        let compose = Compose::load().expect("compose");
        let listeners = topology::listeners(
            &compose,
            &proxies,
            &yaml_file("deploy/tempo/tempo.yaml"),
            &yaml_file("deploy/loki/loki.yaml"),
        );
        let init = repo::read("deploy/postgres/init-databases.sql").expect("init");
        let mut problems = toxiproxy::check_proxies(&proxies);
        problems.extend(topology::check_addresses(
            &compose,
            &proxies,
            &serde_json::Value::Null,
            &listeners,
        ));
        problems.extend(topology::check_links(&compose, &proxies, &init));
        problems.extend(replicas::check_upstreams(&compose, &proxies));
        problems
    };
    let file = "deploy/toxiproxy/toxiproxy.json";
    caught(
        file,
        "\"upstream\": \"payment:8080\"",
        "\"upstream\": \"payment:8081\"",
        &check,
    );
    caught(
        file,
        "\"upstream\": \"kafka:9092\"",
        "\"upstream\": \"kafka:29092\"",
        &check,
    );
    caught(
        file,
        "\"name\": \"payment-postgres\"",
        "\"name\": \"payments-db\"",
        &check,
    );
    // A proxy that pins one replica by its container name.
    caught(
        file,
        "\"upstream\": \"reservation:8080\"",
        "\"upstream\": \"faultline-reservation-1:8080\"",
        &check,
    );
    caught(
        file,
        "\"listen\": \"0.0.0.0:18001\"",
        "\"listen\": \"127.0.0.1:18001\"",
        &check,
    );
}

#[test]
fn breaking_the_tempo_and_loki_configs_is_caught() {
    let tempo = |text: &str| match yaml::parse(text) {
        Ok(v) => backends::check_tempo(&v, Some(backends::TEMPO_VERIFIED)),
        Err(error) => vec![error.to_string()],
    };
    caught(
        "deploy/tempo/tempo.yaml",
        "storage:\n",
        "ingester:\n  max_block_duration: 5m\nstorage:\n",
        &tempo,
    );
    caught(
        "deploy/tempo/tempo.yaml",
        "0.0.0.0:4318",
        "localhost:4318",
        &tempo,
    );
    let loki = |text: &str| match yaml::parse(text) {
        Ok(v) => backends::check_loki(&v, Some(backends::LOKI_VERIFIED)),
        Err(error) => vec![error.to_string()],
    };
    caught("deploy/loki/loki.yaml", "schema: v13", "schema: v12", &loki);
    caught(
        "deploy/loki/loki.yaml",
        "limits_config:\n",
        "limits_config:\n  enforce_metric_name: false\n",
        &loki,
    );
}

#[test]
fn breaking_the_grafana_provisioning_is_caught() {
    let line = r#"{"message":"saga finished","trace_id":"TRACE_ID","span_id":"00f067aa0ba902b7"}"#;
    let datasources = |text: &str| match grafana::parse_datasources(text) {
        Ok(ds) => grafana::check_datasources(&ds, line, &|_| None),
        Err(error) => vec![error.to_string()],
    };
    let file = "deploy/grafana/provisioning/datasources/datasources.yaml";
    caught(
        file,
        "$${__trace.traceId}",
        "${__trace.traceId}",
        &datasources,
    );
    caught(
        file,
        r#""trace_id":"(\w+)""#,
        r#""traceId":"(\w+)""#,
        &datasources,
    );
    caught(
        file,
        "datasourceUid: tempo",
        "datasourceUid: jaeger",
        &datasources,
    );
    caught(file, "uid: loki\n", "uid: logs\n", &datasources);

    let source = repo::services_source().expect("source");
    let ds = grafana::parse_datasources(&repo::read(file).expect("readable")).expect("parses");
    let dashboard = |text: &str| grafana::check_dashboard("dashboard", text, &ds, &source);
    let file = "deploy/grafana/dashboards/faultline-chaos.json";
    caught(
        file,
        "|= \\\"saga finished\\\"",
        "|= \\\"saga completed\\\"",
        &dashboard,
    );
    caught(file, "span.saga.outcome", "span.saga.result", &dashboard);
    caught(
        file,
        "\"faultline\"\n          ],\n          \"matchAny\"",
        "\"chaos\"\n          ],\n          \"matchAny\"",
        &dashboard,
    );
    caught(
        file,
        "sum by (saga_outcome)",
        "sum by (outcome)",
        &dashboard,
    );
}
