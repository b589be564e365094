//! Consumer groups under membership changes: joins, leaves, static restarts, silent members.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use crate::helpers::{Running, eventually, member, producer, send, send_all, spawn_broker};

/// Produces numbered messages every few milliseconds until stopped; returns how many.
struct Trickle {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u32>,
}

impl Trickle {
    fn start(producer: FutureProducer, topic: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    send(&producer, topic, seq).await;
                    seq += 1;
                    sent.store(seq, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seq
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("producer task")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_takes_half_and_gives_it_back_when_it_leaves_without_losing_a_message() {
    let broker = spawn_broker(&[("split", 4)]).await;
    let bootstrap = broker.bootstrap_servers();
    let first = member(&bootstrap, "splitters", None);
    first.subscribe(&["split"]).expect("subscribe");
    let first = Running::start(first);
    eventually(Duration::from_secs(15), "the first member owns 4", || {
        first.assigned() == 4
    })
    .await;

    let trickle = Trickle::start(producer(&bootstrap, true), "split");
    let second = member(&bootstrap, "splitters", None);
    second.subscribe(&["split"]).expect("subscribe");
    let second = Running::start(second);
    eventually(Duration::from_secs(15), "a 2/2 split", || {
        first.assigned() == 2 && second.assigned() == 2
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the second member consumes",
        || !second.seqs().is_empty(),
    )
    .await;
    let listed = first
        .consumer
        .fetch_group_list(Some("splitters"), Duration::from_secs(5))
        .expect("ListGroups + DescribeGroups");
    let group = &listed.groups()[0];
    assert_eq!(
        (group.name(), group.state(), group.protocol()),
        ("splitters", "Stable", "range")
    );
    assert_eq!(group.members().len(), 2);
    assert!(
        group
            .members()
            .iter()
            .all(|m| m.client_host() == "/127.0.0.1")
    );

    let from_second: HashSet<u32> = second.close().await.into_iter().map(|r| r.seq).collect();
    eventually(
        Duration::from_secs(15),
        "the first member owns 4 again",
        || first.assigned() == 4,
    )
    .await;
    let produced = trickle.finish().await;
    eventually(
        Duration::from_secs(20),
        "every message consumed by someone",
        || {
            let mut all = first.seqs();
            all.extend(&from_second);
            all.len() == usize::try_from(produced).unwrap()
        },
    )
    .await;
    first.close().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_gets_its_partitions_back_and_resumes_after_its_commit() {
    let broker = spawn_broker(&[("static", 2)]).await;
    let bootstrap = broker.bootstrap_servers();
    let producer = producer(&bootstrap, true);
    send_all(&producer, "static", 0..50).await;

    let before = member(&bootstrap, "statics", Some("worker-1"));
    before.subscribe(&["static"]).expect("subscribe");
    let before = Running::start(before);
    eventually(Duration::from_secs(15), "the first 50", || {
        before.seqs().len() == 50
    })
    .await;
    // NoOffset: the 200 ms auto-commit already committed every stored offset (a busy machine
    // gets there first); nothing is left to commit, which is what this call makes sure of.
    match before.consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => panic!("commit: {error:?}"),
    }
    before.close().await; // static: no LeaveGroup, like a killed process

    send_all(&producer, "static", 50..100).await;
    let after = member(&bootstrap, "statics", Some("worker-1"));
    after.subscribe(&["static"]).expect("subscribe");
    let after = Running::start(after);
    // Well within the 6 s session: the new incarnation replaces the old one at once.
    let took = eventually(Duration::from_secs(5), "the next 50", || {
        after.seqs().len() >= 50
    })
    .await;
    assert_eq!(after.assigned(), 2);
    let seqs = after.seqs();
    assert_eq!(
        seqs,
        (50..100).collect(),
        "resumed exactly after the committed offsets"
    );
    eprintln!("static member resumed in {took:?}");
    after.close().await;
    drop(producer);
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_goes_silent_is_expired_and_the_other_gets_its_partitions() {
    let broker = spawn_broker(&[("expiry", 4)]).await;
    let bootstrap = broker.bootstrap_servers();
    let survivor = member(&bootstrap, "expirers", None);
    survivor.subscribe(&["expiry"]).expect("subscribe");
    let survivor = Running::start(survivor);
    let doomed = member(&bootstrap, "expirers", Some("doomed"));
    doomed.subscribe(&["expiry"]).expect("subscribe");
    let doomed = Running::start(doomed);
    eventually(Duration::from_secs(15), "a 2/2 split", || {
        survivor.assigned() == 2 && doomed.assigned() == 2
    })
    .await;

    // A static member that closes sends no LeaveGroup: it simply stops heartbeating.
    let silenced = tokio::time::Instant::now();
    doomed.close().await;
    let producer = producer(&bootstrap, true);
    send_all(&producer, "expiry", 0..100).await;
    eventually(Duration::from_secs(11), "the survivor owns all 4", || {
        survivor.assigned() == 4
    })
    .await;
    let took = silenced.elapsed();
    eprintln!("partitions of the silent member reassigned after {took:?}");
    assert!(
        took >= Duration::from_secs(5),
        "not before the session timeout: {took:?}"
    );
    eventually(Duration::from_secs(10), "all 100 messages", || {
        survivor.seqs().len() == 100
    })
    .await;
    survivor.close().await;
    broker.stop().await.expect("broker stops");
}
