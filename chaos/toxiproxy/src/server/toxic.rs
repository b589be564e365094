//! A proxy's toxics: parsing and validating them as Toxiproxy does, and publishing the chain that
//! live links read.
//!
//! The chain is published through a `watch` channel as an immutable snapshot, so adding, updating
//! or removing a toxic never waits on a link (Toxiproxy's API has hung doing exactly that under
//! load); each link notices the new snapshot between chunks or while it waits.

use crate::api::{self, Stream};
use crate::server::body;
use crate::server::error::ApiError;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::watch;

/// A toxic's type with its attributes, typed. Toxiproxy's attributes are Go `int64`/`int`
/// fields, so negative values are accepted and treated as "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Noop,
    Latency {
        latency: i64,
        jitter: i64,
    },
    Bandwidth {
        rate: i64,
    },
    SlowClose {
        delay: i64,
    },
    Timeout {
        timeout: i64,
    },
    ResetPeer {
        timeout: i64,
    },
    Slicer {
        average_size: i64,
        size_variation: i64,
        delay: i64,
    },
    LimitData {
        bytes: i64,
    },
}

impl Kind {
    /// The attribute names of a toxic type, in Toxiproxy's field order; `None` for an unknown type.
    fn fields(type_name: &str) -> Option<&'static [&'static str]> {
        Some(match type_name {
            "noop" => &[],
            "latency" => &["latency", "jitter"],
            "bandwidth" => &["rate"],
            "slow_close" => &["delay"],
            "timeout" | "reset_peer" => &["timeout"],
            "slicer" => &["average_size", "size_variation", "delay"],
            "limit_data" => &["bytes"],
            _ => return None,
        })
    }

    fn from_values(type_name: &str, v: &[i64]) -> Option<Self> {
        Some(match (type_name, v) {
            ("noop", []) => Kind::Noop,
            ("latency", [latency, jitter]) => Kind::Latency {
                latency: *latency,
                jitter: *jitter,
            },
            ("bandwidth", [rate]) => Kind::Bandwidth { rate: *rate },
            ("slow_close", [delay]) => Kind::SlowClose { delay: *delay },
            ("timeout", [timeout]) => Kind::Timeout { timeout: *timeout },
            ("reset_peer", [timeout]) => Kind::ResetPeer { timeout: *timeout },
            ("slicer", [average_size, size_variation, delay]) => Kind::Slicer {
                average_size: *average_size,
                size_variation: *size_variation,
                delay: *delay,
            },
            ("limit_data", [bytes]) => Kind::LimitData { bytes: *bytes },
            _ => return None,
        })
    }

    fn values(&self) -> Vec<i64> {
        match *self {
            Kind::Noop => vec![],
            Kind::Latency { latency, jitter } => vec![latency, jitter],
            Kind::Bandwidth { rate } => vec![rate],
            Kind::SlowClose { delay } => vec![delay],
            Kind::Timeout { timeout } | Kind::ResetPeer { timeout } => vec![timeout],
            Kind::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![average_size, size_variation, delay],
            Kind::LimitData { bytes } => vec![bytes],
        }
    }

    /// Reads `attributes` over `base` (zeros for a new toxic), like Go decoding into the typed
    /// struct: unknown keys are ignored, `null` keeps the old value, non-integers are refused.
    fn parse(
        type_name: &str,
        attributes: Option<&Map<String, Value>>,
        base: Option<&Kind>,
    ) -> Result<Option<Self>, ApiError> {
        let Some(fields) = Self::fields(type_name) else {
            return Ok(None);
        };
        let mut values = base.map_or_else(|| vec![0; fields.len()], Kind::values);
        if let Some(attributes) = attributes {
            for (slot, field) in values.iter_mut().zip(fields) {
                match attributes.get(*field) {
                    None | Some(Value::Null) => {}
                    Some(value) => {
                        *slot = value.as_i64().ok_or_else(|| {
                            ApiError::bad_body(format!(
                                "attribute {field} must be an integer, got {value}"
                            ))
                        })?;
                    }
                }
            }
        }
        Ok(Self::from_values(type_name, &values))
    }

    fn attributes(&self, type_name: &str) -> Map<String, Value> {
        let fields = Self::fields(type_name).unwrap_or(&[]);
        fields
            .iter()
            .zip(self.values())
            .map(|(field, value)| ((*field).to_owned(), Value::from(value)))
            .collect()
    }
}

/// One toxic as links see it. `id` orders the chain (new toxics go last) and `rev` changes on
/// every update, which is how a link knows to restart that toxic's per-connection state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToxicSpec {
    pub id: u64,
    pub rev: u64,
    pub name: String,
    pub type_name: String,
    pub stream: Stream,
    pub toxicity: f32,
    pub kind: Kind,
}

impl ToxicSpec {
    pub fn to_api(&self) -> api::Toxic {
        api::Toxic {
            attributes: self.kind.attributes(&self.type_name),
            name: self.name.clone(),
            r#type: self.type_name.clone(),
            stream: self.stream,
            toxicity: self.toxicity,
        }
    }
}

/// A snapshot of a proxy's toxics, both directions, in the order they were added.
pub(crate) type Chain = Arc<Vec<Arc<ToxicSpec>>>;

/// The toxics of one proxy. Mutated only under the registry's lock.
#[derive(Debug)]
pub(crate) struct Toxics {
    chain: watch::Sender<Chain>,
    next_id: u64,
}

impl Default for Toxics {
    fn default() -> Self {
        Self {
            chain: watch::Sender::new(Arc::new(Vec::new())),
            next_id: 1,
        }
    }
}

impl Toxics {
    pub fn subscribe(&self) -> watch::Receiver<Chain> {
        self.chain.subscribe()
    }

    /// Upstream toxics first, then downstream, each in the order added: Toxiproxy's
    /// `GetToxicArray` walks its per-direction chains the same way.
    pub fn list(&self) -> Vec<api::Toxic> {
        let chain = self.chain.borrow();
        [Stream::Upstream, Stream::Downstream]
            .into_iter()
            .flat_map(|stream| chain.iter().filter(move |t| t.stream == stream))
            .map(|t| t.to_api())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<api::Toxic> {
        self.chain
            .borrow()
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.to_api())
    }

    /// `POST /proxies/{p}/toxics`, with Toxiproxy's order of checks: body, stream, type,
    /// duplicate name, then attributes.
    pub fn add(&mut self, request: &[u8]) -> Result<api::Toxic, ApiError> {
        let input = body::object(request)?;
        let name = body::string(&input, "name")?.unwrap_or_default();
        let type_name = body::string(&input, "type")?.unwrap_or_default();
        let stream_text = body::string(&input, "stream")?.unwrap_or_else(|| "downstream".into());
        let toxicity = toxicity(&input)?.unwrap_or(1.0);
        let attributes = body::object_field(&input, "attributes")?;

        let stream = Stream::parse(&stream_text).ok_or_else(ApiError::invalid_stream)?;
        let name = if name.is_empty() {
            api::default_name(&type_name, stream.as_str())
        } else {
            name
        };
        if Kind::fields(&type_name).is_none() {
            return Err(ApiError::invalid_toxic_type());
        }
        if self.chain.borrow().iter().any(|t| t.name == name) {
            return Err(ApiError::toxic_exists());
        }
        let kind =
            Kind::parse(&type_name, attributes, None)?.ok_or_else(ApiError::invalid_toxic_type)?;

        let spec = ToxicSpec {
            id: self.next_id,
            rev: 0,
            name,
            type_name,
            stream,
            toxicity,
            kind,
        };
        self.next_id += 1;
        let answer = spec.to_api();
        self.publish(|chain| chain.push(Arc::new(spec)));
        Ok(answer)
    }

    /// `PATCH /proxies/{p}/toxics/{t}`: only attributes and toxicity change.
    pub fn update(&mut self, name: &str, request: &[u8]) -> Result<api::Toxic, ApiError> {
        let current = self
            .chain
            .borrow()
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(ApiError::toxic_not_found)?;
        let input = body::object(request)?;
        let toxicity = toxicity(&input)?.unwrap_or(current.toxicity);
        let attributes = body::object_field(&input, "attributes")?;
        let kind = Kind::parse(&current.type_name, attributes, Some(&current.kind))?
            .ok_or_else(ApiError::invalid_toxic_type)?;
        let updated = ToxicSpec {
            rev: current.rev + 1,
            toxicity,
            kind,
            ..(*current).clone()
        };
        let answer = updated.to_api();
        self.publish(|chain| {
            if let Some(slot) = chain.iter_mut().find(|t| t.id == updated.id) {
                *slot = Arc::new(updated);
            }
        });
        Ok(answer)
    }

    pub fn remove(&mut self, name: &str) -> Result<(), ApiError> {
        if !self.chain.borrow().iter().any(|t| t.name == name) {
            return Err(ApiError::toxic_not_found());
        }
        self.publish(|chain| chain.retain(|t| t.name != name));
        Ok(())
    }

    pub fn clear(&mut self) {
        if !self.chain.borrow().is_empty() {
            self.publish(Vec::clear);
        }
    }

    fn publish(&self, change: impl FnOnce(&mut Vec<Arc<ToxicSpec>>)) {
        let mut next = self.chain.borrow().as_ref().clone();
        change(&mut next);
        // send_replace, not send: a proxy with no live link has no receiver, and the new chain
        // must be stored all the same.
        self.chain.send_replace(Arc::new(next));
    }
}

/// Toxiproxy keeps toxicity as a Go float32.
fn toxicity(input: &Map<String, Value>) -> Result<Option<f32>, ApiError> {
    Ok(body::number(input, "toxicity")?.map(|t| t as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn add(toxics: &mut Toxics, body: &str) -> Result<api::Toxic, ApiError> {
        toxics.add(body.as_bytes())
    }

    #[test]
    fn a_new_toxic_reports_every_attribute_of_its_type() {
        let mut toxics = Toxics::default();
        let toxic = add(
            &mut toxics,
            r#"{"type":"latency","attributes":{"latency":5}}"#,
        )
        .unwrap();
        assert_eq!(toxic.name, "latency_downstream");
        assert_eq!(toxic.attributes["jitter"], 0);
        assert_eq!(toxic.attributes["latency"], 5);
    }

    #[test]
    fn an_update_merges_attributes_and_keeps_the_toxicity() {
        let mut toxics = Toxics::default();
        add(
            &mut toxics,
            r#"{"name":"l","type":"latency","toxicity":0.5,"attributes":{"latency":5,"jitter":2}}"#,
        )
        .unwrap();
        let toxic = toxics
            .update("l", br#"{"attributes":{"latency":9}}"#)
            .unwrap();
        assert_eq!(toxic.attributes["latency"], 9);
        assert_eq!(toxic.attributes["jitter"], 2);
        assert_eq!(toxic.toxicity, 0.5);
    }

    #[test]
    fn the_list_puts_upstream_toxics_first() {
        let mut toxics = Toxics::default();
        add(&mut toxics, r#"{"type":"latency"}"#).unwrap();
        add(&mut toxics, r#"{"type":"timeout","stream":"upstream"}"#).unwrap();
        let names: Vec<_> = toxics.list().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["timeout_upstream", "latency_downstream"]);
    }

    #[test]
    fn a_fractional_attribute_is_a_bad_body() {
        let mut toxics = Toxics::default();
        let err = add(
            &mut toxics,
            r#"{"type":"latency","attributes":{"latency":1.5}}"#,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_stream_is_checked_before_the_type() {
        let mut toxics = Toxics::default();
        let err = add(&mut toxics, r#"{"type":"nope","stream":"sideways"}"#).unwrap_err();
        assert_eq!(err, ApiError::invalid_stream());
    }
}
