//! Unit tests of the queue broker, driven through its handlers with the
//! test harness: no engine, no network; each test plays the messages and
//! timers a scenario would bring, in the order it wants.

use super::{Overflow, QueueBroker, QueueSpec, QueueTimer, SubscriptionSpec};
use crate::engine::{Component, Effect, Emitted, Harness, Metric};
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::{publish, publish_ack, QueueMsg};
use crate::time::NS_PER_MS;
use crate::units::Millis;
use std::collections::BTreeMap;

const MS: u64 = NS_PER_MS;
const BROKER: NodeId = 10;
const P: NodeId = 1;
const C1: NodeId = 2;
const C2: NodeId = 3;
const DLQ: NodeId = 9;

fn rec(id: MsgId) -> Record {
    Record::new(id, 0)
}

/// A point-to-point broker; `spec` defaults otherwise.
fn broker(spec: QueueSpec, dead_letter: Option<NodeId>) -> (Harness, QueueBroker) {
    let mut h = Harness::new(BROKER);
    let mut b = QueueBroker::new(&spec, dead_letter, BTreeMap::new());
    assert!(h.start(&mut b).is_empty(), "a queue broker does nothing until spoken to");
    (h, b)
}

fn plain() -> (Harness, QueueBroker) {
    broker(QueueSpec::default(), None)
}

fn subscribe(h: &mut Harness, b: &mut QueueBroker, c: NodeId, prefetch: u32, session: u32) -> Emitted {
    h.message(b, c, QueueMsg::Subscribe { prefetch, session, auto_ack: false })
}

/// Publishes `id` from the producer, asking for an ack.
fn send(h: &mut Harness, b: &mut QueueBroker, id: MsgId) -> Emitted {
    h.message(b, P, publish(rec(id), true, 1))
}

/// (consumer, id, tag, redelivered) of every delivery.
fn delivered(e: &Emitted) -> Vec<(NodeId, MsgId, u64, bool)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::Deliver { rec, tag, redelivered }) => Some((to, rec.id, tag, redelivered)),
            _ => None,
        })
        .collect()
}

/// (id, accepted) of every publish ack sent to the producer.
fn publish_acks(e: &Emitted) -> Vec<(MsgId, bool)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::PublishAck { id, accepted, .. }) if to == P => Some((id, accepted)),
            _ => None,
        })
        .collect()
}

fn held(b: &QueueBroker) -> Vec<MsgId> {
    let mut out = Vec::new();
    b.held(&mut out);
    out
}

/// The sum of what was added to the named metric.
fn metric(e: &Emitted, name: &str) -> f64 {
    e.metric(name)
}

/// The last queue depth reported.
fn depth(e: &Emitted) -> Option<u64> {
    e.0.iter().rev().find_map(|x| match x {
        Effect::Metric(Metric::QueueDepth(d)) => Some(*d),
        _ => None,
    })
}

#[test]
fn a_publish_that_wants_an_ack_is_acked_and_one_that_does_not_gets_no_answer() {
    let (mut h, mut b) = plain();
    let e = send(&mut h, &mut b, 0);
    assert_eq!(e.sent(), vec![(P, Msg::Queue(publish_ack(0, true, 1, 0)))]);
    assert_eq!(depth(&e), Some(1));
    let e = h.message(&mut b, P, publish(rec(1), false, 1));
    assert!(e.sent().is_empty(), "fire-and-forget: no ack");
    assert_eq!(held(&b), vec![0, 1], "both wait in the queue, in order");
}

#[test]
fn a_full_queue_refuses_a_publish_and_unacked_deliveries_do_not_count_against_capacity() {
    let spec = QueueSpec { capacity: Some(2), overflow: Overflow::RejectPublish, ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, None);
    send(&mut h, &mut b, 0);
    send(&mut h, &mut b, 1);
    let e = send(&mut h, &mut b, 2);
    assert_eq!(publish_acks(&e), vec![(2, false)]);
    assert_eq!(e.errors(), vec!["rejected"]);
    assert_eq!(held(&b), vec![0, 1], "the refused message is not kept");
    // A consumer takes message 0: the queue holds one waiting message, so
    // there is room again.
    assert_eq!(delivered(&subscribe(&mut h, &mut b, C1, 1, 1)), vec![(C1, 0, 0, false)]);
    let e = send(&mut h, &mut b, 3);
    assert_eq!(publish_acks(&e), vec![(3, true)]);
    assert!(e.errors().is_empty());
}

#[test]
fn subscribe_is_confirmed_and_a_repeat_of_the_same_session_changes_nothing() {
    let (mut h, mut b) = plain();
    send(&mut h, &mut b, 0);
    send(&mut h, &mut b, 1);
    let e = subscribe(&mut h, &mut b, C1, 1, 1);
    assert_eq!(e.sent()[0], (C1, Msg::Queue(QueueMsg::Subscribed { session: 1 })));
    assert_eq!(delivered(&e), vec![(C1, 0, 0, false)]);
    // The confirmation was lost and the consumer asks again: confirmed
    // again, and message 0 stays with it (no redelivery, no new credit).
    let e = subscribe(&mut h, &mut b, C1, 1, 1);
    assert_eq!(e.sent(), vec![(C1, Msg::Queue(QueueMsg::Subscribed { session: 1 }))]);
    // A new session is a reconnect: what it held comes back, redelivered.
    let e = subscribe(&mut h, &mut b, C1, 1, 2);
    assert_eq!(e.sent()[0], (C1, Msg::Queue(QueueMsg::Subscribed { session: 2 })));
    assert_eq!(delivered(&e), vec![(C1, 0, 1, true)]);
}

#[test]
fn deliveries_respect_prefetch_and_go_round_robin() {
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 2, 1);
    subscribe(&mut h, &mut b, C2, 2, 1);
    let mut to = Vec::new();
    for id in 0..5 {
        to.extend(delivered(&send(&mut h, &mut b, id)).into_iter().map(|(c, id, _, _)| (c, id)));
    }
    assert_eq!(to, vec![(C1, 0), (C2, 1), (C1, 2), (C2, 3)], "two each, alternating; then no credit left");
    assert_eq!(held(&b), vec![4, 0, 1, 2, 3], "message 4 waits (held lists the queue, then the unacked)");
}

#[test]
fn an_ack_frees_credit_and_the_next_message_is_delivered() {
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 1, 1);
    let tag = delivered(&send(&mut h, &mut b, 0))[0].2;
    assert!(delivered(&send(&mut h, &mut b, 1)).is_empty(), "prefetch 1: message 1 waits");
    assert!(delivered(&h.message(&mut b, C1, QueueMsg::Ack { tag: 99 })).is_empty(), "an unknown tag frees nothing");
    let e = h.message(&mut b, C1, QueueMsg::Ack { tag });
    assert_eq!(delivered(&e), vec![(C1, 1, tag + 1, false)]);
    assert_eq!(held(&b), vec![1], "message 0 is forgotten once acked");
}

#[test]
fn an_auto_ack_consumer_gets_messages_without_limit_and_the_broker_forgets_them() {
    let (mut h, mut b) = plain();
    h.message(&mut b, C1, QueueMsg::Subscribe { prefetch: 1, session: 1, auto_ack: true });
    let mut ids = Vec::new();
    for id in 0..3 {
        let e = send(&mut h, &mut b, id);
        assert!(e.timers::<QueueTimer>().is_empty(), "no redelivery deadline for an auto-ack delivery");
        ids.extend(delivered(&e).into_iter().map(|d| d.1));
    }
    assert_eq!(ids, vec![0, 1, 2], "prefetch does not apply");
    assert!(held(&b).is_empty(), "forgotten as sent: a crash of the consumer loses them");
    assert!(delivered(&h.message(&mut b, C1, Notice::PeerDown)).is_empty());
}

#[test]
fn a_nack_with_requeue_redelivers_the_message_first_marked_redelivered() {
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 1, 1);
    let tag = delivered(&send(&mut h, &mut b, 0))[0].2;
    send(&mut h, &mut b, 1);
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag, requeue: true });
    assert_eq!(delivered(&e), vec![(C1, 0, tag + 1, true)], "back at the head, ahead of message 1");
    assert!(e.errors().is_empty());
}

#[test]
fn a_nack_without_requeue_dead_letters_and_delivers_the_next() {
    let (mut h, mut b) = broker(QueueSpec::default(), Some(DLQ));
    subscribe(&mut h, &mut b, C1, 1, 1);
    let tag = delivered(&send(&mut h, &mut b, 0))[0].2;
    send(&mut h, &mut b, 1);
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag, requeue: false });
    assert_eq!(e.errors(), vec!["rejected-by-consumer"]);
    assert!(e.sent().contains(&(DLQ, Msg::Queue(publish(rec(0), false, 1)))), "{:?}", e.sent());
    assert_eq!(delivered(&e), vec![(C1, 1, tag + 1, false)]);
    assert_eq!(held(&b), vec![1], "message 0 left this broker");
}

#[test]
fn a_message_returned_more_often_than_the_delivery_limit_is_dead_lettered_at_the_return() {
    let (mut h, mut b) = broker(QueueSpec { delivery_limit: Some(1), ..QueueSpec::default() }, Some(DLQ));
    subscribe(&mut h, &mut b, C1, 1, 1);
    let first = delivered(&send(&mut h, &mut b, 0))[0].2;
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag: first, requeue: true });
    let second = delivered(&e)[0].2;
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag: second, requeue: true });
    assert!(delivered(&e).is_empty(), "not delivered a third time");
    assert_eq!(e.errors(), vec!["delivery-limit"]);
    assert_eq!(e.sent(), vec![(DLQ, Msg::Queue(publish(rec(0), false, 1)))]);
}

/// C1 holds messages 0 and 1 (delivered at time 0, redelivery timeout
/// 100 ms); C2 subscribed after them with room for both.
fn two_held_by_c1() -> (Harness, QueueBroker) {
    let spec = QueueSpec { redelivery_timeout_ms: Millis(100.0), ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, None);
    subscribe(&mut h, &mut b, C1, 2, 1);
    let e = send(&mut h, &mut b, 0);
    assert_eq!(e.timers::<QueueTimer>(), vec![(100 * MS, QueueTimer::Redeliver(0))]);
    send(&mut h, &mut b, 1);
    h.now = 10 * MS;
    assert!(delivered(&subscribe(&mut h, &mut b, C2, 2, 1)).is_empty());
    (h, b)
}

#[test]
fn the_redelivery_timeout_cancels_the_consumer_and_takes_back_its_deliveries() {
    let (mut h, mut b) = two_held_by_c1();
    h.now = 99 * MS;
    assert!(h.timer(&mut b, QueueTimer::Redeliver(0)).sent().is_empty(), "before the deadline nothing happens");
    h.now = 100 * MS;
    let e = h.timer(&mut b, QueueTimer::Redeliver(0));
    assert_eq!(e.errors(), vec!["consumer-timeout"]);
    assert!(e.sent().contains(&(C1, Msg::Queue(QueueMsg::Cancelled { session: 1 }))));
    let again: Vec<_> = delivered(&e).into_iter().map(|(c, id, _, re)| (c, id, re)).collect();
    assert_eq!(again, vec![(C2, 0, true), (C2, 1, true)], "both come back, oldest first, to the live consumer");
    // C1 gets nothing more until it subscribes again, and is told again.
    assert!(e.timers::<QueueTimer>().contains(&(100 * MS, QueueTimer::CancelNotice(0))));
    assert!(delivered(&send(&mut h, &mut b, 2)).is_empty(), "C2 is full and C1 is cancelled");
    h.now = 200 * MS;
    let e = h.timer(&mut b, QueueTimer::CancelNotice(0));
    assert!(e.sent().contains(&(C1, Msg::Queue(QueueMsg::Cancelled { session: 1 }))));
}

#[test]
fn an_ack_before_the_redelivery_deadline_keeps_the_consumer() {
    let (mut h, mut b) = two_held_by_c1();
    h.message(&mut b, C1, QueueMsg::Ack { tag: 0 });
    h.message(&mut b, C1, QueueMsg::Ack { tag: 1 });
    h.now = 100 * MS;
    let e = h.timer(&mut b, QueueTimer::Redeliver(0));
    assert!(e.sent().is_empty() && e.errors().is_empty(), "{e:?}");
    assert!(held(&b).is_empty());
}

#[test]
fn a_peer_down_from_a_consumer_takes_back_what_it_held() {
    let (mut h, mut b) = two_held_by_c1();
    let e = h.message(&mut b, C1, Notice::PeerDown);
    let again: Vec<_> = delivered(&e).into_iter().map(|(c, id, _, re)| (c, id, re)).collect();
    assert_eq!(again, vec![(C2, 0, true), (C2, 1, true)]);
    assert!(e.sent().contains(&(C1, Msg::Queue(QueueMsg::Cancelled { session: 1 }))));
    assert!(h.message(&mut b, C1, Notice::PeerDown).is_empty(), "a second notice changes nothing");
    assert!(h.message(&mut b, P, Notice::PeerDown).is_empty(), "a producer's connection holds nothing");
}

#[test]
fn the_head_of_the_queue_expires_after_its_ttl() {
    let (mut h, mut b) = broker(QueueSpec { ttl_ms: Some(Millis(50.0)), ..QueueSpec::default() }, Some(DLQ));
    let e = send(&mut h, &mut b, 0);
    assert_eq!(e.timers::<QueueTimer>(), vec![(50 * MS, QueueTimer::Expire(0))]);
    h.now = 30 * MS;
    assert!(send(&mut h, &mut b, 1).timers::<QueueTimer>().is_empty(), "one timer, for the head");
    h.now = 50 * MS;
    let e = h.timer(&mut b, QueueTimer::Expire(0));
    assert_eq!(e.errors(), vec!["expired"]);
    assert_eq!(e.sent(), vec![(DLQ, Msg::Queue(publish(rec(0), false, 1)))]);
    assert_eq!(e.timers::<QueueTimer>(), vec![(30 * MS, QueueTimer::Expire(0))], "message 1 is due at 80 ms");
    assert_eq!(held(&b), vec![1]);
    h.now = 60 * MS;
    assert_eq!(delivered(&subscribe(&mut h, &mut b, C1, 1, 1)), vec![(C1, 1, 0, false)], "still fresh");
}

/// Publish `tag` of the producer's channel `channel`: message `id`, persistent or not.
fn numbered(id: MsgId, channel: u32, tag: u32, persistent: bool) -> QueueMsg {
    QueueMsg::Publish {
        rec: rec(id),
        want_ack: true,
        attempt: 1,
        channel,
        tag,
        persistent,
        route: 0,
        expiration: crate::protocol::NO_EXPIRATION,
    }
}

/// (tag, multiple, accepted, every id covered) of every confirm sent to the producer.
fn confirms(e: &Emitted) -> Vec<(u64, bool, bool, Vec<MsgId>)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::PublishAck { id, accepted, tag, multiple, also, .. }) if to == P => {
                let mut ids = also.to_vec();
                ids.push(id);
                Some((tag, multiple, accepted, ids))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_durable_queue_keeps_its_persistent_messages_across_a_crash_and_a_non_durable_one_loses_them() {
    for durable in [true, false] {
        let (mut h, mut b) = broker(QueueSpec { durable, ..QueueSpec::default() }, None);
        subscribe(&mut h, &mut b, C1, 1, 1);
        h.message(&mut b, P, numbered(0, 1, 1, true));
        h.message(&mut b, P, numbered(1, 1, 2, true));
        b.crash();
        let e = h.restart(&mut b);
        assert!(e.discarded().is_empty(), "the ledger blames the crash");
        if durable {
            assert_eq!(held(&b), vec![1, 0], "the unacked message 0 is back at the head (1 is listed first)");
            // The connection comes back with fresh credit.
            assert_eq!(delivered(&e), vec![(C1, 0, 1, true)]);
        } else {
            assert!(held(&b).is_empty(), "{:?}", held(&b));
            assert!(delivered(&e).is_empty());
        }
    }
}

#[test]
fn a_durable_queue_loses_its_transient_messages_in_a_crash_and_names_the_cause() {
    use crate::ledger::LossCause;
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 1, 1);
    h.message(&mut b, P, numbered(0, 1, 1, false)); // delivered, unacked
    h.message(&mut b, P, numbered(1, 1, 2, true));
    h.message(&mut b, P, numbered(2, 1, 3, false));
    b.crash();
    assert_eq!(held(&b), vec![1], "only the persistent message is kept");
    let e = h.restart(&mut b);
    assert_eq!(e.discarded(), vec![(0, LossCause::Transient), (2, LossCause::Transient)]);
    assert_eq!(delivered(&e), vec![(C1, 1, 1, false)]);
}

#[test]
fn a_transient_publish_is_confirmed_at_once_and_persistent_ones_together_at_the_sync() {
    let spec = QueueSpec { sync_interval_ms: Some(Millis(50.0)), ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, None);
    let e = h.message(&mut b, P, numbered(10, 1, 1, true));
    assert!(confirms(&e).is_empty(), "on disk only at the sync");
    assert_eq!(e.timers::<QueueTimer>(), vec![(50 * MS, QueueTimer::Sync)]);
    let e = h.message(&mut b, P, numbered(11, 1, 2, false));
    assert_eq!(confirms(&e), vec![(2, false, true, vec![11])], "transient: confirmed when enqueued, alone");
    for (id, tag) in [(12, 3), (13, 4)] {
        let e = h.message(&mut b, P, numbered(id, 1, tag, true));
        assert!(e.sent().is_empty() && e.timers::<QueueTimer>().is_empty(), "one sync timer");
    }
    h.now = 50 * MS;
    let e = h.timer(&mut b, QueueTimer::Sync);
    assert_eq!(confirms(&e), vec![(4, true, true, vec![10, 12, 13])], "one confirm covers tags 1 to 4");
    assert!(h.timer(&mut b, QueueTimer::Sync).is_empty(), "nothing left to confirm");
    // One waiting: a single confirm.
    h.message(&mut b, P, numbered(14, 1, 5, true));
    assert_eq!(confirms(&h.timer(&mut b, QueueTimer::Sync)), vec![(5, false, true, vec![14])]);
}

#[test]
fn a_refused_publish_is_nacked_at_once_and_a_non_durable_broker_confirms_persistent_ones_at_once() {
    let overflow = super::Overflow::RejectPublish;
    let spec = QueueSpec { capacity: Some(1), durable: false, overflow, ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, None);
    assert_eq!(confirms(&h.message(&mut b, P, numbered(0, 1, 1, true))), vec![(1, false, true, vec![0])]);
    let e = h.message(&mut b, P, numbered(1, 1, 2, true));
    assert_eq!(confirms(&e), vec![(2, false, false, vec![1])], "the queue is full: a nack");
    assert_eq!(e.errors(), vec!["rejected"]);
}

#[test]
fn after_a_skipped_tag_confirms_are_sent_one_by_one_and_a_new_channel_drops_the_old_ones() {
    let (mut h, mut b) = plain();
    h.message(&mut b, P, numbered(0, 1, 1, true));
    h.message(&mut b, P, numbered(2, 1, 3, true)); // tag 2 never came
    h.now = 200 * MS;
    let e = h.timer(&mut b, QueueTimer::Sync);
    assert_eq!(confirms(&e), vec![(1, false, true, vec![0]), (3, false, true, vec![2])], "no claim on tag 2");
    // The producer restarted: channel 2. The old channel's waiting confirm is dropped.
    h.message(&mut b, P, numbered(3, 1, 4, true));
    h.message(&mut b, P, numbered(4, 2, 1, true));
    let e = h.message(&mut b, P, numbered(5, 1, 5, true));
    assert!(e.sent().is_empty(), "a closed channel gets no confirm");
    assert_eq!(held(&b), vec![0, 2, 3, 4, 5], "every publish is enqueued all the same");
    h.now = 400 * MS;
    assert_eq!(confirms(&h.timer(&mut b, QueueTimer::Sync)), vec![(1, false, true, vec![4])]);
}

#[test]
fn in_the_drain_timers_with_nothing_left_to_guard_are_cancelled() {
    let (mut h, mut b) = broker(QueueSpec { ttl_ms: Some(Millis(1000.0)), ..QueueSpec::default() }, None);
    send(&mut h, &mut b, 0); // arms the expiry timer
    subscribe(&mut h, &mut b, C1, 1, 1); // delivers it: arms the redelivery timer
    send(&mut h, &mut b, 1);
    let e = h.message(&mut b, C1, QueueMsg::Ack { tag: 0 });
    assert!(e.cancelled::<QueueTimer>().is_empty(), "during the run timers are left to fire");
    // In the drain: the queue is empty (message 1 is out with C1), so the
    // expiry timer guards nothing; the redelivery timer still guards 1.
    assert_eq!(h.drain(&mut b).cancelled::<QueueTimer>(), vec![QueueTimer::Expire(0)]);
    let e = h.message(&mut b, C1, QueueMsg::Ack { tag: 1 });
    assert_eq!(e.cancelled::<QueueTimer>(), vec![QueueTimer::Redeliver(0)], "nothing unacked is left");
}

/// A fan-out broker with a durable subscription `a` (read by C1) and a
/// non-durable one `b` (read by C2).
fn fanout() -> (Harness, QueueBroker) {
    let subscriptions = BTreeMap::from([
        ("a".to_string(), SubscriptionSpec { durable: true }),
        ("b".to_string(), SubscriptionSpec { durable: false }),
    ]);
    let spec = QueueSpec { subscriptions, ..QueueSpec::default() };
    (Harness::new(BROKER), QueueBroker::new(&spec, None, BTreeMap::from([(C1, 0), (C2, 1)])))
}

#[test]
fn fan_out_copies_each_publish_to_every_subscription_that_exists() {
    let (mut h, mut b) = fanout();
    let e = send(&mut h, &mut b, 0);
    assert_eq!(publish_acks(&e), vec![(0, true)], "one ack for all the copies");
    assert_eq!(metric(&e, "dropped_no_subscriber"), 1.0, "b has no consumer, so no queue");
    assert_eq!(delivered(&subscribe(&mut h, &mut b, C1, 5, 1)), vec![(C1, 0, 0, false)]);
    assert!(delivered(&subscribe(&mut h, &mut b, C2, 5, 1)).is_empty(), "b starts empty");
    let e = send(&mut h, &mut b, 1);
    let to: Vec<_> = delivered(&e).into_iter().map(|(c, id, _, _)| (c, id)).collect();
    assert_eq!(to, vec![(C1, 1), (C2, 1)]);
    // b's last consumer goes: its queue is deleted with what it held.
    let e = h.message(&mut b, C2, Notice::PeerDown);
    assert_eq!(metric(&e, "deleted_with_subscription"), 1.0);
    assert_eq!(held(&b), vec![0, 1], "only a's copies remain");
}

// ---- causes (the ledger's explanation of a loss or a duplicate) ----

#[test]
fn the_broker_names_why_it_drops_a_message() {
    use crate::ledger::LossCause;
    // A full queue sheds the new publish with reject-publish, its head with drop-head.
    let spec = QueueSpec { capacity: Some(1), overflow: Overflow::RejectPublish, ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, None);
    assert!(send(&mut h, &mut b, 0).discarded().is_empty(), "an accepted publish is at no risk");
    assert_eq!(h.message(&mut b, P, publish(rec(1), false, 1)).discarded(), vec![(1, LossCause::Shed)]);
    let (mut h, mut b) = broker(QueueSpec { capacity: Some(1), ..QueueSpec::default() }, None);
    send(&mut h, &mut b, 0);
    assert_eq!(h.message(&mut b, P, publish(rec(1), false, 1)).discarded(), vec![(0, LossCause::DroppedHead)]);
    // A TTL expires; a consumer's rejection dead-letters.
    let (mut h, mut b) = broker(QueueSpec { ttl_ms: Some(Millis(50.0)), ..QueueSpec::default() }, None);
    send(&mut h, &mut b, 0);
    h.now = 50 * MS;
    assert_eq!(h.timer(&mut b, QueueTimer::Expire(0)).discarded(), vec![(0, LossCause::Ttl)]);
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 1, 1);
    let tag = delivered(&send(&mut h, &mut b, 0))[0].2;
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag, requeue: false });
    assert_eq!(e.discarded(), vec![(0, LossCause::DeadLetter)]);
}

#[test]
fn a_redelivery_is_reported_as_the_reason_for_another_copy() {
    use crate::ledger::DupCause;
    let (mut h, mut b) = plain();
    subscribe(&mut h, &mut b, C1, 1, 1);
    let e = send(&mut h, &mut b, 0);
    assert!(e.resent().is_empty(), "a first delivery is no copy");
    let tag = delivered(&e)[0].2;
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag, requeue: true });
    assert_eq!(e.resent(), vec![(0, DupCause::Redelivered)]);
}

#[test]
fn a_non_durable_subscription_drops_its_copies_for_its_own_domain_only() {
    use crate::engine::Fact;
    use crate::ledger::LossCause;
    let (mut h, mut b) = fanout();
    let e = send(&mut h, &mut b, 0);
    let dropped = Fact::Discarded { id: 0, cause: LossCause::NoSubscriber, reader: Some(C2), domain: None };
    assert_eq!(e.facts().into_iter().filter(|f| matches!(f, Fact::Discarded { .. })).collect::<Vec<_>>(), [dropped]);
    subscribe(&mut h, &mut b, C1, 5, 1);
    subscribe(&mut h, &mut b, C2, 5, 1);
    send(&mut h, &mut b, 1);
    let e = h.message(&mut b, C2, Notice::PeerDown);
    let deleted = Fact::Discarded { id: 1, cause: LossCause::SubscriptionDeleted, reader: Some(C2), domain: None };
    assert!(e.facts().contains(&deleted), "{:?}", e.facts());
}

// Regression tests of issue 12 (each failed before its fix).

#[test]
fn ttl_zero_delivers_to_a_waiting_consumer() {
    let (mut h, mut b) = broker(QueueSpec { ttl_ms: Some(Millis(0.0)), ..QueueSpec::default() }, None);
    subscribe(&mut h, &mut b, C1, 1, 1);
    let e = send(&mut h, &mut b, 0);
    assert_eq!(delivered(&e), vec![(C1, 0, 0, false)], "a consumer with credit takes it at once");
    assert!(e.errors().is_empty(), "{:?}", e.errors());
    // C1 has no credit left: the next one cannot be delivered at once and expires.
    let e = send(&mut h, &mut b, 1);
    assert!(delivered(&e).is_empty());
    assert_eq!(e.errors(), vec!["expired"]);
    assert_eq!(held(&b), vec![0], "only the delivered one is held, unacked");
}

#[test]
fn a_full_queue_drops_its_head_by_default_and_accepts_the_publish() {
    let (mut h, mut b) = broker(QueueSpec { capacity: Some(2), ..QueueSpec::default() }, Some(DLQ));
    send(&mut h, &mut b, 0);
    send(&mut h, &mut b, 1);
    let e = send(&mut h, &mut b, 2);
    assert_eq!(publish_acks(&e), vec![(2, true)], "accepted and confirmed");
    assert_eq!(held(&b), vec![1, 2], "the oldest ready message was dropped");
    assert!(e
        .sent()
        .iter()
        .any(|(to, m)| *to == DLQ && matches!(m, Msg::Queue(QueueMsg::Publish { rec, .. }) if rec.id == 0)));
}

#[test]
fn delivery_limit_counts_returns_as_x_delivery_limit_does() {
    // x-delivery-limit = 2: a message may come back twice and still be
    // delivered; returned a third time, it is dead-lettered: 3 deliveries.
    let (mut h, mut b) = broker(QueueSpec { delivery_limit: Some(2), ..QueueSpec::default() }, Some(DLQ));
    subscribe(&mut h, &mut b, C1, 1, 1);
    let mut tag = delivered(&send(&mut h, &mut b, 0))[0].2;
    let mut deliveries = 1;
    loop {
        let e = h.message(&mut b, C1, QueueMsg::Nack { tag, requeue: true });
        match delivered(&e).first() {
            Some(d) => {
                deliveries += 1;
                tag = d.2;
            }
            None => break,
        }
    }
    assert_eq!(deliveries, 3, "delivered once, then again after each of 2 returns");
}

#[test]
fn a_reconnecting_consumer_does_not_reclaim_its_old_deliveries() {
    // C1 holds 0 and 1; C2 has room for both. When C1's channel closes on
    // its reconnect, both go back to the queue and C2, which can take
    // them, gets them, as it would any message.
    let (mut h, mut b) = two_held_by_c1();
    let e = subscribe(&mut h, &mut b, C1, 2, 2);
    let again: Vec<_> = delivered(&e).into_iter().map(|(c, id, _, re)| (c, id, re)).collect();
    assert_eq!(again, vec![(C2, 0, true), (C2, 1, true)]);
}

/// A publish of `id` with its own TTL of `ttl_ms`, wanting an ack.
fn send_with_ttl(h: &mut Harness, b: &mut QueueBroker, id: MsgId, ttl_ms: u32) -> Emitted {
    h.message(
        b,
        P,
        QueueMsg::Publish {
            rec: rec(id),
            want_ack: true,
            attempt: 1,
            channel: 0,
            tag: 0,
            persistent: false,
            route: 0,
            expiration: ttl_ms,
        },
    )
}

#[test]
fn a_message_ttl_lower_than_the_queue_ttl_wins_and_expires_only_at_the_head() {
    let (mut h, mut b) = broker(QueueSpec { ttl_ms: Some(Millis(100.0)), ..QueueSpec::default() }, Some(DLQ));
    send(&mut h, &mut b, 0); // the queue's TTL: due at 100 ms
    send_with_ttl(&mut h, &mut b, 1, 10); // its own: due at 10 ms, behind message 0
    send_with_ttl(&mut h, &mut b, 2, 500); // the queue's is lower: due at 100 ms
    h.now = 50 * MS;
    assert!(h.timer(&mut b, QueueTimer::Expire(0)).errors().is_empty(), "message 1 waits behind the head");
    assert_eq!(held(&b), vec![0, 1, 2]);
    h.now = 100 * MS;
    let e = h.timer(&mut b, QueueTimer::Expire(0));
    assert_eq!(e.errors(), vec!["expired", "expired", "expired"], "all three are due by now");
    // Dead-lettered without their own expiration, as RabbitMQ does.
    assert!(e.sent().contains(&(DLQ, Msg::Queue(publish(rec(1), false, 1)))), "{:?}", e.sent());
}

#[test]
fn a_per_message_ttl_of_zero_goes_to_a_consumer_with_credit_or_expires() {
    let (mut h, mut b) = broker(QueueSpec::default(), None);
    subscribe(&mut h, &mut b, C1, 1, 1);
    assert_eq!(delivered(&send_with_ttl(&mut h, &mut b, 0, 0)), vec![(C1, 0, 0, false)]);
    let e = send_with_ttl(&mut h, &mut b, 1, 0);
    assert_eq!((delivered(&e), e.errors()), (vec![], vec!["expired"]));
    assert_eq!(publish_acks(&e), vec![(1, true)], "accepted, then expired");
    // Requeued later, it is past its time: it expires instead of going out again.
    h.now = MS;
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag: 0, requeue: true });
    assert_eq!((delivered(&e), e.errors()), (vec![], vec!["expired"]));
}

#[test]
fn reject_publish_dlx_refuses_and_dead_letters_the_new_message() {
    let spec = QueueSpec { capacity: Some(1), overflow: Overflow::RejectPublishDlx, ..QueueSpec::default() };
    let (mut h, mut b) = broker(spec, Some(DLQ));
    send(&mut h, &mut b, 0);
    let e = send(&mut h, &mut b, 1);
    assert_eq!(publish_acks(&e), vec![(1, false)]);
    assert_eq!(e.errors(), vec!["rejected"]);
    assert!(e.sent().contains(&(DLQ, Msg::Queue(publish(rec(1), false, 1)))), "{:?}", e.sent());
    assert_eq!(held(&b), vec![0]);
}

#[test]
fn drop_head_lets_a_consumer_take_what_it_can_before_dropping() {
    let (mut h, mut b) = broker(QueueSpec { capacity: Some(0), ..QueueSpec::default() }, None);
    subscribe(&mut h, &mut b, C1, 1, 1);
    let e = send(&mut h, &mut b, 0);
    assert_eq!(delivered(&e), vec![(C1, 0, 0, false)], "taken at once: never counted against the limit");
    let e = send(&mut h, &mut b, 1);
    assert_eq!((publish_acks(&e), e.errors()), (vec![(1, true)], vec!["dropped-head"]));
    assert_eq!(metric(&e, "dropped_head"), 1.0);
}

#[test]
fn with_fan_out_a_refusing_queue_nacks_the_publish_but_the_others_keep_their_copy() {
    let mut subscriptions = BTreeMap::new();
    subscriptions.insert("a".to_string(), SubscriptionSpec::default());
    subscriptions.insert("b".to_string(), SubscriptionSpec::default());
    let route = BTreeMap::from([(C1, 0), (C2, 1)]);
    let spec =
        QueueSpec { subscriptions, capacity: Some(1), overflow: Overflow::RejectPublish, ..QueueSpec::default() };
    let mut h = Harness::new(BROKER);
    let mut b = QueueBroker::new(&spec, None, route);
    send(&mut h, &mut b, 0);
    // Subscription a's consumer takes 0, so a has room again; b does not.
    subscribe(&mut h, &mut b, C1, 1, 1);
    let e = send(&mut h, &mut b, 1);
    assert_eq!(publish_acks(&e), vec![(1, false)], "b refused its copy");
    assert_eq!(held(&b), vec![1, 0, 0], "a keeps its copy of 1 (held lists a's queue, a's unacked, then b's)");
}

/// The broker's gauges, by name.
fn gauges(b: &QueueBroker) -> Vec<(String, f64)> {
    let mut g = crate::metrics::Gauges::default();
    b.gauges(0, &mut g);
    g.into_vec()
}

#[test]
fn it_stores_every_message_until_acked_and_reports_what_its_consumers_hold() {
    let (mut h, mut b) = plain();
    for (id, bytes) in [(0, 100), (1, 200), (2, 4000)] {
        h.message(&mut b, P, publish(Record::sized(id, 0, bytes), false, 1));
    }
    let g = |b: &QueueBroker| gauges(b).into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    assert_eq!(g(&b), [4300.0, 0.0], "stored_bytes, unacked: all ready");
    // Credit for 2: two deliveries leave the queue but stay stored until acked.
    let e = subscribe(&mut h, &mut b, C1, 2, 1);
    assert_eq!(delivered(&e).len(), 2);
    let peaks: Vec<f64> =
        e.0.iter()
            .filter_map(|x| match x {
                Effect::Metric(Metric::Max("max_unacked", v)) => Some(*v),
                _ => None,
            })
            .collect();
    assert_eq!(peaks, [1.0, 2.0], "each new peak of deliveries held");
    assert_eq!(g(&b), [4300.0, 2.0]);
    let e = h.message(&mut b, C1, QueueMsg::Ack { tag: 0 });
    assert_eq!(delivered(&e).len(), 1, "the ack frees credit for the last one");
    assert!(e.0.iter().all(|x| !matches!(x, Effect::Metric(Metric::Max(..)))), "no new peak: still 2 held");
    assert_eq!(g(&b), [4200.0, 2.0], "message 0 is gone for good");
}

/// The redelivery deadlines of a consumer's deliveries, against a model
/// of the engine's timer queue: random publishes, acks and waits, every
/// redelivery timer fired when it comes due.
mod redelivery_deadlines {
    use super::*;
    use crate::engine::Timer;
    use proptest::prelude::*;

    /// The redelivery timeout.
    const R: u64 = 100 * MS;

    /// The broker, the redelivery timers it has pending (when each fires),
    /// and the deliveries C1 holds (tag, deadline).
    struct World {
        h: Harness,
        b: QueueBroker,
        pending: Vec<u64>,
        held: BTreeMap<u64, u64>,
        session: u32,
        prefetch: u32,
    }

    impl World {
        fn new(prefetch: u32) -> World {
            let spec = QueueSpec { redelivery_timeout_ms: Millis(100.0), ..QueueSpec::default() };
            let (h, b) = broker(spec, None);
            let mut w = World { h, b, pending: Vec::new(), held: BTreeMap::new(), session: 1, prefetch };
            let e = subscribe(&mut w.h, &mut w.b, C1, prefetch, 1);
            w.absorb(&e);
            w
        }

        /// Follows what the broker emitted, in order; C1 subscribes again
        /// when it is cancelled.
        fn absorb(&mut self, e: &Emitted) {
            let (now, redeliver) = (self.h.now, QueueTimer::Redeliver(0).to_word());
            let mut cancelled = false;
            for x in &e.0 {
                match x {
                    Effect::CancelTimer { timer } if *timer == redeliver => self.pending.clear(),
                    Effect::SetTimer { delay, timer, .. } if *timer == redeliver => self.pending.push(now + delay),
                    Effect::Send { to: C1, msg: Msg::Queue(QueueMsg::Deliver { tag, .. }) } => {
                        self.held.insert(*tag, now + R);
                    }
                    Effect::Send { to: C1, msg: Msg::Queue(QueueMsg::Cancelled { .. }) } => {
                        self.held.clear();
                        cancelled = true;
                    }
                    _ => {}
                }
            }
            if cancelled {
                self.session += 1;
                let e = subscribe(&mut self.h, &mut self.b, C1, self.prefetch, self.session);
                self.absorb(&e);
            }
        }

        /// Time passes to `until`, each redelivery timer firing when due.
        fn wait(&mut self, until: u64) {
            while let Some((i, &at)) =
                self.pending.iter().enumerate().filter(|(_, &at)| at <= until).min_by_key(|(_, &at)| at)
            {
                self.pending.remove(i);
                self.h.now = at;
                let e = self.h.timer(&mut self.b, QueueTimer::Redeliver(0));
                self.absorb(&e);
                self.check();
            }
            self.h.now = until;
        }

        fn check(&self) {
            assert!(self.pending.len() <= 1, "one redelivery timer at a time: {:?}", self.pending);
            if let Some(&first) = self.held.values().min() {
                assert!(first > self.h.now, "a delivery held past its deadline {first} at {}", self.h.now);
                let timer = self.pending.iter().min().copied();
                assert!(timer.is_some_and(|t| t <= first), "no timer by the deadline {first}: {timer:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn every_delivery_held_past_its_deadline_comes_back_by_one_timer(
            prefetch in 1u32..4,
            ops in prop::collection::vec((0u8..4, 0u64..150), 1..120),
        ) {
            let mut w = World::new(prefetch);
            for (id, (op, x)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        let e = send(&mut w.h, &mut w.b, id as MsgId);
                        w.absorb(&e);
                    }
                    1 | 2 => {
                        let tag = if op == 1 { w.held.keys().next() } else { w.held.keys().next_back() };
                        if let Some(tag) = tag.copied() {
                            w.held.remove(&tag);
                            let e = w.h.message(&mut w.b, C1, QueueMsg::Ack { tag });
                            w.absorb(&e);
                        }
                    }
                    _ => w.wait(w.h.now + x * MS),
                }
                w.check();
            }
        }
    }
}
