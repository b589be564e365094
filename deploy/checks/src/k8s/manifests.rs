//! The manifests as typed objects: every YAML document of `deploy/k8s/` parsed into its
//! `k8s-openapi` type, with the fields those types would silently drop reported; and the
//! helpers the checks share (pod labels, selectors, a Deployment's container and ports).
//!
//! k8s-openapi ignores unknown fields when it deserializes, as serde does by default, so a typo
//! (`imagePulPolicy`) would parse and then vanish: each document is deserialized, serialized
//! back, and every key path of the original must survive the round trip.

use std::collections::BTreeMap;

use k8s_openapi::{
    Resource,
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Container, Namespace, Secret, Service},
        networking::v1::NetworkPolicy,
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use serde::{Deserialize as _, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::Problems;

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

pub(crate) fn meta_name(meta: &ObjectMeta) -> &str {
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

pub(crate) fn map_selector(labels: &BTreeMap<String, String>) -> LabelSelector {
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
pub(crate) fn container_port(container: &Container, port: &IntOrString) -> Option<i32> {
    let ports = container.ports.iter().flatten();
    match port {
        IntOrString::Int(n) => ports.map(|p| p.container_port).find(|p| p == n),
        IntOrString::String(name) => ports
            .filter(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .next(),
    }
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
}
