//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup and ListGroups on the wire: decode the request
//! into a coordinator call, wait for a held answer outside the lock, encode the response for the
//! request's version.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::sleep_until;

use super::state::{JoinRequest, Reply};
use super::{Coordinator, JoinOutcome, SyncOutcome};

/// Waits for a held answer. At `complete_at` (the end of the initial rebalance delay) the group
/// is nudged to complete; a dropped sender means the member was removed meanwhile.
async fn answer<T>(
    coordinator: &Coordinator,
    group_id: &str,
    reply: Reply<T>,
    removed: impl FnOnce() -> T,
) -> T {
    let (mut receiver, complete_at) = match reply {
        Reply::Now(outcome) => return outcome,
        Reply::Wait {
            receiver,
            complete_at,
        } => (receiver, complete_at),
    };
    if let Some(at) = complete_at {
        tokio::select! {
            outcome = &mut receiver => return outcome.unwrap_or_else(|_| removed()),
            () = sleep_until(at) => coordinator.nudge(group_id),
        }
    }
    receiver.await.unwrap_or_else(|_| removed())
}

fn millis(value: i32) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) async fn handle_join(
    coordinator: &Coordinator,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let rebalance_timeout = if version == 0 || request.rebalance_timeout_ms < 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        session_timeout: millis(request.session_timeout_ms),
        rebalance_timeout: millis(rebalance_timeout),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|protocol| (protocol.name.to_string(), protocol.metadata))
            .collect(),
        member_id_required: version >= 4,
    };
    let member_id = join.member_id.clone();
    let reply = coordinator.join(&group_id, join);
    let outcome = answer(coordinator, &group_id, reply, || {
        JoinOutcome::error(ResponseError::UnknownMemberId, &member_id)
    })
    .await;
    let members = outcome
        .members
        .into_iter()
        .map(|member| {
            let instance_id = if version >= 5 {
                member.instance_id.map(StrBytes::from_string)
            } else {
                None
            };
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member.member_id))
                .with_group_instance_id(instance_id)
                .with_metadata(member.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(outcome.error.map_or(0, |error| error.code()))
        .with_generation_id(outcome.generation)
        .with_protocol_name(Some(StrBytes::from_string(outcome.protocol)))
        .with_leader(StrBytes::from_string(outcome.leader))
        .with_member_id(StrBytes::from_string(outcome.member_id))
        .with_members(members)
}

pub(crate) async fn handle_sync(
    coordinator: &Coordinator,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.to_string());
    let assignments = request
        .assignments
        .into_iter()
        .map(|assignment| (assignment.member_id.to_string(), assignment.assignment))
        .collect();
    let reply = coordinator.sync(
        &group_id,
        &request.member_id,
        instance_id.as_deref(),
        request.generation_id,
        assignments,
    );
    let outcome = answer(coordinator, &group_id, reply, || SyncOutcome {
        result: Err(ResponseError::UnknownMemberId),
        protocol: String::new(),
    })
    .await;
    match outcome.result {
        Ok(assignment) => SyncGroupResponse::default().with_assignment(assignment),
        Err(error) => SyncGroupResponse::default().with_error_code(error.code()),
    }
}

pub(crate) fn handle_heartbeat(
    coordinator: &Coordinator,
    request: &HeartbeatRequest,
) -> HeartbeatResponse {
    let outcome = coordinator.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(outcome.err().map_or(0, |error| error.code()))
}

/// LeaveGroup: v0-2 name one member by id; v3+ list members, each by instance id or member id.
pub(crate) fn handle_leave(
    coordinator: &Coordinator,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = &request.group_id.0;
    if version < 3 {
        let outcome = coordinator.leave(group_id, &request.member_id, None);
        return LeaveGroupResponse::default()
            .with_error_code(outcome.err().map_or(0, |error| error.code()));
    }
    let members = request
        .members
        .iter()
        .map(|member| {
            let outcome = coordinator.leave(
                group_id,
                &member.member_id,
                member.group_instance_id.as_deref(),
            );
            MemberResponse::default()
                .with_member_id(member.member_id.clone())
                .with_group_instance_id(member.group_instance_id.clone())
                .with_error_code(outcome.err().map_or(0, |error| error.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) fn handle_list_groups(
    coordinator: &Coordinator,
    request: &ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let groups = coordinator
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(state))
        })
        .map(|(id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(text(&id)))
                .with_protocol_type(text(&protocol_type));
            if version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(state))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// DescribeGroups v0-4: state, protocol and members (with assignments) of each group; a group
/// that does not exist is reported `Dead`, as Kafka does.
pub(crate) fn handle_describe_groups(
    coordinator: &Coordinator,
    request: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let ids: Vec<&str> = request.groups.iter().map(|id| id.0.as_str()).collect();
    let groups = coordinator
        .describe(&ids)
        .into_iter()
        .map(|(id, description)| {
            let described = DescribedGroup::default().with_group_id(GroupId(text(&id)));
            let Some(description) = description else {
                return described.with_group_state(StrBytes::from_static_str("Dead"));
            };
            let members = description
                .members
                .into_iter()
                .map(|member| {
                    let instance_id = if version >= 4 {
                        member.instance_id.map(StrBytes::from_string)
                    } else {
                        None
                    };
                    DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(member.member_id))
                        .with_group_instance_id(instance_id)
                        .with_client_id(StrBytes::from_string(member.client_id))
                        .with_client_host(StrBytes::from_string(member.client_host))
                        .with_member_metadata(member.metadata)
                        .with_member_assignment(member.assignment)
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(description.state.name()))
                .with_protocol_type(StrBytes::from_string(description.protocol_type))
                .with_protocol_data(StrBytes::from_string(description.protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
