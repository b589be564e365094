//! ListOffsets: where a partition's log starts and ends, or the first offset at a timestamp.
//!
//! This is what librdkafka asks when `auto.offset.reset` applies or a reader starts from
//! "beginning"/"end". Timestamp look-ups work at batch granularity (records are never decoded).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(crate) fn handle(broker: &Broker, request: &ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(wanted.partition_index);
                    let Some(partition) = broker
                        .topics
                        .partition(&topic.name.0, wanted.partition_index)
                    else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let (log_start, high_watermark) = partition.offsets();
                    let (offset, timestamp) = match wanted.timestamp {
                        LATEST => (high_watermark, -1),
                        EARLIEST => (log_start, -1),
                        MAX_TIMESTAMP => partition.max_timestamp().unwrap_or((-1, -1)),
                        at => partition.offset_for_timestamp(at).unwrap_or((-1, -1)),
                    };
                    response.with_offset(offset).with_timestamp(timestamp)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
