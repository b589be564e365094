//! Two replicas of every Faultline service (issue 11): what makes a second container of a
//! service a replica rather than a clash or a twin.
//!
//! - Each runs `deploy.replicas` >= [`MIN_REPLICAS`], with no `container_name` (one name, one
//!   container) and no fixed `hostname`.
//! - Each replica has its own instance id: `FAULTLINE__INSTANCE_ID` contains [`HOSTNAME`], which
//!   the kit replaces with the host name (in Docker, the container's id). A fixed id would make
//!   two replicas one static consumer-group member (Kafka fences one of them) and one owner of
//!   outbox and saga claims (each would take the other's claims as its own).
//! - Each has a healthcheck, run in every container, so `service_healthy` waits for all of them.
//! - A published port gives every replica its own host port (a range), never one fixed port
//!   two containers would race to bind.
//! - Every call between services goes through a proxy whose upstream is the callee's service
//!   name, which Docker's DNS answers with all replicas (a container name would pin one).
//! - The topics have at least as many partitions as any consumer has replicas (a replica with
//!   no partition sits idle in its group).

use faultline_contracts::topology::{Callee, Link, Service};

use crate::{
    Problems,
    compose::{self, Compose, interpolate},
    compose_checks::topic_partitions,
    toxiproxy::Proxy,
};

/// The fewest replicas a Faultline service runs with.
pub const MIN_REPLICAS: u64 = 2;

/// The setting that names a process (see `CommonSettings::instance_id` in the kit).
pub const INSTANCE_ID: &str = "FAULTLINE__INSTANCE_ID";

/// The placeholder the kit replaces with the host name when it loads [`INSTANCE_ID`].
pub const HOSTNAME: &str = "{hostname}";

/// How many containers compose runs for `service` (one without `deploy.replicas`).
pub fn replicas(service: &compose::Service) -> u64 {
    service.replicas.unwrap_or(1)
}

/// How many containers a port mapping (as compose resolves it with no variables set) can be
/// bound for at once: `None` when the host port is left to Docker (`"8080"`,
/// `"127.0.0.1::8080"`), which gives each container its own.
fn containers_per_mapping(mapping: &str) -> Result<Option<u64>, String> {
    let without_protocol = mapping.split('/').next().unwrap_or(mapping);
    let parts: Vec<&str> = without_protocol.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [_container] => return Ok(None),
        [host, container] | [_, host, container] => (*host, *container),
        _ => return Err(format!("{mapping:?} is not [ip:]host:container")),
    };
    if host.is_empty() {
        return Ok(None);
    }
    let width = |range: &str| -> Result<u64, String> {
        match range.split_once('-') {
            None => range
                .parse::<u16>()
                .map(|_| 1)
                .map_err(|_| format!("{range:?} in {mapping:?} is not a port")),
            Some((low, high)) => match (low.parse::<u16>(), high.parse::<u16>()) {
                (Ok(low), Ok(high)) if low <= high => Ok(u64::from(high - low) + 1),
                _ => Err(format!("{range:?} in {mapping:?} is not a port range")),
            },
        }
    };
    Ok(Some(width(host)? / width(container)?))
}

/// Every Faultline service runs replicas that can coexist: at least [`MIN_REPLICAS`], no fixed
/// container or host name, a healthcheck, an instance id made from the host name, and a host
/// port for each replica of whatever it publishes.
pub fn check_replicas(compose: &Compose) -> Problems {
    let mut problems = Problems::new();
    for name in Service::ALL.map(Service::name) {
        let Some(service) = compose.services.get(name) else {
            problems.push(format!("service {name} is missing"));
            continue;
        };
        let count = replicas(service);
        if count < MIN_REPLICAS {
            problems.push(format!(
                "{name}: runs {count} replica(s); every service runs at least {MIN_REPLICAS} (deploy.replicas)"
            ));
        }
        if let Some(fixed) = &service.container_name {
            problems.push(format!(
                "{name}: container_name {fixed:?} can name only one container, not {count} replicas"
            ));
        }
        if let Some(fixed) = &service.hostname {
            problems.push(format!(
                "{name}: hostname {fixed:?} is every replica's, and so is the instance id made from it"
            ));
        }
        if service.healthcheck.is_none() {
            problems.push(format!(
                "{name}: no healthcheck, so no replica reports its own readiness"
            ));
        }
        match service.environment.get(INSTANCE_ID) {
            None => problems.push(format!(
                "{name}: no {INSTANCE_ID}; its replicas would share one consumer-group member and one claim owner"
            )),
            Some(id) if !id.contains(HOSTNAME) => problems.push(format!(
                "{name}: {INSTANCE_ID} {id:?} is the same in every replica (it must contain {HOSTNAME})"
            )),
            Some(_) => {}
        }
        for port in &service.ports {
            let resolved = interpolate(port, &|_| None).unwrap_or_else(|_| port.clone());
            match containers_per_mapping(&resolved) {
                Ok(Some(bindable)) if bindable < count => problems.push(format!(
                    "{name}: publishes {port:?}, {bindable} host port(s) for {count} replicas (publish a range, one port per replica)"
                )),
                Ok(_) => {}
                Err(error) => problems.push(format!("{name}: {error}")),
            }
        }
    }
    problems
}

/// The proxy of every call between services leads to the callee's service name, which Docker's
/// DNS answers with every replica; a container name or an address would pin one replica.
pub fn check_upstreams(compose: &Compose, proxies: &[Proxy]) -> Problems {
    let mut problems = Problems::new();
    for call in Link::SERVICE_CALLS {
        let Callee::Service(callee) = call.callee() else {
            continue;
        };
        let Some(proxy) = proxies.iter().find(|p| p.name == call.proxy_name()) else {
            problems.push(format!("{call}: no proxy {}", call.proxy_name()));
            continue;
        };
        let host = proxy.upstream_address().map(|(host, _)| host);
        if host.as_deref() != Some(callee.name()) {
            problems.push(format!(
                "proxy {}: upstream {:?} is not the service name {}, so connections do not spread over its replicas",
                proxy.name,
                proxy.upstream,
                callee.name()
            ));
        } else if !compose.services.contains_key(callee.name()) {
            problems.push(format!(
                "proxy {}: {} is no compose service",
                proxy.name,
                callee.name()
            ));
        }
    }
    problems
}

/// The topics `job` creates have at least as many partitions as each service that uses the
/// broker has replicas, so every replica of a consumer group is assigned some.
pub fn check_partitions(compose: &Compose, job: &str) -> Problems {
    let mut problems = Problems::new();
    let Some(partitions) = topic_partitions(compose, job) else {
        return vec![format!("{job}: cannot tell how many partitions it creates")];
    };
    for name in Service::ALL.map(Service::name) {
        let Some(service) = compose.services.get(name) else {
            continue;
        };
        let count = replicas(service);
        if service
            .environment
            .contains_key("FAULTLINE__KAFKA__BOOTSTRAP_SERVERS")
            && u64::from(partitions) < count
        {
            problems.push(format!(
                "{job}: {partitions} partition(s) per topic for {name}'s {count} replicas; a replica without a partition sits idle"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compose file with all five services replicated correctly, except that `name`'s keys
    /// in `changes` are replaced (or added) with the YAML given (a block starts with a newline).
    fn compose(name: &str, changes: &[(&str, &str)]) -> Compose {
        let mut text = String::from(
            "services:\n  init:\n    image: x:1.0\n    restart: \"no\"\n    command: [\"for topic in a; do x --partitions 2; done\"]\n",
        );
        for service in Service::ALL.map(Service::name) {
            let mut body: Vec<(&str, String)> = vec![
                ("image", "x:1.0".into()),
                ("deploy", "\n      replicas: 2".into()),
                ("healthcheck", "\n      test: [\"CMD\", \"true\"]".into()),
                (
                    "environment",
                    format!(
                        "\n      {INSTANCE_ID}: \"{service}-{HOSTNAME}\"\n      FAULTLINE__KAFKA__BOOTSTRAP_SERVERS: toxiproxy:19092"
                    ),
                ),
            ];
            if service == name {
                for (key, value) in changes {
                    match body.iter_mut().find(|(k, _)| k == key) {
                        Some(entry) => entry.1 = (*value).to_owned(),
                        None => body.push((key, (*value).to_owned())),
                    }
                }
            }
            text.push_str(&format!("  {service}:\n"));
            for (key, value) in body {
                text.push_str(&format!("    {key}: {value}\n"));
            }
        }
        Compose::parse(&text).expect("parses")
    }

    fn has(problems: &Problems, text: &str) -> bool {
        problems.iter().any(|p| p.contains(text))
    }

    #[test]
    fn replicated_services_with_their_own_ids_pass() {
        assert_eq!(check_replicas(&compose("", &[])), Problems::new());
        assert_eq!(check_partitions(&compose("", &[]), "init"), Problems::new());
    }

    #[test]
    fn one_replica_a_container_name_or_a_hostname_is_a_problem() {
        let single = compose("payment", &[("deploy", "\n      replicas: 1")]);
        assert!(
            has(&check_replicas(&single), "payment: runs 1 replica(s)"),
            "{:?}",
            check_replicas(&single)
        );
        let named = compose("inventory", &[("container_name", "faultline-inventory")]);
        assert!(has(&check_replicas(&named), "inventory: container_name"));
        let host = compose("analytics", &[("hostname", "analytics")]);
        assert!(has(&check_replicas(&host), "analytics: hostname"));
    }

    #[test]
    fn a_fixed_or_missing_instance_id_is_a_problem() {
        let fixed = compose(
            "reservation",
            &[(
                "environment",
                "\n      FAULTLINE__INSTANCE_ID: reservation-1",
            )],
        );
        let problems = check_replicas(&fixed);
        assert!(
            has(
                &problems,
                "reservation: FAULTLINE__INSTANCE_ID \"reservation-1\""
            ),
            "{problems:?}"
        );
        let missing = compose("gateway", &[("environment", "\n      RUST_LOG: info")]);
        assert!(has(
            &check_replicas(&missing),
            "gateway: no FAULTLINE__INSTANCE_ID"
        ));
    }

    #[test]
    fn a_service_without_a_healthcheck_is_a_problem() {
        let none = compose("payment", &[("healthcheck", "\n      disable: true")]);
        assert!(has(&check_replicas(&none), "payment: no healthcheck"));
    }

    #[test]
    fn a_fixed_host_port_is_a_problem_and_a_range_or_an_ephemeral_one_is_not() {
        let fixed = compose("gateway", &[("ports", "[\"127.0.0.1:8080:8080\"]")]);
        assert!(
            has(&check_replicas(&fixed), "1 host port(s) for 2 replicas"),
            "{:?}",
            check_replicas(&fixed)
        );
        for fine in [
            "127.0.0.1:${P:-8080}-${Q:-8081}:8080",
            "127.0.0.1::8080",
            "8080",
            "8080-8083:8080/tcp",
        ] {
            let ports = format!("[\"{fine}\"]");
            let c = compose("gateway", &[("ports", ports.as_str())]);
            assert_eq!(check_replicas(&c), Problems::new(), "{fine}");
        }
        let reversed = compose("gateway", &[("ports", "[\"8081-8080:8080\"]")]);
        assert!(has(&check_replicas(&reversed), "not a port range"));
    }

    #[test]
    fn fewer_partitions_than_a_consumers_replicas_is_a_problem() {
        let many = compose("analytics", &[("deploy", "\n      replicas: 3")]);
        let problems = check_partitions(&many, "init");
        assert!(
            has(
                &problems,
                "2 partition(s) per topic for analytics's 3 replicas"
            ),
            "{problems:?}"
        );
        assert!(has(&check_partitions(&many, "nothing"), "cannot tell"));
    }

    #[test]
    fn a_proxy_to_a_container_name_is_a_problem() {
        let proxies = crate::toxiproxy::parse(
            r#"[{"name":"gateway-reservation","listen":"0.0.0.0:18001","upstream":"faultline-reservation-1:8080"},
                {"name":"reservation-payment","listen":"0.0.0.0:18002","upstream":"payment:8080"},
                {"name":"gateway-inventory","listen":"0.0.0.0:18003","upstream":"inventory:8080"}]"#,
        )
        .expect("parses");
        let problems = check_upstreams(&compose("", &[]), &proxies);
        assert!(
            has(
                &problems,
                "proxy gateway-reservation: upstream \"faultline-reservation-1:8080\""
            ),
            "{problems:?}"
        );
        assert!(has(&problems, "no proxy gateway-payment"), "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
