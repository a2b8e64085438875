//! The context through which a component acts while it handles one event:
//! sending, timers, its random stream, and the facts it reports to the
//! ledger. Components never touch the queue or the ledger directly.

use super::queue::{Ev, EventQueue, TimerId};
use super::Phase;
use crate::ledger::Ledger;
use crate::message::{Msg, MsgId, NodeId};
use crate::metrics::Metrics;
use crate::net::Network;
use crate::rng::SimRng;
use crate::time::{Duration, Time};
use crate::trace::Trace;

/// Shared engine state that components reach through [`Ctx`].
pub(crate) struct Core {
    pub(super) seed: u64,
    /// Dedup stores, by index: the ids whose effect each has recorded.
    pub(super) stores: Vec<std::collections::BTreeSet<MsgId>>,
    pub(crate) queue: EventQueue,
    pub(crate) net: Network,
    pub(crate) ledger: Ledger,
    pub(crate) metrics: Metrics,
    pub(crate) trace: Trace,
    pub(super) alive: Vec<bool>,
    /// Each node's effect domain (for nodes that apply effects).
    pub(crate) domain_of: Vec<crate::ledger::DomainId>,
    /// `talked[a * n + b]`: node a has sent to node b, so b learns when a's
    /// process dies (its connections close).
    pub(super) talked: Vec<bool>,
    pub(super) incarnation: Vec<u32>,
    pub(super) phase: Phase,
    pub(super) producers_total: usize,
    pub(super) producers_active: usize,
    /// Producers that will produce no more in the run phase: done, or
    /// crashed with no restart before the drain.
    pub(super) retired: Vec<bool>,
}

impl Core {
    /// Marks producer `node` as finished with the run phase (once).
    pub(super) fn retire(&mut self, node: NodeId) {
        let retired = &mut self.retired[node as usize];
        if !*retired {
            *retired = true;
            self.producers_active = self.producers_active.saturating_sub(1);
        }
    }
}

/// A component's window on the simulation while it handles one event.
pub struct Ctx<'a> {
    now: Time,
    me: NodeId,
    rng: &'a mut SimRng,
    core: &'a mut Core,
}

impl<'a> Ctx<'a> {
    /// The context of node `me` handling an event at `now`.
    pub(super) fn new(now: Time, me: NodeId, rng: &'a mut SimRng, core: &'a mut Core) -> Self {
        Ctx { now, me, rng, core }
    }

    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> Time {
        self.now
    }

    /// This component's node id.
    #[inline]
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This component's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// Sends `msg` to `to` over the network (which may lose, duplicate or
    /// delay it).
    #[inline]
    pub fn send(&mut self, to: NodeId, msg: Msg) {
        let core = &mut *self.core;
        let n = core.alive.len();
        core.talked[self.me as usize * n + to as usize] = true;
        core.net.send(self.now, self.me, to, msg, &mut core.queue, &mut core.trace);
    }

    /// Calls [`Component::on_timer`] with `tag` after `delay`. A crash
    /// cancels every timer the node had set.
    #[inline]
    pub fn set_timer(&mut self, delay: Duration, tag: u64) -> TimerId {
        let incarnation = self.core.incarnation[self.me as usize];
        self.core.queue.push(self.now.saturating_add(delay), Ev::Timer { node: self.me, incarnation, tag })
    }

    /// Like [`Ctx::set_timer`], but a background timer: it does not count as
    /// work, so a periodic one (a heartbeat, a poll) does not keep a drained
    /// run from ending.
    pub fn set_background_timer(&mut self, delay: Duration, tag: u64) -> TimerId {
        let incarnation = self.core.incarnation[self.me as usize];
        self.core.queue.push(self.now.saturating_add(delay), Ev::Tick { node: self.me, incarnation, tag })
    }

    /// The effect domain of node `node` (0 when it applies none).
    pub fn domain_of(&self, node: NodeId) -> crate::ledger::DomainId {
        self.core.domain_of[node as usize]
    }

    /// Cancels a timer that has not fired yet (a fired or unknown one is
    /// ignored). Only needed where a pending timer would keep the drain
    /// waiting for nothing: a crash cancels a node's timers anyway.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.core.queue.cancel(id);
    }

    /// True once the run phase is over: producers should stop producing.
    #[inline]
    pub fn draining(&self) -> bool {
        self.core.phase != Phase::Run
    }

    /// Records `id` in dedup store number `store` and returns true if it was
    /// not there yet: the check and the insert are one atomic step, as an
    /// `INSERT IGNORE` in the same transaction as the effect. Stores are
    /// shared by every node that names the same one, and durable.
    pub fn dedup_insert(&mut self, store: usize, id: MsgId) -> bool {
        if store >= self.core.stores.len() {
            self.core.stores.resize_with(store + 1, Default::default);
        }
        self.core.stores[store].insert(id)
    }

    /// A uniform number in [0, 1) fixed by the seed, the message and
    /// `purpose`: the same every time it is asked, by any node. For
    /// properties of a message itself, such as whether it is a poison
    /// message that fails every time it is processed.
    pub fn message_draw(&self, id: MsgId, purpose: &str) -> f64 {
        let mut x =
            self.core.seed ^ crate::rng::stable_hash(purpose.as_bytes()) ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64's finaliser: every input bit affects every output bit.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// This node's slow-node factor (1.0 normally): processing times are
    /// multiplied by it.
    #[inline]
    pub fn slow_factor(&self) -> f64 {
        self.core.net.slow_factor(self.me)
    }

    /// Registers a new message with the ledger and returns its id.
    /// `fire_and_forget` means the producer considers it sent at once.
    #[inline]
    pub fn produce(&mut self, key: u64, fire_and_forget: bool) -> MsgId {
        self.core.ledger.produce(self.now, self.me, key, fire_and_forget)
    }

    /// Reports that this producer now considers message `id` sent (it
    /// accepted the broker's ack for it).
    #[inline]
    pub fn confirm_sent(&mut self, id: MsgId) {
        self.core.ledger.confirm(id);
    }

    /// Reports that this node starts processing message `id`.
    #[inline]
    pub fn start_processing(&mut self, id: MsgId) {
        self.core.ledger.started(self.now, id);
    }

    /// Reports that this node applied the effect of message `id` (in its
    /// effect domain).
    #[inline]
    pub fn apply_effect(&mut self, id: MsgId) {
        let domain = self.core.domain_of[self.me as usize];
        self.core.ledger.applied(self.now, domain, id);
    }

    /// Adds `v` to the run's named figure `name` (reported in the summary's
    /// `metrics`).
    pub fn metric_add(&mut self, name: &'static str, v: f64) {
        self.core.metrics.add(name, v);
    }

    /// Sets the run's named figure `name` to `v` (the last value is reported).
    pub fn metric_set(&mut self, name: &'static str, v: f64) {
        self.core.metrics.set(name, v);
    }

    /// Raises the run's named figure `name` to at least `v`.
    pub fn metric_max(&mut self, name: &'static str, v: f64) {
        self.core.metrics.max(name, v);
    }

    /// Counts an error of `kind` (a refused publish, a timeout, ...).
    pub fn error(&mut self, kind: &'static str) {
        self.core.metrics.error(kind);
    }

    /// Reports this node's queue depth (messages waiting).
    #[inline]
    pub fn set_queue_depth(&mut self, depth: u64) {
        self.core.metrics.set_depth(self.me as usize, depth);
    }

    /// Reports that this producer has produced all it was asked to.
    pub fn producer_done(&mut self) {
        self.core.retire(self.me);
    }
}
