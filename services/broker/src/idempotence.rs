//! Idempotent producers: producer-id allocation (InitProducerId) and the per-partition sequence
//! check that turns a retried batch into an acknowledgement instead of a duplicate.
//!
//! Kafka remembers the last five batches of every producer per partition (librdkafka keeps at
//! most five requests in flight when idempotent). A batch whose sequence range matches one of
//! them is a retry: it is answered with the original base offset and not appended. A batch that
//! does not continue the last sequence is out of order. Producer id -1 (idempotence off) skips
//! all of this, so a plain producer's resend is appended again — a chaos scenario relies on it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::batch::{BatchHeader, NO_PRODUCER_ID};

/// Batches remembered per producer and partition (librdkafka's in-flight limit when idempotent).
const REMEMBERED_BATCHES: usize = 5;
/// Producers remembered per partition before the least recently active is forgotten.
const REMEMBERED_PRODUCERS: usize = 10_000;

/// Hands out producer ids.
///
/// Ids start from the wall clock (in units of 1/256 ms) so that a restarted broker does not
/// hand a new producer the id a producer of the previous incarnation is still using.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicI64,
}

impl ProducerIds {
    pub(crate) fn new() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(0))
            .unwrap_or(0);
        Self {
            next: AtomicI64::new(millis.saturating_mul(256).max(1)),
        }
    }

    fn allocate(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// InitProducerId (no transactions): a new id at epoch 0, or — when a v3+ client asks to
    /// bump the epoch of the id it holds (KIP-360) — the same id one epoch up.
    pub(crate) fn handle(&self, request: &InitProducerIdRequest) -> InitProducerIdResponse {
        let current = request.producer_id.0;
        let (id, epoch) =
            if current >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1
            {
                (current, request.producer_epoch + 1)
            } else {
                (self.allocate(), 0)
            };
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch)
    }
}

/// What to do with a produced batch, given what its producer sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it (new data, or a producer that is not idempotent).
    Append,
    /// A retry of a batch already in the log at `base_offset`: acknowledge, do not append.
    Duplicate { base_offset: i64 },
    /// Refuse it with this error.
    Reject(ResponseError),
}

/// The sequence state of every idempotent producer that wrote to one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    by_id: HashMap<i64, ProducerState>,
}

#[derive(Debug)]
struct ProducerState {
    epoch: i16,
    recent: VecDeque<Written>,
}

#[derive(Debug, Clone, Copy)]
struct Written {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

impl ProducerStates {
    pub(crate) fn check(&self, header: &BatchHeader) -> SequenceCheck {
        if header.producer_id == NO_PRODUCER_ID {
            return SequenceCheck::Append;
        }
        // An unknown producer (new, or one this broker forgot across a restart) may start
        // anywhere: refusing it would only make librdkafka raise a fatal error.
        let Some(state) = self.by_id.get(&header.producer_id) else {
            return SequenceCheck::Append;
        };
        if header.producer_epoch < state.epoch {
            return SequenceCheck::Reject(ResponseError::InvalidProducerEpoch);
        }
        if header.producer_epoch > state.epoch {
            return SequenceCheck::Append;
        }
        let retry = state.recent.iter().find(|w| {
            w.first_sequence == header.base_sequence && w.last_sequence == header.last_sequence()
        });
        if let Some(written) = retry {
            return SequenceCheck::Duplicate {
                base_offset: written.base_offset,
            };
        }
        let expected = state.recent.back().map(|w| next_sequence(w.last_sequence));
        match expected {
            Some(expected) if expected != header.base_sequence => {
                SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Remembers an appended batch of an idempotent producer.
    pub(crate) fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if header.producer_id == NO_PRODUCER_ID {
            return;
        }
        if !self.by_id.contains_key(&header.producer_id) && self.by_id.len() >= REMEMBERED_PRODUCERS
        {
            self.forget_least_recent();
        }
        let state = self
            .by_id
            .entry(header.producer_id)
            .or_insert_with(|| ProducerState {
                epoch: header.producer_epoch,
                recent: VecDeque::new(),
            });
        if header.producer_epoch != state.epoch {
            state.epoch = header.producer_epoch;
            state.recent.clear();
        }
        if state.recent.len() == REMEMBERED_BATCHES {
            state.recent.pop_front();
        }
        state.recent.push_back(Written {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
        });
    }

    fn forget_least_recent(&mut self) {
        let oldest = self
            .by_id
            .iter()
            .min_by_key(|(_, state)| state.recent.back().map_or(i64::MIN, |w| w.base_offset))
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.by_id.remove(&id);
        }
    }
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            last_offset_delta: records - 1,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: records,
        }
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_of_the_original_offset() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 0, 0, 3), 10);
        states.record(&header(7, 0, 3, 2), 13);
        assert_eq!(
            states.check(&header(7, 0, 0, 3)),
            SequenceCheck::Duplicate { base_offset: 10 }
        );
        assert_eq!(
            states.check(&header(7, 0, 3, 2)),
            SequenceCheck::Duplicate { base_offset: 13 }
        );
        assert_eq!(states.check(&header(7, 0, 5, 1)), SequenceCheck::Append);
    }

    #[test]
    fn a_gap_in_the_sequence_is_out_of_order() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 0, 0, 3), 0);
        assert_eq!(
            states.check(&header(7, 0, 4, 1)),
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn a_bumped_epoch_starts_over_and_an_old_epoch_is_fenced() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 1, 0, 3), 0);
        assert_eq!(states.check(&header(7, 2, 0, 1)), SequenceCheck::Append);
        assert_eq!(
            states.check(&header(7, 0, 3, 1)),
            SequenceCheck::Reject(ResponseError::InvalidProducerEpoch)
        );
    }

    #[test]
    fn a_plain_producer_is_never_deduplicated() {
        let mut states = ProducerStates::default();
        states.record(&header(NO_PRODUCER_ID, -1, -1, 1), 0);
        assert_eq!(
            states.check(&header(NO_PRODUCER_ID, -1, -1, 1)),
            SequenceCheck::Append
        );
    }

    #[test]
    fn an_epoch_bump_keeps_the_producer_id() {
        let ids = ProducerIds::new();
        let fresh = ids.handle(&InitProducerIdRequest::default());
        assert_eq!(fresh.producer_epoch, 0);
        let bumped = ids.handle(
            &InitProducerIdRequest::default()
                .with_producer_id(fresh.producer_id)
                .with_producer_epoch(0),
        );
        assert_eq!(
            (bumped.producer_id, bumped.producer_epoch),
            (fresh.producer_id, 1)
        );
    }
}
