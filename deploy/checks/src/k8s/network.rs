//! Who talks to whom: each service reaches (its addresses) and may reach (its NetworkPolicy's
//! egress) exactly the links compose gives it, seen through Toxiproxy; it may be reached by
//! exactly the services that call it, and only the gateway from anywhere.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::manifests::{Manifests, container, container_port, meta_name, pod_labels, selects};
use crate::Problems;

/// The label every pod selector uses; its value is the workload's name.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// What the manifests expect to exist beside them, in the same namespace: a Service of this
/// name on this port, in front of pods labelled `app.kubernetes.io/name: <name>` (for the
/// NetworkPolicies). Listed in `deploy/k8s/README.md`.
pub const DEPENDENCIES: [(&str, u16); 4] = [
    ("kafka", 9092),
    ("postgres", 5432),
    ("tempo", 4318),
    ("loki", 3100),
];

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
