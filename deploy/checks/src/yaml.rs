//! YAML documents as JSON values, with `<<` merge keys resolved.
//!
//! The compose file builds its services from anchored templates (`<<: *service`) whose own
//! bodies merge other templates. serde_norway's `apply_merge` resolves one level only (an
//! inner `<<` arrives in the outer mapping as a plain key), so merges are resolved here,
//! innermost first, as docker compose does. Keys become strings; the checks only ever look
//! values up by name.

use anyhow::Context as _;
use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

/// Parses `text` (one YAML document) into a JSON value with every merge key resolved.
pub fn parse(text: &str) -> anyhow::Result<Value> {
    let yaml: Yaml = serde_norway::from_str(text).context("not valid YAML")?;
    to_json(yaml)
}

fn to_json(yaml: Yaml) -> anyhow::Result<Value> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map(Value::from).unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut own = Map::new();
            let mut merged: Vec<Map<String, Value>> = Vec::new();
            for (key, value) in mapping {
                let key = key_text(&key)?;
                let value = to_json(value)?;
                if key == "<<" {
                    // `<<: *a` or `<<: [*a, *b]`; earlier sources win over later ones.
                    match value {
                        Value::Object(source) => merged.push(source),
                        Value::Array(sources) => {
                            for source in sources {
                                match source {
                                    Value::Object(source) => merged.push(source),
                                    other => {
                                        anyhow::bail!("merge source is not a mapping: {other}")
                                    }
                                }
                            }
                        }
                        other => anyhow::bail!("merge source is not a mapping: {other}"),
                    }
                } else {
                    own.insert(key, value);
                }
            }
            for source in merged {
                for (key, value) in source {
                    own.entry(key).or_insert(value);
                }
            }
            Value::Object(own)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value)?,
    })
}

fn key_text(key: &Yaml) -> anyhow::Result<String> {
    Ok(match key {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => anyhow::bail!("unsupported mapping key {other:?}"),
    })
}

/// Every key path of a mapping tree (`a.b.c` for leaves and for mappings alike), for checks
/// that compare a config against the keys a program accepts. Sequences contribute their
/// elements' keys under the sequence's own path.
pub fn key_paths(value: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    collect(value, "", &mut paths);
    paths
}

fn collect(value: &Value, prefix: &str, paths: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths.push(path.clone());
                collect(child, &path, paths);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect(item, prefix, paths);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_merge_keys_are_resolved_innermost_first() {
        let doc = parse(
            "base: &base\n  image: x\nsvc: &svc\n  <<: *base\n  restart: always\napp:\n  <<: *svc\n  restart: no\n",
        )
        .expect("parses");
        assert_eq!(doc["app"]["image"], "x", "{doc}");
        assert_eq!(doc["app"]["restart"], "no", "own keys win over merged ones");
        assert!(doc["app"].get("<<").is_none());
    }

    #[test]
    fn a_merge_of_a_scalar_is_an_error() {
        assert!(parse("a: &a 1\nb:\n  <<: *a\n").is_err());
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(parse("a: [1, 2\n").is_err());
    }

    #[test]
    fn key_paths_reach_into_sequences() {
        let doc = parse("a:\n  b: 1\n  c:\n    - d: 2\n").expect("parses");
        assert_eq!(key_paths(&doc), ["a", "a.b", "a.c", "a.c.d"]);
    }
}
