//! `deploy/toxiproxy/toxiproxy.json`: the proxies Toxiproxy creates at start (`-config`), in
//! the JSON its `/populate` endpoint takes. Toxiproxy only logs a bad file and runs on without
//! proxies, so the file is checked here.

use serde::Deserialize;

use crate::Problems;

/// One proxy as Toxiproxy's config file declares it.
#[derive(Debug, Clone, Deserialize)]
pub struct Proxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl Proxy {
    /// The port the proxy listens on.
    pub fn listen_port(&self) -> Option<u16> {
        port_of(&self.listen)
    }

    /// The upstream's host and port.
    pub fn upstream_address(&self) -> Option<(String, u16)> {
        let (host, port) = self.upstream.rsplit_once(':')?;
        Some((host.to_owned(), port.parse().ok()?))
    }
}

fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// Parses the config file's text (a JSON array of proxies; unknown fields are refused, as a
/// typo would otherwise be ignored).
pub fn parse(text: &str) -> anyhow::Result<Vec<Proxy>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        name: String,
        listen: String,
        upstream: String,
        #[serde(default)]
        enabled: Option<bool>,
    }
    let strict: Vec<Strict> = serde_json::from_str(text)?;
    Ok(strict
        .into_iter()
        .map(|s| Proxy {
            name: s.name,
            listen: s.listen,
            upstream: s.upstream,
            enabled: s.enabled,
        })
        .collect())
}

/// The repository's proxies.
pub fn load() -> anyhow::Result<Vec<Proxy>> {
    parse(&crate::repo::read("deploy/toxiproxy/toxiproxy.json")?)
}

/// Names and listen ports are unique, every proxy listens on every interface (other containers
/// connect to it) and starts enabled (a disabled proxy is a fault, not a starting state).
pub fn check_proxies(proxies: &[Proxy]) -> Problems {
    let mut problems = Problems::new();
    if proxies.is_empty() {
        problems.push("toxiproxy.json declares no proxy".into());
    }
    let mut names = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for proxy in proxies {
        if !names.insert(proxy.name.as_str()) {
            problems.push(format!("proxy name {:?} is declared twice", proxy.name));
        }
        match proxy.listen_port() {
            Some(port) if !ports.insert(port) => {
                problems.push(format!("{}: listen port {port} is used twice", proxy.name))
            }
            Some(_) => {}
            None => problems.push(format!(
                "{}: listen {:?} has no port",
                proxy.name, proxy.listen
            )),
        }
        if !proxy.listen.starts_with("0.0.0.0:") {
            problems.push(format!(
                "{}: listens on {:?}; other containers reach it only on 0.0.0.0",
                proxy.name, proxy.listen
            ));
        }
        if proxy.upstream_address().is_none() {
            problems.push(format!(
                "{}: upstream {:?} is not host:port",
                proxy.name, proxy.upstream
            ));
        }
        if proxy.enabled == Some(false) {
            problems.push(format!("{}: starts disabled", proxy.name));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_a_field_name_is_refused() {
        assert!(parse(r#"[{"name":"a","listen":"0.0.0.0:1","upstrem":"b:2"}]"#).is_err());
    }

    #[test]
    fn duplicate_names_and_ports_and_a_loopback_listener_are_problems() {
        let proxies = parse(
            r#"[{"name":"a","listen":"0.0.0.0:1","upstream":"b:2"},
                {"name":"a","listen":"127.0.0.1:1","upstream":"c"}]"#,
        )
        .expect("parses");
        let problems = check_proxies(&proxies);
        assert!(
            problems.iter().any(|p| p.contains("declared twice")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("used twice")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("0.0.0.0")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("not host:port")),
            "{problems:?}"
        );
    }
}
