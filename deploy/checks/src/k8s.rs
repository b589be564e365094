//! The Kubernetes manifests (`deploy/k8s/`) checked without a cluster: every document is an
//! object of the `k8s-openapi` API types with no field those types do not know; each service's
//! Deployment, Service, PodDisruptionBudget and NetworkPolicy select the same pods; its
//! environment is what its settings read (and what compose sets); its probes are the kit's
//! routes on its HTTP port; and its NetworkPolicy allows exactly the links compose gives it.
//!
//! k8s-openapi ignores unknown fields when it deserializes, as serde does by default, so a typo
//! (`imagePulPolicy`) would parse and then vanish: each document is deserialized, serialized
//! back, and every key path of the original must survive the round trip.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    Resource,
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Container, Namespace, Secret, Service},
        networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use serde::{Deserialize as _, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::Problems;

/// The label every pod selector uses; its value is the workload's name.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// The image compose builds and tags (`x-faultline-image`).
pub const IMAGE: &str = "faultline:local";

/// The kit's routes (`services/kit/src/health.rs`) the probes call.
pub const READY_PATH: &str = "/ready";
pub const HEALTH_PATH: &str = "/health";

/// What the manifests expect to exist beside them, in the same namespace: a Service of this
/// name on this port, in front of pods labelled `app.kubernetes.io/name: <name>` (for the
/// NetworkPolicies). Listed in `deploy/k8s/README.md`.
pub const DEPENDENCIES: [(&str, u16); 4] = [
    ("kafka", 9092),
    ("postgres", 5432),
    ("tempo", 4318),
    ("loki", 3100),
];

/// Variables a container may set that are not `FAULTLINE__…` settings: read by the kit's
/// telemetry (`RUST_LOG`, `FAULTLINE_LOKI_URL`, any `OTEL_…`) and its loader (`FAULTLINE_CONFIG`).
/// Any other name must be spliced into a later variable as `$(NAME)`, which is all it is for.
pub const STANDARD_ENV: [&str; 3] = ["RUST_LOG", "FAULTLINE_LOKI_URL", "FAULTLINE_CONFIG"];

/// The parsed manifests, by kind.
#[derive(Debug, Default)]
pub struct Manifests {
    pub namespaces: Vec<Namespace>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub budgets: Vec<PodDisruptionBudget>,
    pub policies: Vec<NetworkPolicy>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
}

/// Parses `(file name, text)` pairs, each holding one or more YAML documents. A document that is
/// not one of the kinds above, does not deserialize, or has a field its type does not know is a
/// problem (and is left out).
pub fn parse(files: &[(String, String)]) -> (Manifests, Problems) {
    let mut manifests = Manifests::default();
    let mut problems = Problems::new();
    for (file, text) in files {
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            let at = format!("{file} document {}", index + 1);
            let value = match Value::deserialize(document) {
                Ok(Value::Null) => continue,
                Ok(value) => value,
                Err(error) => {
                    problems.push(format!("{at}: not YAML: {error}"));
                    continue;
                }
            };
            manifests.add(&at, value, &mut problems);
        }
    }
    (manifests, problems)
}

impl Manifests {
    fn add(&mut self, at: &str, value: Value, problems: &mut Problems) {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (text("apiVersion").to_owned(), text("kind").to_owned());
        let is = |version: &str, k: &str| api_version == version && kind == k;
        let at = format!("{at} ({kind} {})", value["metadata"]["name"]);
        if is(Namespace::API_VERSION, Namespace::KIND) {
            self.namespaces.extend(typed(&at, value, problems));
        } else if is(Deployment::API_VERSION, Deployment::KIND) {
            self.deployments.extend(typed(&at, value, problems));
        } else if is(Service::API_VERSION, Service::KIND) {
            self.services.extend(typed(&at, value, problems));
        } else if is(PodDisruptionBudget::API_VERSION, PodDisruptionBudget::KIND) {
            self.budgets.extend(typed(&at, value, problems));
        } else if is(NetworkPolicy::API_VERSION, NetworkPolicy::KIND) {
            self.policies.extend(typed(&at, value, problems));
        } else if is(ConfigMap::API_VERSION, ConfigMap::KIND) {
            self.config_maps.extend(typed(&at, value, problems));
        } else if is(Secret::API_VERSION, Secret::KIND) {
            self.secrets.extend(typed(&at, value, problems));
        } else {
            problems.push(format!(
                "{at}: {api_version} {kind} is not a kind deploy/k8s uses"
            ));
        }
    }

    /// The Deployment named `name`.
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| meta_name(&d.metadata) == name)
    }
}

/// `value` as `T`, or a problem; a key path of `value` that `T` drops is a problem too.
fn typed<T: DeserializeOwned + Serialize>(
    at: &str,
    value: Value,
    problems: &mut Problems,
) -> Option<T> {
    let object: T = match serde_json::from_value(value.clone()) {
        Ok(object) => object,
        Err(error) => {
            problems.push(format!("{at}: {error}"));
            return None;
        }
    };
    match serde_json::to_value(&object) {
        Ok(back) => {
            let mut unknown = Vec::new();
            dropped(&value, &back, "", &mut unknown);
            for path in &unknown {
                problems.push(format!("{at}: unknown field {path}"));
            }
            unknown.is_empty().then_some(object)
        }
        Err(error) => {
            problems.push(format!("{at}: does not serialize back: {error}"));
            None
        }
    }
}

/// Key paths of `original` that are missing from `back` (nulls aside: they mean "unset").
pub fn dropped(original: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match original {
        Value::Object(map) => {
            for (key, child) in map.iter().filter(|(_, v)| !v.is_null()) {
                let child_path = format!("{path}.{key}");
                match back.get(key) {
                    Some(b) => dropped(child, b, &child_path, out),
                    None => out.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child_path = format!("{path}[{i}]");
                match back.get(i) {
                    Some(b) => dropped(item, b, &child_path, out),
                    None => out.push(child_path),
                }
            }
        }
        _ => {}
    }
}

fn meta_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The labels of a Deployment's pods.
pub fn pod_labels(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// Whether `selector` selects pods with `labels` (an empty selector selects every pod).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let listed = || value.is_some_and(|v| e.values.iter().flatten().any(|x| x == v));
        match e.operator.as_str() {
            "In" => listed(),
            "NotIn" => !listed(),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

fn map_selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    }
}

/// The one container of a Deployment's pods.
pub fn container(deployment: &Deployment) -> Option<&Container> {
    let containers = &deployment.spec.template.spec.as_ref()?.containers;
    match containers.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The container port a probe's or Service's port names (a number, or a port's name).
fn container_port(container: &Container, port: &IntOrString) -> Option<i32> {
    let ports = container.ports.iter().flatten();
    match port {
        IntOrString::Int(n) => ports.map(|p| p.container_port).find(|p| p == n),
        IntOrString::String(name) => ports
            .filter(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .next(),
    }
}

/// Each of `names` runs as a Deployment of two replicas of one container of [`IMAGE`] running
/// the binary of its name, with CPU and memory requests and limits, behind a Service and a
/// PodDisruptionBudget that keeps one replica up.
pub fn check_workloads(manifests: &Manifests, names: &[&str]) -> Problems {
    let mut problems = Problems::new();
    for &name in names {
        let Some(deployment) = manifests.deployment(name) else {
            problems.push(format!("no Deployment {name}"));
            continue;
        };
        if deployment.spec.replicas != Some(2) {
            problems.push(format!("{name}: replicas must be 2"));
        }
        let Some(container) = container(deployment) else {
            problems.push(format!("{name}: expected exactly one container"));
            continue;
        };
        if container.image.as_deref() != Some(IMAGE) {
            problems.push(format!(
                "{name}: image is {:?}, not {IMAGE}",
                container.image
            ));
        }
        if container.args.as_deref() != Some(&[name.to_owned()][..]) {
            problems.push(format!("{name}: args must be [{name:?}] (the binary)"));
        }
        let resources = container.resources.as_ref();
        for (what, amounts) in [
            ("requests", resources.and_then(|r| r.requests.as_ref())),
            ("limits", resources.and_then(|r| r.limits.as_ref())),
        ] {
            for resource in ["cpu", "memory"] {
                if !amounts.is_some_and(|a| a.contains_key(resource)) {
                    problems.push(format!("{name}: no {resource} in resources.{what}"));
                }
            }
        }
        let labels = pod_labels(deployment);
        let budgets: Vec<_> = manifests
            .budgets
            .iter()
            .filter_map(|b| b.spec.as_ref())
            .filter(|s| s.selector.as_ref().is_some_and(|sel| selects(sel, &labels)))
            .collect();
        match budgets.as_slice() {
            [one] if one.min_available == Some(IntOrString::Int(1)) => {}
            [_] => problems.push(format!(
                "{name}: its PodDisruptionBudget must keep minAvailable: 1"
            )),
            other => problems.push(format!(
                "{name}: {} PodDisruptionBudgets select its pods, not one",
                other.len()
            )),
        }
        let services = manifests
            .services
            .iter()
            .filter(|s| meta_name(&s.metadata) == name)
            .count();
        if services != 1 {
            problems.push(format!("{name}: no Service of its name"));
        }
    }
    problems
}

/// Every selector selects pods that exist: a Deployment's own pods; each Service's, PDB's and
/// NetworkPolicy's exactly one Deployment's (and a Service's target port is a port of theirs).
pub fn check_selectors(manifests: &Manifests) -> Problems {
    let mut problems = Problems::new();
    let pods: Vec<(&str, BTreeMap<String, String>)> = manifests
        .deployments
        .iter()
        .map(|d| (meta_name(&d.metadata), pod_labels(d)))
        .collect();
    let selected = |selector: &LabelSelector| -> Vec<&str> {
        pods.iter()
            .filter(|(_, labels)| selects(selector, labels))
            .map(|(name, _)| *name)
            .collect()
    };
    for deployment in &manifests.deployments {
        let name = meta_name(&deployment.metadata);
        let labels = pod_labels(deployment);
        let spec = &deployment.spec;
        if spec
            .selector
            .match_labels
            .as_ref()
            .is_none_or(BTreeMap::is_empty)
            || !selects(&spec.selector, &labels)
        {
            problems.push(format!(
                "Deployment {name}: its selector does not select its pods"
            ));
        }
        for constraint in spec
            .template
            .spec
            .iter()
            .flat_map(|s| s.topology_spread_constraints.iter().flatten())
        {
            if !constraint
                .label_selector
                .as_ref()
                .is_some_and(|s| selects(s, &labels))
            {
                problems.push(format!(
                    "Deployment {name}: a topology spread constraint does not count its own pods"
                ));
            }
        }
    }
    let mut one = |what: String, selector: Option<LabelSelector>| -> Option<String> {
        let found = selector.as_ref().map(&selected).unwrap_or_default();
        match found.as_slice() {
            [name] => Some((*name).to_owned()),
            other => {
                problems.push(format!(
                    "{what} selects {other:?}, not one Deployment's pods"
                ));
                None
            }
        }
    };
    let mut targets = Vec::new();
    for service in &manifests.services {
        let name = meta_name(&service.metadata);
        let selector = service
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty())
            .map(map_selector);
        if let Some(deployment) = one(format!("Service {name}"), selector) {
            targets.push((service, deployment));
        }
    }
    for budget in &manifests.budgets {
        let selector = budget.spec.as_ref().and_then(|s| s.selector.clone());
        one(
            format!("PodDisruptionBudget {}", meta_name(&budget.metadata)),
            selector,
        );
    }
    for policy in &manifests.policies {
        let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.clone());
        one(
            format!("NetworkPolicy {}", meta_name(&policy.metadata)),
            selector,
        );
    }
    for (service, deployment) in targets {
        let name = meta_name(&service.metadata);
        let container = manifests.deployment(&deployment).and_then(container);
        for port in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let target = port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(port.port));
            if container.and_then(|c| container_port(c, &target)).is_none() {
                problems.push(format!(
                    "Service {name}: port {} targets {target:?}, which {deployment}'s container does not expose",
                    port.port
                ));
            }
        }
    }
    problems
}

/// A container's environment as the process sees it: `secretKeyRef`s and `configMapKeyRef`s
/// looked up in the manifests, `fieldRef`s as a stand-in pod name, `$(NAME)` of an earlier
/// variable expanded (as the kubelet does). Also the names spliced into others that way.
pub fn environment(
    manifests: &Manifests,
    container: &Container,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>), Problems> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut spliced = BTreeSet::new();
    let mut problems = Problems::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), None) => {
                let mut text = value.clone();
                for (name, v) in &env {
                    let reference = format!("$({name})");
                    if text.contains(&reference) {
                        spliced.insert(name.clone());
                        text = text.replace(&reference, v);
                    }
                }
                if text.contains("$(") {
                    problems.push(format!(
                        "{} {}: {value:?} refers to a variable not defined before it",
                        container.name, var.name
                    ));
                }
                text
            }
            (None, Some(from)) => {
                let secret = from.secret_key_ref.as_ref().map(|r| {
                    let found = manifests
                        .secrets
                        .iter()
                        .find(|s| meta_name(&s.metadata) == r.name)
                        .and_then(|s| {
                            s.string_data
                                .as_ref()
                                .and_then(|d| d.get(&r.key))
                                .cloned()
                                .or_else(|| {
                                    s.data
                                        .as_ref()
                                        .and_then(|d| d.get(&r.key))
                                        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                                })
                        });
                    (format!("Secret {} key {}", r.name, r.key), found)
                });
                let config = from.config_map_key_ref.as_ref().map(|r| {
                    let found = manifests
                        .config_maps
                        .iter()
                        .find(|c| meta_name(&c.metadata) == r.name)
                        .and_then(|c| c.data.as_ref()?.get(&r.key).cloned());
                    (format!("ConfigMap {} key {}", r.name, r.key), found)
                });
                let field = from.field_ref.as_ref().map(|f| {
                    (
                        f.field_path.clone(),
                        Some(format!("{}-pod", container.name)),
                    )
                });
                match secret.or(config).or(field) {
                    Some((_, Some(value))) => value,
                    Some((what, None)) => {
                        problems.push(format!("{} {}: no {what}", container.name, var.name));
                        continue;
                    }
                    None => {
                        problems.push(format!(
                            "{} {}: an unsupported valueFrom",
                            container.name, var.name
                        ));
                        continue;
                    }
                }
            }
            _ => {
                problems.push(format!(
                    "{} {}: needs exactly one of value and valueFrom",
                    container.name, var.name
                ));
                continue;
            }
        };
        env.insert(var.name.clone(), value);
    }
    if problems.is_empty() {
        Ok((env, spliced))
    } else {
        Err(problems)
    }
}

/// The settings file `$FAULTLINE_CONFIG` points at, through the container's volume mounts to a
/// ConfigMap key: `Ok(None)` when the variable is unset.
pub fn config_file(
    manifests: &Manifests,
    deployment: &Deployment,
    env: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let Some(path) = env.get("FAULTLINE_CONFIG") else {
        return Ok(None);
    };
    let name = meta_name(&deployment.metadata);
    let container = container(deployment).ok_or(format!("{name}: no single container"))?;
    let volumes = deployment
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(rest) = path.strip_prefix(&format!("{}/", mount.mount_path.trim_end_matches('/')))
        else {
            continue;
        };
        let source = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .and_then(|v| v.config_map.as_ref())
            .ok_or(format!("{name}: volume {} is not a ConfigMap", mount.name))?;
        let key = match &source.items {
            Some(items) => items
                .iter()
                .find(|i| i.path == rest)
                .map(|i| i.key.clone())
                .ok_or(format!(
                    "{name}: {path} is not an item of volume {}",
                    mount.name
                ))?,
            None => rest.to_owned(),
        };
        return manifests
            .config_maps
            .iter()
            .find(|c| meta_name(&c.metadata) == source.name)
            .and_then(|c| c.data.as_ref()?.get(&key).cloned())
            .map(Some)
            .ok_or(format!(
                "{name}: ConfigMap {} has no key {key}",
                source.name
            ));
    }
    Err(format!("{name}: FAULTLINE_CONFIG={path} is not mounted"))
}

/// Every variable a container sets is read: a `FAULTLINE__…` one is checked by
/// [`unread_settings`]; the others are [`STANDARD_ENV`], `OTEL_…`, or spliced into another.
/// And every name compose sets for the service is set here too, so the two stacks configure
/// the same settings through the same variables.
pub fn check_env_names(
    name: &str,
    env: &BTreeMap<String, String>,
    spliced: &BTreeSet<String>,
    compose_env: &BTreeMap<String, String>,
) -> Problems {
    let mut problems = Problems::new();
    for key in env.keys() {
        let known = key.starts_with("FAULTLINE__")
            || key.starts_with("OTEL_")
            || STANDARD_ENV.contains(&key.as_str())
            || spliced.contains(key);
        if !known {
            problems.push(format!("{name}: {key} is read by nothing"));
        }
    }
    for key in compose_env.keys() {
        if !env.contains_key(key) {
            problems.push(format!("{name}: compose sets {key}, the manifest does not"));
        }
    }
    problems
}

/// The service's layered settings as the kit's loader builds them (`faultline_kit::config::load`:
/// the TOML file, then `FAULTLINE__SECTION__KEY` variables), from given text and variables rather
/// than the process's.
pub fn settings_source(
    env: &BTreeMap<String, String>,
    toml: Option<&str>,
) -> Result<config::Config, String> {
    let mut builder = config::Config::builder();
    if let Some(text) = toml {
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    let vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("FAULTLINE__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("FAULTLINE")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars)),
    );
    builder.build().map_err(|e| e.to_string())
}

/// Turns a service's settings into their `Debug` text (or the error that stopped them).
pub type Load<'a> = dyn Fn(config::Config) -> Result<String, String> + 'a;

/// Every `FAULTLINE__…` variable names a setting the service reads. The settings types flatten
/// their common sections, which serde cannot report unknown keys through, so this asks the
/// settings themselves: a variable is read when removing it or changing its value changes the
/// loaded settings (or stops them loading). An unknown key changes nothing either way.
pub fn unread_settings(
    name: &str,
    env: &BTreeMap<String, String>,
    toml: Option<&str>,
    load: &Load<'_>,
) -> Problems {
    let settings = |env: &BTreeMap<String, String>| settings_source(env, toml).and_then(load);
    let base = match settings(env) {
        Ok(base) => base,
        Err(error) => return vec![format!("{name}: its settings do not load: {error}")],
    };
    let mut problems = Problems::new();
    for (key, value) in env.iter().filter(|(k, _)| k.starts_with("FAULTLINE__")) {
        let mut without = env.clone();
        without.remove(key);
        let mut changed = env.clone();
        changed.insert(key.clone(), perturbed(value));
        let read = [without, changed]
            .iter()
            .any(|e| settings(e).as_ref() != Ok(&base));
        if !read {
            problems.push(format!("{name}: {key} is not a setting {name} reads"));
        }
    }
    problems
}

fn perturbed(value: &str) -> String {
    match (value.parse::<i64>(), value) {
        (Ok(n), _) => (n + 1).to_string(),
        (_, "true") => "false".into(),
        (_, "false") => "true".into(),
        _ => format!("{value}-changed"),
    }
}

/// The readiness probe calls [`READY_PATH`] and the liveness probe [`HEALTH_PATH`], both on the
/// port the service listens on (`FAULTLINE__HTTP__PORT`).
pub fn check_probes(name: &str, container: &Container, env: &BTreeMap<String, String>) -> Problems {
    let mut problems = Problems::new();
    let listens: Option<i32> = env
        .get("FAULTLINE__HTTP__PORT")
        .and_then(|p| p.parse().ok());
    for (what, probe, path) in [
        ("readiness", &container.readiness_probe, READY_PATH),
        ("liveness", &container.liveness_probe, HEALTH_PATH),
    ] {
        let Some(get) = probe.as_ref().and_then(|p| p.http_get.as_ref()) else {
            problems.push(format!("{name}: no HTTP {what} probe"));
            continue;
        };
        if get.path.as_deref() != Some(path) {
            problems.push(format!(
                "{name}: the {what} probe calls {:?}, not {path}",
                get.path
            ));
        }
        let port = container_port(container, &get.port);
        if port.is_none() || port != listens {
            problems.push(format!(
                "{name}: the {what} probe's port {:?} is container port {port:?}; the service listens on {listens:?}",
                get.port
            ));
        }
    }
    problems
}

/// A `host:port` a workload talks to.
pub type Link = (String, u16);

/// What a compose service's environment makes it reach, seen through Toxiproxy: a proxy's
/// address stands for its upstream (`toxiproxy:15433` is `postgres:5432`).
pub fn compose_reach(
    env: &BTreeMap<String, String>,
    proxies: &[crate::toxiproxy::Proxy],
) -> BTreeSet<Link> {
    env.values()
        .flat_map(|v| crate::topology::addresses(v))
        .filter_map(|(host, port)| {
            if host != "toxiproxy" {
                return Some((host, port));
            }
            proxies
                .iter()
                .find(|p| p.listen_port() == Some(port))
                .and_then(|p| p.upstream_address())
        })
        .collect()
}

/// What a container's environment makes it reach.
pub fn reach(env: &BTreeMap<String, String>) -> BTreeSet<Link> {
    env.values()
        .flat_map(|v| crate::topology::addresses(v))
        .collect()
}

/// A manifest's address for a link, as the pod's NetworkPolicy sees it: a Faultline Service's
/// port becomes the container port it targets (policies apply after the Service's translation);
/// a dependency keeps its documented port. `None` for an address that is neither.
pub fn pod_link(manifests: &Manifests, (host, port): &Link) -> Option<Link> {
    if let Some(service) = manifests
        .services
        .iter()
        .find(|s| meta_name(&s.metadata) == host.as_str())
    {
        let spec_port = service
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .find(|p| p.port == i32::from(*port))?;
        let target = spec_port
            .target_port
            .clone()
            .unwrap_or(IntOrString::Int(spec_port.port));
        let container = manifests.deployment(host).and_then(container)?;
        let pod_port = container_port(container, &target)?;
        return Some((host.clone(), u16::try_from(pod_port).ok()?));
    }
    DEPENDENCIES
        .iter()
        .any(|(name, p)| *name == host.as_str() && p == port)
        .then(|| (host.clone(), *port))
}

/// Every address in the manifests is a Faultline Service's port or a [`DEPENDENCIES`] entry,
/// and each service reaches exactly what it reaches in compose (through Toxiproxy there,
/// directly here).
pub fn check_reach(
    manifests: &Manifests,
    name: &str,
    env: &BTreeMap<String, String>,
    compose: &BTreeSet<Link>,
) -> Problems {
    let mut problems = Problems::new();
    let here = reach(env);
    for link in &here {
        if pod_link(manifests, link).is_none() {
            problems.push(format!(
                "{name}: {}:{} is neither a port of a Service here nor a listed dependency",
                link.0, link.1
            ));
        }
    }
    if &here != compose {
        problems.push(format!(
            "{name} reaches {here:?} here and {compose:?} in compose"
        ));
    }
    problems
}

/// The peer a NetworkPolicy rule names: the workload (`app.kubernetes.io/name`) of a pod
/// selector in the policy's namespace; `Err` for anything wider.
fn peer_name(peer: &NetworkPolicyPeer) -> Result<String, String> {
    let only_pods = peer.namespace_selector.is_none() && peer.ip_block.is_none();
    let name = peer
        .pod_selector
        .as_ref()
        .filter(|s| s.match_expressions.is_none())
        .and_then(|s| s.match_labels.as_ref())
        .filter(|l| l.len() == 1)
        .and_then(|l| l.get(NAME_LABEL));
    match (only_pods, name) {
        (true, Some(name)) => Ok(name.clone()),
        _ => Err(format!("{peer:?}")),
    }
}

/// DNS: port 53 of the cluster's resolver pods, the one egress outside the namespace.
fn is_dns(peer: &NetworkPolicyPeer, ports: &[NetworkPolicyPort]) -> bool {
    let resolver = peer
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .and_then(|l| l.get("k8s-app"))
        .is_some_and(|v| v == "kube-dns");
    resolver
        && peer.ip_block.is_none()
        && !ports.is_empty()
        && ports.iter().all(|p| p.port == Some(IntOrString::Int(53)))
}

fn tcp_ports(ports: &[NetworkPolicyPort]) -> Result<Vec<u16>, String> {
    ports
        .iter()
        .map(
            |p| match (&p.port, p.protocol.as_deref().unwrap_or("TCP"), p.end_port) {
                (Some(IntOrString::Int(n)), "TCP", None) => {
                    u16::try_from(*n).map_err(|_| format!("port {n}"))
                }
                other => Err(format!("{other:?} (a single TCP port number, please)")),
            },
        )
        .collect()
}

/// Each service's pods are isolated both ways by the policies that select them, which allow:
/// egress to exactly `reach[service]` (as [`pod_link`]s) and DNS; ingress on its HTTP port from
/// exactly the services whose reach includes it — and from anywhere for `open` (the gateway)
/// only. Peers name Faultline workloads or [`DEPENDENCIES`], nothing else.
pub fn check_network_policies(
    manifests: &Manifests,
    reach: &BTreeMap<String, BTreeSet<Link>>,
    open: &str,
) -> Problems {
    let mut problems = Problems::new();
    let known = |name: &str| {
        manifests.deployment(name).is_some() || DEPENDENCIES.iter().any(|(d, _)| *d == name)
    };
    for (name, links) in reach {
        let Some(deployment) = manifests.deployment(name) else {
            problems.push(format!("no Deployment {name}"));
            continue;
        };
        let labels = pod_labels(deployment);
        let http: Option<u16> = container(deployment)
            .and_then(|c| container_port(c, &IntOrString::String("http".into())))
            .and_then(|p| u16::try_from(p).ok());
        let policies: Vec<_> = manifests
            .policies
            .iter()
            .filter_map(|p| p.spec.as_ref())
            .filter(|s| {
                s.pod_selector
                    .as_ref()
                    .is_some_and(|sel| selects(sel, &labels))
            })
            .collect();
        for direction in ["Ingress", "Egress"] {
            let isolated = policies
                .iter()
                .any(|p| p.policy_types.iter().flatten().any(|t| t == direction));
            if !isolated {
                problems.push(format!("{name}: no NetworkPolicy isolates its {direction}"));
            }
        }
        let mut egress = BTreeSet::new();
        for rule in policies.iter().flat_map(|p| p.egress.iter().flatten()) {
            let ports = rule.ports.clone().unwrap_or_default();
            let peers = rule.to.clone().unwrap_or_default();
            if peers.is_empty() || ports.is_empty() {
                problems.push(format!(
                    "{name}: an egress rule without peers or ports allows too much"
                ));
                continue;
            }
            if peers.iter().all(|p| is_dns(p, &ports)) {
                continue;
            }
            match tcp_ports(&ports) {
                Ok(ports) => {
                    for peer in &peers {
                        match peer_name(peer) {
                            Ok(to) if known(&to) => {
                                egress.extend(ports.iter().map(|p| (to.clone(), *p)));
                            }
                            Ok(to) => problems.push(format!(
                                "{name}: egress to {to}, which is nothing here or listed"
                            )),
                            Err(peer) => problems
                                .push(format!("{name}: egress to {peer}, wider than one workload")),
                        }
                    }
                }
                Err(error) => problems.push(format!("{name}: egress ports {error}")),
            }
        }
        let wanted: BTreeSet<Link> = links
            .iter()
            .filter_map(|l| pod_link(manifests, l))
            .collect();
        if egress != wanted {
            problems.push(format!(
                "{name}: egress allows {egress:?}; it reaches {wanted:?}"
            ));
        }
        let callers: BTreeSet<String> = reach
            .iter()
            .filter(|(_, links)| links.iter().any(|(host, _)| host == name))
            .map(|(caller, _)| caller.clone())
            .collect();
        let mut from = BTreeSet::new();
        let mut anywhere = false;
        for rule in policies.iter().flat_map(|p| p.ingress.iter().flatten()) {
            let ports = tcp_ports(rule.ports.as_deref().unwrap_or_default());
            if ports
                .as_ref()
                .map_or(true, |p| p.is_empty() || p.iter().any(|p| Some(*p) != http))
            {
                problems.push(format!(
                    "{name}: ingress on {ports:?}, not only its HTTP port {http:?}"
                ));
            }
            match rule.from.as_deref() {
                None | Some([]) => anywhere = true,
                Some(peers) => {
                    for peer in peers {
                        match peer_name(peer) {
                            Ok(caller) if known(&caller) => {
                                from.insert(caller);
                            }
                            Ok(caller) => problems.push(format!(
                                "{name}: ingress from {caller}, which is nothing here or listed"
                            )),
                            Err(peer) => {
                                anywhere = true;
                                problems.push(format!(
                                    "{name}: ingress from {peer}, wider than one workload"
                                ));
                            }
                        }
                    }
                }
            }
        }
        if name == open {
            if !anywhere {
                problems.push(format!(
                    "{name}: must be reachable from outside the namespace"
                ));
            }
        } else {
            if anywhere {
                problems.push(format!(
                    "{name}: reachable from anywhere; only {open} may be"
                ));
            }
            if from != callers {
                problems.push(format!(
                    "{name}: ingress from {from:?}; its callers are {callers:?}"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Manifests, Problems) {
        parse(&[("test.yaml".to_owned(), text.to_owned())])
    }

    #[test]
    fn an_unknown_field_is_a_problem_though_the_types_would_ignore_it() {
        let (m, problems) = parsed(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  lables: {x: y}\ndata: {k: v}\n",
        );
        assert!(m.config_maps.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(".metadata.lables"), "{problems:?}");
        let (m, problems) = parsed("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n");
        assert_eq!(
            (m.config_maps.len(), problems.len()),
            (1, 0),
            "{problems:?}"
        );
    }

    #[test]
    fn an_unlisted_kind_or_a_wrong_type_is_a_problem() {
        let (_, problems) = parsed(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: two\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"a": "1"},
            "matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]
        }))
        .expect("a selector");
        assert!(selects(&selector, &labels));
        let other = map_selector(&BTreeMap::from([("a".to_owned(), "2".to_owned())]));
        assert!(!selects(&other, &labels));
    }

    #[test]
    fn a_perturbed_value_differs() {
        assert_eq!(perturbed("8080"), "8081");
        assert_eq!(perturbed("true"), "false");
        assert_ne!(perturbed("http://x:1"), "http://x:1");
    }
}
