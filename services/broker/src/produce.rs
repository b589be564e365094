//! Produce: append each partition's batches to its log and answer with the base offsets.
//!
//! There is one replica, so acks 1 and -1 (all) are both satisfied by the append itself; acks 0
//! gets no response at all, as the protocol requires.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;

/// Appends every partition's records; `None` when the producer asked for no acknowledgement.
pub(crate) fn handle(broker: &Broker, request: &ProduceRequest) -> Option<ProduceResponse> {
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let found = broker.topics.get(&topic.name.0);
            let partitions = topic
                .partition_data
                .iter()
                .map(|data| {
                    let response = PartitionProduceResponse::default().with_index(data.index);
                    let partition = found.as_ref().and_then(|t| t.partition(data.index));
                    let outcome = match (partition, &data.records) {
                        (None, _) => Err(ResponseError::UnknownTopicOrPartition),
                        (Some(_), None) => Err(ResponseError::CorruptMessage),
                        (Some(partition), Some(records)) => partition.append(records),
                    };
                    match outcome {
                        Ok(appended) => response
                            .with_base_offset(appended.base_offset)
                            .with_log_start_offset(appended.log_start_offset),
                        Err(error) => {
                            tracing::debug!(topic = %topic.name.0, partition = data.index, %error, "produce refused");
                            response.with_error_code(error.code()).with_base_offset(-1)
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
