//! Unit tests of a group member reading from a cluster, driven through its
//! handlers: metadata, coordinator answers and fetch errors by hand.

use super::super::{CommitMode, LogConsumer, LogConsumerSetup, LogConsumerTimer};
use crate::engine::{Emitted, Harness};
use crate::message::{Msg, NodeId, Record};
use crate::protocol::{ClusterMsg, FetchError, LogMsg};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const CONTROLLER: NodeId = 10;
const BROKERS: [NodeId; 3] = [11, 12, 13];

/// A member of group 0 reading topic 0 (2 partitions) of a 3-broker
/// cluster: 10 ms per record, heartbeat every 300 ms, requests resent
/// after 1 s, committing after each batch.
fn member() -> (Harness, LogConsumer, Emitted) {
    // The single broker's member, with the cluster's controller as its broker.
    let setup = LogConsumerSetup { broker: CONTROLLER, ..crate::log_consumer::tests::setup(CommitMode::After) };
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup).in_cluster(BROKERS.to_vec(), 0, 2);
    let e = h.start(&mut c);
    (h, c, e)
}

/// Every log message sent, with its destination.
fn log_sent(e: &Emitted) -> Vec<(NodeId, LogMsg)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(l) => Some((to, l)),
            _ => None,
        })
        .collect()
}

fn cluster_sent(e: &Emitted) -> Vec<(NodeId, ClusterMsg)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Cluster(c) => Some((to, c)),
            _ => None,
        })
        .collect()
}

/// (node, partition, offset) of every fetch sent.
fn fetches(e: &Emitted) -> Vec<(NodeId, u32, u64)> {
    let f = |(to, m)| match m {
        LogMsg::Fetch { partition, offset, .. } => Some((to, partition, offset)),
        _ => None,
    };
    log_sent(e).into_iter().filter_map(f).collect()
}

fn leaders(l: &[(Option<NodeId>, u32)]) -> ClusterMsg {
    ClusterMsg::Leaders { topic: 0, leaders: l.into() }
}

/// The member learns coordinator 12, joins generation 1 there and is
/// assigned partitions 0 and 1 (from offsets 5 and 7); returns what the
/// assignment emitted.
fn joined(h: &mut Harness, c: &mut LogConsumer) -> Emitted {
    let e = h.message(c, 11, ClusterMsg::Coordinator { group: 0, node: Some(12) });
    assert!(matches!(log_sent(&e)[..], [(12, LogMsg::JoinGroup { group: 0, .. })]), "{e:?}");
    let e = h.message(c, 12, LogMsg::JoinAck { generation: 1 });
    assert!(matches!(log_sent(&e)[..], [(12, LogMsg::SyncGroup { generation: 1, .. })]), "{e:?}");
    let partitions = vec![(0, 5, None), (1, 7, None)];
    h.message(c, 12, LogMsg::GroupState { generation: 1, rebalancing: false, partitions })
}

#[test]
fn a_member_asks_for_metadata_and_its_coordinator_and_joins_there_once_known() {
    let (mut h, mut c, e) = member();
    assert_eq!(
        cluster_sent(&e),
        vec![(11, ClusterMsg::MetadataRequest { topic: 0 }), (11, ClusterMsg::FindCoordinator { group: 0 })]
    );
    assert!(log_sent(&e).is_empty(), "no join before the coordinator is known");
    assert!(e.sent().iter().all(|(to, _)| *to != CONTROLLER));
    let e = joined(&mut h, &mut c);
    assert!(fetches(&e).is_empty(), "no leader known yet: the fetches wait");
    let e = h.message(&mut c, 11, leaders(&[(Some(13), 0), (Some(11), 0)]));
    assert_eq!(fetches(&e), vec![(13, 0, 5), (11, 1, 7)], "each fetch to its partition's leader");
    h.now = 300 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Tick);
    assert!(log_sent(&e).iter().any(|(to, m)| *to == 12 && matches!(m, LogMsg::Heartbeat { .. })));
}

#[test]
fn not_leader_refreshes_and_the_fetch_follows_the_new_leader_and_commits_go_to_the_coordinator() {
    let (mut h, mut c, _) = member();
    joined(&mut h, &mut c);
    h.message(&mut c, 11, leaders(&[(Some(13), 0), (Some(11), 0)]));
    h.now = 150 * MS;
    let not_leader =
        LogMsg::Records { partition: 0, offset: 5, recs: Vec::new(), error: FetchError::NotLeader, epoch: 0 };
    let e = h.message(&mut c, 13, not_leader);
    assert!(fetches(&e).is_empty(), "no fetch to the broker that refused");
    assert_eq!(cluster_sent(&e), vec![(11, ClusterMsg::MetadataRequest { topic: 0 })], "a refresh");
    let e = h.message(&mut c, 11, leaders(&[(Some(12), 1), (Some(11), 0)]));
    assert_eq!(fetches(&e), vec![(12, 0, 5)]);
    let recs =
        LogMsg::Records { partition: 0, offset: 5, recs: vec![Record::new(0, 0)], error: FetchError::None, epoch: 1 };
    h.message(&mut c, 12, recs);
    h.now += 10 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Process);
    assert!(log_sent(&e).iter().any(|(to, m)| *to == 12 && matches!(m, LogMsg::Commit { offset: 6, .. })), "{e:?}");
    assert_eq!(fetches(&e), vec![(12, 0, 6)]);
}

#[test]
fn a_fetch_left_unanswered_is_sent_again_and_metadata_asked_of_the_next_broker() {
    let (mut h, mut c, _) = member();
    joined(&mut h, &mut c);
    h.message(&mut c, 11, leaders(&[(Some(13), 0), (Some(11), 0)]));
    h.now = 1200 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Tick);
    assert_eq!(fetches(&e), vec![(13, 0, 5), (11, 1, 7)], "resent after the request timeout");
    assert!(cluster_sent(&e).contains(&(12, ClusterMsg::MetadataRequest { topic: 0 })), "{e:?}");
}

#[test]
fn a_join_left_unanswered_looks_the_coordinator_up_again() {
    let (mut h, mut c, _) = member();
    h.message(&mut c, 11, ClusterMsg::Coordinator { group: 0, node: Some(12) });
    h.message(&mut c, 11, leaders(&[(Some(13), 0), (Some(11), 0)]));
    h.now = 1000 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::JoinRetry);
    assert!(log_sent(&e).is_empty(), "the coordinator is unknown: nowhere to send the join");
    assert!(cluster_sent(&e).contains(&(12, ClusterMsg::FindCoordinator { group: 0 })), "{e:?}");
    let e = h.message(&mut c, 12, ClusterMsg::Coordinator { group: 0, node: Some(13) });
    assert!(matches!(log_sent(&e)[..], [(13, LogMsg::JoinGroup { .. })]), "resent once found: {e:?}");
}
