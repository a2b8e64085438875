//! The projection: keyed state derived from a log of writes, one record at
//! a time, in the order the record's header (its key's version) says.

use super::{digest_of, ObserverShim, Order};
use crate::engine::{Component, Ctx, NoTimer};
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::{Record, SyncMsg};
use std::collections::BTreeMap;

/// The metrics a projection reports.
pub const METRICS: [&str; 10] = [
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
];

/// A running projection (see the module doc of [`super`]).
#[derive(Debug)]
pub struct Projection {
    order: Order,
    /// A time-travel projection applies only records below this offset.
    stop_at: Option<u64>,
    // Durable (a database): what it holds and the events it waits on.
    /// Per key: the write it reflects and that write's version.
    state: BTreeMap<u64, (MsgId, u64)>,
    /// Events that came before an earlier one of their key, by (key,
    /// version), waiting for the gap to fill (`order = "sequence"`).
    waiting: BTreeMap<(u64, u64), MsgId>,
    /// Events a time-travel projection applied.
    travelled: u64,
    /// Its effect domain (known once started).
    domain: DomainId,
}

impl Projection {
    /// A projection applying writes in `order`; with `stop_at`, a
    /// time-travel one that applies only records below that offset.
    pub fn new(order: Order, stop_at: Option<u64>) -> Self {
        Projection { order, stop_at, state: BTreeMap::new(), waiting: BTreeMap::new(), travelled: 0, domain: 0 }
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
        self.stop_at.is_none()
    }

    /// Record `rec`, at `offset` of its partition, reached the projection
    /// (a sink's `Write`). The caller answers `Written` whatever happens.
    pub fn write(&mut self, ctx: &mut Ctx<NoTimer>, rec: Record, offset: u64) {
        if self.stop_at.is_some_and(|n| offset >= n) {
            return;
        }
        let Some(version) = ctx.header(rec.id) else {
            // Nothing to order by: applied as it comes.
            ctx.metric_add("unstamped_events", 1.0);
            self.apply(ctx, rec.key(), rec.id, 0);
            return;
        };
        let key = rec.key();
        let held = self.state.get(&key).map_or(0, |&(_, v)| v);
        match self.order {
            Order::Arrival => self.apply(ctx, key, rec.id, version),
            Order::Version if version > held => self.apply(ctx, key, rec.id, version),
            Order::Version => ctx.metric_add(if version == held { "duplicate_events" } else { "stale_refused" }, 1.0),
            Order::Sequence if version <= held || self.waiting.contains_key(&(key, version)) => {
                ctx.metric_add("duplicate_events", 1.0)
            }
            Order::Sequence if version > held + 1 => {
                ctx.metric_add("out_of_order_events", 1.0);
                self.waiting.insert((key, version), rec.id);
            }
            Order::Sequence => {
                self.apply(ctx, key, rec.id, version);
                let mut next = version + 1;
                while let Some(id) = self.waiting.remove(&(key, next)) {
                    self.apply(ctx, key, id, next);
                    next += 1;
                }
            }
        }
    }

    /// Applies write `id` (version `version`) of `key`: its effect in the
    /// ledger (a live projection) and the state.
    fn apply(&mut self, ctx: &mut Ctx<NoTimer>, key: u64, id: MsgId, version: u64) {
        if self.live() {
            ctx.apply_effect(id);
            ctx.metric_add("applied_events", 1.0);
        } else {
            self.travelled += 1;
            ctx.metric_set("travel_events", self.travelled as f64);
        }
        self.set(ctx, key, id, version);
        if !self.live() {
            ctx.metric_set("travel_keys", self.state.len() as f64);
            ctx.metric_set("travel_digest", digest_of(&self.state) as f64);
        }
    }

    fn set(&mut self, ctx: &mut Ctx<NoTimer>, key: u64, id: MsgId, version: u64) {
        if self.state.insert(key, (id, version)).map(|(old, _)| old) != Some(id) && self.live() {
            ctx.holds(key, Some(id));
        }
    }

    /// A crawler's or a watcher's copy of `key`: the source's write `id`,
    /// version `version`. Copies carry state, not messages: no effect is
    /// applied. A versioned projection refuses one older than it holds.
    fn copy(&mut self, ctx: &mut Ctx<NoTimer>, key: u64, id: MsgId, version: u64, repair: bool) {
        let held = self.state.get(&key).copied();
        if held.map(|(h, _)| h) == Some(id) {
            return;
        }
        if self.order != Order::Arrival && held.is_some_and(|(_, v)| v > version) {
            ctx.metric_add("stale_refused", 1.0);
            return;
        }
        ctx.metric_add(if repair { "repairs" } else { "copies_applied" }, 1.0);
        self.set(ctx, key, id, version);
        // Events of this key at or below the copy are superseded.
        if self.order == Order::Sequence {
            self.waiting.retain(|&(k, v), _| k != key || v > version);
        }
    }
}

impl Component for Projection {
    type Timer = NoTimer;

    fn start(&mut self, ctx: &mut Ctx<NoTimer>) {
        if self.live() {
            self.domain = ctx.domain();
            ctx.replica(true);
        }
    }

    fn restart(&mut self, ctx: &mut Ctx<NoTimer>) {
        self.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<NoTimer>, _from: NodeId, msg: Msg) {
        if let Msg::Sync(SyncMsg::Copy { key, id, version, repair }) = msg {
            self.copy(ctx, u64::from(key), id, u64::from(version), repair)
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<NoTimer>, timer: NoTimer) {
        match timer {}
    }

    /// Its state and the events it waits on are durable (a database).
    fn crash(&mut self) {}

    /// Events waiting for a gap to fill are held for its domain only.
    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        if self.live() {
            out.extend(self.waiting.values().map(|&id| (id, self.domain)));
        }
    }
}
