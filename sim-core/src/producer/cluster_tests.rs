//! Unit tests of a producer writing to a cluster, driven through its
//! handlers: metadata, leaders, refusals and timeouts are played by hand.

use super::super::{LogTarget, Producer, ProducerSpec, ProducerTimer};
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::{ClusterMsg, LogMsg, ProduceError};
use crate::time::NS_PER_MS;
use ProducerTimer::{AckTimeout, Arrival, Retry, Routes};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 0;
const CONTROLLER: NodeId = 10;
const BROKERS: [NodeId; 3] = [11, 12, 13];

/// A producer at 1,000 messages per second to topic 0 (2 partitions, dealt
/// in turn) of a 3-broker cluster, with `extra` lines of its table; started.
fn producer(extra: &str) -> (Harness, Producer, Emitted) {
    let table = format!(
        "target = \"kafka\"\ntopic = \"t\"\narrival = {{ process = \"constant\", rate_per_s = 1000 }}\npartitioner = \"round-robin\"\nlinger_ms = 0\n{extra}"
    );
    let spec: ProducerSpec = toml::from_str(&table).expect("a valid producer table");
    let mut h = Harness::new(ME);
    let log = LogTarget { topic: 0, partitions: 2 };
    let mut p = Producer::new(&spec, CONTROLLER, Some(log)).in_cluster(BROKERS.to_vec());
    let started = h.start(&mut p);
    (h, p, started)
}

fn leaders(l: &[(Option<NodeId>, u32)]) -> ClusterMsg {
    ClusterMsg::Leaders { topic: 0, leaders: l.into() }
}

/// (node, first id, attempt, partition) of every produce.
fn produces(e: &Emitted) -> Vec<(NodeId, MsgId, u32, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::Produce { recs, attempt, partition, .. }) => Some((to, recs[0].id, attempt, partition)),
            _ => None,
        })
        .collect()
}

fn metadata_asks(e: &Emitted) -> Vec<NodeId> {
    e.sent()
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::Cluster(ClusterMsg::MetadataRequest { topic: 0 })))
        .map(|(to, _)| to)
        .collect()
}

/// A refusal of attempt `attempt` of batch `id`: the broker is not the leader.
fn refusal(id: MsgId, attempt: u32) -> LogMsg {
    refused(id, attempt, ProduceError::NotLeader)
}

fn refused(id: MsgId, attempt: u32, error: ProduceError) -> LogMsg {
    LogMsg::ProduceAck { ids: vec![id].into(), accepted: false, attempt, error }
}

#[test]
fn it_asks_the_first_broker_for_metadata_at_start_and_again_if_unanswered() {
    let (mut h, mut p, started) = producer("");
    assert_eq!(metadata_asks(&started), vec![11]);
    assert!(started.sent().iter().all(|(to, _)| *to != CONTROLLER), "nothing goes to the controller");
    assert!(started.timers::<ProducerTimer>().contains(&(30_000 * MS, Routes)), "awaited for the request timeout");
    h.now = 30_000 * MS;
    assert_eq!(metadata_asks(&h.timer(&mut p, Routes)), vec![12], "unanswered: the next broker");
}

#[test]
fn a_batch_waits_for_its_leader_then_goes_to_the_leader_s_node() {
    let (mut h, mut p, _) = producer("");
    let e = h.timer(&mut p, Arrival);
    assert!(produces(&e).is_empty(), "no leader known: the batch waits");
    let mut held = Vec::new();
    p.held(&mut held);
    assert_eq!(held, vec![0]);
    h.now = MS;
    h.timer(&mut p, Arrival); // record 1, partition 1
    h.now = 2 * MS;
    let e = h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    let mut got = produces(&e);
    got.sort();
    assert_eq!(got, vec![(12, 0, 1, 0), (13, 1, 1, 1)], "each partition's batch to its leader");
    h.now = 3 * MS;
    assert_eq!(produces(&h.timer(&mut p, Arrival)), vec![(12, 2, 1, 0)], "known now: at once");
}

#[test]
fn a_refusal_with_a_hint_retries_to_the_new_leader_after_the_backoff() {
    let (mut h, mut p, _) = producer("");
    h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    assert_eq!(produces(&h.timer(&mut p, Arrival)), vec![(12, 0, 1, 0)]);
    h.now = 5 * MS;
    let e = h.message(&mut p, 12, refusal(0, 1));
    assert!(e.timers::<ProducerTimer>().contains(&(100 * MS, Retry)), "failed at once, retried after the backoff");
    assert!(e.errors().is_empty());
    h.message(&mut p, 12, leaders(&[(Some(13), 1), (Some(13), 0)]));
    h.now = 105 * MS;
    assert_eq!(produces(&h.timer(&mut p, Retry)), vec![(13, 0, 2, 0)], "the retry goes to the new leader");
}

#[test]
fn an_older_hint_does_not_move_a_partition_and_an_ack_timeout_asks_the_next_broker() {
    let (mut h, mut p, _) = producer("ack_timeout_ms = 1000");
    h.message(&mut p, 11, leaders(&[(Some(12), 3), (Some(13), 3)]));
    h.message(&mut p, 13, leaders(&[(Some(11), 2), (Some(11), 2)]));
    assert_eq!(produces(&h.timer(&mut p, Arrival)), vec![(12, 0, 1, 0)], "epoch 2 < 3: still broker 12");
    h.now = 1001 * MS;
    let e = h.timer(&mut p, AckTimeout);
    assert_eq!(e.errors(), vec!["ack-timeout"]);
    assert_eq!(metadata_asks(&e), vec![12], "the cursor moved on from broker 11");
}

#[test]
fn a_retry_with_no_leader_known_waits_for_one() {
    let (mut h, mut p, _) = producer("");
    h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    h.timer(&mut p, Arrival);
    h.now = 5 * MS;
    h.message(&mut p, 12, refusal(0, 1));
    h.message(&mut p, 12, leaders(&[(None, 1), (Some(13), 0)]));
    h.now = 105 * MS;
    let e = h.timer(&mut p, Retry);
    assert!(produces(&e).is_empty(), "offline: parked");
    assert_eq!(metadata_asks(&e), vec![11], "and metadata is asked for");
    h.now = 200 * MS;
    let e = h.message(&mut p, 11, leaders(&[(Some(11), 2), (Some(13), 0)]));
    assert_eq!(produces(&e), vec![(11, 0, 2, 0)]);
}

#[test]
fn in_flight_requests_are_counted_per_broker() {
    let (mut h, mut p, _) = producer("max_in_flight = 1");
    h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    assert_eq!(produces(&h.timer(&mut p, Arrival)).len(), 1);
    h.now = MS;
    assert_eq!(produces(&h.timer(&mut p, Arrival)), vec![(13, 1, 1, 1)], "broker 13 has a free slot");
    h.now = 2 * MS;
    assert!(produces(&h.timer(&mut p, Arrival)).is_empty(), "broker 12's one slot is taken");
}

#[test]
fn with_every_broker_s_slots_taken_nothing_goes_until_an_ack_frees_one() {
    let spec: ProducerSpec = toml::from_str(
        "target = \"kafka\"\ntopic = \"t\"\narrival = { process = \"constant\", rate_per_s = 1000 }\npartitioner = \"round-robin\"\nlinger_ms = 0\nmax_in_flight = 1",
    )
    .expect("a valid producer table");
    let mut h = Harness::new(ME);
    let log = LogTarget { topic: 0, partitions: 3 };
    let mut p = Producer::new(&spec, CONTROLLER, Some(log)).in_cluster(BROKERS.to_vec());
    h.start(&mut p);
    h.message(&mut p, 11, leaders(&[(Some(11), 0), (Some(12), 0), (Some(13), 0)]));
    let mut sent = Vec::new();
    for i in 0..6 {
        h.now = i * MS;
        sent.extend(produces(&h.timer(&mut p, Arrival)));
    }
    assert_eq!(sent, vec![(11, 0, 1, 0), (12, 1, 1, 1), (13, 2, 1, 2)], "one request per broker, then none");
    h.now = 10 * MS;
    let e = h.message(&mut p, 12, accepted(1, 1));
    assert_eq!(produces(&e), vec![(12, 4, 1, 1)], "12's slot is free: partition 1's waiting batch goes");
    let mut held = Vec::new();
    p.held(&mut held);
    held.sort_unstable();
    assert_eq!(held, vec![0, 2, 3, 4, 5], "the others wait in flight or in the accumulator");
}

/// (node, first id, attempt, epoch, seq) of every produce to partition 0.
fn numbered(e: &Emitted) -> Vec<(NodeId, MsgId, u32, u32, u64)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::Produce { recs, attempt, epoch, seq, partition: 0, .. }) => {
                Some((to, recs[0].id, attempt, epoch, seq))
            }
            _ => None,
        })
        .collect()
}

fn accepted(id: MsgId, attempt: u32) -> LogMsg {
    LogMsg::ProduceAck { ids: vec![id].into(), accepted: true, attempt, error: ProduceError::None }
}

/// An idempotent producer (up to 5 requests in flight per broker) whose
/// partition 0 leads on broker 12, with the batches of records 0, 2, 4
/// (one record each: seq 0, 1, 2 of epoch 1) sent there.
fn three_in_flight() -> (Harness, Producer) {
    let (mut h, mut p, _) = producer("idempotent = true\nmax_in_flight = 5");
    h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    let mut sent = Vec::new();
    for i in 0..5 {
        h.now = i * MS;
        sent.extend(numbered(&h.timer(&mut p, Arrival)));
    }
    assert_eq!(sent, vec![(12, 0, 1, 1, 0), (12, 2, 1, 1, 1), (12, 4, 1, 1, 2)]);
    (h, p)
}

#[test]
fn an_out_of_order_refusal_of_the_next_batch_starts_the_partition_s_numbers_again() {
    let (mut h, mut p) = three_in_flight();
    h.now = 10 * MS;
    h.message(&mut p, 12, accepted(0, 1));
    // Batch 2 is the next one, and the leader says a gap comes before it
    // (it lost what it had acknowledged): a real gap.
    let e = h.message(&mut p, 12, refused(2, 1, ProduceError::OutOfOrderSequence));
    assert_eq!(e.metric("epoch_bumps"), 1.0);
    assert!(metadata_asks(&e).is_empty(), "the leader is right: no metadata refresh");
    assert!(e.errors().is_empty(), "nothing is given up");
    h.now = 110 * MS;
    assert_eq!(numbered(&h.timer(&mut p, Retry)), vec![(12, 2, 2, 2, 0)], "epoch 2, from sequence 0");
    // Batch 4's attempt in flight carried the old numbers: its refusal
    // retries it with its new ones, without another bump.
    let e = h.message(&mut p, 12, refused(4, 1, ProduceError::OutOfOrderSequence));
    assert_eq!(e.metric("epoch_bumps"), 0.0);
    h.now = 210 * MS;
    assert_eq!(numbered(&h.timer(&mut p, Retry)), vec![(12, 4, 2, 2, 1)]);
    h.now = 211 * MS;
    let next = numbered(&h.timer(&mut p, Arrival)).into_iter().chain(numbered(&h.timer(&mut p, Arrival)));
    assert_eq!(next.collect::<Vec<_>>(), vec![(12, 6, 1, 2, 2)], "later batches follow the renumbered ones");
}

#[test]
fn an_out_of_order_refusal_behind_an_unanswered_batch_is_retried_as_it_is() {
    let (mut h, mut p) = three_in_flight();
    h.now = 10 * MS;
    // Batch 0 is unanswered: it may yet fill the gap before batch 2.
    let e = h.message(&mut p, 12, refused(2, 1, ProduceError::OutOfOrderSequence));
    assert_eq!(e.metric("epoch_bumps"), 0.0);
    h.now = 110 * MS;
    assert_eq!(numbered(&h.timer(&mut p, Retry)), vec![(12, 2, 2, 1, 1)], "same epoch and sequence");
}

#[test]
fn only_a_refusal_that_says_the_leader_moved_refreshes_metadata() {
    let (mut h, mut p, _) = producer("");
    h.message(&mut p, 11, leaders(&[(Some(12), 0), (Some(13), 0)]));
    h.timer(&mut p, Arrival);
    h.now = 5 * MS;
    let e = h.message(&mut p, 12, refused(0, 1, ProduceError::NotEnoughReplicas));
    assert!(metadata_asks(&e).is_empty(), "not enough replicas: the leader is right");
    assert!(e.timers::<ProducerTimer>().contains(&(100 * MS, Retry)), "retried after the backoff");
    h.now = 105 * MS;
    assert_eq!(produces(&h.timer(&mut p, Retry)), vec![(12, 0, 2, 0)]);
    h.now = 200 * MS;
    let e = h.message(&mut p, 12, refusal(0, 2));
    assert_eq!(metadata_asks(&e).len(), 1, "not the leader: metadata is asked for");
}

#[test]
fn a_partition_s_later_batches_wait_behind_its_batch_awaiting_a_retry() {
    let (mut h, mut p) = three_in_flight();
    h.now = 10 * MS;
    h.message(&mut p, 12, refused(0, 1, ProduceError::NotEnoughReplicas));
    // Record 5 (partition 1) leaves; record 6 (partition 0) waits behind
    // batch 0, which backs off until 110 ms: sent past it, it would be
    // out of order.
    h.now = 11 * MS;
    let e = h.timer(&mut p, Arrival);
    assert_eq!(produces(&e), vec![(13, 5, 1, 1)], "the other partition is not held");
    h.now = 12 * MS;
    assert!(numbered(&h.timer(&mut p, Arrival)).is_empty(), "record 6 waits");
    h.now = 110 * MS;
    assert_eq!(numbered(&h.timer(&mut p, Retry)), vec![(12, 0, 2, 1, 0)], "retried with its numbers");
    h.now = 112 * MS;
    let e = h.message(&mut p, 12, accepted(0, 2));
    assert_eq!(numbered(&e), vec![(12, 6, 1, 1, 3)], "then the next batch follows, numbered after the others");
}
