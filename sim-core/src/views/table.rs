//! The table: a key-value read model written by a log consumer (its
//! sink) and read by readers and caches (see the module doc of
//! [`crate::views`]).

use super::{Read, TableSpec};
use crate::dist::Sampler;
use crate::engine::{Component, Ctx};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{KvMsg, SinkMsg};
use std::collections::{BTreeMap, BTreeSet};

/// The metrics a table reports.
pub const METRICS: [&str; 4] = ["table_writes", "table_duplicates", "table_older_kept", "table_reads"];

/// A table's timer, as a store's: read number `n` (the table's own
/// serial) is served.
pub use crate::store::Served;

/// A running table (see the module doc of [`crate::views`]).
#[derive(Debug)]
pub struct Table {
    read_latency: Sampler,
    versioned: bool,
    /// Durable: each key's row, the id of the write it reflects (a
    /// delete's id is a tombstone).
    rows: BTreeMap<u64, MsgId>,
    /// Durable: the ids of every write applied (the processed-events
    /// table a deduplicating writer keeps).
    applied: BTreeSet<MsgId>,
    /// Volatile: reads being served, by serial.
    reads: BTreeMap<u64, Read>,
    next: u64,
}

impl Table {
    /// A table as `spec` describes it.
    pub fn new(spec: &TableSpec) -> Self {
        Table {
            read_latency: spec.read_latency.sampler(),
            versioned: spec.versioned,
            rows: BTreeMap::new(),
            applied: BTreeSet::new(),
            reads: BTreeMap::new(),
            next: 0,
        }
    }

    /// The write key `key` reflects (`None`: never written).
    pub fn row(&self, key: u64) -> Option<MsgId> {
        self.rows.get(&key).copied()
    }

    /// A write from the log consumer `from`: applied once, answered always.
    fn write(&mut self, ctx: &mut Ctx<Served>, from: NodeId, rec: Record) {
        if self.applied.insert(rec.id) {
            ctx.apply_effect(rec.id);
            ctx.metric_add("table_writes", 1.0);
            let key = rec.key();
            let held = self.rows.get(&key).copied();
            if self.versioned && held.is_some_and(|h| h > rec.id) {
                // A conditional write: the row already reflects a newer one.
                ctx.metric_add("table_older_kept", 1.0);
            } else if held != Some(rec.id) {
                self.rows.insert(key, rec.id);
                ctx.holds(key, Some(rec.id));
            }
        } else {
            ctx.metric_add("table_duplicates", 1.0);
        }
        ctx.send(from, SinkMsg::Written { id: rec.id });
    }

    fn get(&mut self, ctx: &mut Ctx<Served>, from: NodeId, key: u64, req: u64) {
        let n = self.next;
        self.next += 1;
        self.reads.insert(n, Read { from, key, req });
        let slow = ctx.slow_factor();
        let delay = self.read_latency.sample_scaled_ns(ctx.rng(), slow);
        ctx.set_timer(delay, Served(n));
    }
}

impl Component for Table {
    type Timer = Served;

    fn start(&mut self, ctx: &mut Ctx<Served>) {
        ctx.replica(true);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Served>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Sink(SinkMsg::Write { rec, .. }) => self.write(ctx, from, rec),
            Msg::Kv(KvMsg::Get { key, req }) => self.get(ctx, from, key, req),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Served>, timer: Served) {
        let Some(r) = self.reads.remove(&timer.0) else { return };
        ctx.metric_add("table_reads", 1.0);
        ctx.send(r.from, KvMsg::Value { key: r.key, req: r.req, seen: self.row(r.key) });
    }

    fn crash(&mut self) {
        // The rows and the processed ids are on disk; reads in progress die.
        self.reads.clear();
    }

    fn memory_bytes(&self) -> usize {
        const ROW_BYTES: usize = 32;
        const ID_BYTES: usize = 16;
        const READ_BYTES: usize = 48;
        self.rows.len() * ROW_BYTES + self.applied.len() * ID_BYTES + self.reads.len() * READ_BYTES
    }
}
