//! A replica's handlers: it starts stopped, waits out its start-up delay
//! when told to start, and stops gracefully (commit, LeaveGroup).

use super::super::tests::setup;
use super::super::{CommitMode, LogConsumer, LogConsumerTimer};
use crate::engine::{Emitted, Harness};
use crate::message::{Msg, NodeId, Record};
use crate::protocol::{ControlMsg, FetchError, LogMsg};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const B: NodeId = 10;
const CONTROLLER: NodeId = 20;

fn log(e: &Emitted) -> Vec<LogMsg> {
    e.sent_to(B)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Log(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// A stopped replica (auto-commit off: commits after each batch).
fn stopped() -> (Harness, LogConsumer) {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After)).as_replica(false, 5000 * MS);
    let e = h.start(&mut c);
    assert!(e.sent().is_empty() && e.timers::<LogConsumerTimer>().is_empty(), "stopped: it does nothing");
    (h, c)
}

#[test]
fn a_stopped_replica_ignores_the_group_and_starts_after_its_delay() {
    let (mut h, mut c) = stopped();
    let e = h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    assert!(e.sent().is_empty(), "not a member: nothing to answer");
    let e = h.message(&mut c, CONTROLLER, ControlMsg::Start);
    assert_eq!(e.timers::<LogConsumerTimer>(), [(5000 * MS, LogConsumerTimer::Startup)]);
    assert!(e.sent().is_empty(), "starting: the pod is not up yet");
    h.now = 5000 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Startup);
    assert!(
        matches!(log(&e)[..], [LogMsg::JoinGroup { group: 0, .. }]),
        "up: it joins its group (a rebalance): {:?}",
        log(&e)
    );
    let again = h.message(&mut c, CONTROLLER, ControlMsg::Start);
    assert!(again.sent().is_empty() && again.timers::<LogConsumerTimer>().is_empty(), "a second start is nothing");
}

#[test]
fn a_stopped_replica_commits_what_it_processed_and_leaves_its_group() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After)).as_replica(true, 0);
    h.start(&mut c);
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 5, None)] });
    let recs = vec![Record::new(1, 1), Record::new(2, 2), Record::new(3, 3)];
    h.message(&mut c, B, LogMsg::Records { partition: 0, offset: 5, recs, error: FetchError::None, epoch: 0 });
    h.now += 10 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Process);
    assert_eq!(e.applied(), [1], "one of three processed");
    let e = h.message(&mut c, CONTROLLER, ControlMsg::Stop);
    let sent = log(&e);
    assert!(
        matches!(
            sent[..],
            [LogMsg::Commit { partition: 0, offset: 6, generation: 1, .. }, LogMsg::LeaveGroup { group: 0, .. }]
        ),
        "commit offset 6 (record 1 done), then leave: {sent:?}"
    );
    let cancelled = e.cancelled::<LogConsumerTimer>();
    assert!(cancelled.contains(&LogConsumerTimer::Process), "the record in progress is left");
    // A retry, a wait for a due record or a replay must not fire in the
    // replica's next life, beside the record it is then processing.
    for t in [LogConsumerTimer::Retry, LogConsumerTimer::Due, LogConsumerTimer::Replay] {
        assert!(cancelled.contains(&t), "{t:?} is left pending: {cancelled:?}");
    }
    h.now += 10 * MS;
    let e = h.timer(&mut c, LogConsumerTimer::Process);
    assert!(e.applied().is_empty() && e.sent().is_empty(), "stopped: a late timer does nothing");
    let mut held = Vec::new();
    crate::engine::Component::held_in(&c, &mut held);
    assert!(held.is_empty(), "it holds nothing: records 2 and 3 are the next owner's");
}
