//! OffsetCommit and OffsetFetch: the wire side of committed offsets. Whether a member may
//! commit is the group's rule (see `group::state`); storage is a map in the group.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::{Committed, OffsetBatch};

/// OffsetCommit v2-8. Partitions that do not exist answer UNKNOWN_TOPIC_OR_PARTITION; the rest
/// share the group's verdict.
pub(crate) fn handle_commit(
    broker: &Broker,
    request: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    let mut batch: OffsetBatch = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            if broker
                .topics
                .partition(&topic.name.0, partition.partition_index)
                .is_some()
            {
                let committed = Committed {
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: partition.committed_metadata.as_ref().map(|m| m.to_string()),
                };
                batch.push((
                    (topic.name.0.to_string(), partition.partition_index),
                    committed,
                ));
            }
        }
    }
    let verdict = broker.groups.commit(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id_or_member_epoch,
        batch,
    );
    if let Err(error) = verdict {
        tracing::debug!(group = %request.group_id.0, member = %request.member_id, %error, "offset commit refused");
    }
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let exists = broker
                        .topics
                        .partition(&topic.name.0, partition.partition_index)
                        .is_some();
                    let error = match (exists, verdict) {
                        (false, _) => ResponseError::UnknownTopicOrPartition.code(),
                        (true, Err(error)) => error.code(),
                        (true, Ok(())) => 0,
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// OffsetFetch v1-7: the committed offset per partition, -1 where nothing was committed;
/// `topics: null` (v2+) asks for everything the group committed.
pub(crate) fn handle_fetch(broker: &Broker, request: &OffsetFetchRequest) -> OffsetFetchResponse {
    let wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partition_indexes
                    .iter()
                    .map(|index| (topic.name.0.to_string(), *index))
            })
            .collect()
    });
    let committed = broker.groups.committed(&request.group_id.0, wanted);
    let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
    for ((topic, index), committed) in committed {
        let partition = OffsetFetchResponsePartition::default().with_partition_index(index);
        let partition = match committed {
            Some(committed) => partition
                .with_committed_offset(committed.offset)
                .with_committed_leader_epoch(committed.leader_epoch)
                .with_metadata(Some(StrBytes::from_string(
                    committed.metadata.unwrap_or_default(),
                ))),
            None => partition.with_committed_offset(-1),
        };
        match topics.last_mut() {
            Some(last) if last.name.0.as_str() == topic => last.partitions.push(partition),
            _ => topics.push(
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetFetchResponse::default().with_topics(topics)
}
