//! Reads a topic from the beginning with a throwaway consumer group: how tests see what was
//! really published (dead letters, replies).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
};

/// One record as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Publishes `record` to `topic` again, byte for byte: same key, payload and headers (so the
/// same message id and trace context) — a redelivery, as a broker would make one.
pub async fn republish(bootstrap: &str, topic: &str, record: &Record) -> anyhow::Result<()> {
    let producer = faultline_kit::messaging::Producer::new(
        &faultline_kit::config::KafkaSettings::new(bootstrap),
        "redeliverer",
    )?;
    let headers = record.headers.clone().into_iter().collect();
    producer
        .send(
            topic,
            record.key.as_deref().unwrap_or_default(),
            &record.payload,
            &headers,
        )
        .await?;
    Ok(())
}

/// The first record of `topic` matching `predicate`, waiting up to `limit` for it.
pub async fn find(
    bootstrap: &str,
    topic: &str,
    limit: Duration,
    predicate: impl Fn(&Record) -> bool,
) -> anyhow::Result<Record> {
    let records = read_until(bootstrap, topic, limit, |rs| rs.iter().any(&predicate)).await?;
    records
        .into_iter()
        .find(|r| predicate(r))
        .ok_or_else(|| anyhow::anyhow!("no matching record on {topic} within {limit:?}"))
}

/// Reads `topic` until `predicate` holds for the records read so far, or `limit` passes; returns
/// what was read either way.
pub async fn read_until(
    bootstrap: &str,
    topic: &str,
    limit: Duration,
    predicate: impl Fn(&[Record]) -> bool,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let started = Instant::now();
    let mut records = Vec::new();
    while !predicate(&records) && started.elapsed() < limit {
        let remaining = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining.min(Duration::from_millis(500)), consumer.recv()).await
        {
            Ok(Ok(message)) => records.push(Record {
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers: faultline_kit::messaging::headers::from_kafka(rdkafka::Message::headers(
                    &message,
                )),
                partition: message.partition(),
                offset: message.offset(),
            }),
            Ok(Err(error)) => tracing::debug!(%error, "reader error"),
            Err(_) => {}
        }
    }
    Ok(records)
}
