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

use crate::engine::{Component, Ctx, Timer};
use crate::ledger::{DupCause, LossCause};
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::QueueMsg;
use crate::sequencer::{Offer, Sequencer};
use crate::time::{ms_to_ns, Duration, Time};
use crate::timers::Deadlines;
use std::collections::{BTreeMap, VecDeque};

mod kind;
pub use kind::{QueueBrokerKind, QueueReaders, QueueSpec, SubscriptionSpec};

/// A queue broker's timers, each for one queue (numbered in subscription
/// order; a point-to-point broker has queue 0 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueTimer {
    /// The earliest redelivery deadline of the queue's unacked deliveries.
    Redeliver(u32),
    /// The head of the queue expires (TTL).
    Expire(u32),
    /// Tell cancelled consumers again that they are cancelled.
    CancelNotice(u32),
}

impl Timer for QueueTimer {
    // Three words per queue: queue k uses 3k, 3k + 1 and 3k + 2.
    fn to_word(self) -> u64 {
        match self {
            QueueTimer::Redeliver(q) => 3 * u64::from(q),
            QueueTimer::Expire(q) => 3 * u64::from(q) + 1,
            QueueTimer::CancelNotice(q) => 3 * u64::from(q) + 2,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        let q = u32::try_from(word / 3).ok()?;
        Some(match word % 3 {
            0 => QueueTimer::Redeliver(q),
            1 => QueueTimer::Expire(q),
            _ => QueueTimer::CancelNotice(q),
        })
    }
}

struct Subscriber {
    node: NodeId,
    prefetch: u32,
    /// Its deliveries in the queue's `unacked`: counted up at a delivery
    /// and down when one leaves `unacked`, both reset together.
    unacked: u32,
    session: u32,
    auto_ack: bool,
    /// False once the broker cancelled it (consumer timeout) or learned its
    /// connection closed, until it subscribes again with a new session.
    active: bool,
}

/// Why a subscriber's `unacked` cannot be 0 when one of its deliveries leaves.
const UNACKED_COUNTS: &str = "a subscriber's unacked counts its deliveries awaiting an ack";

impl Subscriber {
    fn has_credit(&self) -> bool {
        self.active && (self.auto_ack || self.unacked < self.prefetch)
    }
}

/// A message in the queue, with what the broker knows about it.
#[derive(Clone, Copy)]
struct Entry {
    rec: Record,
    /// When it entered this queue (TTL counts from here).
    published_at: Time,
    /// How many times it was delivered.
    deliveries: u32,
}

struct Unacked {
    consumer: NodeId,
    entry: Entry,
    deadline: Time,
}

/// A publish as the broker handles it.
#[derive(Clone, Copy)]
struct Publish {
    rec: Record,
    want_ack: bool,
    attempt: u32,
}

/// Why a message left the queue without being acked.
#[derive(Clone, Copy)]
enum Death {
    Rejected,
    MaxDeliveries,
    Expired,
}

impl Death {
    fn kind(self) -> &'static str {
        match self {
            Death::Rejected => "rejected-by-consumer",
            Death::MaxDeliveries => "max-deliveries",
            Death::Expired => "expired",
        }
    }
}

/// The per-queue settings every subscription of a broker shares.
struct Policy {
    redelivery_ns: Duration,
    max_deliveries: Option<u32>,
    ttl_ns: Option<Duration>,
    dead_letter: Option<NodeId>,
}

impl Policy {
    fn expired(&self, entry: &Entry, now: Time) -> bool {
        self.ttl_ns.is_some_and(|ttl| now >= entry.published_at.saturating_add(ttl))
    }

    /// A message leaves its queue for good: to the dead-letter broker, or
    /// gone. `reader` is a consumer of the queue, when it is one
    /// subscription's (the loss is that domain's alone).
    fn dead_letter(&self, ctx: &mut Ctx<QueueTimer>, entry: Entry, why: Death, reader: Option<NodeId>) {
        ctx.error(why.kind());
        let cause = if matches!(why, Death::Expired) { LossCause::Ttl } else { LossCause::DeadLetter };
        discard(ctx, reader, entry.rec.id, cause);
        if let Some(dlq) = self.dead_letter {
            ctx.send(dlq, QueueMsg::Publish { rec: entry.rec, want_ack: false, attempt: 1, epoch: 0, seq: 0 });
        }
    }
}

/// Reports that `id` was dropped for `cause`: for `reader`'s effect domain
/// only when it is given (one subscription's copy).
fn discard(ctx: &mut Ctx<QueueTimer>, reader: Option<NodeId>, id: MsgId, cause: LossCause) {
    match reader {
        Some(r) => ctx.discarded_for(r, id, cause),
        None => ctx.discarded(id, cause),
    }
}

/// One queue with its consumers: the whole of a point-to-point broker, or
/// one subscription of a fan-out broker.
struct SubQueue {
    /// A consumer of this subscription, if it is one of several (its effect
    /// domain is the subscription's): what is dropped here is lost there.
    reader: Option<NodeId>,
    /// Whether the queue outlives its consumers (always, point-to-point).
    durable: bool,
    /// This queue's number (its timers name it).
    index: u32,
    queue: VecDeque<Entry>,
    unacked: BTreeMap<u64, Unacked>,
    subscribers: Vec<Subscriber>,
    /// Where each consumer is in `subscribers`.
    by_node: BTreeMap<NodeId, usize>,
    /// How many subscribers are not active.
    inactive: usize,
    next_subscriber: usize,
    next_tag: u64,
    deadlines: Deadlines,
    /// When the pending expiry timer fires, if one is.
    expiry: Option<Time>,
    /// Cancelled consumers are told again every `redelivery_timeout_ms`
    /// until they subscribe anew: the notice may be lost on the network.
    cancel_notices: Deadlines,
}

impl SubQueue {
    fn new(durable: bool, index: usize, reader: Option<NodeId>) -> Self {
        SubQueue {
            reader,
            durable,
            index: index as u32,
            queue: VecDeque::new(),
            unacked: BTreeMap::new(),
            subscribers: Vec::new(),
            by_node: BTreeMap::new(),
            inactive: 0,
            next_subscriber: 0,
            next_tag: 0,
            deadlines: Deadlines::default(),
            expiry: None,
            cancel_notices: Deadlines::default(),
        }
    }

    /// Whether the queue exists: a non-durable one only while one of its
    /// consumers is connected.
    fn exists(&self) -> bool {
        self.durable || self.subscribers.len() > self.inactive
    }

    /// The subscriber `node`, if it ever subscribed.
    fn subscriber(&mut self, node: NodeId) -> Option<&mut Subscriber> {
        self.by_node.get(&node).map(|&i| &mut self.subscribers[i])
    }

    /// Pushes queued messages to subscribers with free credit, round-robin,
    /// expiring what has outlived its TTL on the way.
    fn dispatch(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy) {
        let n = self.subscribers.len();
        self.expire_head(ctx, policy);
        while !self.queue.is_empty() && n > 0 {
            let Some(offset) = (0..n).find(|k| self.subscribers[(self.next_subscriber + k) % n].has_credit()) else {
                break;
            };
            let i = (self.next_subscriber + offset) % n;
            self.next_subscriber = (i + 1) % n;
            let mut entry = self.queue.pop_front().expect("queue is not empty");
            if policy.max_deliveries.is_some_and(|m| entry.deliveries >= m) {
                // Checked here, where every path back into the queue meets.
                policy.dead_letter(ctx, entry, Death::MaxDeliveries, self.reader);
                continue;
            }
            let redelivered = entry.deliveries > 0;
            if redelivered {
                ctx.resent(entry.rec.id, DupCause::Redelivered);
            }
            entry.deliveries += 1;
            let sub = &mut self.subscribers[i];
            let tag = self.next_tag;
            self.next_tag += 1;
            ctx.send(sub.node, QueueMsg::Deliver { rec: entry.rec, tag, redelivered });
            if !sub.auto_ack {
                sub.unacked += 1;
                let deadline = ctx.now().saturating_add(policy.redelivery_ns);
                self.unacked.insert(tag, Unacked { consumer: sub.node, entry, deadline });
                self.deadlines.add(ctx, deadline, tag, QueueTimer::Redeliver(self.index));
            }
            self.expire_head(ctx, policy);
        }
        self.arm_expiry(ctx, policy);
    }

    /// Removes expired messages from the head of the queue.
    fn expire_head(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy) {
        while self.queue.front().is_some_and(|e| policy.expired(e, ctx.now())) {
            let entry = self.queue.pop_front().expect("the head exists");
            policy.dead_letter(ctx, entry, Death::Expired, self.reader);
        }
    }

    /// Keeps one timer set for when the head of the queue expires.
    fn arm_expiry(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy) {
        let (Some(ttl), Some(head)) = (policy.ttl_ns, self.queue.front()) else { return };
        let due = head.published_at.saturating_add(ttl);
        if self.expiry.is_none_or(|at| due < at) {
            if self.expiry.take().is_some() {
                ctx.cancel_timer(QueueTimer::Expire(self.index));
            }
            ctx.set_timer(due.saturating_sub(ctx.now()), QueueTimer::Expire(self.index));
            self.expiry = Some(due);
        }
    }

    /// Forgets an acked delivery.
    fn ack(&mut self, tag: u64) {
        if let Some(u) = self.unacked.remove(&tag) {
            if let Some(s) = self.subscriber(u.consumer) {
                s.unacked = s.unacked.checked_sub(1).expect(UNACKED_COUNTS);
            }
        }
    }

    /// Takes back an unacked delivery: to the head of the queue, or, when
    /// the consumer rejected it, to the dead letters.
    fn take_back(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy, tag: u64, requeue: bool) {
        let Some(u) = self.unacked.remove(&tag) else { return };
        if let Some(s) = self.subscriber(u.consumer) {
            s.unacked = s.unacked.checked_sub(1).expect(UNACKED_COUNTS);
        }
        if requeue {
            self.queue.push_front(u.entry);
        } else {
            policy.dead_letter(ctx, u.entry, Death::Rejected, self.reader);
        }
    }

    /// Closes `consumer`'s channel: every delivery it holds comes back, in
    /// order (the oldest first in line), and it gets nothing more until it
    /// subscribes again.
    fn close_channel(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy, consumer: NodeId) {
        let Some(s) = self.subscriber(consumer) else { return };
        let holds = s.unacked > 0;
        if std::mem::replace(&mut s.active, false) {
            self.inactive += 1;
        }
        if !holds {
            return;
        }
        let tags: Vec<u64> = self.unacked.iter().filter(|(_, u)| u.consumer == consumer).map(|(&t, _)| t).collect();
        for tag in tags.into_iter().rev() {
            self.take_back(ctx, policy, tag, true);
        }
    }

    /// A non-durable queue whose last consumer is gone is deleted with all
    /// it holds (a new one starts empty when a consumer subscribes again).
    fn delete_if_abandoned(&mut self, ctx: &mut Ctx<QueueTimer>) {
        if self.exists() {
            return;
        }
        let deleted = self.queue.len() + self.unacked.len();
        if deleted > 0 {
            ctx.metric_add("deleted_with_subscription", deleted as f64);
            let ids = self.queue.iter().map(|e| e.rec.id).chain(self.unacked.values().map(|u| u.entry.rec.id));
            for id in ids.collect::<Vec<_>>() {
                discard(ctx, self.reader, id, LossCause::SubscriptionDeleted);
            }
        }
        self.queue.clear();
        self.unacked.clear();
        for s in &mut self.subscribers {
            s.unacked = 0;
        }
        self.deadlines.cancel_all(ctx, QueueTimer::Redeliver(self.index));
        if self.expiry.take().is_some() {
            ctx.cancel_timer(QueueTimer::Expire(self.index));
        }
    }

    /// Tells `consumer` its session is cancelled, and arranges to tell it again.
    fn notify_cancelled(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy, consumer: NodeId) {
        let Some(session) = self.subscriber(consumer).map(|s| s.session) else { return };
        ctx.send(consumer, QueueMsg::Cancelled { session });
        let again = ctx.now().saturating_add(policy.redelivery_ns);
        self.cancel_notices.add(ctx, again, u64::from(consumer), QueueTimer::CancelNotice(self.index));
    }

    /// A `subscribe` from `from`.
    fn subscribe(
        &mut self,
        ctx: &mut Ctx<QueueTimer>,
        policy: &Policy,
        from: NodeId,
        prefetch: u32,
        session: u32,
        auto_ack: bool,
    ) {
        let known = self.by_node.get(&from).copied();
        if known.is_some_and(|i| self.subscribers[i].session == session) {
            // A repeat of a subscribe we already have (its confirmation
            // was lost): confirm again, change nothing.
            ctx.send(from, QueueMsg::Subscribed { session });
            return;
        }
        // A new connection: whatever this consumer had unacked comes back.
        self.close_channel(ctx, policy, from);
        match known {
            Some(i) => {
                let s = &mut self.subscribers[i];
                if !s.active {
                    self.inactive -= 1;
                }
                (s.prefetch, s.session, s.auto_ack, s.active) = (prefetch, session, auto_ack, true);
            }
            None => {
                self.by_node.insert(from, self.subscribers.len());
                self.subscribers.push(Subscriber { node: from, prefetch, unacked: 0, session, auto_ack, active: true })
            }
        }
        ctx.send(from, QueueMsg::Subscribed { session });
        self.dispatch(ctx, policy);
        self.settle_timers(ctx);
    }

    /// `from`'s connection closed. Returns whether anything changed.
    fn peer_down(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy, from: NodeId) -> bool {
        // As RabbitMQ does, take back all it held at once. The cancellation
        // sent back names the consumer's session, so a consumer already back
        // (the notice was slow) resubscribes.
        if !self.subscriber(from).is_some_and(|s| s.active) {
            return false;
        }
        self.close_channel(ctx, policy, from);
        self.notify_cancelled(ctx, policy, from);
        self.delete_if_abandoned(ctx);
        self.dispatch(ctx, policy);
        self.settle_timers(ctx);
        true
    }

    /// One of this queue's timers fired.
    fn on_timer(&mut self, ctx: &mut Ctx<QueueTimer>, policy: &Policy, timer: QueueTimer) {
        match timer {
            QueueTimer::Redeliver(_) => {
                let unacked = &self.unacked;
                let expired = self.deadlines.expire(ctx, QueueTimer::Redeliver(self.index), |t, at| {
                    unacked.get(&t).is_some_and(|u| u.deadline == at)
                });
                // A consumer that held a delivery too long is cancelled, and all
                // it held comes back (in reverse, so the oldest is first in line).
                for t in expired {
                    let Some(consumer) = self.unacked.get(&t).map(|u| u.consumer) else { continue };
                    ctx.error("consumer-timeout");
                    self.close_channel(ctx, policy, consumer);
                    self.notify_cancelled(ctx, policy, consumer);
                }
                self.delete_if_abandoned(ctx);
            }
            QueueTimer::Expire(_) => self.expiry = None,
            QueueTimer::CancelNotice(_) => {
                let (subs, by_node) = (&self.subscribers, &self.by_node);
                let cancelled = |node: u64| {
                    NodeId::try_from(node).ok().and_then(|n| by_node.get(&n)).is_some_and(|&i| !subs[i].active)
                };
                for node in
                    self.cancel_notices.expire(ctx, QueueTimer::CancelNotice(self.index), |node, _| cancelled(node))
                {
                    self.notify_cancelled(ctx, policy, node as NodeId);
                }
            }
        }
        self.dispatch(ctx, policy);
    }

    /// In the drain, timers with nothing left to guard would only keep the
    /// run waiting: cancel them. (During the run this would cancel and re-arm
    /// them for every message.)
    fn settle_timers(&mut self, ctx: &mut Ctx<QueueTimer>) {
        if !ctx.draining() {
            return;
        }
        if self.unacked.is_empty() {
            self.deadlines.cancel_all(ctx, QueueTimer::Redeliver(self.index));
        }
        if self.queue.is_empty() && self.expiry.take().is_some() {
            ctx.cancel_timer(QueueTimer::Expire(self.index));
        }
        if self.inactive == 0 {
            self.cancel_notices.cancel_all(ctx, QueueTimer::CancelNotice(self.index));
        }
    }

    /// The broker crashed; `persisted` says whether this queue's messages
    /// were on disk.
    fn crash(&mut self, persisted: bool) {
        let unacked = std::mem::take(&mut self.unacked);
        if persisted {
            for u in unacked.into_values().rev() {
                self.queue.push_front(u.entry);
            }
        } else {
            self.queue.clear();
        }
        // Connections reconnect when the broker comes back, cancelled ones too.
        for s in &mut self.subscribers {
            s.unacked = 0;
            s.active = true;
        }
        self.inactive = 0;
        self.deadlines.clear();
        self.expiry = None;
        self.cancel_notices.clear();
    }

    /// Bytes of allocated capacity: the queue's ring, and each unacked
    /// delivery's B-tree entry (its key, value and a share of the node).
    fn memory_bytes(&self) -> usize {
        let unacked_entry = std::mem::size_of::<(u64, Unacked)>() + 16;
        self.queue.capacity() * std::mem::size_of::<Entry>() + self.unacked.len() * unacked_entry
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.queue.iter().map(|e| e.rec.id));
        out.extend(self.unacked.values().map(|u| u.entry.rec.id));
    }
}

/// A running queue broker.
pub struct QueueBroker {
    capacity: Option<u64>,
    durable: bool,
    policy: Policy,
    /// One queue per subscription, in name order; point-to-point: one.
    subs: Vec<SubQueue>,
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
        let subs = if spec.subscriptions.is_empty() {
            vec![SubQueue::new(true, 0, None)]
        } else {
            let reader = |i: usize| route.iter().find(|&(_, &s)| s == i).map(|(&node, _)| node);
            spec.subscriptions.values().enumerate().map(|(i, s)| SubQueue::new(s.durable, i, reader(i))).collect()
        };
        QueueBroker {
            capacity: spec.capacity,
            durable: spec.durable,
            policy: Policy {
                redelivery_ns: ms_to_ns(spec.redelivery_timeout_ms.0).max(1),
                max_deliveries: spec.max_deliveries,
                ttl_ns: spec.ttl_ms.map(|t| ms_to_ns(t.0)),
                dead_letter,
            },
            subs,
            route,
            sequences: BTreeMap::new(),
        }
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
            s.dispatch(ctx, &self.policy);
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
                s.dispatch(ctx, &self.policy);
                self.report_depth(ctx);
                self.subs[i].settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Nack { tag, requeue }) => {
                let Some(i) = self.sub_of(from) else { return };
                let s = &mut self.subs[i];
                s.take_back(ctx, &self.policy, tag, requeue);
                s.dispatch(ctx, &self.policy);
                self.report_depth(ctx);
                self.subs[i].settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Subscribe { prefetch, session, auto_ack }) => {
                let Some(i) = self.sub_of(from) else { return };
                self.subs[i].subscribe(ctx, &self.policy, from, prefetch, session, auto_ack);
                self.report_depth(ctx);
            }
            Msg::Notice(Notice::PeerDown) => {
                let Some(i) = self.sub_of(from) else { return };
                if self.subs[i].peer_down(ctx, &self.policy, from) {
                    self.report_depth(ctx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<QueueTimer>, timer: QueueTimer) {
        let (QueueTimer::Redeliver(i) | QueueTimer::Expire(i) | QueueTimer::CancelNotice(i)) = timer;
        if let Some(s) = self.subs.get_mut(i as usize) {
            s.on_timer(ctx, &self.policy, timer);
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
        self.subs.iter().map(SubQueue::memory_bytes).sum()
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
