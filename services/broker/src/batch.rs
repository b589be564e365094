//! The few RecordBatch (magic v2) header fields the broker reads, and the base-offset rewrite.
//!
//! Batches are stored as the producer sent them. The only field we change is the 8-byte
//! `baseOffset` at the front (and the leader epoch after it); the CRC covers the bytes from
//! `attributes` onwards, so it stays valid and the records are never decoded or re-encoded.
//!
//! Layout of the header (big-endian):
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//!  attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//!  producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32`, then the records.

use bytes::{Bytes, BytesMut};

/// Bytes of the v2 header, up to and including `recordCount`.
pub(crate) const HEADER_LEN: usize = 61;
/// `baseOffset` and `batchLength` are not counted in `batchLength`.
const LENGTH_PREFIX: usize = 12;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

/// A producer id of -1 marks a batch from a non-idempotent producer.
pub(crate) const NO_PRODUCER_ID: i64 = -1;

/// The header fields of one batch, read from its raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// The sequence number of the batch's last record; sequences wrap to 0 after `i32::MAX`.
    pub(crate) fn last_sequence(&self) -> i32 {
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(i32::MAX)
    }
}

/// Why a produced `records` field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BatchError {
    #[error("record batch truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("record batch magic {0} is not supported (only v2)")]
    Magic(i8),
    #[error("record batch has a negative length or offset delta")]
    Malformed,
    #[error("no record batch in the request")]
    Empty,
}

/// Splits a produce request's `records` into its batches, reading each header.
///
/// The returned byte slices share the request's buffer; nothing is copied.
pub(crate) fn split(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: rest.len(),
            });
        }
        let batch_length = i32_at(rest, 8);
        let total = usize::try_from(batch_length)
            .map_err(|_| BatchError::Malformed)?
            .saturating_add(LENGTH_PREFIX);
        if total < HEADER_LEN {
            return Err(BatchError::Malformed);
        }
        if rest.len() < total {
            return Err(BatchError::Truncated {
                needed: total,
                available: rest.len(),
            });
        }
        let magic = i8::from_be_bytes([rest[MAGIC_AT]]);
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let header = BatchHeader {
            last_offset_delta: i32_at(rest, LAST_OFFSET_DELTA_AT),
            max_timestamp: i64_at(rest, MAX_TIMESTAMP_AT),
            producer_id: i64_at(rest, PRODUCER_ID_AT),
            producer_epoch: i16::from_be_bytes([
                rest[PRODUCER_EPOCH_AT],
                rest[PRODUCER_EPOCH_AT + 1],
            ]),
            base_sequence: i32_at(rest, BASE_SEQUENCE_AT),
            record_count: i32_at(rest, RECORD_COUNT_AT),
        };
        if header.last_offset_delta < 0 {
            return Err(BatchError::Malformed);
        }
        batches.push((header, records.slice(at..at + total)));
        at += total;
    }
    if batches.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(batches)
}

/// Copies the batch with its base offset set to `base_offset` and its leader epoch to 0 (the
/// only epoch this broker ever has). Neither field is covered by the CRC.
pub(crate) fn with_base_offset(batch: &Bytes, base_offset: i64) -> Bytes {
    let mut stored = BytesMut::from(&batch[..]);
    stored[..8].copy_from_slice(&base_offset.to_be_bytes());
    stored[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    stored.freeze()
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(word)
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(word)
}

/// Builds a header-only batch for the unit tests of this crate.
#[cfg(test)]
pub(crate) fn test_batch(records: i32, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    let mut bytes = vec![0u8; HEADER_LEN];
    let batch_length = i32::try_from(HEADER_LEN - LENGTH_PREFIX).expect("small");
    bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
    bytes[MAGIC_AT] = 2;
    bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
        .copy_from_slice(&(records - 1).to_be_bytes());
    bytes[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&1_000i64.to_be_bytes());
    bytes[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    bytes[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&epoch.to_be_bytes());
    bytes[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    bytes[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&records.to_be_bytes());
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_concatenated_batches_are_split_with_their_headers() {
        let mut both = BytesMut::new();
        both.extend_from_slice(&test_batch(3, 7, 0, 0));
        both.extend_from_slice(&test_batch(2, 7, 0, 3));
        let batches = split(&both.freeze()).expect("valid");
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].0.record_count, 3);
        assert_eq!(batches[1].0.base_sequence, 3);
        assert_eq!(batches[1].0.last_sequence(), 4);
    }

    #[test]
    fn a_truncated_batch_is_refused() {
        let batch = test_batch(1, -1, -1, -1);
        let cut = batch.slice(..HEADER_LEN - 1);
        assert!(matches!(split(&cut), Err(BatchError::Truncated { .. })));
    }

    #[test]
    fn a_magic_v1_message_set_is_refused() {
        let mut bytes = BytesMut::from(&test_batch(1, -1, -1, -1)[..]);
        bytes[MAGIC_AT] = 1;
        assert_eq!(split(&bytes.freeze()), Err(BatchError::Magic(1)));
    }

    #[test]
    fn rewriting_the_base_offset_leaves_the_crc_covered_bytes_alone() {
        let batch = test_batch(1, -1, -1, -1);
        let stored = with_base_offset(&batch, 42);
        assert_eq!(i64_at(&stored, 0), 42);
        assert_eq!(stored[17..], batch[17..]);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let header = BatchHeader {
            last_offset_delta: 2,
            max_timestamp: 0,
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: i32::MAX - 1,
            record_count: 3,
        };
        assert_eq!(header.last_sequence(), 0);
    }
}
