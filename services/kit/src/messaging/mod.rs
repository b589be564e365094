//! Kafka through rdkafka: one place for client configuration, headers, producing, consuming and
//! dead-lettering.
//!
//! - [`headers`]: the header names every message carries and their conversions.
//! - [`producer`]: the acks=all producer and [`OutboundMessage`], a message ready to send.
//! - [`consumer`]: the consume loop — decode, dedupe through the inbox, handle inside one
//!   transaction, commit the offset only after that transaction commits.
//! - [`dead_letter`]: where a message that cannot be decoded or breaks its contract goes.
//! - [`lag`]: how far a consumer is behind, from librdkafka's statistics.
//! - [`admin`]: creating topics up front (the broker does not auto-create them).

pub mod admin;
pub mod consumer;
pub mod dead_letter;
pub mod headers;
pub mod lag;
pub mod producer;

pub use consumer::{Consumer, Delivered, HandleError, Handler};
pub use producer::{OutboundMessage, Producer};

use rdkafka::ClientConfig;

use crate::config::KafkaSettings;

/// The client configuration shared by producers, consumers and the admin client.
pub fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", client_id)
        // The embedded broker listens on IPv4 only.
        .set("broker.address.family", "v4");
    for (key, value) in &settings.extra {
        config.set(key, value);
    }
    config
}
