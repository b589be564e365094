//! The children's configuration files: the settings each service, the capture, the broker and
//! the proxy start with, written as JSON into the run directory. A service's and the capture's
//! are their own `Settings` types, serialized.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use faultline_contracts::topology::Link;
use serde_json::{Value, json};

use super::{Instance, StackOptions, proxies::Listeners};
use crate::services;

/// The settings of the capture and the five services, built from each one's own `Settings`
/// type (so a field a service does not read cannot be written): each reaches the broker, its
/// database and the services it calls through their proxies, and exports to the capture;
/// payment and inventory carry the seed, the gateway the tokens' secret. `options.kafka`,
/// `options.saga` and `options.admission` are a scenario's or the bench's overrides, read into
/// the typed sections over their defaults (a value of the wrong type is an error). The port
/// (and, for a replica of several, the instance id) is each process's own: see
/// [`for_instance`].
pub(super) fn children(
    options: &StackOptions,
    databases: &BTreeMap<&str, String>,
    listeners: &Listeners,
    secret: &str,
) -> anyhow::Result<BTreeMap<&'static str, Value>> {
    use faultline_kit::config::{CommonSettings, DatabaseSettings, HttpSettings, KafkaSettings};
    let mut kafka = json!({ "bootstrap_servers": listeners.via(Link::Kafka)? });
    if let (Some(kafka), Some(overrides)) = (kafka.as_object_mut(), options.kafka.as_object()) {
        kafka.extend(overrides.clone());
    }
    let kafka: KafkaSettings = serde_json::from_value(kafka).context("the kafka overrides")?;
    let common = |name: &str| CommonSettings {
        service_name: name.to_owned(),
        instance_id: None,
        http: HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            body_limit_bytes: HttpSettings::DEFAULT_BODY_LIMIT,
        },
        database: databases.get(name).map(DatabaseSettings::new),
        kafka: Some(kafka.clone()),
    };
    let url =
        |link: Link| -> anyhow::Result<String> { Ok(format!("http://{}", listeners.via(link)?)) };
    let mut reservation = reservation::configuration::Settings::new(
        common("reservation"),
        reservation::configuration::PaymentSettings::new(url(Link::ReservationPayment)?),
    );
    reservation.saga =
        serde_json::from_value(options.saga.clone()).context("the saga overrides")?;
    reservation.admission =
        serde_json::from_value(options.admission.clone()).context("the admission overrides")?;
    let gateway = gateway::configuration::Settings {
        common: common("gateway"),
        auth: gateway::configuration::AuthSettings::new(secret),
        upstream: gateway::configuration::UpstreamSettings {
            reservation_url: url(Link::GatewayReservation)?,
            inventory_url: url(Link::GatewayInventory)?,
            payment_url: url(Link::GatewayPayment)?,
            client: Default::default(),
        },
        rate_limit: gateway::configuration::RateLimitSettings {
            per_second: options.rate_limit.0,
            burst: options.rate_limit.1,
        },
    };
    let configs = [
        (
            "payment",
            serde_json::to_value(payment::configuration::Settings::new(
                common("payment"),
                options.seed.wallets(),
            ))?,
        ),
        (
            "inventory",
            serde_json::to_value(inventory::configuration::Settings {
                common: common("inventory"),
                seed: options.seed.catalogue(),
            })?,
        ),
        ("reservation", serde_json::to_value(reservation)?),
        (
            "analytics",
            serde_json::to_value(analytics::configuration::Settings {
                common: common("analytics"),
            })?,
        ),
        ("gateway", serde_json::to_value(gateway)?),
        (
            services::CAPTURE,
            serde_json::to_value(services::CaptureSettings {
                common: common(services::CAPTURE),
                retention: options.capture_retention,
            })?,
        ),
    ];
    Ok(configs.into_iter().collect())
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
