//! How far a consumer is behind its topics, from librdkafka's own statistics (emitted every
//! second, no extra broker calls): the sum over its partitions of high watermark minus committed
//! offset. A read model reports this so a stale read is visible, not silent.

use std::sync::{Arc, Mutex};

use rdkafka::Statistics;
use serde::Serialize;

/// The last measurement.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LagSnapshot {
    /// Messages published but not yet processed; `None` until the first measurement.
    pub messages_behind: Option<i64>,
    /// When it was measured (epoch ms); 0 before the first measurement.
    pub measured_at_ms: i64,
}

/// A shared, updatable lag figure.
#[derive(Debug, Clone, Default)]
pub struct ConsumerLag {
    last: Arc<Mutex<LagSnapshot>>,
}

impl ConsumerLag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> LagSnapshot {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the lag found in a statistics report.
    pub(crate) fn record(&self, statistics: &Statistics) {
        let behind = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.iter())
            .filter(|(partition, p)| **partition >= 0 && p.desired && p.consumer_lag >= 0)
            .map(|(_, p)| p.consumer_lag)
            .sum();
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = LagSnapshot {
            messages_behind: Some(behind),
            measured_at_ms: crate::storage::now_ms(),
        };
    }
}
