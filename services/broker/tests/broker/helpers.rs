//! Shared test plumbing: a broker per test, client builders with the settings our services use,
//! a consuming task that records what it saw, and a polling `eventually`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_broker::EmbeddedBroker;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "faultline_broker=debug".into()),
            )
            .with_test_writer()
            .try_init();
    }
}

pub async fn spawn_broker(topics: &[(&str, i32)]) -> EmbeddedBroker {
    init_tracing();
    let topics = topics
        .iter()
        .map(|(name, n)| ((*name).to_owned(), *n))
        .collect();
    EmbeddedBroker::start(topics, 3)
        .await
        .expect("broker starts")
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    if let Ok(debug) = std::env::var("RDKAFKA_DEBUG") {
        config.set("debug", debug);
    }
    config
}

pub fn producer(bootstrap: &str, idempotent: bool) -> FutureProducer {
    base_config(bootstrap)
        .set("enable.idempotence", idempotent.to_string())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// A classic group member with our services' settings: stored offsets auto-committed every
/// 200 ms, 6 s session, fast heartbeats so rebalances in tests take well under a second.
pub fn member(bootstrap: &str, group: &str, instance: Option<&str>) -> StreamConsumer {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .set("auto.offset.reset", "earliest");
    if let Some(instance) = instance {
        config.set("group.instance.id", instance);
    }
    config.create().expect("consumer")
}

/// Sends `seq` as payload and as the `seq` header, plus a `trace` header, keyed by `seq % 10`.
pub async fn send(producer: &FutureProducer, topic: &str, seq: u32) -> (i32, i64) {
    let key = format!("key-{}", seq % 10);
    let payload = seq.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "seq",
            value: Some(payload.as_str()),
        })
        .insert(Header {
            key: "trace",
            value: Some("00-abc-def-01"),
        });
    let record = FutureRecord::to(topic)
        .key(&key)
        .payload(&payload)
        .headers(headers);
    let delivery = producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("delivered");
    (delivery.partition, delivery.offset)
}

pub async fn send_all(producer: &FutureProducer, topic: &str, seqs: std::ops::Range<u32>) {
    futures::future::join_all(seqs.map(|seq| send(producer, topic, seq))).await;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub seq: u32,
    pub headers: Vec<(String, String)>,
}

/// A consumer polled by its own task, recording every message (and storing its offset).
pub struct Running {
    pub consumer: Arc<StreamConsumer>,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    pub fn start(consumer: StreamConsumer) -> Self {
        let consumer = Arc::new(consumer);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn({
            let consumer = Arc::clone(&consumer);
            let received = Arc::clone(&received);
            async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        message = consumer.recv() => {
                            let Ok(message) = message else { continue };
                            let headers = message
                                .headers()
                                .map(|headers| {
                                    headers
                                        .iter()
                                        .map(|h| {
                                            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                            (h.key.to_owned(), value.unwrap_or_default())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            let seq = std::str::from_utf8(message.payload().unwrap_or_default())
                                .ok()
                                .and_then(|p| p.parse().ok())
                                .unwrap_or(u32::MAX);
                            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                            received.lock().expect("received lock").push(Received {
                                partition: message.partition(),
                                offset: message.offset(),
                                key,
                                seq,
                                headers,
                            });
                            consumer.store_offset_from_message(&message).expect("store offset");
                        }
                    }
                }
            }
        });
        Self {
            consumer,
            received,
            stop,
            task,
        }
    }

    pub fn assigned(&self) -> usize {
        self.consumer
            .assignment()
            .map(|list| list.count())
            .unwrap_or(0)
    }

    pub fn seqs(&self) -> HashSet<u32> {
        self.received
            .lock()
            .expect("received lock")
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    /// Stops polling and closes the client (off the async threads: close blocks). A dynamic
    /// member leaves the group; a static one just goes silent, as a killed process would.
    pub async fn close(self) -> Vec<Received> {
        let _ = self.stop.send(true);
        self.task.await.expect("consumer task");
        let consumer = self.consumer;
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .expect("close");
        self.received.lock().expect("received lock").clone()
    }
}

/// Polls `condition` every 50 ms until it holds or `within` passes; returns the time it took.
pub async fn eventually(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if condition() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}
