//! Metadata and FindCoordinator: with one node, both answers point at this broker.
//!
//! Every partition is led by this node at leader epoch 0 with itself as the only replica.
//! Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION; nothing is auto-created.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::topics::Topic;

/// The cluster id every Metadata response carries (v2+).
const CLUSTER_ID: &str = "faultline-embedded";

pub(crate) fn handle_metadata(broker: &Broker, request: &MetadataRequest) -> MetadataResponse {
    let config = &broker.config;
    let node = BrokerId(config.node_id);
    let topics = match &request.topics {
        None => broker
            .topics
            .all()
            .iter()
            .map(|topic| describe(topic, node))
            .collect(),
        Some(wanted) => wanted
            .iter()
            .map(|wanted| {
                let found = match &wanted.name {
                    Some(name) => broker.topics.get(&name.0),
                    None => broker.topics.get_by_id(wanted.topic_id),
                };
                match found {
                    Some(topic) => describe(&topic, node),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_name(wanted.name.clone())
                        .with_topic_id(wanted.topic_id),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node)
                .with_host(StrBytes::from_string(config.advertised_host.clone()))
                .with_port(i32::from(config.advertised_port)),
        ])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(node)
        .with_topics(topics)
}

fn describe(topic: &Topic, node: BrokerId) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions.len())
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(i32::try_from(index).unwrap_or(i32::MAX))
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(StrBytes::from_string(topic.name.clone()).into()))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

/// FindCoordinator v0-2: this node coordinates every group (and would every transaction).
pub(crate) fn handle_find_coordinator(
    broker: &Broker,
    _request: &FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = &broker.config;
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port))
}
