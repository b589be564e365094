//! Fetch: a long poll. The response goes out as soon as any requested partition has records at
//! its fetch offset (or an error); otherwise the request waits up to `max_wait_ms`, woken by
//! the watch each partition's log signals on every append — never a sleep-and-requery loop.
//!
//! `min_bytes` is read as 1 (librdkafka's default): any data answers. Byte limits are honoured
//! loosely: whole batches only, and always at least one batch in a response that would
//! otherwise be empty. The last stable offset equals the high watermark (no transactions).

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};

use crate::broker::Broker;
use crate::log::Partition;

/// One requested partition, resolved against the registry once per request.
struct Wanted {
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    partition: Option<Arc<Partition>>,
}

pub(crate) async fn handle(broker: &Broker, request: &FetchRequest) -> FetchResponse {
    let wanted: Vec<(TopicName, Vec<Wanted>)> = request
        .topics
        .iter()
        .map(|topic| {
            let found = broker.topics.get(&topic.topic.0);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| Wanted {
                    index: p.partition,
                    fetch_offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    partition: found
                        .as_ref()
                        .and_then(|t| t.partition(p.partition).cloned()),
                })
                .collect();
            (topic.topic.clone(), partitions)
        })
        .collect();
    let mut watermarks: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .flat_map(|(_, partitions)| partitions.iter())
        .filter_map(|w| w.partition.as_ref().map(|p| p.subscribe()))
        .collect();
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + wait;
    let response_max = usize::try_from(request.max_bytes).unwrap_or(usize::MAX);

    loop {
        // Mark the current watermarks as seen *before* reading, so an append that lands between
        // the read and the wait still wakes us.
        for watermark in &mut watermarks {
            watermark.borrow_and_update();
        }
        let (responses, ready) = collect(&wanted, response_max);
        if ready || watermarks.is_empty() || Instant::now() >= deadline {
            return FetchResponse::default().with_responses(responses);
        }
        let any_append = select_all(watermarks.iter_mut().map(|w| Box::pin(w.changed())));
        match timeout_at(deadline, any_append).await {
            Ok((Ok(()), _, _)) => continue,
            // Deadline, or a log gone (never happens: partitions live as long as the broker).
            Ok((Err(_), _, _)) | Err(_) => {
                let (responses, _) = collect(&wanted, response_max);
                return FetchResponse::default().with_responses(responses);
            }
        }
    }
}

/// Reads every wanted partition once; `ready` when any has records or an error to report.
fn collect(
    wanted: &[(TopicName, Vec<Wanted>)],
    response_max: usize,
) -> (Vec<FetchableTopicResponse>, bool) {
    let mut taken = 0usize;
    let mut ready = false;
    let responses = wanted
        .iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|w| {
                    let data = PartitionData::default().with_partition_index(w.index);
                    let Some(partition) = &w.partition else {
                        ready = true;
                        return data
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_high_watermark(-1);
                    };
                    let limit = w.max_bytes.min(response_max.saturating_sub(taken));
                    let read = partition.read(w.fetch_offset, limit, taken == 0);
                    let data = data
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.high_watermark)
                        .with_log_start_offset(read.log_start_offset);
                    match read.records {
                        None => {
                            ready = true;
                            data.with_error_code(ResponseError::OffsetOutOfRange.code())
                        }
                        Some(records) => {
                            ready |= !records.is_empty();
                            taken += records.len();
                            data.with_records(Some(records))
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(name.clone())
                .with_partitions(partitions)
        })
        .collect();
    (responses, ready)
}
