//! Unit tests of the group coordinator on its own, with no log broker
//! around it: a host of its own timer type (which wraps the coordinator's)
//! hands it messages and fires its timers, as a cluster's broker does.

use super::{CoordTimer, Coordinator, GroupHost, Handled};
use crate::broker::{Assignor, GroupInfo, LogSpec};
use crate::engine::{Emitted, Harness, Timer};
use crate::message::{Msg, NodeId};
use crate::protocol::{FetchError, LogMsg};
use crate::time::{Duration, Time, NS_PER_MS};

const MS: u64 = NS_PER_MS;
const HOST: NodeId = 10;
const M1: NodeId = 2;
const M2: NodeId = 3;
/// The default `initial_rebalance_delay_ms`.
const INITIAL: Time = 3000 * MS;
/// The default `session_timeout_ms`.
const SESSION: Time = 45_000 * MS;
/// Where the host's log of every partition starts.
const LOG_START: u64 = 7;

/// A host's timers: one of its own, and the coordinator's wrapped, in a
/// top byte of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostTimer {
    Own(u32),
    Coord(CoordTimer),
}

impl From<CoordTimer> for HostTimer {
    fn from(t: CoordTimer) -> Self {
        HostTimer::Coord(t)
    }
}

impl Timer for HostTimer {
    fn to_word(self) -> u64 {
        match self {
            HostTimer::Own(i) => 1 << 56 | u64::from(i),
            HostTimer::Coord(c) => 2 << 56 | c.to_bits(),
        }
    }
    fn from_word(w: u64) -> Option<Self> {
        match w >> 56 {
            1 => Some(HostTimer::Own(w as u32)),
            2 => CoordTimer::from_bits(w & ((1 << 56) - 1)).map(HostTimer::Coord),
            _ => None,
        }
    }
}

/// Logs that all start at [`LOG_START`].
struct Logs;

impl GroupHost for Logs {
    fn log_start(&self, _topic: usize, _partition: usize) -> u64 {
        LOG_START
    }
}

/// A coordinator of one range group reading topic 0, of `partitions`.
fn coordinator(partitions: usize) -> (Harness, Coordinator) {
    let spec: LogSpec = toml::from_str("topics = { t = { partitions = 1 } }").expect("a log spec");
    let groups = vec![GroupInfo::new("g", 0, 0, Assignor::Range)];
    (Harness::new(HOST), Coordinator::new(&spec, groups, &[partitions]))
}

/// Hands `msg` from `from` to the coordinator.
fn send(h: &mut Harness, c: &mut Coordinator, from: NodeId, msg: LogMsg) -> (Handled, Emitted) {
    h.act::<HostTimer, _>(|ctx| c.handle(ctx, &Logs, from, &msg))
}

/// Fires the coordinator's `timer` at `at`.
fn fire(h: &mut Harness, c: &mut Coordinator, at: Time, timer: CoordTimer) -> Emitted {
    h.now = at;
    h.act::<HostTimer, _>(|ctx| c.on_timer(ctx, timer)).1
}

/// A join of a dynamic member (session 1) that owns nothing.
fn join() -> LogMsg {
    LogMsg::JoinGroup { group: 0, session: 1, owned: vec![], static_member: false }
}

fn sync(generation: u32) -> LogMsg {
    LogMsg::SyncGroup { group: 0, session: 1, generation }
}

fn heartbeat(generation: u32) -> LogMsg {
    LogMsg::Heartbeat { group: 0, session: 1, generation }
}

fn commit(generation: u32, partition: u32, offset: u64) -> LogMsg {
    LogMsg::Commit { group: 0, generation, partition, offset, epoch: Some(0) }
}

/// The generations of the JoinAcks sent, by member.
fn join_acks(e: &Emitted) -> Vec<(NodeId, u32)> {
    let acks = e.sent().into_iter();
    acks.filter_map(|(to, m)| match m {
        Msg::Log(LogMsg::JoinAck { generation }) => Some((to, generation)),
        _ => None,
    })
    .collect()
}

/// The assignment a sync was answered with: (partition, start offset).
fn assignment(e: &Emitted) -> Vec<(u32, u64)> {
    match &e.sent()[..] {
        [(_, Msg::Log(LogMsg::GroupState { rebalancing: false, partitions, .. }))] => {
            partitions.iter().map(|&(p, o, _)| (p, o)).collect()
        }
        other => panic!("not an assignment: {other:?}"),
    }
}

/// The CommitAcks sent: (partition, offset, ok).
fn commit_acks(e: &Emitted) -> Vec<(u32, u64, bool)> {
    let acks = e.sent().into_iter();
    acks.filter_map(|(_, m)| match m {
        Msg::Log(LogMsg::CommitAck { partition, offset, ok }) => Some((partition, offset, ok)),
        _ => None,
    })
    .collect()
}

/// The coordinator's timers set, as the host's timer type carries them.
fn timers(e: &Emitted) -> Vec<(Duration, HostTimer)> {
    e.timers::<HostTimer>()
}

/// M1 and M2 join an empty group, which forms generation 1 once the
/// initial delay is over; both sync. M1 gets partition 0, M2 partition 1.
fn formed(h: &mut Harness, c: &mut Coordinator) {
    let (handled, e) = send(h, c, M1, join());
    assert_eq!(handled, Handled::Done);
    let rebalance = HostTimer::Coord(CoordTimer::Rebalance(0));
    assert!(timers(&e).contains(&(INITIAL, rebalance)), "the initial delay, in the host's timer type: {e:?}");
    assert!(join_acks(&e).is_empty(), "the initial delay holds the first generation back");
    send(h, c, M2, join());
    assert_eq!(join_acks(&fire(h, c, INITIAL, CoordTimer::Rebalance(0))), vec![(M1, 1), (M2, 1)]);
    assert_eq!(assignment(&send(h, c, M1, sync(1)).1), vec![(0, LOG_START)], "never committed: from the log start");
    assert_eq!(assignment(&send(h, c, M2, sync(1)).1), vec![(1, LOG_START)]);
}

#[test]
fn coord_timers_fit_their_bits_and_come_back_from_them() {
    for t in [CoordTimer::Rebalance(0), CoordTimer::Expiry(u32::MAX), CoordTimer::Rebalance(u32::MAX)] {
        assert!(t.to_bits() < 1 << CoordTimer::BITS, "{t:?}");
        assert_eq!(CoordTimer::from_bits(t.to_bits()), Some(t));
    }
    assert_eq!(CoordTimer::from_bits(0), None);
    assert_eq!(CoordTimer::from_bits(3 << 32), None);
}

#[test]
fn a_group_forms_commits_land_and_the_next_sync_starts_from_the_commit() {
    let (mut h, mut c) = coordinator(2);
    formed(&mut h, &mut c);
    h.now = 4000 * MS;
    let (handled, e) = send(&mut h, &mut c, M1, commit(1, 0, 12));
    assert_eq!(handled, Handled::Committed { topic: 0, partition: 0 }, "the host hears the offset moved");
    assert_eq!(commit_acks(&e), vec![(0, 12, true)]);
    assert_eq!((c.committed(0, 0), c.committed_epoch(0, 0), c.committed(0, 1)), (Some(12), Some(0), None));
    let (handled, e) = send(&mut h, &mut c, M2, commit(1, 0, 20));
    assert_eq!((handled, commit_acks(&e)), (Handled::Done, vec![(0, 20, false)]), "not M2's partition");
    assert_eq!((e.metric("commits_fenced"), c.committed(0, 0)), (1.0, Some(12)));
    // An older commit of M1 overtaken on the way is answered, and moves nothing.
    let (handled, e) = send(&mut h, &mut c, M1, commit(1, 0, 10));
    assert_eq!((handled, commit_acks(&e), e.metric("stale_commits")), (Handled::Done, vec![(0, 10, true)], 1.0));
    assert_eq!(c.committed(0, 0), Some(12));
    // A message that is not a group message, or for another group, is the host's.
    let fetch = LogMsg::Fetch { group: 0, generation: 1, partition: 0, offset: 0, max: 1, max_bytes: 1, epoch: None };
    assert_eq!(send(&mut h, &mut c, M1, fetch).0, Handled::NotMine);
    let other = LogMsg::Heartbeat { group: 1, session: 1, generation: 1 };
    assert_eq!(send(&mut h, &mut c, M1, other), (Handled::NotMine, Emitted(vec![])));
}

#[test]
fn a_commit_of_a_stale_generation_is_fenced_after_a_rebalance() {
    let (mut h, mut c) = coordinator(2);
    formed(&mut h, &mut c);
    send(&mut h, &mut c, M1, commit(1, 0, 5));
    // M2 leaves; M1 hears of the rebalance at its heartbeat and rejoins.
    h.now = 5000 * MS;
    let (_, e) = send(&mut h, &mut c, M2, LogMsg::LeaveGroup { group: 0, session: 1 });
    assert_eq!((e.metric("members_left"), e.metric("rebalances")), (1.0, 1.0));
    let rebalancing = LogMsg::GroupState { generation: 1, rebalancing: true, partitions: vec![] };
    assert_eq!(send(&mut h, &mut c, M1, heartbeat(1)).1.sent(), vec![(M1, Msg::Log(rebalancing))]);
    assert_eq!(join_acks(&send(&mut h, &mut c, M1, join()).1), vec![(M1, 2)]);
    assert_eq!(assignment(&send(&mut h, &mut c, M1, sync(2)).1), vec![(0, 5), (1, LOG_START)], "from its commit");
    assert!(c.may_commit(0, M1, 2, 1) && !c.may_commit(0, M1, 1, 1), "generation 2 only");
    // A commit of generation 1 arriving now (sent before the rebalance) is fenced.
    let (handled, e) = send(&mut h, &mut c, M1, commit(1, 0, 9));
    assert_eq!((handled, commit_acks(&e), e.metric("commits_fenced")), (Handled::Done, vec![(0, 9, false)], 1.0));
    let (_, e) = send(&mut h, &mut c, M2, commit(1, 1, 4));
    assert_eq!(commit_acks(&e), vec![(1, 4, false)], "M2 left: a zombie");
    assert_eq!((c.committed(0, 0), c.committed(0, 1)), (Some(5), None));
    assert_eq!(send(&mut h, &mut c, M1, commit(2, 1, 8)).0, Handled::Committed { topic: 0, partition: 1 });
    assert_eq!(c.committed(0, 1), Some(8));
}

#[test]
fn a_silent_member_expires_and_its_partitions_go_to_the_others() {
    let (mut h, mut c) = coordinator(2);
    formed(&mut h, &mut c);
    // M1 heartbeats on; M2, last heard of at 3 s, falls silent.
    h.now = 30_000 * MS;
    send(&mut h, &mut c, M1, heartbeat(1));
    let e = fire(&mut h, &mut c, 2000 * MS + SESSION, CoordTimer::Expiry(0));
    assert_eq!(e.metric("members_expired"), 0.0, "M2 was last heard of at its sync, 3 s");
    let e = fire(&mut h, &mut c, INITIAL + SESSION, CoordTimer::Expiry(0));
    assert_eq!((e.metric("members_expired"), e.metric("rebalances")), (1.0, 1.0));
    let next = timers(&e).into_iter().find(|(_, t)| *t == HostTimer::Coord(CoordTimer::Expiry(0)));
    assert_eq!(next.map(|(d, _)| d), Some(30_000 * MS + SESSION - (INITIAL + SESSION)), "at M1's session end");
    assert!(!c.may_fetch(0, M2, 1, 1), "the expired member owns nothing");
    let (_, e) = send(&mut h, &mut c, M2, heartbeat(1));
    let unknown = LogMsg::GroupState { generation: 0, rebalancing: true, partitions: vec![] };
    assert_eq!(e.sent(), vec![(M2, Msg::Log(unknown))], "it must join as a new member");
    assert_eq!(join_acks(&send(&mut h, &mut c, M1, join()).1), vec![(M1, 2)]);
    assert_eq!(assignment(&send(&mut h, &mut c, M1, sync(2)).1), vec![(0, LOG_START), (1, LOG_START)]);
}

#[test]
fn a_fetch_by_a_member_that_does_not_own_the_partition_is_answered_not_owner() {
    let (mut h, mut c) = coordinator(2);
    formed(&mut h, &mut c);
    let (ok, e) = h.act::<HostTimer, _>(|ctx| c.check_fetch(ctx, M1, (0, 1), 0, 4));
    assert!(ok && e.sent().is_empty(), "M1 owns partition 0");
    let (ok, e) = h.act::<HostTimer, _>(|ctx| c.check_fetch(ctx, M1, (0, 1), 1, 4));
    let not_owner = LogMsg::Records { partition: 1, offset: 4, recs: vec![], error: FetchError::NotOwner, epoch: 0 };
    assert!(!ok);
    assert_eq!(e.sent(), vec![(M1, Msg::Log(not_owner))]);
}

#[test]
fn a_crash_forgets_members_but_keeps_committed_offsets() {
    let (mut h, mut c) = coordinator(2);
    formed(&mut h, &mut c);
    send(&mut h, &mut c, M2, commit(1, 1, 3));
    c.crash();
    assert!(!c.may_fetch(0, M1, 1, 0) && !c.may_commit(0, M2, 1, 1), "no member owns anything");
    assert_eq!(c.committed(0, 1), Some(3));
    h.now = 60_000 * MS;
    let (_, e) = send(&mut h, &mut c, M2, join());
    assert_eq!(e.metric("rebalances"), 1.0, "an empty group again: the initial delay");
    assert_eq!(join_acks(&fire(&mut h, &mut c, 60_000 * MS + INITIAL, CoordTimer::Rebalance(0))), vec![(M2, 2)]);
    assert_eq!(assignment(&send(&mut h, &mut c, M2, sync(2)).1), vec![(0, LOG_START), (1, 3)]);
}

#[test]
fn a_group_written_as_records_is_loaded_by_another_coordinator_as_it_was() {
    use crate::protocol::offsets::{CommitRecord, OffsetsRecord};
    let (mut h, mut c) = coordinator(2);
    let empty = c.group_record(0).expect("an empty group is stable");
    assert_eq!((empty.generation, empty.members.len()), (0, 0));
    send(&mut h, &mut c, M1, join());
    send(&mut h, &mut c, M2, join());
    assert_eq!(c.group_record(0), None, "a rebalance under way is not written");
    formed_after_joins(&mut h, &mut c);
    let record = c.group_record(0).expect("stable: a record");
    assert_eq!((record.generation, record.members.len()), (1, 2));
    // The log of the offsets partition: the group, two commits of partition
    // 0 (the last wins) and one of partition 1.
    let commit = |partition, offset, by| {
        OffsetsRecord::Commit(CommitRecord { group: 0, partition, offset, epoch: Some(0), by: (by, 1) })
    };
    let log = vec![OffsetsRecord::Group(Box::new(record)), commit(0, 5, M1), commit(1, 4, M2), commit(0, 9, M1)];
    // Another coordinator takes the group over at 10 s.
    let (mut h2, mut other) = coordinator(2);
    h2.now = 10_000 * MS;
    let e = h2.act::<HostTimer, _>(|ctx| other.load(ctx, 0, &log)).1;
    assert_eq!((other.committed(0, 0), other.committed(0, 1)), (Some(9), Some(4)));
    assert!(other.may_commit(0, M1, 1, 0) && other.may_commit(0, M2, 1, 1), "same members, generation, assignment");
    assert!(other.is_member(0, M1, 1) && !other.is_member(0, M1, 2), "known by node and session");
    // Their sessions start afresh at the load.
    assert!(timers(&e).contains(&(SESSION, HostTimer::Coord(CoordTimer::Expiry(0)))), "{e:?}");
    // A heartbeat of the loaded generation is taken, no rebalance.
    let (_, e) = send(&mut h2, &mut other, M1, heartbeat(1));
    assert_eq!(e.metric("rebalances"), 0.0);
    // Giving the group up forgets it all.
    h2.act::<HostTimer, _>(|ctx| other.unload(ctx, 0));
    assert_eq!((other.committed(0, 0), other.may_commit(0, M1, 1, 0)), (None, false));
}

/// The initial delay of a group M1 and M2 joined is over; both sync.
fn formed_after_joins(h: &mut Harness, c: &mut Coordinator) {
    assert_eq!(join_acks(&fire(h, c, INITIAL, CoordTimer::Rebalance(0))), vec![(M1, 1), (M2, 1)]);
    send(h, c, M1, sync(1));
    send(h, c, M2, sync(1));
}
