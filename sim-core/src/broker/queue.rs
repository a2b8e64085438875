//! The queue broker: FIFO queues, RabbitMQ-like. Producers publish into
//! it (and get an ack if they asked for one); subscribed consumers receive
//! messages pushed to them, at most `prefetch` unacknowledged at a time
//! each, and ack them when done, or nack them when processing failed.
//!
//! Point-to-point, fan-out, or routed: a broker without `subscriptions`
//! or `queues` is one queue whose consumers compete for its messages. A
//! broker with subscriptions is a fanout exchange with one queue per
//! subscription: every publish is copied into each subscription's queue
//! (one ack to the producer), consumers name the subscription they read,
//! and the consumers of one subscription compete for its copies. A broker
//! with named `queues` routes each publish through the exchange and with
//! the routing key its producer names (see [`exchange`]), and a queue may
//! dead-letter through an exchange of the broker, back to itself if a
//! rejection breaks the cycle (see `republish_dead`). Every queue behaves
//! in every way like the single queue described below.
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
//! consumer re-subscribed after a restart (the old channel closes first, so
//! any consumer with credit gets what it held, the reconnected one only
//! like any other), or it held a delivery longer than
//! `redelivery_timeout_ms` (RabbitMQ's `consumer_timeout`, 30 min by
//! default) without acking: the broker then cancels the consumer, takes
//! back every delivery it held, and the consumer must subscribe again. It
//! leaves the queue for good, and goes to the `dead_letter` broker if there
//! is one (else it is discarded), when it is nacked without requeue, when
//! it comes back more than `delivery_limit` times (RabbitMQ's
//! `x-delivery-limit`, as RabbitMQ 4.0 to 4.2 count returns: every return,
//! whatever its reason; 4.3 counts failed deliveries only), when it
//! expires, and when a full queue drops it (below).
//!
//! Publisher confirms (see `confirm.rs`): a producer's publishes are
//! numbered on its channel, and the broker confirms each once it is safe:
//! a transient message, or one no durable queue keeps, at once when it is
//! enqueued; a persistent message in a durable broker's durable queue when
//! it is on disk, at the next sync (at most `sync_interval_ms` after it
//! came), where one confirm with `multiple` covers every publish of the
//! channel that the sync made safe. There is no publisher deduplication: a
//! resend is enqueued again (RabbitMQ has it on streams only, so an
//! idempotent producer is refused at validation).
//!
//! Capacity (`x-max-length`, counting ready messages only, not unacked
//! ones): with `overflow = "drop-head"` (RabbitMQ's default) a publish to a
//! full queue is accepted and confirmed, and the oldest ready message is
//! dropped (dead-lettered when there is a `dead_letter` broker or exchange; metric
//! `dropped_head`, error `dropped-head`, loss cause `dropped_head`). With
//! `"reject-publish"` the publish is refused (a negative ack when the
//! producer waits for one; silently dropped when it does not, which the
//! ledger then counts as lost, cause `shed`); `"reject-publish-dlx"` also
//! dead-letters the refused message. With several queues, the limit applies
//! to each queue: a queue that refuses its copy makes the
//! publish nacked, while the others keep theirs, as RabbitMQ does.
//!
//! Crash: a durable broker keeps the persistent messages of its durable
//! subscriptions' queues and puts every unacked persistent delivery back
//! into them on restart; their transient messages (AMQP delivery mode 1,
//! the clients' default) are lost (cause `transient`). A non-durable broker
//! loses everything. A non-durable subscription's queue is never persisted.
//! A crash is a process crash: persistent messages written but not yet
//! synced survive it (the operating system still writes them), but their
//! confirms, not yet sent, die with it, so their producers resend them.
//! Subscriptions are reconnected on restart in either case, with fresh
//! credit.
//!
//! TTL is enforced at the head of the queue, as RabbitMQ's classic queues
//! do: a message expires when it is the oldest waiting and its time is up
//! (messages behind it wait until they reach the head, so all messages
//! share one TTL timer). Its time is the lower of the queue's `ttl_ms` and
//! its own (the producer's `message_ttl_ms`, AMQP's `expiration`, which a
//! dead-lettered copy loses). A TTL of 0 delivers a message to a consumer
//! that takes it at once, and expires it otherwise.
//!
//! The queue-depth gauge (the sum over subscriptions) is updated when the
//! broker acts, so while it is down the gauge keeps the depth it had when
//! it crashed.
//!
//! Dead-letter queues: a broker named as another's `dead_letter`, and a
//! named queue with `dead_letter_queue = true`, hold what could not be
//! processed, for a person or a replay: each message they take is reported
//! dead-lettered (`ctx.dead_lettered`). A wait queue of a delayed retry is
//! not one. A dead-letter broker with `replay_to` replays (see [`replay`]):
//! at `replay_at_ms` a shovel moves every message it holds ready then back
//! to the work broker, same ids (metric `replayed`).
//!
//! Back-pressure gauges, read at each sample: `stored_bytes`, the bytes of
//! every message the broker holds, ready or delivered and not yet acked
//! (what a disk alarm watches; a message weighs its record's `bytes`, its
//! body, with no per-message overhead), and `unacked`, the deliveries its
//! consumers hold; `max_unacked` (a metric) is the most one queue had at
//! once, kept exact at each delivery.
//!
//! Left out here: priorities, `x-max-length-bytes`, and a delay on a nack
//! with requeue (a requeued message is available again at once; a delayed
//! retry goes through a dead-letter exchange and a wait queue's TTL).

use crate::engine::{Component, Ctx};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::{QueueMsg, NO_EXPIRATION};
use crate::time::ms_to_ns;
use std::collections::BTreeMap;

mod by_tag;
mod confirm;
pub(crate) mod core;
pub mod exchange;
mod kind;
pub(crate) mod replay;
mod routing;
pub use self::core::QueueTimer;
use self::core::{discard, Death, Entry, Policy, QueueCore};
use self::exchange::Router;
use confirm::Confirms;
pub use kind::{
    Overflow, PublishRoutes, QueueArgs, QueueBrokerKind, QueuePublishers, QueueReaders, QueueSpec, SubscriptionSpec,
    DEFAULT_SYNC_INTERVAL_MS,
};

/// [`QueueBroker::depth_reported`] before any report: no queue holds
/// `u64::MAX` messages, so the first depth always differs from it.
const NOT_REPORTED: u64 = u64::MAX;

/// A publish as the broker handles it.
#[derive(Clone, Copy)]
struct Publish {
    rec: Record,
    want_ack: bool,
    attempt: u32,
    /// The publish's delivery tag on its producer's channel (0: not numbered).
    tag: u64,
    persistent: bool,
    route: u16,
    /// Its own TTL, in ms (`expiration`), or `NO_EXPIRATION`.
    expiration: u32,
}

/// A running queue broker.
pub struct QueueBroker {
    /// Its queues: the named ones, or one per subscription, in name order;
    /// or the one implicit queue.
    subs: Vec<QueueCore>,
    /// Whether each queue's persistent messages are on disk (survive a crash).
    persist: Vec<bool>,
    /// Which queue each consumer reads (by node); empty when
    /// point-to-point, where every consumer reads the one queue.
    route: BTreeMap<NodeId, usize>,
    /// Its exchanges and their bindings.
    router: Router,
    /// The (exchange, routing key) of each route a publish may name; route
    /// 0 is the implicit one (the default exchange with the empty key).
    routes: Vec<(u32, u32)>,
    /// The dead-letter history of each message dead-lettered inside the
    /// broker (AMQP's `x-death`): the queues it left and why, the most
    /// recent first, each (queue, reason) once.
    deaths: BTreeMap<MsgId, Vec<(u32, Death)>>,
    /// Whether any queue dead-letters through an exchange (else there is
    /// never anything to route after a handler).
    dead_letter_exchanges: bool,
    /// The confirms of persistent publishes awaiting the next disk sync,
    /// by producer channel (volatile).
    confirms: Confirms,
    /// Transient messages a crash took from durable queues, with the
    /// reader whose copy it was: reported at the restart.
    lost_transient: Vec<(Option<NodeId>, MsgId)>,
    /// The replay of a dead-letter broker's messages (`replay_to`).
    replay: Option<replay::Replay>,
    /// The queue depth last reported ([`NOT_REPORTED`] before the first
    /// report): an unchanged depth is not reported again (the gauge holds
    /// it; half the reports on the M/M/1 benchmark).
    depth_reported: u64,
    /// Every publish goes to queue 0, which always exists: one queue that
    /// outlives its consumers, no exchanges (decided at construction, so
    /// that a publish skips the route lookup; see [`QueueBroker::direct`]).
    direct: bool,
}

impl QueueBroker {
    /// A broker as `spec` says, dead-lettering to `dead_letter`. With
    /// several queues, `route` gives the queue (its number: see
    /// [`QueueSpec::queue_names`]) each consumer node reads.
    pub fn new(spec: &QueueSpec, dead_letter: Option<NodeId>, route: BTreeMap<NodeId, usize>) -> Self {
        let names = spec.queue_names();
        // A routed broker routes nothing until `with_routing` gives it its
        // exchanges resolved for its producers' keys.
        let router = if spec.routes() { Router::default() } else { Router::implicit(names.len()) };
        let reader = |i: usize| route.iter().find(|&(_, &s)| s == i).map(|(&node, _)| node);
        let mut subs = Vec::new();
        let mut persist = Vec::new();
        for i in 0..names.len() {
            let args = spec.args(i);
            let policy = Policy {
                redelivery_ns: ms_to_ns(spec.redelivery_timeout_ms.0).max(1),
                delivery_limit: args.delivery_limit.or(spec.delivery_limit),
                ttl_ns: args.ttl_ms.or(spec.ttl_ms).map(|t| ms_to_ns(t.0)),
                dead_letter,
                capacity: args.capacity.or(spec.capacity),
                overflow: args.overflow.unwrap_or(spec.overflow),
                dead_letter_exchange: None,
                holds_dead_letters: args.dead_letter_queue.unwrap_or(false),
            };
            // A subscription's `durable` makes its queue outlive its consumers;
            // a named queue always does, and its `durable` is its persistence.
            let exists = spec.subscriptions.values().nth(i).is_none_or(|s| s.durable);
            let reads = if spec.subscriptions.is_empty() && !spec.routes() { None } else { reader(i) };
            subs.push(QueueCore::new(policy, exists, i, reads));
            persist.push(spec.durable && exists && args.durable.unwrap_or(true));
        }
        let sync_ns = ms_to_ns(spec.sync_interval_ms.map_or(DEFAULT_SYNC_INTERVAL_MS, |m| m.0));
        let direct = !spec.routes() && matches!(&subs[..], [one] if one.durable);
        QueueBroker {
            subs,
            persist,
            route,
            router,
            routes: vec![(0, 0)],
            deaths: BTreeMap::new(),
            dead_letter_exchanges: false,
            confirms: Confirms::new(sync_ns),
            lost_transient: Vec::new(),
            replay: None,
            depth_reported: NOT_REPORTED,
            direct,
        }
    }

    /// Makes every queue of it a dead-letter queue (it is another broker's
    /// `dead_letter`).
    pub fn holding_dead_letters(mut self) -> Self {
        self.subs.iter_mut().for_each(QueueCore::hold_dead_letters);
        self
    }

    /// Replays what it holds to broker `to` at `at` (see [`replay`]).
    pub fn replaying(mut self, to: NodeId, at: crate::time::Time) -> Self {
        self.replay = Some(replay::Replay::new(to, at));
        self
    }

    /// Routes through `router`, with its numbers `routes` of the (exchange,
    /// routing key) pairs publishes name, and each queue's dead-letter
    /// exchange and key (numbers of `router`).
    pub(crate) fn with_routing(
        mut self,
        router: Router,
        routes: Vec<(u32, u32)>,
        dlx: Vec<routing::DeadLetterRoute>,
    ) -> Self {
        for (q, d) in self.subs.iter_mut().zip(dlx) {
            self.dead_letter_exchanges |= d.is_some();
            q.set_dead_letter_exchange(d);
        }
        self.router = router;
        self.routes = routes;
        self.direct = false;
        self
    }

    /// The queue `node` reads, if it is a consumer of this broker.
    #[inline]
    fn sub_of(&self, node: NodeId) -> Option<usize> {
        if self.route.is_empty() {
            Some(0)
        } else {
            self.route.get(&node).copied()
        }
    }

    /// Reports the messages waiting, over all queues, if that changed.
    #[inline(always)]
    fn report_depth(&mut self, ctx: &mut Ctx<QueueTimer>) {
        let depth = match &self.subs[..] {
            [one] => one.queue.len() as u64,
            subs => subs.iter().map(|s| s.queue.len() as u64).sum(),
        };
        if self.depth_reported != depth {
            self.depth_reported = depth;
            ctx.set_queue_depth(depth);
        }
    }

    /// Dispatches every queue.
    #[inline]
    fn dispatch_all(&mut self, ctx: &mut Ctx<QueueTimer>) {
        for s in &mut self.subs {
            s.dispatch(ctx);
        }
        self.report_depth(ctx);
    }

    /// Appends a publish to every existing queue its route reaches if each
    /// has room, and answers it. A non-durable subscription with no
    /// consumer connected has no queue: its copy is dropped. A publish
    /// that reaches no queue is unroutable: dropped, and confirmed.
    fn append(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: Publish) -> bool {
        let (exchange, key) = self.routes.get(p.route as usize).copied().unwrap_or((0, 0));
        let targets = self.router.route(exchange, key);
        if targets.is_empty() {
            ctx.metric_add("unroutable", 1.0);
            ctx.discarded(p.rec.id, LossCause::Unroutable);
        }
        let ttl = own_ttl(&p);
        // Whether a durable queue took it to disk (and its confirm waits for the sync).
        let (mut accepted, mut on_disk) = (true, false);
        for &q in targets {
            let s = &mut self.subs[q as usize];
            if s.exists() {
                let entry = Entry { key, persistent: p.persistent, ..Entry::new(p.rec, ctx.now(), ttl, s.policy()) };
                // A refused copy is lost only if its producer does not wait for the refusal.
                let taken = s.enqueue(ctx, entry);
                accepted &= taken;
                on_disk |= taken && p.persistent && self.persist[q as usize];
            } else {
                ctx.metric_add("dropped_no_subscriber", 1.0);
                discard(ctx, s.reader, p.rec.id, LossCause::NoSubscriber);
            }
        }
        self.answer(ctx, from, &p, accepted, on_disk);
        accepted
    }

    /// [`QueueBroker::append`] when the broker is `direct`: its one queue,
    /// which exists, takes it with routing key 0.
    #[inline]
    fn append_direct(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: Publish) -> bool {
        let s = &mut self.subs[0];
        let (now, ttl) = (ctx.now(), own_ttl(&p));
        // Built in each call, not before: see `enqueue_unchecked`.
        let entry = |s: &QueueCore| Entry { persistent: p.persistent, ..Entry::new(p.rec, now, ttl, s.policy()) };
        let taken = if s.takes_all() {
            s.enqueue_unchecked(entry(s));
            true
        } else {
            s.enqueue_checked(ctx, entry(s))
        };
        let on_disk = taken && p.persistent && self.persist[0];
        self.answer(ctx, from, &p, taken, on_disk);
        taken
    }

    /// Answers a publish the queues took (`accepted`) or one refused, at
    /// once, or at the next sync when a durable queue took it to disk
    /// (`on_disk`) and its producer waits for a confirm.
    /// Always inlined: a fire-and-forget publish (none is waited for)
    /// then costs one branch, not a call.
    #[inline(always)]
    fn answer(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: &Publish, accepted: bool, on_disk: bool) {
        if p.want_ack {
            self.answer_now(ctx, from, p, accepted, on_disk);
        }
    }

    /// [`QueueBroker::answer`] to a publish whose producer waits for it.
    #[inline(never)]
    fn answer_now(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, p: &Publish, accepted: bool, on_disk: bool) {
        if accepted && on_disk && p.tag > 0 {
            self.confirms.after_sync(ctx, from, p.rec.id, p.attempt, p.tag);
        } else {
            ctx.send(from, crate::protocol::publish_ack(p.rec.id, accepted, p.attempt, p.tag));
        }
    }

    /// Routes the dead letters of every queue through its dead-letter
    /// exchange, until none is left (a queue they reach may dead-letter
    /// them again at once: a TTL of 0, say).
    #[inline(always)]
    fn route_dead_letters(&mut self, ctx: &mut Ctx<QueueTimer>) {
        if self.dead_letter_exchanges {
            self.route_dead_letters_now(ctx);
        }
    }

    /// [`QueueBroker::route_dead_letters`] when a queue dead-letters
    /// through an exchange (off the hot path).
    #[inline(never)]
    fn route_dead_letters_now(&mut self, ctx: &mut Ctx<QueueTimer>) {
        let mut any = false;
        loop {
            let mut routed = false;
            for q in 0..self.subs.len() {
                for (entry, why) in self.subs[q].take_dead() {
                    self.republish_dead(ctx, q as u32, entry, why);
                    routed = true;
                }
            }
            if !routed {
                break;
            }
            any = true;
            for s in &mut self.subs {
                s.dispatch(ctx);
            }
        }
        if any {
            self.report_depth(ctx);
        }
    }

    /// Republishes a message that queue `from` dead-lettered for `why` to
    /// that queue's dead-letter exchange, as RabbitMQ does: with the
    /// queue's dead-letter routing key or its own, recording the death in
    /// its history, and dropping it where it would come back to a queue it
    /// left before with no rejection on the way round.
    fn republish_dead(&mut self, ctx: &mut Ctx<QueueTimer>, from: u32, entry: Entry, why: Death) {
        let Some((exchange, fixed)) = self.subs[from as usize].dead_letter_exchange() else { return };
        let key = fixed.unwrap_or(entry.key);
        let id = entry.rec.id;
        let history = self.deaths.entry(id).or_default();
        history.retain(|&d| d != (from, why));
        history.insert(0, (from, why));
        let targets = self.router.route(exchange, key);
        if targets.is_empty() {
            ctx.metric_add("unroutable", 1.0);
            discard(ctx, self.subs[from as usize].reader, id, LossCause::Unroutable);
        }
        let mut kept = false;
        for &q in targets {
            let s = &mut self.subs[q as usize];
            if why != Death::Rejected && is_cycle(history, q) {
                ctx.metric_add("dead_letter_cycles", 1.0);
                discard(ctx, s.reader, id, LossCause::DeadLetterCycle);
            } else if !s.exists() {
                ctx.metric_add("dropped_no_subscriber", 1.0);
                discard(ctx, s.reader, id, LossCause::NoSubscriber);
            } else {
                // A new message in this queue: its TTL from now, its own
                // expiration removed, as RabbitMQ republishes a dead letter.
                let fresh =
                    Entry { key, persistent: entry.persistent, ..Entry::new(entry.rec, ctx.now(), None, s.policy()) };
                kept |= s.enqueue(ctx, fresh);
            }
        }
        if !kept {
            self.deaths.remove(&id); // held nowhere any more: forget its history
        }
    }

    /// Handles a publish from `from` on its `channel` (its dead letters
    /// are routed after).
    #[inline]
    fn on_publish(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, channel: u32, mut publish: Publish) {
        if publish.tag > 0 && !self.confirms.publish(from, channel, publish.tag) {
            publish.want_ack = false; // its channel is closed: nobody to confirm to
        }
        if self.direct {
            self.append_direct(ctx, from, publish);
            self.subs[0].dispatch(ctx);
            self.report_depth(ctx);
        } else {
            self.append(ctx, from, publish);
            self.dispatch_all(ctx);
        }
    }

    /// Handles an ack of delivery `tag` from `from` (its dead letters are
    /// routed after).
    #[inline]
    fn on_ack(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, tag: u64) {
        let Some(i) = self.sub_of(from) else { return };
        let s = &mut self.subs[i];
        let acked = s.ack(tag);
        if let Some(id) = acked.filter(|_| self.dead_letter_exchanges) {
            self.deaths.remove(&id);
        }
        s.dispatch(ctx);
        self.report_depth(ctx);
        self.subs[i].settle_timers(ctx);
    }

    /// Handles a message that is neither a publish nor an ack (off the hot
    /// path).
    #[inline(never)]
    fn handle_other(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, msg: &Msg) {
        match *msg {
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
}

/// Whether a message whose dead-letter history is `history` (the most
/// recent first) would go round a cycle into queue `q`: it left `q` before,
/// and nothing since then, that departure included, was a rejection.
fn is_cycle(history: &[(u32, Death)], q: u32) -> bool {
    match history.iter().position(|&(from, _)| from == q) {
        Some(last) => history[..=last].iter().all(|&(_, why)| why != Death::Rejected),
        None => false,
    }
}

/// A publish's own TTL (`expiration`), if it has one.
#[inline]
fn own_ttl(p: &Publish) -> Option<crate::time::Duration> {
    (p.expiration != NO_EXPIRATION).then(|| ms_to_ns(f64::from(p.expiration)))
}

impl Component for QueueBroker {
    type Timer = QueueTimer;

    fn start(&mut self, ctx: &mut Ctx<QueueTimer>) {
        if let Some(r) = &self.replay {
            r.arm(ctx);
        }
    }

    // Inlined into the engine's handler shim (`DynComponent::on_message`),
    // so an event costs one call rather than two.
    #[inline]
    fn on_message(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, msg: Msg) {
        // A publish and an ack, two per message, in their own arms, each
        // forgetting its message as `release` would (they own nothing to
        // free), so that their kind is tested once; the others apart.
        match msg {
            Msg::Queue(QueueMsg::Publish { rec, want_ack, attempt, channel, tag, persistent, route, expiration }) => {
                let publish = Publish { rec, want_ack, attempt, tag: u64::from(tag), persistent, route, expiration };
                self.on_publish(ctx, from, channel, publish);
                self.route_dead_letters(ctx);
                std::mem::forget(msg);
            }
            Msg::Queue(QueueMsg::Ack { tag }) => {
                self.on_ack(ctx, from, tag);
                self.route_dead_letters(ctx);
                std::mem::forget(msg);
            }
            _ => {
                self.handle_other(ctx, from, &msg);
                self.route_dead_letters(ctx);
                crate::protocol::queue::release(msg);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<QueueTimer>, timer: QueueTimer) {
        if timer == QueueTimer::Replay {
            if let Some(r) = &mut self.replay {
                r.run(ctx, &mut self.subs);
                self.report_depth(ctx);
            }
            return;
        }
        let (QueueTimer::Redeliver(i) | QueueTimer::Expire(i) | QueueTimer::CancelNotice(i)) = timer else {
            return self.confirms.synced(ctx);
        };
        if let Some(s) = self.subs.get_mut(i as usize) {
            s.on_timer(ctx, timer);
        }
        self.report_depth(ctx);
        self.route_dead_letters(ctx);
    }

    fn crash(&mut self) {
        // The messages of a non-durable broker are gone; a durable one
        // loses its transient messages. Pending confirms die with the
        // channels.
        for (s, &persisted) in self.subs.iter_mut().zip(&self.persist) {
            let reader = s.reader;
            self.lost_transient.extend(s.crash(persisted).into_iter().map(|id| (reader, id)));
        }
        self.confirms.crash();
    }

    fn restart(&mut self, ctx: &mut Ctx<QueueTimer>) {
        // The ledger put them down to the crash; name the cause.
        for (reader, id) in std::mem::take(&mut self.lost_transient) {
            discard(ctx, reader, id, LossCause::Transient);
        }
        self.dispatch_all(ctx);
        self.route_dead_letters(ctx);
        // A crash cancelled the replay's timer: set it again if it is still due.
        self.start(ctx);
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
    }

    fn gauges(&self, _now: crate::time::Time, out: &mut crate::metrics::Gauges) {
        // Back-pressure: how much the broker stores (what a disk alarm
        // watches), and how much of it its consumers hold.
        out.sum(crate::summary::STORED_BYTES, self.subs.iter().map(QueueCore::stored_bytes).sum::<u64>() as f64);
        out.sum("unacked", self.subs.iter().map(QueueCore::unacked_len).sum::<usize>() as f64);
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "queue/routing_tests.rs"]
mod routing_tests;

#[cfg(test)]
#[path = "queue/dead_letter_tests.rs"]
mod dead_letter_tests;

#[cfg(test)]
#[path = "queue/shortcut_tests.rs"]
mod shortcut_tests;

#[cfg(test)]
impl QueueBroker {
    /// The same broker without its shortcuts (the direct publish, the
    /// unchecked dispatch), to test that they change nothing.
    fn without_shortcuts(mut self) -> Self {
        self.direct = false;
        self.subs.iter_mut().for_each(QueueCore::check_always);
        self
    }
}
