//! Unit tests of a log consumer's failures, retries, dead letters and
//! replay, driven through its handlers with the test harness.

use super::{Failures, OnFailure};
use crate::dedup::Header;
use crate::engine::{Emitted, Harness};
use crate::ledger::LossCause;
use crate::log_consumer::tests::setup;
use crate::log_consumer::{CommitMode, LogConsumer, LogConsumerSetup, LogConsumerTimer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{FetchError, LogMsg};
use crate::time::NS_PER_MS;
use LogConsumerTimer::{Due, Process, Replay, Retry};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const B: NodeId = 10;
/// Topic numbers at the broker: the main topic, two retry topics, the
/// dead-letter topic.
const MAIN: u16 = 0;
const RETRY_1: u16 = 1;
const RETRY_2: u16 = 2;
const DLT: u16 = 3;

/// A member (10 ms per record, commits after each batch) whose failures
/// are handled as `f` says.
fn with(f: Failures) -> LogConsumerSetup {
    LogConsumerSetup { failures: f, ..setup(CommitMode::After) }
}

/// Every attempt fails; retries wait 0, 5 and 30 ms; then the dead-letter topic.
fn always_failing(on_failure: OnFailure) -> Failures {
    Failures {
        failure_probability: 1.0,
        on_failure,
        delays: vec![0, 5 * MS, 30 * MS],
        next_retry: Some(((RETRY_1, 1), 5000 * MS)),
        dead_letter: Some((DLT, 1)),
        ..Failures::default()
    }
}

/// The member, started and assigned partition 0 from offset 5, handed the
/// records `ids` from there.
fn member_with(setup: LogConsumerSetup, ids: &[MsgId]) -> (Harness, LogConsumer, Emitted) {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup);
    h.start(&mut c);
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 5, None)] });
    let recs = ids.iter().map(|&id| Record::new(id, id)).collect();
    let e = h.message(&mut c, B, LogMsg::Records { partition: 0, offset: 5, recs, error: FetchError::None, epoch: 0 });
    (h, c, e)
}

/// (topic, id) of every record the member wrote to a topic.
fn writes(e: &Emitted) -> Vec<(u16, MsgId)> {
    e.sent_to(B)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(LogMsg::Produce { recs, topic, .. }) => Some((topic, recs[0].id)),
            _ => None,
        })
        .collect()
}

/// Offsets committed.
fn commits(e: &Emitted) -> Vec<u64> {
    e.sent_to(B)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(LogMsg::Commit { offset, .. }) => Some(offset),
            _ => None,
        })
        .collect()
}

#[test]
fn retry_in_place_tries_the_same_record_after_each_delay_blocking_the_ones_behind() {
    let (mut h, mut c, e) = member_with(with(always_failing(OnFailure::RetryInPlace)), &[1, 2]);
    assert_eq!(e.started(), [1]);
    let mut waits = Vec::new();
    for _ in 0..3 {
        h.now += 10 * MS;
        let failed = h.timer(&mut c, Process);
        assert_eq!(failed.errors(), ["transient-failure"]);
        assert!(failed.applied().is_empty() && failed.started().is_empty() && writes(&failed).is_empty());
        let [(wait, Retry)] = failed.timers::<LogConsumerTimer>()[..] else { panic!("one retry timer: {failed:?}") };
        waits.push(wait);
        h.now += wait;
        let again = h.timer(&mut c, Retry);
        assert_eq!(again.started(), [1], "the same record, again; record 2 waits behind it");
    }
    assert_eq!(waits, [0, 5 * MS, 30 * MS], "the retry delays, in order");
    h.now += 10 * MS;
    let given_up = h.timer(&mut c, Process);
    assert_eq!(writes(&given_up), [(DLT, 1)], "out of retries: to the dead-letter topic, same id");
    assert_eq!(given_up.started(), [2], "only now does the record behind it start");
}

#[test]
fn retry_queue_writes_to_the_next_retry_topic_stamped_with_its_due_time_and_moves_on() {
    let (mut h, mut c, _) = member_with(with(always_failing(OnFailure::RetryQueue)), &[1, 2]);
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!(writes(&e), [(RETRY_1, 1)]);
    assert_eq!(e.started(), [2], "no waiting: the next record starts at once");
    assert_eq!(h.stores().header(1, Header::RetryDue), Some(10 * MS + 5000 * MS), "failure time + the topic's delay");
    h.now = 20 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!(writes(&e), [(RETRY_1, 2)]);
    assert_eq!(commits(&e), [7], "both offsets are committed: the records live on in the retry topic");
}

#[test]
fn the_last_retry_topic_writes_to_the_dead_letter_topic() {
    let last = Failures { next_retry: None, reads_retry_topic: true, ..always_failing(OnFailure::RetryQueue) };
    let (mut h, mut c, _) = member_with(with(last), &[1]);
    h.now = 10 * MS;
    assert_eq!(writes(&h.timer(&mut c, Process)), [(DLT, 1)]);
    let _ = RETRY_2;
}

#[test]
fn a_retry_topic_reader_waits_until_a_record_is_due() {
    let reader = Failures { reads_retry_topic: true, ..Failures::default() };
    let mut h = Harness::new(ME);
    h.stores().set_header(1, Header::RetryDue, 500 * MS);
    let mut c = LogConsumer::new(with(reader));
    h.start(&mut c);
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 5, None)] });
    h.now = 100 * MS;
    let recs = vec![Record::new(1, 1)];
    let e = h.message(&mut c, B, LogMsg::Records { partition: 0, offset: 5, recs, error: FetchError::None, epoch: 0 });
    assert!(e.started().is_empty(), "not due yet");
    assert_eq!(e.timers::<LogConsumerTimer>(), [(400 * MS, Due)], "waits until its due time");
    h.now = 500 * MS;
    assert_eq!(h.timer(&mut c, Due).started(), [1]);
    h.now = 510 * MS;
    assert_eq!(h.timer(&mut c, Process).applied(), [1]);
}

#[test]
fn dlq_only_sends_a_poison_message_straight_to_the_dead_letter_topic() {
    let f = Failures { failure_probability: 0.0, poison_probability: 1.0, ..always_failing(OnFailure::DlqOnly) };
    let (mut h, mut c, _) = member_with(with(f), &[1, 2]);
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!(e.errors(), ["permanent-failure"]);
    assert_eq!(writes(&e), [(DLT, 1)]);
    assert_eq!(e.started(), [2]);
}

#[test]
fn drop_skips_the_record_and_says_why_it_is_lost() {
    let (mut h, mut c, _) = member_with(with(always_failing(OnFailure::Drop)), &[1]);
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!(e.discarded(), [(1, LossCause::SkippedAfterFailure)]);
    assert!(writes(&e).is_empty() && e.applied().is_empty());
    assert_eq!(commits(&e), [6], "its offset is committed: nobody reads it again");
}

#[test]
fn an_errors_fault_fails_attempts_only_while_it_is_in_force() {
    let f = Failures { failure_probability: 0.0, ..always_failing(OnFailure::DlqOnly) };
    let (mut h, mut c, _) = member_with(with(f), &[1, 2]);
    let down = NodeFault::Errors { ppm: 1_000_000 };
    h.fault(&mut c, &down, true);
    h.now = 10 * MS;
    assert_eq!(writes(&h.timer(&mut c, Process)), [(DLT, 1)], "its dependency is down");
    h.fault(&mut c, &down, false);
    h.now = 20 * MS;
    assert_eq!(h.timer(&mut c, Process).applied(), [2], "back up");
}

#[test]
fn a_member_that_cannot_fail_draws_nothing_more() {
    let (mut h, mut c, _) = member_with(setup(CommitMode::After), &[1]);
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!(e.applied(), [1]);
    assert!(e.errors().is_empty());
}

#[test]
fn a_replay_starts_at_its_time_copies_each_message_once_and_stops_at_one_seen_before() {
    let f = Failures { replay: Some(((MAIN, 1), 1000 * MS)), ..Failures::default() };
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(with(f));
    let start = h.start(&mut c);
    assert!(start.timers::<LogConsumerTimer>().contains(&(1000 * MS, Replay)));
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    let e =
        h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 0, None)] });
    assert!(e.sent_to(B).iter().all(|m| !matches!(m, Msg::Log(LogMsg::Fetch { .. }))), "not before its time");
    h.now = 1000 * MS;
    let e = h.timer(&mut c, Replay);
    assert!(e.sent_to(B).iter().any(|m| matches!(m, Msg::Log(LogMsg::Fetch { offset: 0, .. }))));
    let recs = vec![Record::new(1, 1), Record::new(2, 2), Record::new(1, 1), Record::new(3, 3)];
    h.message(&mut c, B, LogMsg::Records { partition: 0, offset: 0, recs, error: FetchError::None, epoch: 0 });
    let mut all = Vec::new();
    for _ in 0..3 {
        h.now += 10 * MS;
        all.extend(h.timer(&mut c, Process).0);
    }
    let all = Emitted(all);
    assert_eq!(writes(&all), [(MAIN, 1), (MAIN, 2)], "copied to the main topic, same ids; 1 again ends the pass");
    assert!(all.applied().is_empty(), "a replay applies nothing itself");
    assert!(
        all.sent_to(B).iter().all(|m| !matches!(m, Msg::Log(LogMsg::Fetch { .. }))),
        "the pass is over: no more fetches"
    );
}

#[test]
fn a_replay_pass_ends_partition_by_partition() {
    let f = Failures { replay: Some(((MAIN, 1), 0)), ..Failures::default() };
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(with(f));
    h.start(&mut c);
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    let partitions = vec![(0, 0, None), (1, 0, None)];
    h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions });
    // Partition 0 holds message 1 twice (replayed, and dead-lettered again):
    // its pass ends there. Partition 1's records were there before: replayed.
    let zero = vec![Record::new(1, 1), Record::new(1, 1), Record::new(4, 4)];
    h.message(&mut c, B, LogMsg::Records { partition: 0, offset: 0, recs: zero, error: FetchError::None, epoch: 0 });
    let one = vec![Record::new(2, 2), Record::new(3, 3)];
    h.message(&mut c, B, LogMsg::Records { partition: 1, offset: 0, recs: one, error: FetchError::None, epoch: 0 });
    let mut all = Vec::new();
    for _ in 0..4 {
        h.now += 10 * MS;
        all.extend(h.timer(&mut c, Process).0);
    }
    let all = Emitted(all);
    assert_eq!(writes(&all), [(MAIN, 1), (MAIN, 2), (MAIN, 3)], "partition 1 goes on after partition 0's pass ends");
    let fetched: Vec<u32> = all
        .sent_to(B)
        .iter()
        .filter_map(|m| match m {
            Msg::Log(LogMsg::Fetch { partition, .. }) => Some(*partition),
            _ => None,
        })
        .collect();
    assert_eq!(fetched, [1], "only the partition whose pass goes on fetches again");
}
