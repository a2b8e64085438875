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
use LogConsumerTimer::{CommitRetry, PollTimeout, Process, SinkRetry, Tick, TxnRetry};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const B: NodeId = 10;

/// A member of group 0 at broker B: 10 ms per record, heartbeat every
/// 300 ms, requests resent after 1 s.
pub(crate) fn setup(commit: CommitMode) -> LogConsumerSetup {
    LogConsumerSetup {
        broker: B,
        group: 0,
        processing: Dist::constant_ms(10.0),
        commit,
        max_poll_records: 500,
        fetch_bytes: 1_048_576,
        heartbeat_ns: 300 * MS,
        max_poll_ns: 300_000 * MS,
        protocol: crate::broker::RebalanceProtocol::Eager,
        static_member: false,
        request_timeout_ns: 1000 * MS,
        store: None,
        output: None,
        transactional: false,
        sink: None,
        failures: Default::default(),
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

/// The member, joining, hears that `generation` is formed, asks for its
/// assignment and gets `partitions`.
fn assign(h: &mut Harness, c: &mut LogConsumer, generation: u32, partitions: &[(u32, u64)]) -> Emitted {
    let e = h.message(c, B, LogMsg::JoinAck { generation });
    assert_eq!(to_broker(&e), vec![LogMsg::SyncGroup { group: 0, session: c.session, generation }]);
    h.message(
        c,
        B,
        LogMsg::GroupState {
            generation,
            rebalancing: false,
            partitions: partitions.iter().map(|&(p, o)| (p, o, None)).collect(),
        },
    )
}

fn rec(id: MsgId) -> Record {
    Record::new(id, id)
}

fn records(partition: u32, offset: u64, ids: &[MsgId]) -> LogMsg {
    LogMsg::Records {
        partition,
        offset,
        recs: ids.iter().map(|&id| rec(id)).collect(),
        error: FetchError::None,
        epoch: 0,
    }
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
        LogMsg::Commit { generation, partition, offset, group: 0, .. } => Some((generation, partition, offset)),
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
fn a_member_joins_at_start_and_heartbeats_on_a_background_tick() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After));
    let e = h.start(&mut c);
    assert_eq!(to_broker(&e), vec![join(1, &[])]);
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
    let again = LogMsg::GroupState { generation: 1, rebalancing: false, partitions: vec![(0, 5, None), (2, 0, None)] };
    assert!(h.message(&mut c, B, again).is_empty(), "already has it");
    let stale = LogMsg::GroupState { generation: 0, rebalancing: false, partitions: vec![(1, 0, None)] };
    assert!(h.message(&mut c, B, stale).is_empty(), "stale");
}

#[test]
fn records_are_processed_one_at_a_time_and_committed_after_the_batch() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    let e = h.message(&mut c, B, records(0, 5, &[50, 51]));
    let timers = vec![(300_000 * MS, PollTimeout), (10 * MS, Process)];
    assert_eq!((started(&e), e.timers::<LogConsumerTimer>()), (vec![50], timers), "a poll, and the first record");
    assert!(h.message(&mut c, B, records(0, 5, &[50, 51])).is_empty(), "a duplicate answer is ignored");
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!((e.applied(), started(&e), commits(&e)), (vec![50], vec![51], vec![]));
    let e = process_all(&mut h, &mut c);
    assert_eq!(e.applied(), vec![51]);
    let epoch = Some(0); // the records' leader epoch goes with the commit and the next fetch
    let with_epoch = |m: LogMsg| match m {
        LogMsg::Commit { group, generation, partition, offset, .. } => {
            LogMsg::Commit { group, generation, partition, offset, epoch }
        }
        LogMsg::Fetch { group, generation, partition, offset, max, .. } => {
            LogMsg::Fetch { group, generation, partition, offset, max, max_bytes: 1_048_576, epoch }
        }
        m => m,
    };
    assert_eq!(to_broker(&e)[..2], [with_epoch(commit(1, 0, 7)), with_epoch(fetch(0, 7))], "commit, then read on");
}

fn commit(generation: u32, partition: u32, offset: u64) -> LogMsg {
    LogMsg::Commit { group: 0, generation, partition, offset, epoch: None }
}

fn fetch(partition: u32, offset: u64) -> LogMsg {
    LogMsg::Fetch { group: 0, generation: 1, partition, offset, max: 500, max_bytes: 1_048_576, epoch: None }
}

/// `msg` (a commit or a fetch) carrying leader epoch `epoch`: that of the
/// records read before it.
fn in_epoch(msg: LogMsg, epoch: u32) -> LogMsg {
    match msg {
        LogMsg::Commit { group, generation, partition, offset, .. } => {
            LogMsg::Commit { group, generation, partition, offset, epoch: Some(epoch) }
        }
        LogMsg::Fetch { group, generation, partition, offset, max, .. } => {
            LogMsg::Fetch { group, generation, partition, offset, max, max_bytes: 1_048_576, epoch: Some(epoch) }
        }
        other => other,
    }
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
    assert!(started(&e).is_empty() && e.sent().is_empty(), "not processed: the partition is someone else's");
    assert_eq!(e.metric("commits_failed"), 1.0);
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

/// Kafka auto-commits in poll(), the positions of records earlier polls
/// returned: a heartbeat during a batch commits nothing of it (before, the
/// tick committed the half-processed batch), its end commits all of it.
#[test]
fn auto_commit_waits_for_the_poll_at_the_end_of_the_batch_in_progress() {
    let (mut h, mut c) = member(setup(CommitMode::Auto(1000 * MS)));
    h.now = 1000 * MS;
    assert_eq!(commits(&h.timer(&mut c, Tick)), vec![(1, 0, 5)], "idle in poll: due, commits the position");
    h.message(&mut c, B, records(0, 5, &(50..250).collect::<Vec<_>>())); // 2 s of processing
    let mut during = Vec::new();
    for _ in 0..199 {
        h.now += 10 * MS;
        during.extend(commits(&h.timer(&mut c, Process)));
        if h.now % (300 * MS) == 0 {
            during.extend(commits(&h.timer(&mut c, Tick)));
        }
    }
    assert!(during.is_empty(), "committed mid-batch: {during:?}");
    h.now += 10 * MS;
    assert_eq!(commits(&h.timer(&mut c, Process)), vec![(1, 0, 205)], "the poll after the batch");
}

#[test]
fn an_eager_rebalance_is_joined_at_the_next_poll_after_committing_and_revoking_everything() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    h.message(&mut c, B, records(0, 5, &[50, 51, 52]));
    h.now = 10 * MS;
    assert_eq!(started(&h.timer(&mut c, Process)), vec![51]);
    let e = h.message(&mut c, B, rebalancing(1));
    assert!(e.sent().is_empty(), "heard in a heartbeat answer; acted on at the next poll");
    let e = process_all(&mut h, &mut c);
    assert_eq!(e.applied(), vec![51, 52], "the batch the last poll returned is finished");
    assert_eq!(to_broker(&e), vec![in_epoch(commit(1, 0, 8), 0), join(1, &[])], "commit, revoke, rejoin; no fetch");
    assert!(h.message(&mut c, B, records(0, 8, &[53])).is_empty(), "revoked");
}

fn rebalancing(generation: u32) -> LogMsg {
    LogMsg::GroupState { generation, rebalancing: true, partitions: vec![] }
}

fn join(session: u32, owned: &[u32]) -> LogMsg {
    LogMsg::JoinGroup { group: 0, session, owned: owned.to_vec(), static_member: false }
}

#[test]
fn a_cooperative_member_rejoins_with_what_it_owns_and_revokes_only_what_moves() {
    use crate::broker::RebalanceProtocol::CooperativeSticky;
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(LogConsumerSetup { protocol: CooperativeSticky, ..setup(CommitMode::After) });
    h.start(&mut c);
    assign(&mut h, &mut c, 1, &[(0, 5), (1, 0)]);
    h.message(&mut c, B, records(0, 5, &[50]));
    let e = h.message(&mut c, B, rebalancing(1));
    assert!(e.sent().is_empty(), "busy with record 50");
    let e = process_all(&mut h, &mut c);
    assert_eq!(
        to_broker(&e),
        vec![in_epoch(commit(1, 0, 6), 0), in_epoch(fetch(0, 6), 0), join(1, &[0, 1])],
        "reads on, and rejoins"
    );
    // Partition 1 moves: it is committed and revoked, and the member rejoins.
    let e = assign(&mut h, &mut c, 2, &[(0, 5)]);
    assert_eq!(to_broker(&e), vec![commit(2, 1, 0), join(1, &[0])]);
    let e = h.message(&mut c, B, records(0, 6, &[51]));
    assert_eq!(started(&e), vec![51], "partition 0 never stopped");
}

/// KIP-62: a batch that outlasts the poll interval makes the member leave
/// its group; its commit then fails, and it joins again as a new member.
#[test]
fn a_batch_longer_than_the_poll_interval_leaves_the_group_and_its_commit_fails() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(LogConsumerSetup { max_poll_ns: 15 * MS, ..setup(CommitMode::After) });
    h.start(&mut c);
    assign(&mut h, &mut c, 1, &[(0, 5)]);
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    h.now = 15 * MS;
    let e = h.timer(&mut c, PollTimeout);
    assert_eq!((to_broker(&e), e.metric("poll_timeouts")), (vec![LogMsg::LeaveGroup { group: 0, session: 1 }], 1.0));
    assert!(to_broker(&h.timer(&mut c, Tick)).is_empty(), "no more heartbeats");
    let e = process_all(&mut h, &mut c);
    assert_eq!(e.applied(), vec![50, 51], "the batch is finished all the same");
    assert_eq!(
        to_broker(&e),
        vec![in_epoch(commit(1, 0, 7), 0), join(2, &[])],
        "a commit (to fail), then a new member joins"
    );
    let e = h.message(&mut c, B, LogMsg::CommitAck { partition: 0, offset: 7, ok: false });
    assert_eq!(e.metric("commits_failed"), 1.0);
}

#[test]
fn a_static_member_says_so_when_it_joins_and_does_not_leave_on_a_poll_timeout() {
    let mut h = Harness::new(ME);
    let mut c =
        LogConsumer::new(LogConsumerSetup { static_member: true, max_poll_ns: 15 * MS, ..setup(CommitMode::After) });
    let e = h.start(&mut c);
    assert_eq!(to_broker(&e), vec![LogMsg::JoinGroup { group: 0, session: 1, owned: vec![], static_member: true }]);
    assign(&mut h, &mut c, 1, &[(0, 5)]);
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    h.now = 15 * MS;
    assert!(to_broker(&h.timer(&mut c, PollTimeout)).is_empty(), "it stops heartbeating; its session will tell");
}

#[test]
fn a_not_owner_answer_stops_fetching_until_the_group_says_more() {
    let (mut h, mut c) = member(setup(CommitMode::After));
    let refused = LogMsg::Records { partition: 0, offset: 5, recs: vec![], error: FetchError::NotOwner, epoch: 0 };
    assert!(h.message(&mut c, B, refused).is_empty());
    // A new assignment (of another partition) is what it reads next.
    assert!(fetches(&h.message(&mut c, B, rebalancing(1))).is_empty());
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

fn txn(start: u64, end: u64, ids: &[MsgId], seq: u32) -> LogMsg {
    let outputs = ids.iter().map(|&id| rec(id)).collect();
    LogMsg::TxnCommit(Box::new(Transaction {
        group: 0,
        generation: 1,
        partition: 0,
        start,
        end,
        out_topic: 1,
        outputs,
        seq,
        epoch: Some(0),
    }))
}

/// The write of `id` in transaction `seq` (generation 1, input partition 0, output topic 1).
fn write(id: MsgId, seq: u32) -> LogMsg {
    LogMsg::TxnWrite { rec: rec(id), group: 0, generation: 1, partition: 0, seq, out_topic: 1 }
}

fn txn_ack(committed: u64, ok: bool, aborted: bool) -> LogMsg {
    LogMsg::TxnAck { partition: 0, committed, ok, aborted }
}

#[test]
fn a_transactional_stage_writes_each_output_in_its_transaction_then_commits_until_answered() {
    let (mut h, mut c) = member(transactional());
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    let e = process_all(&mut h, &mut c);
    let sent = vec![write(50, 1), write(51, 1), txn(5, 7, &[50, 51], 1)];
    assert_eq!((e.applied(), to_broker(&e)), (vec![50, 51], sent), "written as processed, then committed");
    assert!(e.timers::<LogConsumerTimer>().contains(&(1000 * MS, TxnRetry(0))));
    assert_eq!(to_broker(&h.timer(&mut c, TxnRetry(0))), vec![txn(5, 7, &[50, 51], 1)]);
    let e = h.message(&mut c, B, txn_ack(7, true, false));
    assert_eq!(fetches(&e), vec![(0, 7)]);
    assert!(h.timer(&mut c, TxnRetry(0)).is_empty(), "answered: nothing to resend");
}

#[test]
fn a_refused_commit_is_sent_again_and_an_aborted_transaction_redone_as_a_new_one() {
    let (mut h, mut c) = member(transactional());
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    process_all(&mut h, &mut c);
    // Refused for now (too few in-sync replicas): the transaction stays open.
    assert!(h.message(&mut c, B, txn_ack(5, false, false)).is_empty());
    assert_eq!(to_broker(&h.timer(&mut c, TxnRetry(0))), vec![txn(5, 7, &[50, 51], 1)]);
    // Aborted by the broker (timed out): redo the batch from the commit.
    let e = h.message(&mut c, B, txn_ack(5, false, true));
    assert_eq!(fetches(&e), vec![(0, 5)]);
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    let e = process_all(&mut h, &mut c);
    assert_eq!(to_broker(&e), vec![write(50, 2), write(51, 2), txn(5, 7, &[50, 51], 2)], "a new transaction");
    // The offset moved elsewhere: start again from there.
    let e = h.message(&mut c, B, txn_ack(6, false, true));
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
    h.message(&mut c, B, rebalancing(1));
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
    assert_eq!(to_broker(&e), vec![join(2, &[])], "a new member");
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

#[test]
fn a_member_resumes_with_the_committed_epoch_and_rewinds_where_the_log_diverged() {
    let mut h = Harness::new(ME);
    let mut c = LogConsumer::new(setup(CommitMode::After));
    h.start(&mut c);
    // The group committed offset 9 with leader epoch 2.
    let partitions = vec![(0, 9, Some(2))];
    h.message(&mut c, B, LogMsg::JoinAck { generation: 1 });
    let e = h.message(&mut c, B, LogMsg::GroupState { generation: 1, rebalancing: false, partitions });
    let fetch = |offset, epoch| LogMsg::Fetch {
        group: 0,
        generation: 1,
        partition: 0,
        offset,
        max: 500,
        max_bytes: 1_048_576,
        epoch,
    };
    assert_eq!(to_broker(&e), vec![fetch(9, Some(2))], "the leader checks the epoch against its history");
    // The leader's epoch 2 now ends at 4 (epoch 1 is the latest it knows at
    // or below 2): go back to 4 and read what was written there since.
    let rewind = LogMsg::Records { partition: 0, offset: 4, recs: vec![], error: FetchError::None, epoch: 1 };
    assert_eq!(to_broker(&h.message(&mut c, B, rewind)), vec![fetch(4, Some(1))]);
    let new = LogMsg::Records { partition: 0, offset: 4, recs: vec![rec(40)], error: FetchError::None, epoch: 3 };
    h.message(&mut c, B, new);
    let e = process_all(&mut h, &mut c);
    let commit = LogMsg::Commit { group: 0, generation: 1, partition: 0, offset: 5, epoch: Some(3) };
    assert_eq!((e.applied(), to_broker(&e)), (vec![40], vec![commit, fetch(5, Some(3))]));
}

const SINK: NodeId = 20;

/// The writes sent to the sink: (id, partition, offset).
fn writes(e: &Emitted) -> Vec<(MsgId, u32, u64)> {
    let f = |m| match m {
        Msg::Sink(crate::protocol::SinkMsg::Write { rec, partition, offset }) => Some((rec.id, partition, offset)),
        _ => None,
    };
    e.sent_to(SINK).into_iter().filter_map(f).collect()
}

#[test]
fn with_a_sink_a_record_is_processed_only_once_the_sink_has_written_it() {
    use crate::protocol::SinkMsg::Written;
    let (mut h, mut c) = member(LogConsumerSetup { sink: Some((SINK, 1000 * MS)), ..setup(CommitMode::After) });
    h.message(&mut c, B, records(0, 5, &[50, 51]));
    h.now = 10 * MS;
    let e = h.timer(&mut c, Process);
    assert_eq!((writes(&e), e.applied(), started(&e)), (vec![(50, 0, 5)], vec![], vec![]), "written, not applied");
    assert!(e.timers::<LogConsumerTimer>().contains(&(1000 * MS, SinkRetry)));
    h.now = 1010 * MS;
    assert_eq!(writes(&h.timer(&mut c, SinkRetry)), vec![(50, 0, 5)], "unanswered: written again");
    assert!(h.message(&mut c, SINK, Written { id: 49 }).is_empty(), "an answer to another write changes nothing");
    let e = h.message(&mut c, SINK, Written { id: 50 });
    assert_eq!((e.cancelled::<LogConsumerTimer>(), started(&e), e.applied()), (vec![SinkRetry], vec![51], vec![]));
    assert!(h.message(&mut c, SINK, Written { id: 50 }).is_empty(), "a second answer is late");
    h.now += 10 * MS;
    assert_eq!(writes(&h.timer(&mut c, Process)), vec![(51, 0, 6)]);
    let e = h.message(&mut c, SINK, Written { id: 51 });
    assert_eq!(commits(&e), vec![(1, 0, 7)], "the batch is committed once its last record is written");
}

#[test]
fn a_crash_forgets_the_write_in_progress() {
    let (mut h, mut c) = member(LogConsumerSetup { sink: Some((SINK, 1000 * MS)), ..setup(CommitMode::After) });
    h.message(&mut c, B, records(0, 5, &[50]));
    h.now = 10 * MS;
    h.timer(&mut c, Process);
    c.crash();
    assert!(writes(&h.timer(&mut c, SinkRetry)).is_empty(), "nothing to write after the crash");
}
