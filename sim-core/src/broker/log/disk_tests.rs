//! Tests of flushing and power loss, driven through the log broker's
//! handlers with the harness (followers' fetches fired by hand).

use super::Disk;
use crate::broker::log::{LogBroker, LogTimer};
use crate::broker::LogSpec;
use crate::engine::{Emitted, Harness};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, Record};
use crate::net::NodeFault;
use crate::protocol::{Acks, LogMsg};
use crate::time::{Time, NS_PER_MS};

const MS: u64 = NS_PER_MS;
const P: u32 = 1;

/// One topic of one partition on three replicas, min ISR 2, and `more`.
fn broker(more: &str) -> (Harness, LogBroker) {
    let table = format!(
        "replicas = 3\nmin_insync_replicas = 2\nreplica_lag_max_ms = 30000\nelection_delay_ms = 100\n\
         topics = {{ t = {{ partitions = 1 }} }}\n{more}"
    );
    let spec: LogSpec = toml::from_str(&table).expect("a log broker");
    let mut h = Harness::new(10);
    let mut b = LogBroker::new(&spec, Vec::new());
    h.start(&mut b);
    (h, b)
}

/// Fires the follower fetches `e` started, and those they start, in time
/// order; returns the ids acked (accepted) meanwhile.
fn replicate(h: &mut Harness, b: &mut LogBroker, e: &Emitted) -> Vec<MsgId> {
    let fetches = |e: &Emitted, now: Time| -> Vec<(Time, LogTimer)> {
        let timers = e.timers::<LogTimer>().into_iter();
        timers.filter(|(_, t)| matches!(t, LogTimer::Fetch { .. })).map(|(d, t)| (now + d, t)).collect()
    };
    let mut pending = fetches(e, h.now);
    let mut acked = acks(e);
    while !pending.is_empty() {
        pending.sort_by_key(|&(at, _)| at);
        let (at, t) = pending.remove(0);
        h.now = at;
        let e = h.timer(b, t);
        acked.extend(acks(&e));
        pending.extend(fetches(&e, at));
    }
    acked
}

fn acks(e: &Emitted) -> Vec<MsgId> {
    let acks = e.sent().into_iter().filter_map(|(_, m)| match m {
        Msg::Log(LogMsg::ProduceAck { ids, accepted: true, .. }) => Some(ids.to_vec()),
        _ => None,
    });
    acks.flatten().collect()
}

/// Produces record `id` (acks=all) at `at` ms and replicates it everywhere.
fn write(h: &mut Harness, b: &mut LogBroker, id: MsgId, at: u64) -> Vec<MsgId> {
    h.now = at * MS;
    let recs = Box::new([Record::new(id, id)]);
    let e = h.message(
        b,
        P,
        LogMsg::Produce { recs, acks: Acks::All, attempt: 1, epoch: 0, seq: 0, topic: 0, partition: 0 },
    );
    replicate(h, b, &e)
}

fn all_replicas() -> NodeFault {
    NodeFault::PowerLoss { replicas: Vec::new() }
}

#[test]
fn a_record_is_on_disk_after_the_flush_that_follows_its_append() {
    let s = 1_000 * MS;
    // Every 100 ms.
    assert_eq!(Disk::new(Some(100.0)).flushed_before(250 * MS), 200 * MS);
    assert_eq!(Disk::new(Some(100.0)).flushed_before(200 * MS), 200 * MS);
    // At every append.
    assert_eq!(Disk::new(Some(0.0)).flushed_before(250 * MS), 250 * MS + 1);
    // Left to Linux: written back at a 5 s tick once 30 s old.
    let os = Disk::new(None);
    assert_eq!(os.flushed_before(37 * s), 5 * s);
    assert_eq!(os.flushed_before(34 * s), 0, "nothing is 30 s old at the 30 s tick");
    assert_eq!(os.flushed_before(0), 0);
}

#[test]
fn a_power_loss_drops_the_acked_records_no_replica_flushed() {
    let (mut h, mut b) = broker("flush_interval_ms = 100");
    assert_eq!(write(&mut h, &mut b, 0, 50), vec![0], "acked by all three");
    assert_eq!(write(&mut h, &mut b, 1, 150), vec![1]);
    h.now = 180 * MS;
    // Record 0 was flushed at 100 ms; record 1 would have been at 200 ms.
    let e = h.fault(&mut b, &all_replicas(), true);
    assert_eq!(e.discarded(), vec![(1, LossCause::Unflushed)]);
    assert_eq!((e.metric("unflushed_records_dropped"), e.metric("acked_records_truncated")), (1.0, 1.0));
    assert_eq!(e.metric("replica_crashes"), 3.0);
    assert_eq!(b.parts[0].end(), 1);
    // Power back: a leader is elected from the flushed logs, in a new epoch.
    h.now = 400 * MS;
    let e = h.fault(&mut b, &all_replicas(), false);
    assert_eq!(e.metric("leader_elections"), 1.0);
    assert!(e.discarded().is_empty(), "every replica kept record 0");
    assert!(b.leader_alive(0));
    assert_eq!(b.parts[0].epochs.epoch_of(1), 1, "offset 1 is reused by the new epoch");
    assert_eq!(write(&mut h, &mut b, 2, 450), vec![2], "the partition takes writes again");
    assert_eq!(b.parts[0].end(), 2);
}

#[test]
fn a_process_crash_of_every_replica_keeps_the_page_cache() {
    let (mut h, mut b) = broker("flush_interval_ms = 100");
    write(&mut h, &mut b, 0, 150);
    h.now = 180 * MS;
    for r in 0..3 {
        let e = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: r }, true);
        assert!(e.discarded().is_empty());
    }
    h.now = 400 * MS;
    for r in 0..3 {
        let e = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: r }, false);
        assert!(e.discarded().is_empty());
    }
    assert_eq!(b.parts[0].end(), 1, "unflushed, and kept");
}

#[test]
fn without_a_flush_interval_only_what_the_os_wrote_back_survives() {
    let (mut h, mut b) = broker("");
    write(&mut h, &mut b, 0, 1_000);
    write(&mut h, &mut b, 1, 8_000);
    // At 36 s the last writeback (35 s) wrote pages dirty since 5 s or before.
    h.now = 36_000 * MS;
    let e = h.fault(&mut b, &all_replicas(), true);
    assert_eq!(e.discarded(), vec![(1, LossCause::Unflushed)]);
}

#[test]
fn a_follower_that_loses_power_loses_nothing_the_leader_keeps() {
    let (mut h, mut b) = broker("flush_interval_ms = 100");
    write(&mut h, &mut b, 0, 150);
    h.now = 180 * MS;
    let leader = b.parts[0].leader.expect("a leader");
    let follower = (leader + 1) % 3;
    let only = NodeFault::PowerLoss { replicas: vec![follower as u32] };
    let e = h.fault(&mut b, &only, true);
    assert!(e.discarded().is_empty());
    assert_eq!(b.parts[0].leo[follower], 0, "its unflushed record is gone from its log");
    h.now = 400 * MS;
    let e = h.fault(&mut b, &only, false);
    assert_eq!(e.metric("leader_elections"), 0.0, "the leader never lost power");
    replicate(&mut h, &mut b, &e);
    assert_eq!(b.parts[0].leo[follower], 1, "it fetched the record again");
}
