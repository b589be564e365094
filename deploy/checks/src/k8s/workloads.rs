//! The shape of each service's workload: a Deployment of two replicas of the Faultline image
//! with requests and limits, a Service and a PodDisruptionBudget; selectors that select exactly
//! their Deployment's pods; probes on the kit's routes at the port the service listens on.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Container,
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::manifests::{
    Manifests, container, container_port, map_selector, meta_name, pod_labels, selects,
};
use crate::Problems;

/// The image compose builds and tags (`x-faultline-image`).
pub const IMAGE: &str = "faultline:local";

/// The kit's routes (`services/kit/src/health.rs`) the probes call.
pub const READY_PATH: &str = "/ready";
pub const HEALTH_PATH: &str = "/health";

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

/// One Namespace, and every other object in it (selectors and references never cross
/// namespaces, so one object elsewhere would be cut off from the rest).
pub fn check_namespace(manifests: &Manifests) -> Problems {
    let [namespace] = manifests.namespaces.as_slice() else {
        return vec![format!(
            "{} Namespaces, not one",
            manifests.namespaces.len()
        )];
    };
    let wanted = meta_name(&namespace.metadata);
    let metas = manifests
        .deployments
        .iter()
        .map(|o| ("Deployment", &o.metadata))
        .chain(manifests.services.iter().map(|o| ("Service", &o.metadata)))
        .chain(
            manifests
                .budgets
                .iter()
                .map(|o| ("PodDisruptionBudget", &o.metadata)),
        )
        .chain(
            manifests
                .policies
                .iter()
                .map(|o| ("NetworkPolicy", &o.metadata)),
        )
        .chain(
            manifests
                .config_maps
                .iter()
                .map(|o| ("ConfigMap", &o.metadata)),
        )
        .chain(manifests.secrets.iter().map(|o| ("Secret", &o.metadata)));
    metas
        .filter(|(_, meta)| meta.namespace.as_deref() != Some(wanted))
        .map(|(kind, meta)| {
            format!(
                "{kind} {} is in namespace {:?}, not {wanted}",
                meta_name(meta),
                meta.namespace
            )
        })
        .collect()
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
