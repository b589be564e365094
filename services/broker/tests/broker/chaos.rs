//! Faults between clients and broker: a network partition longer than the session timeout.

use std::time::Duration;

use faultline_broker::{BrokerConfig, serve};
use rdkafka::consumer::Consumer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::helpers::{Running, eventually, init_tracing, member, producer, send_all};
use crate::proxy::Proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_black_holed_past_its_session_timeout_reforms_and_loses_nothing() {
    init_tracing();
    // Clients only ever see the proxy: the broker advertises the proxy's port.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
    let broker_addr = listener.local_addr().expect("broker address");
    let proxy = Proxy::start(
        TcpListener::bind("127.0.0.1:0").await.expect("bind proxy"),
        broker_addr,
    );
    let config = BrokerConfig {
        advertised_host: "127.0.0.1".to_owned(),
        advertised_port: proxy.addr.port(),
        node_id: 1,
        default_partitions: 1,
        topics: vec![("partitioned".to_owned(), 4)],
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));
    let bootstrap = proxy.addr.to_string();

    let producer = producer(&bootstrap, true);
    let [a, b] = ["a", "b"].map(|instance| {
        let consumer = member(&bootstrap, "partitioned-readers", Some(instance));
        consumer.subscribe(&["partitioned"]).expect("subscribe");
        Running::start(consumer)
    });
    eventually(Duration::from_secs(15), "a 2/2 split", || {
        a.assigned() == 2 && b.assigned() == 2
    })
    .await;
    send_all(&producer, "partitioned", 0..100).await;
    let seen = |a: &Running, b: &Running| {
        let mut all = a.seqs();
        all.extend(b.seqs());
        all.len()
    };
    eventually(Duration::from_secs(10), "the first 100", || {
        seen(&a, &b) == 100
    })
    .await;

    proxy.black_hole(true);
    tokio::time::sleep(Duration::from_secs(9)).await; // session timeout is 6 s
    proxy.black_hole(false);

    send_all(&producer, "partitioned", 100..200).await;
    eventually(
        Duration::from_secs(30),
        "all 200 after the partition heals",
        || seen(&a, &b) == 200,
    )
    .await;
    eventually(Duration::from_secs(15), "a 2/2 split again", || {
        a.assigned() == 2 && b.assigned() == 2
    })
    .await;

    a.close().await;
    b.close().await;
    drop(producer);
    let _ = stop.send(());
    server.await.expect("server task").expect("serve");
}
