//! The Kubernetes manifests (`deploy/k8s/`) checked without a cluster: every document is an
//! object of the `k8s-openapi` API types with no field those types do not know; each service's
//! Deployment, Service, PodDisruptionBudget and NetworkPolicy select the same pods; its
//! environment is what its settings read (and what compose sets); its probes are the kit's
//! routes on its HTTP port; and its NetworkPolicy allows exactly the links compose gives it.
//! `tests/k8s.rs` runs them on the real files and on copies broken in one place.
//!
//! - [`manifests`]: YAML documents into typed objects, unknown fields refused; shared helpers.
//! - [`workloads`]: replicas, image, resources, PDBs, Services; selectors; probes.
//! - [`settings`]: the container environment as the process sees it, and whether the service
//!   reads each variable (asked of its own settings type).
//! - [`network`]: addresses and NetworkPolicies against compose's links.

pub mod manifests;
pub mod network;
pub mod settings;
pub mod workloads;

pub use manifests::{Manifests, container, dropped, parse, pod_labels, selects};
pub use network::{
    DEPENDENCIES, Link, NAME_LABEL, check_network_policies, check_reach, compose_reach, pod_link,
    reach,
};
pub use settings::{
    Load, STANDARD_ENV, check_env_names, config_file, environment, settings_source, unread_settings,
};
pub use workloads::{
    HEALTH_PATH, IMAGE, READY_PATH, check_namespace, check_probes, check_selectors, check_workloads,
};
