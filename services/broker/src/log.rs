//! One partition's log: the stored record batches, its watermarks, retention, and the watch that
//! wakes long-polling fetches when a produce appends.
//!
//! A batch is kept as the producer's bytes with the assigned base offset written in, so a fetch
//! is a binary search for the batch holding the fetch offset followed by a concatenation; the
//! broker never decodes a record. librdkafka skips records below its fetch offset, so returning
//! the whole batch that contains it is correct.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::batch::{self, BatchHeader};
use crate::idempotence::{ProducerStates, SequenceCheck};
use crate::sync::lock;

/// Bytes kept per partition; the oldest batches are dropped beyond it (the log start moves on).
/// Memory, not disk: an embedded run that produces for hours must not grow without bound.
pub(crate) const RETENTION_BYTES: usize = 128 * 1024 * 1024;

/// One partition: its log behind a mutex, and the high watermark as a watch for fetches.
#[derive(Debug)]
pub(crate) struct Partition {
    log: Mutex<Log>,
    high_watermark: watch::Sender<i64>,
}

#[derive(Debug, Default)]
struct Log {
    batches: VecDeque<Stored>,
    log_start_offset: i64,
    next_offset: i64,
    bytes: usize,
    producers: ProducerStates,
}

#[derive(Debug)]
struct Stored {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    bytes: Bytes,
}

/// What an accepted produce of one partition reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

/// What a fetch of one partition found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// `None` when the fetch offset is outside `[log_start_offset, high_watermark]`.
    pub records: Option<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl Partition {
    pub(crate) fn new() -> Self {
        Self {
            log: Mutex::new(Log::default()),
            high_watermark: watch::Sender::new(0),
        }
    }

    /// A receiver that changes whenever this partition's high watermark moves.
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Appends the batches of one produce request's partition, deduplicating retries of
    /// idempotent producers. The base offset reported is that of the first batch.
    pub(crate) fn append(&self, records: &Bytes) -> Result<Appended, ResponseError> {
        let batches = batch::split(records).map_err(|_| ResponseError::CorruptMessage)?;
        let mut log = lock(&self.log);
        let mut first_base = None;
        let mut grew = false;
        for (header, bytes) in &batches {
            let base_offset = match log.producers.check(header) {
                SequenceCheck::Reject(error) => return Err(error),
                SequenceCheck::Duplicate { base_offset } => base_offset,
                SequenceCheck::Append => {
                    grew = true;
                    log.push(header, bytes)
                }
            };
            first_base.get_or_insert(base_offset);
        }
        log.enforce_retention();
        let appended = Appended {
            base_offset: first_base.unwrap_or(log.next_offset),
            log_start_offset: log.log_start_offset,
        };
        let high_watermark = log.next_offset;
        drop(log);
        if grew {
            self.high_watermark.send_replace(high_watermark);
        }
        Ok(appended)
    }

    /// Reads from `offset`: whole batches, starting with the one containing `offset`, up to
    /// `max_bytes` — but at least one batch when `at_least_one` (so a batch larger than the
    /// limit is never stuck), as Kafka does since KIP-74.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, at_least_one: bool) -> Read {
        let log = lock(&self.log);
        let mut read = Read {
            records: None,
            high_watermark: log.next_offset,
            log_start_offset: log.log_start_offset,
        };
        if offset < log.log_start_offset || offset > log.next_offset {
            return read;
        }
        let first = log
            .batches
            .partition_point(|stored| stored.last_offset < offset);
        let mut taken = 0usize;
        let mut chosen = Vec::new();
        for stored in log.batches.range(first..) {
            let fits = taken + stored.bytes.len() <= max_bytes;
            let first_of_response = at_least_one && chosen.is_empty();
            if !fits && !first_of_response {
                break;
            }
            taken += stored.bytes.len();
            chosen.push(stored.bytes.clone());
        }
        drop(log);
        read.records = Some(concat(chosen, taken));
        read
    }

    /// `(log_start_offset, high_watermark)`.
    pub(crate) fn offsets(&self) -> (i64, i64) {
        let log = lock(&self.log);
        (log.log_start_offset, log.next_offset)
    }

    /// The first offset whose batch carries a timestamp at or after `timestamp`, with that
    /// batch's max timestamp (batch granularity: records are never decoded).
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let log = lock(&self.log);
        log.batches
            .iter()
            .find(|stored| stored.max_timestamp >= timestamp)
            .map(|stored| {
                (
                    stored.base_offset.max(log.log_start_offset),
                    stored.max_timestamp,
                )
            })
    }

    /// The batch with the largest timestamp (ListOffsets MAX_TIMESTAMP).
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        let log = lock(&self.log);
        log.batches
            .iter()
            .max_by_key(|stored| stored.max_timestamp)
            .map(|stored| (stored.last_offset, stored.max_timestamp))
    }
}

impl Log {
    fn push(&mut self, header: &BatchHeader, bytes: &Bytes) -> i64 {
        let base_offset = self.next_offset;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let stored = batch::with_base_offset(bytes, base_offset);
        self.bytes += stored.len();
        self.batches.push_back(Stored {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            bytes: stored,
        });
        self.next_offset = last_offset + 1;
        self.producers.record(header, base_offset);
        base_offset
    }

    fn enforce_retention(&mut self) {
        while self.bytes > RETENTION_BYTES && self.batches.len() > 1 {
            if let Some(dropped) = self.batches.pop_front() {
                self.bytes -= dropped.bytes.len();
            }
            if let Some(front) = self.batches.front() {
                self.log_start_offset = front.base_offset;
            }
        }
    }
}

fn concat(chunks: Vec<Bytes>, total: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(total);
            for chunk in chunks {
                joined.extend_from_slice(&chunk);
            }
            joined.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{NO_PRODUCER_ID, test_batch};

    fn base_offset_of(bytes: &[u8]) -> i64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[..8]);
        i64::from_be_bytes(word)
    }

    #[test]
    fn batches_get_consecutive_offsets_and_a_fetch_returns_the_containing_batch() {
        let partition = Partition::new();
        assert_eq!(
            partition
                .append(&test_batch(3, NO_PRODUCER_ID, -1, -1))
                .unwrap()
                .base_offset,
            0
        );
        assert_eq!(
            partition
                .append(&test_batch(2, NO_PRODUCER_ID, -1, -1))
                .unwrap()
                .base_offset,
            3
        );
        let read = partition.read(4, 1 << 20, true);
        assert_eq!(read.high_watermark, 5);
        let records = read.records.expect("in range");
        assert_eq!(base_offset_of(&records), 3);
        assert_eq!(records.len(), batch::HEADER_LEN);
    }

    #[test]
    fn a_plain_resend_is_appended_again_but_an_idempotent_retry_is_not() {
        let partition = Partition::new();
        let plain = test_batch(1, NO_PRODUCER_ID, -1, -1);
        partition.append(&plain).unwrap();
        assert_eq!(partition.append(&plain).unwrap().base_offset, 1);
        assert_eq!(partition.offsets(), (0, 2));

        let idempotent = test_batch(2, 99, 0, 0);
        let first = partition.append(&idempotent).unwrap();
        let retry = partition.append(&idempotent).unwrap();
        assert_eq!(first.base_offset, 2);
        assert_eq!(retry.base_offset, 2);
        assert_eq!(partition.offsets(), (0, 4));
    }

    #[test]
    fn an_out_of_order_sequence_is_refused_without_appending() {
        let partition = Partition::new();
        partition.append(&test_batch(1, 99, 0, 0)).unwrap();
        assert_eq!(
            partition.append(&test_batch(1, 99, 0, 5)),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(partition.offsets(), (0, 1));
    }

    #[test]
    fn offsets_outside_the_log_are_out_of_range_and_the_end_is_empty() {
        let partition = Partition::new();
        partition
            .append(&test_batch(2, NO_PRODUCER_ID, -1, -1))
            .unwrap();
        assert_eq!(partition.read(3, 1024, true).records, None);
        assert_eq!(partition.read(2, 1024, true).records, Some(Bytes::new()));
    }

    #[test]
    fn at_least_one_batch_is_returned_even_over_the_byte_limit() {
        let partition = Partition::new();
        partition
            .append(&test_batch(1, NO_PRODUCER_ID, -1, -1))
            .unwrap();
        partition
            .append(&test_batch(1, NO_PRODUCER_ID, -1, -1))
            .unwrap();
        let one = partition.read(0, 1, true).records.unwrap();
        assert_eq!(one.len(), batch::HEADER_LEN);
        assert_eq!(partition.read(0, 1, false).records, Some(Bytes::new()));
    }

    #[tokio::test]
    async fn an_append_wakes_a_subscriber() {
        let partition = Partition::new();
        let mut watermark = partition.subscribe();
        partition
            .append(&test_batch(1, NO_PRODUCER_ID, -1, -1))
            .unwrap();
        watermark.changed().await.unwrap();
        assert_eq!(*watermark.borrow(), 1);
    }
}
