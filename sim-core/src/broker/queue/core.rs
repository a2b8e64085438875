//! One AMQP queue with its consumers: what a queue broker holds for each of
//! its queues (see the broker's module for the behaviour it models). A host
//! (the single-node broker, a node of a cluster) feeds it publishes and its
//! consumers' messages, and carries its timers in its own timer type.
//!
//! Speed (issue 17): the redelivery deadlines of the unacked deliveries need
//! no structure of their own. A delivery's deadline is its time plus the
//! queue's constant `redelivery_timeout_ms`, and tags rise with time, so the
//! unacked deliveries in tag order are in deadline order: the earliest is
//! the oldest unacked, and one engine timer, armed for it, serves them all
//! (a [`Deadlines`] kept a second copy of every deadline, about 80
//! instructions per message on the M/M/1 benchmark). The TTL checks run only
//! in a queue where a message can expire.
//!
//! Third round: a subscriber keeps its credit limit (0 while inactive, none
//! with auto-ack or prefetch 0), so the credit check is one comparison; a
//! queue where nothing can expire or pass a delivery limit (`checks` false)
//! dispatches without those checks, and returns inline when its one
//! subscriber is busy (a publish to a queue whose consumer is working: 9 in
//! 10 on the M/M/1 benchmark); an ack reads the two fields it needs of the
//! oldest delivery in place and pops it. With the broker's direct publish,
//! the broker's own cost on that benchmark (callgrind, 200,000 messages)
//! fell from about 785 to about 505 instructions per message.

use crate::engine::{Ctx, Timer};
use crate::ledger::{DupCause, LossCause};
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::QueueMsg;
use crate::ring::Ring;
use crate::time::{Duration, Time};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

use super::by_tag::ByTag;
use super::kind::Overflow;

/// A host of queues: its timer type carries every queue's timers.
pub(crate) trait QueueHost: Timer + From<QueueTimer> {}
impl<T: Timer + From<QueueTimer>> QueueHost for T {}

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
    /// The host's disk sync is due (for every queue at once): persistent
    /// messages written since the last one are now safe, and confirmed.
    Sync,
    /// The host's dead-letter replay is due (`replay_at_ms`): its shovel
    /// moves what its queue holds back to the work queue.
    Replay,
}

/// The timer word of [`QueueTimer::Sync`] (no queue's).
const SYNC_WORD: u64 = u64::MAX;
/// The timer word of [`QueueTimer::Replay`] (no queue's).
const REPLAY_WORD: u64 = u64::MAX - 1;

impl Timer for QueueTimer {
    // Three words per queue: queue k uses 3k, 3k + 1 and 3k + 2.
    fn to_word(self) -> u64 {
        match self {
            QueueTimer::Redeliver(q) => 3 * u64::from(q),
            QueueTimer::Expire(q) => 3 * u64::from(q) + 1,
            QueueTimer::CancelNotice(q) => 3 * u64::from(q) + 2,
            QueueTimer::Sync => SYNC_WORD,
            QueueTimer::Replay => REPLAY_WORD,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        if word == SYNC_WORD {
            return Some(QueueTimer::Sync);
        }
        if word == REPLAY_WORD {
            return Some(QueueTimer::Replay);
        }
        let q = u32::try_from(word / 3).ok()?;
        Some(match word % 3 {
            0 => QueueTimer::Redeliver(q),
            1 => QueueTimer::Expire(q),
            _ => QueueTimer::CancelNotice(q),
        })
    }
}

pub(crate) struct Subscriber {
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
    /// The most deliveries it may hold unacked now, from the four fields
    /// above (see [`Subscriber::set`]): 0 while it is not active, no limit
    /// with auto-ack or prefetch 0. The credit check of every delivery is
    /// then one comparison.
    limit: u32,
}

/// Why a subscriber's `unacked` cannot be 0 when one of its deliveries leaves.
const UNACKED_COUNTS: &str = "a subscriber's unacked counts its deliveries awaiting an ack";

impl Subscriber {
    /// A subscriber as a `subscribe` makes it.
    fn new(node: NodeId, prefetch: u32, session: u32, auto_ack: bool) -> Self {
        let mut s = Subscriber { node, prefetch, unacked: 0, session, auto_ack, active: true, limit: 0 };
        s.set(prefetch, session, auto_ack, true);
        s
    }

    /// Sets what a subscribe or a cancellation changes, and the limit that
    /// follows. Prefetch 0 is no limit, as `basic.qos` 0 (RabbitMQ's
    /// default); an auto-ack subscriber has none either.
    fn set(&mut self, prefetch: u32, session: u32, auto_ack: bool, active: bool) {
        (self.prefetch, self.session, self.auto_ack, self.active) = (prefetch, session, auto_ack, active);
        self.limit = match (active, auto_ack || prefetch == 0) {
            (false, _) => 0,
            (true, true) => u32::MAX,
            (true, false) => prefetch,
        };
    }

    /// Makes it active or not, keeping the rest.
    fn set_active(&mut self, active: bool) {
        self.set(self.prefetch, self.session, self.auto_ack, active);
    }

    /// Whether it may take one more delivery now (an auto-ack subscriber
    /// never counts any, so it stays below its limit).
    #[inline]
    fn has_credit(&self) -> bool {
        self.unacked < self.limit
    }
}

/// A message in the queue, with what the broker knows about it.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) rec: Record,
    /// When it entered this queue (TTL counts from here).
    pub(crate) published_at: Time,
    /// How many times it was delivered.
    pub(crate) deliveries: u32,
    /// The broker's number of the routing key it was published with (dead
    /// letters keep it unless their queue sets one).
    pub(crate) key: u32,
    /// Published persistent (delivery mode 2): kept across a restart when
    /// its queue is durable.
    pub(crate) persistent: bool,
    /// When it expires: its publication plus the lower of the queue's TTL
    /// and its own (`expiration`); never when neither is set.
    pub(crate) expires_at: Option<Time>,
}

impl Entry {
    /// `rec` entering a queue of `policy` at `now`, with its own TTL `ttl`
    /// (routing key 0, transient: set them after).
    pub(crate) fn new(rec: Record, now: Time, ttl: Option<Duration>, policy: &Policy) -> Self {
        let ttl = match (ttl, policy.ttl_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let expires_at = ttl.map(|t| now.saturating_add(t));
        Entry { rec, published_at: now, deliveries: 0, key: 0, persistent: false, expires_at }
    }

    /// Whether it has expired at `now`. With `spare_fresh`, a message with
    /// TTL 0 published at this very instant has not: it may still go to a
    /// consumer that takes it at once.
    fn expired(&self, now: Time, spare_fresh: bool) -> bool {
        self.expires_at.is_some_and(|at| now >= at && !(spare_fresh && at == self.published_at && now == at))
    }
}

pub(crate) struct Unacked {
    consumer: NodeId,
    /// Where its consumer is in the queue's subscribers.
    sub: u32,
    entry: Entry,
    deadline: Time,
}

/// Why a message left the queue without being acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    Rejected,
    DeliveryLimit,
    Expired,
    /// Dropped from the head of a full queue (`drop-head`; RabbitMQ's
    /// dead-letter reason `maxlen`).
    MaxLength,
    /// Refused by a full queue with `reject-publish-dlx`.
    RejectedPublish,
}

impl Death {
    fn kind(self) -> &'static str {
        match self {
            Death::Rejected => "rejected-by-consumer",
            Death::DeliveryLimit => "delivery-limit",
            Death::Expired => "expired",
            Death::MaxLength => "dropped-head",
            Death::RejectedPublish => "rejected",
        }
    }

    fn cause(self) -> LossCause {
        match self {
            Death::Rejected | Death::DeliveryLimit => LossCause::DeadLetter,
            Death::Expired => LossCause::Ttl,
            Death::MaxLength => LossCause::DroppedHead,
            Death::RejectedPublish => LossCause::Shed,
        }
    }
}

/// A queue's settings.
pub(crate) struct Policy {
    pub(crate) redelivery_ns: Duration,
    /// Returns a message may make and still be delivered (`x-delivery-limit`).
    pub(crate) delivery_limit: Option<u32>,
    pub(crate) ttl_ns: Option<Duration>,
    pub(crate) dead_letter: Option<NodeId>,
    /// The exchange (the broker's number for it) dead letters are routed
    /// through inside the broker, with the routing key they take there
    /// (none: their own).
    pub(crate) dead_letter_exchange: Option<(u32, Option<u32>)>,
    /// Most ready messages (`x-max-length`).
    pub(crate) capacity: Option<u64>,
    /// What a publish to a full queue does (`x-overflow`).
    pub(crate) overflow: Overflow,
    /// A dead-letter queue: what it takes is reported dead-lettered.
    pub(crate) holds_dead_letters: bool,
}

impl Policy {
    /// Whether a message delivered `deliveries` times, each followed by a
    /// return, has come back more often than the delivery limit allows.
    fn past_limit(&self, deliveries: u32) -> bool {
        self.delivery_limit.is_some_and(|l| deliveries > l)
    }
}

/// Reports that `id` was dropped for `cause`: for `reader`'s effect domain
/// only when it is given (one subscription's copy).
pub(crate) fn discard<T: QueueHost>(ctx: &mut Ctx<T>, reader: Option<NodeId>, id: MsgId, cause: LossCause) {
    match reader {
        Some(r) => ctx.discarded_for(r, id, cause),
        None => ctx.discarded(id, cause),
    }
}

/// One queue with its consumers: the whole of a point-to-point broker, or
/// one subscription of a fan-out broker.
pub(crate) struct QueueCore {
    /// Its settings.
    policy: Policy,
    /// A consumer of this subscription, if it is one of several (its effect
    /// domain is the subscription's): what is dropped here is lost there.
    pub(crate) reader: Option<NodeId>,
    /// Whether the queue outlives its consumers (always, point-to-point).
    pub(crate) durable: bool,
    /// This queue's number (its timers name it).
    index: u32,
    pub(crate) queue: Ring<Entry>,
    unacked: ByTag<Unacked>,
    subscribers: Vec<Subscriber>,
    /// Where each consumer is in `subscribers`.
    by_node: BTreeMap<NodeId, usize>,
    /// How many subscribers are not active.
    inactive: usize,
    next_subscriber: usize,
    next_tag: u64,
    /// When the engine timer for the redelivery deadlines fires, if one is
    /// set. At most one is: it is armed for the earliest deadline of the
    /// unacked deliveries (or for a new one when none was armed), and a new
    /// deadline is never earlier than an armed one (see the module doc).
    redeliver_at: Option<Time>,
    /// When the pending expiry timer fires, if one is.
    expiry: Option<Time>,
    /// Cancelled consumers are told again every `redelivery_timeout_ms`
    /// until they subscribe anew: the notice may be lost on the network.
    cancel_notices: Deadlines,
    /// Dead letters for the dead-letter exchange, until the broker routes them.
    dead: Vec<(Entry, Death)>,
    /// The ids of the messages that left the queue for good (acked,
    /// dead-lettered, expired), when its host replicates them (a quorum
    /// queue's leader); `None` when nobody asks.
    settled: Option<Vec<MsgId>>,
    // Back-pressure (issue 15): where the backlog sits.
    /// The most deliveries awaiting an ack at once so far (the part of
    /// the backlog its consumers hold), reported as `max_unacked`.
    peak_unacked: usize,
    /// A message with its own TTL entered through [`QueueCore::enqueue`]
    /// (the other ways in carry the queue's TTL only): with no TTL of the
    /// queue's either, no message can expire, and dispatch skips the checks.
    own_ttls: bool,
    /// A message may expire or be past the delivery limit here (`own_ttls`,
    /// a TTL or a delivery limit of the queue's): dispatch checks for them.
    /// Without, it takes the short way (see [`QueueCore::dispatch`]).
    checks: bool,
}

impl QueueCore {
    /// Collects the ids of the messages that leave the queue for good, for
    /// [`QueueCore::take_settled`].
    pub(crate) fn tracking_settled(mut self) -> Self {
        self.settled = Some(Vec::new());
        self
    }

    /// Numbers deliveries from `tag` on (a new leader's tags must not be
    /// mistaken for its predecessor's).
    pub(crate) fn with_first_tag(mut self, tag: u64) -> Self {
        self.next_tag = tag;
        self
    }

    /// The ids settled since the last call (none unless tracking).
    pub(crate) fn take_settled(&mut self) -> Vec<MsgId> {
        self.settled.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn settle(&mut self, id: MsgId) {
        if let Some(s) = &mut self.settled {
            s.push(id);
        }
    }

    pub(crate) fn new(policy: Policy, durable: bool, index: usize, reader: Option<NodeId>) -> Self {
        QueueCore {
            reader,
            durable,
            index: index as u32,
            queue: Ring::new(),
            unacked: ByTag::default(),
            subscribers: Vec::new(),
            by_node: BTreeMap::new(),
            inactive: 0,
            next_subscriber: 0,
            next_tag: 0,
            redeliver_at: None,
            expiry: None,
            cancel_notices: Deadlines::default(),
            dead: Vec::new(),
            settled: None,
            checks: policy.ttl_ns.is_some() || policy.delivery_limit.is_some(),
            peak_unacked: 0,
            own_ttls: false,
            policy,
        }
    }

    /// Makes dispatch take the checked path always (for tests of the
    /// shortcut).
    #[cfg(test)]
    pub(crate) fn check_always(&mut self) {
        self.checks = true;
    }

    /// Its settings.
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the queue exists: a non-durable one only while one of its
    /// consumers is connected.
    pub(crate) fn exists(&self) -> bool {
        self.durable || self.subscribers.len() > self.inactive
    }

    /// A message leaves this queue for good: to the dead-letter exchange
    /// (held in [`QueueCore::dead`] for the broker to route), to the
    /// dead-letter broker, or gone.
    fn dead_letter<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, entry: Entry, why: Death) {
        self.settle(entry.rec.id);
        ctx.error(why.kind());
        discard(ctx, self.reader, entry.rec.id, why.cause());
        if self.policy.dead_letter_exchange.is_some() {
            self.dead.push((entry, why));
        } else if let Some(dlq) = self.policy.dead_letter {
            // Dead-lettering keeps the message's properties, its delivery mode too.
            // RabbitMQ removes a dead-lettered message's own expiration.
            let (rec, persistent, expiration) = (entry.rec, entry.persistent, crate::protocol::NO_EXPIRATION);
            let (channel, tag, route) = (0, 0, 0);
            let publish =
                QueueMsg::Publish { rec, want_ack: false, attempt: 1, channel, tag, persistent, route, expiration };
            ctx.send(dlq, publish);
        }
    }

    /// Routes this queue's dead letters through exchange `dlx` (the
    /// broker's number for it, with the routing key they take, if fixed).
    pub(crate) fn set_dead_letter_exchange(&mut self, dlx: Option<(u32, Option<u32>)>) {
        self.policy.dead_letter_exchange = dlx;
    }

    /// The exchange its dead letters go through, and their fixed key.
    pub(crate) fn dead_letter_exchange(&self) -> Option<(u32, Option<u32>)> {
        self.policy.dead_letter_exchange
    }

    /// Takes the dead letters waiting to be routed through the dead-letter
    /// exchange, oldest first.
    pub(crate) fn take_dead(&mut self) -> Vec<(Entry, Death)> {
        std::mem::take(&mut self.dead)
    }

    /// The subscriber `node`, if it ever subscribed.
    pub(crate) fn subscriber(&mut self, node: NodeId) -> Option<&mut Subscriber> {
        self.by_node.get(&node).map(|&i| &mut self.subscribers[i])
    }

    /// A publish reaches this queue. At `capacity`, `reject-publish` refuses
    /// it (returns false; `reject-publish-dlx` dead-letters it too), and
    /// `drop-head` accepts it and drops the oldest ready messages, once a
    /// consumer has taken what it can at once (a message a consumer takes
    /// never counts against the limit).
    #[inline]
    pub(crate) fn enqueue<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, entry: Entry) -> bool {
        if !self.takes_all() {
            return self.enqueue_checked(ctx, entry);
        }
        self.enqueue_unchecked(entry);
        true
    }

    /// Whether [`QueueCore::enqueue`] takes every publish (no capacity,
    /// not a dead-letter queue): then [`QueueCore::enqueue_unchecked`]
    /// does what it does.
    #[inline(always)]
    pub(crate) fn takes_all(&self) -> bool {
        !(self.policy.holds_dead_letters || self.policy.capacity.is_some())
    }

    /// [`QueueCore::enqueue`] for a queue that [`QueueCore::takes_all`].
    /// Always inlined, with the entry built in the call: it is then written
    /// straight into the queue (an entry built on the stack first, then
    /// copied, was read back in wide words before its field-by-field
    /// stores had retired: a store-forwarding stall on every publish).
    #[inline(always)]
    pub(crate) fn enqueue_unchecked(&mut self, entry: Entry) {
        self.note_ttl(&entry);
        self.queue.push_back(entry);
    }

    /// Notes that `entry`, entering, may carry its own TTL.
    #[inline(always)]
    fn note_ttl(&mut self, entry: &Entry) {
        if entry.expires_at.is_some() {
            self.own_ttls = true;
            self.checks = true;
        }
    }

    /// [`QueueCore::enqueue`] into a dead-letter queue or one with a capacity.
    #[inline(never)]
    pub(crate) fn enqueue_checked<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, entry: Entry) -> bool {
        if self.policy.holds_dead_letters && self.admits() {
            ctx.dead_lettered(entry.rec.id);
        }
        self.note_ttl(&entry);
        let Some(cap) = self.policy.capacity else {
            self.queue.push_back(entry);
            return true;
        };
        if self.policy.overflow != Overflow::DropHead && self.queue.len() as u64 >= cap {
            if self.policy.overflow == Overflow::RejectPublishDlx {
                self.dead_letter(ctx, entry, Death::RejectedPublish);
            } else {
                ctx.error("rejected");
                discard(ctx, self.reader, entry.rec.id, LossCause::Shed);
            }
            return false;
        }
        self.queue.push_back(entry);
        if self.queue.len() as u64 > cap {
            self.dispatch(ctx);
        }
        while self.queue.len() as u64 > cap {
            let head = self.queue.pop_front().expect("a queue over its capacity is not empty");
            ctx.metric_add("dropped_head", 1.0);
            self.dead_letter(ctx, head, Death::MaxLength);
        }
        true
    }

    /// Whether a new message would be taken (not refused by a full queue).
    fn admits(&self) -> bool {
        self.policy
            .capacity
            .is_none_or(|cap| self.policy.overflow == Overflow::DropHead || (self.queue.len() as u64) < cap)
    }

    /// Makes it a dead-letter queue: what it takes is reported dead-lettered.
    pub(crate) fn hold_dead_letters(&mut self) {
        self.policy.holds_dead_letters = true;
    }

    /// Takes every ready message out of the queue, oldest first (a shovel
    /// moving them elsewhere): they leave it for good.
    pub(crate) fn take_ready(&mut self) -> Vec<Entry> {
        let taken: Vec<Entry> = self.queue.drain_all().collect();
        for e in &taken {
            self.settle(e.rec.id);
        }
        taken
    }

    /// Pushes queued messages to subscribers with free credit, round-robin,
    /// expiring what has outlived its TTL on the way: a message with TTL 0
    /// goes to a consumer only if one takes it the moment it arrives.
    ///
    /// Where nothing can expire or be past its limit (`checks` is false),
    /// a queue with one subscriber dispatches inline (see
    /// [`QueueCore::dispatch_one`]: a publish while the consumer is busy
    /// returns at once, an ack delivers the next message), and any other
    /// returns at once when it is empty.
    #[inline(always)]
    pub(crate) fn dispatch<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        if self.checks {
            return self.dispatch_checked(ctx);
        }
        if self.subscribers.len() == 1 {
            self.dispatch_one(ctx);
        } else if !self.queue.is_empty() {
            self.dispatch_ready(ctx);
        }
    }

    /// [`QueueCore::dispatch_ready`] when there is one subscriber: the
    /// round robin over one picks it whenever it has credit (and leaves
    /// `next_subscriber` at 0), so its first turn is to take the head of
    /// the queue if it has credit (the checks come in the other order, but
    /// neither changes anything). That turn is taken here, inline and
    /// without a loop (with prefetch 1 it is the only one); the rest, if
    /// it still has credit and more is waiting, is the general loop's.
    #[inline(always)]
    fn dispatch_one<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        if !self.subscribers[0].has_credit() {
            return;
        }
        let Some(entry) = self.queue.pop_front() else { return };
        self.next_subscriber = 0;
        self.deliver(ctx, 0, entry);
        if self.subscribers[0].has_credit() && !self.queue.is_empty() {
            self.dispatch_ready(ctx);
        }
    }

    /// [`QueueCore::dispatch`] without checks, once there may be work.
    #[inline(never)]
    fn dispatch_ready<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        while !self.queue.is_empty() {
            let Some(i) = self.next_with_credit() else { break };
            self.next_subscriber = if i + 1 == self.subscribers.len() { 0 } else { i + 1 };
            let entry = self.queue.pop_front().expect("queue is not empty");
            self.deliver(ctx, i, entry);
        }
    }

    /// [`QueueCore::dispatch`] in a queue where a message may expire or
    /// be past its delivery limit.
    #[inline(never)]
    fn dispatch_checked<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        let may_expire = self.own_ttls || self.policy.ttl_ns.is_some();
        if may_expire {
            self.expire_head(ctx, true);
        }
        while !self.queue.is_empty() {
            let Some(i) = self.next_with_credit() else { break };
            self.next_subscriber = if i + 1 == self.subscribers.len() { 0 } else { i + 1 };
            let entry = self.queue.pop_front().expect("queue is not empty");
            if self.policy.past_limit(entry.deliveries) {
                // Checked at the return too; this catches what a broker
                // restart put back.
                self.dead_letter(ctx, entry, Death::DeliveryLimit);
                continue;
            }
            self.deliver(ctx, i, entry);
            if may_expire {
                self.expire_head(ctx, true);
            }
        }
        if may_expire {
            self.expire_head(ctx, false);
            self.arm_expiry(ctx);
        }
    }

    /// Delivers `entry` to subscriber `i`, who has credit.
    #[inline(always)]
    fn deliver<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, i: usize, mut entry: Entry) {
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
            let deadline = ctx.now().saturating_add(self.policy.redelivery_ns);
            self.unacked.insert(tag, Unacked { consumer: sub.node, sub: i as u32, entry, deadline });
            if self.unacked.len() > self.peak_unacked {
                self.peak_unacked = self.unacked.len();
                ctx.metric_max("max_unacked", self.peak_unacked as f64);
            }
            self.arm_redelivery(ctx, deadline);
        } else {
            self.settle(entry.rec.id);
        }
    }

    /// The subscriber with credit next in turn (round-robin, from
    /// `next_subscriber`), if any has credit.
    #[inline]
    fn next_with_credit(&self) -> Option<usize> {
        // Subscribers are never removed, so the next in turn is in range.
        let subs = &self.subscribers[..];
        let start = if self.next_subscriber < subs.len() { self.next_subscriber } else { 0 };
        let (before, after) = subs.split_at(start);
        match after.iter().position(Subscriber::has_credit) {
            Some(j) => Some(start + j),
            None => before.iter().position(Subscriber::has_credit),
        }
    }

    /// Sets the redelivery timer for a deadline `at`, unless one fires by
    /// then (nearly always: always inlined, the test is all a delivery pays).
    #[inline(always)]
    fn arm_redelivery<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, at: Time) {
        if self.redeliver_at.is_none_or(|t| at < t) {
            ctx.set_timer(at.saturating_sub(ctx.now()), T::from(QueueTimer::Redeliver(self.index)));
            self.redeliver_at = Some(at);
        }
    }

    /// Cancels the redelivery timer, if one is set.
    fn cancel_redelivery<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        if self.redeliver_at.take().is_some() {
            ctx.cancel_timer(T::from(QueueTimer::Redeliver(self.index)));
        }
    }

    /// Removes expired messages from the head of the queue (sparing one
    /// with TTL 0 published this instant when `spare_fresh`).
    pub(crate) fn expire_head<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, spare_fresh: bool) {
        while self.queue.front().is_some_and(|e| e.expired(ctx.now(), spare_fresh)) {
            let entry = self.queue.pop_front().expect("the head exists");
            self.dead_letter(ctx, entry, Death::Expired);
        }
    }

    /// Keeps one timer set for when the head of the queue expires.
    pub(crate) fn arm_expiry<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        let Some(due) = self.queue.front().and_then(|head| head.expires_at) else { return };
        if self.expiry.is_none_or(|at| due < at) {
            if self.expiry.take().is_some() {
                ctx.cancel_timer(T::from(QueueTimer::Expire(self.index)));
            }
            ctx.set_timer(due.saturating_sub(ctx.now()), T::from(QueueTimer::Expire(self.index)));
            self.expiry = Some(due);
        }
    }

    /// Forgets an acked delivery. Always inlined into the broker's ack (a
    /// call per message otherwise).
    #[inline(always)]
    pub(crate) fn ack(&mut self, tag: u64) -> Option<MsgId> {
        let (sub, id) = self.unacked.remove_with(tag, |u| (u.sub, u.entry.rec.id))?;
        let s = &mut self.subscribers[sub as usize];
        s.unacked = s.unacked.checked_sub(1).expect(UNACKED_COUNTS);
        self.settle(id);
        Some(id)
    }

    /// Takes back an unacked delivery: to the head of the queue, or, when
    /// the consumer rejected it or it has come back more often than the
    /// delivery limit allows, to the dead letters.
    pub(crate) fn take_back<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, tag: u64, requeue: bool) {
        let Some(u) = self.unacked.remove(tag) else { return };
        let s = &mut self.subscribers[u.sub as usize];
        s.unacked = s.unacked.checked_sub(1).expect(UNACKED_COUNTS);
        if requeue && self.policy.past_limit(u.entry.deliveries) {
            self.dead_letter(ctx, u.entry, Death::DeliveryLimit);
        } else if requeue {
            self.queue.push_front(u.entry);
        } else {
            self.dead_letter(ctx, u.entry, Death::Rejected);
        }
    }

    /// Closes `consumer`'s channel: every delivery it holds comes back, in
    /// order (the oldest first in line), and it gets nothing more until it
    /// subscribes again.
    pub(crate) fn close_channel<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, consumer: NodeId) {
        let Some(s) = self.subscriber(consumer) else { return };
        let holds = s.unacked > 0;
        if s.active {
            s.set_active(false);
            self.inactive += 1;
        }
        if !holds {
            return;
        }
        let tags: Vec<u64> = self.unacked.iter().filter(|(_, u)| u.consumer == consumer).map(|(t, _)| t).collect();
        for tag in tags.into_iter().rev() {
            self.take_back(ctx, tag, true);
        }
    }

    /// A non-durable queue whose last consumer is gone is deleted with all
    /// it holds (a new one starts empty when a consumer subscribes again).
    pub(crate) fn delete_if_abandoned<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
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
        self.cancel_redelivery(ctx);
        if self.expiry.take().is_some() {
            ctx.cancel_timer(T::from(QueueTimer::Expire(self.index)));
        }
    }

    /// Tells `consumer` its session is cancelled, and arranges to tell it again.
    pub(crate) fn notify_cancelled<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, consumer: NodeId) {
        let Some(session) = self.subscriber(consumer).map(|s| s.session) else { return };
        ctx.send(consumer, QueueMsg::Cancelled { session });
        let again = ctx.now().saturating_add(self.policy.redelivery_ns);
        self.cancel_notices.add(ctx, again, u64::from(consumer), T::from(QueueTimer::CancelNotice(self.index)));
    }

    /// A `subscribe` from `from`.
    pub(crate) fn subscribe<T: QueueHost>(
        &mut self,
        ctx: &mut Ctx<T>,
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
        // A new connection: the old channel closes first, and whatever it
        // held goes back to the queue for any consumer that can take it;
        // this one gets them only once it is subscribed anew, like any other.
        self.close_channel(ctx, from);
        self.dispatch(ctx);
        match known {
            Some(i) => {
                let s = &mut self.subscribers[i];
                if !s.active {
                    self.inactive -= 1;
                }
                s.set(prefetch, session, auto_ack, true);
            }
            None => {
                self.by_node.insert(from, self.subscribers.len());
                self.subscribers.push(Subscriber::new(from, prefetch, session, auto_ack));
            }
        }
        ctx.send(from, QueueMsg::Subscribed { session });
        self.dispatch(ctx);
        self.settle_timers(ctx);
    }

    /// `from`'s connection closed. Returns whether anything changed.
    pub(crate) fn peer_down<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, from: NodeId) -> bool {
        // As RabbitMQ does, take back all it held at once. The cancellation
        // sent back names the consumer's session, so a consumer already back
        // (the notice was slow) resubscribes.
        if !self.subscriber(from).is_some_and(|s| s.active) {
            return false;
        }
        self.close_channel(ctx, from);
        self.notify_cancelled(ctx, from);
        self.delete_if_abandoned(ctx);
        self.dispatch(ctx);
        self.settle_timers(ctx);
        true
    }

    /// One of this queue's timers fired.
    pub(crate) fn on_timer<T: QueueHost>(&mut self, ctx: &mut Ctx<T>, timer: QueueTimer) {
        match timer {
            QueueTimer::Redeliver(_) => {
                // The deliveries past their deadline, in deadline order (tag
                // order); the timer is set again for the earliest other one.
                let now = ctx.now();
                if self.redeliver_at == Some(now) {
                    self.redeliver_at = None;
                }
                let expired: Vec<u64> =
                    self.unacked.iter().take_while(|(_, u)| u.deadline <= now).map(|(t, _)| t).collect();
                let next = self.unacked.values().map(|u| u.deadline).find(|&at| at > now);
                if let Some(next) = next {
                    self.arm_redelivery(ctx, next);
                }
                // A consumer that held a delivery too long is cancelled, and all
                // it held comes back (in reverse, so the oldest is first in line).
                for t in expired {
                    let Some(consumer) = self.unacked.get(t).map(|u| u.consumer) else { continue };
                    ctx.error("consumer-timeout");
                    self.close_channel(ctx, consumer);
                    self.notify_cancelled(ctx, consumer);
                }
                self.delete_if_abandoned(ctx);
            }
            QueueTimer::Expire(_) => self.expiry = None,
            QueueTimer::Sync | QueueTimer::Replay => {} // the host's
            QueueTimer::CancelNotice(_) => {
                let (subs, by_node) = (&self.subscribers, &self.by_node);
                let cancelled = |node: u64| {
                    NodeId::try_from(node).ok().and_then(|n| by_node.get(&n)).is_some_and(|&i| !subs[i].active)
                };
                for node in self
                    .cancel_notices
                    .expire(ctx, T::from(QueueTimer::CancelNotice(self.index)), |node, _| cancelled(node))
                {
                    self.notify_cancelled(ctx, node as NodeId);
                }
            }
        }
        self.dispatch(ctx);
    }

    /// In the drain, timers with nothing left to guard would only keep the
    /// run waiting: cancel them. (During the run this would cancel and re-arm
    /// them for every message.)
    #[inline(always)]
    pub(crate) fn settle_timers<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        if ctx.draining() {
            self.settle_timers_in_drain(ctx);
        }
    }

    /// [`QueueCore::settle_timers`] once draining (off the hot path).
    #[cold]
    #[inline(never)]
    fn settle_timers_in_drain<T: QueueHost>(&mut self, ctx: &mut Ctx<T>) {
        if self.unacked.is_empty() {
            self.cancel_redelivery(ctx);
        }
        if self.queue.is_empty() && self.expiry.take().is_some() {
            ctx.cancel_timer(T::from(QueueTimer::Expire(self.index)));
        }
        if self.inactive == 0 {
            self.cancel_notices.cancel_all(ctx, T::from(QueueTimer::CancelNotice(self.index)));
        }
    }

    /// The broker crashed; `persisted` says whether this queue is on disk
    /// (durable). A durable queue keeps its persistent messages and loses
    /// its transient ones, whose ids it returns; a queue that is not
    /// durable loses everything.
    pub(crate) fn crash(&mut self, persisted: bool) -> Vec<MsgId> {
        let unacked = self.unacked.take_values();
        let mut transient = Vec::new();
        if persisted {
            for u in unacked.into_iter().rev() {
                self.queue.push_front(u.entry);
            }
            transient.extend(self.queue.iter().filter(|e| !e.persistent).map(|e| e.rec.id));
            self.queue.retain(|e| e.persistent);
        } else {
            self.queue.clear();
        }
        // Connections reconnect when the broker comes back, cancelled ones too.
        for s in &mut self.subscribers {
            s.unacked = 0;
            s.set_active(true);
        }
        self.inactive = 0;
        self.redeliver_at = None;
        self.expiry = None;
        self.cancel_notices.clear();
        transient
    }

    /// Bytes of allocated capacity: the queue's ring, and the ring of
    /// unacked deliveries.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.queue.memory_bytes() + self.unacked.memory_bytes()
    }

    /// The bytes it stores: every message it holds, ready or awaiting an
    /// ack (RabbitMQ keeps a delivered message until it is acked). Counted
    /// when asked (once a sample), so nothing is kept up to date per message.
    pub(crate) fn stored_bytes(&self) -> u64 {
        let ready: u64 = self.queue.iter().map(|e| u64::from(e.rec.bytes)).sum();
        ready + self.unacked.values().map(|u| u64::from(u.entry.rec.bytes)).sum::<u64>()
    }

    /// How many deliveries await an ack: the messages its consumers hold.
    pub(crate) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    pub(crate) fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.queue.iter().map(|e| e.rec.id));
        out.extend(self.unacked.values().map(|u| u.entry.rec.id));
    }
}
