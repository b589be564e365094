//! Layered settings: built-in defaults → an optional TOML file → `FAULTLINE__…` environment
//! variables (double underscore separates sections: `FAULTLINE__DATABASE__URL`).
//!
//! Every service's settings embed [`CommonSettings`] under the same keys, so one environment
//! layout configures all five.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Sections every service has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommonSettings {
    /// The service's name, used for the consumer group, the Kafka client id and telemetry.
    pub service_name: String,
    /// This process's identity, stable across restarts: its static consumer-group membership
    /// (`group.instance.id`, so a restarted process gets its partitions back at once instead of
    /// waiting for its dead incarnation's session to expire) and the owner of its outbox and saga
    /// claims (so a restarted process takes its dead incarnation's
    /// claims back at once). Defaults to the service name: one instance per service. Give each
    /// replica its own: `{hostname}` in it is replaced by the host's name (a container's id in
    /// Docker Compose, where replicas share one environment; the pod's name in Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub http: HttpSettings,
    /// Absent for services that keep no state (gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSettings>,
    /// Absent for services that never touch Kafka (payment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSettings>,
}

impl CommonSettings {
    /// See [`CommonSettings::instance_id`] (the field), with `{hostname}` replaced.
    pub fn instance_id(&self) -> String {
        match &self.instance_id {
            Some(id) if id.contains(HOSTNAME_PLACEHOLDER) => {
                id.replace(HOSTNAME_PLACEHOLDER, &hostname())
            }
            Some(id) => id.clone(),
            None => self.service_name.clone(),
        }
    }

    /// The database section, required by services that keep state.
    pub fn database(&self) -> anyhow::Result<&DatabaseSettings> {
        self.database
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{}: database.url is not configured", self.service_name))
    }

    /// The Kafka section, required by services that produce or consume.
    pub fn kafka(&self) -> anyhow::Result<&KafkaSettings> {
        self.kafka.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: kafka.bootstrap_servers is not configured",
                self.service_name
            )
        })
    }
}

/// Writes a secret in clear: for a launcher writing a child process's own configuration file
/// (the only place settings are serialized), never for logs or answers.
pub fn expose_secret<S: serde::Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// Replaced by [`hostname`] in an instance id.
pub const HOSTNAME_PLACEHOLDER: &str = "{hostname}";

/// The host's name: the kernel's (a container's own in Docker), else `$HOSTNAME`. Read from
/// procfs rather than through a crate: one file read, and the kit runs on Linux only.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Where the HTTP server listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Request bodies above this are answered 413.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
}

impl HttpSettings {
    /// The request body limit when none is configured.
    pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
}

fn default_body_limit() -> usize {
    HttpSettings::DEFAULT_BODY_LIMIT
}

/// The service's own database. Never another service's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user@host:port/db`. Secret: it may hold a password.
    #[serde(serialize_with = "expose_secret")]
    pub url: SecretString,
    /// Pool size for PostgreSQL. SQLite always uses one connection (see `storage`).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    10
}

impl DatabaseSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: default_max_connections(),
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        let url = self.url.expose_secret();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let credentials = &url[scheme + 3..at];
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
            }
            _ => url.to_owned(),
        }
    }
}

/// How to reach the broker and how this service uses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaSettings {
    /// `host:port` list. Use 127.0.0.1, not localhost, for the embedded broker (IPv4 only).
    pub bootstrap_servers: String,
    /// librdkafka's `enable.idempotence` for the producer. On by default; the chaos runner turns
    /// it off to make lost acknowledgements produce real duplicates.
    #[serde(default = "yes")]
    pub idempotent_producer: bool,
    /// How long a produce may wait for the broker's acknowledgement.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// librdkafka's `fetch.wait.max.ms`: how long a fetch may wait at the broker for data. The
    /// embedded broker (like Kafka) answers a waiting fetch as soon as a produce appends, so a
    /// long wait costs no latency and keeps an idle consumer from polling: 500 ms is two fetches a
    /// second per consumer. (tansu, the earlier embedded broker, slept the whole wait instead and
    /// needed 10 ms here — at ~70 % of a core while idle.)
    #[serde(default = "default_fetch_wait_max_ms")]
    pub fetch_wait_max_ms: u64,
    /// librdkafka's `session.timeout.ms` for consumers.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How often a consumer commits the offsets of the messages it finished (librdkafka's
    /// `auto.commit.interval.ms` over explicitly stored offsets): one commit request per interval
    /// instead of one per message.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// librdkafka's `linger.ms` for the producer: how long a produce waits to share its request
    /// with others.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Extra librdkafka properties, applied last (e.g. `request.timeout.ms`).
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn default_message_timeout_ms() -> u64 {
    30_000
}
fn default_fetch_wait_max_ms() -> u64 {
    500
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_commit_interval_ms() -> u64 {
    200
}
fn default_linger_ms() -> u64 {
    1
}

impl KafkaSettings {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            idempotent_producer: true,
            message_timeout_ms: default_message_timeout_ms(),
            fetch_wait_max_ms: default_fetch_wait_max_ms(),
            session_timeout_ms: default_session_timeout_ms(),
            commit_interval_ms: default_commit_interval_ms(),
            linger_ms: default_linger_ms(),
            extra: Default::default(),
        }
    }
}

/// Loads `T` from the optional file at `$FAULTLINE_CONFIG` (or `file` when given), then from
/// `FAULTLINE__…` environment variables.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    let from_env = std::env::var_os("FAULTLINE_CONFIG").map(std::path::PathBuf::from);
    if let Some(path) = file.map(Path::to_path_buf).or(from_env) {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("FAULTLINE")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    let settings = builder.build()?.try_deserialize()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_the_log_form_of_a_url() {
        let db = DatabaseSettings::new("postgres://app:hunter2@db:5432/payment");
        assert_eq!(db.redacted_url(), "postgres://app:***@db:5432/payment");
        assert!(!format!("{db:?}").contains("hunter2"));
    }

    #[test]
    fn an_instance_id_takes_the_host_name_where_it_asks_for_it() {
        let common = |id: Option<&str>| CommonSettings {
            service_name: "reservation".into(),
            instance_id: id.map(str::to_owned),
            http: HttpSettings {
                host: "127.0.0.1".into(),
                port: 0,
                body_limit_bytes: 1,
            },
            database: None,
            kafka: None,
        };
        assert_eq!(common(None).instance_id(), "reservation");
        assert_eq!(common(Some("reservation-2")).instance_id(), "reservation-2");
        let derived = common(Some("reservation-{hostname}")).instance_id();
        assert_eq!(derived, format!("reservation-{}", hostname()));
        assert!(!derived.contains('{') && derived.len() > "reservation-".len());
    }

    #[test]
    fn a_sqlite_url_is_shown_as_is() {
        let db = DatabaseSettings::new("sqlite://run/payment.db");
        assert_eq!(db.redacted_url(), "sqlite://run/payment.db");
    }
}
