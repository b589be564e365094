//! A consumer fenced by another process claiming its static member id (what a lost session
//! followed by a reconnect can leave, and a fatal error for librdkafka) recreates its client at
//! once and has its partitions back within seconds — not after its session timeout plus the
//! unassigned grace — against the real broker.

use std::{sync::Arc, time::Duration};

use faultline_contracts::{messages::InventoryCommand, topics};
use faultline_harness::{Backend, broker::EmbeddedBroker, database_url, wait::eventually};
use faultline_kit::{
    config::DatabaseSettings,
    messaging::{Consumer, Delivered, HandleError, Handler, Producer, dead_letter::DeadLetter},
    readiness::Readiness,
    shutdown::CancellationToken,
    storage::{Db, Tx},
};
use rdkafka::consumer::Consumer as _;

/// Applies nothing: the test is about group membership.
struct Ignore;

impl Handler for Ignore {
    type Message = InventoryCommand;

    async fn handle(
        &self,
        _tx: &mut Tx,
        _message: &InventoryCommand,
        _delivered: &Delivered,
    ) -> Result<(), HandleError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_consumer_recreates_itself_and_gets_its_partitions_back_at_once() {
    let broker = EmbeddedBroker::start(2).await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database_url(Backend::Sqlite, dir.path(), "fenced")
        .await
        .expect("database");
    let db = Db::connect_and_migrate(
        &DatabaseSettings::new(url),
        sqlx::migrate::Migrator::DEFAULT,
    )
    .await
    .expect("migrate");
    let mut kafka = broker.kafka_settings();
    // Long enough that recovery through the unassigned grace (session + 15 s) would miss the
    // deadline below.
    kafka.session_timeout_ms = 30_000;
    let readiness = Readiness::new();
    let producer = Producer::new(&kafka, "fenced").expect("producer");
    let consumer = Consumer::new(
        "fenced",
        "fenced-1",
        &[topics::INVENTORY_COMMANDS],
        kafka.clone(),
        db,
        DeadLetter::new(producer, "fenced"),
        Arc::new(Ignore),
    )
    .with_readiness(&readiness);
    let stop = CancellationToken::new();
    let running = tokio::spawn(consumer.run(stop.clone()));
    let ready = || async { readiness.snapshot().0 };
    eventually(
        "the consumer has partitions",
        Duration::from_secs(30),
        ready,
    )
    .await;

    // Another client joins under the same static member id: the broker fences the first.
    let intruder: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("group.id", "fenced")
        .set("group.instance.id", "fenced-1")
        .set("session.timeout.ms", "30000")
        .create()
        .expect("intruder");
    intruder
        .subscribe(&[topics::INVENTORY_COMMANDS])
        .expect("subscribe");
    let polling = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(3), intruder.recv()).await;
        intruder
    });
    eventually(
        "the consumer is fenced (not ready)",
        Duration::from_secs(20),
        || async { !readiness.snapshot().0 },
    )
    .await;
    // The intruder leaves; the fenced consumer must come back well inside session + 15 s.
    drop(polling.await.expect("intruder task"));
    eventually(
        "the fenced consumer has its partitions back",
        Duration::from_secs(15),
        ready,
    )
    .await;
    stop.cancel();
    running.await.expect("join").expect("consumer");
}
