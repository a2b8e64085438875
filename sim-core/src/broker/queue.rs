//! The queue broker: FIFO queues, RabbitMQ-like. Producers publish into
//! it (and get an ack if they asked for one); subscribed consumers receive
//! messages pushed to them, at most `prefetch` unacknowledged at a time
//! each, and ack them when done, or nack them when processing failed.
//!
//! Point-to-point or fan-out: a broker without `subscriptions` is one
//! queue whose consumers compete for its messages. A broker with
//! subscriptions is a fanout exchange with one queue per subscription:
//! every publish is copied into each subscription's queue (one ack to the
//! producer), consumers name the subscription they read, and the consumers
//! of one subscription compete for its copies. Each subscription's queue
//! behaves in every way like the single queue described below. A point-to-
//! point broker is exactly one unnamed subscription.
//!
//! A **durable** subscription's queue exists from the start and fills while
//! its consumers are away. A **non-durable** one (RabbitMQ's auto-delete
//! queue, JMS's non-durable subscriber) exists only while one of its
//! consumers is connected: when the broker learns that the last one is gone
//! (a `PeerDown` from it, or a consumer timeout that cancels it), the queue
//! and all it holds are deleted, and copies published while no consumer is
//! connected are not kept for it. Both are counted in named metrics
//! (`deleted_with_subscription`, `dropped_no_subscriber`).
//!
//! A consumer that subscribes with auto-ack (it acks before processing)
//! gets messages without limit, and the broker forgets each one the moment
//! it sends it: nothing is ever redelivered to it, so whatever it loses, by
//! a crash or on the network, is lost. That is at-most-once.
//!
//! A message comes back to the head of the queue, marked redelivered, when
//! it is nacked with requeue, and when its consumer's channel closes: the
//! consumer re-subscribed after a restart, or it held a delivery longer than
//! `redelivery_timeout_ms` without acking (RabbitMQ's consumer timeout: the
//! broker then cancels the consumer, takes back every delivery it held, and
//! the consumer must subscribe again). It leaves the queue for good, and
//! goes to the `dead_letter` broker if there is one (else it is discarded),
//! when it is nacked without requeue, when it is due to be delivered again
//! after `max_deliveries` deliveries without an ack, or when it has waited
//! `ttl_ms` since it was published.
//!
//! Idempotent producers number their sends. The broker keeps the last
//! (epoch, sequence) it appended from each, appends a send only if it is the
//! next one (or sequence 0 of a newer session), acks an earlier one again
//! without appending it, and refuses an older session (see `producer.rs`
//! and `sequencer.rs`). A send that arrives ahead of a gap is held (up to
//! 1,024 per producer) and appended when the gap fills, standing in for the
//! in-order delivery a real producer's connection gives. That record of
//! sequences survives the broker's crashes; the held early sends do not.
//!
//! Capacity: when a queue holds `capacity` messages, a publish is refused
//! (a negative ack when the producer waits for one; silently dropped when it
//! does not, which the ledger then counts as lost). With subscriptions, the
//! limit applies to each subscription's queue, and a publish that would
//! overflow any of them is refused as a whole.
//!
//! Crash: a durable broker keeps its durable subscriptions' queues and puts
//! every unacked delivery back into them on restart (messages were
//! persisted); a non-durable broker loses them. A non-durable subscription's
//! queue is never persisted. Subscriptions are reconnected on restart in
//! either case, with fresh credit.
//!
//! TTL is enforced at the head of the queue, as RabbitMQ does: a message
//! expires when it is the oldest waiting and its time is up (messages behind
//! it wait until they reach the head, so all messages share one TTL timer).
//!
//! The queue-depth gauge (the sum over subscriptions) is updated when the
//! broker acts, so while it is down the gauge keeps the depth it had when
//! it crashed.
//!
//! Left out here: priorities, routing keys and bindings (every subscription
//! gets every message), per-message TTL, and delayed retries (a nacked
//! message is available again at once).

use crate::engine::{Component, Ctx};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::QueueMsg;
use crate::sequencer::{Offer, Sequencer};
use crate::time::ms_to_ns;
use std::collections::BTreeMap;

pub(crate) mod core;
mod kind;
pub use self::core::QueueTimer;
use self::core::{discard, Entry, Policy, QueueCore};
pub use kind::{QueueBrokerKind, QueueReaders, QueueSpec, SubscriptionSpec};

/// A publish as the broker handles it.
#[derive(Clone, Copy)]
struct Publish {
    rec: Record,
    want_ack: bool,
    attempt: u32,
}

/// A running queue broker.
pub struct QueueBroker {
    capacity: Option<u64>,
    durable: bool,
    /// One queue per subscription, in name order; point-to-point: one.
    subs: Vec<QueueCore>,
    /// Which subscription each consumer reads (by node); empty when
    /// point-to-point, where every consumer reads the one queue.
    route: BTreeMap<NodeId, usize>,
    /// Idempotent producers: the numbers appended from each (kept across
    /// every crash), and their early sends, held until the gap before them
    /// fills (volatile).
    sequences: BTreeMap<NodeId, Sequencer<Publish>>,
}

impl QueueBroker {
    /// A broker as `spec` says, dead-lettering to `dead_letter`. With
    /// subscriptions, `route` gives the subscription (an index into
    /// `spec.subscriptions`, in name order) each consumer node reads.
    pub fn new(spec: &QueueSpec, dead_letter: Option<NodeId>, route: BTreeMap<NodeId, usize>) -> Self {
        let policy = || Policy {
            redelivery_ns: ms_to_ns(spec.redelivery_timeout_ms.0).max(1),
            max_deliveries: spec.max_deliveries,
            ttl_ns: spec.ttl_ms.map(|t| ms_to_ns(t.0)),
            dead_letter,
        };
        let subs = if spec.subscriptions.is_empty() {
            vec![QueueCore::new(policy(), true, 0, None)]
        } else {
            let reader = |i: usize| route.iter().find(|&(_, &s)| s == i).map(|(&node, _)| node);
            let queue = |(i, s): (usize, &SubscriptionSpec)| QueueCore::new(policy(), s.durable, i, reader(i));
            spec.subscriptions.values().enumerate().map(queue).collect()
        };
        QueueBroker { capacity: spec.capacity, durable: spec.durable, subs, route, sequences: BTreeMap::new() }
    }

    /// The subscription `node` reads, if it is a consumer of this broker.
    #[inline]
    fn sub_of(&self, node: NodeId) -> Option<usize> {
        if self.route.is_empty() {
            Some(0)
        } else {
            self.route.get(&node).copied()
        }
    }

    /// Reports the messages waiting, over all subscriptions.
    fn report_depth(&self, ctx: &mut Ctx<QueueTimer>) {
        ctx.set_queue_depth(self.subs.iter().map(|s| s.queue.len() as u64).sum());
    }

    /// Dispatches every queue.
    fn dispatch_all(&mut self, ctx: &mut Ctx<QueueTimer>) {
        for s in &mut self.subs {
            s.dispatch(ctx);
        }
        self.report_depth(ctx);
    }

    /// Appends a publish to every existing queue if each has room, and
    /// answers it. A non-durable subscription with no consumer connected
    /// has no queue: its copy is dropped.
    fn append(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: Publish) -> bool {
        let accepted =
            self.capacity.is_none_or(|c| self.subs.iter().all(|s| (s.queue.len() as u64) < c || !s.exists()));
        if accepted {
            let entry = Entry { rec: p.rec, published_at: ctx.now(), deliveries: 0 };
            for s in &mut self.subs {
                if s.exists() {
                    s.queue.push_back(entry);
                } else {
                    ctx.metric_add("dropped_no_subscriber", 1.0);
                    discard(ctx, s.reader, p.rec.id, LossCause::NoSubscriber);
                }
            }
        } else {
            ctx.error("rejected");
            // Lost only if its producer does not wait for the refusal.
            ctx.discarded(p.rec.id, LossCause::Shed);
        }
        answer(ctx, from, &p, accepted);
        accepted
    }

    /// The idempotent producer's rule (see [`Sequencer`]): append the next
    /// number of the session, ack an earlier one again without appending
    /// it, refuse an older session, hold one that comes ahead of a gap.
    fn publish_in_sequence(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: Publish, epoch: u32, seq: u64) {
        match self.sequences.entry(from).or_default().offer(epoch, seq, p) {
            Offer::Fenced => {
                ctx.error("fenced");
                answer(ctx, from, &p, false);
            }
            // Already appended: a retry whose original got through.
            Offer::Duplicate => answer(ctx, from, &p, true),
            Offer::Overflow => {
                ctx.error("out-of-order");
                answer(ctx, from, &p, false);
            }
            Offer::Held => {}
            Offer::Next(p) => {
                if self.append(ctx, from, p) {
                    self.sequencer(from).appended(epoch, seq);
                    self.release_early(ctx, from);
                }
            }
        }
    }

    /// Appends held early sends that now come next, in order.
    fn release_early(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId) {
        while let Some((seq, p)) = self.sequencer(from).take_next() {
            if !self.append(ctx, from, p) {
                break; // full: the producer resends it after its ack timeout
            }
            let s = self.sequencer(from);
            s.appended(s.epoch(), seq);
        }
    }

    /// The sequencer of idempotent producer `from`, which has sent before.
    fn sequencer(&mut self, from: NodeId) -> &mut Sequencer<Publish> {
        self.sequences.get_mut(&from).expect("a producer that has sent has a sequencer")
    }
}

/// Answers a publish, if its producer waits for an answer.
fn answer(ctx: &mut Ctx<QueueTimer>, from: NodeId, p: &Publish, accepted: bool) {
    if p.want_ack {
        ctx.send(from, QueueMsg::PublishAck { id: p.rec.id, accepted, attempt: p.attempt });
    }
}

impl Component for QueueBroker {
    type Timer = QueueTimer;

    fn start(&mut self, _ctx: &mut Ctx<QueueTimer>) {}

    fn on_message(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(QueueMsg::Publish { rec, want_ack, attempt, epoch, seq }) => {
                let publish = Publish { rec, want_ack, attempt };
                if epoch == 0 {
                    self.append(ctx, from, publish);
                } else {
                    self.publish_in_sequence(ctx, from, publish, epoch, seq);
                }
                self.dispatch_all(ctx);
            }
            Msg::Queue(QueueMsg::Ack { tag }) => {
                let Some(i) = self.sub_of(from) else { return };
                let s = &mut self.subs[i];
                s.ack(tag);
                s.dispatch(ctx);
                self.report_depth(ctx);
                self.subs[i].settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Nack { tag, requeue }) => {
                let Some(i) = self.sub_of(from) else { return };
                let s = &mut self.subs[i];
                s.take_back(ctx, tag, requeue);
                s.dispatch(ctx);
                self.report_depth(ctx);
                self.subs[i].settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Subscribe { prefetch, session, auto_ack }) => {
                let Some(i) = self.sub_of(from) else { return };
                self.subs[i].subscribe(ctx, from, prefetch, session, auto_ack);
                self.report_depth(ctx);
            }
            Msg::Notice(Notice::PeerDown) => {
                let Some(i) = self.sub_of(from) else { return };
                if self.subs[i].peer_down(ctx, from) {
                    self.report_depth(ctx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<QueueTimer>, timer: QueueTimer) {
        let (QueueTimer::Redeliver(i) | QueueTimer::Expire(i) | QueueTimer::CancelNotice(i)) = timer;
        if let Some(s) = self.subs.get_mut(i as usize) {
            s.on_timer(ctx, timer);
        }
        self.report_depth(ctx);
    }

    fn crash(&mut self) {
        // The messages of a non-durable broker are gone, but the record of
        // producers' sequences is kept (a simplification): without it, a
        // producer could never resume mid-session.
        for s in &mut self.subs {
            let persisted = self.durable && s.durable;
            s.crash(persisted);
        }
        self.sequences.values_mut().for_each(Sequencer::clear_held);
    }

    fn restart(&mut self, ctx: &mut Ctx<QueueTimer>) {
        self.dispatch_all(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<QueueTimer>) {
        for s in &mut self.subs {
            s.settle_timers(ctx);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.subs.iter().map(QueueCore::memory_bytes).sum()
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        for s in &self.subs {
            s.held(out);
        }
        out.extend(self.sequences.values().flat_map(|s| s.held().map(|p| p.rec.id)));
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
