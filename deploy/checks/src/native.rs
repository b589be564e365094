//! A service's compose environment, rewritten for a run outside Docker.
//!
//! Issue 6 asks that only the images and networks be compose-specific. The native test proves
//! it by taking each service's `environment:` from the compose file as it is and changing only
//! what a network of containers provides: `host:port` addresses become the local stand-ins'
//! (every address must have one, or the rewrite fails), the listening address becomes
//! loopback, each database name becomes a fresh test database, and `$FAULTLINE_CONFIG` becomes
//! the repository file the compose file mounts there, and the `{hostname}` of the instance id
//! becomes a name of the native process (`native-<its port>`), as the kit would make it the
//! container's id: one per process, as one per replica. Every other variable passes unchanged.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{
    compose::Compose,
    compose_checks::mount_source,
    replicas::{HOSTNAME, INSTANCE_ID},
    topology::ADDRESS,
};

/// Where compose addresses and names live natively.
#[derive(Debug, Clone, Default)]
pub struct NativeMap {
    /// `(compose host, port)` → local `host:port`.
    pub addresses: BTreeMap<(String, u16), String>,
    /// Compose database name → the test's database name.
    pub databases: BTreeMap<String, String>,
}

impl NativeMap {
    pub fn address(&mut self, host: &str, port: u16, local: impl Into<String>) -> &mut Self {
        self.addresses.insert((host.to_owned(), port), local.into());
        self
    }
}

/// `service`'s compose environment (variables at their defaults) rewritten through `map`.
/// `root` is the directory the compose file's relative bind mounts start from.
pub fn environment(
    compose: &Compose,
    service: &str,
    map: &NativeMap,
    root: &Path,
) -> anyhow::Result<BTreeMap<String, String>> {
    let compose_env = compose.environment(service)?;
    let own_port: Option<u16> = compose_env
        .get("FAULTLINE__HTTP__PORT")
        .and_then(|p| p.parse().ok());
    let native_port = || -> anyhow::Result<String> {
        let port =
            own_port.ok_or_else(|| anyhow::anyhow!("{service}: no FAULTLINE__HTTP__PORT"))?;
        let local = map
            .addresses
            .get(&(service.to_owned(), port))
            .ok_or_else(|| anyhow::anyhow!("{service}:{port} has no native address"))?;
        Ok(local
            .rsplit_once(':')
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default())
    };
    let mut env = BTreeMap::new();
    for (key, value) in compose_env {
        let native = match key.as_str() {
            "FAULTLINE_CONFIG" => {
                let source = mount_source(compose, service, &value)
                    .ok_or_else(|| anyhow::anyhow!("{service}: {value} is not mounted"))?;
                host_path(root, &source).display().to_string()
            }
            // Containers bind every interface of their own network namespace; natively the
            // service stays on loopback.
            "FAULTLINE__HTTP__HOST" => "127.0.0.1".to_owned(),
            "FAULTLINE__HTTP__PORT" => native_port()?,
            // Compose leaves `{hostname}` to the kit (the container's id). Natively the test
            // names each process itself — by its own port, distinct per process — so the
            // variable works whether or not the kit it runs knows the placeholder.
            INSTANCE_ID => value.replace(HOSTNAME, &format!("native-{}", native_port()?)),
            _ => rewrite_value(&value, map).map_err(|e| anyhow::anyhow!("{service} {key}: {e}"))?,
        };
        env.insert(key, native);
    }
    Ok(env)
}

fn host_path(root: &Path, source: &str) -> PathBuf {
    match source.strip_prefix("./") {
        Some(relative) => root.join(relative),
        None => PathBuf::from(source),
    }
}

/// Rewrites every `host:port` in `value`, and the database of a PostgreSQL URL.
pub fn rewrite_value(value: &str, map: &NativeMap) -> Result<String, String> {
    let mut missing = Vec::new();
    let rewritten = ADDRESS.replace_all(value, |c: &regex::Captures<'_>| {
        let port: u16 = c[3].parse().unwrap_or_default();
        match map.addresses.get(&(c[2].to_owned(), port)) {
            Some(local) => format!("{}{local}", &c[1]),
            None => {
                missing.push(format!("{}:{}", &c[2], &c[3]));
                c[0].to_owned()
            }
        }
    });
    if !missing.is_empty() {
        return Err(format!("no native stand-in for {}", missing.join(", ")));
    }
    let mut text = rewritten.into_owned();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let (base, database) = text
            .rsplit_once('/')
            .ok_or_else(|| format!("{value}: no database name"))?;
        let native = map
            .databases
            .get(database)
            .ok_or_else(|| format!("no test database for {database:?}"))?;
        text = format!("{base}/{native}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPOSE: &str = "services:
  payment:
    image: x:1.0
    environment:
      FAULTLINE_CONFIG: /etc/faultline/payment.toml
      FAULTLINE__HTTP__HOST: 0.0.0.0
      FAULTLINE__HTTP__PORT: 8080
      FAULTLINE__INSTANCE_ID: \"payment-{hostname}\"
      FAULTLINE__DATABASE__URL: postgres://postgres:${PW:-pw}@toxiproxy:15433/payment
      OTEL_EXPORTER_OTLP_ENDPOINT: http://tempo:4318
      RUST_LOG: info
    volumes:
      - ./deploy/config/payment.toml:/etc/faultline/payment.toml:ro
";

    fn map() -> NativeMap {
        let mut map = NativeMap::default();
        map.address("payment", 8080, "127.0.0.1:41000")
            .address("toxiproxy", 15433, "127.0.0.1:41001")
            .address("tempo", 4318, "127.0.0.1:41002");
        map.databases
            .insert("payment".into(), "fl_payment_1".into());
        map
    }

    #[test]
    fn only_addresses_the_listen_address_databases_and_the_config_path_change() {
        let compose = Compose::parse(COMPOSE).expect("parses");
        let env = environment(&compose, "payment", &map(), Path::new("/repo")).expect("rewrites");
        assert_eq!(env["FAULTLINE_CONFIG"], "/repo/deploy/config/payment.toml");
        assert_eq!(env["FAULTLINE__HTTP__HOST"], "127.0.0.1");
        assert_eq!(env["FAULTLINE__HTTP__PORT"], "41000");
        assert_eq!(env["FAULTLINE__INSTANCE_ID"], "payment-native-41000");
        assert_eq!(
            env["FAULTLINE__DATABASE__URL"],
            "postgres://postgres:pw@127.0.0.1:41001/fl_payment_1"
        );
        assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://127.0.0.1:41002");
        assert_eq!(env["RUST_LOG"], "info");
    }

    #[test]
    fn an_address_without_a_stand_in_fails_the_rewrite() {
        let compose =
            Compose::parse(&COMPOSE.replace("tempo:4318", "jaeger:4318")).expect("parses");
        let error =
            environment(&compose, "payment", &map(), Path::new("/repo")).expect_err("fails");
        assert!(error.to_string().contains("jaeger:4318"), "{error}");
    }
}
