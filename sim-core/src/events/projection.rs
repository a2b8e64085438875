//! The projection: keyed state derived from a log of writes, one record at
//! a time, in the order the record's header (its key's version) says.

use super::{digest_of, Order};
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::{Record, SinkMsg, SyncMsg};
use crate::time::{Duration, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The metrics a projection reports.
pub const METRICS: [&str; 14] = [
    "applied_events",
    "duplicate_events",
    "out_of_order_events",
    "stale_refused",
    "unstamped_events",
    "copies_applied",
    "repairs",
    "travel_events",
    "travel_keys",
    "travel_digest",
    "snapshots_taken",
    "snapshot_events",
    "replay_events",
    "replay_ms",
];

/// How a projection is set up (see [`super::ProjectionSpec`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setup {
    /// How versions are used.
    pub order: Order,
    /// A time-travel projection applies only records below this offset.
    pub stop_at: Option<u64>,
    /// Applying one event takes this long (events are applied one at a time).
    pub apply: Duration,
    /// Take a snapshot every this many applied events, into this store.
    pub snapshot: Option<(u64, usize)>,
    /// Start from the newest snapshot of this store.
    pub restore: Option<usize>,
    /// Measure the catch-up (`replay_events`, `replay_ms`).
    pub replay: bool,
}

/// A projection's timer: the event being applied is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied;

impl Timer for Applied {
    fn to_word(self) -> u64 {
        0
    }
    fn from_word(word: u64) -> Option<Self> {
        (word == 0).then_some(Applied)
    }
}

/// A running projection (see the module doc of [`super`]).
#[derive(Debug)]
pub struct Projection {
    setup: Setup,
    // Durable (a database): what it holds and the events it waits on.
    /// Per key: the write it reflects and that write's version.
    state: BTreeMap<u64, (MsgId, u64)>,
    /// Events that came before an earlier one of their key, by (key,
    /// version), waiting for the gap to fill (`order = "sequence"`).
    waiting: BTreeMap<(u64, u64), MsgId>,
    /// Per partition, the offset after the last record it was given.
    next_offset: BTreeMap<u32, u64>,
    /// Per partition, the first offset its restored snapshot lacks.
    restored: BTreeMap<u32, u64>,
    /// Events applied since the last snapshot.
    since_snapshot: u64,
    /// Events a time-travel projection applied.
    travelled: u64,
    /// Events whose effect its state holds (applied, or superseded by a
    /// copy or a newer version), so that each counts once in the ledger.
    effects: BTreeSet<MsgId>,
    // Volatile.
    /// Answers owed, with when each is due (applying takes `apply`).
    owed: VecDeque<(Time, NodeId, MsgId)>,
    /// When it last (re)started, and whether it has caught up since.
    started: Time,
    caught_up: bool,
    replayed: u64,
    /// Its effect domain (known once started).
    domain: DomainId,
}

impl Projection {
    /// A projection set up as `setup` says.
    pub fn new(setup: Setup) -> Self {
        Projection {
            setup,
            state: BTreeMap::new(),
            waiting: BTreeMap::new(),
            next_offset: BTreeMap::new(),
            restored: BTreeMap::new(),
            since_snapshot: 0,
            travelled: 0,
            effects: BTreeSet::new(),
            owed: VecDeque::new(),
            started: 0,
            caught_up: false,
            replayed: 0,
            domain: 0,
        }
    }

    /// A projection in `order` with no cost, snapshot or replay measure;
    /// with `stop_at`, a time-travel one.
    pub fn simple(order: Order, stop_at: Option<u64>) -> Self {
        Projection::new(Setup { order, stop_at, ..Setup::default() })
    }

    /// What it holds: per key, the write it reflects and its version.
    pub fn state(&self) -> &BTreeMap<u64, (MsgId, u64)> {
        &self.state
    }

    /// Events held back until an earlier one of their key comes.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn live(&self) -> bool {
        self.setup.stop_at.is_none()
    }

    /// Record `rec`, at `offset` of `partition`, reached the projection from
    /// `from` (a sink's `Write`): it is applied, held back or skipped, and
    /// answered once applied (or at once when it costs nothing).
    pub fn write(&mut self, ctx: &mut Ctx<Applied>, from: NodeId, rec: Record, partition: u32, offset: u64) {
        let next = self.next_offset.entry(partition).or_insert(0);
        *next = (*next).max(offset + 1);
        let in_snapshot = self.restored.get(&partition).is_some_and(|&end| offset < end);
        let applied = if in_snapshot {
            // Its effect is in the restored state: applied, at no cost.
            ctx.apply_effect(rec.id);
            ctx.metric_add("snapshot_events", 1.0);
            0
        } else if self.setup.stop_at.is_some_and(|n| offset >= n) {
            0
        } else {
            self.take(ctx, rec)
        };
        self.owe(ctx, from, rec.id, applied);
    }

    /// Owes `from` the answer for `id`, due once the `applied` events it
    /// applied are done (after those owed before).
    fn owe(&mut self, ctx: &mut Ctx<Applied>, from: NodeId, id: MsgId, applied: u64) {
        let free = self.owed.back().map_or(ctx.now(), |&(at, _, _)| at.max(ctx.now()));
        let due = free + applied * self.setup.apply;
        if due == ctx.now() && self.owed.is_empty() {
            answer(ctx, from, id);
            return;
        }
        if self.owed.is_empty() {
            ctx.set_timer(due - ctx.now(), Applied);
        }
        self.owed.push_back((due, from, id));
    }

    /// Applies, holds back or skips `rec`; returns how many events it applied.
    fn take(&mut self, ctx: &mut Ctx<Applied>, rec: Record) -> u64 {
        let key = rec.key();
        let Some(version) = ctx.header(rec.id, crate::dedup::Header::Version) else {
            // Nothing to order by: applied as it comes.
            ctx.metric_add("unstamped_events", 1.0);
            self.apply(ctx, key, rec.id, 0);
            return 1;
        };
        let held = self.state.get(&key).map_or(0, |&(_, v)| v);
        match self.setup.order {
            Order::Arrival => {
                self.apply(ctx, key, rec.id, version);
                1
            }
            Order::Version if version > held => {
                self.apply(ctx, key, rec.id, version);
                1
            }
            Order::Version => {
                self.skip(ctx, rec.id, if version == held { "duplicate_events" } else { "stale_refused" })
            }
            Order::Sequence if version <= held => self.skip(ctx, rec.id, "duplicate_events"),
            Order::Sequence if self.waiting.contains_key(&(key, version)) => {
                ctx.metric_add("duplicate_events", 1.0);
                0
            }
            Order::Sequence if version > held + 1 => {
                self.waiting.insert((key, version), rec.id);
                ctx.metric_add("out_of_order_events", 1.0);
                0
            }
            Order::Sequence => {
                self.apply(ctx, key, rec.id, version);
                let mut next = version + 1;
                while let Some(id) = self.waiting.remove(&(key, next)) {
                    self.apply(ctx, key, id, next);
                    next += 1;
                }
                next - version
            }
        }
    }

    /// Skips event `id`, counted in `what`: its effect is in the state
    /// already (applied, or superseded by a newer version or a copy), so
    /// the ledger hears of it once, and never again for a repeat.
    fn skip(&mut self, ctx: &mut Ctx<Applied>, id: MsgId, what: &'static str) -> u64 {
        ctx.metric_add(what, 1.0);
        if self.live() && self.effects.insert(id) {
            ctx.apply_effect(id);
        }
        0
    }

    /// Applies write `id` (version `version`) of `key`: its effect in the
    /// ledger (a live projection) and the state.
    fn apply(&mut self, ctx: &mut Ctx<Applied>, key: u64, id: MsgId, version: u64) {
        if !self.live() {
            self.travelled += 1;
            self.state.insert(key, (id, version));
            ctx.metric_set("travel_events", self.travelled as f64);
            ctx.metric_set("travel_keys", self.state.len() as f64);
            ctx.metric_set("travel_digest", digest_of(&self.state) as f64);
            return;
        }
        // Without a check a repeat is applied again (and counted so).
        if self.effects.insert(id) || self.setup.order == Order::Arrival {
            ctx.apply_effect(id);
        }
        ctx.metric_add("applied_events", 1.0);
        self.replayed += 1;
        self.set(ctx, key, id, version);
        if let Some((every, store)) = self.setup.snapshot {
            self.since_snapshot += 1;
            if self.since_snapshot >= every {
                self.since_snapshot = 0;
                ctx.stores_mut().save_snapshot(store, (self.state.clone(), self.next_offset.clone()));
                ctx.metric_add("snapshots_taken", 1.0);
            }
        }
    }

    fn set(&mut self, ctx: &mut Ctx<Applied>, key: u64, id: MsgId, version: u64) {
        if self.state.insert(key, (id, version)).map(|(old, _)| old) != Some(id) {
            ctx.holds(key, Some(id));
        }
        self.check_caught_up(ctx);
    }

    /// With `replay`: the first time it holds every key's newest write
    /// since it started, it reports the events it applied and the time.
    fn check_caught_up(&mut self, ctx: &mut Ctx<Applied>) {
        if !self.setup.replay || self.caught_up {
            return;
        }
        let source = ctx.stores_mut().source();
        if source.len() != self.state.len()
            || source.iter().any(|(k, &(id, _))| self.state.get(k).map(|s| s.0) != Some(id))
        {
            return;
        }
        self.caught_up = true;
        ctx.metric_set("replay_events", self.replayed as f64);
        ctx.metric_set("replay_ms", (ctx.now() - self.started) as f64 / 1e6);
    }

    /// A crawler's or a watcher's copy of `key`: the source's write `id`,
    /// version `version`. Copies carry state, not messages: no effect is
    /// applied. A versioned projection refuses one older than it holds.
    fn copy(&mut self, ctx: &mut Ctx<Applied>, key: u64, id: MsgId, version: u64, repair: bool) {
        let held = self.state.get(&key).copied();
        if held.map(|(h, _)| h) == Some(id) {
            return;
        }
        if self.setup.order != Order::Arrival && held.is_some_and(|(_, v)| v > version) {
            ctx.metric_add("stale_refused", 1.0);
            return;
        }
        ctx.metric_add(if repair { "repairs" } else { "copies_applied" }, 1.0);
        self.set(ctx, key, id, version);
        // Events of this key at or below the copy are superseded.
        if self.setup.order == Order::Sequence {
            let superseded: Vec<MsgId> = self.waiting.range((key, 0)..=(key, version)).map(|(_, &id)| id).collect();
            self.waiting.retain(|&(k, v), _| k != key || v > version);
            for id in superseded {
                if self.effects.insert(id) {
                    ctx.apply_effect(id);
                }
            }
        }
    }

    /// Loads the newest snapshot of its `restore` store, if there is one.
    fn restore(&mut self, ctx: &mut Ctx<Applied>) {
        let Some(store) = self.setup.restore else { return };
        let Some((state, offsets)) = ctx.stores_mut().snapshot(store).cloned() else { return };
        for (&key, &(id, _)) in &state {
            if self.state.get(&key).map(|s| s.0) != Some(id) {
                ctx.holds(key, Some(id));
            }
        }
        self.state = state;
        self.restored = offsets;
    }
}

/// Answers a sink's `Write` of `id`.
fn answer(ctx: &mut Ctx<Applied>, to: NodeId, id: MsgId) {
    ctx.send(to, SinkMsg::Written { id });
}

impl Component for Projection {
    type Timer = Applied;

    fn start(&mut self, ctx: &mut Ctx<Applied>) {
        self.started = ctx.now();
        if self.live() {
            self.domain = ctx.domain();
            ctx.replica(true);
            if self.state.is_empty() {
                self.restore(ctx);
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<Applied>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Sink(SinkMsg::Write { rec, partition, offset }) => self.write(ctx, from, rec, partition, offset),
            Msg::Sync(SyncMsg::Copy { key, id, version, repair }) => {
                self.copy(ctx, u64::from(key), id, u64::from(version), repair)
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Applied>, _timer: Applied) {
        while let Some(&(due, to, id)) = self.owed.front() {
            if due > ctx.now() {
                ctx.set_timer(due - ctx.now(), Applied);
                return;
            }
            self.owed.pop_front();
            answer(ctx, to, id);
        }
    }

    /// Its state and the events it waits on are durable (a database); the
    /// answers it owed are lost (the consumer sends those records again).
    fn crash(&mut self) {
        self.owed.clear();
        self.caught_up = false;
        self.replayed = 0;
    }

    /// Events waiting for a gap to fill are held for its domain only.
    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        if self.live() {
            out.extend(self.waiting.values().map(|&id| (id, self.domain)));
        }
    }
}
