//! The context through which a component acts while it handles one event,
//! and the traits a component implements.
//!
//! A handler reads the clock, its own random stream and a few facts of the
//! run from its [`Ctx`], and acts by emitting [`Effect`]s into it: sends,
//! typed timers, ledger facts, metrics. The engine applies them after the
//! handler returns; a unit test reads them instead (see
//! [`super::harness::Harness`]). Two things answer at once because a
//! handler needs their answer to go on: [`Ctx::produce`] allocates the new
//! message's id (ids are dense, in production order), and
//! [`Ctx::dedup_insert`] asks a store (stores answer without delay).

use super::core::Core;
use super::effect::{Effect, Fact, Metric};
use crate::dedup::Stores;
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId};
pub use crate::metrics::Gauges;
use crate::net::NodeFault;
use crate::observer::StateFact;
use crate::rng::SimRng;
use crate::time::{Duration, Time};
use std::marker::PhantomData;

/// A component's timers: usually an enum, one variant per reason to wake
/// up. The engine carries a timer as one word, so a timer converts to and
/// from a `u64`; traces show it by its `Debug` form.
pub trait Timer: Copy + std::fmt::Debug + 'static {
    /// The compact form the engine carries (and folds into the digest).
    fn to_word(self) -> u64;
    /// The timer a word stands for; `None` for a word this kind never makes.
    fn from_word(word: u64) -> Option<Self>;
}

/// The timers of a component that sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTimer {}

impl Timer for NoTimer {
    fn to_word(self) -> u64 {
        match self {}
    }
    fn from_word(_: u64) -> Option<Self> {
        None
    }
}

/// What a context is made of, without its timer type: the engine (or a
/// test harness) lends these for one handler call.
pub struct Parts<'a> {
    pub(crate) now: Time,
    pub(crate) me: NodeId,
    /// The node's incarnation (its timers carry it): fixed for the call,
    /// since a node stops or starts only between handler calls.
    pub(crate) incarnation: u32,
    /// The node's effect domain.
    pub(crate) domain: DomainId,
    pub(crate) rng: &'a mut SimRng,
    pub(crate) sink: Sink<'a>,
}

/// Where a context's effects go.
pub(crate) enum Sink<'a> {
    /// The engine applies each effect as it is emitted (so nothing is
    /// buffered on the hot path; a handler cannot tell the difference, since
    /// it can read none of what the effects change).
    Engine(&'a mut Core),
    /// A harness records them.
    Record(&'a mut Recording),
}

/// What a harness keeps for its component: the effects emitted, the
/// stores, the next message id, and what the run looks like to it.
pub(crate) struct Recording {
    pub(crate) out: Vec<Effect>,
    pub(crate) stores: Stores,
    pub(crate) next_id: MsgId,
    pub(crate) domain: DomainId,
    pub(crate) draining: bool,
    pub(crate) slow: f64,
    pub(crate) seed: u64,
}

/// A component's window on the simulation while it handles one event;
/// `T` is its timer type.
pub struct Ctx<'a, T> {
    /// Borrowed, not owned: the engine's handler call builds the parts on
    /// its stack and every layer reads them there (a copy at each layer
    /// cost a store-forwarding stall: the parts are written field by
    /// field and a copy reads them in wide words).
    p: &'a mut Parts<'a>,
    _timer: PhantomData<fn(T)>,
}

impl<'a, T: Timer> Ctx<'a, T> {
    /// A context over `parts`.
    pub(crate) fn new(p: &'a mut Parts<'a>) -> Self {
        Ctx { p, _timer: PhantomData }
    }

    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> Time {
        self.p.now
    }

    /// This component's node id.
    #[inline]
    pub fn me(&self) -> NodeId {
        self.p.me
    }

    /// The effect domain this node applies effects in.
    #[inline]
    pub fn domain(&self) -> DomainId {
        self.p.domain
    }

    /// This component's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        self.p.rng
    }

    /// True once the run phase is over: producers should stop producing.
    #[inline]
    pub fn draining(&self) -> bool {
        match &self.p.sink {
            Sink::Engine(core) => core.phase != super::Phase::Run,
            Sink::Record(r) => r.draining,
        }
    }

    /// This node's slow-node factor (1.0 normally): processing times are
    /// multiplied by it.
    #[inline]
    pub fn slow_factor(&self) -> f64 {
        match &self.p.sink {
            Sink::Engine(core) => core.net.slow_factor(self.p.me),
            Sink::Record(r) => r.slow,
        }
    }

    /// A uniform number in [0, 1) fixed by the seed, the message and
    /// `purpose`: the same every time it is asked, by any node. For
    /// properties of a message itself, such as whether it is a poison
    /// message that fails every time it is processed.
    pub fn message_draw(&self, id: MsgId, purpose: &str) -> f64 {
        let seed = match &self.p.sink {
            Sink::Engine(core) => core.seed,
            Sink::Record(r) => r.seed,
        };
        let mut x = seed ^ crate::rng::stable_hash(purpose.as_bytes()) ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64's finaliser: every input bit affects every output bit.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Records `id` in dedup store number `store` and returns true if it
    /// was not there yet (see [`Stores::dedup_insert`]).
    pub fn dedup_insert(&mut self, store: usize, id: MsgId) -> bool {
        match &mut self.p.sink {
            Sink::Engine(core) => core.stores.dedup_insert(store, id),
            Sink::Record(r) => r.stores.dedup_insert(store, id),
        }
    }

    /// Stamps message `id` with a header (a version, a sequence number):
    /// what a real producer writes into the record, kept in the run's
    /// stores because a record carries no headers (see
    /// [`Stores::set_header`]).
    pub fn set_header(&mut self, id: MsgId, header: crate::dedup::Header, value: u64) {
        self.stores_mut().set_header(id, header, value)
    }

    /// The header its producer stamped on message `id`, if any.
    pub fn header(&mut self, id: MsgId, header: crate::dedup::Header) -> Option<u64> {
        self.stores_mut().header(id, header)
    }

    /// The run's stores (dedup tables, headers, the data-sync source
    /// table), shared by every node and durable.
    pub(crate) fn stores_mut(&mut self) -> &mut Stores {
        match &mut self.p.sink {
            Sink::Engine(core) => &mut core.stores,
            Sink::Record(r) => &mut r.stores,
        }
    }

    /// Emits one effect (the methods below each emit one kind). Always
    /// inlined, so that at each call site the engine's `apply` folds to the
    /// one kind of effect emitted there.
    #[inline(always)]
    pub fn emit(&mut self, effect: Effect) {
        match &mut self.p.sink {
            Sink::Engine(core) => core.apply(self.p.now, self.p.me, (self.p.incarnation, self.p.domain), effect),
            Sink::Record(r) => r.out.push(effect),
        }
    }

    /// Sends `msg` to `to` over the network. Always inlined: the message
    /// is then written straight into the event queue where it is built
    /// (out of line, the copy at entry read the caller's field-by-field
    /// stores back in wide words before they had retired: a
    /// store-forwarding stall on every send).
    #[inline(always)]
    pub fn send(&mut self, to: NodeId, msg: impl Into<Msg>) {
        // The engine's path applies the effect without building it.
        match &mut self.p.sink {
            Sink::Engine(core) => core.send(self.p.now, self.p.me, to, msg.into()),
            Sink::Record(r) => r.out.push(Effect::Send { to, msg: msg.into() }),
        }
    }

    /// Calls the component's `on_timer` with `timer` after `delay`. A crash
    /// cancels every timer the node had set. Always inlined, as
    /// [`Ctx::send`] is: the handlers that set a timer on every message
    /// (a producer's next arrival, a consumer's service) then pay no call.
    #[inline(always)]
    pub fn set_timer(&mut self, delay: Duration, timer: T) {
        match &mut self.p.sink {
            Sink::Engine(core) => {
                core.set_timer(self.p.now, self.p.me, self.p.incarnation, delay, timer.to_word(), false)
            }
            Sink::Record(r) => r.out.push(Effect::SetTimer { delay, timer: timer.to_word(), background: false }),
        }
    }

    /// Like [`Ctx::set_timer`], but a background timer: it does not count as
    /// work, so a periodic one (a heartbeat, a poll) does not keep a drained
    /// run from ending.
    pub fn set_background_timer(&mut self, delay: Duration, timer: T) {
        self.emit(Effect::SetTimer { delay, timer: timer.to_word(), background: true });
    }

    /// Cancels every pending timer of this node equal to `timer` (none
    /// pending: nothing happens). Only needed where a pending timer would
    /// keep the drain waiting for nothing: a crash cancels a node's timers
    /// anyway.
    pub fn cancel_timer(&mut self, timer: T) {
        self.emit(Effect::CancelTimer { timer: timer.to_word() });
    }

    /// Registers a new message with the ledger and returns its id.
    /// `fire_and_forget` means the producer considers it sent at once.
    /// Always inlined (once a message, in a producer's arrival).
    #[inline(always)]
    pub fn produce(&mut self, key: u64, fire_and_forget: bool) -> MsgId {
        let id = match &mut self.p.sink {
            Sink::Engine(core) => core.next_id(),
            Sink::Record(r) => {
                r.next_id += 1;
                r.next_id - 1
            }
        };
        self.emit(Effect::Fact(Fact::Produced { id, key, fire_and_forget }));
        id
    }

    /// Reports that this producer now considers message `id` sent (it
    /// accepted the broker's ack for it).
    #[inline]
    pub fn confirm_sent(&mut self, id: MsgId) {
        self.emit(Effect::Fact(Fact::Confirmed(id)));
    }

    /// Reports that this node starts processing message `id`.
    #[inline]
    pub fn start_processing(&mut self, id: MsgId) {
        self.emit(Effect::Fact(Fact::Started(id)));
    }

    /// Reports that this node applied the effect of message `id` (in its
    /// effect domain).
    #[inline]
    pub fn apply_effect(&mut self, id: MsgId) {
        self.emit(Effect::Fact(Fact::Applied(id)));
    }

    /// Reports that this node dropped message `id` (or left it unprotected)
    /// for `cause` (see [`Fact::Discarded`]).
    pub fn discarded(&mut self, id: MsgId, cause: crate::ledger::LossCause) {
        self.emit(Effect::Fact(Fact::Discarded { id, cause, reader: None, domain: None }));
    }

    /// Reports that this node dropped message `id` for `cause` for the
    /// effect domain of consumer `reader` only (one subscription's copy).
    pub fn discarded_for(&mut self, reader: NodeId, id: MsgId, cause: crate::ledger::LossCause) {
        self.emit(Effect::Fact(Fact::Discarded { id, cause, reader: Some(reader), domain: None }));
    }

    /// Reports that this node dropped message `id` for `cause` for effect
    /// domain `domain` only (a consumer group skips it).
    pub fn discarded_in(&mut self, domain: DomainId, id: MsgId, cause: crate::ledger::LossCause) {
        self.emit(Effect::Fact(Fact::Discarded { id, cause, reader: None, domain: Some(domain) }));
    }

    /// Reports that this node sent or delivered another copy of message
    /// `id` because of `cause` (see [`Fact::Resent`]).
    #[inline]
    pub fn resent(&mut self, id: MsgId, cause: crate::ledger::DupCause) {
        self.emit(Effect::Fact(Fact::Resent { id, cause }));
    }

    /// Reports that this node has just put message `id` into a dead-letter
    /// queue: one that holds what could not be processed, for a person or
    /// a replay to deal with (not a hop through a retry queue or topic).
    /// Once per message is enough; repeats change nothing.
    pub fn dead_lettered(&mut self, id: MsgId) {
        self.emit(Effect::Fact(Fact::DeadLettered(id)));
    }

    /// Reports that this producer has produced all it was asked to.
    pub fn producer_done(&mut self) {
        self.emit(Effect::Fact(Fact::ProducerDone));
    }

    /// Marks a notable moment at this node (a leader election, a failover),
    /// named `what`: plots shade or label it, diagrams and traces show it.
    /// Changes nothing in the run.
    pub fn mark(&mut self, what: &'static str) {
        self.emit(Effect::Fact(Fact::Mark(what)));
    }

    /// Reports a fact about state to the observer ([`crate::observer`]);
    /// the named methods below say each one.
    pub fn observe(&mut self, fact: StateFact) {
        self.emit(Effect::Fact(Fact::State(fact)));
    }

    /// This node serves reads of keyed state (call in `start`, and in
    /// `restart`): `complete` when it answers for every key (a table),
    /// else a cache, which a crash empties.
    pub fn replica(&mut self, complete: bool) {
        self.observe(StateFact::Replica { complete });
    }

    /// The system made write `id` (a message id) of `key`: its user was
    /// told it is done. `delete` for a delete.
    pub fn wrote(&mut self, key: u64, id: MsgId, delete: bool) {
        self.observe(StateFact::Wrote { key, id, delete });
    }

    /// This replica now reflects write `id` of `key` (`None`: it no longer
    /// holds the key). Report every change, a step back included.
    pub fn holds(&mut self, key: u64, id: Option<MsgId>) {
        self.observe(StateFact::Holds { key, id });
    }

    /// A read of `key` was answered with write `seen` (`None`: not found);
    /// report it where the answer reaches the reader. `own`: the reader
    /// made the key's newest write.
    pub fn read(&mut self, key: u64, seen: Option<MsgId>, own: bool) {
        self.observe(StateFact::Read { key, seen, own });
    }

    /// Account `account` opens with `balance` dollars (call in `start`).
    pub fn opened(&mut self, account: u32, balance: i64) {
        self.observe(StateFact::Opened { account, balance });
    }

    /// `amount` dollars left a machine from `account`; `offline`: without
    /// the bank's authorisation.
    pub fn dispensed(&mut self, account: u32, amount: i64, offline: bool) {
        self.observe(StateFact::Dispensed { account, amount, offline });
    }

    /// A withdrawal of `amount` from `account` was refused; `offline`:
    /// because the bank could not be reached.
    pub fn declined(&mut self, account: u32, amount: i64, offline: bool) {
        self.observe(StateFact::Declined { account, amount, offline });
    }

    /// The bank's books now include an offline withdrawal of `amount`.
    pub fn settled(&mut self, account: u32, amount: i64) {
        self.observe(StateFact::Settled { account, amount });
    }

    /// The truth: one event belongs to `bucket` (key, window index).
    /// Report it once per event, where it is made, never per copy.
    pub fn happened(&mut self, bucket: (u64, u64)) {
        self.observe(StateFact::Happened { bucket });
    }

    /// The system's count for `bucket` is now `count` (a later report
    /// replaces an earlier one).
    pub fn counted(&mut self, bucket: (u64, u64), count: u64) {
        self.observe(StateFact::Counted { bucket, count });
    }

    /// Adds `v` to the run's named figure `name` (reported in the summary's
    /// `metrics`).
    pub fn metric_add(&mut self, name: &'static str, v: f64) {
        self.emit(Effect::Metric(Metric::Add(name, v)));
    }

    /// Sets the run's named figure `name` to `v` (the last value is reported).
    pub fn metric_set(&mut self, name: &'static str, v: f64) {
        self.emit(Effect::Metric(Metric::Set(name, v)));
    }

    /// Raises the run's named figure `name` to at least `v`.
    pub fn metric_max(&mut self, name: &'static str, v: f64) {
        self.emit(Effect::Metric(Metric::Max(name, v)));
    }

    /// Records one user-facing duration of `kind` (reported in the
    /// summary's `response_ms` or `completion_ms`).
    #[inline]
    pub fn timing(&mut self, kind: crate::engine::Timing, ns: u64) {
        self.emit(Effect::Metric(Metric::Timing(kind, ns)));
    }

    /// Counts an error of `kind` (a refused publish, a timeout, ...).
    pub fn error(&mut self, kind: &'static str) {
        self.emit(Effect::Metric(Metric::Error(kind)));
    }

    /// Reports this node's queue depth (messages waiting).
    #[inline]
    pub fn set_queue_depth(&mut self, depth: u64) {
        self.emit(Effect::Metric(Metric::QueueDepth(depth)));
    }

    /// Stops node `node` as a crash would (nothing happens if it is down).
    pub fn stop_node(&mut self, node: NodeId) {
        self.emit(Effect::Node(node, false));
    }

    /// Starts node `node` again if it is down (and no crash fault holds it).
    pub fn start_node(&mut self, node: NodeId) {
        self.emit(Effect::Node(node, true));
    }
}

/// A simulated node: producer, broker, consumer, service, store...
///
/// Handlers react to one event each and act only through the [`Ctx`]; the
/// node's timers are of its own type, [`Component::Timer`].
pub trait Component {
    /// This component's timers.
    type Timer: Timer;
    /// Called once at time 0, and again after each restart (unless
    /// `restart` says otherwise).
    fn start(&mut self, ctx: &mut Ctx<Self::Timer>);
    /// A message arrived from `from`.
    fn on_message(&mut self, ctx: &mut Ctx<Self::Timer>, from: NodeId, msg: Msg);
    /// A timer set with [`Ctx::set_timer`] fired.
    fn on_timer(&mut self, ctx: &mut Ctx<Self::Timer>, timer: Self::Timer);
    /// The node crashed: drop every piece of volatile state, keep the
    /// durable state.
    fn crash(&mut self);
    /// The node restarts after a crash.
    fn restart(&mut self, ctx: &mut Ctx<Self::Timer>) {
        self.start(ctx);
    }
    /// The run phase is over (producers stop here).
    fn drain(&mut self, _ctx: &mut Ctx<Self::Timer>) {}
    /// Appends the ids of the messages this node still holds (queued,
    /// unacknowledged, being processed), for the final accounting.
    fn held(&self, _out: &mut Vec<MsgId>) {}
    /// Appends messages this node holds for one effect domain only: a
    /// log still holds a record for a consumer group whose committed offset
    /// has not passed it, and for no group that has.
    fn held_in(&self, _out: &mut Vec<(MsgId, DomainId)>) {}
    /// A fault aimed at a part of this node (a replica of a log broker)
    /// begins or ends.
    fn on_fault(&mut self, _ctx: &mut Ctx<Self::Timer>, _fault: &NodeFault, _begins: bool) {}
    /// True for components that produce: the run phase ends when all of them
    /// report [`Ctx::producer_done`].
    fn is_producer(&self) -> bool {
        false
    }
    /// Bytes of allocated capacity this component holds that grow with the
    /// run (queues of messages, logs), estimated cheaply: the engine asks
    /// every few thousand events to enforce `run.max_memory_mb`. Zero for
    /// components whose state stays small.
    fn memory_bytes(&self) -> usize {
        0
    }
    /// Reports this node's gauges at the end of each sampling interval
    /// (`run.sample_interval_ms`): the time series gains one column per gauge name,
    /// summed or maxed over the nodes that report it (see [`Gauges`]).
    /// A kind plots them by naming them in [`crate::kind::Kind::PLOTS`].
    /// Reads only: reporting nothing (the default) changes nothing.
    fn gauges(&self, _now: Time, _out: &mut Gauges) {}
}

/// A component as the engine holds it: [`Component`] with its timer type
/// erased. Every `Component` is one; make one with [`boxed`].
pub trait DynComponent {
    #[doc(hidden)]
    fn start<'a>(&mut self, p: &'a mut Parts<'a>);
    #[doc(hidden)]
    fn restart<'a>(&mut self, p: &'a mut Parts<'a>);
    #[doc(hidden)]
    fn on_message<'a>(&mut self, p: &'a mut Parts<'a>, from: NodeId, msg: Msg);
    #[doc(hidden)]
    fn on_timer<'a>(&mut self, p: &'a mut Parts<'a>, word: u64);
    #[doc(hidden)]
    fn on_fault<'a>(&mut self, p: &'a mut Parts<'a>, fault: &NodeFault, begins: bool);
    #[doc(hidden)]
    fn drain<'a>(&mut self, p: &'a mut Parts<'a>);
    /// See [`Component::crash`].
    fn crash(&mut self);
    /// See [`Component::held`].
    fn held(&self, out: &mut Vec<MsgId>);
    /// See [`Component::held_in`].
    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>);
    /// See [`Component::is_producer`].
    fn is_producer(&self) -> bool;
    /// See [`Component::memory_bytes`].
    fn memory_bytes(&self) -> usize;
    /// See [`Component::gauges`].
    fn gauges(&self, now: Time, out: &mut Gauges);
    /// The timer a word stands for, as traces show it.
    fn timer_name(&self, word: u64) -> String;
}

impl<C: Component> DynComponent for C {
    fn start<'a>(&mut self, p: &'a mut Parts<'a>) {
        Component::start(self, &mut Ctx::new(p));
    }
    fn restart<'a>(&mut self, p: &'a mut Parts<'a>) {
        Component::restart(self, &mut Ctx::new(p));
    }
    #[inline]
    fn on_message<'a>(&mut self, p: &'a mut Parts<'a>, from: NodeId, msg: Msg) {
        Component::on_message(self, &mut Ctx::new(p), from, msg);
    }
    #[inline]
    fn on_timer<'a>(&mut self, p: &'a mut Parts<'a>, word: u64) {
        let timer = match C::Timer::from_word(word) {
            Some(timer) => timer,
            None => unknown_timer(word),
        };
        Component::on_timer(self, &mut Ctx::new(p), timer);
    }
    fn on_fault<'a>(&mut self, p: &'a mut Parts<'a>, fault: &NodeFault, begins: bool) {
        Component::on_fault(self, &mut Ctx::new(p), fault, begins);
    }
    fn drain<'a>(&mut self, p: &'a mut Parts<'a>) {
        Component::drain(self, &mut Ctx::new(p));
    }
    fn crash(&mut self) {
        Component::crash(self);
    }
    fn held(&self, out: &mut Vec<MsgId>) {
        Component::held(self, out);
    }
    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        Component::held_in(self, out);
    }
    fn is_producer(&self) -> bool {
        Component::is_producer(self)
    }
    fn memory_bytes(&self) -> usize {
        Component::memory_bytes(self)
    }
    fn gauges(&self, now: Time, out: &mut Gauges) {
        Component::gauges(self, now, out);
    }
    fn timer_name(&self, word: u64) -> String {
        match C::Timer::from_word(word) {
            Some(t) => format!("{t:?}"),
            None => format!("unknown({word:#x})"),
        }
    }
}

/// A timer word that no timer of the node's kind makes: a bug (the engine
/// only fires words the node's own context set). Out of line, so the
/// decode on every timer is one test.
#[cold]
#[inline(never)]
fn unknown_timer(word: u64) -> ! {
    panic!("a timer word no timer makes: {word:#x}")
}

/// Boxes a component for the engine.
pub fn boxed<C: Component + 'static>(component: C) -> Box<dyn DynComponent> {
    Box::new(component)
}
