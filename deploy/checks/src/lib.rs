//! Checks of the compose stack and its provisioning that need no Docker engine.
//!
//! No engine runs on the machines this project is built on, so `docker compose up` cannot be
//! tried here. What can be checked is checked: each file parses, each name and port one file
//! relies on is defined by the file it points to, each query is plausible for its language
//! and matches what the services' code really logs and traces — and (`tests/native_stack.rs`)
//! the services start outside Docker with exactly their compose environment.
//!
//! Every check is a pure function from parsed documents to a list of problems (empty when all
//! is well), so each one is unit-tested on a small broken document: a check that cannot fail
//! proves nothing.
//!
//! - [`repo`]: where the workspace and its files are; the services' source text.
//! - [`yaml`]: YAML (with `<<` merge keys, resolved as compose resolves them) as JSON values.
//! - [`compose`]: the compose model (services, environment, dependencies) and `${VAR:-default}`
//!   interpolation.
//! - [`compose_checks`]: pinned images, dependencies, healthchecks, restarts, published ports,
//!   networks, variables with defaults, shared secrets.
//! - [`replicas`]: two replicas of every service — no fixed container or host name, an
//!   instance id per replica (`{hostname}`), a host port per replica, proxies that lead to the
//!   service name (Docker's DNS spreads over the replicas), enough partitions for every replica.
//! - [`topology`]: every `host:port` a service is told to use is a port its target listens on;
//!   every network link goes through its Toxiproxy proxy; the broker advertises the proxy.
//! - [`toxiproxy`]: the proxies file, `deploy/toxiproxy/toxiproxy.json`.
//! - [`grafana`]: datasources (fixed uids, correlation both ways, `$` escaping) and dashboards
//!   (valid JSON, known datasources, plausible queries that match the code, the fault-window
//!   annotation). Queries are parsed (and LogQL evaluated on lines) by `faultline-querylang`,
//!   the parser the capture answers them with.
//! - [`backends`]: the Tempo and Loki configs against the keys their pinned versions accept.
//! - [`k8s`]: the Kubernetes manifests (deploy/k8s) against the k8s-openapi types, the services'
//!   settings and compose's links.
//! - [`native`]: the compose environment of a service rewritten for a native run (compose
//!   addresses to local ones), used by the native test.

pub mod backends;
pub mod compose;
pub mod compose_checks;
pub mod grafana;
pub mod k8s;
pub mod native;
pub mod replicas;
pub mod repo;
pub mod topology;
pub mod toxiproxy;
pub mod yaml;

/// What a check found wrong, one sentence each; empty when the check passes.
pub type Problems = Vec<String>;
