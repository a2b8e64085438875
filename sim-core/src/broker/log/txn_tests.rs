//! Unit tests of the log broker's transactions, driven through its
//! handlers with the test harness: one replica (the high watermark
//! follows every append), topics `in` (read by the stage, group 0) and
//! `out` (read by a read_committed group 1 and a read_uncommitted group 2).

use super::GroupTxn;
use crate::broker::log::{Assignor, GroupInfo, LogBroker, LogTimer};
use crate::broker::LogSpec;
use crate::engine::{Emitted, Harness};
use crate::ledger::DupCause;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{Acks, FetchError, LogMsg, Transaction};
use crate::time::{Time, NS_PER_MS};

const MS: u64 = NS_PER_MS;
const BROKER: NodeId = 10;
const STAGE: NodeId = 1;
const COMMITTED: NodeId = 2;
const UNCOMMITTED: NodeId = 3;
const OTHER: NodeId = 4;
const PRODUCER: NodeId = 5;
/// The stage's transaction timeout in these tests.
const TIMEOUT: Time = 1_000 * MS;

fn broker() -> (Harness, LogBroker) {
    let table = "topics = { in = { partitions = 1 }, out = { partitions = 1 } }\nsession_timeout_ms = 1000";
    let spec: LogSpec = toml::from_str(table).expect("a log broker");
    let info = |name: &str, topic, domain| GroupInfo::new(name, topic, domain, Assignor::Range);
    let groups = vec![info("stage", 0, 0), info("committed", 1, 1), info("uncommitted", 1, 2)];
    let txn = vec![
        GroupTxn { read_committed: false, timeout_ns: TIMEOUT },
        GroupTxn { read_committed: true, ..GroupTxn::default() },
        GroupTxn { read_committed: false, ..GroupTxn::default() },
    ];
    let mut h = Harness::new(BROKER);
    let mut b = LogBroker::new(&spec, groups).with_transactions(txn);
    h.start(&mut b);
    for (group, member) in [(0, STAGE), (1, COMMITTED), (2, UNCOMMITTED)] {
        join(&mut h, &mut b, group, member);
    }
    (h, b)
}

/// `member` joins `group` (a new session), the rebalance ends and the
/// member takes its assignment.
fn join(h: &mut Harness, b: &mut LogBroker, group: u16, member: NodeId) {
    let join = LogMsg::JoinGroup { group, session: 1, owned: Vec::new(), static_member: false };
    let e = h.message(b, member, join);
    let timers = e.timers::<LogTimer>();
    let &(delay, t) = timers.iter().find(|(_, t)| matches!(t, LogTimer::Rebalance(_))).expect("a rebalance");
    h.now += delay;
    let e = h.timer(b, t);
    let generation = e
        .sent()
        .into_iter()
        .find_map(|(_, m)| match m {
            Msg::Log(LogMsg::JoinAck { generation }) => Some(generation),
            _ => None,
        })
        .expect("the generation is formed");
    h.message(b, member, LogMsg::SyncGroup { group, session: 1, generation });
}

fn rec(id: MsgId) -> Record {
    Record::new(id, id)
}

/// A write of `id` in transaction `seq` of the stage group's owner of
/// input partition 0 in `generation`.
fn write(id: MsgId, generation: u32, seq: u32) -> LogMsg {
    LogMsg::TxnWrite { rec: rec(id), group: 0, generation, partition: 0, seq, out_topic: 1 }
}

/// The stage's commit of input offsets `0..end` with outputs `ids`.
fn commit(ids: &[MsgId], end: u64, generation: u32, seq: u32) -> LogMsg {
    let outputs = ids.iter().map(|&id| rec(id)).collect();
    LogMsg::TxnCommit(Box::new(Transaction {
        group: 0,
        generation,
        partition: 0,
        start: 0,
        end,
        out_topic: 1,
        outputs,
        seq,
        epoch: None,
    }))
}

/// A fetch of `out` by `group` (generation 1) from `offset`.
fn fetch(group: u16, offset: u64) -> LogMsg {
    LogMsg::Fetch { group, generation: 1, partition: 0, offset, max: 100, max_bytes: u32::MAX, epoch: None }
}

/// The records sent: (to, first offset, ids).
fn served(e: &Emitted) -> Vec<(NodeId, u64, Vec<MsgId>)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::Records { offset, recs, error: FetchError::None, .. }) => {
                Some((to, offset, recs.iter().map(|r| r.id).collect()))
            }
            _ => None,
        })
        .collect()
}

/// The transaction answers sent: (committed, ok, aborted).
fn answers(e: &Emitted) -> Vec<(u64, bool, bool)> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Log(LogMsg::TxnAck { committed, ok, aborted, .. }) => Some((committed, ok, aborted)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_open_transaction_holds_read_committed_readers_at_the_last_stable_offset() {
    let (mut h, mut b) = broker();
    h.message(&mut b, STAGE, write(10, 1, 1));
    // A plain record after it, outside any transaction.
    let plain = LogMsg::Produce {
        recs: Box::new([rec(20)]),
        acks: Acks::Leader,
        attempt: 1,
        epoch: 0,
        seq: 0,
        topic: 1,
        partition: 0,
    };
    h.message(&mut b, PRODUCER, plain);
    h.message(&mut b, STAGE, write(11, 1, 1));
    assert!(served(&h.message(&mut b, COMMITTED, fetch(1, 0))).is_empty(), "held at the LSO, 0: it waits");
    let e = h.message(&mut b, UNCOMMITTED, fetch(2, 0));
    assert_eq!(served(&e), vec![(UNCOMMITTED, 0, vec![10, 20, 11])], "read_uncommitted sees it at once");
    // The commit moves the LSO: the waiting fetch gets everything.
    let e = h.message(&mut b, STAGE, commit(&[10, 11], 2, 1, 1));
    assert_eq!(answers(&e), vec![(2, true, false)]);
    assert_eq!(served(&e), vec![(COMMITTED, 0, vec![10, 20, 11])]);
    assert_eq!(e.metric("transactions_committed"), 1.0);
}

#[test]
fn an_aborted_transaction_s_records_are_skipped_under_read_committed_and_read_under_read_uncommitted() {
    let (mut h, mut b) = broker();
    h.message(&mut b, STAGE, write(10, 1, 1));
    h.message(&mut b, STAGE, write(11, 1, 1));
    let e = h.message(&mut b, UNCOMMITTED, fetch(2, 0));
    assert_eq!(served(&e), vec![(UNCOMMITTED, 0, vec![10, 11])]);
    h.now += TIMEOUT;
    let e = h.timer(&mut b, LogTimer::TxnExpiry);
    assert_eq!((e.metric("transactions_aborted"), e.errors()), (1.0, vec!["transaction-aborted"]));
    // Nothing left to read: the reader is told to go on from the end.
    let e = h.message(&mut b, COMMITTED, fetch(1, 0));
    assert_eq!(served(&e), vec![(COMMITTED, 2, vec![])], "the aborted records are skipped");
    // The batch is redone as transaction 2; its records follow the aborted ones.
    h.message(&mut b, STAGE, write(10, 1, 2));
    let e = h.message(&mut b, STAGE, commit(&[10, 11], 2, 1, 2));
    assert_eq!(answers(&e), vec![(2, true, false)]);
    assert_eq!(served(&h.message(&mut b, COMMITTED, fetch(1, 2))), vec![(COMMITTED, 2, vec![10, 11])]);
    let e = h.message(&mut b, UNCOMMITTED, fetch(2, 2));
    assert_eq!(served(&e), vec![(UNCOMMITTED, 2, vec![10, 11])], "read_uncommitted reads them again");
}

#[test]
fn the_broker_aborts_a_transaction_open_longer_than_its_timeout() {
    let (mut h, mut b) = broker();
    let e = h.message(&mut b, STAGE, write(10, 1, 1));
    assert_eq!(e.timers::<LogTimer>(), vec![(TIMEOUT, LogTimer::TxnExpiry)], "armed as it begins");
    h.now += TIMEOUT - 1;
    assert_eq!(h.timer(&mut b, LogTimer::TxnExpiry).metric("transactions_aborted"), 0.0, "not yet");
    h.now += 1;
    let e = h.timer(&mut b, LogTimer::TxnExpiry);
    assert_eq!((e.metric("transactions_timed_out"), e.metric("transactions_aborted")), (1.0, 1.0));
    // Its writer finds it over: a late write is ignored, the commit refused
    // as aborted (redo from the committed offset, 0).
    assert!(h.message(&mut b, STAGE, write(11, 1, 1)).sent().is_empty());
    let e = h.message(&mut b, STAGE, commit(&[10, 11], 2, 1, 1));
    assert_eq!((answers(&e), e.metric("transactions_committed")), (vec![(0, false, true)], 0.0));
    assert_eq!(served(&h.message(&mut b, COMMITTED, fetch(1, 0))), vec![(COMMITTED, 1, vec![])]);
}

#[test]
fn a_transaction_that_commits_in_time_cancels_the_timeout() {
    let (mut h, mut b) = broker();
    h.message(&mut b, STAGE, write(10, 1, 1));
    let e = h.message(&mut b, STAGE, commit(&[10], 1, 1, 1));
    assert_eq!(e.cancelled::<LogTimer>(), vec![LogTimer::TxnExpiry], "nothing open: a drained run need not wait");
}

#[test]
fn a_new_owner_s_first_write_aborts_the_open_transaction_of_the_partition_and_fences_its_writer() {
    let (mut h, mut b) = broker();
    h.message(&mut b, STAGE, write(10, 1, 1));
    // STAGE falls silent; OTHER joins 2 s later, and the rebalance (STAGE
    // is past its session) gives it partition 0 in generation 2.
    h.now += 2_000 * MS;
    join(&mut h, &mut b, 0, OTHER);
    let e = h.message(&mut b, OTHER, write(10, 2, 1));
    assert_eq!(e.metric("transactions_aborted"), 1.0, "the old transaction is fenced");
    assert_eq!(e.resent(), vec![(10, DupCause::AbortedTransaction)], "an aborted copy of 10 is in the log");
    let e = h.message(&mut b, STAGE, commit(&[10], 1, 1, 1));
    assert_eq!((answers(&e), e.metric("transactions_fenced")), (vec![(0, false, true)], 1.0));
}
