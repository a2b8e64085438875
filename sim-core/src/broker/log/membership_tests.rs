//! Unit tests of the group coordinator's rebalance protocol (see
//! `membership.rs`), driven through its handlers: joins, syncs,
//! heartbeats, leaves, and the session and rebalance timers fired by hand.

use super::*;

/// A broker with one topic of `partitions` and group 0 reading it with
/// `protocol`.
fn coordinator(partitions: u32, protocol: crate::broker::RebalanceProtocol) -> (Harness, LogBroker) {
    let info = GroupInfo { protocol, ..group(0, 0) };
    broker(&format!("topics = {{ t = {{ partitions = {partitions} }} }}"), vec![info])
}

fn rebalancing(generation: u32) -> LogMsg {
    LogMsg::GroupState { generation, rebalancing: true, partitions: vec![] }
}

#[test]
fn an_empty_group_waits_the_initial_delay_then_each_member_syncs_its_share() {
    let (mut h, mut b) = coordinator(2, Default::default());
    let e = join_as(&mut h, &mut b, M1, 1, &[], false);
    assert_eq!(metric(&e, "rebalances"), 1.0);
    assert!(join_acks(&e).is_empty(), "the initial delay holds the first generation back");
    h.now = 50 * MS;
    assert!(join_acks(&join_as(&mut h, &mut b, M2, 1, &[], false)).is_empty());
    let e = fire(&mut h, &mut b, INITIAL, LogTimer::Rebalance(0));
    assert_eq!(join_acks(&e), vec![(M1, 1), (M2, 1)]);
    assert_eq!(sync(&mut h, &mut b, M1, 1, 1), vec![(M1, 1, false, vec![(0, 0)])], "range: one each");
    assert_eq!(sync(&mut h, &mut b, M2, 1, 1), vec![(M2, 1, false, vec![(1, 0)])]);
    assert!(heartbeat(&mut h, &mut b, M1, 1, 1).sent().is_empty(), "stable: nothing to say");
    assert_eq!(heartbeat(&mut h, &mut b, M1, 7, 1).sent(), vec![(M1, Msg::Log(rebalancing(0)))], "not a member");
}

/// Kafka's behaviour behind "a restarted consumer rejoins at once" (issue
/// 10): the restarted consumer is a new member; the old one, dead, keeps
/// the group waiting until its session times out.
#[test]
fn a_restarted_member_is_new_and_the_eager_rebalance_waits_for_the_old_session_to_end() {
    let (mut h, mut b) = coordinator(2, Default::default());
    join(&mut h, &mut b, &[M1, M2]); // generation 1 at 3 s: M1 owns 0, M2 owns 1
    h.now = 4000 * MS;
    heartbeat(&mut h, &mut b, M1, 1, 1);
    h.now = 5000 * MS; // M2 crashed at 3 s and is back, a new incarnation
    let e = join_as(&mut h, &mut b, M2, 2, &[], false);
    assert_eq!((metric(&e, "rebalances"), join_acks(&e)), (1.0, vec![]));
    // M1 hears of it at its next heartbeat, commits, and rejoins.
    h.now = 6000 * MS;
    assert_eq!(heartbeat(&mut h, &mut b, M1, 1, 1).sent(), vec![(M1, Msg::Log(rebalancing(1)))]);
    assert_eq!(commit_acks(&h.message(&mut b, M1, commit(1, 0, 4))), vec![(M1, 0, 4, true)], "still its generation");
    assert!(join_acks(&join_as(&mut h, &mut b, M1, 1, &[], false)).is_empty(), "the old M2 has not rejoined");
    // Until its session ends (45 s after it was last heard of, at 3 s).
    let e = fire(&mut h, &mut b, 3000 * MS + SESSION, LogTimer::Expiry(0));
    assert_eq!(metric(&e, "members_expired"), 1.0);
    assert_eq!(join_acks(&e), vec![(M1, 2), (M2, 2)]);
    assert_eq!(sync(&mut h, &mut b, M1, 1, 2), vec![(M1, 2, false, vec![(0, 4)])], "from M1's last commit");
    assert_eq!(sync(&mut h, &mut b, M2, 2, 2), vec![(M2, 2, false, vec![(1, 0)])]);
}

#[test]
fn a_member_that_never_rejoins_is_dropped_at_the_rebalance_timeout() {
    let (mut h, mut b) = coordinator(2, Default::default());
    join(&mut h, &mut b, &[M1, M2]);
    h.now = 4000 * MS;
    join_as(&mut h, &mut b, M1, 2, &[], false); // M1 restarted; the old M1 and M2 must rejoin
    join_as(&mut h, &mut b, M2, 1, &[], false);
    // The old M1 heartbeats on (a zombie whose heartbeat thread lives) but never rejoins.
    for s in 1..=6 {
        h.now = 4000 * MS + s * 40_000 * MS;
        heartbeat(&mut h, &mut b, M1, 1, 1);
        assert!(heartbeat(&mut h, &mut b, M1, 2, 1).sent().is_empty());
        assert!(heartbeat(&mut h, &mut b, M2, 1, 1).sent().is_empty());
    }
    let e = fire(&mut h, &mut b, 4000 * MS + 300_000 * MS, LogTimer::Rebalance(0));
    assert_eq!(metric(&e, "rejoin_timeouts"), 1.0);
    assert_eq!(join_acks(&e), vec![(M2, 2), (M1, 2)]);
}

/// KIP-62: a member whose batch outlasts `max_poll_interval_ms` leaves;
/// the group rebalances without it and its late commit fails.
#[test]
fn a_member_that_leaves_loses_its_partitions_and_its_late_commit_fails() {
    let (mut h, mut b) = coordinator(2, Default::default());
    join(&mut h, &mut b, &[M1, M2]);
    h.now = 4000 * MS;
    let e = h.message(&mut b, M1, LogMsg::LeaveGroup { group: 0, session: 1 });
    assert_eq!((metric(&e, "members_left"), metric(&e, "rebalances")), (1.0, 1.0));
    assert_eq!(heartbeat(&mut h, &mut b, M2, 1, 1).sent(), vec![(M2, Msg::Log(rebalancing(1)))]);
    assert_eq!(join_acks(&join_as(&mut h, &mut b, M2, 1, &[], false)), vec![(M2, 2)]);
    assert_eq!(sync(&mut h, &mut b, M2, 1, 2), vec![(M2, 2, false, vec![(0, 0), (1, 0)])]);
    let e = h.message(&mut b, M1, commit(1, 0, 9));
    assert_eq!((commit_acks(&e), metric(&e, "commits_fenced")), (vec![(M1, 0, 9, false)], 1.0));
}

/// KIP-429: during a cooperative rebalance, a member goes on reading the
/// partitions that do not move; only a partition that moves is revoked,
/// and handed to its new owner in a second round.
#[test]
fn cooperative_members_keep_reading_unmoved_partitions_during_a_rebalance() {
    use crate::broker::RebalanceProtocol::CooperativeSticky;
    let (mut h, mut b) = coordinator(2, CooperativeSticky);
    join(&mut h, &mut b, &[M1]); // M1 owns 0 and 1
    h.message(&mut b, P, produce(0, Acks::Leader));
    h.now = 4000 * MS;
    join_as(&mut h, &mut b, M2, 1, &[], false);
    assert_eq!(heartbeat(&mut h, &mut b, M1, 1, 1).sent(), vec![(M1, Msg::Log(rebalancing(1)))]);
    let e = h.message(&mut b, M1, fetch_from(1, 0, 0));
    assert!(matches!(&e.sent()[..], [(M1, Msg::Log(LogMsg::Records { error: FetchError::None, .. }))]), "reads on");
    assert_eq!(join_acks(&join_as(&mut h, &mut b, M1, 1, &[0, 1], false)), vec![(M1, 2), (M2, 2)]);
    assert_eq!(sync(&mut h, &mut b, M1, 1, 2), vec![(M1, 2, false, vec![(0, 0)])], "partition 1 moves");
    assert_eq!(sync(&mut h, &mut b, M2, 1, 2), vec![(M2, 2, false, vec![])], "not before M1 revokes it");
    assert!(b.coord.may_fetch(0, M1, 2, 0) && b.coord.may_fetch(0, M1, 2, 1), "M1 still owns both");
    // M1 commits partition 1 and rejoins without it: the second round.
    assert_eq!(commit_acks(&h.message(&mut b, M1, commit(2, 1, 0))), vec![(M1, 1, 0, true)]);
    let e = join_as(&mut h, &mut b, M1, 1, &[0], false);
    assert_eq!(metric(&e, "rebalances"), 1.0);
    assert!(b.coord.may_fetch(0, M1, 2, 0), "partition 0 never stops");
    assert_eq!(join_acks(&join_as(&mut h, &mut b, M2, 1, &[], false)), vec![(M1, 3), (M2, 3)]);
    assert_eq!(sync(&mut h, &mut b, M2, 1, 3), vec![(M2, 3, false, vec![(1, 0)])]);
}

#[test]
fn eager_members_revoke_everything_and_read_nothing_until_the_new_assignment() {
    const M3: NodeId = 5;
    let (mut h, mut b) = coordinator(2, Default::default());
    join(&mut h, &mut b, &[M1, M2]);
    h.now = 4000 * MS;
    join_as(&mut h, &mut b, M3, 1, &[], false);
    assert!(b.coord.may_fetch(0, M1, 1, 0), "until it notices, M1 reads on");
    join_as(&mut h, &mut b, M1, 1, &[], false);
    assert!(!b.coord.may_fetch(0, M1, 1, 0), "revoked on rejoining");
    assert!(b.coord.may_fetch(0, M2, 1, 1), "M2 has not noticed yet");
    assert_eq!(join_acks(&join_as(&mut h, &mut b, M2, 1, &[], false)).len(), 3);
    assert_eq!(sync(&mut h, &mut b, M1, 1, 2), vec![(M1, 2, false, vec![(0, 0)])]);
}

/// KIP-345: a static member back within its session takes its old place
/// and assignment, with no rebalance; back too late, it is a new member.
#[test]
fn a_static_member_restarted_within_its_session_gets_its_assignment_without_a_rebalance() {
    let (mut h, mut b) = coordinator(2, Default::default());
    join_as(&mut h, &mut b, M1, 1, &[], true);
    join_as(&mut h, &mut b, M2, 1, &[], true);
    fire(&mut h, &mut b, INITIAL, LogTimer::Rebalance(0));
    sync(&mut h, &mut b, M1, 1, 1);
    sync(&mut h, &mut b, M2, 1, 1);
    h.message(&mut b, M2, commit(1, 1, 6));
    h.now = 10_000 * MS; // M2 restarted
    let e = join_as(&mut h, &mut b, M2, 2, &[], true);
    assert_eq!((metric(&e, "rebalances"), join_acks(&e)), (0.0, vec![(M2, 1)]));
    assert_eq!(sync(&mut h, &mut b, M2, 2, 1), vec![(M2, 1, false, vec![(1, 6)])]);
    assert_eq!(heartbeat(&mut h, &mut b, M2, 1, 1).sent(), vec![(M2, Msg::Log(rebalancing(0)))], "old one fenced");
    // Down for longer than its session: expired, and the group rebalances.
    h.now = 40_000 * MS;
    heartbeat(&mut h, &mut b, M1, 1, 1);
    let e = fire(&mut h, &mut b, 10_000 * MS + SESSION, LogTimer::Expiry(0));
    assert_eq!((metric(&e, "members_expired"), metric(&e, "rebalances")), (1.0, 1.0));
}
