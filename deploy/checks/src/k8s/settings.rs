//! What each container's environment says, and whether the service reads it: the environment
//! as the kubelet hands it over (secrets, ConfigMap keys and `$(NAME)` resolved), the settings
//! file `$FAULTLINE_CONFIG` names through its mount, and each `FAULTLINE__…` variable tried
//! against the service's own settings type.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Container};

use super::manifests::{Manifests, container, meta_name};
use crate::Problems;

/// Variables a container may set that are not `FAULTLINE__…` settings: read by the kit's
/// telemetry (`RUST_LOG`, `FAULTLINE_LOKI_URL`, any `OTEL_…`) and its loader (`FAULTLINE_CONFIG`).
/// Any other name must be spliced into a later variable as `$(NAME)`, which is all it is for.
pub const STANDARD_ENV: [&str; 3] = ["RUST_LOG", "FAULTLINE_LOKI_URL", "FAULTLINE_CONFIG"];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_is_read_only_if_the_settings_change_with_it_even_through_a_flatten() {
        // Read through their Debug text only, as the services' settings are here.
        #[allow(dead_code)]
        #[derive(Debug, serde::Deserialize)]
        struct Common {
            port: u16,
            #[serde(default)]
            instance_id: Option<String>,
        }
        #[allow(dead_code)]
        #[derive(Debug, serde::Deserialize)]
        struct Settings {
            #[serde(flatten)]
            common: Common,
            #[serde(default)]
            limit: u32,
        }
        let load = |source: config::Config| {
            source
                .try_deserialize::<Settings>()
                .map(|s| format!("{s:?}"))
                .map_err(|e| e.to_string())
        };
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let good = env(&[
            ("FAULTLINE__PORT", "8080"),
            ("FAULTLINE__INSTANCE_ID", "a"),
            ("FAULTLINE__LIMIT", "0"),
        ]);
        assert_eq!(unread_settings("s", &good, None, &load), Problems::new());
        let typo = env(&[("FAULTLINE__PORT", "8080"), ("FAULTLINE__INSTANCEID", "a")]);
        let problems = unread_settings("s", &typo, None, &load);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("FAULTLINE__INSTANCEID"),
            "{problems:?}"
        );
        let broken = env(&[("FAULTLINE__PORT", "http")]);
        assert!(unread_settings("s", &broken, None, &load)[0].contains("do not load"));
    }

    #[test]
    fn a_perturbed_value_differs() {
        assert_eq!(perturbed("8080"), "8081");
        assert_eq!(perturbed("true"), "false");
        assert_ne!(perturbed("http://x:1"), "http://x:1");
    }
}
