//! The state machine of one classic consumer group, after Kafka's GroupCoordinator:
//! `Empty → PreparingRebalance → CompletingRebalance → Stable`, and back to
//! `PreparingRebalance` whenever membership changes.
//!
//! - Any JoinGroup, a leave, a session expiry or a static member's replacement starts a
//!   rebalance. Held JoinGroups are answered once every member has rejoined and a short initial
//!   delay (so simultaneous joiners share one generation) has passed, or at the rebalance
//!   timeout, when the members that did not rejoin are removed.
//! - The leader's SyncGroup carries every assignment; members' SyncGroups are held until it
//!   arrives. A rebalance that starts meanwhile answers them REBALANCE_IN_PROGRESS.
//! - Static members (KIP-345): a join with a known `group.instance.id` and no member id
//!   replaces the old incarnation, whose member id is fenced from then on. Unlike Kafka, we
//!   always rebalance on replacement: simplest, and the new incarnation is assigned for sure.
//! - A member is expired when it has not been heard from (heartbeat, join, sync, commit) for its
//!   session timeout, unless it has a held request. The rest of the group rebalances, so the
//!   group can never stay without an assignment while a live member keeps joining.
//!
//! This file holds the states, membership, fencing and expiry; the JoinGroup and SyncGroup
//! phases are in `rebalance.rs`. Every transition happens under the coordinator's lock and takes
//! `now` as an argument, so the machine is tested without a clock.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Committed;
use super::member::{JoinOutcome, Member, SyncOutcome};

/// Lets members that start together land in one generation, without Kafka's 3 s default.
pub(crate) const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(50);
/// Kafka's `group.min.session.timeout.ms` is 6 s; we allow shorter for tests.
pub(super) const MIN_SESSION_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Kafka's `group.max.session.timeout.ms`.
pub(super) const MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    /// The name Kafka reports in ListGroups/DescribeGroups.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A JoinGroup, stripped of its wire form.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a dynamic member without an id is first sent MEMBER_ID_REQUIRED with one.
    pub member_id_required: bool,
}

/// An answer now, or a held request answered when the group moves on.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Now(T),
    /// `complete_at`: when the waiter should ask the group to try completing the rebalance
    /// (the end of the initial delay).
    Wait {
        receiver: oneshot::Receiver<T>,
        complete_at: Option<Instant>,
    },
}

/// What DescribeGroups reports about a group.
#[derive(Debug, Clone)]
pub(crate) struct Description {
    pub state: State,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone)]
pub(crate) struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(super) id: String,
    pub(super) state: State,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// `group.instance.id` → the member id of its current incarnation.
    pub(super) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pub(super) pending: HashMap<String, Instant>,
    pub(super) join_not_before: Instant,
    pub(super) join_deadline: Instant,
    pub(crate) offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    pub(crate) fn new(id: &str, now: Instant) -> Self {
        Self {
            id: id.to_owned(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_not_before: now,
            join_deadline: now,
            offsets: BTreeMap::new(),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    pub(crate) fn describe(&self) -> Description {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|member| DescribedMember {
                member_id: member.id.clone(),
                instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: member.metadata_for(&protocol),
                assignment: member.assignment.clone(),
            })
            .collect();
        Description {
            state: self.state,
            protocol_type: self.protocol_type().to_owned(),
            protocol,
            members,
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        self.check_member(member_id, instance_id)?;
        if self.state == State::PreparingRebalance {
            self.touch(member_id, now);
            return Err(ResponseError::RebalanceInProgress);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        self.touch(member_id, now);
        Ok(())
    }

    /// Removes one member (by instance id when given, else by member id) and rebalances.
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), ResponseError> {
        let target = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(current) if !member_id.is_empty() && current != member_id => {
                    return Err(ResponseError::FencedInstanceId);
                }
                Some(current) => current.clone(),
            },
            None => member_id.to_owned(),
        };
        if self.pending.remove(&target).is_some() {
            return Ok(());
        }
        if !self.members.contains_key(&target) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&target, ResponseError::UnknownMemberId, "left the group");
        self.membership_shrunk(now, "member left");
        Ok(())
    }

    /// Whether an OffsetCommit from this member at this generation may be stored (Kafka's
    /// order of checks); a commit counts as a sign of life.
    pub(crate) fn may_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if self.fenced(member_id, instance_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if generation < 0 && self.state == State::Empty {
            return Ok(());
        }
        if self.state == State::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        self.touch(member_id, now);
        Ok(())
    }

    /// Removes members whose session expired, forgets unused pending member ids, and drives a
    /// rebalance that is waiting for its deadline.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.pending.retain(|_, expires| *expires > now);
        let expired: Vec<(String, Duration)> = self
            .members
            .values()
            .filter(|member| member.is_expired(now))
            .map(|member| (member.id.clone(), member.session_timeout))
            .collect();
        for (id, session_timeout) in &expired {
            let why = format!(
                "session expired ({} ms without a heartbeat)",
                session_timeout.as_millis()
            );
            self.remove_member(id, ResponseError::UnknownMemberId, &why);
        }
        if expired.is_empty() {
            self.try_complete_join(now);
        } else {
            self.membership_shrunk(now, "session expired");
        }
    }

    /// A static member whose instance id now belongs to a newer member id (KIP-345 fencing).
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.is_some_and(|instance| {
            self.static_members
                .get(instance)
                .is_some_and(|current| current != member_id)
        })
    }

    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if self.fenced(member_id, instance_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    pub(super) fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen = now;
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: Instant, reason: &str) {
        if self.state == State::CompletingRebalance {
            let protocol = self.protocol.clone().unwrap_or_default();
            for member in self.members.values_mut() {
                member.answer_sync(SyncOutcome {
                    result: Err(ResponseError::RebalanceInProgress),
                    protocol: protocol.clone(),
                });
            }
        }
        let timeout = self
            .members
            .values()
            .map(|member| member.rebalance_timeout)
            .max()
            .unwrap_or(INITIAL_REBALANCE_DELAY);
        self.state = State::PreparingRebalance;
        self.join_not_before = now + INITIAL_REBALANCE_DELAY;
        self.join_deadline = now + timeout.max(INITIAL_REBALANCE_DELAY);
        tracing::info!(group = %self.id, generation = self.generation, reason, "rebalance started");
    }

    fn membership_shrunk(&mut self, now: Instant, reason: &str) {
        if matches!(self.state, State::Stable | State::CompletingRebalance) {
            self.prepare_rebalance(now, reason);
        }
        self.try_complete_join(now);
    }

    /// Drops a member, answering any held request with `error`.
    pub(super) fn remove_member(&mut self, id: &str, error: ResponseError, why: &str) {
        let Some(mut member) = self.members.remove(id) else {
            return;
        };
        if let Some(instance) = &member.instance_id
            && self
                .static_members
                .get(instance)
                .is_some_and(|current| current == id)
        {
            self.static_members.remove(instance);
        }
        member.answer_join(JoinOutcome::error(error, id));
        member.answer_sync(SyncOutcome {
            result: Err(error),
            protocol: self.protocol.clone().unwrap_or_default(),
        });
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        tracing::info!(group = %self.id, member = id, instance = ?member.instance_id, why, "member removed");
    }
}
