//! The headers every Faultline message carries, and conversions between Kafka's header types
//! and plain string maps (the form stored in outbox rows and read by the trace propagator).

use std::collections::{BTreeMap, HashMap};

use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};

/// Unique per message; the inbox dedupes on it. A re-published message keeps it.
pub const MESSAGE_ID: &str = "message-id";
/// The contract type name (`HoldSeat`, `SeatHeld`, …).
pub const EVENT_TYPE: &str = "event-type";
/// The contract's schema version.
pub const SCHEMA_VERSION: &str = "schema-version";
/// The instance id of the process whose relay published it. With the record's timestamp it is
/// the evidence that a consumer span's parent (that process's `publish` span) was lost with the
/// process when it was SIGKILLed before exporting it (see the chaos traces checker).
pub const PRODUCER: &str = "producer";
/// Set on dead-lettered messages: why the consumer refused it.
pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
/// Set on dead-lettered messages: `topic/partition/offset` it was read from.
pub const DEAD_LETTER_SOURCE: &str = "dead-letter-source";
/// Set on a dead-lettered message too large to send whole: the original sizes
/// (`payload=N[,header=N…]`) of what was cut to its first 64 KiB.
pub const DEAD_LETTER_TRUNCATED: &str = "dead-letter-truncated";
/// Set on dead-lettered messages: the consumer group that refused it.
pub const DEAD_LETTER_CONSUMER: &str = "dead-letter-consumer";

/// Builds Kafka headers from a map.
pub fn to_kafka(map: &BTreeMap<String, String>) -> OwnedHeaders {
    map.iter()
        .fold(OwnedHeaders::new_with_capacity(map.len()), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_str()),
            })
        })
}

/// Reads Kafka headers into a map (values that are not UTF-8 are replaced lossily).
pub fn from_kafka(headers: Option<&BorrowedHeaders>) -> HashMap<String, String> {
    let Some(headers) = headers else {
        return HashMap::new();
    };
    headers
        .iter()
        .map(|h| {
            let value = h
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            (h.key.to_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_map_survives_kafka_headers() {
        let map: BTreeMap<String, String> = [
            (MESSAGE_ID.to_owned(), "m-1".to_owned()),
            ("traceparent".to_owned(), "00-abc-def-01".to_owned()),
        ]
        .into();
        let owned = to_kafka(&map);
        assert_eq!(owned.count(), 2);
        let first = owned.get(0);
        assert_eq!(first.key, "message-id");
        assert_eq!(first.value, Some(&b"m-1"[..]));
    }
}
