//! The stack's embedded Toxiproxy: started first, then given one proxy per link of the
//! topology, each listening on a port of its own choosing.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::Context as _;
use faultline_contracts::topology::Link;
use faultline_toxiproxy::client::Client;
use serde_json::json;

use super::{
    configs::write_config,
    process::{Service, spawn_child, wait_until_ready},
};
use crate::services;

/// Starts the proxy process and waits for its API; returns it, a client of its API and the
/// API's URL.
pub(super) async fn start(
    exe: &Path,
    run_dir: &Path,
    service_log: &str,
) -> anyhow::Result<(Service, Client, String)> {
    let port = faultline_harness::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let config = write_config(
        run_dir,
        services::TOXIPROXY,
        &json!({ "service_name": services::TOXIPROXY,
                 "http": { "host": "127.0.0.1", "port": port } }),
    )?;
    let log = run_dir.join("logs").join("toxiproxy.log");
    let mut service = Service {
        runs: services::TOXIPROXY,
        child: spawn_child(exe, services::TOXIPROXY, &config, &log, service_log, &[])?,
        url: url.clone(),
        config,
        log,
    };
    wait_until_ready(
        services::TOXIPROXY,
        &mut service,
        "/version",
        Duration::from_secs(30),
    )
    .await?;
    let client = Client::new(&url)?;
    Ok((service, client, url))
}

/// Where each link's proxy listens.
#[derive(Debug)]
pub(super) struct Listeners(BTreeMap<String, String>);

impl Listeners {
    /// The `host:port` a client of `link` connects to.
    pub(super) fn via(&self, link: Link) -> anyhow::Result<String> {
        self.0
            .get(link.proxy_name())
            .cloned()
            .with_context(|| format!("no proxy {link} was created"))
    }
}

/// Creates a proxy for each `(link, upstream)`, each on a free port the proxy picks.
pub(super) async fn create(
    toxiproxy: &Client,
    links: &[(Link, String)],
) -> anyhow::Result<Listeners> {
    let proxies = toxiproxy
        .populate(
            &links
                .iter()
                .map(|(link, upstream)| {
                    faultline_toxiproxy::api::ProxyConfig::new(
                        link.proxy_name(),
                        "127.0.0.1:0",
                        upstream.as_str(),
                    )
                })
                .collect::<Vec<_>>(),
        )
        .await
        .context("creating the stack's proxies")?;
    Ok(Listeners(
        proxies.into_iter().map(|p| (p.name, p.listen)).collect(),
    ))
}
