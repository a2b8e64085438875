//! Unit tests of the queue consumer, driven through its handlers with the
//! test harness: deliveries, processing slots, forwards and the subscribe
//! handshake, each step fired by hand.

use super::{Consumer, ConsumerSpec, ConsumerTimer};
use crate::engine::{Component, Effect, Emitted, Fact, Harness};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{publish, publish_ack, QueueMsg};
use crate::time::NS_PER_MS;
use ConsumerTimer::{ForwardAck, ForwardSend, Resubscribe, Slot};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 4;
const Q: NodeId = 10;
const F: NodeId = 11;

fn spec(extra: &str) -> ConsumerSpec {
    let table = format!("source = \"q\"\nprocessing = {{ dist = \"constant\", ms = 10 }}\n{extra}");
    toml::from_str(&table).expect("a valid consumer table")
}

/// A consumer of queue broker Q (processing takes 10 ms), forwarding to F
/// when its table says `forward_to`; started, its subscription confirmed.
pub(super) fn consumer(extra: &str, store: Option<usize>) -> (Harness, Consumer) {
    let spec = spec(extra);
    let mut c = Consumer::new(&spec, Q, store);
    if spec.forward_to.is_some() {
        c = c.with_forward(&spec, F);
    }
    let mut h = Harness::new(ME);
    h.start(&mut c);
    h.message(&mut c, Q, QueueMsg::Subscribed { session: 1 });
    (h, c)
}

pub(super) fn deliver(id: MsgId, tag: u64) -> QueueMsg {
    QueueMsg::Deliver { rec: Record::new(id, 0), tag, redelivered: false }
}

/// The messages sent back to the source broker.
pub(super) fn to_source(e: &Emitted) -> Vec<QueueMsg> {
    e.sent_to(Q)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Queue(q) => Some(q),
            _ => None,
        })
        .collect()
}

/// (id, want_ack, attempt) of every publish to the forward broker.
fn forwarded(e: &Emitted) -> Vec<(MsgId, bool, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::Publish { rec, want_ack, attempt, .. }) if to == F => {
                Some((rec.id, want_ack, attempt))
            }
            _ => None,
        })
        .collect()
}

fn started(e: &Emitted) -> Vec<MsgId> {
    e.started()
}

/// Delivers `id` (tag `tag`) into an idle slot 0 and finishes processing it.
fn process(h: &mut Harness, c: &mut Consumer, id: MsgId, tag: u64) -> Emitted {
    assert_eq!(h.message(c, Q, deliver(id, tag)).timers::<ConsumerTimer>(), vec![(10 * MS, Slot(0))]);
    h.now += 10 * MS;
    h.timer(c, Slot(0))
}

#[test]
fn start_subscribes_and_asks_again_until_the_broker_confirms() {
    let mut h = Harness::new(ME);
    let mut c = Consumer::new(&spec("concurrency = 3"), Q, None);
    // RabbitMQ's default prefetch: none (basic.qos 0), whatever the concurrency.
    let subscribe = (Q, Msg::Queue(QueueMsg::Subscribe { prefetch: 0, session: 1, auto_ack: false }));
    let e = h.start(&mut c);
    assert_eq!((e.sent(), e.timers::<ConsumerTimer>()), (vec![subscribe.clone()], vec![(1000 * MS, Resubscribe)]));
    h.now = 1000 * MS;
    assert_eq!(h.timer(&mut c, Resubscribe).sent(), vec![subscribe], "unconfirmed: the same session again");
    let e = h.message(&mut c, Q, QueueMsg::Subscribed { session: 1 });
    assert_eq!(e.cancelled::<ConsumerTimer>(), vec![Resubscribe]);
    assert!(h.timer(&mut c, Resubscribe).is_empty(), "confirmed: nothing more to ask");
}

#[test]
fn a_restart_is_a_new_session_and_a_confirmation_of_the_old_one_is_stale() {
    let (mut h, mut c) = consumer("", None);
    c.crash();
    let e = h.restart(&mut c);
    assert_eq!(to_source(&e), vec![QueueMsg::Subscribe { prefetch: 0, session: 2, auto_ack: false }]);
    assert!(h.message(&mut c, Q, QueueMsg::Subscribed { session: 1 }).is_empty(), "stale");
    let e = h.timer(&mut c, Resubscribe);
    assert_eq!(to_source(&e), vec![QueueMsg::Subscribe { prefetch: 0, session: 2, auto_ack: false }]);
}

#[test]
fn a_delivery_takes_a_slot_and_the_effect_is_applied_before_the_ack() {
    let (mut h, mut c) = consumer("", None);
    let e = h.message(&mut c, Q, deliver(7, 3));
    assert_eq!((e.facts(), e.timers::<ConsumerTimer>()), (vec![Fact::Started(7)], vec![(10 * MS, Slot(0))]));
    assert!(e.sent().is_empty(), "nothing acked before processing");
    let e = h.timer(&mut c, Slot(0));
    assert_eq!((e.applied(), to_source(&e)), (vec![7], vec![QueueMsg::Ack { tag: 3 }]));
    let applied = e.0.iter().position(|x| matches!(x, Effect::Fact(Fact::Applied(7))));
    let acked = e.0.iter().position(|x| matches!(x, Effect::Send { .. }));
    assert!(applied < acked, "applied, then acked: {e:?}");
}

#[test]
fn deliveries_beyond_the_concurrency_wait_for_a_free_slot() {
    let (mut h, mut c) = consumer("concurrency = 2", None);
    assert_eq!(h.message(&mut c, Q, deliver(0, 0)).timers::<ConsumerTimer>(), vec![(10 * MS, Slot(0))]);
    assert_eq!(h.message(&mut c, Q, deliver(1, 1)).timers::<ConsumerTimer>(), vec![(10 * MS, Slot(1))]);
    assert!(h.message(&mut c, Q, deliver(2, 2)).is_empty(), "both slots busy: buffered");
    let e = h.timer(&mut c, Slot(1));
    assert_eq!(to_source(&e), vec![QueueMsg::Ack { tag: 1 }]);
    assert_eq!((started(&e), e.timers::<ConsumerTimer>()), (vec![2], vec![(10 * MS, Slot(1))]));
}

#[test]
fn ack_before_subscribes_with_auto_ack_and_never_acks() {
    let mut h = Harness::new(ME);
    let mut c = Consumer::new(&spec("ack = \"before\""), Q, None);
    let e = h.start(&mut c);
    assert_eq!(to_source(&e), vec![QueueMsg::Subscribe { prefetch: 0, session: 1, auto_ack: true }]);
    let e = process(&mut h, &mut c, 0, 0);
    assert_eq!((e.applied(), e.sent()), (vec![0], vec![]));
}

#[test]
fn an_idempotent_effect_with_a_dedup_store_is_applied_once_across_deliveries_and_consumers() {
    let (mut h, mut c) = consumer("effect = \"idempotent\"", Some(0));
    assert_eq!(process(&mut h, &mut c, 5, 0).applied(), vec![5]);
    let e = process(&mut h, &mut c, 5, 1);
    assert_eq!((e.applied(), to_source(&e)), (vec![], vec![QueueMsg::Ack { tag: 1 }]), "skipped, still acked");
    // Another consumer of the same store (the harness keeps the stores).
    let mut other = Consumer::new(&spec("effect = \"idempotent\""), Q, Some(0));
    h.start(&mut other);
    assert!(process(&mut h, &mut other, 5, 0).applied().is_empty());
    // A plain effect applies every time.
    let (mut h, mut c) = consumer("", None);
    assert_eq!(process(&mut h, &mut c, 5, 0).applied(), vec![5]);
    assert_eq!(process(&mut h, &mut c, 5, 1).applied(), vec![5]);
}

#[test]
fn a_transient_failure_nacks_for_redelivery_and_a_poison_message_for_the_dead_letters() {
    for (table, requeue, kind) in [
        ("failure_probability = 1.0", true, "transient-failure"),
        ("poison_probability = 1.0", false, "permanent-failure"),
    ] {
        let (mut h, mut c) = consumer(table, None);
        let e = process(&mut h, &mut c, 0, 4);
        assert_eq!(to_source(&e), vec![QueueMsg::Nack { tag: 4, requeue }], "{table}");
        assert_eq!((e.errors(), e.applied()), (vec![kind], vec![]), "{table}");
    }
    // Acked on receipt: nothing left to nack, the message is lost.
    let (mut h, mut c) = consumer("ack = \"before\"\nfailure_probability = 1.0", None);
    let e = process(&mut h, &mut c, 0, 4);
    assert_eq!((e.sent(), e.errors(), e.applied()), (vec![], vec!["transient-failure"], vec![]));
}

#[test]
fn a_forwarding_consumer_publishes_the_same_record_even_when_the_effect_was_a_repeat() {
    let (mut h, mut c) = consumer("forward_to = \"f\"\neffect = \"idempotent\"", Some(0));
    let e = process(&mut h, &mut c, 8, 0);
    assert_eq!((e.applied(), to_source(&e)), (vec![8], vec![QueueMsg::Ack { tag: 0 }]));
    assert_eq!(e.sent().last(), Some(&(F, Msg::Queue(publish(Record::new(8, 0), false, 1)))));
    let e = process(&mut h, &mut c, 8, 1);
    assert!(e.applied().is_empty());
    assert_eq!(forwarded(&e), vec![(8, false, 1)], "the next service is told again");
}

#[test]
fn ack_after_forward_acks_the_input_only_once_the_forward_is_acked() {
    let (mut h, mut c) = consumer("forward_to = \"f\"\nack = \"after-forward\"\nforward_acks = \"broker\"", None);
    let e = process(&mut h, &mut c, 8, 0);
    assert_eq!((e.applied(), forwarded(&e), to_source(&e)), (vec![8], vec![(8, true, 1)], vec![]));
    assert!(h.message(&mut c, Q, deliver(9, 1)).is_empty(), "the slot still waits for the forward");
    let e = h.message(&mut c, F, publish_ack(8, true, 1, 0));
    assert_eq!((to_source(&e), started(&e)), (vec![QueueMsg::Ack { tag: 0 }], vec![9]));
}

#[test]
fn a_forward_given_up_after_its_retries_hands_the_input_back_for_redelivery() {
    let table = "forward_to = \"f\"\nack = \"after-forward\"\nforward_acks = \"broker\"\n\
                 forward_ack_timeout_ms = 100\nforward_retries = 1";
    let (mut h, mut c) = consumer(table, None);
    process(&mut h, &mut c, 8, 0); // forwarded at 10 ms
    h.now = 110 * MS;
    let e = h.timer(&mut c, ForwardAck);
    assert_eq!((e.errors(), forwarded(&e)), (vec!["forward-timeout"], vec![(8, true, 2)]));
    h.now = 210 * MS;
    let e = h.timer(&mut c, ForwardAck);
    assert_eq!(e.errors(), vec!["forward-timeout", "forward-failed"]);
    assert_eq!(to_source(&e), vec![QueueMsg::Nack { tag: 0, requeue: true }]);
}

#[test]
fn an_outbox_entry_survives_a_crash_and_is_relayed_after_the_restart() {
    let (mut h, mut c) = consumer("forward_to = \"f\"\nforward_acks = \"broker\"\noutbox = true", None);
    let e = process(&mut h, &mut c, 8, 0);
    assert_eq!((to_source(&e), forwarded(&e)), (vec![QueueMsg::Ack { tag: 0 }], vec![(8, true, 1)]));
    c.crash(); // before the forward's ack came
    let mut held = Vec::new();
    c.held(&mut held);
    assert_eq!(held, vec![8], "the entry is in the database");
    let e = h.restart(&mut c);
    assert_eq!(forwarded(&e), vec![(8, true, 2)], "the relay sends it again");
    h.message(&mut c, F, publish_ack(8, true, 2, 0));
    assert_eq!(h.drain(&mut c).cancelled::<ConsumerTimer>(), vec![ForwardAck], "nothing left to relay");
}

#[test]
fn a_plain_forward_not_yet_sent_is_lost_by_a_crash() {
    let (mut h, mut c) = consumer("forward_to = \"f\"\nforward_delay = { dist = \"constant\", ms = 5 }", None);
    let e = process(&mut h, &mut c, 8, 0);
    assert_eq!((e.applied(), to_source(&e)), (vec![8], vec![QueueMsg::Ack { tag: 0 }]), "committed and acked");
    assert_eq!((forwarded(&e), e.timers::<ConsumerTimer>()), (vec![], vec![(5 * MS, ForwardSend)]));
    c.crash();
    let e = h.restart(&mut c);
    assert!(forwarded(&e).is_empty());
    assert!(h.timer(&mut c, ForwardSend).sent().is_empty(), "the forward is gone for good");
}

#[test]
fn a_cancellation_of_the_current_session_drops_the_buffer_and_subscribes_afresh() {
    let (mut h, mut c) = consumer("", None);
    h.message(&mut c, Q, deliver(0, 0));
    h.message(&mut c, Q, deliver(1, 1)); // buffered
    let e = h.message(&mut c, Q, QueueMsg::Cancelled { session: 1 });
    assert_eq!(to_source(&e), vec![QueueMsg::Subscribe { prefetch: 0, session: 2, auto_ack: false }]);
    assert!(h.message(&mut c, Q, QueueMsg::Cancelled { session: 1 }).is_empty(), "a repeat notice is stale");
    // The work in progress finishes; the buffered delivery was taken back.
    let e = h.timer(&mut c, Slot(0));
    assert_eq!((e.applied(), started(&e)), (vec![0], vec![]));
}

#[test]
fn a_failure_after_an_auto_ack_names_the_loss_and_a_failure_before_an_ack_does_not() {
    use crate::ledger::LossCause;
    let (mut h, mut c) = consumer("ack = \"before\"\nfailure_probability = 1.0", None);
    assert_eq!(process(&mut h, &mut c, 0, 4).discarded(), vec![(0, LossCause::ProcessingFailed)]);
    // Nacked: the broker still has it, so it is at no risk here.
    let (mut h, mut c) = consumer("failure_probability = 1.0", None);
    assert!(process(&mut h, &mut c, 0, 4).discarded().is_empty());
}

#[test]
fn a_forward_sent_again_is_a_retry_and_one_given_up_is_named() {
    use crate::ledger::{DupCause, LossCause};
    let table = "forward_to = \"f\"\nforward_acks = \"broker\"\nforward_ack_timeout_ms = 100\nforward_retries = 1";
    let (mut h, mut c) = consumer(table, None);
    let e = process(&mut h, &mut c, 8, 0);
    assert!(e.resent().is_empty(), "the first attempt is no copy");
    h.now = 110 * MS;
    let e = h.timer(&mut c, ForwardAck);
    assert_eq!((forwarded(&e), e.resent()), (vec![(8, true, 2)], vec![(8, DupCause::ProducerRetry)]));
    h.now = 210 * MS;
    assert_eq!(h.timer(&mut c, ForwardAck).discarded(), vec![(8, LossCause::GaveUp)]);
}

/// The run's memory budget sees what a consumer holds: deliveries buffered
/// behind a busy slot count.
#[test]
fn buffered_deliveries_count_in_the_consumers_memory() {
    let (mut h, mut c) = consumer("concurrency = 1", None);
    let idle = c.memory_bytes();
    for id in 0..200 {
        h.message(&mut c, Q, deliver(id, id));
    }
    let busy = c.memory_bytes();
    assert!(busy >= idle + 199 * std::mem::size_of::<super::Job>(), "{idle} -> {busy} bytes");
}
