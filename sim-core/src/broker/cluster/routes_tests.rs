//! Unit tests of a client's routes: lookups, epochs, the cursor, timing.

use super::*;

const MS: u64 = crate::time::NS_PER_MS;
const B: [NodeId; 3] = [11, 12, 13];

fn timing() -> RouteTiming {
    RouteTiming { request_timeout_ns: 1000 * MS, backoff_ns: 100 * MS, max_age_ns: 300_000 * MS }
}

/// Topic 2 with 3 partitions, and topic 5 with 1.
fn routes() -> Routes {
    Routes::new(B.to_vec(), &[(2, 3), (5, 1)], timing())
}

/// What a poll sent, and when it wants to be called again.
type Polled = (Vec<(NodeId, ClusterMsg)>, Option<(Time, bool)>);

/// Polls at `now`; returns what was sent and the wake.
fn poll(r: &mut Routes, now: Time) -> Polled {
    let mut sent = Vec::new();
    let wake = r.poll(now, |to, m| sent.push((to, m)));
    (sent, wake)
}

fn ask(to: NodeId, topic: u16) -> (NodeId, ClusterMsg) {
    (to, ClusterMsg::MetadataRequest { topic })
}

#[test]
fn a_new_client_asks_the_first_broker_about_each_topic_and_waits_for_the_answer() {
    let mut r = routes();
    assert_eq!(r.leader(2, 0), None);
    let (sent, wake) = poll(&mut r, 0);
    assert_eq!(sent, vec![ask(11, 2), ask(11, 5)]);
    assert_eq!(wake, Some((1000 * MS, false)), "the answer is awaited until the request timeout");
    assert!(poll(&mut r, 10 * MS).0.is_empty(), "one request in flight at a time");
    let changed = r.on_leaders(20 * MS, 2, &[(Some(12), 0), (Some(13), 0), (None, 0)]);
    assert_eq!(changed, vec![0, 1], "partition 2 is offline: no change from unknown");
    assert_eq!((r.leader(2, 0), r.leader(2, 1), r.leader(2, 2)), (Some(12), Some(13), None));
    assert_eq!(poll(&mut r, 30 * MS).1, Some((1000 * MS, false)), "topic 5 is still unanswered");
    r.on_leaders(40 * MS, 5, &[(Some(11), 0)]);
    let (sent, wake) = poll(&mut r, 50 * MS);
    assert!(sent.is_empty());
    assert_eq!(wake, Some((40 * MS + 300_000 * MS, true)), "only the periodic refresh, in the background");
}

#[test]
fn an_older_epoch_is_ignored_and_an_equal_or_newer_one_taken() {
    let mut r = routes();
    r.on_leaders(0, 2, &[(Some(12), 3), (Some(12), 3), (Some(12), 3)]);
    assert!(r.on_leaders(0, 2, &[(Some(11), 2), (Some(12), 3), (Some(12), 3)]).is_empty(), "epoch 2 < 3");
    assert_eq!((r.leader(2, 0), r.epoch(2, 0)), (Some(12), Some(3)));
    assert_eq!(r.on_leaders(0, 2, &[(Some(13), 4), (None, 4), (Some(12), 3)]), vec![0, 1]);
    assert_eq!((r.leader(2, 0), r.leader(2, 1), r.epoch(2, 1)), (Some(13), None, Some(4)));
}

#[test]
fn not_leader_forgets_only_the_leader_that_said_so_and_wants_a_refresh() {
    let mut r = routes();
    poll(&mut r, 0);
    r.on_leaders(MS, 2, &[(Some(12), 1), (Some(13), 1), (Some(11), 1)]);
    r.on_leaders(MS, 5, &[(Some(11), 1)]);
    assert!(!r.not_leader(2, 0, 13), "13 is not the leader known: a newer hint already came");
    assert_eq!(r.leader(2, 0), Some(12));
    assert!(r.not_leader(2, 0, 12));
    assert_eq!((r.leader(2, 0), r.epoch(2, 0)), (None, Some(1)), "the epoch is kept");
    let (sent, _) = poll(&mut r, 50 * MS);
    assert!(sent.is_empty(), "within the backoff of the last request");
    let (sent, _) = poll(&mut r, 100 * MS);
    assert_eq!(sent, vec![ask(11, 2), ask(11, 5)], "the refresh leaves once the backoff has passed");
    r.on_leaders(110 * MS, 2, &[(Some(12), 1), (Some(13), 1), (Some(11), 1)]);
    assert_eq!(r.leader(2, 0), Some(12), "an equal epoch is taken again (a broker's view, still current)");
}

#[test]
fn an_unanswered_request_and_a_client_timeout_move_to_the_next_broker() {
    let mut r = routes();
    assert_eq!(poll(&mut r, 0).0, vec![ask(11, 2), ask(11, 5)]);
    let (sent, _) = poll(&mut r, 1000 * MS);
    assert_eq!(sent, vec![ask(12, 2), ask(12, 5)], "overdue: the next broker, at once (the backoff has passed)");
    r.on_leaders(1001 * MS, 2, &[(Some(12), 0); 3]);
    r.on_leaders(1001 * MS, 5, &[(Some(12), 0)]);
    r.timed_out();
    let (sent, wake) = poll(&mut r, 1100 * MS);
    assert_eq!(sent, vec![ask(13, 2), ask(13, 5)]);
    assert_eq!(wake, Some((2100 * MS, false)));
    r.on_leaders(1101 * MS, 2, &[(Some(12), 0); 3]);
    r.on_leaders(1101 * MS, 5, &[(Some(12), 0)]);
    r.timed_out();
    assert_eq!(poll(&mut r, 1200 * MS).0, vec![ask(11, 2), ask(11, 5)], "round the brokers");
}

#[test]
fn metadata_older_than_the_max_age_is_refreshed() {
    let mut r = routes();
    poll(&mut r, 0);
    r.on_leaders(MS, 2, &[(Some(12), 0); 3]);
    r.on_leaders(MS, 5, &[(Some(12), 0)]);
    assert!(poll(&mut r, 300_000 * MS).0.is_empty(), "not yet 5 min old");
    assert_eq!(poll(&mut r, 300_001 * MS).0, vec![ask(11, 2), ask(11, 5)]);
}

#[test]
fn a_member_finds_its_coordinator_and_asks_again_when_none_is_named_refused_or_a_request_is_lost() {
    let mut r = Routes::new(B.to_vec(), &[(0, 1)], timing()).with_group(4);
    let (sent, _) = poll(&mut r, 0);
    assert_eq!(sent, vec![ask(11, 0), (11, ClusterMsg::FindCoordinator { group: 4 })]);
    r.on_coordinator(3, Some(13));
    assert_eq!(r.coordinator(), None, "another group's answer");
    r.on_coordinator(4, None);
    assert!(poll(&mut r, 50 * MS).0.iter().all(|(_, m)| !matches!(m, ClusterMsg::FindCoordinator { .. })));
    let (sent, _) = poll(&mut r, 100 * MS);
    assert!(sent.contains(&(11, ClusterMsg::FindCoordinator { group: 4 })), "after the backoff: {sent:?}");
    r.on_coordinator(4, Some(12));
    assert_eq!(r.coordinator(), Some(12));
    r.rediscover();
    let (sent, _) = poll(&mut r, 300 * MS);
    assert!(sent.contains(&(12, ClusterMsg::FindCoordinator { group: 4 })), "the next broker: {sent:?}");
    assert_eq!(r.coordinator(), None, "unknown while it is looked up again");
    r.on_coordinator(4, Some(13));
    // NOT_COORDINATOR: unknown, and asked again of the same broker.
    r.coordinator_unknown();
    assert_eq!(r.coordinator(), None);
    let (sent, _) = poll(&mut r, 400 * MS);
    assert!(sent.contains(&(12, ClusterMsg::FindCoordinator { group: 4 })), "the same broker: {sent:?}");
}

#[test]
fn the_timer_is_armed_once_for_the_earliest_wake_and_a_restart_forgets_everything() {
    let mut r = routes();
    assert!(r.arm(0, 100));
    assert!(!r.arm(0, 200), "a timer at 100 comes first");
    assert!(r.arm(0, 50), "an earlier wake needs its own timer");
    r.fired(50);
    assert!(r.arm(50, 200));
    poll(&mut r, 0);
    r.on_leaders(MS, 2, &[(Some(12), 0); 3]);
    r.restart();
    assert_eq!((r.leader(2, 0), r.epoch(2, 0)), (None, None));
    assert_eq!(poll(&mut r, 2 * MS).0, vec![ask(11, 2), ask(11, 5)], "asks again at once");
}

#[test]
fn every_leader_is_known_once_each_partition_has_one_until_one_is_forgotten() {
    let mut r = routes();
    let all_known = |r: &Routes| (0..3).all(|p| r.leader(2, p).is_some());
    assert!(!r.knows_every_leader(2) && !all_known(&r), "a new client knows no leader");
    r.on_leaders(0, 2, &[(Some(12), 0), (Some(13), 0), (None, 0)]);
    assert!(!r.knows_every_leader(2), "partition 2 is offline");
    r.on_leaders(0, 2, &[(Some(12), 0), (Some(13), 0), (Some(11), 1)]);
    assert!(r.knows_every_leader(2) && all_known(&r));
    assert!(!r.knows_every_leader(5), "topic 5 was not answered");
    assert!(!r.knows_every_leader(9), "a topic not routed");
    assert!(!r.not_leader(2, 1, 11), "11 does not lead partition 1: nothing forgotten");
    assert!(r.knows_every_leader(2));
    assert!(r.not_leader(2, 1, 13));
    assert!(!r.knows_every_leader(2) && !all_known(&r));
    r.on_leaders(0, 2, &[(Some(12), 0), (Some(12), 1), (Some(11), 1)]);
    assert!(r.knows_every_leader(2));
    r.on_leaders(0, 2, &[(Some(12), 0), (None, 0), (Some(11), 1)]);
    assert!(r.knows_every_leader(2) && all_known(&r), "an older epoch's view is ignored");
    r.restart();
    assert!(!r.knows_every_leader(2) && !all_known(&r), "a restart forgets every leader");
}
