//! The cache: in front of a table, read-through, with expiry, filled by
//! misses and set or invalidated by the writers that name it (see the
//! module doc of [`crate::views`]).

use super::{CacheSpec, Read};
use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::KvMsg;
use crate::time::{ms_to_ns, Duration, Time};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

/// The metrics a cache reports.
pub const METRICS: [&str; 4] = ["cache_hits", "cache_misses", "cache_fills", "cache_expired"];

/// How long a cache waits for the table's answer to a miss before it
/// forgets the read (the reader has given up by then).
pub const FILL_TIMEOUT_MS: f64 = 10_000.0;

/// A cache's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTimer {
    /// Read number `.0` (the cache's own serial) has taken the cache's
    /// latency: look the key up.
    Lookup(u64),
    /// The earliest entry's time to live has passed.
    Expire,
    /// The earliest read sent on to the table is overdue.
    FillTimeout,
}

impl Timer for CacheTimer {
    // The low two bits say which timer, the bits above them the serial.
    fn to_word(self) -> u64 {
        match self {
            CacheTimer::Lookup(n) => n << 2,
            CacheTimer::Expire => 1,
            CacheTimer::FillTimeout => 2,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        match word & 3 {
            0 => Some(CacheTimer::Lookup(word >> 2)),
            1 => Some(CacheTimer::Expire),
            2 => Some(CacheTimer::FillTimeout),
            _ => None,
        }
    }
}

/// A running cache (see the module doc of [`crate::views`]).
#[derive(Debug)]
pub struct Cache {
    table: NodeId,
    latency: Sampler,
    ttl: Option<Duration>,
    /// Each key held: the write it reflects and when it expires
    /// (`Time::MAX`: never).
    entries: BTreeMap<u64, (MsgId, Time)>,
    expiry: Deadlines,
    /// Reads in progress, by serial: waiting out the latency, or for the
    /// table's answer to a miss.
    reads: BTreeMap<u64, Read>,
    fills: Deadlines,
    next: u64,
}

impl Cache {
    /// A cache as `spec` describes it, in front of node `table`.
    pub fn new(spec: &CacheSpec, table: NodeId) -> Self {
        Cache {
            table,
            latency: spec.latency.sampler(),
            ttl: spec.ttl_ms.map(|t| ms_to_ns(t.0)),
            entries: BTreeMap::new(),
            expiry: Deadlines::default(),
            reads: BTreeMap::new(),
            fills: Deadlines::default(),
            next: 0,
        }
    }

    /// The write key `key` holds, if any.
    pub fn entry(&self, key: u64) -> Option<MsgId> {
        self.entries.get(&key).map(|e| e.0)
    }

    /// Sets `key` to write `id` (a SET with the cache's expiry: it starts
    /// the entry's time to live again).
    fn set(&mut self, ctx: &mut Ctx<CacheTimer>, key: u64, id: MsgId) {
        let expires = self.ttl.map_or(Time::MAX, |t| ctx.now().saturating_add(t));
        let before = self.entries.insert(key, (id, expires));
        if self.ttl.is_some() {
            self.expiry.add(ctx, expires, key, CacheTimer::Expire);
        }
        if before.map(|e| e.0) != Some(id) {
            ctx.holds(key, Some(id));
        }
    }

    fn evict(&mut self, ctx: &mut Ctx<CacheTimer>, key: u64) {
        if self.entries.remove(&key).is_some() {
            ctx.holds(key, None);
        }
    }

    fn get(&mut self, ctx: &mut Ctx<CacheTimer>, from: NodeId, key: u64, req: u64) {
        let n = self.next;
        self.next += 1;
        self.reads.insert(n, Read { from, key, req });
        let slow = ctx.slow_factor();
        let delay = self.latency.sample_scaled_ns(ctx.rng(), slow);
        ctx.set_timer(delay, CacheTimer::Lookup(n));
    }

    /// Read `n` has waited out the latency: a hit answers, a miss asks the
    /// table (under the read's serial).
    fn lookup(&mut self, ctx: &mut Ctx<CacheTimer>, n: u64) {
        let Some(&r) = self.reads.get(&n) else { return };
        if let Some(id) = self.entry(r.key) {
            self.reads.remove(&n);
            ctx.metric_add("cache_hits", 1.0);
            ctx.send(r.from, KvMsg::Value { key: r.key, req: r.req, seen: Some(id) });
            return;
        }
        ctx.metric_add("cache_misses", 1.0);
        ctx.send(self.table, KvMsg::Get { key: r.key, req: n });
        let at = ctx.now().saturating_add(ms_to_ns(FILL_TIMEOUT_MS));
        self.fills.add(ctx, at, n, CacheTimer::FillTimeout);
    }

    /// The table answered miss `n`: fill (unless the key was set
    /// meanwhile, with a newer write) and answer with what the table said.
    fn filled(&mut self, ctx: &mut Ctx<CacheTimer>, n: u64, seen: Option<MsgId>) {
        let Some(r) = self.reads.remove(&n) else { return };
        if let Some(id) = seen {
            if !self.entries.contains_key(&r.key) {
                ctx.metric_add("cache_fills", 1.0);
                self.set(ctx, r.key, id);
            }
        }
        ctx.send(r.from, KvMsg::Value { key: r.key, req: r.req, seen });
    }

    fn expire(&mut self, ctx: &mut Ctx<CacheTimer>) {
        let entries = &self.entries;
        let due = self.expiry.expire(ctx, CacheTimer::Expire, |key, at| entries.get(&key).is_some_and(|e| e.1 == at));
        for key in due {
            self.entries.remove(&key);
            ctx.metric_add("cache_expired", 1.0);
            ctx.holds(key, None);
        }
    }
}

impl Component for Cache {
    type Timer = CacheTimer;

    fn start(&mut self, ctx: &mut Ctx<CacheTimer>) {
        ctx.replica(false);
    }

    fn on_message(&mut self, ctx: &mut Ctx<CacheTimer>, from: NodeId, msg: Msg) {
        let Msg::Kv(m) = msg else { return };
        match m {
            KvMsg::Get { key, req } => self.get(ctx, from, key, req),
            KvMsg::Value { req, seen, .. } if from == self.table => self.filled(ctx, req, seen),
            KvMsg::Put { key, id } => self.set(ctx, key, id),
            KvMsg::Evict { key } => self.evict(ctx, key),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<CacheTimer>, timer: CacheTimer) {
        match timer {
            CacheTimer::Lookup(n) => self.lookup(ctx, n),
            CacheTimer::Expire => self.expire(ctx),
            CacheTimer::FillTimeout => {
                let reads = &self.reads;
                for n in self.fills.expire(ctx, CacheTimer::FillTimeout, |n, _| reads.contains_key(&n)) {
                    self.reads.remove(&n);
                }
            }
        }
    }

    fn crash(&mut self) {
        // Everything a cache holds is in memory.
        self.entries.clear();
        self.expiry.clear();
        self.reads.clear();
        self.fills.clear();
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 40;
        const READ_BYTES: usize = 48;
        (self.entries.len() + self.expiry.len()) * ENTRY_BYTES + (self.reads.len() + self.fills.len()) * READ_BYTES
    }
}
