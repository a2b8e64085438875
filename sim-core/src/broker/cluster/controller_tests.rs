//! Unit tests of the controller: its decisions on a bare [`ClusterState`]
//! (no engine), then its handlers through a [`Harness`].

use super::*;
use crate::broker::TopicSpec;
use crate::engine::{Effect, Emitted, Harness, Metric};

/// A state over `replicas` (per partition), on `brokers` brokers, min ISR 2.
fn state(brokers: usize, replicas: &[&[BrokerIx]], unclean: bool) -> ClusterState {
    ClusterState::new(brokers, replicas.iter().map(|r| r.to_vec()).collect(), 2, unclean)
}

/// Partition `p`'s (leader, ISR, leader epoch, partition epoch, unclean).
fn view(s: &ClusterState, p: u32) -> (Option<BrokerIx>, Vec<BrokerIx>, u32, u32, bool) {
    let st = s.part(p);
    (st.leader, st.isr.clone(), st.leader_epoch, st.partition_epoch, st.unclean)
}

/// A proposal by partition `p`'s current leader of ISR `isr`, at its current epochs.
fn proposal(s: &ClusterState, p: u32, isr: &[BrokerIx]) -> PartState {
    PartState { isr: isr.to_vec(), ..s.part(p).clone() }
}

#[test]
fn the_initial_state_follows_the_layout() {
    let s = state(3, &[&[0, 1, 2], &[1, 2, 0]], false);
    assert_eq!(view(&s, 0), (Some(0), vec![0, 1, 2], 0, 0, false));
    assert_eq!(view(&s, 1), (Some(1), vec![1, 2, 0], 0, 0, false));
    assert_eq!((s.version(), s.fenced_list()), (0, vec![]));
    assert_eq!(s.health(), Health::default());
}

#[test]
fn fencing_a_leader_elects_the_first_in_sync_replica_in_assignment_order() {
    // Partition 0's assignment is 2, 0, 1: with 2 gone, 0 comes first.
    let mut s = state(3, &[&[2, 0, 1], &[0, 1, 2]], false);
    let o = s.fence(&[2]);
    assert_eq!(view(&s, 0), (Some(0), vec![0, 1], 1, 1, false));
    // Partition 1 loses a follower: a new partition epoch, the same leader epoch.
    assert_eq!(view(&s, 1), (Some(0), vec![0, 1], 0, 1, false));
    assert_eq!((o.elections, o.unclean, o.offline, o.fenced.clone()), (1, 0, 0, vec![2]));
    let u = o.update.expect("a change is pushed");
    assert_eq!((u.since, u.version, u.fenced.clone()), (0, 1, vec![2]));
    assert_eq!(u.parts, vec![s.part(0).clone(), s.part(1).clone()]);
    assert!(s.is_fenced(2));
}

#[test]
fn fencing_skips_a_broker_already_fenced_and_fences_several_in_one_version() {
    let mut s = state(3, &[&[0, 1, 2]], false);
    let o = s.fence(&[0, 1]);
    assert_eq!(view(&s, 0), (Some(2), vec![2], 2, 1, false), "two leader changes, one partition epoch");
    assert_eq!((o.elections, o.fenced.clone(), s.version()), (2, vec![0, 1], 1));
    let again = s.fence(&[0]);
    assert_eq!((again, s.version()), (Outcome::default(), 1), "nothing changes, no new version");
}

#[test]
fn the_last_in_sync_replica_fenced_leaves_the_partition_offline_until_it_returns() {
    let mut s = state(2, &[&[0, 1]], false);
    // The leader drops its follower, then is fenced: nobody in sync is left.
    let v = s.alter_partition(0, &proposal(&s, 0, &[0])).unwrap();
    assert!(v.accepted);
    let o = s.fence(&[0]);
    assert_eq!(view(&s, 0), (None, vec![0], 1, 2, false), "the ISR keeps its last member");
    assert_eq!((o.elections, o.offline), (0, 1));
    assert_eq!(s.health().offline, 1);
    // Broker 1 is alive but out of sync: no unclean election without the setting.
    let b1 = s.heartbeat(1, 0, s.version());
    assert_eq!((b1.outcome, view(&s, 0).0), (Outcome::default(), None));
    // Broker 0 returns (its registration is at version 0): unfenced and elected.
    let b0 = s.heartbeat(0, 0, 1);
    assert_eq!((b0.outcome.unfenced.clone(), b0.outcome.elections), (vec![0], 1));
    assert_eq!(view(&s, 0), (Some(0), vec![0], 2, 3, false));
    assert_eq!(s.health().offline, 0);
}

#[test]
fn an_unclean_election_happens_only_when_enabled_and_is_marked() {
    for unclean in [false, true] {
        let mut s = state(3, &[&[0, 1, 2]], unclean);
        assert!(s.alter_partition(0, &proposal(&s, 0, &[0])).unwrap().accepted);
        let o = s.fence(&[0]);
        if unclean {
            assert_eq!(view(&s, 0), (Some(1), vec![1], 1, 2, true), "the ISR becomes the new leader alone");
            assert_eq!((o.elections, o.unclean, o.offline), (1, 1, 0));
        } else {
            assert_eq!(view(&s, 0), (None, vec![0], 1, 2, false));
            assert_eq!((o.elections, o.unclean, o.offline), (0, 0, 1));
        }
    }
}

#[test]
fn a_clean_election_clears_the_unclean_mark() {
    let mut s = state(3, &[&[0, 1, 2]], true);
    s.alter_partition(0, &proposal(&s, 0, &[0])).unwrap();
    s.fence(&[0]);
    assert!(s.part(0).unclean);
    // The unclean leader takes 2 back in, then is fenced: 2 is elected cleanly.
    assert!(s.alter_partition(1, &proposal(&s, 0, &[1, 2])).unwrap().accepted);
    let o = s.fence(&[1]);
    assert_eq!((view(&s, 0).0, view(&s, 0).4, o.unclean), (Some(2), false, 0));
}

#[test]
fn with_unclean_elections_an_offline_partition_goes_to_the_first_replica_back() {
    let mut s = state(3, &[&[0, 1, 2]], true);
    s.fence(&[1, 2]);
    s.fence(&[0]);
    assert_eq!(view(&s, 0).0, None, "every replica fenced");
    // 2 returns first: not in sync, but the setting lets it lead.
    let b = s.heartbeat(2, 0, s.version());
    assert_eq!((b.outcome.elections, b.outcome.unclean), (1, 1));
    assert_eq!((view(&s, 0).0, view(&s, 0).1, view(&s, 0).4), (Some(2), vec![2], true));
}

#[test]
fn a_stale_or_invalid_proposal_is_refused_with_the_state_in_force() {
    let mut s = state(3, &[&[0, 1, 2]], false);
    let old = proposal(&s, 0, &[0, 1]);
    s.fence(&[2]); // a new partition epoch
    let now = s.part(0).clone();
    let version = s.version();
    let cases = [
        (0, old),                                                    // an old partition epoch
        (0, PartState { leader_epoch: 1, ..proposal(&s, 0, &[0]) }), // a leader epoch to come
        (1, proposal(&s, 0, &[0, 1])),                               // not from the leader
        (0, proposal(&s, 0, &[1])),                                  // without the leader
        (0, proposal(&s, 0, &[0, 0])),                               // a member twice
        (0, proposal(&s, 0, &[0, 2])),                               // 2 is fenced
        (0, proposal(&s, 0, &[0, 3])),                               // not a replica
    ];
    for (b, p) in cases {
        let v = s.alter_partition(b, &p).unwrap();
        assert!(!v.accepted, "{p:?} from {b}");
        assert_eq!((v.state, v.outcome), (now.clone(), Outcome::default()));
    }
    assert_eq!((s.part(0), s.version()), (&now, version));
    assert!(s.alter_partition(0, &PartState { partition: 7, ..now }).is_none(), "no such partition");
}

#[test]
fn an_accepted_proposal_bumps_the_partition_epoch_and_counts_shrinks_and_expands() {
    let mut s = state(3, &[&[0, 1, 2]], false);
    let v = s.alter_partition(0, &proposal(&s, 0, &[0])).unwrap();
    assert!(v.accepted);
    assert_eq!((view(&s, 0), v.outcome.shrinks, v.outcome.expands), ((Some(0), vec![0], 0, 1, false), 1, 0));
    assert_eq!(v.state, *s.part(0));
    assert_eq!(v.outcome.update.as_ref().map(|u| (u.since, u.version)), Some((0, 1)));
    assert_eq!(s.health(), Health { under_replicated: 1, under_min_isr: 1, ..Health::default() });
    // Proposed out of order: kept in assignment order.
    let v = s.alter_partition(0, &proposal(&s, 0, &[2, 0, 1])).unwrap();
    assert_eq!((view(&s, 0).1, view(&s, 0).3, v.outcome.expands, v.outcome.shrinks), (vec![0, 1, 2], 2, 1, 0));
    // The same ISR again: accepted, nothing changes.
    let v = s.alter_partition(0, &proposal(&s, 0, &[0, 1, 2])).unwrap();
    assert!(v.accepted);
    assert_eq!((v.outcome, s.version(), view(&s, 0).3), (Outcome::default(), 2, 2));
}

#[test]
fn a_restarted_broker_is_fenced_then_unfenced_once_it_has_caught_up() {
    let mut s = state(3, &[&[0, 1, 2], &[1, 0, 2]], false);
    assert!(s.heartbeat(0, 0, 0).current);
    s.fence(&[2]); // version 1
                   // Broker 0 restarts: incarnation 1, nothing applied.
    let b = s.heartbeat(0, 1, 0);
    assert!(b.current);
    assert_eq!((b.outcome.fenced.clone(), b.outcome.elections, s.version()), (vec![0], 1, 2));
    assert_eq!((view(&s, 0).0, view(&s, 0).1), (Some(1), vec![1]));
    assert_eq!((view(&s, 1).0, view(&s, 1).1), (Some(1), vec![1]));
    let answer = b.answer.expect("it lacks everything");
    assert_eq!((answer.since, answer.version, answer.parts.len(), answer.fenced), (0, 2, 2, vec![0, 2]));
    // Not caught up yet: still fenced. A heartbeat of the old incarnation is ignored.
    assert_eq!(s.heartbeat(0, 1, 1).outcome, Outcome::default());
    assert!(s.is_fenced(0));
    assert_eq!(s.heartbeat(0, 0, 2), Beat::default());
    assert!(s.is_fenced(0));
    // Caught up with its registration: unfenced (a new version, no election needed).
    let b = s.heartbeat(0, 1, 2);
    assert_eq!((b.outcome.unfenced.clone(), b.outcome.elections, s.version()), (vec![0], 0, 3));
    assert!(!s.is_fenced(0));
    assert_eq!(b.answer.map(|a| (a.since, a.version, a.parts.len(), a.fenced)), Some((2, 3, 0, vec![2])));
}

#[test]
fn the_first_incarnation_heard_registers_the_broker_whatever_its_number() {
    let mut s = state(2, &[&[0, 1]], false);
    assert_eq!(s.heartbeat(0, 3, 0), Beat { current: true, ..Beat::default() });
    assert!(!s.is_fenced(0));
    assert!(!s.heartbeat(0, 2, 0).current, "older than the one registered");
    assert_eq!(s.heartbeat(0, 4, 0).outcome.fenced, vec![0], "a restart");
}

#[test]
fn a_restart_of_a_fenced_broker_makes_it_catch_up_again() {
    let mut s = state(2, &[&[0, 1]], false);
    s.heartbeat(1, 0, 0);
    s.fence(&[1]); // version 1; registration of 1 stays at 0
    let b = s.heartbeat(1, 1, 0);
    assert_eq!((b.outcome.fenced.len(), s.version()), (0, 2), "already fenced: a registration only");
    assert!(s.heartbeat(1, 1, 1).outcome.unfenced.is_empty(), "behind its new registration");
    assert_eq!(s.heartbeat(1, 1, 2).outcome.unfenced, vec![1]);
}

#[test]
fn a_heartbeat_is_answered_with_what_the_broker_lacks() {
    let mut s = state(3, &[&[0, 1, 2], &[1, 2, 0], &[2, 0, 1]], false);
    assert_eq!(s.heartbeat(0, 0, 0).answer, None, "up to date");
    s.alter_partition(1, &proposal(&s, 1, &[1, 2])).unwrap(); // version 1: partition 1
    s.alter_partition(2, &proposal(&s, 2, &[2, 1])).unwrap(); // version 2: partition 2
    let a = s.heartbeat(0, 0, 1).answer.expect("behind");
    assert_eq!((a.since, a.version, a.parts), (1, 2, vec![s.part(2).clone()]));
    let a = s.heartbeat(0, 0, 0).answer.expect("behind");
    assert_eq!(a.parts, vec![s.part(1).clone(), s.part(2).clone()]);
    assert_eq!(s.heartbeat(0, 0, 2).answer, None);
}

#[test]
fn health_counts_only_partitions_with_a_leader_as_under_replicated() {
    let mut s = state(3, &[&[0, 1], &[1, 2], &[2, 0]], false);
    s.alter_partition(0, &proposal(&s, 0, &[0])).unwrap();
    s.fence(&[0]);
    // Partition 0 offline; 2 has lost follower 0; 1 is whole.
    assert_eq!(s.health(), Health { offline: 1, under_replicated: 1, under_min_isr: 1, fenced: 1 });
}

// ---- The component, through its handlers ----

const CONTROLLER: NodeId = 0;
const SESSION: Duration = 9_000 * crate::time::NS_PER_MS;
const SEC: Duration = 1_000 * crate::time::NS_PER_MS;

/// A controller of 3 brokers (nodes 1, 2, 3), one topic of 3 partitions,
/// replicas 3, min ISR 2: broker b leads partition b.
fn controller(unclean: bool) -> Controller {
    let mut spec = LogSpec {
        brokers: Some(3),
        replicas: 3,
        min_insync_replicas: 2,
        unclean_leader_election: unclean,
        ..LogSpec::default()
    };
    spec.topics.insert(
        "t".into(),
        TopicSpec {
            partitions: 3,
            retention_messages: None,
            retention_ms: None,
            expected_rate_per_s: None,
            partition_rate_per_s: None,
        },
    );
    let layout = Layout::new(&spec, CONTROLLER, vec![1, 2, 3]);
    Controller::new(&spec, layout)
}

fn heartbeat(broker: BrokerIx, incarnation: u32, version: u64) -> ClusterMsg {
    ClusterMsg::BrokerHeartbeat { broker, incarnation, version }
}

/// The metadata updates sent, by receiving node.
fn updates(e: &Emitted) -> Vec<(NodeId, MetadataUpdate)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Cluster(ClusterMsg::Metadata(u)) => Some((to, *u)),
            _ => None,
        })
        .collect()
}

/// The last value raised for metric `name`.
fn max_metric(e: &Emitted, name: &str) -> Option<f64> {
    e.0.iter().rev().find_map(|x| match x {
        Effect::Metric(Metric::Max(n, v)) if *n == name => Some(*v),
        _ => None,
    })
}

fn gauges(c: &Controller) -> Vec<(String, f64)> {
    let mut g = Gauges::default();
    c.gauges(0, &mut g);
    g.into_vec()
}

#[test]
fn a_silent_broker_is_fenced_at_its_session_timeout_and_every_broker_is_told() {
    let mut h = Harness::new(CONTROLLER);
    let mut c = controller(false);
    let e = h.start(&mut c);
    assert_eq!(e.timers::<ControllerTimer>(), vec![(SESSION, ControllerTimer::SessionCheck)]);
    assert_eq!(max_metric(&e, "offline_partitions_max"), Some(0.0));
    // Brokers 1 and 2 heartbeat at 5 s; broker 0 stays silent.
    h.now = 5 * SEC;
    for b in [1, 2] {
        let e = h.message(&mut c, NodeId::from(b) + 1, heartbeat(b, 0, 0));
        assert!(e.is_empty(), "up to date, and the check is already set: {e:?}");
    }
    h.now = SESSION;
    let e = h.timer(&mut c, ControllerTimer::SessionCheck);
    assert!(c.state().is_fenced(0));
    assert_eq!((e.metric("brokers_fenced"), e.metric("leader_elections")), (1.0, 1.0));
    let sent = updates(&e);
    assert_eq!(sent.iter().map(|(to, _)| *to).collect::<Vec<_>>(), vec![1, 2, 3], "pushed to every broker");
    let u = &sent[0].1;
    assert_eq!((u.since, u.version, u.fenced.clone()), (0, 1, vec![0]));
    assert_eq!(u.parts.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1, 2], "0 left every ISR");
    assert_eq!(u.parts[0].leader, Some(1));
    // The next check is due when the others' sessions end (5 s + 9 s).
    assert_eq!(e.timers::<ControllerTimer>(), vec![(5 * SEC, ControllerTimer::SessionCheck)]);
    assert_eq!(max_metric(&e, "under_replicated_partitions_max"), Some(3.0));
    let g = gauges(&c);
    assert!(g.contains(&("fenced_brokers".into(), 1.0)) && g.contains(&("under_replicated_partitions".into(), 3.0)));
    assert!(g.contains(&("offline_partitions".into(), 0.0)) && g.contains(&("under_min_isr_partitions".into(), 0.0)));
}

#[test]
fn a_check_before_any_session_ends_fences_nobody_and_sets_the_next() {
    let mut h = Harness::new(CONTROLLER);
    let mut c = controller(false);
    h.start(&mut c);
    h.now = 4 * SEC;
    for b in 0..3 {
        h.message(&mut c, NodeId::from(b) + 1, heartbeat(b, 0, 0));
    }
    h.now = SESSION;
    let e = h.timer(&mut c, ControllerTimer::SessionCheck);
    assert!(updates(&e).is_empty() && c.state().fenced_list().is_empty());
    assert_eq!(e.timers::<ControllerTimer>(), vec![(4 * SEC, ControllerTimer::SessionCheck)]);
}

#[test]
fn a_fenced_broker_heard_again_is_unfenced_and_answered_with_what_it_missed() {
    let mut h = Harness::new(CONTROLLER);
    let mut c = controller(false);
    h.start(&mut c);
    h.now = SESSION;
    let e = h.timer(&mut c, ControllerTimer::SessionCheck);
    // All three fenced, in index order: each partition's ISR keeps broker
    // 2, the last fenced, and every partition is offline.
    assert_eq!(c.state().fenced_list(), vec![0, 1, 2]);
    assert_eq!((e.metric("offline_partitions"), max_metric(&e, "offline_partitions_max")), (3.0, Some(3.0)));
    assert!(e.timers::<ControllerTimer>().is_empty(), "no session to watch");
    h.now = SESSION + SEC;
    let e = h.message(&mut c, 2, heartbeat(1, 0, 0));
    let pushed = updates(&e);
    assert!(pushed.iter().filter(|(to, _)| *to != 2).all(|(_, u)| u.parts.is_empty()), "{pushed:?}");
    // Its session is watched again.
    assert_eq!(e.timers::<ControllerTimer>(), vec![(SESSION, ControllerTimer::SessionCheck)]);
    assert_eq!(c.state().part(0).leader, None, "broker 1 is back but not in sync");
    let e = h.message(&mut c, 3, heartbeat(2, 0, 0));
    // Broker 2 leads every partition again; the others hear by push.
    let sent = updates(&e);
    let to: Vec<NodeId> = sent.iter().map(|(to, _)| *to).collect();
    assert_eq!(to, vec![1, 2, 3], "the push to the others, then the answer");
    let (push, answer) = (&sent[0].1, &sent[2].1);
    assert_eq!((push.since, push.version, push.parts.len(), push.fenced.clone()), (2, 3, 3, vec![0]));
    assert_eq!((answer.since, answer.version, answer.parts.len()), (0, 3, 3), "all it missed");
    assert_eq!(e.metric("leader_elections"), 3.0);
    assert!(e.timers::<ControllerTimer>().is_empty(), "a check is already pending");
}

#[test]
fn a_controller_restart_keeps_the_state_and_gives_every_broker_a_fresh_session() {
    let mut h = Harness::new(CONTROLLER);
    let mut c = controller(false);
    h.start(&mut c);
    h.now = SESSION;
    h.message(&mut c, 1, heartbeat(0, 0, 0));
    h.message(&mut c, 2, heartbeat(1, 0, 0));
    h.timer(&mut c, ControllerTimer::SessionCheck); // 2 fenced
    let before = (c.state().version(), c.state().part(2).clone());
    c.crash();
    h.now = 30 * SEC; // long after every session would have ended
    let e = h.restart(&mut c);
    assert_eq!((c.state().version(), c.state().part(2).clone()), before);
    assert_eq!(c.state().fenced_list(), vec![2]);
    assert_eq!(e.timers::<ControllerTimer>(), vec![(SESSION, ControllerTimer::SessionCheck)]);
    assert!(updates(&e).is_empty());
}

#[test]
fn an_isr_proposal_is_answered_to_its_sender_and_pushed_when_accepted() {
    let mut h = Harness::new(CONTROLLER);
    let mut c = controller(false);
    h.start(&mut c);
    let state = PartState { isr: vec![0, 1], ..c.state().part(0).clone() };
    let e = h.message(&mut c, 1, ClusterMsg::AlterPartition { broker: 0, state: Box::new(state.clone()) });
    let acks: Vec<_> =
        e.sent_to(1).into_iter().filter(|m| matches!(m, Msg::Cluster(ClusterMsg::AlterPartitionAck { .. }))).collect();
    let want = PartState { partition_epoch: 1, ..state.clone() };
    assert_eq!(
        acks,
        vec![Msg::Cluster(ClusterMsg::AlterPartitionAck { accepted: true, state: Box::new(want.clone()) })]
    );
    assert_eq!((updates(&e).len(), e.metric("isr_shrinks")), (3, 1.0));
    // The same proposal again is stale now.
    let e = h.message(&mut c, 1, ClusterMsg::AlterPartition { broker: 0, state: Box::new(state) });
    assert_eq!(
        e.sent(),
        vec![(1, Msg::Cluster(ClusterMsg::AlterPartitionAck { accepted: false, state: Box::new(want) }))]
    );
}

#[test]
fn the_timer_word_round_trips() {
    let t = ControllerTimer::SessionCheck;
    assert_eq!(ControllerTimer::from_word(t.to_word()), Some(t));
    assert_eq!(ControllerTimer::from_word(0), None);
}
