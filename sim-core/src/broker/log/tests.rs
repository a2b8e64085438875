//! Unit tests of the log broker, driven through its handlers with the test
//! harness. Replication runs on the broker's own timers (`LogTimer::Fetch`),
//! which a test fires by hand, so each test decides exactly how far the
//! followers have got when something happens.

use super::{Assignor, GroupInfo, LogBroker, LogTimer};
use crate::broker::LogSpec;
use crate::engine::{Component, Emitted, Harness};
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{Acks, FetchError, LogMsg, Transaction};
use crate::time::{Time, NS_PER_MS};

const MS: u64 = NS_PER_MS;
const BROKER: NodeId = 10;
const P: NodeId = 1;
const M1: NodeId = 2;
const M2: NodeId = 3;
/// The `replica_lag_max_ms` of these tests (500 ms; Kafka's default is
/// 30 s): a follower behind for longer leaves the ISR.
const LAG: Time = 500 * MS;
/// Set on every broker of these tests, so that the times they fire timers
/// at stay short: the lag above, and an `election_delay_ms` of 100 ms (the
/// default, 9 s, is checked by `the_isr_and_election_timings_default_to_kafkas`).
const TIMINGS: &str = "replica_lag_max_ms = 500\nelection_delay_ms = 100\n";
/// The default `initial_rebalance_delay_ms`.
const INITIAL: Time = 3000 * MS;
/// The default `session_timeout_ms`.
const SESSION: Time = 45_000 * MS;

/// A log broker read from a scenario table (`kind = "log"` plus `table`),
/// serving `groups`.
fn broker(table: &str, groups: Vec<GroupInfo>) -> (Harness, LogBroker) {
    let table = format!("{TIMINGS}{table}");
    let spec: LogSpec = toml::from_str(&table).unwrap_or_else(|e| panic!("not a log broker: {e}\n{table}"));
    let mut h = Harness::new(BROKER);
    let mut b = LogBroker::new(&spec, groups);
    assert!(h.start(&mut b).is_empty());
    (h, b)
}

/// One topic `t` of one partition, replicated `replicas` times.
fn replicated(replicas: u32, more: &str) -> (Harness, LogBroker) {
    broker(&format!("replicas = {replicas}\ntopics = {{ t = {{ partitions = 1 }} }}\n{more}"), Vec::new())
}

fn group(topic: usize, domain: DomainId) -> GroupInfo {
    GroupInfo::new(&format!("g{topic}"), topic, domain, Assignor::Range)
}

fn rec(id: MsgId) -> Record {
    Record::new(id, id)
}

/// A plain (not idempotent) produce of `id` to topic 0, partition 0.
fn produce(id: MsgId, acks: Acks) -> LogMsg {
    LogMsg::Produce { recs: Box::new([rec(id)]), acks, attempt: 1, epoch: 0, seq: 0, topic: 0, partition: 0 }
}

fn produce_acks(e: &Emitted) -> Vec<(MsgId, bool)> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Log(LogMsg::ProduceAck { ids, accepted, .. }) => Some((ids[0], accepted)),
            _ => None,
        })
        .collect()
}

/// The sum of what was added to the named metric.
fn metric(e: &Emitted, name: &str) -> f64 {
    e.metric(name)
}

fn fetch(partition: u32, replica: u16) -> LogTimer {
    LogTimer::Fetch { partition, replica }
}

/// The follower fetches started: (delay, timer).
fn fetches_started(e: &Emitted) -> Vec<(Time, LogTimer)> {
    e.timers::<LogTimer>().into_iter().filter(|(_, t)| matches!(t, LogTimer::Fetch { .. })).collect()
}

/// Sets the clock to `at` and fires `timer`.
fn fire(h: &mut Harness, b: &mut LogBroker, at: Time, timer: LogTimer) -> Emitted {
    h.now = at;
    h.timer(b, timer)
}

/// Fires the follower fetches `e` started, and those they start in turn,
/// in time order, until replication is idle; returns everything emitted.
fn replicate(h: &mut Harness, b: &mut LogBroker, e: &Emitted) -> Emitted {
    let fetches = |e: &Emitted, now: Time| -> Vec<(Time, LogTimer)> {
        fetches_started(e).into_iter().map(|(d, t)| (now + d, t)).collect()
    };
    let mut pending = fetches(e, h.now);
    let mut all = Vec::new();
    while !pending.is_empty() {
        pending.sort_by_key(|&(at, _)| at);
        let (at, t) = pending.remove(0);
        let e = fire(h, b, at, t);
        pending.extend(fetches(&e, at));
        all.extend(e.0);
        assert!(all.len() < 10_000, "replication never settles");
    }
    Emitted(all)
}

/// (member, generation, rebalancing, partitions) of every group state sent.
type State = (NodeId, u32, bool, Vec<(u32, u64)>);

fn states(e: &Emitted) -> Vec<State> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::GroupState { generation, rebalancing, partitions }) => {
                Some((to, generation, rebalancing, partitions.into_iter().map(|(p, o, _)| (p, o)).collect()))
            }
            _ => None,
        })
        .collect()
}

fn heartbeat(h: &mut Harness, b: &mut LogBroker, member: NodeId, session: u32, generation: u32) -> Emitted {
    h.message(b, member, LogMsg::Heartbeat { group: 0, session, generation })
}

fn join_as(
    h: &mut Harness,
    b: &mut LogBroker,
    member: NodeId,
    session: u32,
    owned: &[u32],
    static_member: bool,
) -> Emitted {
    h.message(b, member, LogMsg::JoinGroup { group: 0, session, owned: owned.to_vec(), static_member })
}

/// The members told that a generation is formed: (member, generation).
fn join_acks(e: &Emitted) -> Vec<(NodeId, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::JoinAck { generation }) => Some((to, generation)),
            _ => None,
        })
        .collect()
}

fn sync(h: &mut Harness, b: &mut LogBroker, member: NodeId, session: u32, generation: u32) -> Vec<State> {
    states(&h.message(b, member, LogMsg::SyncGroup { group: 0, session, generation }))
}

/// `members` join empty group 0 now (session 1); the initial delay passes;
/// each asks for its assignment. Returns the assignments.
fn join(h: &mut Harness, b: &mut LogBroker, members: &[NodeId]) -> Vec<State> {
    for &m in members {
        join_as(h, b, m, 1, &[], false);
    }
    let at = h.now + INITIAL;
    let acks = join_acks(&fire(h, b, at, LogTimer::Rebalance(0)));
    assert_eq!(acks.len(), members.len(), "every member hears of the new generation");
    acks.into_iter().flat_map(|(m, generation)| sync(h, b, m, 1, generation)).collect()
}

/// A group 0 member's fetch of `partition` from `offset`, in `generation`.
fn fetch_from(generation: u32, partition: u32, offset: u64) -> LogMsg {
    LogMsg::Fetch { group: 0, generation, partition, offset, max: 10, max_bytes: u32::MAX, epoch: None }
}

fn commit(generation: u32, partition: u32, offset: u64) -> LogMsg {
    LogMsg::Commit { group: 0, generation, partition, offset, epoch: None }
}

fn commit_acks(e: &Emitted) -> Vec<(NodeId, u32, u64, bool)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::CommitAck { partition, offset, ok }) => Some((to, partition, offset, ok)),
            _ => None,
        })
        .collect()
}

fn held_in(b: &LogBroker, domain: DomainId) -> Vec<MsgId> {
    let mut out = Vec::new();
    b.held_in(&mut out);
    out.into_iter().filter(|&(_, d)| d == domain).map(|(id, _)| id).collect()
}

#[test]
fn acks_0_gets_no_answer_and_acks_1_is_answered_as_the_leader_appends() {
    let (mut h, mut b) = replicated(3, "");
    let e = h.message(&mut b, P, produce(0, Acks::None));
    assert!(e.sent().is_empty(), "{e:?}");
    // Partition 0 is led by replica 0: both followers start fetching.
    assert_eq!(fetches_started(&e), vec![(MS, fetch(0, 1)), (MS, fetch(0, 2))]);
    let e = h.message(&mut b, P, produce(1, Acks::Leader));
    assert_eq!(produce_acks(&e), vec![(1, true)], "answered before any follower has it");
    let to_nowhere = LogMsg::Produce {
        recs: Box::new([rec(2)]),
        acks: Acks::Leader,
        attempt: 1,
        epoch: 0,
        seq: 0,
        topic: 0,
        partition: 5,
    };
    let e = h.message(&mut b, P, to_nowhere);
    assert_eq!((e.errors(), e.sent().len()), (vec!["unknown-partition"], 0));
}

#[test]
fn the_isr_and_election_timings_default_to_kafkas() {
    // Kafka's replica.lag.time.max.ms (30 s) and a KRaft controller's
    // broker.session.timeout.ms (9 s), without the TIMINGS of the other tests.
    let spec: LogSpec = toml::from_str("replicas = 2\ntopics = { t = { partitions = 1 } }").expect("a log broker");
    let mut h = Harness::new(BROKER);
    let mut b = LogBroker::new(&spec, Vec::new());
    h.start(&mut b);
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    let e = h.message(&mut b, P, produce(0, Acks::All));
    assert!(e.timers::<LogTimer>().contains(&(30_000 * MS + 1, LogTimer::IsrCheck(0))), "{e:?}");
    assert!(produce_acks(&fire(&mut h, &mut b, 30_000 * MS, LogTimer::IsrCheck(0))).is_empty(), "still in the ISR");
    assert_eq!(produce_acks(&fire(&mut h, &mut b, 30_000 * MS + 1, LogTimer::IsrCheck(0))), vec![(0, true)]);
    let e = h.fault(&mut b, &NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 0 }, true);
    assert_eq!(e.timers::<LogTimer>(), vec![(9000 * MS, LogTimer::Election(0))]);
}

#[test]
fn acks_all_is_answered_once_every_in_sync_replica_has_the_record() {
    let (mut h, mut b) = replicated(3, "");
    let e = h.message(&mut b, P, produce(0, Acks::All));
    assert!(produce_acks(&e).is_empty());
    assert!(produce_acks(&fire(&mut h, &mut b, MS, fetch(0, 1))).is_empty(), "replica 2 is in sync but behind");
    assert_eq!(produce_acks(&fire(&mut h, &mut b, MS, fetch(0, 2))), vec![(0, true)]);
}

/// Replicas 3, min ISR 2: replica 2 crashes, and a record (id 0,
/// acks=all) waits on it until the ISR check drops it.
fn follower_dropped() -> (Harness, LogBroker, Emitted) {
    let (mut h, mut b) = replicated(3, "min_insync_replicas = 2");
    let e = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 2 }, true);
    assert_eq!(metric(&e, "replica_crashes"), 1.0);
    let e = h.message(&mut b, P, produce(0, Acks::All));
    assert_eq!(e.timers::<LogTimer>(), vec![(MS, fetch(0, 1)), (LAG + 1, LogTimer::IsrCheck(0))]);
    assert!(produce_acks(&fire(&mut h, &mut b, MS, fetch(0, 1))).is_empty(), "replica 2 holds the HW back");
    let e = fire(&mut h, &mut b, LAG + 1, LogTimer::IsrCheck(0));
    (h, b, e)
}

#[test]
fn a_follower_behind_for_longer_than_replica_lag_max_ms_leaves_the_isr() {
    let (_, _, e) = follower_dropped();
    assert_eq!(metric(&e, "isr_shrinks"), 1.0);
    assert_eq!(produce_acks(&e), vec![(0, true)], "the ISR {{0, 1}} has it, and 2 >= min ISR");
}

#[test]
fn a_follower_that_catches_up_rejoins_the_isr_and_counts_for_acks_all_again() {
    let (mut h, mut b, _) = follower_dropped();
    let e = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 2 }, false);
    let e = replicate(&mut h, &mut b, &e);
    assert_eq!(metric(&e, "isr_expands"), 1.0);
    h.message(&mut b, P, produce(1, Acks::All));
    let at = h.now + MS;
    assert!(produce_acks(&fire(&mut h, &mut b, at, fetch(0, 1))).is_empty(), "replica 2 is in sync again");
    assert_eq!(produce_acks(&fire(&mut h, &mut b, at, fetch(0, 2))), vec![(1, true)]);
}

#[test]
fn acks_all_is_refused_while_the_isr_is_smaller_than_min_insync_replicas() {
    // Before 3.7 (strict min ISR, see elr_tests.rs), the record caught by the shrink is refused after the fact.
    let (mut h, mut b) = replicated(2, "min_insync_replicas = 2\nversion = \"3.6\"");
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    h.message(&mut b, P, produce(0, Acks::All));
    // Appended while the ISR was full; answered when the ISR shrinks.
    let e = fire(&mut h, &mut b, LAG + 1, LogTimer::IsrCheck(0));
    assert_eq!(produce_acks(&e), vec![(0, false)]);
    assert_eq!(e.errors(), vec!["not-enough-replicas-after-append"]);
    let e = h.message(&mut b, P, produce(1, Acks::All));
    assert_eq!((produce_acks(&e), e.errors()), (vec![(1, false)], vec!["not-enough-replicas"]));
    let e = h.message(&mut b, P, produce(2, Acks::Leader));
    assert_eq!(produce_acks(&e), vec![(2, true)], "acks=1 does not need the ISR");
}

#[test]
fn a_fetch_is_served_below_the_high_watermark_only() {
    let (mut h, mut b) = broker("replicas = 2\ntopics = { t = { partitions = 1 } }", vec![group(0, 0)]);
    assert_eq!(join(&mut h, &mut b, &[M1]), vec![(M1, 1, false, vec![(0, 0)])]);
    let started = h.message(&mut b, P, produce(0, Acks::Leader));
    h.message(&mut b, P, produce(1, Acks::Leader));
    assert!(h.message(&mut b, M1, fetch_from(1, 0, 0)).sent().is_empty(), "HW 0: the fetch waits");
    // The follower's first fetch brings back record 0 only (the leader's
    // end when it asked): the HW moves to 1 and the waiting fetch gets 0.
    let Some(&(d, t)) = fetches_started(&started).first() else { panic!("no fetch started") };
    let at = h.now + d;
    let e = fire(&mut h, &mut b, at, t);
    let served = LogMsg::Records { partition: 0, offset: 0, recs: vec![rec(0)], error: FetchError::None, epoch: 0 };
    assert_eq!(e.sent(), vec![(M1, Msg::Log(served))]);
    replicate(&mut h, &mut b, &e);
    let e = h.message(&mut b, M1, fetch_from(1, 0, 1));
    let served = LogMsg::Records { partition: 0, offset: 1, recs: vec![rec(1)], error: FetchError::None, epoch: 0 };
    assert_eq!(e.sent(), vec![(M1, Msg::Log(served))]);
}

#[test]
fn a_commit_or_a_fetch_by_a_member_that_does_not_own_the_partition_is_fenced() {
    let (mut h, mut b) = broker("topics = { t = { partitions = 2 } }", vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1, M2]); // generation 1: M1 owns 0, M2 owns 1
    let e = h.message(&mut b, M2, commit(1, 0, 3));
    assert_eq!(commit_acks(&e), vec![(M2, 0, 3, false)]);
    assert_eq!(metric(&e, "commits_fenced"), 1.0);
    assert_eq!(commit_acks(&h.message(&mut b, M1, commit(0, 0, 3))), vec![(M1, 0, 3, false)], "stale generation");
    assert_eq!(commit_acks(&h.message(&mut b, M1, commit(1, 0, 3))), vec![(M1, 0, 3, true)]);
    let e = h.message(&mut b, M2, fetch_from(1, 0, 0));
    let refused = LogMsg::Records { partition: 0, offset: 0, recs: vec![], error: FetchError::NotOwner, epoch: 0 };
    assert_eq!(e.sent(), vec![(M2, Msg::Log(refused))]);
}

#[path = "membership_tests.rs"]
mod membership;

#[path = "elr_tests.rs"]
mod elr;

#[test]
fn when_the_leader_crashes_the_controller_elects_an_in_sync_follower() {
    let (mut h, mut b) = replicated(3, "");
    let e = h.message(&mut b, P, produce(0, Acks::All));
    assert_eq!(produce_acks(&replicate(&mut h, &mut b, &e)), vec![(0, true)]);
    let crash = NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 7 };
    let e = h.fault(&mut b, &crash, true);
    assert!(e.timers::<LogTimer>().contains(&(100 * MS, LogTimer::Election(0))), "after election_delay_ms");
    assert!(h.message(&mut b, P, produce(1, Acks::Leader)).sent().is_empty(), "a dead leader answers nothing");
    let at = h.now + 100 * MS;
    let e = fire(&mut h, &mut b, at, LogTimer::Election(0));
    assert_eq!((metric(&e, "leader_elections"), metric(&e, "truncated_records")), (1.0, 0.0));
    // Replica 1 leads, and the dead replica 0 left the ISR: only replica 2
    // fetches, and it alone holds an acks=all answer back.
    let e = h.message(&mut b, P, produce(2, Acks::All));
    assert_eq!(fetches_started(&e), vec![(MS, fetch(0, 2))]);
    assert_eq!(produce_acks(&replicate(&mut h, &mut b, &e)), vec![(2, true)]);
    // The fault ends: replica 0 is back, as a follower that must catch up.
    assert_eq!(fetches_started(&h.fault(&mut b, &crash, false)), vec![(MS, fetch(0, 0))]);
}

#[test]
fn a_clean_election_truncates_what_the_new_leader_lacks_including_acks_1_acknowledged_records() {
    for (acks, told) in [(Acks::Leader, 1.0), (Acks::All, 0.0)] {
        let (mut h, mut b) = replicated(2, "");
        h.message(&mut b, P, produce(0, acks)); // the follower's fetch never completes
        h.fault(&mut b, &NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 0 }, true);
        let e = fire(&mut h, &mut b, 100 * MS, LogTimer::Election(0));
        assert_eq!((metric(&e, "leader_elections"), metric(&e, "unclean_elections")), (1.0, 0.0));
        assert_eq!(metric(&e, "truncated_records"), 1.0, "{acks:?}");
        assert_eq!(metric(&e, "acked_records_truncated"), told, "{acks:?}: was its producer told?");
    }
}

/// Replicas 2: follower 1 crashes, and record 0 (acks=all) is acked by the
/// leader alone once the follower leaves the ISR. Then the leader crashes
/// (600 ms) and the follower, behind, comes back (650 ms).
fn only_the_dead_leader_has_an_acked_record(unclean: bool) -> (Harness, LogBroker) {
    let (mut h, mut b) = replicated(2, &format!("unclean_leader_election = {unclean}"));
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    h.message(&mut b, P, produce(0, Acks::All));
    assert_eq!(produce_acks(&fire(&mut h, &mut b, LAG + 1, LogTimer::IsrCheck(0))), vec![(0, true)]);
    h.now = 600 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 0 }, true);
    h.now = 650 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
    (h, b)
}

#[test]
fn an_unclean_election_makes_a_lagging_replica_leader_and_truncates_acknowledged_records() {
    let (mut h, mut b) = only_the_dead_leader_has_an_acked_record(true);
    let e = fire(&mut h, &mut b, 700 * MS, LogTimer::Election(0));
    assert_eq!((metric(&e, "leader_elections"), metric(&e, "unclean_elections")), (1.0, 1.0));
    assert_eq!(metric(&e, "acked_records_truncated"), 1.0);
    assert_eq!(produce_acks(&h.message(&mut b, P, produce(1, Acks::Leader))), vec![(1, true)]);
}

#[test]
fn without_unclean_election_the_partition_stays_offline_until_an_in_sync_replica_returns() {
    let (mut h, mut b) = only_the_dead_leader_has_an_acked_record(false);
    let e = fire(&mut h, &mut b, 700 * MS, LogTimer::Election(0));
    assert_eq!((metric(&e, "offline_partitions"), metric(&e, "leader_elections")), (1.0, 0.0));
    let e = h.message(&mut b, P, produce(1, Acks::Leader));
    assert_eq!((produce_acks(&e), e.errors()), (vec![(1, false)], vec!["leader-not-available"]));
    // Replica 0, the last in-sync replica, returns and leads again with its records.
    let e = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 0 }, false);
    assert_eq!((metric(&e, "leader_elections"), metric(&e, "truncated_records")), (1.0, 0.0));
    assert_eq!(produce_acks(&h.message(&mut b, P, produce(2, Acks::Leader))), vec![(2, true)]);
}

/// Member M1's commit of input offsets `start..end` of partition 0, with
/// outputs 10 and 11 to topic 1 (its transaction number is `start + 1`).
fn transaction(generation: u32, start: u64, end: u64) -> LogMsg {
    let outputs = vec![rec(10), rec(11)];
    let seq = start as u32 + 1;
    LogMsg::TxnCommit(Box::new(Transaction {
        group: 0,
        generation,
        partition: 0,
        start,
        end,
        out_topic: 1,
        outputs,
        seq,
        epoch: None,
    }))
}

/// The answer to M1's transaction: committed, or aborted (redo from `committed`).
fn txn_ack(committed: u64, ok: bool) -> Vec<(NodeId, Msg)> {
    vec![(M1, Msg::Log(LogMsg::TxnAck { partition: 0, committed, ok, aborted: !ok }))]
}

#[test]
fn a_transaction_appends_its_output_and_moves_the_offset_exactly_once() {
    // Group 0 reads `in`; group 1 (domain 1) reads `out`: what it has yet
    // to read shows what `out` holds.
    let table = "topics = { in = { partitions = 1 }, out = { partitions = 1 } }";
    let (mut h, mut b) = broker(table, vec![group(0, 0), group(1, 1)]);
    join(&mut h, &mut b, &[M1]);
    let e = h.message(&mut b, M1, transaction(1, 0, 2));
    assert_eq!((e.sent(), metric(&e, "transactions_committed")), (txn_ack(2, true), 1.0));
    assert_eq!(held_in(&b, 1), vec![10, 11]);
    // Its answer was lost and it comes again: answered, not done twice.
    let e = h.message(&mut b, M1, transaction(1, 0, 2));
    assert_eq!((e.sent(), metric(&e, "transactions_committed")), (txn_ack(2, true), 0.0));
    assert_eq!(held_in(&b, 1), vec![10, 11]);
    // Overlapping what is committed: refused, redo from the commit.
    assert_eq!(h.message(&mut b, M1, transaction(1, 1, 3)).sent(), txn_ack(2, false));
    // A zombie (a stale generation) is fenced.
    let e = h.message(&mut b, M1, transaction(0, 2, 4));
    assert_eq!((e.sent(), metric(&e, "transactions_fenced")), (txn_ack(2, false), 1.0));
    assert_eq!(held_in(&b, 1), vec![10, 11]);
}

/// An idempotent produce (acks=1) of `id` with (`epoch`, `seq`).
fn numbered(id: MsgId, epoch: u32, seq: u64, attempt: u32) -> LogMsg {
    LogMsg::Produce { recs: Box::new([rec(id)]), acks: Acks::Leader, attempt, epoch, seq, topic: 0, partition: 0 }
}

#[test]
fn idempotent_produces_are_appended_once_in_sequence_and_an_old_epoch_is_fenced() {
    let (mut h, mut b) = broker("topics = { t = { partitions = 1 } }", vec![group(0, 0)]);
    assert_eq!(produce_acks(&h.message(&mut b, P, numbered(0, 1, 0, 1))), vec![(0, true)]);
    assert_eq!(produce_acks(&h.message(&mut b, P, numbered(0, 1, 0, 2))), vec![(0, true)], "a retry: acked again");
    assert!(h.message(&mut b, P, numbered(2, 1, 2, 1)).sent().is_empty(), "ahead of a gap: held");
    assert_eq!(produce_acks(&h.message(&mut b, P, numbered(1, 1, 1, 1))), vec![(1, true), (2, true)]);
    assert_eq!(held_in(&b, 0), vec![0, 1, 2], "each once, in sequence order");
    let e = h.message(&mut b, P, numbered(3, 2, 0, 1));
    assert_eq!(produce_acks(&e), vec![(3, true)], "a new session starts at 0");
    let e = h.message(&mut b, P, numbered(4, 1, 3, 1));
    assert_eq!((produce_acks(&e), e.errors()), (vec![(4, false)], vec!["fenced"]));
    let told = e.sent().into_iter().any(|(_, m)| {
        matches!(m, Msg::Log(LogMsg::ProduceAck { error: crate::protocol::ProduceError::InvalidProducerEpoch, .. }))
    });
    assert!(told, "the producer is told why");
    assert_eq!(held_in(&b, 0), vec![0, 1, 2, 3]);
}

#[test]
/// Kafka's ISR expiry runs on a schedule, whatever the producers wait for.
fn a_dead_follower_leaves_the_isr_after_replica_lag_max_ms_even_when_no_ack_waits_on_it() {
    let (mut h, mut b) = broker("replicas = 2\ntopics = { t = { partitions = 1 } }", vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    let crash = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    let append = h.message(&mut b, P, produce(0, Acks::Leader)); // the last record for a while
    assert!(h.message(&mut b, M1, fetch_from(1, 0, 0)).sent().is_empty(), "HW 0: the fetch waits");
    // As Kafka's ISR expiry runs whatever the producers wait for, the dead
    // follower should leave the ISR once replica_lag_max_ms has passed,
    // and the HW then pass record 0: follow the ISR checks the broker sets.
    let checks = |e: &Emitted, now: Time| -> Vec<(Time, LogTimer)> {
        let timers = e.timers::<LogTimer>().into_iter();
        timers.filter(|(_, t)| matches!(t, LogTimer::IsrCheck(_))).map(|(d, t)| (now + d, t)).collect()
    };
    let mut pending = checks(&crash, h.now);
    pending.extend(checks(&append, h.now));
    let mut served = Vec::new();
    pending.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
    while let Some((at, t)) = pending.pop().filter(|&(at, _)| at <= 10 * LAG) {
        let e = fire(&mut h, &mut b, at, t);
        served.extend(e.sent().into_iter().filter(|(to, _)| *to == M1));
        pending.extend(checks(&e, at));
        pending.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
    }
    assert!(matches!(&served[..], [(M1, Msg::Log(LogMsg::Records { .. }))]), "record 0 never readable: {served:?}");
}

// ---- causes (the ledger's explanation of a loss or a duplicate) ----

#[test]
fn an_election_names_what_it_truncates_and_an_offline_partition_what_it_drops() {
    use crate::ledger::LossCause;
    let (mut h, mut b) = replicated(2, "");
    h.message(&mut b, P, produce(0, Acks::Leader)); // the follower's fetch never completes
    h.fault(&mut b, &NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 0 }, true);
    let e = fire(&mut h, &mut b, 100 * MS, LogTimer::Election(0));
    assert_eq!(e.discarded(), vec![(0, LossCause::LeaderFailover)], "a clean election");
    let (mut h, mut b) = only_the_dead_leader_has_an_acked_record(true);
    let e = fire(&mut h, &mut b, 700 * MS, LogTimer::Election(0));
    assert_eq!(e.discarded(), vec![(0, LossCause::UncleanElection)]);
    let (mut h, mut b) = only_the_dead_leader_has_an_acked_record(false);
    fire(&mut h, &mut b, 700 * MS, LogTimer::Election(0));
    assert_eq!(h.message(&mut b, P, produce(1, Acks::None)).discarded(), vec![(1, LossCause::NoLeader)]);
}

#[test]
fn records_fetched_again_by_a_group_are_redeliveries() {
    use crate::ledger::DupCause;
    let (mut h, mut b) = broker("topics = { t = { partitions = 1 } }", vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    h.message(&mut b, P, produce(0, Acks::Leader));
    h.message(&mut b, P, produce(1, Acks::Leader));
    let e = h.message(&mut b, M1, fetch_from(1, 0, 0));
    assert_eq!(e.sent().len(), 1, "records 0 and 1 are served");
    assert!(e.resent().is_empty(), "a first fetch sends no copy");
    // The member crashed before committing: it reads from offset 0 again.
    let e = h.message(&mut b, M1, fetch_from(1, 0, 0));
    assert_eq!(e.resent(), vec![(0, DupCause::Redelivered), (1, DupCause::Redelivered)]);
    h.message(&mut b, P, produce(2, Acks::Leader));
    assert!(h.message(&mut b, M1, fetch_from(1, 0, 2)).resent().is_empty(), "record 2 is new to the group");
}

/// Issue 10, wrong today 5: transactions ignored `min_insync_replicas`
/// (99 committed with only the leader in sync and a minimum of 2). A
/// transaction's writes are acks=all in Kafka, so its commit is refused
/// (NOT_ENOUGH_REPLICAS) while its output partition has fewer live in-sync
/// replicas than the minimum, and goes through once a replica is back.
#[test]
fn regression_a_transaction_is_refused_while_its_output_isr_is_below_min_insync_replicas() {
    let table = "replicas = 3\nmin_insync_replicas = 2\ntopics = { in = { partitions = 1 }, out = { partitions = 1 } }";
    let (mut h, mut b) = broker(table, vec![group(0, 0), group(1, 1)]);
    join(&mut h, &mut b, &[M1]);
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 2 }, true);
    let oks = |e: &Emitted| -> Vec<bool> {
        e.sent()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::Log(LogMsg::TxnAck { ok, .. }) => Some(ok),
                _ => None,
            })
            .collect()
    };
    let e = h.message(&mut b, M1, transaction(1, 0, 2));
    assert_eq!(oks(&e), vec![false], "only the leader is in sync: {e:?}");
    assert_eq!((metric(&e, "transactions_committed"), e.errors()), (0.0, vec!["not-enough-replicas"]));
    assert!(held_in(&b, 1).is_empty(), "no output written");
    // Replica 1 returns and catches up: the same transaction commits.
    let back = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
    replicate(&mut h, &mut b, &back);
    let e = h.message(&mut b, M1, transaction(1, 0, 2));
    assert_eq!((oks(&e), metric(&e, "transactions_committed")), (vec![true], 1.0));
    assert_eq!(held_in(&b, 1), vec![10, 11]);
}

// ---- truncation detection (KIP-320) ----

fn records_sent(e: &Emitted) -> Vec<(u64, Vec<MsgId>, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Log(LogMsg::Records { offset, recs, epoch, .. }) => {
                Some((offset, recs.iter().map(|r| r.id).collect(), epoch))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_member_past_an_unclean_truncation_is_sent_back_to_the_divergence_point() {
    let table = "replicas = 2\nunclean_leader_election = true\ntopics = { t = { partitions = 1 } }";
    let (mut h, mut b) = broker(table, vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    // Follower 1 dies; the leader alone takes records 0..3 (epoch 0), and
    // the member reads and commits them with their epoch.
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    for id in 0..3 {
        h.message(&mut b, P, produce(id, Acks::Leader));
    }
    let at = h.now + LAG + 1;
    fire(&mut h, &mut b, at, LogTimer::IsrCheck(0));
    assert_eq!(records_sent(&h.message(&mut b, M1, fetch_from(1, 0, 0))), vec![(0, vec![0, 1, 2], 0)]);
    let commit = LogMsg::Commit { group: 0, generation: 1, partition: 0, offset: 3, epoch: Some(0) };
    assert_eq!(commit_acks(&h.message(&mut b, M1, commit)), vec![(M1, 0, 3, true)]);
    assert_eq!(b.coord.committed_epoch(0, 0), Some(0), "the epoch is committed with the offset");
    // The leader dies, the empty follower returns and is elected uncleanly
    // (epoch 1): offsets 0 and 1 are written again, by new records.
    h.now += 100 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 0 }, true);
    h.now += 50 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
    let at = h.now + 50 * MS;
    fire(&mut h, &mut b, at, LogTimer::Election(0));
    h.message(&mut b, P, produce(10, Acks::Leader));
    h.message(&mut b, P, produce(11, Acks::Leader));
    // The member resumes from its commit (3, epoch 0): epoch 0 ends at 0
    // in the new leader's history, so it goes back to 0, not to the HW (2).
    let fetch = |offset, epoch| LogMsg::Fetch {
        group: 0,
        generation: 1,
        partition: 0,
        offset,
        max: 10,
        max_bytes: u32::MAX,
        epoch,
    };
    let e = h.message(&mut b, M1, fetch(3, Some(0)));
    assert_eq!((records_sent(&e), metric(&e, "truncations_detected")), (vec![(0, vec![], 0)], 1.0));
    assert_eq!(records_sent(&h.message(&mut b, M1, fetch(0, Some(0)))), vec![(0, vec![10, 11], 1)]);
    // Without an epoch (an old client) it cannot tell: out of range, reset to the HW.
    let e = h.message(&mut b, M1, fetch(3, None));
    assert_eq!((metric(&e, "offset_resets"), metric(&e, "truncations_detected")), (1.0, 0.0));
}

#[test]
fn a_fetch_answer_holds_the_records_of_one_leader_epoch() {
    let (mut h, mut b) = broker("replicas = 2\ntopics = { t = { partitions = 1 } }", vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    let e = h.message(&mut b, P, produce(0, Acks::All));
    replicate(&mut h, &mut b, &e);
    // A clean failover: replica 1 leads in epoch 1 and appends record 1.
    h.fault(&mut b, &NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 0 }, true);
    let at = h.now + 100 * MS;
    fire(&mut h, &mut b, at, LogTimer::Election(0));
    h.message(&mut b, P, produce(1, Acks::Leader));
    assert_eq!(records_sent(&h.message(&mut b, M1, fetch_from(1, 0, 0))), vec![(0, vec![0], 0)]);
    assert_eq!(records_sent(&h.message(&mut b, M1, fetch_from(1, 0, 1))), vec![(1, vec![1], 1)]);
}

#[test]
fn a_dead_letter_topic_counts_what_is_appended_and_holds_it_for_every_domain() {
    let (mut h, b) = broker("topics = { main = { partitions = 1 }, dlt = { partitions = 1 } }\n", Vec::new());
    let mut b = b.with_dead_letters([0].into_iter().collect()); // `dlt` comes first in name order
    let to = |topic: u16, id: MsgId| LogMsg::Produce {
        recs: Box::new([rec(id)]),
        acks: Acks::Leader,
        attempt: 1,
        epoch: 0,
        seq: 0,
        topic,
        partition: 0,
    };
    assert!(h.message(&mut b, P, to(1, 7)).dead_lettered().is_empty(), "an ordinary topic");
    assert_eq!(h.message(&mut b, P, to(0, 8)).dead_lettered(), [8]);
    let mut held = Vec::new();
    b.held(&mut held);
    assert_eq!(held, [8], "held while the log keeps it, whoever reads it");
}
