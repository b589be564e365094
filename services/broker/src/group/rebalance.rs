//! The two phases of a rebalance on a [`Group`]: JoinGroup (collect every member, then answer
//! all of them with the new generation, the leader with the member list) and SyncGroup (hold
//! members until the leader's assignments arrive, then hand each its own).
//!
//! The states, membership bookkeeping and expiry live in `state.rs`; this file only moves a
//! group through `PreparingRebalance → CompletingRebalance → Stable`.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::member::{JoinOutcome, JoinedMember, Member, SyncOutcome};
use super::state::{Group, JoinRequest, MAX_SESSION_TIMEOUT, MIN_SESSION_TIMEOUT, Reply, State};

impl Group {
    pub(crate) fn join(&mut self, request: JoinRequest, now: Instant) -> Reply<JoinOutcome> {
        let refuse = |error| Reply::Now(JoinOutcome::error(error, &request.member_id));
        if request.protocol_type.is_empty()
            || request.protocols.is_empty()
            || !self.accepts(&request)
        {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&request.session_timeout) {
            return refuse(ResponseError::InvalidSessionTimeout);
        }
        let member_id = if request.member_id.is_empty() {
            match &request.instance_id {
                Some(instance) => {
                    let new_id = format!("{instance}-{}", Uuid::new_v4());
                    if let Some(old) = self.static_members.get(instance).cloned() {
                        self.remove_member(
                            &old,
                            ResponseError::FencedInstanceId,
                            "replaced by a new incarnation",
                        );
                    }
                    self.static_members.insert(instance.clone(), new_id.clone());
                    new_id
                }
                None => {
                    let new_id = format!("{}-{}", request.client_id, Uuid::new_v4());
                    if request.member_id_required {
                        self.pending
                            .insert(new_id.clone(), now + request.session_timeout);
                        return Reply::Now(JoinOutcome::error(
                            ResponseError::MemberIdRequired,
                            &new_id,
                        ));
                    }
                    new_id
                }
            }
        } else {
            if let Some(instance) = &request.instance_id
                && self
                    .static_members
                    .get(instance)
                    .is_some_and(|current| *current != request.member_id)
            {
                return refuse(ResponseError::FencedInstanceId);
            }
            if self.pending.remove(&request.member_id).is_none()
                && !self.members.contains_key(&request.member_id)
            {
                return refuse(ResponseError::UnknownMemberId);
            }
            if let Some(instance) = &request.instance_id {
                self.static_members
                    .insert(instance.clone(), request.member_id.clone());
            }
            request.member_id.clone()
        };

        let (sender, receiver) = oneshot::channel();
        let is_new = !self.members.contains_key(&member_id);
        let member = self
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                id: member_id.clone(),
                instance_id: None,
                client_id: String::new(),
                client_host: String::new(),
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_seen: now,
                awaiting_join: None,
                awaiting_sync: None,
            });
        member.instance_id = request.instance_id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.protocols = request.protocols;
        member.last_seen = now;
        // A second join from the same member (a retry on a new connection) supersedes the first.
        member.answer_join(JoinOutcome::error(
            ResponseError::RebalanceInProgress,
            &member_id,
        ));
        member.awaiting_join = Some(sender);
        if self.protocol_type.is_none() {
            self.protocol_type = Some(request.protocol_type);
        }
        if is_new {
            tracing::info!(group = %self.id, member = %member_id, instance = ?request.instance_id, "member joined");
        }
        if self.state != State::PreparingRebalance {
            let reason = if is_new {
                "member joined"
            } else {
                "member rejoined"
            };
            self.prepare_rebalance(now, reason);
        }
        self.try_complete_join(now);
        Reply::Wait {
            receiver,
            complete_at: Some(self.join_not_before),
        }
    }

    pub(crate) fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncOutcome> {
        let protocol = self.protocol.clone().unwrap_or_default();
        let refuse = |error| {
            Reply::Now(SyncOutcome {
                result: Err(error),
                protocol: protocol.clone(),
            })
        };
        if let Err(error) = self.check_member(member_id, instance_id) {
            return refuse(error);
        }
        if generation != self.generation {
            return refuse(ResponseError::IllegalGeneration);
        }
        match self.state {
            State::Empty => refuse(ResponseError::UnknownMemberId),
            State::PreparingRebalance => refuse(ResponseError::RebalanceInProgress),
            State::Stable => {
                let Some(member) = self.members.get_mut(member_id) else {
                    return refuse(ResponseError::UnknownMemberId);
                };
                member.last_seen = now;
                Reply::Now(SyncOutcome {
                    result: Ok(member.assignment.clone()),
                    protocol,
                })
            }
            State::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                let Some(member) = self.members.get_mut(member_id) else {
                    return refuse(ResponseError::UnknownMemberId);
                };
                member.last_seen = now;
                member.answer_sync(SyncOutcome {
                    result: Err(ResponseError::RebalanceInProgress),
                    protocol: protocol.clone(),
                });
                member.awaiting_sync = Some(sender);
                if self.leader.as_deref() == Some(member_id) {
                    for (id, assignment) in assignments {
                        if let Some(member) = self.members.get_mut(&id) {
                            member.assignment = assignment;
                        }
                    }
                    self.state = State::Stable;
                    for member in self.members.values_mut() {
                        let assignment = member.assignment.clone();
                        member.answer_sync(SyncOutcome {
                            result: Ok(assignment),
                            protocol: protocol.clone(),
                        });
                    }
                    tracing::info!(group = %self.id, generation = self.generation, "group stable");
                }
                Reply::Wait {
                    receiver,
                    complete_at: None,
                }
            }
        }
    }

    /// Completes the rebalance once its delay has passed and everyone rejoined (a waiter's
    /// nudge), or at its deadline.
    pub(crate) fn try_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all_joined = self
            .members
            .values()
            .all(|member| member.awaiting_join.is_some());
        if self.members.is_empty() || (all_joined && now >= self.join_not_before) {
            self.complete_join(now);
        } else if now >= self.join_deadline {
            let stragglers: Vec<String> = self
                .members
                .values()
                .filter(|member| member.awaiting_join.is_none())
                .map(|member| member.id.clone())
                .collect();
            for id in stragglers {
                self.remove_member(
                    &id,
                    ResponseError::UnknownMemberId,
                    "did not rejoin within the rebalance timeout",
                );
            }
            self.complete_join(now);
        }
    }

    fn accepts(&self, request: &JoinRequest) -> bool {
        let replaced = request
            .instance_id
            .as_ref()
            .and_then(|instance| self.static_members.get(instance));
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|member| member.id != request.member_id && Some(&member.id) != replaced)
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(request.protocol_type.as_str())
            && request
                .protocols
                .iter()
                .any(|(name, _)| others.iter().all(|member| member.supports(name)))
    }

    fn complete_join(&mut self, now: Instant) {
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        let leader = match &self.leader {
            Some(leader) if self.members.contains_key(leader) => leader.clone(),
            _ => self.members.keys().next().cloned().unwrap_or_default(),
        };
        let protocol = self.select_protocol(&leader);
        let everyone: Vec<JoinedMember> = self
            .members
            .values()
            .map(|member| JoinedMember {
                member_id: member.id.clone(),
                instance_id: member.instance_id.clone(),
                metadata: member.metadata_for(&protocol),
            })
            .collect();
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            member.last_seen = now;
            let members = if member.id == leader {
                everyone.clone()
            } else {
                Vec::new()
            };
            member.answer_join(JoinOutcome {
                error: None,
                generation: self.generation,
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: member.id.clone(),
                members,
            });
        }
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            %leader,
            %protocol,
            members = self.members.len(),
            "generation formed"
        );
        self.state = State::CompletingRebalance;
        self.protocol = Some(protocol);
        self.leader = Some(leader);
    }

    /// The leader's most preferred protocol that every member supports.
    fn select_protocol(&self, leader: &str) -> String {
        let Some(first) = self
            .members
            .get(leader)
            .or_else(|| self.members.values().next())
        else {
            return String::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .find(|name| self.members.values().all(|member| member.supports(name)))
            .or_else(|| first.protocols.first().map(|(name, _)| name))
            .cloned()
            .unwrap_or_default()
    }
}
