//! Producing and consuming: ordering, headers, commits, manual assignment.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::helpers::{Running, eventually, member, producer, send_all, spawn_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_receives_every_message_in_partition_order_with_headers_and_commits() {
    let broker = spawn_broker(&[("orders", 4)]).await;
    let bootstrap = broker.bootstrap_servers();
    let idempotent = producer(&bootstrap, true);
    send_all(&idempotent, "orders", 0..200).await;

    let consumer = member(&bootstrap, "orders-readers", None);
    consumer.subscribe(&["orders"]).expect("subscribe");
    let running = Running::start(consumer);
    eventually(Duration::from_secs(20), "200 messages", || {
        running.received.lock().unwrap().len() >= 200
    })
    .await;

    let received = running.received.lock().unwrap().clone();
    assert_eq!(received.len(), 200, "no duplicates");
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<String, u32> = HashMap::new();
    for message in &received {
        let previous = last_offset.insert(message.partition, message.offset);
        assert!(
            previous.is_none_or(|p| p < message.offset),
            "offsets increase per partition"
        );
        let previous = last_seq.insert(message.key.clone(), message.seq);
        assert!(
            previous.is_none_or(|p| p < message.seq),
            "a key's messages arrive in order"
        );
        assert_eq!(
            message.headers,
            vec![
                ("seq".to_owned(), message.seq.to_string()),
                ("trace".to_owned(), "00-abc-def-01".to_owned())
            ]
        );
    }

    // Auto-commit of the stored offsets lands within a few intervals.
    let consumer = running.consumer.clone();
    eventually(Duration::from_secs(10), "offsets committed", || {
        let committed = consumer
            .committed(Duration::from_secs(2))
            .expect("committed");
        let total: i64 = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .sum();
        total == 200
    })
    .await;
    running.close().await;

    // A manual-assign reader without group management reads it all from the beginning.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused-by-assign")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..4 {
        assignment
            .add_partition_offset("orders", partition, Offset::Beginning)
            .expect("add");
    }
    reader.assign(&assignment).expect("assign");
    let mut count = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count < 200 && std::time::Instant::now() < deadline {
        if let Some(message) = reader.poll(Duration::from_millis(100)) {
            let message = message.expect("message");
            assert_eq!(message.headers().map(|h| h.count()), Some(2));
            count += 1;
        }
    }
    assert_eq!(count, 200);
    drop((reader, idempotent));
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_producer_works_too() {
    let broker = spawn_broker(&[("plain", 2)]).await;
    let bootstrap = broker.bootstrap_servers();
    send_all(&producer(&bootstrap, false), "plain", 0..50).await;
    let consumer = member(&bootstrap, "plain-readers", None);
    consumer.subscribe(&["plain"]).expect("subscribe");
    let running = Running::start(consumer);
    eventually(Duration::from_secs(20), "50 messages", || {
        running.seqs().len() == 50
    })
    .await;
    running.close().await;
    broker.stop().await.expect("broker stops");
}
