//! The Tempo and Loki configs against what their pinned versions accept.
//!
//! Tempo refuses unknown keys at start-up, and Loki 3 removed a good number of 2.x settings; a
//! copied 2.x block is the usual way a compose stack stops starting. Each config here may use
//! only key paths verified against the pinned release (Tempo 3.0.3's configuration manifest
//! and `cmd/tempo/app/config.go`; Loki 3.7.6's configuration reference), and none of the keys
//! those majors removed. The verification holds for one version only, so the check also
//! insists the compose file pins exactly that version: bumping an image means re-verifying.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{Problems, yaml::key_paths};

/// The Tempo release the key list below was verified against.
pub const TEMPO_VERIFIED: &str = "grafana/tempo:3.0.3";
/// The Loki release the key list below was verified against.
pub const LOKI_VERIFIED: &str = "grafana/loki:3.7.6";

/// Key paths verified to exist in Tempo 3.0.3. The OTLP receiver block under
/// `distributor.receivers` is the OpenTelemetry Collector's own config and is free-form.
pub const TEMPO_KEYS: [&str; 17] = [
    "stream_over_http_enabled",
    "server",
    "server.http_listen_port",
    "server.log_level",
    "distributor",
    "distributor.receivers",
    "query_frontend",
    "query_frontend.query_end_cutoff",
    "storage",
    "storage.trace",
    "storage.trace.backend",
    "storage.trace.wal",
    "storage.trace.wal.path",
    "storage.trace.local",
    "storage.trace.local.path",
    "usage_report",
    "usage_report.reporting_enabled",
];

/// Keys Tempo 3.0 removed (the 2.x write path and legacy overrides).
pub const TEMPO_REMOVED: [&str; 7] = [
    "ingester",
    "ingester_client",
    "compactor",
    "metrics_generator_client",
    "querier.query_live_store",
    "query_frontend.search.query_ingesters_until",
    "search_enabled",
];

/// The only keys `overrides` may hold since the legacy flat layout was dropped.
pub const TEMPO_OVERRIDES: [&str; 4] = [
    "defaults",
    "per_tenant_override_config",
    "per_tenant_override_period",
    "user_configurable_overrides",
];

/// Key paths verified to exist in Loki 3.7.6.
pub const LOKI_KEYS: [&str; 30] = [
    "auth_enabled",
    "server",
    "server.http_listen_port",
    "server.grpc_listen_port",
    "server.log_level",
    "common",
    "common.instance_addr",
    "common.path_prefix",
    "common.storage",
    "common.storage.filesystem",
    "common.storage.filesystem.chunks_directory",
    "common.storage.filesystem.rules_directory",
    "common.replication_factor",
    "common.ring",
    "common.ring.kvstore",
    "common.ring.kvstore.store",
    "schema_config",
    "schema_config.configs",
    "schema_config.configs.from",
    "schema_config.configs.store",
    "schema_config.configs.object_store",
    "schema_config.configs.schema",
    "schema_config.configs.index",
    "schema_config.configs.index.prefix",
    "schema_config.configs.index.period",
    "limits_config",
    "limits_config.allow_structured_metadata",
    "limits_config.volume_enabled",
    "analytics",
    "analytics.reporting_enabled",
];

/// Keys Loki 3.0 removed (its upgrade guide), matched as the last segment of a key path.
pub const LOKI_REMOVED: [&str; 10] = [
    "shared_store",
    "shared_store_key_prefix",
    "max_transfer_retries",
    "enforce_metric_name",
    "max_look_back_period",
    "use_boltdb_shipper_as_backup",
    "async_cache_write_back_concurrency",
    "async_cache_write_back_buffer_size",
    "evaluation_delay_duration",
    "deletion_mode",
];

fn unverified(paths: &[String], verified: &[&str], free_prefixes: &[&str]) -> Vec<String> {
    let verified: BTreeSet<&str> = verified.iter().copied().collect();
    paths
        .iter()
        .filter(|p| !verified.contains(p.as_str()))
        .filter(|p| !free_prefixes.iter().any(|f| p.starts_with(f)))
        .cloned()
        .collect()
}

/// Tempo's config: only verified keys, none that 3.0 removed, new-style overrides, OTLP
/// receivers bound for the network, local storage with a WAL.
pub fn check_tempo(config: &Value, image: Option<&str>) -> Problems {
    let mut problems = Problems::new();
    if image != Some(TEMPO_VERIFIED) {
        problems.push(format!(
            "the compose file runs {image:?}, but deploy/tempo/tempo.yaml's keys were verified for {TEMPO_VERIFIED}: re-verify, then update backends.rs"
        ));
    }
    let paths = key_paths(config);
    for path in &paths {
        if TEMPO_REMOVED.contains(&path.as_str()) {
            problems.push(format!("tempo.yaml: {path} was removed in Tempo 3"));
        }
    }
    for path in unverified(
        &paths,
        &TEMPO_KEYS,
        &["distributor.receivers.", "overrides"],
    ) {
        if !TEMPO_REMOVED.contains(&path.as_str()) {
            problems.push(format!(
                "tempo.yaml: {path} is not a key verified for {TEMPO_VERIFIED}"
            ));
        }
    }
    for key in config["overrides"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
    {
        if !TEMPO_OVERRIDES.contains(&key.as_str()) {
            problems.push(format!("tempo.yaml: overrides.{key} is a legacy flat override (Tempo 3 refuses them; use overrides.defaults)"));
        }
    }
    for protocol in ["grpc", "http"] {
        let endpoint = config
            .pointer(&format!(
                "/distributor/receivers/otlp/protocols/{protocol}/endpoint"
            ))
            .and_then(Value::as_str);
        match endpoint {
            Some(e) if e.starts_with("0.0.0.0:") => {}
            other => problems.push(format!(
                "tempo.yaml: the OTLP {protocol} receiver must bind 0.0.0.0 (receivers default to localhost since 2.7), not {other:?}"
            )),
        }
    }
    if config
        .pointer("/storage/trace/backend")
        .and_then(Value::as_str)
        != Some("local")
    {
        problems.push("tempo.yaml: storage.trace.backend must be local".into());
    }
    for path in ["/storage/trace/wal/path", "/storage/trace/local/path"] {
        if config
            .pointer(path)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(format!("tempo.yaml: {path} is not set"));
        }
    }
    problems
}

/// Loki's config: only verified keys, none that 3.0 removed, a single tenant, schema v13 on
/// tsdb, structured metadata allowed.
pub fn check_loki(config: &Value, image: Option<&str>) -> Problems {
    let mut problems = Problems::new();
    if image != Some(LOKI_VERIFIED) {
        problems.push(format!(
            "the compose file runs {image:?}, but deploy/loki/loki.yaml's keys were verified for {LOKI_VERIFIED}: re-verify, then update backends.rs"
        ));
    }
    let paths = key_paths(config);
    for path in &paths {
        let last = path.rsplit('.').next().unwrap_or(path);
        if LOKI_REMOVED.contains(&last) {
            problems.push(format!("loki.yaml: {path} was removed in Loki 3"));
        }
    }
    let removed = |p: &String| LOKI_REMOVED.contains(&p.rsplit('.').next().unwrap_or(p));
    for path in unverified(&paths, &LOKI_KEYS, &[]) {
        if !removed(&path) {
            problems.push(format!(
                "loki.yaml: {path} is not a key verified for {LOKI_VERIFIED}"
            ));
        }
    }
    if config["auth_enabled"] != false {
        problems.push(
            "loki.yaml: auth_enabled must be false (the services push without a tenant)".into(),
        );
    }
    let schemas = config
        .pointer("/schema_config/configs")
        .and_then(Value::as_array);
    match schemas.and_then(|s| s.last()) {
        Some(latest) if latest["schema"] == "v13" && latest["store"] == "tsdb" => {}
        _ => problems.push(
            "loki.yaml: the latest schema_config entry must be schema v13 on the tsdb store".into(),
        ),
    }
    if config.pointer("/limits_config/allow_structured_metadata") != Some(&Value::Bool(true)) {
        problems.push("loki.yaml: limits_config.allow_structured_metadata must be true".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    const TEMPO: &str = "stream_over_http_enabled: true
server: {http_listen_port: 3200}
distributor: {receivers: {otlp: {protocols: {grpc: {endpoint: '0.0.0.0:4317'}, http: {endpoint: '0.0.0.0:4318'}}}}}
storage: {trace: {backend: local, wal: {path: /w}, local: {path: /b}}}
";

    #[test]
    fn a_minimal_tempo_3_config_passes() {
        assert_eq!(
            check_tempo(&parse(TEMPO).expect("parses"), Some(TEMPO_VERIFIED)),
            Problems::new()
        );
    }

    #[test]
    fn tempo_2_blocks_legacy_overrides_and_localhost_receivers_are_problems() {
        let old = format!(
            "{}ingester: {{max_block_duration: 5m}}\ncompactor: {{}}\noverrides: {{max_traces_per_user: 1}}\n",
            TEMPO.replace("0.0.0.0:4318", "localhost:4318")
        );
        let problems = check_tempo(&parse(&old).expect("parses"), Some("grafana/tempo:3.0.4"));
        let has = |t: &str| problems.iter().any(|p| p.contains(t));
        assert!(has("ingester was removed"), "{problems:?}");
        assert!(has("compactor was removed"), "{problems:?}");
        assert!(has("legacy flat override"), "{problems:?}");
        assert!(has("must bind 0.0.0.0"), "{problems:?}");
        assert!(has("re-verify"), "{problems:?}");
        assert!(
            has("ingester.max_block_duration is not a key verified"),
            "{problems:?}"
        );
    }

    const LOKI: &str = "auth_enabled: false
schema_config: {configs: [{from: '2024-01-01', store: tsdb, object_store: filesystem, schema: v13, index: {prefix: index_, period: 24h}}]}
limits_config: {allow_structured_metadata: true}
";

    #[test]
    fn a_minimal_loki_3_config_passes() {
        assert_eq!(
            check_loki(&parse(LOKI).expect("parses"), Some(LOKI_VERIFIED)),
            Problems::new()
        );
    }

    #[test]
    fn loki_2_settings_and_an_old_schema_are_problems() {
        let old = LOKI
            .replace("store: tsdb", "store: boltdb-shipper")
            .replace("v13", "v11")
            + "storage_config: {boltdb_shipper: {shared_store: filesystem}}\ningester: {max_transfer_retries: 0}\n";
        let problems = check_loki(&parse(&old).expect("parses"), Some(LOKI_VERIFIED));
        let has = |t: &str| problems.iter().any(|p| p.contains(t));
        assert!(has("shared_store was removed"), "{problems:?}");
        assert!(has("max_transfer_retries was removed"), "{problems:?}");
        assert!(has("schema v13"), "{problems:?}");
        assert!(has("storage_config is not a key verified"), "{problems:?}");
    }
}
