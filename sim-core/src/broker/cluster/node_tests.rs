//! Unit tests of the cluster broker, three of them driven through their
//! handlers with one harness each. Nothing moves by itself: a test hands
//! each message sent to the broker it is for, and fires timers by hand, so
//! it decides every interleaving (and every message a partition loses).

// Brokers are indices here, into the harnesses and into their nodes.
#![allow(clippy::needless_range_loop)]

use super::{BrokerTimer, ClusterBroker};
use crate::broker::{Assignor, GroupInfo, LogSpec};
use crate::engine::{Component, Emitted, Harness, Timer};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::cluster::{BrokerIx, ClusterMsg, CoordError, MetadataUpdate, PartState};
use crate::protocol::offsets::{CommitRecord, OffsetsRecord};
use crate::protocol::{Acks, FetchError, LogMsg, ProduceError};
use crate::time::{Time, NS_PER_MS};

const MS: u64 = NS_PER_MS;
const CONTROLLER: NodeId = 100;
/// Brokers 0, 1, 2 are nodes 1, 2, 3.
const NODES: [NodeId; 3] = [1, 2, 3];
const PRODUCER: NodeId = 50;
const MEMBER: NodeId = 60;
/// The `replica_lag_max_ms` of these tests.
const LAG: Time = 500 * MS;

/// A cluster of three brokers (one topic `t` of one partition, replicated
/// on all three: broker 0 leads), each with its harness, started.
struct Cluster {
    nodes: Vec<(Harness, ClusterBroker)>,
    /// What each broker's start emitted.
    started: Vec<Emitted>,
}

fn cluster(more: &str) -> Cluster {
    let table =
        format!("brokers = 3\nreplicas = 3\nreplica_lag_max_ms = 500\ntopics = {{ t = {{ partitions = 1 }} }}\n{more}");
    let spec: LogSpec = toml::from_str(&table).unwrap_or_else(|e| panic!("not a cluster: {e}\n{table}"));
    let layout = super::Layout::new(&spec, CONTROLLER, NODES.to_vec());
    assert_eq!(layout.replicas[0], vec![0, 1, 2], "broker 0 is the preferred leader");
    let groups = vec![GroupInfo::new("g", 0, 0, Assignor::Range)];
    let mut nodes = Vec::new();
    let mut started = Vec::new();
    for (i, &node) in NODES.iter().enumerate() {
        let mut h = Harness::new(node);
        let mut b = ClusterBroker::new(&spec, layout.clone(), i as BrokerIx, groups.clone());
        started.push(h.start(&mut b));
        nodes.push((h, b));
    }
    Cluster { nodes, started }
}

impl Cluster {
    fn at(&mut self, now: Time) {
        self.nodes.iter_mut().for_each(|(h, _)| h.now = now);
    }

    /// Delivers `msg` from `from` to broker `to`.
    fn deliver(&mut self, to: usize, from: NodeId, msg: impl Into<Msg>) -> Emitted {
        let (h, b) = &mut self.nodes[to];
        h.message(b, from, msg)
    }

    fn timer(&mut self, to: usize, t: BrokerTimer) -> Emitted {
        let (h, b) = &mut self.nodes[to];
        h.timer(b, t)
    }

    fn log(&self, b: usize) -> Vec<MsgId> {
        self.nodes[b].1.replica(0).log.iter().map(|e| e.r.rec.id).collect()
    }

    fn hw(&self, b: usize) -> u64 {
        self.nodes[b].1.replica(0).hw
    }
}

fn produce(id: MsgId, acks: Acks) -> LogMsg {
    LogMsg::Produce {
        recs: Box::new([Record::new(id, id)]),
        acks,
        attempt: 1,
        epoch: 0,
        seq: 0,
        topic: 0,
        partition: 0,
    }
}

fn idempotent(id: MsgId, epoch: u32, seq: u64) -> LogMsg {
    LogMsg::Produce {
        recs: Box::new([Record::new(id, id)]),
        acks: Acks::Leader,
        attempt: 1,
        epoch,
        seq,
        topic: 0,
        partition: 0,
    }
}

fn fetch(offset: u64, epoch: Option<u32>) -> LogMsg {
    LogMsg::Fetch { group: 0, generation: 1, partition: 0, offset, max: 100, max_bytes: u32::MAX, epoch }
}

/// The only message `e` sent to `to`.
fn only(e: &Emitted, to: NodeId) -> Msg {
    let sent = e.sent_to(to);
    assert_eq!(sent.len(), 1, "one message to {to}: {sent:?}");
    sent.into_iter().next().unwrap()
}

fn acks(e: &Emitted, to: NodeId) -> Vec<(Vec<MsgId>, bool)> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(LogMsg::ProduceAck { ids, accepted, .. }) => Some((ids.to_vec(), accepted)),
            _ => None,
        })
        .collect()
}

/// The error codes of the produce answers `e` sent to `to`.
fn ack_errors(e: &Emitted, to: NodeId) -> Vec<ProduceError> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(LogMsg::ProduceAck { error, .. }) => Some(error),
            _ => None,
        })
        .collect()
}

/// The ISR proposals `e` sent to the controller.
fn proposals(e: &Emitted) -> Vec<PartState> {
    e.sent_to(CONTROLLER)
        .into_iter()
        .map(|m| match m {
            Msg::Cluster(ClusterMsg::AlterPartition { broker: 0, state }) => *state,
            m => panic!("not a proposal: {m:?}"),
        })
        .collect()
}

fn metadata(version: u64, parts: Vec<PartState>) -> ClusterMsg {
    // A push: it builds on the version before it.
    ClusterMsg::Metadata(Box::new(MetadataUpdate { since: version - 1, version, parts, fenced: Vec::new() }))
}

fn state(leader: Option<BrokerIx>, leader_epoch: u32, partition_epoch: u32, isr: &[BrokerIx]) -> PartState {
    PartState { partition: 0, leader, leader_epoch, partition_epoch, isr: isr.to_vec(), unclean: false }
}

#[test]
fn brokers_heartbeat_and_followers_fetch_from_the_leader_at_start() {
    let c = cluster("");
    for (i, s) in c.started.iter().enumerate() {
        let hb = ClusterMsg::BrokerHeartbeat { broker: i as BrokerIx, incarnation: 0, version: 0 };
        assert_eq!(s.sent_to(CONTROLLER), vec![Msg::Cluster(hb)]);
        assert!(s.timers::<BrokerTimer>().contains(&(2000 * MS, BrokerTimer::Heartbeat)), "Kafka's 2 s");
    }
    assert!(c.started[0].sent_to(NODES[0]).is_empty(), "the leader fetches from no one");
    for f in 1..3 {
        match only(&c.started[f], NODES[0]) {
            Msg::Cluster(ClusterMsg::ReplicaFetch { broker, parts, .. }) => {
                assert_eq!(broker, f as BrokerIx);
                assert_eq!((parts[0].offset, parts[0].last_epoch, parts[0].leader_epoch), (0, None, 0));
            }
            m => panic!("not a fetch: {m:?}"),
        }
    }
}

#[test]
fn acks_all_is_answered_once_every_in_sync_follower_has_fetched_the_batch() {
    let mut c = cluster("");
    // The followers' first fetches find nothing: parked at the leader.
    for f in 1..3 {
        let first = only(&c.started[f], NODES[0]);
        assert!(c.deliver(0, NODES[f], first).sent().is_empty(), "parked, not answered");
    }
    // The append wakes both parked fetches at once.
    let e = c.deliver(0, PRODUCER, produce(7, Acks::All));
    assert!(acks(&e, PRODUCER).is_empty(), "waits for the followers");
    assert_eq!(c.log(0), vec![7]);
    for f in 1..3 {
        let data = only(&e, NODES[f]);
        let e = c.deliver(f, NODES[0], data);
        assert_eq!(c.log(f), vec![7], "follower {f} appended the record");
        let next = only(&e, NODES[0]);
        let e = c.deliver(0, NODES[f], next);
        if f == 1 {
            assert!(acks(&e, PRODUCER).is_empty(), "broker 2 is in the ISR and has not fetched it");
            assert_eq!(c.hw(0), 0);
        } else {
            assert_eq!(acks(&e, PRODUCER), vec![(vec![7], true)], "the HW passed it");
            assert_eq!(c.hw(0), 1);
        }
    }
    // A follower learns the HW from the next answer (here, its parked
    // fetch's wait running out).
    c.at(600 * MS);
    let e = c.timer(0, BrokerTimer::FetchWait { follower: 1 });
    c.deliver(1, NODES[0], only(&e, NODES[1]));
    assert_eq!(c.hw(1), 1);
}

#[test]
fn a_laggard_is_proposed_out_of_the_isr_and_the_hw_moves_on_once_the_controller_agrees() {
    let mut c = cluster("");
    let first = only(&c.started[1], NODES[0]);
    c.deliver(0, NODES[1], first);
    let e = c.deliver(0, PRODUCER, produce(7, Acks::All));
    let e = c.deliver(1, NODES[0], only(&e, NODES[1]));
    c.deliver(0, NODES[1], only(&e, NODES[0]));
    // Broker 2 never fetches (cut off). Before the lag runs out, no proposal.
    c.at(LAG / 2);
    let e = c.timer(0, BrokerTimer::IsrCheck);
    assert!(e.sent_to(CONTROLLER).is_empty());
    c.at(LAG + MS);
    let e = c.timer(0, BrokerTimer::IsrCheck);
    // Two proposals: the topic's partition, and the group's offsets
    // partition (partition 1, also led by broker 0), where broker 2 lags too.
    assert_eq!(e.metric("isr_shrink_proposals"), 2.0);
    assert_eq!(
        proposals(&e),
        vec![state(Some(0), 0, 0, &[0, 1]), PartState { partition: 1, ..state(Some(0), 0, 0, &[0, 1]) }]
    );
    assert_eq!(c.hw(0), 0, "a proposal changes nothing until it is accepted");
    // Unanswered, it is sent again at the next check.
    let e = c.timer(0, BrokerTimer::IsrCheck);
    assert_eq!(proposals(&e).len(), 2);
    assert_eq!(e.metric("isr_shrink_proposals"), 0.0, "the same proposal, not a new one");
    let ack = ClusterMsg::AlterPartitionAck { accepted: true, state: Box::new(state(Some(0), 0, 1, &[0, 1])) };
    let e = c.deliver(0, CONTROLLER, ack);
    assert_eq!(acks(&e, PRODUCER), vec![(vec![7], true)]);
    assert_eq!(c.hw(0), 1);
}

#[test]
fn a_caught_up_follower_is_proposed_back_into_the_isr() {
    let mut c = cluster("");
    c.deliver(0, CONTROLLER, metadata(1, vec![state(Some(0), 0, 1, &[0, 1])]));
    let e = c.deliver(0, NODES[2], only(&c.started[2].clone(), NODES[0]));
    match only(&e, CONTROLLER) {
        Msg::Cluster(ClusterMsg::AlterPartition { state: s, .. }) => assert_eq!(s.isr, vec![0, 1, 2]),
        m => panic!("not a proposal: {m:?}"),
    }
}

#[test]
fn min_isr_refuses_acks_all_and_strict_min_isr_holds_the_hw() {
    let mut c = cluster("min_insync_replicas = 2");
    c.deliver(0, CONTROLLER, metadata(1, vec![state(Some(0), 0, 1, &[0])]));
    let e = c.deliver(0, PRODUCER, produce(7, Acks::All));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![7], false)]);
    assert_eq!(e.errors(), vec!["not-enough-replicas"]);
    assert!(c.log(0).is_empty());
    // acks=1 is appended, but the HW stands still below min ISR (3.7+).
    let e = c.deliver(0, PRODUCER, produce(8, Acks::Leader));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![8], true)]);
    assert_eq!((c.log(0), c.hw(0)), (vec![8], 0));
}

#[test]
fn before_strict_min_isr_the_hw_moves_and_waiting_acks_are_refused_after_the_append() {
    let mut c = cluster("min_insync_replicas = 2\nversion = \"3.6\"");
    let e = c.deliver(0, PRODUCER, produce(7, Acks::All));
    assert!(acks(&e, PRODUCER).is_empty());
    let e = c.deliver(0, CONTROLLER, metadata(1, vec![state(Some(0), 0, 1, &[0])]));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![7], false)]);
    assert_eq!(e.errors(), vec!["not-enough-replicas-after-append"]);
    assert_eq!(c.hw(0), 1);
}

#[test]
fn a_stale_leaders_tail_is_truncated_when_it_follows_the_new_leader() {
    let mut c = cluster("");
    // Broker 0 is cut off: it keeps leading and acks two acks=1 writes.
    for id in [1, 2] {
        let e = c.deliver(0, PRODUCER, produce(id, Acks::Leader));
        assert_eq!(acks(&e, PRODUCER), vec![(vec![id], true)]);
    }
    // Meanwhile the controller made broker 1 leader (epoch 1).
    let new = state(Some(1), 1, 1, &[1, 2]);
    c.deliver(1, CONTROLLER, metadata(1, vec![new.clone()]));
    let e = c.deliver(1, PRODUCER, produce(3, Acks::Leader));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![3], true)]);
    // The partition heals: broker 0 learns, and fetches from broker 1.
    let e = c.deliver(0, CONTROLLER, metadata(1, vec![new]));
    let (f, seq) = match only(&e, NODES[1]) {
        Msg::Cluster(ClusterMsg::ReplicaFetch { broker: 0, parts, seq }) => (parts, seq),
        m => panic!("not a fetch: {m:?}"),
    };
    assert_eq!((f[0].offset, f[0].last_epoch, f[0].leader_epoch), (2, Some(0), 1));
    let e = c.deliver(1, NODES[0], ClusterMsg::ReplicaFetch { broker: 0, seq, parts: f });
    let data = only(&e, NODES[0]);
    match &data {
        Msg::Cluster(ClusterMsg::ReplicaData { parts, .. }) => {
            assert_eq!(parts[0].diverging, Some((0, 0)), "epoch 0 ends at 0 in the new leader's log");
            assert!(parts[0].recs.is_empty());
        }
        m => panic!("not data: {m:?}"),
    }
    let e = c.deliver(0, NODES[1], data.clone());
    assert!(c.log(0).is_empty(), "cut back to the divergence point");
    let cause = LossCause::TruncatedAfterPartition;
    assert_eq!(e.discarded(), vec![(1, cause), (2, cause)]);
    assert_eq!((e.metric("truncated_records"), e.metric("acked_records_truncated")), (2.0, 2.0));
    // A copy of that answer (the network duplicated it) answers no fetch
    // outstanding: it starts no second fetch loop.
    let dup = c.deliver(0, NODES[1], data);
    assert!(dup.sent_to(NODES[1]).is_empty(), "a duplicate answer is dropped: {:?}", dup.sent_to(NODES[1]));
    // The next fetch, from 0, brings the new leader's record.
    let e = c.deliver(1, NODES[0], only(&e, NODES[1]));
    c.deliver(0, NODES[1], only(&e, NODES[0]));
    assert_eq!(c.log(0), vec![3]);
    assert_eq!(c.nodes[0].1.replica(0).last_epoch(), Some(1));
}

#[test]
fn a_truncation_after_a_restart_is_a_failover_or_an_unclean_election() {
    for (unclean, cause) in [(false, LossCause::LeaderFailover), (true, LossCause::UncleanElection)] {
        let mut c = cluster("");
        c.deliver(0, PRODUCER, produce(1, Acks::Leader));
        let (h, b) = &mut c.nodes[0];
        b.crash();
        h.restart(b);
        let new = PartState { unclean, ..state(Some(1), 1, 1, &[1]) };
        c.deliver(1, CONTROLLER, metadata(1, vec![new.clone()]));
        let e = c.deliver(0, CONTROLLER, metadata(1, vec![new]));
        let e = c.deliver(1, NODES[0], only(&e, NODES[1]));
        let e = c.deliver(0, NODES[1], only(&e, NODES[0]));
        assert_eq!(e.discarded(), vec![(1, cause)]);
    }
}

#[test]
fn a_leader_that_loses_leadership_refuses_the_acks_waiting() {
    let mut c = cluster("");
    c.deliver(0, PRODUCER, produce(7, Acks::All));
    let e = c.deliver(0, CONTROLLER, metadata(1, vec![state(Some(1), 1, 1, &[1, 2])]));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![7], false)]);
}

#[test]
fn a_non_leader_refuses_produce_and_fetch_and_sends_its_view_of_the_leaders() {
    let mut c = cluster("");
    let e = c.deliver(1, PRODUCER, produce(7, Acks::All));
    assert_eq!(e.errors(), vec!["not-leader-or-follower"]);
    let hint = Msg::Cluster(ClusterMsg::Leaders { topic: 0, leaders: Box::new([(Some(NODES[0]), 0)]) });
    assert_eq!(
        e.sent_to(PRODUCER),
        vec![
            Msg::Log(LogMsg::ProduceAck {
                ids: Box::new([7]),
                accepted: false,
                attempt: 1,
                error: ProduceError::NotLeader
            }),
            hint.clone()
        ]
    );
    assert!(c.log(1).is_empty());
    let e = c.deliver(1, MEMBER, fetch(0, None));
    let refused = LogMsg::Records { partition: 0, offset: 0, recs: Vec::new(), error: FetchError::NotLeader, epoch: 0 };
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Log(refused), hint.clone()]);
    let e = c.deliver(2, PRODUCER, ClusterMsg::MetadataRequest { topic: 0 });
    assert_eq!(e.sent_to(PRODUCER), vec![hint]);
}

#[test]
fn a_consumer_reads_up_to_the_hw_and_a_parked_fetch_is_served_when_it_moves() {
    let mut c = cluster("");
    let e = c.deliver(0, MEMBER, fetch(0, None));
    assert!(e.sent().is_empty(), "nothing readable: parked");
    for f in 1..3 {
        let first = only(&c.started[f], NODES[0]);
        c.deliver(0, NODES[f], first);
    }
    let e = c.deliver(0, PRODUCER, produce(7, Acks::Leader));
    assert!(e.sent_to(MEMBER).is_empty(), "appended, but below the HW only when replicated");
    let mut served = Vec::new();
    for f in 1..3 {
        let e2 = c.deliver(f, NODES[0], only(&e, NODES[f]));
        served.push(c.deliver(0, NODES[f], only(&e2, NODES[0])).sent_to(MEMBER));
    }
    let recs = vec![Record::new(7, 7)];
    let records = LogMsg::Records { partition: 0, offset: 0, recs, error: FetchError::None, epoch: 0 };
    assert_eq!(served, vec![vec![], vec![Msg::Log(records)]], "served when the last in-sync follower has it");
    // Read past what the log has: sent back to the HW.
    let e = c.deliver(0, MEMBER, fetch(5, None));
    let reset = LogMsg::Records { partition: 0, offset: 1, recs: Vec::new(), error: FetchError::None, epoch: 0 };
    assert_eq!((e.sent_to(MEMBER), e.metric("offset_resets")), (vec![Msg::Log(reset)], 1.0));
}

#[test]
fn an_idempotent_retry_is_answered_without_a_second_append_and_a_gap_is_refused() {
    let mut c = cluster("");
    c.deliver(0, PRODUCER, idempotent(1, 1, 0));
    let e = c.deliver(0, PRODUCER, idempotent(1, 1, 0));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![1], true)]);
    assert_eq!(c.log(0), vec![1], "not appended twice");
    let e = c.deliver(0, PRODUCER, idempotent(3, 1, 2));
    assert_eq!((acks(&e, PRODUCER), e.errors()), (vec![(vec![3], false)], vec!["out-of-order"]));
    assert_eq!(ack_errors(&e, PRODUCER), vec![ProduceError::OutOfOrderSequence], "the producer is told why");
    let e = c.deliver(0, PRODUCER, idempotent(2, 1, 1));
    assert_eq!((acks(&e, PRODUCER), ack_errors(&e, PRODUCER)), (vec![(vec![2], true)], vec![ProduceError::None]));
    let e = c.deliver(0, PRODUCER, idempotent(9, 0, 0).clone());
    assert!(e.errors().is_empty(), "epoch 0 is not idempotent");
    let stale = LogMsg::Produce {
        recs: Box::new([Record::new(4, 4)]),
        acks: Acks::Leader,
        attempt: 1,
        epoch: 1,
        seq: 2,
        topic: 0,
        partition: 0,
    };
    c.deliver(0, PRODUCER, idempotent(5, 2, 0));
    let e = c.deliver(0, PRODUCER, stale);
    assert_eq!((e.errors(), ack_errors(&e, PRODUCER)), (vec!["fenced"], vec![ProduceError::InvalidProducerEpoch]));
}

#[test]
fn group_messages_to_a_broker_that_does_not_coordinate_are_refused_and_find_coordinator_names_the_leader() {
    let mut c = cluster("");
    // Group 0 (`g`) is coordinated where Kafka places it: "g".hashCode()
    // is 103, offsets partition 103 % 50 = 3 (partition 1 here), led by
    // broker 3 % 3 = 0.
    let hb = LogMsg::Heartbeat { group: 0, session: 1, generation: 0 };
    let e = c.deliver(1, MEMBER, hb.clone());
    let refused = ClusterMsg::GroupError { group: 0, error: CoordError::NotCoordinator, commit: None };
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(refused)]);
    let e = c.deliver(2, MEMBER, ClusterMsg::FindCoordinator { group: 0 });
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(ClusterMsg::Coordinator { group: 0, node: Some(NODES[0]) })]);
    // The answer is the answering broker's view: once it hears that broker 1
    // leads the offsets partition, it names broker 1.
    let moved = PartState { partition: 1, ..state(Some(1), 1, 1, &[0, 1, 2]) };
    c.deliver(2, CONTROLLER, metadata(1, vec![moved]));
    let e = c.deliver(2, MEMBER, ClusterMsg::FindCoordinator { group: 0 });
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(ClusterMsg::Coordinator { group: 0, node: Some(NODES[1]) })]);
}

#[test]
fn a_crash_keeps_the_log_and_a_restart_heartbeats_a_new_incarnation_from_version_0() {
    let mut c = cluster("");
    c.deliver(0, PRODUCER, produce(7, Acks::Leader));
    c.deliver(0, CONTROLLER, metadata(4, vec![state(Some(0), 0, 1, &[0, 1])]));
    let (h, b) = &mut c.nodes[0];
    b.crash();
    let e = h.restart(b);
    let hb = ClusterMsg::BrokerHeartbeat { broker: 0, incarnation: 1, version: 0 };
    assert_eq!(e.sent_to(CONTROLLER), vec![Msg::Cluster(hb)]);
    assert_eq!(c.log(0), vec![7]);
    // Not serving until the controller's metadata reaches it.
    let e = c.deliver(0, PRODUCER, produce(8, Acks::Leader));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![8], false)]);
    c.deliver(0, CONTROLLER, metadata(5, vec![state(Some(0), 1, 2, &[0])]));
    let e = c.deliver(0, PRODUCER, produce(8, Acks::Leader));
    assert_eq!(acks(&e, PRODUCER), vec![(vec![8], true)]);
    assert_eq!(c.nodes[0].1.replica(0).epochs.epoch_of(1), 1, "epoch 1 began at its log end");
}

#[test]
fn an_unanswered_fetch_is_sent_again_after_the_socket_timeout() {
    let mut c = cluster("");
    let t = c.started[1].timers::<BrokerTimer>();
    let (delay, timeout) = *t.iter().find(|(_, t)| matches!(t, BrokerTimer::FetchTimeout { .. })).unwrap();
    assert_eq!(delay, 30_000 * MS, "Kafka's replica.socket.timeout.ms");
    let e = c.timer(1, timeout);
    assert!(matches!(only(&e, NODES[0]), Msg::Cluster(ClusterMsg::ReplicaFetch { .. })));
    assert_eq!(e.metric("replica_fetch_timeouts"), 1.0);
    // A late timer of an answered fetch does nothing.
    let e2 = c.deliver(0, NODES[1], only(&e, NODES[0]));
    assert!(e2.sent().is_empty());
    assert!(c.timer(1, timeout).is_empty());
}

#[test]
fn timers_round_trip_through_their_words() {
    let all = [
        BrokerTimer::Heartbeat,
        BrokerTimer::IsrCheck,
        BrokerTimer::FetchTimeout { leader: 7, seq: u32::MAX },
        BrokerTimer::FetchWait { follower: 65535 },
    ];
    for t in all {
        assert_eq!(BrokerTimer::from_word(t.to_word()), Some(t));
    }
    assert_eq!(BrokerTimer::from_word(9 << 56), None);
}

/// A lossless network between the three brokers, for the tests that let
/// replication run by itself: messages between brokers are delivered (in
/// send order) until none is left, except across a cut; messages to any
/// other node are kept for the test to read.
struct Net {
    queue: std::collections::VecDeque<(usize, NodeId, Msg)>,
    /// Messages for the producer, the member and the controller: (to, from, msg).
    out: Vec<(NodeId, NodeId, Msg)>,
    /// Brokers cut off from every other node.
    cut: Vec<usize>,
}

impl Net {
    fn new() -> Self {
        Net { queue: Default::default(), out: Vec::new(), cut: Vec::new() }
    }

    /// Queues what broker `from` emitted.
    fn take(&mut self, from: usize, e: Emitted) {
        for (to, msg) in e.sent() {
            if self.cut.contains(&from) {
                continue; // lost in the partition
            }
            match NODES.iter().position(|&n| n == to) {
                Some(b) if !self.cut.contains(&b) => self.queue.push_back((b, NODES[from], msg)),
                Some(_) => {}
                None => self.out.push((to, NODES[from], msg)),
            }
        }
    }

    /// Delivers until nothing moves; returns the losses the brokers noted
    /// on the way.
    fn pump(&mut self, c: &mut Cluster) -> Vec<(MsgId, LossCause)> {
        let mut lost = Vec::new();
        let mut n = 0;
        while let Some((to, from, msg)) = self.queue.pop_front() {
            n += 1;
            assert!(n < 100_000, "the brokers keep sending without end: {to} {from} {msg:?}");
            let e = c.deliver(to, from, msg);
            lost.extend(e.discarded());
            self.take(to, e);
        }
        lost
    }

    /// Sends `msg` from `from` to broker `to` and delivers what follows.
    fn send(&mut self, c: &mut Cluster, to: usize, from: NodeId, msg: impl Into<Msg>) {
        let e = c.deliver(to, from, msg);
        self.take(to, e);
        self.pump(c);
    }

    /// The acks the producer got so far, taken out.
    fn acks(&mut self) -> Vec<(Vec<MsgId>, bool)> {
        let mut got = Vec::new();
        self.out.retain(|(to, _, m)| match m {
            Msg::Log(LogMsg::ProduceAck { ids, accepted, .. }) if *to == PRODUCER => {
                got.push((ids.to_vec(), *accepted));
                false
            }
            _ => true,
        });
        got
    }

    /// The ISR proposals sent to the controller, taken out.
    fn proposals(&mut self) -> Vec<PartState> {
        let mut got = Vec::new();
        self.out.retain(|(to, _, m)| match m {
            Msg::Cluster(ClusterMsg::AlterPartition { state, .. }) if *to == CONTROLLER => {
                got.push((**state).clone());
                false
            }
            _ => true,
        });
        got
    }
}

/// A cluster whose followers' first fetches are on their way.
fn running(more: &str) -> (Cluster, Net) {
    let mut c = cluster(more);
    let mut net = Net::new();
    for b in 0..3 {
        let e = std::mem::replace(&mut c.started[b], Emitted(Vec::new()));
        net.take(b, e);
    }
    net.pump(&mut c);
    (c, net)
}

#[test]
fn batches_replicate_by_themselves_and_every_acks_all_batch_is_answered() {
    let (mut c, mut net) = running("");
    for id in 0..50 {
        net.send(&mut c, 0, PRODUCER, produce(id, Acks::All));
    }
    let acked = net.acks();
    assert_eq!(acked.len(), 50);
    assert!(acked.iter().all(|(_, ok)| *ok));
    let ids: Vec<MsgId> = (0..50).collect();
    for b in 0..3 {
        assert_eq!(c.log(b), ids, "broker {b} has every record, in order");
    }
    assert_eq!(c.hw(0), 50);
}

/// Jepsen's 2013 Kafka finding, in the broker's part: a leader cut off
/// from its followers (but not from the controller) shrinks the ISR to
/// itself, so with min ISR 1 it acknowledges `acks = all` writes alone;
/// once a follower is elected (it never had them) and the partition
/// heals, the old leader truncates the acknowledged writes.
#[test]
fn an_isolated_leader_acknowledges_alone_with_min_isr_1_and_loses_it_on_the_heal() {
    let (mut c, mut net) = running("");
    net.send(&mut c, 0, PRODUCER, produce(1, Acks::All));
    assert_eq!(net.acks(), vec![(vec![1], true)], "replicated to all three");
    // The followers are cut off from broker 0; it keeps the controller.
    net.cut = vec![1, 2];
    net.send(&mut c, 0, PRODUCER, produce(2, Acks::All));
    assert!(net.acks().is_empty(), "waits for its ISR");
    c.at(LAG + MS);
    let e = c.timer(0, BrokerTimer::IsrCheck);
    net.take(0, e);
    assert_eq!(net.proposals(), vec![state(Some(0), 0, 0, &[0])]);
    let ack = ClusterMsg::AlterPartitionAck { accepted: true, state: Box::new(state(Some(0), 0, 1, &[0])) };
    net.send(&mut c, 0, CONTROLLER, ack);
    assert_eq!(net.acks(), vec![(vec![2], true)], "acknowledged with only the leader in sync");
    // The controller then loses broker 0 too and elects broker 1 uncleanly.
    let new = PartState { unclean: true, ..state(Some(1), 1, 2, &[1]) };
    net.cut = vec![0];
    for b in [1, 2] {
        net.send(&mut c, b, CONTROLLER, metadata(2, vec![new.clone()]));
    }
    net.send(&mut c, 1, PRODUCER, produce(3, Acks::Leader));
    assert_eq!(net.acks(), vec![(vec![3], true)]);
    // The heal: broker 0 learns and follows; its acknowledged write goes.
    net.cut.clear();
    let e = c.deliver(0, CONTROLLER, metadata(2, vec![new]));
    assert!(e.discarded().is_empty());
    net.take(0, e);
    let lost = net.pump(&mut c);
    assert_eq!(lost, vec![(2, LossCause::TruncatedAfterPartition)]);
    for b in 0..3 {
        assert_eq!(c.log(b), vec![1, 3], "broker {b} holds the new leader's log");
    }
}

/// A stale leader: cut off from everyone, it keeps leading on its view
/// and acknowledges `acks = 1` writes, which its return cuts off.
#[test]
fn a_stale_leaders_acks_1_writes_are_lost_when_it_returns() {
    let (mut c, mut net) = running("");
    net.cut = vec![0];
    let new = state(Some(1), 1, 1, &[1, 2]);
    for b in [1, 2] {
        net.send(&mut c, b, CONTROLLER, metadata(1, vec![new.clone()]));
    }
    // Its producer still reaches it (a partition that splits the cluster).
    for id in [10, 11] {
        let e = c.deliver(0, PRODUCER, produce(id, Acks::Leader));
        assert_eq!(acks(&e, PRODUCER), vec![(vec![id], true)], "a stale leader accepts");
    }
    net.send(&mut c, 1, PRODUCER, produce(12, Acks::All));
    assert_eq!(net.acks(), vec![(vec![12], true)]);
    net.cut.clear();
    let e = c.deliver(0, CONTROLLER, metadata(1, vec![new]));
    net.take(0, e);
    let lost = net.pump(&mut c);
    let cause = LossCause::TruncatedAfterPartition;
    assert_eq!(lost, vec![(10, cause), (11, cause)]);
    assert_eq!(c.log(0), vec![12]);
}

#[test]
fn a_push_after_a_missed_one_applies_its_states_but_not_its_version() {
    let mut c = cluster("");
    // Version 1 was lost on the way; version 2 (built on 1) arrives.
    c.deliver(1, CONTROLLER, metadata(2, vec![state(Some(1), 1, 1, &[1, 2])]));
    assert_eq!(c.nodes[1].1.views[0].leader, Some(1), "the partition's state is whole: it applies");
    assert_eq!(c.nodes[1].1.version, 0, "the version stays: the controller must resend version 1");
    // The heartbeat's answer builds on what the broker said it had.
    let answer = MetadataUpdate { since: 0, version: 2, parts: Vec::new(), fenced: Vec::new() };
    c.deliver(1, CONTROLLER, ClusterMsg::Metadata(Box::new(answer)));
    assert_eq!(c.nodes[1].1.version, 2);
}

// ---- the group coordinator on the leader of its offsets partition ----

/// What the member got so far, taken out.
fn to_member(net: &mut Net) -> Vec<Msg> {
    let mut got = Vec::new();
    net.out.retain(|(to, _, m)| {
        let mine = *to == MEMBER;
        if mine {
            got.push(m.clone());
        }
        !mine
    });
    got
}

/// A running cluster whose group `g` (offsets partition 1, led by broker
/// 0) has MEMBER in generation 1, owning partition 0.
fn grouped() -> (Cluster, Net) {
    grouped_with("")
}

fn grouped_with(more: &str) -> (Cluster, Net) {
    let (mut c, mut net) = running(&format!("initial_rebalance_delay_ms = 0\n{more}"));
    net.send(&mut c, 0, MEMBER, LogMsg::JoinGroup { group: 0, session: 1, owned: Vec::new(), static_member: false });
    net.send(&mut c, 0, MEMBER, LogMsg::SyncGroup { group: 0, session: 1, generation: 1 });
    let got = to_member(&mut net);
    let assigned = LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 0, None)] };
    assert!(got.contains(&Msg::Log(assigned)), "{got:?}");
    (c, net)
}

fn commit(offset: u64) -> LogMsg {
    LogMsg::Commit { group: 0, generation: 1, partition: 0, offset, epoch: None }
}

/// The offsets partition led by `leader` in epoch `epoch`, pushed to every broker.
fn move_offsets(c: &mut Cluster, net: &mut Net, leader: BrokerIx, epoch: u32) {
    let moved = PartState { partition: 1, ..state(Some(leader), epoch, epoch, &[0, 1, 2]) };
    // Every broker hears it before anything else moves (a broker that
    // still thinks the old leader leads would fetch from it again and again
    // in this timeless network).
    for b in 0..3 {
        let e = c.deliver(b, CONTROLLER, metadata(u64::from(epoch), vec![moved.clone()]));
        net.take(b, e);
    }
    net.pump(c);
}

#[test]
fn a_commit_is_a_record_answered_once_replicated_and_the_group_moves_with_its_offsets_partition() {
    let (mut c, mut net) = grouped();
    net.send(&mut c, 0, MEMBER, commit(5));
    let ack = LogMsg::CommitAck { partition: 0, offset: 5, ok: true };
    assert_eq!(to_member(&mut net), vec![Msg::Log(ack)], "answered once the followers have it");
    for b in 0..3 {
        let r = c.nodes[b].1.replica(1);
        assert!(r.log.iter().all(|e| e.r.rec.id == crate::protocol::offsets::OFFSETS_RECORD));
        let recs = c.nodes[b].1.group_logs.records(1);
        assert_eq!(recs.len(), r.log.len(), "broker {b}: one content per record");
        // The group's metadata when the join settled, again when the member
        // synced (a change: it fetched its assignment), then the commit.
        let synced = |r: &OffsetsRecord| match r {
            OffsetsRecord::Group(g) => Some(g.members.iter().map(|m| m.synced).collect::<Vec<_>>()),
            OffsetsRecord::Commit(_) => None,
        };
        assert_eq!(recs.iter().map(synced).collect::<Vec<_>>(), vec![Some(vec![0]), Some(vec![1]), None]);
        let by = (MEMBER, 1);
        assert_eq!(recs[2], OffsetsRecord::Commit(CommitRecord { group: 0, partition: 0, offset: 5, epoch: None, by }));
    }
    assert_eq!(c.hw(0), 0, "the topic's partition is untouched");
    // The offsets partition moves to broker 1: broker 1 loads the group
    // from its own replica (the member, its assignment, the commit), and
    // broker 0 gives it up.
    move_offsets(&mut c, &mut net, 1, 1);
    assert_eq!(c.nodes[1].1.coordinator.committed(0, 0), Some(5));
    assert!(c.nodes[1].1.coordinator.may_commit(0, MEMBER, 1, 0), "same member, same generation, same partition");
    assert_eq!(c.nodes[0].1.coordinator.committed(0, 0), None, "forgotten by the old coordinator");
    let e = c.deliver(1, MEMBER, LogMsg::Heartbeat { group: 0, session: 1, generation: 1 });
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(ClusterMsg::HeartbeatOk { group: 0 })], "its session goes on");
    let e = c.deliver(0, MEMBER, commit(6));
    let refused = ClusterMsg::GroupError { group: 0, error: CoordError::NotCoordinator, commit: Some((0, 6)) };
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(refused)]);
}

#[test]
fn a_commit_waiting_for_its_record_is_refused_when_the_coordinator_moves_or_times_out() {
    let (mut c, mut net) = grouped();
    // Broker 2 is cut off: still in the ISR, the HW cannot pass the commit.
    net.cut = vec![2];
    net.send(&mut c, 0, MEMBER, commit(5));
    assert!(to_member(&mut net).is_empty(), "not committed yet: no answer");
    c.at(5000 * MS);
    let e = c.timer(0, BrokerTimer::CommitTimeout);
    let timed_out = ClusterMsg::GroupError { group: 0, error: CoordError::TimedOut, commit: Some((0, 5)) };
    assert_eq!(e.sent_to(MEMBER), vec![Msg::Cluster(timed_out)], "offsets.commit.timeout.ms");
    assert_eq!(c.nodes[0].1.coordinator.committed(0, 0), None);
    net.send(&mut c, 0, MEMBER, commit(7));
    move_offsets(&mut c, &mut net, 1, 1);
    let refused = ClusterMsg::GroupError { group: 0, error: CoordError::NotCoordinator, commit: Some((0, 7)) };
    assert_eq!(to_member(&mut net), vec![Msg::Cluster(refused)], "the leader resigned before the HW passed it");
}

#[test]
fn below_min_isr_a_commit_is_refused_at_once() {
    let (mut c, mut net) = grouped_with("min_insync_replicas = 2");
    let shrunk = PartState { partition: 1, ..state(Some(0), 0, 1, &[0]) };
    net.send(&mut c, 0, CONTROLLER, metadata(1, vec![shrunk]));
    let e = c.deliver(0, MEMBER, commit(5));
    let refused = ClusterMsg::GroupError { group: 0, error: CoordError::NotAvailable, commit: Some((0, 5)) };
    assert_eq!(
        e.sent_to(MEMBER),
        vec![Msg::Cluster(refused)],
        "Kafka's NOT_ENOUGH_REPLICAS, as the coordinator maps it"
    );
}
