//! `endpoints.json`: where everything of a running stack is, for scripts and the chaos runner.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

/// The machine-readable map of a running stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoints {
    /// The public API.
    pub gateway_url: String,
    /// The broker's bootstrap address.
    pub broker: String,
    /// Each service's own HTTP address (admin and checker views); a replicated service's first
    /// replica.
    pub services: BTreeMap<String, String>,
    /// Every process of each of the five services: instance name (`reservation` when it runs
    /// once, `reservation-1`, `reservation-2`, … when it runs several times) → its HTTP address.
    /// Empty for a stack that does not list them (compose, where Docker's DNS spreads a name).
    #[serde(default)]
    pub replicas: BTreeMap<String, BTreeMap<String, String>>,
    /// The Toxiproxy API, once the embedded proxy exists (`null` until then).
    pub toxiproxy_url: Option<String>,
    /// Telemetry URLs: `tempo` and `loki` (query APIs), and `grafana` on compose or `viewer`
    /// (the capture's pages for people, `<capture>/ui/`) on the embedded stack.
    pub telemetry: BTreeMap<String, String>,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// A bearer token per seeded user.
    pub tokens: BTreeMap<String, String>,
    /// The process id of the launcher (send it SIGTERM to stop everything).
    pub launcher_pid: u32,
}

impl Endpoints {
    pub fn write(&self, run_dir: &Path) -> anyhow::Result<()> {
        let path = run_dir.join("endpoints.json");
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    pub fn read(run_dir: &Path) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(&std::fs::read(
            run_dir.join("endpoints.json"),
        )?)?)
    }

    /// Every gateway replica's address (`gateway_url` alone when the stack lists none): clients
    /// that load the stack spread their requests over them.
    pub fn gateways(&self) -> Vec<String> {
        match self.replicas.get("gateway") {
            Some(replicas) if !replicas.is_empty() => replicas.values().cloned().collect(),
            _ => vec![self.gateway_url.clone()],
        }
    }

    pub fn service(&self, name: &str) -> &str {
        self.services
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}
