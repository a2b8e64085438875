//! Tests of the log broker's backlog: the queue depth it reports and its
//! per-group lag gauges, driven through its handlers with the harness.

use crate::broker::log::{Assignor, GroupInfo, LogBroker, LogTimer};
use crate::broker::LogSpec;
use crate::engine::{Component, Emitted, Harness};
use crate::message::{MsgId, NodeId, Record};
use crate::metrics::Gauges;
use crate::net::NodeFault;
use crate::protocol::{Acks, LogMsg, Transaction};
use crate::time::{Time, NS_PER_MS};
use proptest::prelude::*;

const MS: u64 = NS_PER_MS;
const P: NodeId = 1;
/// A member of group `a` (number 0).
const A: NodeId = 2;
/// A member of group `b` (number 1).
const B: NodeId = 3;

fn broker(table: &str, groups: &[(&str, usize)]) -> (Harness, LogBroker) {
    // Groups form at once (no initial rebalance delay).
    let spec: LogSpec = toml::from_str(&format!("{table}\ninitial_rebalance_delay_ms = 0")).expect("a log broker");
    let groups = groups
        .iter()
        .enumerate()
        .map(|(d, &(name, topic))| GroupInfo::new(name, topic, d as u16, Assignor::Range))
        .collect();
    let mut h = Harness::new(10);
    let mut b = LogBroker::new(&spec, groups);
    h.start(&mut b);
    (h, b)
}

/// Member `m` joins group `g` alone and gets every partition (generation 1).
/// `m` joins empty group `g` (session 1) 100 ms from now, is told of
/// generation 1 at once and fetches its assignment.
fn join(h: &mut Harness, b: &mut LogBroker, g: u16, m: NodeId) {
    h.now += 100 * MS;
    h.message(b, m, LogMsg::JoinGroup { group: g, session: 1, owned: Vec::new(), static_member: false });
    h.message(b, m, LogMsg::SyncGroup { group: g, session: 1, generation: 1 });
}

fn produce(h: &mut Harness, b: &mut LogBroker, id: MsgId, partition: u32) -> Emitted {
    let rec = Record::new(id, id);
    h.message(
        b,
        P,
        LogMsg::Produce {
            recs: Box::new([rec]),
            acks: Acks::Leader,
            attempt: 1,
            epoch: 0,
            seq: 0,
            topic: 0,
            partition,
        },
    )
}

fn commit(h: &mut Harness, b: &mut LogBroker, g: u16, m: NodeId, partition: u32, offset: u64) -> Emitted {
    h.message(b, m, LogMsg::Commit { group: g, generation: 1, partition, offset, epoch: None })
}

fn gauges(b: &LogBroker, now: Time) -> Vec<(String, f64)> {
    let mut out = Gauges::default();
    b.gauges(now, &mut out);
    out.into_vec()
}

fn gauge(b: &LogBroker, now: Time, name: &str) -> f64 {
    let all = gauges(b, now);
    all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no gauge {name} in {all:?}")).1
}

/// The records below the HW that each group has not committed, counted
/// from the log itself: what the depth must be.
fn recount(b: &LogBroker) -> u64 {
    let mut n = 0;
    for (gi, g) in b.coord.infos().enumerate() {
        let t = &b.topics[g.topic];
        for part in 0..t.partitions {
            let p = &b.parts[t.first + part];
            let from = b.coord.committed(gi, part).unwrap_or(0).max(p.start);
            n += (from..p.hw).filter(|&o| p.entry(o).is_some()).count() as u64;
        }
    }
    n
}

#[test]
fn the_depth_counts_each_record_once_per_group_that_has_not_committed_it() {
    let (mut h, mut b) = broker("topics = { t = { partitions = 2 } }", &[("a", 0), ("b", 0)]);
    join(&mut h, &mut b, 0, A);
    join(&mut h, &mut b, 1, B);
    for (i, partition) in [0, 0, 1, 0, 1].into_iter().enumerate() {
        let e = produce(&mut h, &mut b, i as MsgId, partition);
        assert_eq!(e.queue_depth(), Some(2 * (i as u64 + 1)), "two groups wait for each of {} records", i + 1);
    }
    // Group a commits partition 0 up to offset 2 (records 0 and 1), then all of it.
    assert_eq!(commit(&mut h, &mut b, 0, A, 0, 2).queue_depth(), Some(8));
    assert_eq!(commit(&mut h, &mut b, 0, A, 0, 3).queue_depth(), Some(7));
    assert_eq!(commit(&mut h, &mut b, 1, B, 1, 2).queue_depth(), Some(5));
    // A commit that moves nothing reports nothing new.
    assert_eq!(commit(&mut h, &mut b, 1, B, 1, 2).queue_depth(), None);
    // A fenced commit (b's member does not own group a's partitions) changes nothing.
    assert_eq!(commit(&mut h, &mut b, 0, B, 1, 2).queue_depth(), None);
    assert_eq!((gauge(&b, h.now, "lag_records.a"), gauge(&b, h.now, "lag_records.b")), (2.0, 3.0));
    assert_eq!(b.backlog_total, recount(&b));
}

#[test]
fn lag_gauges_give_each_groups_records_and_the_age_of_its_oldest_uncommitted_record() {
    let (mut h, mut b) = broker("topics = { t = { partitions = 2 } }", &[("a", 0), ("b", 0)]);
    join(&mut h, &mut b, 0, A); // at 100 ms
    join(&mut h, &mut b, 1, B); // at 200 ms
    let none: Vec<(String, f64)> =
        vec![("lag_records.a".into(), 0.0), ("lag_records.b".into(), 0.0), ("lag_seconds.a".into(), 0.0)];
    assert_eq!(gauges(&b, h.now)[..3], none[..], "nothing waits: every gauge reads 0");
    h.now = 1000 * MS;
    produce(&mut h, &mut b, 0, 0);
    produce(&mut h, &mut b, 1, 0);
    h.now = 1500 * MS;
    produce(&mut h, &mut b, 2, 1);
    let at = 4000 * MS;
    assert_eq!(gauge(&b, at, "lag_records.a"), 3.0);
    assert_eq!(gauge(&b, at, "lag_seconds.a"), 3.0, "record 0, appended at 1 s, is the oldest");
    // a commits record 0: record 1 (also 1 s) is the oldest; then partition
    // 0 entirely: record 2 (1.5 s) in partition 1.
    commit(&mut h, &mut b, 0, A, 0, 1);
    assert_eq!((gauge(&b, at, "lag_records.a"), gauge(&b, at, "lag_seconds.a")), (2.0, 3.0));
    commit(&mut h, &mut b, 0, A, 0, 2);
    assert_eq!((gauge(&b, at, "lag_records.a"), gauge(&b, at, "lag_seconds.a")), (1.0, 2.5));
    commit(&mut h, &mut b, 0, A, 1, 1);
    assert_eq!((gauge(&b, at, "lag_records.a"), gauge(&b, at, "lag_seconds.a")), (0.0, 0.0));
    // Group b committed nothing: it still waits for all three.
    assert_eq!((gauge(&b, at, "lag_records.b"), gauge(&b, at, "lag_seconds.b")), (3.0, 3.0));
}

#[test]
fn records_above_the_high_watermark_are_not_counted_until_it_passes_them() {
    let (mut h, mut b) = broker("replicas = 2\ntopics = { t = { partitions = 1 } }", &[("a", 0)]);
    let e = produce(&mut h, &mut b, 0, 0);
    assert_eq!(e.queue_depth(), None, "not replicated: no reader may have it yet");
    assert_eq!(gauge(&b, h.now, "lag_records.a"), 0.0);
    let (delay, fetch) = e.timers::<LogTimer>()[0];
    h.now += delay;
    assert_eq!(h.timer(&mut b, fetch).queue_depth(), Some(1), "the HW passed it");
}

#[test]
fn retention_takes_deleted_records_out_of_the_depth() {
    let (mut h, mut b) = broker("topics = { t = { partitions = 1, retention_messages = 2 } }", &[("a", 0)]);
    produce(&mut h, &mut b, 0, 0);
    produce(&mut h, &mut b, 1, 0);
    for id in 2..5 {
        assert_eq!(produce(&mut h, &mut b, id, 0).queue_depth(), None, "one in, one deleted: still 2");
        assert_eq!(b.backlog_total, 2);
    }
    assert_eq!(gauge(&b, h.now, "lag_records.a"), 2.0);
}

#[test]
fn an_unclean_election_that_cuts_the_log_back_takes_the_cut_records_out() {
    let table = "replicas = 2\nunclean_leader_election = true\nreplica_lag_max_ms = 500\ntopics = { t = {} }";
    let (mut h, mut b) = broker(table, &[("a", 0)]);
    // Follower 1 dies; record 0 waits on it until it leaves the ISR (500 ms, set above).
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    produce(&mut h, &mut b, 0, 0);
    h.now = 501 * MS;
    assert_eq!(h.timer(&mut b, LogTimer::IsrCheck(0)).queue_depth(), Some(1));
    // The leader dies, the follower (without record 0) comes back and leads.
    h.now = 600 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 0 }, true);
    h.now = 650 * MS;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
    h.now = 700 * MS;
    let e = h.timer(&mut b, LogTimer::Election(0));
    assert_eq!((e.metric("truncated_records"), e.queue_depth()), (1.0, Some(0)));
}

#[test]
fn a_transaction_moves_records_from_its_input_groups_backlog_to_its_output_readers() {
    let table = "topics = { in = { partitions = 1 }, out = { partitions = 1 } }";
    let (mut h, mut b) = broker(table, &[("stage", 0), ("sink", 1)]);
    join(&mut h, &mut b, 0, A);
    for id in 0..3 {
        produce(&mut h, &mut b, id, 0);
    }
    let outputs = vec![Record::new(10, 0), Record::new(11, 1)];
    let txn = Transaction {
        group: 0,
        generation: 1,
        partition: 0,
        start: 0,
        end: 2,
        out_topic: 1,
        outputs,
        seq: 1,
        epoch: None,
    };
    let e = h.message(&mut b, A, LogMsg::TxnCommit(Box::new(txn)));
    assert_eq!(e.queue_depth(), Some(1 + 2), "one input record left, two outputs for the sink");
    assert_eq!((gauge(&b, h.now, "lag_records.stage"), gauge(&b, h.now, "lag_records.sink")), (1.0, 2.0));
}

#[test]
fn the_backlog_survives_a_crash_of_the_broker() {
    let (mut h, mut b) = broker("topics = { t = {} }", &[("a", 0)]);
    produce(&mut h, &mut b, 0, 0);
    produce(&mut h, &mut b, 1, 0);
    let before = gauges(&b, h.now);
    b.crash();
    h.restart(&mut b);
    assert_eq!((b.backlog_total, gauges(&b, h.now)), (2, before), "logs and offsets are on disk");
}

/// One step of a random history: an append to a partition, or a commit by
/// a group of an offset (a fraction of the way to the HW).
#[derive(Debug, Clone)]
enum Step {
    Append(u32),
    Commit { group: u16, partition: u32, permille: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3u32).prop_map(Step::Append),
        1 => (0..2u16, 0..3u32, 0..=1000u64).prop_map(|(group, partition, permille)| Step::Commit { group, partition, permille }),
    ]
}

proptest! {
    // No regression files written into the source tree (as tests/common).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the order of appends and commits (backwards ones included),
    /// the depth reported is the records a recount finds waiting, and the
    /// lag gauges add up to it.
    #[test]
    fn the_running_depth_always_equals_a_recount(steps in prop::collection::vec(step(), 1..80)) {
        let table = "topics = { t = { partitions = 3, retention_messages = 8 } }";
        let (mut h, mut b) = broker(table, &[("a", 0), ("b", 0)]);
        join(&mut h, &mut b, 0, A);
        join(&mut h, &mut b, 1, B);
        let mut depth = 0;
        for (i, s) in steps.into_iter().enumerate() {
            h.now += MS;
            let e = match s {
                Step::Append(p) => produce(&mut h, &mut b, i as MsgId, p),
                Step::Commit { group, partition, permille } => {
                    let hw = b.parts[partition as usize].hw;
                    let member = [A, B][group as usize];
                    commit(&mut h, &mut b, group, member, partition, hw * permille / 1000)
                }
            };
            depth = e.queue_depth().unwrap_or(depth);
            prop_assert_eq!(depth, recount(&b));
        }
        let lags = gauge(&b, h.now, "lag_records.a") + gauge(&b, h.now, "lag_records.b");
        prop_assert_eq!(lags, depth as f64);
    }
}

#[test]
fn the_kinds_lag_plots_draw_one_line_per_group_from_the_gauges_it_reports() {
    use crate::broker::LogBrokerKind;
    use crate::kind::Kind;
    let (h, b) = broker("topics = { t = {}, u = {} }", &[("a", 0), ("b", 1)]);
    let names: Vec<String> = gauges(&b, h.now).into_iter().map(|(n, _)| n).collect();
    let plots = LogBrokerKind::PLOTS;
    assert_eq!(plots.iter().map(|p| p.name).collect::<Vec<_>>(), ["lag-records", "lag-seconds"]);
    for p in plots {
        let series: Vec<&str> = names.iter().filter_map(|n| p.series_of(n)).collect();
        assert_eq!(series, ["a", "b"], "{}: one line per group", p.name);
    }
}
