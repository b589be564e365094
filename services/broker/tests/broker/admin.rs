//! Topic administration through librdkafka's admin client.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;

use crate::helpers::{producer, spawn_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_creates_topics_and_a_second_create_already_exists() {
    let broker = spawn_broker(&[("preexisting", 2)]).await;
    let bootstrap = broker.bootstrap_servers();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    let topics = [
        NewTopic::new("bookings", 4, TopicReplication::Fixed(1)),
        NewTopic::new("defaulted", -1, TopicReplication::Fixed(-1)),
    ];
    let created = admin
        .create_topics(&topics, &options)
        .await
        .expect("create topics");
    assert_eq!(
        created,
        vec![Ok("bookings".to_owned()), Ok("defaulted".to_owned())]
    );

    let again = admin
        .create_topics(
            &[NewTopic::new("bookings", 4, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .expect("create topics again");
    assert_eq!(
        again,
        vec![Err((
            "bookings".to_owned(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );
    let existing = admin
        .create_topics(
            &[NewTopic::new("preexisting", 1, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .expect("create the configured topic");
    assert_eq!(
        existing,
        vec![Err((
            "preexisting".to_owned(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let client = producer(&bootstrap, false);
    let metadata = client
        .client()
        .fetch_metadata(None, Duration::from_secs(5))
        .expect("metadata");
    let partitions = |name: &str| {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
    };
    assert_eq!(partitions("bookings"), Some(4));
    assert_eq!(partitions("defaulted"), Some(3));
    assert_eq!(partitions("preexisting"), Some(2));
    assert_eq!(metadata.brokers().len(), 1);
    assert_eq!(
        metadata.brokers()[0].port(),
        broker
            .bootstrap_servers()
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<i32>()
            .unwrap()
    );

    let unknown = client
        .client()
        .fetch_metadata(Some("nowhere"), Duration::from_secs(5))
        .expect("metadata of an unknown topic");
    assert_eq!(
        unknown.topics()[0].error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    drop((client, admin));
    broker.stop().await.expect("broker stops");
}
