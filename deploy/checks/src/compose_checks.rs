//! Checks of the compose file on its own: pinned images, dependencies that exist and can be
//! waited for, healthchecks, restarts, what is published, networks, variables with defaults,
//! secrets two services must share, bind mounts that exist, topics the init job creates.

use faultline_contracts::topology::Service;
use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value;

use crate::{
    Problems,
    compose::{Compose, interpolate, references},
};

/// The five Faultline services, by name.
pub const SERVICES: [&str; 5] = Service::ALL_NAMES;

/// Services whose port is published to the host; everything else stays on the internal network.
pub const PUBLISHED: [&str; 2] = ["gateway", "grafana"];

/// The infrastructure images issue 6 names, with the version each must be pinned within.
pub const EXPECTED_IMAGES: [(&str, &str); 6] = [
    ("apache/kafka", "4."),
    ("postgres", ""),
    ("ghcr.io/shopify/toxiproxy", "2.12.0"),
    ("grafana/tempo", "3."),
    ("grafana/loki", "3."),
    ("grafana/grafana", "13."),
];

/// Whether an image reference names an exact version: a digest, a tag with at least
/// `major.minor`, or a dated snapshot (`trixie-20260803-slim`); never a floating tag such as
/// `latest`, `3` or `slim`.
pub fn is_pinned(image: &str) -> bool {
    if let Some((_, digest)) = image.split_once("@sha256:") {
        return digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let Some((_, tag)) = last.split_once(':') else {
        return false;
    };
    let versioned = Regex::new(r"^v?\d+\.\d+(\.\d+)*([-._][A-Za-z0-9.]+)*$");
    let dated = Regex::new(r"^[a-z]+-\d{8}(-[a-z]+)?$");
    versioned.is_ok_and(|re| re.is_match(tag)) || dated.is_ok_and(|re| re.is_match(tag))
}

fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

fn tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t).unwrap_or("")
}

/// Every pulled image is pinned; the ones issue 6 names are there in the right versions.
pub fn check_images(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    for service in compose.services.values() {
        match (&service.image, service.build) {
            (None, false) => problems.push(format!("{}: neither image nor build", service.name)),
            (Some(image), false) if !is_pinned(image) => problems.push(format!(
                "{}: image {image:?} is not pinned to an exact version",
                service.name
            )),
            _ => {}
        }
    }
    for (repo, version) in EXPECTED_IMAGES {
        let found: Vec<&str> = compose
            .services
            .values()
            .filter_map(|s| s.image.as_deref())
            .filter(|image| repository(image) == repo)
            .collect();
        if found.is_empty() {
            problems.push(format!("no service runs {repo}"));
        }
        for image in found {
            if !tag(image).starts_with(version) {
                problems.push(format!("{image}: expected {repo} {version}…"));
            }
        }
    }
    problems
}

/// Every `FROM` of the Dockerfile (and every `ARG` default it uses) is pinned.
pub fn check_dockerfile_images(dockerfile: &str) -> Problems {
    let mut problems = Problems::new();
    let mut args = BTreeMap::new();
    let mut froms = 0;
    for line in dockerfile.lines().map(str::trim) {
        if let Some(arg) = line.strip_prefix("ARG ")
            && let Some((name, default)) = arg.split_once('=')
        {
            args.insert(name.trim().to_owned(), default.trim().to_owned());
        }
        if let Some(from) = line.strip_prefix("FROM ") {
            froms += 1;
            let image = from.split_whitespace().next().unwrap_or_default();
            let resolved = match image.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                Some(arg) => args.get(arg).cloned().unwrap_or_default(),
                None => image.to_owned(),
            };
            let is_stage = dockerfile.lines().any(|l| {
                l.trim().starts_with("FROM ") && l.trim().ends_with(&format!(" AS {image}"))
            });
            if !is_stage && !is_pinned(&resolved) {
                problems.push(format!(
                    "Dockerfile: FROM {image} ({resolved:?}) is not pinned"
                ));
            }
        }
    }
    if froms < 2 {
        problems
            .push("Dockerfile: expected a multi-stage build (a build and a runtime stage)".into());
    }
    if !dockerfile.contains("--locked") {
        problems.push("Dockerfile: cargo build must use --locked".into());
    }
    problems
}

/// Dependencies exist, use a condition compose knows, can be waited for (a healthcheck for
/// `service_healthy`, a one-shot job for `service_completed_successfully`), form no cycle, and
/// never leave the default profile for an optional one.
pub fn check_dependencies(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    for service in compose.services.values() {
        for (dep, condition) in &service.depends_on {
            let Some(target) = compose.services.get(dep) else {
                problems.push(format!(
                    "{}: depends on {dep}, which does not exist",
                    service.name
                ));
                continue;
            };
            match condition.as_str() {
                "service_started" => {}
                "service_healthy" if target.healthcheck.is_none() => problems.push(format!(
                    "{}: waits for {dep} to be healthy, but {dep} has no healthcheck",
                    service.name
                )),
                "service_healthy" => {}
                "service_completed_successfully" if target.restart.as_deref() != Some("no") => {
                    problems.push(format!(
                        "{}: waits for {dep} to complete, but {dep} is restarted (restart: \"no\" for a one-shot job)",
                        service.name
                    ))
                }
                "service_completed_successfully" => {}
                other => problems.push(format!("{}: unknown condition {other:?} on {dep}", service.name)),
            }
            if service.profiles.is_empty() && !target.profiles.is_empty() {
                problems.push(format!(
                    "{}: depends on {dep}, which only runs under profile {:?}",
                    service.name, target.profiles
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(compose) {
        problems.push(format!("depends_on has a cycle: {}", cycle.join(" → ")));
    }
    problems
}

fn find_cycle(compose: &Compose) -> Option<Vec<String>> {
    fn visit(
        compose: &Compose,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_owned());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name.to_owned());
        if let Some(service) = compose.services.get(name) {
            for dep in service.depends_on.keys() {
                if let Some(cycle) = visit(compose, dep, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(name.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    compose
        .services
        .keys()
        .find_map(|name| visit(compose, name, &mut Vec::new(), &mut done))
}

/// Every long-running service has a healthcheck and a restart policy; the Faultline services
/// are restarted when they die (the chaos runner's crash faults count on it).
pub fn check_health_and_restarts(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    for service in compose.services.values() {
        let one_shot = service.restart.as_deref() == Some("no");
        if !one_shot && service.healthcheck.is_none() {
            problems.push(format!("{}: no healthcheck", service.name));
        }
        if service.restart.is_none() {
            problems.push(format!("{}: no restart policy", service.name));
        }
    }
    for name in SERVICES {
        match compose.services.get(name) {
            Some(s) if matches!(s.restart.as_deref(), Some("unless-stopped" | "always")) => {}
            Some(_) => problems.push(format!(
                "{name}: must be restarted when it dies (restart: unless-stopped)"
            )),
            None => problems.push(format!("service {name} is missing")),
        }
    }
    problems
}

/// Only the gateway and Grafana publish ports (on the host's loopback); every service is on the
/// `internal` network, which is `internal: true`; only published services are on any other.
pub fn check_exposure(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    let networks = compose.networks();
    match networks.get("internal") {
        Some(n) if n.get("internal").and_then(Value::as_bool) == Some(true) => {}
        Some(_) => problems.push("network `internal` must be `internal: true`".into()),
        None => problems.push("no network named `internal`".into()),
    }
    for service in compose.services.values() {
        let published = PUBLISHED.contains(&service.name.as_str());
        if !service.ports.is_empty() && !published {
            problems.push(format!(
                "{}: publishes {:?}; only {PUBLISHED:?} may",
                service.name, service.ports
            ));
        }
        if published && service.ports.is_empty() {
            problems.push(format!("{}: must be published", service.name));
        }
        for port in &service.ports {
            let resolved = interpolate(port, &|_| None).unwrap_or_default();
            if !resolved.starts_with("127.0.0.1:") {
                problems.push(format!(
                    "{}: {port:?} is published on every interface, not the loopback",
                    service.name
                ));
            }
        }
        if !service.networks.iter().any(|n| n == "internal") {
            problems.push(format!("{}: not on the `internal` network", service.name));
        }
        for network in &service.networks {
            if !networks.contains_key(network) {
                problems.push(format!(
                    "{}: network {network} is not declared",
                    service.name
                ));
            }
            let internal = networks
                .get(network)
                .and_then(|n| n.get("internal"))
                .and_then(Value::as_bool)
                == Some(true);
            if !internal && !published {
                problems.push(format!(
                    "{}: on the non-internal network {network} without a reason",
                    service.name
                ));
            }
        }
    }
    problems
}

fn all_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| all_strings(i, out)),
        Value::Object(map) => map.values().for_each(|v| all_strings(v, out)),
        _ => {}
    }
}

/// Every `${VAR}` has a default, so `docker compose up` works without a `.env` file, and every
/// `$` is either a variable or escaped (`$$`).
pub fn check_variables(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    let mut strings = Vec::new();
    all_strings(&compose.doc, &mut strings);
    for text in strings {
        match references(text) {
            Ok(refs) => {
                for r in refs.iter().filter(|r| r.default.is_none()) {
                    problems.push(format!("${{{}}} in {text:?} has no default", r.name));
                }
            }
            Err(error) => problems.push(error),
        }
    }
    problems
}

/// Values two services must agree on resolve to the same thing, whether the variables behind
/// them are set or not: the gateway's token secret and the runner's; Grafana's admin and the
/// runner's annotation credentials; PostgreSQL's password and each database URL's.
pub fn check_shared_secrets(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    let raw = |service: &str, key: &str| {
        compose
            .services
            .get(service)
            .and_then(|s| s.environment.get(key))
            .cloned()
    };
    // Every variable set to a marker naming it, and every variable unset: two readings must agree
    // under both, so the two sides name the same variable and the same default.
    let marked = |name: &str| Some(format!("<{name}>"));
    let both = |text: &str| {
        (
            interpolate(text, &marked).unwrap_or_default(),
            interpolate(text, &|_| None).unwrap_or_default(),
        )
    };
    let mut agree = |what: &str, left: Option<String>, right: Option<String>| match (left, right) {
        (Some(l), Some(r)) if both(&l) == both(&r) => {}
        (l, r) => problems.push(format!("{what}: {l:?} and {r:?} differ")),
    };
    agree(
        "the runner's FAULTLINE_JWT_SECRET and the gateway's FAULTLINE__AUTH__SECRET",
        raw("faultline", "FAULTLINE_JWT_SECRET"),
        raw("gateway", "FAULTLINE__AUTH__SECRET"),
    );
    let admin = raw("grafana", "GF_SECURITY_ADMIN_USER").unwrap_or_else(|| "admin".into());
    agree(
        "the runner's FAULTLINE_GRAFANA_AUTH and Grafana's admin credentials",
        raw("faultline", "FAULTLINE_GRAFANA_AUTH"),
        raw("grafana", "GF_SECURITY_ADMIN_PASSWORD").map(|p| format!("{admin}:{p}")),
    );
    for name in SERVICES {
        let Some(url) = raw(name, "FAULTLINE__DATABASE__URL") else {
            continue;
        };
        let credentials = url
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .map(|(credentials, _)| credentials.to_owned());
        agree(
            &format!("{name}'s database password and PostgreSQL's"),
            credentials,
            raw("postgres", "POSTGRES_PASSWORD").map(|p| format!("postgres:{p}")),
        );
    }
    problems
}

/// Every bind mount's host path exists in the repository (a missing one becomes an empty
/// directory inside the container, silently).
pub fn check_bind_mounts(compose: &Compose, exists: &dyn Fn(&str) -> bool) -> Problems {
    let mut problems = Problems::new();
    for service in compose.services.values() {
        for volume in &service.volumes {
            let source = volume.split(':').next().unwrap_or_default();
            if (source.starts_with("./") || source.starts_with('/')) && !exists(source) {
                problems.push(format!(
                    "{}: bind mount {source} does not exist",
                    service.name
                ));
            }
        }
    }
    problems
}

/// The container path a bind mount of `service` puts `host` at, and back.
pub fn mount_source(compose: &Compose, service: &str, container_path: &str) -> Option<String> {
    compose.services.get(service)?.volumes.iter().find_map(|v| {
        let mut parts = v.split(':');
        let source = parts.next()?;
        let target = parts.next()?;
        if container_path == target {
            Some(source.to_owned())
        } else {
            container_path
                .strip_prefix(target)
                .filter(|rest| rest.starts_with('/'))
                .map(|rest| format!("{source}{rest}"))
        }
    })
}

/// `$FAULTLINE_CONFIG` of every service that has one is a file mounted into it.
pub fn check_config_files(compose: &Compose, exists: &dyn Fn(&str) -> bool) -> Problems {
    let mut problems = Problems::new();
    for service in compose.services.values() {
        if let Some(path) = service.environment.get("FAULTLINE_CONFIG") {
            match mount_source(compose, &service.name, path) {
                Some(source) if exists(&source) => {}
                Some(source) => problems.push(format!(
                    "{}: {path} comes from {source}, which does not exist",
                    service.name
                )),
                None => problems.push(format!(
                    "{}: FAULTLINE_CONFIG={path} is not mounted",
                    service.name
                )),
            }
        }
    }
    problems
}

/// The topic-creation job creates exactly `expected`, each with `partitions` partitions, before
/// any service that uses the broker starts.
pub fn check_topics(compose: &Compose, job: &str, expected: &[&str], partitions: u32) -> Problems {
    let mut problems = Problems::new();
    let Some(service) = compose.services.get(job) else {
        return vec![format!("no topic-creation job {job:?}")];
    };
    let script = service.command.join("\n");
    let created: BTreeSet<String> = Regex::new(r"for topic in ([^;]+);")
        .ok()
        .and_then(|re| re.captures(&script).map(|c| c[1].to_owned()))
        .map(|list| list.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let wanted: BTreeSet<String> = expected.iter().map(|t| (*t).to_owned()).collect();
    if created != wanted {
        problems.push(format!(
            "{job} creates {created:?}; the contracts name {wanted:?}"
        ));
    }
    if topic_partitions(compose, job) != Some(partitions) {
        problems.push(format!(
            "{job}: topics need {partitions} partitions, as on the embedded broker"
        ));
    }
    for name in SERVICES {
        let Some(s) = compose.services.get(name) else {
            continue;
        };
        if s.environment
            .contains_key("FAULTLINE__KAFKA__BOOTSTRAP_SERVERS")
            && s.depends_on.get(job).map(String::as_str) != Some("service_completed_successfully")
        {
            problems.push(format!(
                "{name} uses the broker but does not wait for {job} to complete"
            ));
        }
    }
    problems
}

/// The `--partitions` the topic-creation job gives every topic, if it says.
pub fn topic_partitions(compose: &Compose, job: &str) -> Option<u32> {
    let script = compose.services.get(job)?.command.join("\n");
    Regex::new(r"--partitions (\d+)")
        .ok()?
        .captures(&script)?
        .get(1)?
        .as_str()
        .parse()
        .ok()
}

/// The broker runs in KRaft mode (no ZooKeeper) with a well-formed cluster id, never creates
/// topics on its own, and its controller listener is not advertised to clients.
pub fn check_kraft(compose: &Compose, service: &str) -> Problems {
    let mut problems = Problems::new();
    let Ok(env) = compose.environment(service) else {
        return vec![format!("no broker service {service:?}")];
    };
    if !env
        .get("KAFKA_PROCESS_ROLES")
        .is_some_and(|r| r.contains("controller"))
    {
        problems.push(format!(
            "{service}: not a KRaft controller (KAFKA_PROCESS_ROLES)"
        ));
    }
    if env.keys().any(|k| k.contains("ZOOKEEPER")) {
        problems.push(format!("{service}: ZooKeeper settings in a KRaft broker"));
    }
    let id = env.get("CLUSTER_ID").cloned().unwrap_or_default();
    if !is_kraft_cluster_id(&id) {
        problems.push(format!(
            "{service}: CLUSTER_ID {id:?} is not a UUID in URL-safe base64 (22 characters)"
        ));
    }
    if env
        .get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")
        .map(String::as_str)
        != Some("false")
    {
        problems.push(format!(
            "{service}: must not auto-create topics (they are created up front)"
        ));
    }
    if env
        .get("KAFKA_ADVERTISED_LISTENERS")
        .is_some_and(|l| l.contains("CONTROLLER"))
    {
        problems.push(format!("{service}: the controller listener is advertised"));
    }
    problems
}

/// 16 bytes in URL-safe base64 without padding.
pub fn is_kraft_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        // The 22nd character carries only 2 bits: A, Q, g or w.
        && id.ends_with(['A', 'Q', 'g', 'w'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(text: &str) -> Compose {
        Compose::parse(text).expect("parses")
    }

    #[test]
    fn floating_tags_are_not_pinned_and_exact_ones_are() {
        for image in [
            "grafana/grafana",
            "grafana/grafana:latest",
            "postgres:18",
            "rust:slim",
            "debian:trixie-slim",
        ] {
            assert!(!is_pinned(image), "{image}");
        }
        for image in [
            "grafana/grafana:13.2.3",
            "postgres:18.6-trixie",
            "ghcr.io/shopify/toxiproxy:2.12.0",
            "localhost:5000/x:1.2.3",
            "debian:trixie-20260803-slim",
        ] {
            assert!(is_pinned(image), "{image}");
        }
    }

    #[test]
    fn an_unpinned_or_missing_infrastructure_image_is_a_problem() {
        let problems = check_images(&compose(
            "services:\n  kafka:\n    image: apache/kafka:latest\n",
        ));
        assert!(
            problems.iter().any(|p| p.contains("not pinned")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("no service runs grafana/tempo")),
            "{problems:?}"
        );
        let wrong_major = check_images(&compose(
            "services:\n  t:\n    image: grafana/tempo:2.9.0\n",
        ));
        assert!(
            wrong_major
                .iter()
                .any(|p| p.contains("expected grafana/tempo 3.")),
            "{wrong_major:?}"
        );
    }

    #[test]
    fn a_dockerfile_with_a_floating_base_is_a_problem() {
        let problems = check_dockerfile_images(
            "ARG R=rust:latest\nFROM ${R} AS build\nRUN cargo build\nFROM debian:trixie-20260803-slim\n",
        );
        assert!(
            problems.iter().any(|p| p.contains("not pinned")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("--locked")),
            "{problems:?}"
        );
    }

    #[test]
    fn missing_targets_unwaitable_conditions_and_cycles_are_problems() {
        let problems = check_dependencies(&compose(
            "services:\n  a:\n    image: x:1.0\n    depends_on:\n      b:\n        condition: service_healthy\n      ghost:\n        condition: service_started\n  b:\n    image: x:1.0\n    depends_on:\n      a:\n        condition: service_completed_successfully\n",
        ));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("ghost, which does not exist")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("has no healthcheck")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("one-shot")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("cycle")), "{problems:?}");
    }

    #[test]
    fn a_published_backend_and_a_non_internal_network_are_problems() {
        let problems = check_exposure(&compose(
            "services:\n  kafka:\n    image: x:1.0\n    ports: [\"9092:9092\"]\n    networks: [internal]\n  gateway:\n    image: x:1.0\n    ports: [\"8080:8080\"]\n    networks: [edge]\nnetworks:\n  internal: {}\n  edge: {}\n",
        ));
        assert!(
            problems.iter().any(|p| p.contains("kafka: publishes")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("must be `internal: true`")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("not the loopback")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("gateway: not on the `internal`")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_variable_without_default_is_a_problem() {
        let problems = check_variables(&compose(
            "services:\n  a:\n    image: x:1.0\n    environment:\n      K: ${NOPE}\n",
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn secrets_that_name_different_variables_or_defaults_are_problems() {
        let problems = check_shared_secrets(&compose(
            "services:\n  gateway:\n    image: x:1.0\n    environment:\n      FAULTLINE__AUTH__SECRET: ${A:-s}\n  faultline:\n    image: x:1.0\n    environment:\n      FAULTLINE_JWT_SECRET: ${B:-s}\n      FAULTLINE_GRAFANA_AUTH: admin:${P:-x}\n  grafana:\n    image: x:1.0\n    environment:\n      GF_SECURITY_ADMIN_PASSWORD: ${P:-y}\n",
        ));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_missing_mount_or_config_file_is_a_problem() {
        let c = compose(
            "services:\n  p:\n    image: x:1.0\n    environment:\n      FAULTLINE_CONFIG: /etc/f/p.toml\n    volumes:\n      - ./missing:/etc/f\n",
        );
        assert_eq!(
            mount_source(&c, "p", "/etc/f/p.toml").as_deref(),
            Some("./missing/p.toml")
        );
        assert_eq!(check_bind_mounts(&c, &|_| false).len(), 1);
        assert_eq!(check_config_files(&c, &|_| false).len(), 1);
        assert!(check_config_files(&c, &|_| true).is_empty());
    }

    #[test]
    fn a_topic_job_that_misses_a_topic_is_a_problem() {
        let c = compose(
            "services:\n  init:\n    image: x:1.0\n    restart: \"no\"\n    command: [\"for topic in a b; do x --partitions 4; done\"]\n",
        );
        assert!(check_topics(&c, "init", &["a", "b"], 4).is_empty());
        assert_eq!(check_topics(&c, "init", &["a", "b", "c"], 4).len(), 1);
    }

    #[test]
    fn a_made_up_cluster_id_is_refused() {
        assert!(is_kraft_cluster_id("o69TO24NX9uoPl_073z_1w"));
        assert!(!is_kraft_cluster_id("faultline-kraft-cluster-1"));
    }
}
