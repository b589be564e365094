//! The repository's compose stack and provisioning, checked without Docker: every check in the
//! library run on the real files (the library's unit tests show each check failing on a broken
//! document).

use std::collections::BTreeMap;

use faultline_deploy_checks::{
    Problems, backends,
    compose::Compose,
    compose_checks, grafana, replicas, repo, topology,
    toxiproxy::{self, Proxy},
    yaml,
};
use serde_json::Value;

fn assert_clean(what: &str, problems: Problems) {
    assert!(
        problems.is_empty(),
        "{what}:\n  - {}",
        problems.join("\n  - ")
    );
}

fn compose() -> Compose {
    Compose::load().expect("docker-compose.yml parses")
}

fn proxies() -> Vec<Proxy> {
    toxiproxy::load().expect("deploy/toxiproxy/toxiproxy.json parses")
}

fn yaml_file(path: &str) -> Value {
    yaml::parse(&repo::read(path).expect("readable")).unwrap_or_else(|e| panic!("{path}: {e:#}"))
}

fn exists(path: &str) -> bool {
    repo::path(path.trim_start_matches("./")).exists()
}

fn target() -> Value {
    serde_json::from_str(&repo::read("deploy/chaos/compose-target.json").expect("readable"))
        .expect("compose-target.json is JSON")
}

fn listeners() -> BTreeMap<String, std::collections::BTreeSet<u16>> {
    topology::listeners(
        &compose(),
        &proxies(),
        &yaml_file("deploy/tempo/tempo.yaml"),
        &yaml_file("deploy/loki/loki.yaml"),
    )
}

#[test]
fn every_image_is_pinned_and_the_dockerfile_is_multi_stage() {
    assert_clean("images", compose_checks::check_images(&compose()));
    let dockerfile = repo::read("Dockerfile").expect("a Dockerfile");
    assert_clean(
        "Dockerfile",
        compose_checks::check_dockerfile_images(&dockerfile),
    );
    // The image carries every binary a compose service runs, and the tool its healthcheck runs.
    let compose = compose();
    let runtime = dockerfile
        .split("AS runtime")
        .nth(1)
        .expect("a runtime stage");
    for service in compose.services.values().filter(|s| s.build) {
        let binary = service.command.first().expect("a command");
        assert!(
            dockerfile.contains(&format!("-p {binary}")),
            "{}: the Dockerfile does not build {binary}",
            service.name
        );
        if let Some(probe) = service.healthcheck.as_ref().and_then(|t| t.get(1)) {
            assert!(
                runtime.contains(&format!(" {probe}")),
                "{}: its healthcheck runs {probe}, which the runtime image does not install",
                service.name
            );
        }
    }
}

#[test]
fn dependencies_exist_and_the_stack_comes_up_in_order() {
    let compose = compose();
    assert_clean("dependencies", compose_checks::check_dependencies(&compose));
    assert_clean(
        "healthchecks and restarts",
        compose_checks::check_health_and_restarts(&compose),
    );
}

#[test]
fn only_the_gateway_and_grafana_are_reachable_from_the_host() {
    assert_clean("exposure", compose_checks::check_exposure(&compose()));
}

#[test]
fn every_variable_has_a_default_and_shared_secrets_agree() {
    let compose = compose();
    assert_clean("variables", compose_checks::check_variables(&compose));
    assert_clean(
        "shared secrets",
        compose_checks::check_shared_secrets(&compose),
    );
}

#[test]
fn bind_mounts_and_config_files_exist() {
    let compose = compose();
    assert_clean(
        "bind mounts",
        compose_checks::check_bind_mounts(&compose, &exists),
    );
    assert_clean(
        "config files",
        compose_checks::check_config_files(&compose, &exists),
    );
}

#[test]
fn kafka_runs_in_kraft_mode_and_the_topics_are_the_contracts_topics() {
    let compose = compose();
    assert_clean("kraft", compose_checks::check_kraft(&compose, "kafka"));
    assert_clean(
        "topics",
        compose_checks::check_topics(&compose, "kafka-init", &faultline_contracts::topics::ALL, 4),
    );
}

#[test]
fn every_service_runs_two_replicas_that_dns_spreads_connections_over() {
    let compose = compose();
    assert_clean("replicas", replicas::check_replicas(&compose));
    assert_clean(
        "proxy upstreams",
        replicas::check_upstreams(&compose, &proxies()),
    );
    assert_clean(
        "partitions",
        replicas::check_partitions(&compose, "kafka-init"),
    );
}

#[test]
fn every_address_a_service_is_given_is_a_port_its_target_listens_on() {
    assert_clean(
        "addresses",
        topology::check_addresses(&compose(), &proxies(), &target(), &listeners()),
    );
}

#[test]
fn every_faulted_link_goes_through_its_proxy_and_every_proxy_is_used() {
    let proxies = proxies();
    assert_clean("proxies", toxiproxy::check_proxies(&proxies));
    let init = repo::read("deploy/postgres/init-databases.sql").expect("init script");
    assert_clean("links", topology::check_links(&compose(), &proxies, &init));
}

#[test]
fn toxiproxy_is_healthy_only_once_every_proxy_exists() {
    // Toxiproxy creates the file's proxies in order and stops at the first failure, so the
    // healthcheck inspects the last one.
    let compose = compose();
    let test = compose
        .service("toxiproxy")
        .expect("toxiproxy")
        .healthcheck
        .clone()
        .expect("a healthcheck");
    let last = proxies().last().expect("proxies").name.clone();
    assert_eq!(
        test,
        ["CMD", "/toxiproxy-cli", "inspect", last.as_str()],
        "the healthcheck must inspect the last proxy"
    );
    let command = &compose.service("toxiproxy").expect("toxiproxy").command;
    for flag in [
        "-host=0.0.0.0",
        "-config=/config/toxiproxy.json",
        "-proxy-metrics",
    ] {
        assert!(command.iter().any(|a| a == flag), "toxiproxy needs {flag}");
    }
    assert_eq!(
        compose_checks::mount_source(&compose, "toxiproxy", "/config/toxiproxy.json").as_deref(),
        Some("./deploy/toxiproxy/toxiproxy.json")
    );
}

#[test]
fn the_chaos_target_file_is_an_endpoints_file_pointing_at_the_stack() {
    let compose = compose();
    assert_clean("target", topology::check_target(&compose, &target()));
    // The runner reads it as the launcher's endpoints file.
    let text = repo::read("deploy/chaos/compose-target.json").expect("readable");
    let endpoints: faultline::endpoints::Endpoints =
        serde_json::from_str(&text).expect("compose-target.json is an endpoints file");
    assert!(
        endpoints.tokens.is_empty(),
        "tokens are minted from FAULTLINE_JWT_SECRET"
    );
    let runner = compose.service("faultline").expect("the chaos runner");
    assert_eq!(
        runner.profiles,
        ["chaos"],
        "the runner only starts with --profile chaos"
    );
    let target_arg = runner
        .command
        .iter()
        .skip_while(|a| *a != "--target")
        .nth(1)
        .expect("--target <file>");
    let source = compose_checks::mount_source(&compose, "faultline", target_arg)
        .expect("the target file is mounted");
    assert_eq!(source, "./deploy/chaos/compose-target.json");
}

#[test]
fn the_compose_seeds_are_the_launchers_seeds() {
    // The chaos runner's workload and expectations assume the launcher's users and catalogue.
    let seed = serde_json::to_value(faultline::seed::Seed::default()).expect("serializes");
    let toml = |path: &str| -> Value {
        let value: toml::Value = toml::from_str(&repo::read(path).expect("readable"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::to_value(value).expect("converts")
    };
    assert_eq!(
        toml("deploy/config/payment.toml")["seed"]["wallets"],
        seed["users"]
    );
    assert_eq!(
        toml("deploy/config/inventory.toml")["seed"]["concerts"],
        seed["concerts"]
    );
}

/// A line as the kit's Loki layer writes it (JSON, fields flattened from the event and its
/// spans); the native test checks the same against lines the services really wrote.
const KIT_LINE: &str = r#"{"message":"saga finished","saga.outcome":"CANCELLED","trace_id":"TRACE_ID","span_id":"00f067aa0ba902b7","_spans":["saga.step"],"_target":"reservation::saga::store"}"#;

fn datasources() -> Vec<grafana::Datasource> {
    grafana::parse_datasources(
        &repo::read("deploy/grafana/provisioning/datasources/datasources.yaml").expect("readable"),
    )
    .expect("datasources parse")
}

#[test]
fn grafana_datasources_have_fixed_uids_and_correlate_both_ways() {
    let listeners = listeners();
    let url_ok = |url: &str| {
        let found = topology::addresses(url);
        match found.as_slice() {
            [(host, port)] => topology::check_address("datasource", host, *port, &listeners),
            _ => Some(format!("{url} is not http://host:port")),
        }
    };
    assert_clean(
        "datasources",
        grafana::check_datasources(&datasources(), KIT_LINE, &url_ok),
    );
}

#[test]
fn the_chaos_runner_names_the_provisioned_datasources_and_proxies() {
    // It queries Tempo and Loki through Grafana's datasource proxy by uid, and faults links by
    // proxy name.
    assert_eq!(faultline::chaos::evidence::TEMPO_UID, grafana::TEMPO_UID);
    assert_eq!(faultline::chaos::evidence::LOKI_UID, grafana::LOKI_UID);
    let names: std::collections::BTreeSet<String> = proxies().into_iter().map(|p| p.name).collect();
    let links: std::collections::BTreeSet<String> = faultline::chaos::scenario::link_names()
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
    assert_eq!(names, links, "the compose proxies and the runner's links");
}

#[test]
fn dashboards_are_valid_and_their_queries_match_what_the_services_emit() {
    let datasources = datasources();
    let source = repo::services_source().expect("services' source");
    let files = repo::files("deploy/grafana/dashboards", "json").expect("dashboards");
    assert!(!files.is_empty(), "no dashboards");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let name = file.display().to_string();
        assert_clean(
            &name,
            grafana::check_dashboard(&name, &text, &datasources, &source),
        );
    }
    let compose = compose();
    let mounted_at = compose
        .service("grafana")
        .expect("grafana")
        .volumes
        .iter()
        .find_map(|v| {
            v.strip_prefix("./deploy/grafana/dashboards:")
                .map(|t| t.trim_end_matches(":ro").to_owned())
        })
        .expect("the dashboards folder is mounted into Grafana");
    assert_clean(
        "dashboard provider",
        grafana::check_dashboard_provider(
            &repo::read("deploy/grafana/provisioning/dashboards/dashboards.yaml")
                .expect("readable"),
            &mounted_at,
        ),
    );
}

#[test]
fn grafana_allows_anonymous_viewers_and_takes_its_password_from_the_environment() {
    let compose = compose();
    let raw = &compose.service("grafana").expect("grafana").environment;
    assert_eq!(raw["GF_AUTH_ANONYMOUS_ENABLED"], "true");
    assert_eq!(raw["GF_AUTH_ANONYMOUS_ORG_ROLE"], "Viewer");
    let password = faultline_deploy_checks::compose::references(&raw["GF_SECURITY_ADMIN_PASSWORD"])
        .expect("interpolates");
    assert!(
        matches!(password.as_slice(), [r] if r.default.is_some()),
        "the admin password comes from a variable with a demo default"
    );
}

#[test]
fn the_tempo_and_loki_configs_are_current_for_their_pinned_versions() {
    let compose = compose();
    let image = |name: &str| compose.service(name).ok().and_then(|s| s.image.clone());
    assert_clean(
        "tempo.yaml",
        backends::check_tempo(
            &yaml_file("deploy/tempo/tempo.yaml"),
            image("tempo").as_deref(),
        ),
    );
    assert_clean(
        "loki.yaml",
        backends::check_loki(
            &yaml_file("deploy/loki/loki.yaml"),
            image("loki").as_deref(),
        ),
    );
}
