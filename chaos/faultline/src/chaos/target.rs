//! The system under test: the embedded stack the runner starts, or a running one (compose) given
//! by a target file. Everything the runner does to the system goes through here, so the
//! client, nemesis and checkers have one code path for both.
//!
//! A target file is `endpoints.json`'s shape (see `crate::endpoints`): the gateway, each
//! service's own address, the broker (its proxy), the Toxiproxy API and the telemetry URLs
//! (`tempo`, `loki`, and `grafana` when there is one). Tokens come from the file or are minted
//! with `$FAULTLINE_JWT_SECRET` (the gateway's secret).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};

use anyhow::Context as _;
use faultline_harness::topic_reader;
use faultline_kit::messaging::headers;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use tokio::sync::Mutex as AsyncMutex;

use crate::{endpoints::Endpoints, stack::Stack};

/// How long a republish fault waits for its copies to reach their consumer.
const REDELIVERY_LIMIT: Duration = Duration::from_secs(30);

/// Where the system runs.
pub enum Backend {
    /// Started (and stopped) by the runner: process faults are SIGKILL and restart.
    Embedded(Box<AsyncMutex<Stack>>),
    /// Running elsewhere (compose): process faults are not available.
    Remote,
}

/// The system under test.
pub struct Target {
    pub endpoints: Endpoints,
    pub backend: Backend,
    /// `user:password` for Grafana's API (annotations, datasource proxy), when Grafana is given.
    pub grafana_auth: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("gateway", &self.endpoints.gateway_url)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A running stack described by `file`.
    pub fn remote(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading target {}", file.display()))?;
        let mut endpoints: Endpoints = serde_json::from_str(&text)
            .with_context(|| format!("target {} is not an endpoints file", file.display()))?;
        if endpoints.tokens.is_empty() {
            let secret = std::env::var("FAULTLINE_JWT_SECRET").context(
                "the target file has no tokens: set FAULTLINE_JWT_SECRET to the gateway's secret",
            )?;
            let tokens =
                gateway::auth::Tokens::new(secret.as_bytes(), Duration::from_secs(24 * 3600));
            for user in crate::seed::Seed::default().users {
                let token = tokens.mint(&user.user_id)?;
                endpoints.tokens.insert(user.user_id, token);
            }
        }
        Ok(Self {
            endpoints,
            backend: Backend::Remote,
            grafana_auth: std::env::var("FAULTLINE_GRAFANA_AUTH").ok(),
        })
    }

    /// Adds `seed`'s wallets (payment) and concerts (inventory) to the running system — what
    /// existed is left as it is — and signs tokens for its users with `$FAULTLINE_JWT_SECRET`
    /// (the gateway's secret). For a tool that needs data of its own on a stack it did not
    /// start (`demo --target`).
    pub async fn add_seed(&mut self, seed: &crate::seed::Seed) -> anyhow::Result<()> {
        let secret = std::env::var("FAULTLINE_JWT_SECRET").context(
            "signing tokens for new users needs the gateway's secret: set FAULTLINE_JWT_SECRET",
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        for (service, path, body) in [
            (
                "payment",
                "/admin/wallets",
                serde_json::to_value(seed.wallets())?,
            ),
            (
                "inventory",
                "/admin/catalogue",
                serde_json::to_value(seed.catalogue())?,
            ),
        ] {
            let url = format!("{}{path}", self.service(service));
            let response = http
                .post(&url)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            if !status.is_success() {
                let detail = response.text().await.unwrap_or_default();
                anyhow::bail!("POST {url} answered {status}: {detail}");
            }
        }
        let tokens = gateway::auth::Tokens::new(secret.as_bytes(), Duration::from_secs(24 * 3600));
        for user in &seed.users {
            let token = tokens.mint(&user.user_id)?;
            self.endpoints.tokens.insert(user.user_id.clone(), token);
        }
        Ok(())
    }

    /// The points payment's wallets were seeded with, all together (`initial_total`).
    pub async fn seeded_points(&self) -> anyhow::Result<i64> {
        let url = format!("{}/admin/summary", self.service("payment"));
        let summary: faultline_contracts::http::PaymentSummary = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("GET {url}: not a payment summary"))?;
        Ok(summary.initial_total)
    }

    pub fn embedded(stack: Stack) -> Self {
        Self {
            endpoints: stack.endpoints().clone(),
            backend: Backend::Embedded(Box::new(AsyncMutex::new(stack))),
            grafana_auth: None,
        }
    }

    /// A stack the runner did not start (it cannot kill its processes).
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote)
    }

    /// `embedded` or `remote`, as run.json records a target.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Remote => "remote",
        }
    }

    pub fn toxiproxy_url(&self) -> anyhow::Result<&str> {
        self.endpoints
            .toxiproxy_url
            .as_deref()
            .context("the target has no toxiproxy_url")
    }

    pub fn service(&self, name: &str) -> &str {
        self.endpoints.service(name)
    }

    pub fn grafana(&self) -> Option<&str> {
        self.endpoints.telemetry.get("grafana").map(String::as_str)
    }

    /// The process of `service` a fault names: the service's only one, or its replica `replica`
    /// (1-based) when it runs several times (embedded only).
    pub async fn instance(&self, service: &str, replica: Option<u32>) -> anyhow::Result<String> {
        let Backend::Embedded(stack) = &self.backend else {
            anyhow::bail!(
                "process faults need the embedded stack (the runner cannot kill a container)"
            )
        };
        let replicas = stack.lock().await.replicas();
        match replica {
            None if replicas > 1 => anyhow::bail!(
                "{service} runs as {replicas} replicas here: say which (replica = 1..={replicas})"
            ),
            Some(replica) if replica == 0 || replica > replicas => {
                anyhow::bail!("{service} has no replica {replica} (it runs {replicas} times)")
            }
            replica => Ok(crate::stack::instance_name(
                service,
                replica.unwrap_or(1),
                replicas,
            )),
        }
    }

    /// SIGKILLs process `instance` (see [`Self::instance`]; embedded only).
    pub async fn kill(&self, instance: &str) -> anyhow::Result<String> {
        match &self.backend {
            Backend::Embedded(stack) => {
                stack.lock().await.kill(instance)?;
                Ok(format!("{instance}: SIGKILL, process gone"))
            }
            Backend::Remote => anyhow::bail!(
                "process faults need the embedded stack (the runner cannot kill a container)"
            ),
        }
    }

    /// Starts process `instance` again and waits until it is ready (embedded only).
    pub async fn restart(&self, instance: &str) -> anyhow::Result<String> {
        match &self.backend {
            Backend::Embedded(stack) => {
                let started = std::time::Instant::now();
                stack.lock().await.restart(instance).await?;
                Ok(format!(
                    "{instance}: restarted, ready after {} ms",
                    started.elapsed().as_millis()
                ))
            }
            Backend::Remote => anyhow::bail!("process faults need the embedded stack"),
        }
    }

    /// Publishes again, byte for byte, the first `count` messages of `topic`.
    pub async fn republish(&self, topic: &str, count: usize) -> anyhow::Result<String> {
        let broker = &self.endpoints.broker;
        let records =
            topic_reader::read_until(broker, topic, Duration::from_secs(10), |r| r.len() >= count)
                .await?;
        anyhow::ensure!(
            !records.is_empty(),
            "{topic} holds no message to publish again yet"
        );
        let mut ids = Vec::new();
        for record in records.iter().take(count) {
            topic_reader::republish(broker, topic, record).await?;
            ids.push(
                record
                    .headers
                    .get(headers::MESSAGE_ID)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        let missing = self.await_redelivery(&ids, REDELIVERY_LIMIT).await;
        let arrived = if missing.is_empty() {
            "; each delivered to its consumer again".to_owned()
        } else {
            format!(
                "; not delivered again within {} s: {}",
                REDELIVERY_LIMIT.as_secs(),
                missing.join(", ")
            )
        };
        Ok(format!(
            "{topic}: published again {} message(s): {}{arrived}",
            ids.len(),
            ids.join(", ")
        ))
    }

    /// Waits until every message of `ids` has reached a consumer a second time (its inbox lists
    /// the message as repeated), or `limit` passes; returns the ids still not seen again. A
    /// republished message only proves deduplication once the consumer has received it, and a
    /// consumer still catching up (after a cut link, a rebalance, a busy machine) can take a
    /// while: without this wait the run could settle — nothing pending anywhere — and be judged
    /// before the copies arrive, leaving exactly-once with nothing to prove.
    async fn await_redelivery(&self, ids: &[String], limit: Duration) -> Vec<String> {
        let started = std::time::Instant::now();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok();
        loop {
            let mut seen = BTreeSet::new();
            for service in crate::chaos::checkers::exactly_once::CONSUMERS {
                let url = format!("{}/admin/inbox", self.service(service));
                let Some(http) = &http else { break };
                let Ok(response) = http.get(url).send().await else {
                    continue;
                };
                let Ok(report) = response
                    .json::<faultline_contracts::http::InboxReport>()
                    .await
                else {
                    continue;
                };
                for consumer in report.consumers {
                    seen.extend(
                        consumer
                            .repeated
                            .into_iter()
                            .filter(|e| e.deliveries > 1)
                            .map(|e| e.message_id),
                    );
                }
            }
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !seen.contains(*id))
                .cloned()
                .collect();
            if missing.is_empty() || started.elapsed() >= limit {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Publishes `count` undecodable messages to `topic` and waits until every one of them is
    /// on the dead-letter topic.
    pub async fn poison(&self, topic: &str, count: usize) -> anyhow::Result<String> {
        let broker = &self.endpoints.broker;
        let producer = faultline_kit::messaging::Producer::new(
            &faultline_kit::config::KafkaSettings::new(broker),
            "faultline-nemesis",
        )?;
        let mut ids = BTreeSet::new();
        for i in 0..count {
            let id = format!("poison-{}", uuid::Uuid::new_v4());
            let headers: BTreeMap<String, String> = [
                (headers::MESSAGE_ID.to_owned(), id.clone()),
                (headers::EVENT_TYPE.to_owned(), "NotAThing".to_owned()),
            ]
            .into();
            producer
                .send(
                    topic,
                    &format!("poison-{i}"),
                    b"{ this is not json",
                    &headers,
                )
                .await?;
            ids.insert(id);
        }
        let dead = topic_reader::read_until(
            broker,
            faultline_contracts::topics::DEAD_LETTER,
            Duration::from_secs(30),
            |records| {
                let seen: BTreeSet<&str> = records
                    .iter()
                    .filter_map(|r| r.headers.get(headers::MESSAGE_ID).map(String::as_str))
                    .collect();
                ids.iter().all(|id| seen.contains(id.as_str()))
            },
        )
        .await?;
        let seen: BTreeSet<String> = dead
            .iter()
            .filter_map(|r| r.headers.get(headers::MESSAGE_ID).cloned())
            .collect();
        let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "published {count} poison message(s) to {topic}; not dead-lettered within 30 s: {missing:?}"
        );
        Ok(format!(
            "{topic}: {count} poison message(s) published, all dead-lettered: {}",
            ids.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }

    /// The broker address the broker advertises (read from its metadata through `broker`).
    pub async fn advertised_broker(&self) -> anyhow::Result<String> {
        let broker = self.endpoints.broker.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &broker)
                .set("broker.address.family", "v4")
                .create()?;
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
            let brokers: Vec<String> = metadata
                .brokers()
                .iter()
                .map(|b| format!("{}:{}", b.host(), b.port()))
                .collect();
            anyhow::ensure!(
                brokers.len() == 1,
                "expected one broker, metadata lists {brokers:?}"
            );
            Ok(brokers[0].clone())
        })
        .await?
    }

    /// Stops the embedded stack (nothing for a remote one).
    pub async fn stop(&self) {
        if let Backend::Embedded(stack) = &self.backend {
            stack.lock().await.stop(Duration::from_secs(5));
        }
    }
}
