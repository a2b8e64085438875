//! Unit tests of a queue cluster's node, driven through its handlers with
//! the test harness: each test plays the messages and timers the other
//! nodes and the network would bring, in the order it wants (a message
//! that never comes stands for a partition).

use super::super::raft::Role;
use super::super::{Layout, QueueType};
use super::{NodeTimer, QueueClusterNode};
use crate::broker::QueueSpec;
use crate::engine::{Component, Emitted, Harness};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::queue_cluster::{Append, Command, LogEntry, QueueClusterMsg as Qc};
use crate::protocol::{publish, QueueMsg};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
/// The cluster's nodes `q-1`, `q-2`, `q-3`.
const N: [NodeId; 3] = [10, 11, 12];
const P: NodeId = 1;
const C: NodeId = 2;

fn layout(queue_type: QueueType) -> Layout {
    let spec = QueueSpec { nodes: Some(3), queue_type: Some(queue_type), ..QueueSpec::default() };
    Layout::new(&spec, |name| N[name.trim_start_matches("q-").parse::<usize>().unwrap() - 1], "q")
}

/// Node `index` of a 3-node cluster whose queue is `queue_type`, started.
fn node(queue_type: QueueType, index: usize) -> (Harness, QueueClusterNode) {
    let mut h = Harness::new(N[index]);
    let mut n = QueueClusterNode::new(layout(queue_type), index);
    h.start(&mut n);
    (h, n)
}

fn rec(id: MsgId) -> Record {
    Record::new(id, 0)
}

fn appends(e: &Emitted, to: NodeId) -> Vec<Append> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::QueueCluster(Qc::Append(a)) => Some(*a),
            _ => None,
        })
        .collect()
}

fn confirms(e: &Emitted) -> Vec<MsgId> {
    e.sent_to(P)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Queue(QueueMsg::PublishAck { id, accepted: true, .. }) => Some(id),
            _ => None,
        })
        .collect()
}

fn deliveries(e: &Emitted) -> Vec<MsgId> {
    e.sent_to(C)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Queue(QueueMsg::Deliver { rec, .. }) => Some(rec.id),
            _ => None,
        })
        .collect()
}

fn reply(term: u32, matched: u64) -> Qc {
    Qc::AppendReply { term, ok: true, matched, voter: true }
}

fn enqueue(term: u32, id: MsgId) -> LogEntry {
    let cmd = Command::Enqueue { rec: rec(id), at: 0, via: N[0], producer: P, attempt: 1, want_ack: true };
    LogEntry { term, cmd }
}

#[test]
fn the_leader_confirms_a_publish_only_once_a_majority_has_it() {
    let (mut h, mut leader) = node(QueueType::Quorum, 0);
    h.message(&mut leader, C, QueueMsg::Subscribe { prefetch: 10, session: 1, auto_ack: false });
    let e = h.message(&mut leader, P, publish(rec(0), true, 1));
    assert!(confirms(&e).is_empty(), "no confirm before a majority holds it");
    assert!(deliveries(&e).is_empty(), "an uncommitted message is not delivered");
    for f in [N[1], N[2]] {
        let a = appends(&e, f);
        assert_eq!(a.len(), 1, "replicated to each follower");
        assert_eq!(a[0].entries, vec![enqueue(1, 0)]);
    }
    // One follower's copy makes two of three: committed.
    let e = h.message(&mut leader, N[1], reply(1, 1));
    assert_eq!(confirms(&e), vec![0]);
    assert_eq!(deliveries(&e), vec![0], "delivered once committed");
    let e = h.message(&mut leader, N[2], reply(1, 1));
    assert!(confirms(&e).is_empty(), "confirmed once");
}

#[test]
fn a_leader_cut_off_in_a_minority_never_confirms_and_truncates_on_heal() {
    let (mut h, mut leader) = node(QueueType::Quorum, 0);
    h.message(&mut leader, P, publish(rec(7), true, 1));
    // The followers never answer (partition): heartbeats carry the entry
    // again and again, and nothing is confirmed.
    for k in 1..=30 {
        h.now = k * 100 * MS;
        let e = h.timer(&mut leader, NodeTimer::Heartbeat);
        assert!(confirms(&e).is_empty());
    }
    assert_eq!(leader.replica().unwrap().role(), Role::Leader, "it does not know it was deposed");
    // Healed: a follower answers with the newer term of the majority's leader.
    h.now = 4_000 * MS;
    h.message(&mut leader, N[1], Qc::AppendReply { term: 2, ok: false, matched: 0, voter: true });
    assert_eq!(leader.replica().unwrap().role(), Role::Follower, "a newer term deposes it");
    // The new leader's log has its no-op where the old leader's entry was.
    let a = Append {
        term: 2,
        prev_index: 0,
        prev_term: 0,
        entries: vec![LogEntry { term: 2, cmd: Command::Noop }],
        commit: 1,
    };
    let e = h.message(&mut leader, N[1], Qc::Append(Box::new(a)));
    assert_eq!(e.discarded(), vec![(7, LossCause::TruncatedAfterPartition)]);
    let r = leader.replica().unwrap();
    assert_eq!((r.term(), r.log_len(), r.commit(), r.live()), (2, 1, 1, 0));
    assert!(confirms(&e).is_empty());
}

#[test]
fn a_follower_elects_itself_after_its_leader_goes_silent() {
    let (mut h, mut f) = node(QueueType::Quorum, 1);
    // Heard from the leader recently: a pre-vote from another is refused.
    let e = h.message(&mut f, N[2], Qc::Vote { term: 2, last_index: 0, last_term: 0, pre: true });
    assert_eq!(e.sent_to(N[2]), vec![Msg::QueueCluster(Qc::VoteReply { term: 2, granted: false, pre: true })]);
    // Silent for longer than any election timeout (at most 2 s).
    h.now = 2_500 * MS;
    let e = h.timer(&mut f, NodeTimer::Election);
    let pre = Msg::QueueCluster(Qc::Vote { term: 2, last_index: 0, last_term: 0, pre: true });
    assert_eq!(e.sent_to(N[2]), vec![pre.clone()]);
    assert_eq!(f.replica().unwrap().term(), 1, "a pre-vote changes no term");
    let e = h.message(&mut f, N[2], Qc::VoteReply { term: 2, granted: true, pre: true });
    let vote = Msg::QueueCluster(Qc::Vote { term: 2, last_index: 0, last_term: 0, pre: false });
    assert_eq!(e.sent_to(N[2]), vec![vote]);
    assert_eq!(f.replica().unwrap().role(), Role::Candidate);
    let e = h.message(&mut f, N[2], Qc::VoteReply { term: 2, granted: true, pre: false });
    assert_eq!(f.replica().unwrap().role(), Role::Leader);
    assert_eq!(e.metric("leader_elections"), 1.0);
    let a = appends(&e, N[2]);
    assert_eq!(a[0].entries, vec![LogEntry { term: 2, cmd: Command::Noop }], "its term opens with a no-op");
    // It serves once its no-op is committed: a consumer subscribes, a publish is delivered.
    h.message(&mut f, N[2], reply(2, 1));
    h.message(&mut f, C, QueueMsg::Subscribe { prefetch: 10, session: 1, auto_ack: false });
    h.message(&mut f, P, publish(rec(3), true, 1));
    let e = h.message(&mut f, N[2], reply(2, 2));
    assert_eq!((confirms(&e), deliveries(&e)), (vec![3], vec![3]));
}

#[test]
fn a_replica_lost_with_its_disk_catches_up_before_it_votes_again() {
    let (mut h, mut f) = node(QueueType::Quorum, 2);
    let a = Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![enqueue(1, 0), enqueue(1, 1)], commit: 2 };
    h.message(&mut f, N[0], Qc::Append(Box::new(a)));
    assert_eq!(f.replica().unwrap().live(), 2);
    let e = h.fault(&mut f, &NodeFault::DiskLoss, true);
    let mut lost = e.discarded();
    lost.sort_unstable();
    assert_eq!(lost, vec![(0, LossCause::NodeLost), (1, LossCause::NodeLost)], "at risk, if no other replica has them");
    f.crash();
    h.now = 1_000 * MS;
    h.restart(&mut f);
    let r = f.replica().unwrap();
    assert_eq!((r.log_len(), r.voter()), (0, false));
    // Empty, it neither votes...
    let e = h.message(&mut f, N[1], Qc::Vote { term: 2, last_index: 0, last_term: 0, pre: false });
    assert_eq!(e.sent_to(N[1]), vec![Msg::QueueCluster(Qc::VoteReply { term: 2, granted: false, pre: false })]);
    // ...nor follows a leader's log it lacks the start of.
    let a = Append { term: 2, prev_index: 2, prev_term: 1, entries: vec![], commit: 2 };
    let e = h.message(&mut f, N[1], Qc::Append(Box::new(a)));
    let refused = Msg::QueueCluster(Qc::AppendReply { term: 2, ok: false, matched: 0, voter: false });
    assert_eq!(e.sent_to(N[1]), vec![refused]);
    // The leader sends it everything: it has caught up, and votes again.
    let entries = vec![enqueue(1, 0), enqueue(1, 1), LogEntry { term: 2, cmd: Command::Noop }];
    let a = Append { term: 2, prev_index: 0, prev_term: 0, entries, commit: 3 };
    let e = h.message(&mut f, N[1], Qc::Append(Box::new(a)));
    assert_eq!(e.sent_to(N[1]), vec![Msg::QueueCluster(reply(2, 3))]);
    let r = f.replica().unwrap();
    assert_eq!((r.log_len(), r.commit(), r.live(), r.voter()), (3, 3, 2, true));
}

#[test]
fn a_classic_queue_lost_with_its_node_loses_what_it_held() {
    let (mut h, mut home) = node(QueueType::Classic, 0);
    let e = h.message(&mut home, P, publish(rec(0), true, 1));
    assert_eq!(confirms(&e), vec![0], "a classic queue confirms at once");
    h.message(&mut home, N[1], Qc::Forward { rec: rec(1), producer: P, attempt: 1, want_ack: true });
    // A restart keeps a durable queue's messages...
    home.crash();
    h.restart(&mut home);
    let mut held = Vec::new();
    home.held(&mut held);
    assert_eq!(held, vec![0, 1]);
    // ...the loss of the node does not.
    let e = h.fault(&mut home, &NodeFault::DiskLoss, true);
    assert_eq!(e.discarded(), vec![(0, LossCause::NodeLost), (1, LossCause::NodeLost)]);
    home.crash();
    h.restart(&mut home);
    let mut held = Vec::new();
    home.held(&mut held);
    assert!(held.is_empty());
}

#[test]
fn a_channel_forwards_to_the_leader_and_relays_its_confirm() {
    let (mut h, mut n2) = node(QueueType::Quorum, 1);
    let e = h.message(&mut n2, P, publish(rec(4), true, 2));
    let fwd = Msg::QueueCluster(Qc::Forward { rec: rec(4), producer: P, attempt: 2, want_ack: true });
    assert_eq!(e.sent_to(N[0]), vec![fwd], "to the leader it knows (rabbit-1 leads term 1)");
    let e = h.message(&mut n2, N[0], Qc::Confirm { id: 4, producer: P, attempt: 2 });
    assert_eq!(e.sent_to(P), vec![Msg::Queue(crate::protocol::publish_ack(4, true, 2, 0))]);
    // A consumer's subscription follows the leader when it changes.
    h.message(&mut n2, C, QueueMsg::Subscribe { prefetch: 5, session: 1, auto_ack: false });
    let a = Append { term: 3, prev_index: 0, prev_term: 0, entries: vec![], commit: 0 };
    let e = h.message(&mut n2, N[2], Qc::Append(Box::new(a)));
    let consume = Msg::QueueCluster(Qc::Consume { consumer: C, prefetch: 5, session: 1, auto_ack: false });
    assert!(e.sent_to(N[2]).contains(&consume));
}

#[test]
fn a_follower_that_lost_its_disk_is_sent_the_log_from_its_start_and_no_longer_counts() {
    let (mut h, mut leader) = node(QueueType::Quorum, 0);
    h.message(&mut leader, P, publish(rec(0), true, 1));
    h.message(&mut leader, N[1], reply(1, 1));
    h.message(&mut leader, N[2], reply(1, 1));
    // N[2] comes back empty from a disk loss and refuses the next append.
    let refused = Qc::AppendReply { term: 1, ok: false, matched: 0, voter: false };
    h.message(&mut leader, N[2], refused);
    let e = h.message(&mut leader, P, publish(rec(1), true, 1));
    let to_lost = appends(&e, N[2]);
    assert_eq!(to_lost.len(), 1);
    assert_eq!(to_lost[0].prev_index, 0, "from the start of the log, not from what it held before");
    assert_eq!(to_lost[0].entries, vec![enqueue(1, 0), enqueue(1, 1)]);
    // Its old copy no longer makes a majority: only N[1]'s does.
    let e = h.message(&mut leader, N[2], reply(1, 0));
    assert!(confirms(&e).is_empty(), "an empty replica confirms nothing");
    let e = h.message(&mut leader, N[1], reply(1, 2));
    assert_eq!(confirms(&e), vec![1]);
}
