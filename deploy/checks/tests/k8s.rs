//! The Kubernetes manifests in `deploy/k8s/`, checked without a cluster: the real files pass
//! every check of `faultline_deploy_checks::k8s`, and a copy broken in one place fails the check
//! that guards that place (a check that stays green whatever the input proves nothing).
//!
//! Which variables a service reads is asked of its own settings type (`<service>::configuration::
//! Settings`, loaded from the manifest's environment and ConfigMap as the kit's loader would),
//! not of the compose file: a variable is not read because compose sets it too (a misspelt name
//! would be copied along with the rest), and the manifests may set ones compose does not.

use std::collections::{BTreeMap, BTreeSet};

use faultline_deploy_checks::{Problems, compose::Compose, compose_checks, k8s, repo, toxiproxy};

const DIR: &str = "deploy/k8s";

/// Every manifest file, `(path from the root, text)`.
fn files() -> Vec<(String, String)> {
    let files = repo::files(DIR, "yaml").expect("deploy/k8s lists");
    assert!(!files.is_empty(), "no manifests in {DIR}");
    files
        .into_iter()
        .map(|path| {
            let name = format!(
                "{DIR}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let text = std::fs::read_to_string(&path).expect("readable");
            (name, text)
        })
        .collect()
}

/// The service's settings, loaded by its own type, as `Debug` text.
fn load(service: &str) -> impl Fn(config::Config) -> Result<String, String> + '_ {
    move |source: config::Config| {
        let text = match service {
            "gateway" => source
                .try_deserialize::<gateway::configuration::Settings>()
                .map(|s| format!("{s:?}")),
            "reservation" => source
                .try_deserialize::<reservation::configuration::Settings>()
                .map(|s| format!("{s:?}")),
            "inventory" => source
                .try_deserialize::<inventory::configuration::Settings>()
                .map(|s| format!("{s:?}")),
            "payment" => source
                .try_deserialize::<payment::configuration::Settings>()
                .map(|s| format!("{s:?}")),
            "analytics" => source
                .try_deserialize::<analytics::configuration::Settings>()
                .map(|s| format!("{s:?}")),
            other => return Err(format!("no settings type for {other}")),
        };
        text.map_err(|e| e.to_string())
    }
}

/// Every check, on a set of manifest files (the compose file and the proxies as they are).
fn problems(files: &[(String, String)]) -> Problems {
    let (manifests, mut problems) = k8s::parse(files);
    let compose = Compose::load().expect("docker-compose.yml parses");
    let proxies = toxiproxy::load().expect("toxiproxy.json parses");
    problems.extend(k8s::check_workloads(&manifests, &compose_checks::SERVICES));
    problems.extend(k8s::check_selectors(&manifests));
    problems.extend(k8s::check_namespace(&manifests));
    let mut compose_reach = BTreeMap::new();
    for name in compose_checks::SERVICES {
        let Some(deployment) = manifests.deployment(name) else {
            continue;
        };
        let Some(container) = k8s::container(deployment) else {
            continue;
        };
        let (env, spliced) = match k8s::environment(&manifests, container) {
            Ok(found) => found,
            Err(found) => {
                problems.extend(found);
                continue;
            }
        };
        let compose_env = compose.environment(name).expect("compose environment");
        problems.extend(k8s::check_env_names(name, &env, &spliced, &compose_env));
        // The same values as compose where the setting is the same (addresses aside, which
        // lose Toxiproxy here: `check_reach` compares those).
        for key in [
            "RUST_LOG",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "FAULTLINE_LOKI_URL",
            "FAULTLINE_CONFIG",
            "FAULTLINE__SERVICE_NAME",
            "FAULTLINE__HTTP__HOST",
            "FAULTLINE__HTTP__PORT",
        ] {
            if compose_env.get(key) != env.get(key) {
                problems.push(format!(
                    "{name}: {key} is {:?} here and {:?} in compose",
                    env.get(key),
                    compose_env.get(key)
                ));
            }
        }
        let toml = match k8s::config_file(&manifests, deployment, &env) {
            Ok(toml) => toml,
            Err(error) => {
                problems.push(error);
                continue;
            }
        };
        // The settings file is the one compose mounts, byte for byte.
        if let Some(path) = compose_env.get("FAULTLINE_CONFIG") {
            let source = compose_checks::mount_source(&compose, name, path)
                .expect("compose mounts its config file");
            let expected = repo::read(source.trim_start_matches("./")).expect("readable");
            if toml.as_deref() != Some(expected.as_str()) {
                problems.push(format!("{name}: its ConfigMap file differs from {source}"));
            }
        }
        problems.extend(k8s::unread_settings(
            name,
            &env,
            toml.as_deref(),
            &load(name),
        ));
        problems.extend(k8s::check_probes(name, container, &env));
        let wanted = k8s::compose_reach(&compose_env, &proxies);
        problems.extend(k8s::check_reach(&manifests, name, &env, &wanted));
        compose_reach.insert(name.to_owned(), wanted);
    }
    problems.extend(k8s::check_network_policies(
        &manifests,
        &compose_reach,
        "gateway",
    ));
    problems
}

#[test]
fn the_manifests_pass_every_check() {
    let problems = problems(&files());
    assert!(
        problems.is_empty(),
        "deploy/k8s:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn the_probe_paths_are_the_kits_routes() {
    let health = repo::read("services/kit/src/health.rs").expect("the kit's health routes");
    for path in [k8s::READY_PATH, k8s::HEALTH_PATH] {
        assert!(
            health.contains(&format!("path = \"{path}\"")),
            "the kit serves no {path}"
        );
    }
}

#[test]
fn the_telemetry_variables_are_the_ones_the_kit_reads() {
    let telemetry = repo::read("services/kit/src/telemetry.rs").expect("the kit's telemetry");
    for name in [
        "FAULTLINE_LOKI_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "RUST_LOG",
    ] {
        assert!(telemetry.contains(name), "the kit does not read {name}");
    }
    let config = repo::read("services/kit/src/config.rs").expect("the kit's loader");
    assert!(config.contains("\"FAULTLINE_CONFIG\""));
}

#[test]
fn the_readme_names_every_dependency_the_manifests_expect() {
    let readme = repo::read("deploy/k8s/README.md").expect("deploy/k8s/README.md");
    for (name, port) in k8s::DEPENDENCIES {
        assert!(
            readme.contains(&format!("`{name}:{port}`")),
            "the README does not list `{name}:{port}`"
        );
    }
}

/// `check` passes on the files as they are and fails with `from` replaced by `to` in `file`;
/// `from` must occur there, so a case cannot rot silently when the file changes.
fn caught(file: &str, from: &str, to: &str) {
    let files = files();
    let path = format!("{DIR}/{file}");
    let original = &files
        .iter()
        .find(|(name, _)| *name == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .1;
    assert!(
        original.contains(from),
        "{path} no longer contains {from:?}: update this case"
    );
    let broken: Vec<(String, String)> = files
        .iter()
        .map(|(name, text)| {
            let text = if *name == path {
                text.replacen(from, to, 1)
            } else {
                text.clone()
            };
            (name.clone(), text)
        })
        .collect();
    let found = problems(&broken);
    eprintln!("{file}: {from:?} → {to:?}: {found:?}");
    assert!(
        !found.is_empty(),
        "{path} with {from:?} → {to:?} passed every check"
    );
}

#[test]
fn the_unbroken_manifests_pass_so_the_cases_below_mean_something() {
    assert_eq!(problems(&files()), Problems::new());
}

#[test]
fn a_field_the_api_does_not_know_or_a_wrong_type_is_caught() {
    caught(
        "payment.yaml",
        "imagePullPolicy: IfNotPresent",
        "imagePulPolicy: IfNotPresent",
    );
    caught("gateway.yaml", "  minAvailable: 1", "  minAvailabel: 1");
    caught("inventory.yaml", "replicas: 2", "replicas: two");
    caught(
        "analytics.yaml",
        "kind: PodDisruptionBudget",
        "kind: PodBudget",
    );
    // An object outside the namespace (where nothing it names exists).
    caught(
        "config.yaml",
        "  namespace: faultline",
        "  namespace: default",
    );
}

#[test]
fn a_variable_no_service_reads_is_caught() {
    // A setting with a typo (optional, so the service would start and ignore it).
    caught(
        "reservation.yaml",
        "name: FAULTLINE__INSTANCE_ID",
        "name: FAULTLINE__INSTANCEID",
    );
    // A setting of another service.
    caught(
        "payment.yaml",
        "            - name: FAULTLINE__HTTP__PORT",
        "            - name: FAULTLINE__PAYMENT__BASE_URL\n              value: http://payment:8080\n            - name: FAULTLINE__HTTP__PORT",
    );
    // Neither a setting nor a standard variable, and a name compose sets gone missing.
    caught("gateway.yaml", "name: RUST_LOG", "name: RUST_LOGS");
    caught(
        "inventory.yaml",
        "name: FAULTLINE_LOKI_URL",
        "name: FAULTLINE_LOKI_ENDPOINT",
    );
    // A secret key or a ConfigMap file that is not there, a seed that drifted from compose's.
    caught("gateway.yaml", "key: jwt-secret", "key: jwt");
    caught("payment.yaml", "path: payment.toml", "path: wallets.toml");
    caught("config.yaml", "price = 150", "price = 151");
}

#[test]
fn a_probe_off_the_kits_routes_or_the_services_port_is_caught() {
    caught("payment.yaml", "path: /ready", "path: /readyz");
    caught("reservation.yaml", "path: /health", "path: /healthz");
    caught(
        "analytics.yaml",
        "              path: /ready\n              port: http",
        "              path: /ready\n              port: 8081",
    );
    caught(
        "inventory.yaml",
        "              containerPort: 8080",
        "              containerPort: 8081",
    );
}

#[test]
fn a_selector_that_misses_its_pods_is_caught() {
    let cases = [
        // A Service, a PDB, a NetworkPolicy and a spread constraint off their Deployment's pods.
        (
            "  selector:\n    app.kubernetes.io/name: payment",
            "  selector:\n    app.kubernetes.io/name: payments",
        ),
        (
            "  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: payment",
            "  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: pay",
        ),
        (
            "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: payment",
            "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: paymnt",
        ),
        (
            "          labelSelector:\n            matchLabels:\n              app.kubernetes.io/name: payment",
            "          labelSelector:\n            matchLabels:\n              app.kubernetes.io/name: gateway",
        ),
        // A Service port aimed at a port the container does not name.
        ("      targetPort: http", "      targetPort: web"),
    ];
    for (from, to) in cases {
        caught("payment.yaml", from, to);
    }
}

#[test]
fn a_link_compose_does_not_have_or_a_policy_that_allows_more_is_caught() {
    // An address at the wrong port, and a link compose does not have.
    caught(
        "reservation.yaml",
        "value: http://payment:8080",
        "value: http://payment:8081",
    );
    caught(
        "payment.yaml",
        "@postgres:5432/payment",
        "@postgres:5433/payment",
    );
    caught(
        "analytics.yaml",
        "value: kafka:9092",
        "value: kafka:9092,inventory:8080",
    );
    // Egress that is missing, and egress to everything.
    caught(
        "reservation.yaml",
        "              app.kubernetes.io/name: payment\n      ports:",
        "              app.kubernetes.io/name: inventory\n      ports:",
    );
    caught("inventory.yaml", "  egress:\n", "  egress:\n    - {}\n");
    // A caller dropped, a service reachable from anywhere, from another namespace, or not isolated.
    caught(
        "payment.yaml",
        "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: reservation\n",
        "",
    );
    caught("analytics.yaml", "  ingress: []", "  ingress:\n    - {}");
    caught(
        "inventory.yaml",
        "    - from:\n        - podSelector:",
        "    - from:\n        - namespaceSelector: {}\n          podSelector:",
    );
    caught(
        "gateway.yaml",
        "policyTypes: [Ingress, Egress]",
        "policyTypes: [Ingress]",
    );
}

#[test]
fn the_reach_of_each_service_is_the_compose_one() {
    // Spelled out once, so a reader sees what the checks derive from compose and Toxiproxy.
    let compose = Compose::load().expect("compose");
    let proxies = toxiproxy::load().expect("proxies");
    let reach = |name: &str| -> BTreeSet<String> {
        k8s::compose_reach(&compose.environment(name).expect("env"), &proxies)
            .into_iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect()
    };
    let set = |items: &[&str]| {
        items
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let telemetry = ["tempo:4318", "loki:3100"];
    let with = |items: &[&str]| set(&[items, &telemetry].concat());
    assert_eq!(
        reach("gateway"),
        with(&["reservation:8080", "inventory:8080", "payment:8080"])
    );
    assert_eq!(
        reach("reservation"),
        with(&["postgres:5432", "kafka:9092", "payment:8080"])
    );
    assert_eq!(reach("inventory"), with(&["postgres:5432", "kafka:9092"]));
    assert_eq!(reach("analytics"), with(&["postgres:5432", "kafka:9092"]));
    assert_eq!(reach("payment"), with(&["postgres:5432"]));
}
