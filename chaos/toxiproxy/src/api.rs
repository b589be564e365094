//! Toxiproxy 2.12's wire types: what its HTTP API accepts and answers, shared by our server and client.
//!
//! Field order follows the Go structs so our JSON reads like the real server's. Attributes stay a
//! JSON map rather than a typed enum because a client must round-trip toxic types it does not
//! know (a newer server, a custom toxic) without losing fields.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Name of the counter of bytes a proxy link read from its source (`-proxy-metrics`).
pub const RECEIVED_BYTES_METRIC: &str = "toxiproxy_proxy_received_bytes_total";
/// Name of the counter of bytes a proxy link wrote to its destination (`-proxy-metrics`).
pub const SENT_BYTES_METRIC: &str = "toxiproxy_proxy_sent_bytes_total";

/// What `POST /proxies` and `POST /populate` take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub name: String,
    /// `host:port`; port 0 lets the server pick, and its answers then carry the bound port.
    #[serde(default)]
    pub listen: String,
    pub upstream: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl ProxyConfig {
    pub fn new(
        name: impl Into<String>,
        listen: impl Into<String>,
        upstream: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: true,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// A proxy as the server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub toxics: Vec<Toxic>,
}

/// What `PATCH /proxies/{p}` takes: absent fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Which way through the proxy a toxic acts: upstream is client→server, downstream server→client.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    #[default]
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Case-insensitive, as Toxiproxy's `ParseDirection` is.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A toxic as sent to and reported by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub r#type: String,
    #[serde(default)]
    pub stream: Stream,
    /// Probability, drawn once per connection and direction, that the toxic applies.
    #[serde(default = "full_toxicity")]
    pub toxicity: f32,
}

fn full_toxicity() -> f32 {
    1.0
}

impl Toxic {
    /// A toxic of any type; an empty name becomes `<type>_<stream>` as on the server.
    pub fn new(
        r#type: impl Into<String>,
        name: impl Into<String>,
        stream: Stream,
        attributes: Map<String, Value>,
    ) -> Self {
        let r#type = r#type.into();
        let mut name = name.into();
        if name.is_empty() {
            name = default_name(&r#type, stream.as_str());
        }
        Self {
            attributes,
            name,
            r#type,
            stream,
            toxicity: 1.0,
        }
    }

    /// Delays each chunk by `latency_ms` ± `jitter_ms`.
    pub fn latency(
        name: impl Into<String>,
        stream: Stream,
        latency_ms: u64,
        jitter_ms: u64,
    ) -> Self {
        Self::new(
            "latency",
            name,
            stream,
            attrs([("latency", latency_ms), ("jitter", jitter_ms)]),
        )
    }

    /// Drops all data and closes after `ms` without data; 0 black-holes until removed.
    pub fn timeout(name: impl Into<String>, stream: Stream, ms: u64) -> Self {
        Self::new("timeout", name, stream, attrs([("timeout", ms)]))
    }

    /// On the first data, waits `ms` and then resets the connection (RST).
    pub fn reset_peer(name: impl Into<String>, stream: Stream, ms: u64) -> Self {
        Self::new("reset_peer", name, stream, attrs([("timeout", ms)]))
    }

    /// Limits throughput to `rate_kb` KB/s (1 KB = 1000 bytes).
    pub fn bandwidth(name: impl Into<String>, stream: Stream, rate_kb: u64) -> Self {
        Self::new("bandwidth", name, stream, attrs([("rate", rate_kb)]))
    }

    /// Delays the close of the connection by `delay_ms` after the source closes.
    pub fn slow_close(name: impl Into<String>, stream: Stream, delay_ms: u64) -> Self {
        Self::new("slow_close", name, stream, attrs([("delay", delay_ms)]))
    }

    /// Cuts data into pieces of about `average_size` bytes, `delay_us` microseconds apart.
    pub fn slicer(
        name: impl Into<String>,
        stream: Stream,
        average_size: u64,
        size_variation: u64,
        delay_us: u64,
    ) -> Self {
        Self::new(
            "slicer",
            name,
            stream,
            attrs([
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay_us),
            ]),
        )
    }

    /// Closes the connection once `bytes` bytes have passed in this direction.
    pub fn limit_data(name: impl Into<String>, stream: Stream, bytes: u64) -> Self {
        Self::new("limit_data", name, stream, attrs([("bytes", bytes)]))
    }

    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }
}

/// Toxiproxy's default toxic name.
pub fn default_name(r#type: &str, stream: &str) -> String {
    format!("{type}_{stream}")
}

fn attrs<const N: usize>(pairs: [(&str, u64); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), Value::from(value)))
        .collect()
}

/// What `PATCH /proxies/{p}/toxics/{t}` takes: only attributes and toxicity can change; given
/// attributes are merged over the current ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToxicUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f32>,
}

impl From<&Toxic> for ToxicUpdate {
    fn from(toxic: &Toxic) -> Self {
        Self {
            attributes: Some(toxic.attributes.clone()),
            toxicity: Some(toxic.toxicity),
        }
    }
}

impl From<Toxic> for ToxicUpdate {
    fn from(toxic: Toxic) -> Self {
        Self {
            attributes: Some(toxic.attributes),
            toxicity: Some(toxic.toxicity),
        }
    }
}

impl From<Map<String, Value>> for ToxicUpdate {
    fn from(attributes: Map<String, Value>) -> Self {
        Self {
            attributes: Some(attributes),
            toxicity: None,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
    pub status: u16,
}

/// `POST /populate`'s answer; on failure it also carries the error fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopulateResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Go marshals an empty result as `null`, so both spellings are read as empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub proxies: Vec<Proxy>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unnamed_toxic_is_named_after_its_type_and_stream() {
        let toxic = Toxic::latency("", Stream::Upstream, 100, 10);
        assert_eq!(toxic.name, "latency_upstream");
        assert_eq!(toxic.attributes["latency"], json!(100));
    }

    #[test]
    fn a_toxic_serializes_its_type_as_type() {
        let value = serde_json::to_value(Toxic::timeout("t", Stream::Downstream, 0)).unwrap();
        assert_eq!(
            value,
            json!({"attributes": {"timeout": 0}, "name": "t", "type": "timeout",
                   "stream": "downstream", "toxicity": 1.0})
        );
    }

    #[test]
    fn a_toxic_without_stream_or_toxicity_reads_as_downstream_and_certain() {
        let toxic: Toxic = serde_json::from_value(json!({"type": "latency"})).unwrap();
        assert_eq!(toxic.stream, Stream::Downstream);
        assert_eq!(toxic.toxicity, 1.0);
    }

    #[test]
    fn a_proxy_config_without_enabled_is_enabled() {
        let config: ProxyConfig =
            serde_json::from_value(json!({"name": "a", "listen": "x:1", "upstream": "y:2"}))
                .unwrap();
        assert!(config.enabled);
    }

    #[test]
    fn a_populate_answer_with_null_proxies_reads_as_empty() {
        let answer: PopulateResponse = serde_json::from_value(json!({"proxies": null})).unwrap();
        assert!(answer.proxies.is_empty());
    }
}
