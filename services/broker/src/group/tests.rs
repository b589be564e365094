//! Unit tests of the group state machine, driven with explicit instants (no clock, no sockets).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::member::{JoinOutcome, SyncOutcome};
use super::state::{Group, INITIAL_REBALANCE_DELAY, JoinRequest, Reply, State};

const SESSION: Duration = Duration::from_secs(6);
const REBALANCE: Duration = Duration::from_secs(20);

fn request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: instance.map(str::to_owned),
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".to_owned(),
        protocols: vec![
            ("range".to_owned(), Bytes::from_static(b"range-meta")),
            ("roundrobin".to_owned(), Bytes::from_static(b"rr-meta")),
        ],
        member_id_required: false,
    }
}

fn held<T: std::fmt::Debug>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Wait { receiver, .. } => receiver,
        Reply::Now(outcome) => panic!("expected a held request, got {outcome:?}"),
    }
}

fn now_outcome<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(outcome) => outcome,
        Reply::Wait { .. } => panic!("expected an immediate answer"),
    }
}

fn answered<T>(receiver: &mut oneshot::Receiver<T>) -> T {
    receiver.try_recv().expect("the held request was answered")
}

/// Joins `ids` together and completes the rebalance; returns the join outcomes in order.
fn form(group: &mut Group, ids: &[&str], t0: Instant) -> Vec<JoinOutcome> {
    let mut waiting: Vec<_> = ids
        .iter()
        .map(|id| held(group.join(request(id, None), t0)))
        .collect();
    group.try_complete_join(t0 + INITIAL_REBALANCE_DELAY);
    waiting.iter_mut().map(answered).collect()
}

fn join_dynamic(group: &mut Group, t: Instant) -> String {
    let mut first = request("", None);
    first.member_id_required = true;
    let outcome = now_outcome(group.join(first, t));
    assert_eq!(outcome.error, Some(ResponseError::MemberIdRequired));
    outcome.member_id
}

#[test]
fn a_new_dynamic_member_is_first_told_its_member_id() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let id = join_dynamic(&mut group, t0);
    assert!(id.starts_with("client-"));
    let mut waiting = held(group.join(request(&id, None), t0));
    group.try_complete_join(t0 + INITIAL_REBALANCE_DELAY);
    let outcome = answered(&mut waiting);
    assert_eq!(
        (outcome.error, outcome.generation, outcome.leader.as_str()),
        (None, 1, id.as_str())
    );
}

#[test]
fn an_unknown_member_id_is_refused() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let outcome = now_outcome(group.join(request("made-up", None), t0));
    assert_eq!(outcome.error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn members_joining_together_share_one_generation_and_only_the_leader_sees_the_list() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let a = held(group.join(request("", Some("a")), t0));
    let mut b = held(group.join(request("", Some("b")), t0 + Duration::from_millis(10)));
    group.try_complete_join(t0 + Duration::from_millis(20));
    assert!(b.try_recv().is_err(), "the initial delay is not over yet");
    group.try_complete_join(t0 + INITIAL_REBALANCE_DELAY);
    let outcomes = [a, b].map(|mut receiver| answered(&mut receiver));
    assert!(
        outcomes
            .iter()
            .all(|o| o.generation == 1 && o.protocol == "range")
    );
    let leader = outcomes
        .iter()
        .find(|o| o.member_id == o.leader)
        .expect("a leader");
    assert_eq!(leader.members.len(), 2);
    assert!(
        leader
            .members
            .iter()
            .all(|m| m.metadata == Bytes::from_static(b"range-meta"))
    );
    assert_eq!(outcomes.iter().filter(|o| o.members.is_empty()).count(), 1);
}

#[test]
fn sync_hands_each_member_the_assignment_the_leader_chose() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let outcomes = form(&mut group, &["", ""].map(|_| ""), t0);
    // Dynamic members without MEMBER_ID_REQUIRED get generated ids; find leader and follower.
    let leader = outcomes
        .iter()
        .find(|o| o.member_id == o.leader)
        .expect("leader")
        .clone();
    let follower = outcomes
        .iter()
        .find(|o| o.member_id != o.leader)
        .expect("follower")
        .clone();
    let t1 = t0 + Duration::from_millis(100);
    let mut follower_sync = held(group.sync(&follower.member_id, None, 1, Vec::new(), t1));
    let assignments = vec![
        (leader.member_id.clone(), Bytes::from_static(b"p0")),
        (follower.member_id.clone(), Bytes::from_static(b"p1")),
    ];
    let mut leader_sync = held(group.sync(&leader.member_id, None, 1, assignments, t1));
    assert_eq!(
        answered(&mut leader_sync).result,
        Ok(Bytes::from_static(b"p0"))
    );
    assert_eq!(
        answered(&mut follower_sync).result,
        Ok(Bytes::from_static(b"p1"))
    );
    assert_eq!(group.state(), State::Stable);
    assert_eq!(group.heartbeat(&follower.member_id, None, 1, t1), Ok(()));
    assert_eq!(
        group.heartbeat(&follower.member_id, None, 0, t1),
        Err(ResponseError::IllegalGeneration)
    );
}

fn stable_pair(group: &mut Group, t0: Instant) -> (String, String) {
    let mut a = held(group.join(request("", Some("a")), t0));
    let mut b = held(group.join(request("", Some("b")), t0));
    group.try_complete_join(t0 + INITIAL_REBALANCE_DELAY);
    let (a, b) = (answered(&mut a), answered(&mut b));
    let leader = if a.member_id == a.leader { &a } else { &b };
    let t1 = t0 + INITIAL_REBALANCE_DELAY;
    let assignments = vec![
        (a.member_id.clone(), Bytes::from_static(b"A")),
        (b.member_id.clone(), Bytes::from_static(b"B")),
    ];
    let _leader_sync = group.sync(&leader.member_id, None, a.generation, assignments, t1);
    assert_eq!(group.state(), State::Stable);
    (a.member_id, b.member_id)
}

#[test]
fn a_new_member_makes_the_others_rejoin_through_their_heartbeat() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let (a, _b) = stable_pair(&mut group, t0);
    let _c = held(group.join(request("", Some("c")), t0 + Duration::from_secs(1)));
    assert_eq!(
        group.heartbeat(&a, Some("a"), 1, t0 + Duration::from_secs(1)),
        Err(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn a_static_member_rejoining_without_its_id_fences_the_old_incarnation() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let (a, b) = stable_pair(&mut group, t0);
    let t1 = t0 + Duration::from_secs(1);
    let mut a2 = held(group.join(request("", Some("a")), t1));
    assert_eq!(
        group.heartbeat(&a, Some("a"), 1, t1),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        group.heartbeat(&a, None, 1, t1),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.may_commit(&a, Some("a"), 1, t1),
        Err(ResponseError::FencedInstanceId)
    );
    // b rejoins after its heartbeat says so; the new incarnation of a is assigned.
    let mut b2 = held(group.join(request(&b, Some("b")), t1 + Duration::from_millis(10)));
    group.try_complete_join(t1 + Duration::from_millis(100));
    let (a2, b2) = (answered(&mut a2), answered(&mut b2));
    assert_eq!((a2.generation, b2.generation), (2, 2));
    assert_ne!(a2.member_id, a);
    assert!(a2.member_id.starts_with("a-"));
}

#[test]
fn a_silent_member_is_expired_and_the_rest_rebalance_without_it() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let (a, b) = stable_pair(&mut group, t0);
    let t1 = t0 + SESSION;
    assert_eq!(group.heartbeat(&b, Some("b"), 1, t1), Ok(()));
    group.expire(t1 + Duration::from_secs(1));
    assert_eq!(group.state(), State::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&a, Some("a"), 1, t1),
        Err(ResponseError::UnknownMemberId)
    );
    let t2 = t1 + Duration::from_secs(2);
    assert_eq!(
        group.heartbeat(&b, Some("b"), 1, t2),
        Err(ResponseError::RebalanceInProgress)
    );
    let mut rejoined = held(group.join(request(&b, Some("b")), t2));
    group.try_complete_join(t2);
    let outcome = answered(&mut rejoined);
    assert_eq!(
        (
            outcome.generation,
            outcome.leader.as_str(),
            outcome.members.len()
        ),
        (2, b.as_str(), 1)
    );
}

#[test]
fn an_expired_static_member_that_comes_back_is_assigned_again() {
    // tansu 0.6 left this group without a leader forever.
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let mut only = held(group.join(request("", Some("solo")), t0));
    group.try_complete_join(t0 + INITIAL_REBALANCE_DELAY);
    let first = answered(&mut only);
    group.expire(t0 + SESSION * 2);
    assert_eq!(group.state(), State::Empty);
    let t1 = t0 + SESSION * 3;
    let mut back = held(group.join(request("", Some("solo")), t1));
    group.try_complete_join(t1 + INITIAL_REBALANCE_DELAY);
    let again = answered(&mut back);
    assert_eq!(again.error, None);
    assert_eq!(again.leader, again.member_id);
    assert_ne!(again.member_id, first.member_id);
    let mut sync = held(group.sync(
        &again.member_id,
        Some("solo"),
        again.generation,
        vec![(again.member_id.clone(), Bytes::from_static(b"all"))],
        t1,
    ));
    assert_eq!(answered(&mut sync).result, Ok(Bytes::from_static(b"all")));
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_deadline() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let (_a, b) = stable_pair(&mut group, t0);
    let t1 = t0 + Duration::from_secs(1);
    let mut b2 = held(group.join(request(&b, Some("b")), t1));
    group.try_complete_join(t1 + Duration::from_secs(1));
    assert!(b2.try_recv().is_err(), "still waiting for a");
    // a keeps its session alive (heartbeats) but never rejoins.
    for second in 2..20 {
        let _ = group.heartbeat(&_a, Some("a"), 1, t1 + Duration::from_secs(second));
    }
    group.expire(t1 + REBALANCE + Duration::from_millis(1));
    let outcome = answered(&mut b2);
    assert_eq!((outcome.generation, outcome.members.len()), (2, 1));
}

#[test]
fn a_rebalance_during_sync_answers_the_waiting_members() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let outcomes = form(&mut group, &["", ""], t0);
    let follower = outcomes
        .iter()
        .find(|o| o.member_id != o.leader)
        .expect("follower");
    let leader = outcomes
        .iter()
        .find(|o| o.member_id == o.leader)
        .expect("leader");
    let t1 = t0 + Duration::from_millis(100);
    let mut waiting = held(group.sync(&follower.member_id, None, 1, Vec::new(), t1));
    assert_eq!(group.leave(&leader.member_id, None, t1), Ok(()));
    let SyncOutcome { result, .. } = answered(&mut waiting);
    assert_eq!(result, Err(ResponseError::RebalanceInProgress));
}

#[test]
fn commits_follow_the_generation() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    assert_eq!(
        group.may_commit("", None, -1, t0),
        Ok(()),
        "outside group management"
    );
    let (a, _b) = stable_pair(&mut group, t0);
    assert_eq!(group.may_commit(&a, Some("a"), 1, t0), Ok(()));
    assert_eq!(
        group.may_commit(&a, Some("a"), 0, t0),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.may_commit("stranger", None, 1, t0),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.may_commit("", None, -1, t0),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_member_with_no_common_protocol_is_refused() {
    let t0 = Instant::now();
    let mut group = Group::new("g", t0);
    let _a = held(group.join(request("", Some("a")), t0));
    let mut odd = request("", Some("odd"));
    odd.protocols = vec![("cooperative-sticky".to_owned(), Bytes::new())];
    let outcome = now_outcome(group.join(odd, t0));
    assert_eq!(
        outcome.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}
