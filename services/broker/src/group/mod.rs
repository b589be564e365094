//! The classic consumer-group coordinator: every group's state behind one lock, the timer that
//! expires sessions and ends overdue rebalances, and the wire handlers.
//!
//! - [`state`]: one group's states, membership, fencing and expiry (the rules live there).
//! - [`rebalance`]: the JoinGroup and SyncGroup phases that form a new generation.
//! - [`member`]: a member and the outcomes its held JoinGroup/SyncGroup receive.
//! - [`protocol`]: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups on the wire.
//!
//! One `std::sync::Mutex` guards all groups: every operation is a few map look-ups and never
//! awaits while holding it. Held requests wait on a oneshot *outside* the lock, so a JoinGroup
//! waiting for the rest of its group blocks only its own connection.

mod member;
mod protocol;
mod rebalance;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::time::{Instant, MissedTickBehavior};

pub(crate) use member::{JoinOutcome, SyncOutcome};
pub(crate) use protocol::{
    handle_describe_groups, handle_heartbeat, handle_join, handle_leave, handle_list_groups,
    handle_sync,
};
use state::{Description, Group, JoinRequest, Reply};

use crate::sync::lock;

/// How often sessions and rebalance deadlines are checked.
const TIMER_PERIOD: Duration = Duration::from_millis(100);

/// A committed offset, as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// `(topic, partition)` → what to commit there.
pub(crate) type OffsetBatch = Vec<((String, i32), Committed)>;

#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
}

impl Coordinator {
    fn join(&self, group_id: &str, request: JoinRequest) -> Reply<JoinOutcome> {
        let now = Instant::now();
        let mut groups = lock(&self.groups);
        groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id, now))
            .join(request, now)
    }

    fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncOutcome> {
        let now = Instant::now();
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.sync(member_id, instance_id, generation, assignments, now),
            None => Reply::Now(SyncOutcome {
                result: Err(ResponseError::UnknownMemberId),
                protocol: String::new(),
            }),
        }
    }

    fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let now = Instant::now();
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, instance_id, generation, now),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        let now = Instant::now();
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.leave(member_id, instance_id, now),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    /// Asks the group to complete a rebalance whose initial delay is over.
    fn nudge(&self, group_id: &str) {
        let now = Instant::now();
        if let Some(group) = lock(&self.groups).get_mut(group_id) {
            group.try_complete_join(now);
        }
    }

    /// `(group id, protocol type, state name)` of every group.
    fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = lock(&self.groups);
        let mut listed: Vec<_> = groups
            .iter()
            .map(|(id, group)| {
                (
                    id.clone(),
                    group.protocol_type().to_owned(),
                    group.state().name(),
                )
            })
            .collect();
        listed.sort();
        listed
    }

    /// A snapshot of each group for DescribeGroups; `None` for a group that does not exist.
    fn describe(&self, group_ids: &[&str]) -> Vec<(String, Option<Description>)> {
        let groups = lock(&self.groups);
        group_ids
            .iter()
            .map(|id| ((*id).to_owned(), groups.get(*id).map(Group::describe)))
            .collect()
    }

    /// Stores offsets if the member may commit them (a group that does not exist yet accepts
    /// commits only from outside group management, i.e. generation < 0).
    pub(crate) fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: OffsetBatch,
    ) -> Result<(), ResponseError> {
        let now = Instant::now();
        let mut groups = lock(&self.groups);
        if !groups.contains_key(group_id) && generation >= 0 {
            return Err(ResponseError::IllegalGeneration);
        }
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id, now));
        group.may_commit(member_id, instance_id, generation, now)?;
        group.offsets.extend(offsets);
        Ok(())
    }

    /// The committed offset of each `(topic, partition)` asked for, or of everything committed
    /// when `wanted` is `None`.
    pub(crate) fn committed(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Vec<((String, i32), Option<Committed>)> {
        let groups = lock(&self.groups);
        let offsets = groups.get(group_id).map(|group| &group.offsets);
        match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|key| {
                    let committed = offsets.and_then(|offsets| offsets.get(&key)).cloned();
                    (key, committed)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|(key, committed)| (key.clone(), Some(committed.clone())))
                .collect(),
        }
    }

    /// Expires sessions and completes overdue rebalances in every group.
    pub(crate) fn tick(&self, now: Instant) {
        for group in lock(&self.groups).values_mut() {
            group.expire(now);
        }
    }

    /// Runs [`Coordinator::tick`] until the task is dropped.
    pub(crate) async fn run_timers(&self) {
        let mut timer = tokio::time::interval(TIMER_PERIOD);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            self.tick(Instant::now());
        }
    }
}
