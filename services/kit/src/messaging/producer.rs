//! The producer: acks=all, idempotent unless the chaos runner says otherwise, low linger so a
//! relayed message leaves within a millisecond of being claimed.

use std::{collections::BTreeMap, time::Duration};

use faultline_contracts::{Message, messages};
use rdkafka::{
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, future_producer::Delivery},
};

use super::headers;
use crate::config::KafkaSettings;

/// A message ready to be sent: what an outbox row stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub id: String,
    pub topic: String,
    pub key: String,
    pub payload: String,
    /// `message-id`, `event-type`, `schema-version` and the W3C trace context of the span that
    /// wrote it.
    pub headers: BTreeMap<String, String>,
}

impl OutboundMessage {
    /// Encodes `message` with a new message id and the current span's trace context.
    pub fn new<M: Message>(message: &M) -> Self {
        let id = uuid::Uuid::now_v7().to_string();
        let mut headers = crate::telemetry::trace_headers();
        headers.insert(headers::MESSAGE_ID.to_owned(), id.clone());
        headers.insert(headers::EVENT_TYPE.to_owned(), M::TYPE.to_owned());
        headers.insert(headers::SCHEMA_VERSION.to_owned(), M::VERSION.to_string());
        Self {
            id,
            topic: M::TOPIC.to_owned(),
            key: message.key().to_owned(),
            payload: String::from_utf8(messages::encode(message)).unwrap_or_default(),
            headers,
        }
    }

    /// The headers as the outbox row stores them.
    pub fn headers_json(&self) -> String {
        serde_json::to_string(&self.headers).unwrap_or_default()
    }
}

/// A cloneable handle to one librdkafka producer (cloning shares the connection).
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Producer")
    }
}

impl Producer {
    pub fn new(settings: &KafkaSettings, client_id: &str) -> Result<Self, KafkaError> {
        let inner = super::client_config(settings, client_id)
            .set("acks", "all")
            .set(
                "enable.idempotence",
                if settings.idempotent_producer {
                    "true"
                } else {
                    "false"
                },
            )
            .set("linger.ms", settings.linger_ms.to_string())
            .set(
                "message.timeout.ms",
                settings.message_timeout_ms.to_string(),
            )
            .create()?;
        Ok(Self { inner })
    }

    /// Sends and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &BTreeMap<String, String>,
    ) -> Result<Delivery, KafkaError> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers::to_kafka(headers));
        self.inner
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(error, _message)| error)
    }

    /// Sends an [`OutboundMessage`] and waits for the acknowledgement.
    pub async fn send_message(&self, message: &OutboundMessage) -> Result<Delivery, KafkaError> {
        self.send(
            &message.topic,
            &message.key,
            message.payload.as_bytes(),
            &message.headers,
        )
        .await
    }

    /// Waits up to `timeout` for queued messages to be delivered.
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer as _;
        let _ = self.inner.flush(timeout);
    }
}
