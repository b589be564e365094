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
        match self
            .producer
            .send(topics::DEAD_LETTER, &key, payload, &out)
            .await
        {
            Ok(_) => {}
            // The broker let it in, but the producer (or the broker, for the dead-letter topic)
            // refuses to send it on whole. Retrying would stall the partition for ever: the
            // message is kept cut down instead, and says so.
            Err(error) if too_large(&error) => {
                let (payload, out) = cut_down(payload, out);
                self.producer
                    .send(topics::DEAD_LETTER, &key, payload, &out)
                    .await?;
            }
            Err(error) => return Err(error),
        }
        tracing::warn!(
            messaging.dead_letter = true,
            reason,
            source = %format!("{}/{}/{}", delivered.topic, delivered.partition, delivered.offset),
            "message dead-lettered"
        );
        Ok(())
    }
}

/// How much of a refused message's payload, and of each header value, is kept when the whole
/// does not fit in a Kafka message.
const KEPT_BYTES: usize = 64 * 1024;

fn too_large(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize | Code::MessageBatchTooLarge)
    )
}

/// The first [`KEPT_BYTES`] of the payload and of each header value, with the original sizes in
/// [`headers::DEAD_LETTER_TRUNCATED`].
fn cut_down(
    payload: &[u8],
    mut out: BTreeMap<String, String>,
) -> (&[u8], BTreeMap<String, String>) {
    let mut sizes = vec![format!("payload={}", payload.len())];
    for (name, value) in &mut out {
        if value.len() > KEPT_BYTES {
            sizes.push(format!("{name}={}", value.len()));
            let mut end = KEPT_BYTES;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
    }
    out.insert(headers::DEAD_LETTER_TRUNCATED.to_owned(), sizes.join(","));
    (&payload[..payload.len().min(KEPT_BYTES)], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_down_message_keeps_its_beginning_and_says_how_long_it_was() {
        let payload = vec![b'x'; 1024 * 1024];
        let out: BTreeMap<String, String> = [
            ("message-id".to_owned(), "m-1".to_owned()),
            ("traceparent".to_owned(), "é".repeat(KEPT_BYTES)),
        ]
        .into();
        let (kept, out) = cut_down(&payload, out);
        assert_eq!(kept.len(), KEPT_BYTES);
        assert_eq!(out["message-id"], "m-1");
        assert!(out["traceparent"].len() <= KEPT_BYTES);
        assert_eq!(
            out[headers::DEAD_LETTER_TRUNCATED],
            format!("payload=1048576,traceparent={}", 2 * KEPT_BYTES)
        );
    }
}
