//! The children's configuration files: the settings each service, the capture, the broker and
//! the proxy start with, written as JSON into the run directory.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use faultline_contracts::topology::Link;
use serde_json::{Value, json};

use super::{Instance, StackOptions, proxies::Listeners};
use crate::services;

/// The settings of the capture and the five services: each reaches the broker, its database
/// and the services it calls through their proxies, and exports to the capture; payment and
/// inventory carry the seed, the gateway the tokens' secret. The port (and, for a replica of
/// several, the instance id) is each process's own: see [`for_instance`].
pub(super) fn children(
    options: &StackOptions,
    databases: &BTreeMap<&str, String>,
    listeners: &Listeners,
    secret: &str,
) -> anyhow::Result<BTreeMap<&'static str, Value>> {
    let kafka_proxy = listeners.via(Link::Kafka)?;
    let common = |name: &str| {
        let mut kafka = json!({ "bootstrap_servers": kafka_proxy });
        if let (Some(kafka), Some(overrides)) = (kafka.as_object_mut(), options.kafka.as_object()) {
            kafka.extend(overrides.clone());
        }
        let mut config = json!({
            "service_name": name,
            "http": { "host": "127.0.0.1", "port": 0 },
            "kafka": kafka,
        });
        if let Some(database) = databases.get(name) {
            config["database"] = json!({ "url": database });
        }
        config
    };
    let via = |link: Link| listeners.via(link);
    let mut configs = BTreeMap::new();
    let mut payment = common("payment");
    payment["seed"] = json!(options.seed.wallets());
    configs.insert("payment", payment);
    let mut inventory = common("inventory");
    inventory["seed"] = json!(options.seed.catalogue());
    configs.insert("inventory", inventory);
    let mut reservation = common("reservation");
    reservation["payment"] =
        json!({ "base_url": format!("http://{}", via(Link::ReservationPayment)?) });
    reservation["saga"] = options.saga.clone();
    reservation["admission"] = options.admission.clone();
    configs.insert("reservation", reservation);
    configs.insert("analytics", common("analytics"));
    let mut gateway = common("gateway");
    gateway["auth"] = json!({ "secret": secret });
    gateway["upstream"] = json!({
        "reservation_url": format!("http://{}", via(Link::GatewayReservation)?),
        "inventory_url": format!("http://{}", via(Link::GatewayInventory)?),
        "payment_url": format!("http://{}", via(Link::GatewayPayment)?),
    });
    gateway["rate_limit"] =
        json!({ "per_second": options.rate_limit.0, "burst": options.rate_limit.1 });
    configs.insert("gateway", gateway);
    let mut capture = common(services::CAPTURE);
    capture["retention"] = serde_json::to_value(options.capture_retention)?;
    configs.insert(services::CAPTURE, capture);
    Ok(configs)
}

/// One process's settings: its service's, with its own port and, for a replica of several, its
/// own instance id (its consumer-group membership and the owner of its claims).
pub(super) fn for_instance(service: &Value, instance: &Instance, port: u16) -> Value {
    let mut config = service.clone();
    config["http"]["port"] = json!(port);
    if instance.name != instance.service {
        config["instance_id"] = json!(instance.name);
    }
    config
}

/// Writes a child's configuration file and returns its path.
pub(super) fn write_config(
    run_dir: &Path,
    name: &str,
    config: &serde_json::Value,
) -> anyhow::Result<PathBuf> {
    let path = run_dir.join("config").join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(config)?)?;
    Ok(path)
}

/// `scheme://user@host:port/db?x` → (`scheme://user@`, `host:port`, `/db?x`).
pub(super) fn split_host_port(url: &str) -> anyhow::Result<(&str, &str, &str)> {
    let start = url
        .find('@')
        .map(|at| at + 1)
        .or_else(|| url.find("://").map(|s| s + 3))
        .context("a database URL with a host")?;
    let end = url[start..]
        .find('/')
        .map_or(url.len(), |slash| start + slash);
    Ok((&url[..start], &url[start..end], &url[end..]))
}
