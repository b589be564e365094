//! The long poll: a waiting fetch is answered as soon as a produce appends, not at its timeout.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::helpers::{producer, send, spawn_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_returns_within_milliseconds_of_a_produce() {
    let broker = spawn_broker(&[("latency", 1)]).await;
    let bootstrap = broker.bootstrap_servers();
    let producer = producer(&bootstrap, true);
    send(&producer, "latency", 0).await; // warm the producer's connection and metadata
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "latency-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "500")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("latency", 0, Offset::Beginning)
        .expect("add");
    reader.assign(&assignment).expect("assign");
    let first = tokio::time::timeout(Duration::from_secs(10), reader.recv()).await;
    assert!(matches!(first, Ok(Ok(_))), "the warm-up message arrives");

    let mut latencies = Vec::new();
    for seq in 1..=20u32 {
        // Let the reader's fetch settle into its long poll before producing.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = Instant::now();
        let (_, offset) = send(&producer, "latency", seq).await;
        let message = tokio::time::timeout(Duration::from_secs(5), reader.recv())
            .await
            .expect("message within 5 s")
            .expect("message");
        assert_eq!(message.offset(), offset);
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    eprintln!("produce → consume latency: median {median:?}, worst {worst:?}");
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(
        worst < Duration::from_millis(250),
        "worst {worst:?} (fetch.wait.max.ms is 500)"
    );
    broker.stop().await.expect("broker stops");
}
