//! Unit tests of dead-letter queues and their replay, driven through the
//! queue broker's handlers with the test harness.

use super::{QueueBroker, QueueSpec, QueueTimer};
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{publish, QueueMsg};
use crate::time::NS_PER_MS;
use std::collections::BTreeMap;

const MS: u64 = NS_PER_MS;
const WORK: NodeId = 10;
const DLQ: NodeId = 9;
const P: NodeId = 1;
const C: NodeId = 2;

/// (to, id) of every publish sent.
fn published(e: &Emitted) -> Vec<(NodeId, MsgId)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::Publish { rec, .. }) => Some((to, rec.id)),
            _ => None,
        })
        .collect()
}

fn held(b: &QueueBroker) -> Vec<MsgId> {
    let mut out = Vec::new();
    b.held(&mut out);
    out
}

/// The dead-letter broker: every queue holds dead letters; it replays to
/// WORK at 100 ms.
fn dead_letter_broker(h: &mut Harness) -> QueueBroker {
    let mut b =
        QueueBroker::new(&QueueSpec::default(), None, BTreeMap::new()).holding_dead_letters().replaying(WORK, 100 * MS);
    assert_eq!(h.start(&mut b).timers::<QueueTimer>(), [(100 * MS, QueueTimer::Replay)]);
    b
}

#[test]
fn a_dead_letter_queue_reports_each_message_it_takes() {
    let mut h = Harness::new(DLQ);
    let mut b = dead_letter_broker(&mut h);
    for id in [3, 5] {
        // What the work queue's dead-lettering sends: a publish without an ack.
        assert_eq!(h.message(&mut b, WORK, publish(Record::new(id, 0), false, 1)).dead_lettered(), [id]);
    }
    assert_eq!(held(&b), [3, 5], "held for a person or a replay");
}

#[test]
fn a_work_queue_reports_nothing_dead_lettered() {
    let mut h = Harness::new(WORK);
    let mut b = QueueBroker::new(&QueueSpec::default(), Some(DLQ), BTreeMap::new());
    assert!(h.message(&mut b, P, publish(Record::new(3, 0), false, 1)).dead_lettered().is_empty());
    h.message(&mut b, C, QueueMsg::Subscribe { prefetch: 0, session: 1, auto_ack: false });
    // Rejected: sent to the dead-letter broker, which counts it when it takes it.
    let e = h.message(&mut b, C, QueueMsg::Nack { tag: 0, requeue: false });
    assert_eq!((published(&e), e.dead_lettered()), (vec![(DLQ, 3)], vec![]));
}

#[test]
fn the_replay_moves_what_the_queue_holds_once_to_the_work_broker() {
    let mut h = Harness::new(DLQ);
    let mut b = dead_letter_broker(&mut h);
    for id in [3, 5, 8] {
        h.message(&mut b, WORK, publish(Record::new(id, 0), false, 1));
    }
    h.now = 100 * MS;
    let e = h.timer(&mut b, QueueTimer::Replay);
    assert_eq!(published(&e), [(WORK, 3), (WORK, 5), (WORK, 8)], "oldest first, same ids");
    assert_eq!((e.metric("replayed"), e.queue_depth()), (3.0, Some(0)));
    assert!(held(&b).is_empty());
    // What fails again comes back and stays: the shovel has done its work.
    assert_eq!(h.message(&mut b, WORK, publish(Record::new(5, 0), false, 1)).dead_lettered(), [5]);
    assert!(h.timer(&mut b, QueueTimer::Replay).sent().is_empty(), "one replay only");
    assert_eq!(held(&b), [5]);
}

#[test]
fn a_crash_before_the_replay_sets_its_timer_again_at_the_restart() {
    let mut h = Harness::new(DLQ);
    let mut b = dead_letter_broker(&mut h);
    h.message(
        &mut b,
        WORK,
        QueueMsg::Publish {
            rec: Record::new(3, 0),
            want_ack: false,
            attempt: 1,
            channel: 0,
            tag: 0,
            persistent: true,
            route: 0,
            expiration: crate::protocol::NO_EXPIRATION,
        },
    );
    h.now = 40 * MS;
    b.crash();
    h.now = 60 * MS;
    assert_eq!(h.restart(&mut b).timers::<QueueTimer>(), [(40 * MS, QueueTimer::Replay)]);
    h.now = 100 * MS;
    assert_eq!(published(&h.timer(&mut b, QueueTimer::Replay)), [(WORK, 3)], "the persistent message survived");
}

#[test]
fn a_named_queue_flagged_as_dead_letter_queue_counts_what_dead_letters_it_takes() {
    // work dead-letters through the default exchange to `park`, flagged.
    let table = r#"
dead_letter_exchange = ""
[queues.work]
dead_letter_routing_key = "park"
[queues.park]
dead_letter_queue = true
"#;
    let spec: QueueSpec = toml::from_str(table).expect("a valid broker table");
    let publishers = BTreeMap::from([("p".to_string(), (String::new(), vec!["work".to_string()]))]);
    let (router, routes, dlx) = super::routing::resolve(&spec, &publishers);
    let route = BTreeMap::from([(C, 1)]); // C reads `work` (queue 1: names in order)
    let mut b = QueueBroker::new(&spec, None, route).with_routing(router, routes, dlx);
    let mut h = Harness::new(WORK);
    let mut work = publish(Record::new(3, 0), false, 1);
    if let QueueMsg::Publish { route, .. } = &mut work {
        *route = 1;
    }
    assert!(h.message(&mut b, P, work).dead_lettered().is_empty(), "the work queue is not a dead-letter queue");
    h.message(&mut b, C, QueueMsg::Subscribe { prefetch: 0, session: 1, auto_ack: false });
    let e = h.message(&mut b, C, QueueMsg::Nack { tag: 0, requeue: false });
    assert_eq!(e.dead_lettered(), [3], "parked");
    assert_eq!(held(&b), [3]);
}
