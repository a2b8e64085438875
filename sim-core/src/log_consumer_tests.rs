//! Unit tests of the consumer-group member of a log broker, driven through
//! its handlers with the test harness: group states, records, commit and
//! transaction answers are played by hand.

use super::{CommitMode, LogConsumer, LogConsumerSetup, LogConsumerTimer};
use crate::broker::key_partition;
use crate::dist::Dist;
use crate::engine::{Component, Effect, Emitted, Harness, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{Acks, FetchError, LogMsg, Transaction};
use crate::time::NS_PER_MS;
use LogConsumerTimer::{CommitRetry, Process, Tick, TxnRetry};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const B: NodeId = 10;

/// A member of group 0 at broker B: 10 ms per record, heartbeat every
/// 300 ms, requests resent after 1 s.
fn setup(commit: CommitMode) -> LogConsumerSetup {
    LogConsumerSetup {
        broker: B,
        group: 0,
        processing: Dist::constant_ms(10.0),
        commit,
        max_poll_records: 500,
        heartbeat_ns: 300 * MS,
        request_timeout_ns: 1000 * MS,
        store: None,
        output: None,
        transactional: false,
    }
}

/// The member, started, assigned partition 0 from offset 5 in generation 1.
fn member(setup: LogConsumerSetup) -> (Harness, LogConsumer) {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup);
    h.start(&mut c);
    assert_eq!(fetches(&assign(&mut h, &mut c, 1, &[(0, 5)])), vec![(0, 5)]);
    (h, c)
}

fn assign(h: &mut Harness, c: &mut LogConsumer, generation: u32, partitions: &[(u32, u64)]) -> Emitted {
    h.message(c, B, LogMsg::GroupState { generation, rebalancing: false, partitions: partitions.to_vec() })
}

fn rec(id: MsgId) -> Record {
    Record { id, key: id }
}

fn records(partition: u32, offset: u64, ids: &[MsgId]) -> LogMsg {
    LogMsg::Records { partition, offset, recs: ids.iter().map(|&id| rec(id)).collect(), error: FetchError::None }
}

fn to_broker(e: &Emitted) -> Vec<LogMsg> {
    e.sent_to(B)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// (partition, offset) of every fetch sent.
fn fetches(e: &Emitted) -> Vec<(u32, u64)> {
    let f = |m| match m {
        LogMsg::Fetch { partition, offset, max: 500, group: 0, .. } => Some((partition, offset)),
        _ => None,
    };
    to_broker(e).into_iter().filter_map(f).collect()
}

/// (generation, partition, offset) of every commit sent.
fn commits(e: &Emitted) -> Vec<(u32, u32, u64)> {
    let f = |m| match m {
        LogMsg::Commit { generation, partition, offset, group: 0 } => Some((generation, partition, offset)),
        _ => None,
    };
    to_broker(e).into_iter().filter_map(f).collect()
}

fn started(e: &Emitted) -> Vec<MsgId> {
    e.started()
}

/// Fires the processing timer every 10 ms while a record is in progress.
fn process_all(h: &mut Harness, c: &mut LogConsumer) -> Emitted {
    let mut all = Vec::new();
    loop {
        h.now += 10 * MS;
        let e = h.timer(c, Process);
        let more = e.timers::<LogConsumerTimer>().contains(&(10 * MS, Process));
        all.extend(e.0);
        if !more {
            return Emitted(all);
        }
    }
}

#[test]
fn a_member_heartbeats_at_start_and_on_a_background_tick() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After));
    let e = h.start(&mut c);
    assert_eq!(to_broker(&e), vec![LogMsg::Heartbeat { group: 0, session: 1, generation: 0 }]);
    let tick = Effect::SetTimer { delay: 300 * MS, timer: Tick.to_word(), background: true };
    assert!(e.0.contains(&tick), "a heartbeat must not keep a drained run alive: {e:?}");
    assign(&mut h, &mut c, 1, &[]);
    h.now = 300 * MS;
    let e = h.timer(&mut c, Tick);
    assert_eq!(to_broker(&e), vec![LogMsg::Heartbeat { group: 0, session: 1, generation: 1 }]);
    assert!(e.0.contains(&tick));
}

#[test]
fn an_assignment_fetches_each_partition_from_its_committed_offset_once() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After));
    h.start(&mut c);
    assert_eq!(fetches(&assign(&mut h, &mut c, 1, &[(0, 5), (2, 0)])), vec![(0, 5), (2, 0)]);
    assert!(assign(&mut h, &mut c, 1, &[(0, 5), (2, 0)]).is_empty(), "already has it");
    assert!(assign(&mut h, &mut c, 0, &[(1, 0)]).is_empty(), "stale");
}

#[test]
fn records_are_processed_one_at_a_time_and_committed_after_the_batch() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    let e = h.message(&mut c, B, records(0, 5, &[50, 51]));
    assert_eq!((started(&e), e.timers::<LogConsumerTimer>()), (vec![50], vec![(10 * MS, Process)]));
    assert!(h.message(&mut c, B, records(0, 5, &[50, 51])).is_empty(), "a duplicate answer is ignored");
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!((e.applied(), started(&e), commits(&e)), (vec![50], vec![51], vec![]));
    let e = process_all(&mut h, &mut c);
    assert_eq!(e.applied(), vec![51]);
    assert_eq!(to_broker(&e)[..2], [commit(1, 0, 7), fetch(0, 7)], "commit the batch, then read on");
}

fn commit(generation: u32, partition: u32, offset: u64) -> LogMsg {
    LogMsg::Commit { group: 0, generation, partition, offset }
}

fn fetch(partition: u32, offset: u64) -> LogMsg {
    LogMsg::Fetch { group: 0, generation: 1, partition, offset, max: 500 }
}

#[test]
fn commit_before_processing_waits_for_the_commit_ack_and_resends_the_commit() {
    let (mut h, mut c) = member(setup(CommitMode::Before));
    let e = h.message(&mut c, B, records(0, 5, &[50, 51]));
    assert_eq!((commits(&e), started(&e)), (vec![(1, 0, 7)], vec![]));
    assert_eq!(e.timers::<LogConsumerTimer>(), vec![(1000 * MS, CommitRetry(0))]);
    h.now = 1000 * MS;
    let e = h.timer(&mut c, CommitRetry(0));
    assert_eq!((commits(&e), e.timers::<LogConsumerTimer>()), (vec![(1, 0, 7)], vec![(1000 * MS, CommitRetry(0))]));
    let e = h.message(&mut c, B, LogMsg::CommitAck { partition: 0, offset: 7, ok: true });
    assert_eq!(started(&e), vec![50]);
    let e = process_all(&mut h, &mut c);
    assert_eq!((e.applied(), commits(&e), fetches(&e)), (vec![50, 51], vec![], vec![(0, 7)]));
    assert!(h.timer(&mut c, CommitRetry(0)).is_empty(), "nothing left to commit");
}

#[test]
fn a_fenced_commit_before_processing_drops_the_batch() {
    let (mut h, mut c) = member(setup(CommitMode::Before));
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    let e = h.message(&mut c, B, LogMsg::CommitAck { partition: 0, offset: 7, ok: false });
    assert!(e.is_empty(), "not processed: the partition is someone else's");
    assert!(h.timer(&mut c, CommitRetry(0)).is_empty());
    let mut held = Vec::new();
    c.held_in(&mut held);
    assert!(held.is_empty(), "{held:?}");
}

#[test]
fn auto_commit_commits_what_was_processed_every_interval() {
    let (mut h, mut c) = member(setup(CommitMode::Auto(1000 * MS)));
    h.message(&mut c, B, records(0, 5, &[50]));
    let e = process_all(&mut h, &mut c);
    assert_eq!((e.applied(), commits(&e), fetches(&e)), (vec![50], vec![], vec![(0, 6)]), "not due yet");
    h.now = 600 * MS;
    assert!(commits(&h.timer(&mut c, Tick)).is_empty());
    h.now = 1000 * MS;
    assert_eq!(commits(&h.timer(&mut c, Tick)), vec![(1, 0, 6)]);
}

#[test]
fn a_rebalance_commits_what_was_processed_and_leaves_the_rest_to_the_next_owner() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    h.message(&mut c, B, records(0, 5, &[50, 51, 52]));
    h.now = 10 * MS;
    assert_eq!(started(&h.timer(&mut c, Process)), vec![51]);
    let e = h.message(&mut c, B, LogMsg::GroupState { generation: 2, rebalancing: true, partitions: vec![] });
    assert_eq!(commits(&e), vec![(1, 0, 6)], "record 50 is done; its generation may still commit");
    let e = process_all(&mut h, &mut c);
    assert_eq!((e.applied(), started(&e)), (vec![51], vec![]), "51 finishes; 52 is not started");
    assert!(e.sent().is_empty(), "no commit or fetch for a partition no longer held");
    assert!(h.message(&mut c, B, records(0, 8, &[53])).is_empty());
}

#[test]
fn a_not_owner_answer_stops_fetching_until_the_group_says_more() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    let refused = LogMsg::Records { partition: 0, offset: 5, recs: vec![], error: FetchError::NotOwner };
    assert!(h.message(&mut c, B, refused).is_empty());
    // A new assignment (of another partition) is what it reads next.
    assert_eq!(fetches(&assign(&mut h, &mut c, 2, &[(1, 0)])), vec![(1, 0)]);
}

#[test]
fn an_unanswered_fetch_is_sent_again_after_the_request_timeout() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    h.now = 300 * MS;
    assert!(fetches(&h.timer(&mut c, Tick)).is_empty());
    h.now = 1000 * MS;
    assert_eq!(fetches(&h.timer(&mut c, Tick)), vec![(0, 5)]);
    // An empty answer moves the position where the broker says.
    assert_eq!(fetches(&h.message(&mut c, B, records(0, 9, &[]))), vec![(0, 9)]);
}

fn transactional() -> LogConsumerSetup {
    LogConsumerSetup { output: Some((1, 1)), transactional: true, ..setup(CommitMode::After) }
}

fn txn(start: u64, end: u64, ids: &[MsgId]) -> LogMsg {
    let outputs = ids.iter().map(|&id| rec(id)).collect();
    LogMsg::TxnCommit(Box::new(Transaction {
        group: 0,
        generation: 1,
        partition: 0,
        start,
        end,
        out_topic: 1,
        outputs,
    }))
}

#[test]
fn a_transactional_stage_sends_output_and_offsets_as_one_transaction_until_answered() {
    let (mut h, mut c) = member(transactional());
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    let e = process_all(&mut h, &mut c);
    assert_eq!((e.applied(), to_broker(&e)), (vec![50, 51], vec![txn(5, 7, &[50, 51])]), "no separate writes");
    assert!(e.timers::<LogConsumerTimer>().contains(&(1000 * MS, TxnRetry(0))));
    assert_eq!(to_broker(&h.timer(&mut c, TxnRetry(0))), vec![txn(5, 7, &[50, 51])]);
    let e = h.message(&mut c, B, LogMsg::TxnAck { partition: 0, committed: 7, ok: true });
    assert_eq!(fetches(&e), vec![(0, 7)]);
    assert!(h.timer(&mut c, TxnRetry(0)).is_empty(), "answered: nothing to resend");
}

#[test]
fn a_refused_transaction_is_redone_from_the_committed_offset_and_an_aborted_one_retried() {
    let (mut h, mut c) = member(transactional());
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    process_all(&mut h, &mut c);
    // Aborted (an output leader was down): the commit stayed at the start.
    assert!(h.message(&mut c, B, LogMsg::TxnAck { partition: 0, committed: 5, ok: false }).is_empty());
    assert_eq!(to_broker(&h.timer(&mut c, TxnRetry(0))), vec![txn(5, 7, &[50, 51])]);
    // The offset moved elsewhere: start again from there.
    let e = h.message(&mut c, B, LogMsg::TxnAck { partition: 0, committed: 6, ok: false });
    assert_eq!(fetches(&e), vec![(0, 6)]);
}

#[test]
fn a_non_transactional_stage_writes_each_output_fire_and_forget_to_its_key_partition() {
    let (mut h, mut c) = member(LogConsumerSetup { output: Some((1, 4)), ..setup(CommitMode::After) });
    h.message(&mut c, B, records(0, 5, &[50]));
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    let partition = key_partition(50, 4) as u32;
    let out = LogMsg::Produce {
        recs: Box::new([rec(50)]),
        acks: Acks::None,
        attempt: 1,
        epoch: 0,
        seq: 0,
        topic: 1,
        partition,
    };
    assert_eq!(to_broker(&e)[0], out);
}

#[test]
fn an_idempotent_effect_is_applied_once_when_a_record_is_read_again() {
    let (mut h, mut c) = member(LogConsumerSetup { store: Some(0), ..setup(CommitMode::After) });
    h.message(&mut c, B, records(0, 5, &[50]));
    assert_eq!(process_all(&mut h, &mut c).applied(), vec![50]);
    // The commit was lost; after a rebalance the record is read again.
    assert_eq!(fetches(&assign(&mut h, &mut c, 2, &[(0, 5)])), vec![(0, 5)]);
    assert_eq!(started(&h.message(&mut c, B, records(0, 5, &[50]))), vec![50], "processed again");
    let e = process_all(&mut h, &mut c);
    assert_eq!((e.applied(), commits(&e)), (vec![], vec![(2, 0, 6)]), "but its effect is not applied again");
}

#[test]
fn a_restarted_member_rejoins_with_a_new_session_and_no_assignment() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    h.message(&mut c, B, records(0, 5, &[50]));
    c.crash();
    let e = h.restart(&mut c);
    assert_eq!(to_broker(&e), vec![LogMsg::Heartbeat { group: 0, session: 2, generation: 0 }]);
    assert!(h.timer(&mut c, Process).is_empty(), "the batch in progress died with it");
}

#[test]
fn committing_before_processing_puts_the_batch_at_risk_and_committing_after_does_not() {
    use crate::ledger::LossCause;
    let (mut h, mut c) = member(setup(CommitMode::Before));
    let e = h.message(&mut c, B, records(0, 5, &[50, 51]));
    let cbp = LossCause::CommitBeforeProcess;
    assert_eq!(e.discarded(), vec![(50, cbp), (51, cbp)], "the broker will not give them to the group again");
    let (mut h, mut c) = member(setup(CommitMode::After));
    assert!(h.message(&mut c, B, records(0, 5, &[50, 51])).discarded().is_empty());
}
