//! The dead-letter topic: where a consumer puts a message it can never process (undecodable,
//! unknown type, unsupported version, contract violation), with the reason, so it is not lost
//! and does not block the partition.

use std::collections::BTreeMap;

use faultline_contracts::topics;
use rdkafka::error::KafkaError;

use super::{Producer, consumer::Delivered, headers};

/// Publishes refused messages to [`topics::DEAD_LETTER`].
#[derive(Debug, Clone)]
pub struct DeadLetter {
    producer: Producer,
    consumer: String,
}

impl DeadLetter {
    pub fn new(producer: Producer, consumer: impl Into<String>) -> Self {
        Self {
            producer,
            consumer: consumer.into(),
        }
    }

    /// Sends the original key, payload and headers, plus the reason and the source position.
    pub async fn send(
        &self,
        delivered: &Delivered,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), KafkaError> {
        let mut out: BTreeMap<String, String> = delivered
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert(headers::DEAD_LETTER_REASON.to_owned(), reason.to_owned());
        out.insert(
            headers::DEAD_LETTER_SOURCE.to_owned(),
            format!(
                "{}/{}/{}",
                delivered.topic, delivered.partition, delivered.offset
            ),
        );
        out.insert(
            headers::DEAD_LETTER_CONSUMER.to_owned(),
            self.consumer.clone(),
        );
        let key = delivered.key.clone().unwrap_or_default();
        self.producer
            .send(topics::DEAD_LETTER, &key, payload, &out)
            .await?;
        tracing::warn!(
            messaging.dead_letter = true,
            reason,
            source = %format!("{}/{}/{}", delivered.topic, delivered.partition, delivered.offset),
            "message dead-lettered"
        );
        Ok(())
    }
}
