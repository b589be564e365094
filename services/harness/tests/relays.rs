//! Two outbox relays on one database — what two replicas of a service run — against the real
//! broker, on PostgreSQL and on one shared SQLite file: every message reaches the broker, both
//! relays publish a share, and each key's messages arrive in the order they were written.

use std::{collections::BTreeMap, time::Duration};

use faultline_harness::{Backend, broker::EmbeddedBroker, database_url, topic_reader, wait};
use faultline_kit::{
    config::DatabaseSettings,
    messaging::{OutboundMessage, Producer, headers},
    outbox::{
        self, Outbox,
        relay::{Relay, RelaySettings},
    },
    shutdown::CancellationToken,
    storage::Db,
};

const TOPIC: &str = faultline_contracts::topics::INVENTORY_COMMANDS;
const KEYS: usize = 12;
const COMMITS: usize = 150;
const PER_COMMIT: usize = 4;

async fn two_relays_share_one_outbox(backend: Backend) {
    let broker = EmbeddedBroker::start(4).await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database_url(backend, dir.path(), "relays")
        .await
        .expect("database");
    let settings = DatabaseSettings::new(url);
    let writer = Db::connect_and_migrate(&settings, sqlx::migrate::Migrator::DEFAULT)
        .await
        .expect("migrate");
    let stop = CancellationToken::new();
    let mut relays = Vec::new();
    let mut outboxes = Vec::new();
    for replica in ["relays-1", "relays-2"] {
        // Each replica has its own pool and producer, as two processes would.
        let db = Db::connect(&settings).await.expect("connect");
        let producer = Producer::new(&broker.kafka_settings(), replica).expect("producer");
        let outbox = Outbox::new();
        let relay = Relay::new(
            db,
            producer,
            &outbox,
            RelaySettings::new(replica, Duration::from_secs(10)),
        );
        relays.push(tokio::spawn(relay.run(stop.clone())));
        outboxes.push(outbox);
    }

    // Commits of a few messages each, keys interleaved, while both relays run: message `n` of a
    // key carries sequence number `n` in its payload.
    let mut next = [0usize; KEYS];
    for commit in 0..COMMITS {
        let mut tx = writer.begin().await.expect("begin");
        for slot in 0..PER_COMMIT {
            let key = (commit * PER_COMMIT + slot) % KEYS;
            let id = uuid::Uuid::now_v7().to_string();
            let message = OutboundMessage {
                headers: [(headers::MESSAGE_ID.to_owned(), id.clone())].into(),
                id,
                topic: TOPIC.to_owned(),
                key: format!("key-{key}"),
                payload: next[key].to_string(),
            };
            next[key] += 1;
            outbox::write(&mut tx, &message).await.expect("write");
        }
        tx.commit().await.expect("commit");
        outboxes.iter().for_each(Outbox::notify);
        if commit % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let total = COMMITS * PER_COMMIT;
    wait::eventually(
        "every outbox row published",
        Duration::from_secs(60),
        || {
            let pool = writer.pool().clone();
            async move {
                match outbox::unpublished(&pool).await {
                    Ok(0) => Ok(()),
                    Ok(left) => Err(format!("{left} rows unpublished")),
                    Err(error) => Err(error.to_string()),
                }
            }
        },
    )
    .await;
    stop.cancel();
    for relay in relays {
        relay.await.expect("relay task");
    }

    let records = topic_reader::read_until(
        &broker.bootstrap(),
        TOPIC,
        Duration::from_secs(30),
        |records| records.len() >= total,
    )
    .await
    .expect("read back");
    let mut by_key: BTreeMap<String, Vec<(i32, i64, usize)>> = BTreeMap::new();
    let mut by_relay: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        let sequence: usize = String::from_utf8_lossy(&record.payload)
            .parse()
            .expect("a sequence number");
        by_key
            .entry(record.key.clone().expect("a key"))
            .or_default()
            .push((record.partition, record.offset, sequence));
        *by_relay
            .entry(
                record
                    .headers
                    .get(headers::PRODUCER)
                    .cloned()
                    .unwrap_or_default(),
            )
            .or_default() += 1;
    }
    assert_eq!(by_key.len(), KEYS, "every key arrived");
    for (key, mut arrived) in by_key {
        arrived.sort();
        assert!(
            arrived.windows(2).all(|pair| pair[0].0 == pair[1].0),
            "{key}: one partition"
        );
        // At least once: a redelivered message may repeat, but never one before its elders.
        let mut first_seen = Vec::new();
        for (_, _, sequence) in arrived {
            if !first_seen.contains(&sequence) {
                first_seen.push(sequence);
            }
        }
        let written: Vec<usize> = (0..first_seen.len()).collect();
        assert_eq!(
            first_seen, written,
            "{key}: every message, in the order written"
        );
        assert_eq!(
            first_seen.len(),
            next[key.trim_start_matches("key-").parse::<usize>().expect("n")]
        );
    }
    assert!(
        by_relay.len() == 2 && by_relay.values().all(|n| *n > 0),
        "both relays published a share: {by_relay:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_a_postgres_outbox_in_key_order() {
    two_relays_share_one_outbox(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_a_sqlite_outbox_in_key_order() {
    two_relays_share_one_outbox(Backend::Sqlite).await;
}
