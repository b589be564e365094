//! One member of a classic consumer group: its identity, timeouts, protocols, assignment, when
//! it was last heard from, and the held JoinGroup/SyncGroup waiting for the group to move on.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a held JoinGroup is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// The full member list for the leader, empty for everyone else.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    pub(crate) fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            protocol: String::new(),
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// One entry of the member list the leader assigns partitions over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// What a held SyncGroup is answered with: the member's assignment, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncOutcome {
    pub result: Result<Bytes, ResponseError>,
    pub protocol: String,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    /// The peer address the member joined from, for DescribeGroups.
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// `(protocol name, subscription metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_seen: Instant,
    pub awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    pub awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    /// A member with a held request is never expired: it is waiting on the group, not silent.
    /// Its session clock restarts when that request is answered.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.awaiting_join.is_none()
            && self.awaiting_sync.is_none()
            && now.saturating_duration_since(self.last_seen) > self.session_timeout
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    pub(crate) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Answers a held JoinGroup, if any (a closed connection just drops the answer).
    pub(crate) fn answer_join(&mut self, outcome: JoinOutcome) {
        if let Some(waiting) = self.awaiting_join.take() {
            let _closed = waiting.send(outcome);
        }
    }

    /// Answers a held SyncGroup, if any.
    pub(crate) fn answer_sync(&mut self, outcome: SyncOutcome) {
        if let Some(waiting) = self.awaiting_sync.take() {
            let _closed = waiting.send(outcome);
        }
    }
}
