//! Starts the embedded parts of a Faultline system, for the tests and the launcher.
//!
//! - [`broker`]: the in-memory Kafka-protocol broker (`faultline-broker`) on a free port, with
//!   every topic created.
//! - [`invariants`]: invariants 1–3 of the product contract, judged from the services' admin
//!   endpoints (shared by the tests and the launcher).
//! - [`postgres`]: creates fresh PostgreSQL databases; fails loudly when PostgreSQL is absent.
//! - [`toxiproxy`]: the embedded Toxiproxy server in-process, for tests that break a link
//!   between two services with the chaos runner's own proxy and toxics.
//! - [`topic_reader`]: reads back what was really published to a topic.
//! - [`running`]: [`Running`], a service application spawned in-process, stopped on drop.
//! - [`wait`]: `eventually`, the one poll loop tests wait on a condition with.
//! - [`free_port`]: a free TCP port on 127.0.0.1.

pub mod broker;
pub mod invariants;
pub mod postgres;
pub mod running;
pub mod topic_reader;
pub mod toxiproxy;
pub mod wait;

pub use running::Running;

/// A TCP port of 127.0.0.1 that was free a moment ago, for a process to bind later (a test's
/// server, or a child of the embedded stack); never the same one twice in one process.
///
/// Picked at random below Linux's ephemeral range (32768–60999 by default), where the kernel
/// takes the local ports of outgoing connections and of binds to port 0: a port from there
/// (what binding `:0` gives) can be taken by any connection opened before the child binds it,
/// and the next bind to `:0` may hand it out again — the native-stack test once saw its gateway
/// fail with "Address already in use".
pub fn free_port() -> std::io::Result<u16> {
    use std::{collections::BTreeSet, sync::Mutex};
    const BELOW_EPHEMERAL: std::ops::Range<u16> = 20_000..32_768;
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let span = u128::from(BELOW_EPHEMERAL.end - BELOW_EPHEMERAL.start);
    for _ in 0..256 {
        let offset = (uuid::Uuid::new_v4().as_u128() % span) as u16;
        let port = BELOW_EPHEMERAL.start + offset;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    // Every try taken (a crowded machine): whatever the kernel gives, still never twice.
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if given.insert(port) {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50)
            .map(|_| super::free_port().expect("a free port"))
            .collect();
        let distinct: std::collections::BTreeSet<&u16> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        assert!(
            ports.iter().all(|p| (20_000..32_768).contains(p)),
            "{ports:?}"
        );
        for port in ports {
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
        }
    }
}

/// The common settings of a service under test: listening on a free port of 127.0.0.1, with the
/// given database and broker.
pub fn service_settings(
    service: &str,
    database_url: Option<String>,
    kafka: Option<faultline_kit::config::KafkaSettings>,
) -> faultline_kit::config::CommonSettings {
    faultline_kit::config::CommonSettings {
        service_name: service.into(),
        instance_id: None,
        http: faultline_kit::config::HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            body_limit_bytes: 64 * 1024,
        },
        database: database_url.map(faultline_kit::config::DatabaseSettings::new),
        kafka,
    }
}

/// Which database backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database URL for `service`: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn database_url(
    backend: Backend,
    dir: &std::path::Path,
    service: &str,
) -> anyhow::Result<String> {
    match backend {
        Backend::Sqlite => Ok(format!("sqlite://{}/{service}.db", dir.display())),
        Backend::Postgres => postgres::fresh_database(service).await,
    }
}

/// Installs a console subscriber for a test binary when `TEST_LOG` is set (once per process).
pub fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        faultline_kit::telemetry::install_propagator();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = faultline_kit::telemetry::init("test");
        }
    });
}

/// Declares `mod NAME { sqlite, postgres }` tests calling `NAME(Backend)`. The PostgreSQL
/// variant fails (never skips) when PostgreSQL is unreachable.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}
