//! The embedded stack: the Kafka-protocol broker and the five services as child processes, each with its
//! own database and configuration file in a run directory.
//!
//! ```text
//! RUN_DIR/
//!   endpoints.json        where everything is (see crate::endpoints)
//!   config/<service>.json the exact settings each service was started with
//!   data/<service>.db     each service's SQLite database (unless --postgres)
//!   logs/<service>.log    each service's output
//! ```
//!
//! The first child is the embedded Toxiproxy (`faultline_toxiproxy`): every link that crosses
//! the network goes through one of its proxies, named as in `deploy/toxiproxy/` — `kafka` (the
//! broker advertises the proxy's address, so no client bypasses it), `gateway-reservation`,
//! `gateway-inventory`, `gateway-payment`, `reservation-payment`, and `<service>-postgres` when
//! PostgreSQL is used. The next is the telemetry capture (`faultline_capture`): every service
//! exports its spans (OTLP/HTTP) and log lines (Loki push) to it, as it would to Tempo and Loki.
//!
//! With `replicas` > 1 each of the five services runs as that many processes (`reservation-1`,
//! `reservation-2`, …), each with its own port, configuration, log and instance id (its static
//! consumer-group membership and the owner of its claims), sharing the service's database (one
//! SQLite file, or one PostgreSQL database) and the broker. A link to a replicated service is
//! still one proxy, whose upstream lists every replica: each new connection goes to the next,
//! skipping one that refuses (as Docker's DNS spreads a compose service's name), so a fault on
//! the link hits every replica and a killed replica's share moves to the others.
//!
//! Children are this binary (`faultline service <name>`). Stopping sends SIGTERM to every
//! service (gateway first, so no new work arrives), waits for each to drain, SIGKILLs whatever
//! did not stop, then stops the broker: no process is left behind and no port stays bound.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::Duration,
};

use anyhow::Context as _;
use faultline_contracts::topology::{self, Callee, Link};
use serde_json::json;

mod configs;
mod process;
mod proxies;

use configs::{split_host_port, write_config};
pub use process::tail;
use process::{Service, spawn_child, stop_child, wait_until_listening, wait_until_ready};

use crate::{endpoints::Endpoints, seed::Seed, services};

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub run_dir: PathBuf,
    /// A PostgreSQL server (admin URL); each service gets a fresh database on it. SQLite files in
    /// the run directory otherwise.
    pub postgres: Option<String>,
    pub seed: Seed,
    /// Gateway rate limit per user: sustained per second, burst.
    pub rate_limit: (u32, u32),
    /// Log filter for the services (`RUST_LOG` syntax).
    pub service_log: String,
    /// Overrides of reservation's `saga` settings (e.g. `{"charge_deadline_ms": 1500}`).
    pub saga: serde_json::Value,
    /// Overrides of reservation's `admission` settings (e.g. `{"max_in_flight": 200}`).
    pub admission: serde_json::Value,
    /// How long the services' span exporter batches before sending (`OTEL_BSP_SCHEDULE_DELAY`).
    pub span_batch_delay_ms: u64,
    /// Merged into every service's `kafka` settings (e.g. `{"idempotent_producer": false}`).
    pub kafka: serde_json::Value,
    /// Extra environment for every service process.
    pub env: Vec<(String, String)>,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Whether the services export spans and log lines to the capture. Off, they export
    /// nothing (the bench measures what telemetry costs by running the same load both ways).
    pub telemetry: bool,
    /// How much the capture keeps (a chaos run sizes it so that no span of its workload is
    /// evicted before the checkers read it).
    pub capture_retention: faultline_capture::store::Retention,
    /// Processes per service (the five services; the capture, broker and proxy run once).
    pub replicas: u32,
}

impl StackOptions {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: run_dir.into(),
            postgres: None,
            seed: Seed::default(),
            rate_limit: (50, 100),
            service_log: "info".into(),
            saga: json!({}),
            admission: json!({}),
            span_batch_delay_ms: 200,
            kafka: json!({}),
            env: Vec::new(),
            partitions: 4,
            telemetry: true,
            capture_retention: faultline_capture::store::Retention::default(),
            replicas: 1,
        }
    }
}

/// One process of a service in the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service it runs.
    pub service: &'static str,
    /// 1-based.
    pub replica: u32,
    /// Its name in the stack (logs, configs, endpoints, faults) and its instance id: the
    /// service's name when it runs once, `<service>-<replica>` when it runs several times.
    pub name: String,
}

impl Instance {
    /// The processes of `service` when it runs `replicas` times.
    pub fn all(service: &'static str, replicas: u32) -> Vec<Self> {
        (1..=replicas.max(1))
            .map(|replica| Self {
                service,
                replica,
                name: instance_name(service, replica, replicas),
            })
            .collect()
    }
}

/// The stack's name of replica `replica` (1-based) of `service` running `replicas` times.
pub fn instance_name(service: &str, replica: u32, replicas: u32) -> String {
    if replicas <= 1 {
        service.to_owned()
    } else {
        replica_name(service, replica)
    }
}

/// The name of replica `replica` (1-based) of a service that runs several times.
pub fn replica_name(service: &str, replica: u32) -> String {
    format!("{service}-{replica}")
}

/// A running stack; stopped (hard) when dropped.
#[derive(Debug)]
pub struct Stack {
    exe: PathBuf,
    run_dir: PathBuf,
    /// Every process by its instance name.
    services: BTreeMap<String, Service>,
    replicas: u32,
    endpoints: Endpoints,
    service_log: String,
    span_batch_delay_ms: u64,
    env: Vec<(String, String)>,
    telemetry: bool,
}

/// Files a run directory may contain: anything else means it is not ours to wipe.
const RUN_DIR_ENTRIES: [&str; 5] = ["endpoints.json", "broker", "config", "data", "logs"];
// "broker" stays in the list so run directories of older versions (the earlier broker's storage)
// are still wiped.

fn prepare_run_dir(run_dir: &Path) -> anyhow::Result<()> {
    if run_dir.exists() {
        for entry in std::fs::read_dir(run_dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            anyhow::ensure!(
                RUN_DIR_ENTRIES.contains(&name.as_ref()),
                "{} holds {name:?}, which a faultline run did not write; refusing to wipe it (pick another --run-dir)",
                run_dir.display()
            );
        }
        for name in RUN_DIR_ENTRIES {
            let path = run_dir.join(name);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else if path.exists() {
                std::fs::remove_file(&path)?;
            }
        }
    }
    for dir in ["config", "data", "logs"] {
        std::fs::create_dir_all(run_dir.join(dir))?;
    }
    Ok(())
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Stack {
    /// Starts everything and waits until every service is ready. `exe` is the faultline binary
    /// the services run from.
    ///
    /// Ports are picked free and handed to the children, so another process can take one in
    /// between (tests run stacks side by side): a start that fails on a port already in use is
    /// tried once more, on fresh ports.
    pub async fn start(exe: &Path, options: StackOptions) -> anyhow::Result<Self> {
        match Self::start_once(exe, options.clone()).await {
            Err(error) if format!("{error:#}").contains("Address already in use") => {
                tracing::warn!(error = %format!("{error:#}"), "a port was taken during start-up; starting again on fresh ports");
                Self::start_once(exe, options).await
            }
            started => started,
        }
    }

    async fn start_once(exe: &Path, options: StackOptions) -> anyhow::Result<Self> {
        let run_dir = std::path::absolute(&options.run_dir)?;
        prepare_run_dir(&run_dir)?;
        let replicas = options.replicas.max(1);
        let instances: Vec<Instance> = services::ALL
            .into_iter()
            .flat_map(|name| match name {
                services::CAPTURE => Instance::all(name, 1),
                _ => Instance::all(name, replicas),
            })
            .collect();
        let mut ports = BTreeMap::new();
        for instance in &instances {
            ports.insert(instance.name.clone(), faultline_harness::free_port()?);
        }
        let url = |name: &str| format!("http://127.0.0.1:{}", ports[name]);
        // Every replica of a service, as one proxy upstream (see the module's header).
        let upstream = |service: &str| {
            instances_of(&instances, service)
                .iter()
                .map(|instance| format!("127.0.0.1:{}", ports[&instance.name]))
                .collect::<Vec<_>>()
                .join(",")
        };

        // The proxy first: the broker advertises its `kafka` proxy, and every link is a proxy.
        let (proxy_service, toxiproxy, toxiproxy_url) =
            proxies::start(exe, &run_dir, &options.service_log).await?;

        let broker_port = faultline_harness::free_port()?;
        // Every link but the database ones (added with the databases) goes to a child.
        let mut links: Vec<(Link, String)> = Link::of_stack(false)
            .map(|link| {
                let upstream = match link.callee() {
                    Callee::Service(service) => upstream(service.name()),
                    Callee::Broker | Callee::Database => format!("127.0.0.1:{broker_port}"),
                };
                (link, upstream)
            })
            .collect();
        let mut databases = BTreeMap::new();
        for service in topology::Service::WITH_DATABASE {
            let name = service.name();
            let database = match &options.postgres {
                Some(server) => {
                    let url = faultline_harness::postgres::fresh_database_on(server, name).await?;
                    let (before, host_port, after) = split_host_port(&url)?;
                    links.push((Link::Postgres(service), host_port.to_owned()));
                    // Rewritten below once the proxy's port is known.
                    (before.to_owned(), after.to_owned())
                }
                None => (
                    format!(
                        "sqlite://{}",
                        run_dir.join("data").join(format!("{name}.db")).display()
                    ),
                    String::new(),
                ),
            };
            databases.insert(service, database);
        }
        let listeners = proxies::create(&toxiproxy, &links).await?;
        let via = |link: Link| listeners.via(link);
        let databases: BTreeMap<&str, String> = databases
            .into_iter()
            .map(|(service, (before, after))| {
                if options.postgres.is_some() {
                    Ok((
                        service.name(),
                        format!("{before}{}{after}", via(Link::Postgres(service))?),
                    ))
                } else {
                    Ok((service.name(), before))
                }
            })
            .collect::<anyhow::Result<_>>()?;
        let kafka_proxy = via(Link::Kafka)?;
        // The broker (`faultline-broker`, in memory) is a child like the services, so it can be
        // paused, killed and measured; it advertises its `kafka` proxy.
        let broker_config = write_config(
            &run_dir,
            services::BROKER,
            &json!({ "service_name": services::BROKER,
                     "http": { "host": "127.0.0.1", "port": broker_port },
                     "advertised": kafka_proxy,
                     "partitions": options.partitions }),
        )?;
        let broker_log = run_dir.join("logs").join("broker.log");
        let mut broker = Service {
            runs: services::BROKER,
            child: spawn_child(
                exe,
                services::BROKER,
                &broker_config,
                &broker_log,
                &options.service_log,
                &[],
            )?,
            url: format!("127.0.0.1:{broker_port}"),
            config: broker_config,
            log: broker_log,
        };
        wait_until_listening(services::BROKER, &mut broker, Duration::from_secs(30)).await?;

        let secret = random_secret();
        let configs = configs::children(&options, &databases, &listeners, &secret)?;

        let capture_url = url(services::CAPTURE);
        let mut stack = Self {
            exe: exe.to_path_buf(),
            run_dir: run_dir.clone(),
            services: BTreeMap::new(),
            endpoints: Endpoints {
                gateway_url: url(&instance_name("gateway", 1, replicas)),
                broker: kafka_proxy.clone(),
                // A replicated service's own address is its first replica's (all share one
                // database, so any answers the checkers' reads).
                services: services::ALL
                    .iter()
                    .map(|n| ((*n).to_owned(), url(&instances_of(&instances, n)[0].name)))
                    .collect(),
                replicas: services::ALL
                    .iter()
                    .filter(|n| **n != services::CAPTURE)
                    .map(|n| {
                        let urls = instances_of(&instances, n)
                            .iter()
                            .map(|i| (i.name.clone(), url(&i.name)))
                            .collect();
                        ((*n).to_owned(), urls)
                    })
                    .collect(),
                toxiproxy_url: Some(toxiproxy_url.clone()),
                telemetry: [
                    ("tempo".to_owned(), capture_url.clone()),
                    ("loki".to_owned(), capture_url.clone()),
                    (
                        "viewer".to_owned(),
                        format!("{capture_url}{}", faultline_capture::ui::HOME),
                    ),
                ]
                .into(),
                database: if options.postgres.is_some() {
                    "postgres".into()
                } else {
                    "sqlite".into()
                },
                tokens: BTreeMap::new(),
                launcher_pid: std::process::id(),
            },
            service_log: options.service_log.clone(),
            span_batch_delay_ms: options.span_batch_delay_ms,
            env: options.env.clone(),
            telemetry: options.telemetry,
            replicas,
        };
        stack
            .services
            .insert(services::TOXIPROXY.to_owned(), proxy_service);
        stack.services.insert(services::BROKER.to_owned(), broker);
        // First replicas first: a service's first process migrates its database before any
        // other opens it (SQLite has no migration lock), then the other replicas join.
        for first in [true, false] {
            let round: Vec<&Instance> = instances
                .iter()
                .filter(|instance| (instance.replica == 1) == first)
                .collect();
            for instance in &round {
                let config = configs::for_instance(
                    &configs[instance.service],
                    instance,
                    ports[&instance.name],
                );
                let config_path = write_config(&run_dir, &instance.name, &config)?;
                let log = run_dir.join("logs").join(format!("{}.log", instance.name));
                let child = stack.spawn(instance.service, &config_path, &log)?;
                stack.services.insert(
                    instance.name.clone(),
                    Service {
                        runs: instance.service,
                        child,
                        url: url(&instance.name),
                        config: config_path,
                        log,
                    },
                );
                if instance.service == services::CAPTURE {
                    stack
                        .wait_ready(&instance.name, Duration::from_secs(30))
                        .await?;
                }
            }
            for instance in round {
                stack
                    .wait_ready(&instance.name, Duration::from_secs(60))
                    .await?;
            }
        }
        let tokens =
            gateway::auth::Tokens::new(secret.as_bytes(), Duration::from_secs(7 * 24 * 3600));
        for user in &options.seed.users {
            stack
                .endpoints
                .tokens
                .insert(user.user_id.clone(), tokens.mint(&user.user_id)?);
        }
        stack.endpoints.write(&run_dir)?;
        Ok(stack)
    }

    /// Starts a process running `name` (a service, or the capture).
    fn spawn(&self, name: &str, config: &Path, log: &Path) -> anyhow::Result<Child> {
        let mut env = self.env.clone();
        if name != services::CAPTURE && self.telemetry {
            // Services export to the capture exactly as they would to Tempo and Loki; a short
            // batch delay makes a finished booking's spans queryable within a fraction of a second.
            let capture = self
                .endpoints
                .telemetry
                .get("tempo")
                .cloned()
                .unwrap_or_default();
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), capture.clone()));
            env.push((
                "OTEL_BSP_SCHEDULE_DELAY".into(),
                self.span_batch_delay_ms.to_string(),
            ));
            env.push(("FAULTLINE_LOKI_URL".into(), capture));
        }
        spawn_child(&self.exe, name, config, log, &self.service_log, &env)
    }

    async fn wait_ready(&mut self, name: &str, limit: Duration) -> anyhow::Result<()> {
        let service = self.services.get_mut(name).context("unknown service")?;
        wait_until_ready(name, service, "/ready", limit).await
    }

    /// The Toxiproxy API of this stack.
    pub fn toxiproxy_url(&self) -> &str {
        self.endpoints.toxiproxy_url.as_deref().unwrap_or_default()
    }

    /// The broker's process id (to pause it, or to measure it).
    pub fn broker_pid(&self) -> u32 {
        self.services
            .get(services::BROKER)
            .map_or(0, |broker| broker.child.id())
    }

    /// Process ids of the stack's processes (services, proxy, broker) for measurements.
    pub fn pids(&self) -> Vec<u32> {
        self.services.values().map(|s| s.child.id()).collect()
    }
}

/// The instances of `service` among `instances`, first replica first.
fn instances_of<'i>(instances: &'i [Instance], service: &str) -> Vec<&'i Instance> {
    instances.iter().filter(|i| i.service == service).collect()
}

impl Stack {
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Processes that exited on their own, with their status.
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        self.services
            .iter_mut()
            .filter_map(|(name, service)| {
                service
                    .child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|status| (name.clone(), status))
            })
            .collect()
    }

    /// Processes per service.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// The process `name` (an instance name: `reservation`, or `reservation-2` of several).
    fn process(&mut self, name: &str) -> anyhow::Result<&mut Service> {
        let known: Vec<String> = self.services.keys().cloned().collect();
        self.services
            .get_mut(name)
            .with_context(|| format!("no process {name:?} in this stack (one of {known:?})"))
    }

    /// SIGKILLs one process (for crash tests and the chaos runner).
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let service = self.process(name)?;
        service.child.kill()?;
        service.child.wait()?;
        Ok(())
    }

    /// Starts a stopped process again with the same configuration, and waits until it is ready.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let (runs, config, log) = {
            let service = self.process(name)?;
            (service.runs, service.config.clone(), service.log.clone())
        };
        let child = self.spawn(runs, &config, &log)?;
        if let Some(service) = self.services.get_mut(name) {
            service.child = child;
        }
        self.wait_ready(name, Duration::from_secs(60)).await
    }

    /// Stops one process gracefully (SIGTERM, then SIGKILL after `grace`).
    pub fn stop_service(&mut self, name: &str, grace: Duration) -> anyhow::Result<()> {
        let service = self.process(name)?;
        stop_child(name, &mut service.child, grace);
        Ok(())
    }

    /// Stops every service gracefully (SIGTERM, then SIGKILL after `grace`; every replica of the
    /// gateway first, so no new work arrives), then the broker.
    pub fn stop(&mut self, grace: Duration) {
        for name in services::ALL.iter().rev() {
            for (instance, service) in &mut self.services {
                if service.runs == *name {
                    stop_child(instance, &mut service.child, grace);
                }
            }
        }
        if let Some(broker) = self.services.get_mut(services::BROKER) {
            stop_child(services::BROKER, &mut broker.child, grace);
        }
        if let Some(proxy) = self.services.get_mut(services::TOXIPROXY) {
            stop_child(services::TOXIPROXY, &mut proxy.child, grace);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (name, service) in &mut self.services {
            stop_child(name, &mut service.child, Duration::from_millis(0));
        }
    }
}
