//! Stores: state that outlives the components that use it.
//!
//! - The dedup stores of idempotent consumers ([`Stores`], kept by the
//!   engine, see [`crate::dedup`]).
//! - The `store` kind (`[stores.NAME]`): a database or key-value store that
//!   services call over the network with the request/response protocol
//!   ([`crate::protocol::RpcMsg`]). It answers each `Call` with a `Reply`
//!   after a latency drawn from its `latency` distribution (times the
//!   node's slow factor, fixed when the call starts), serving at most
//!   `concurrency` calls at once (a connection pool; 0: unlimited); calls
//!   beyond it wait in FIFO order, and that wait is the node's queue
//!   depth. With `writes = true` (the default) a call that succeeds applies
//!   its record's effect in the store's effect domain, then is answered 200.
//!
//! Its availability schedule is made of faults: a `crash` (down: calls in
//! progress or waiting are lost unanswered, calls sent to it are dropped,
//! its callers time out), a `slow` fault (latency times the factor) and an
//! `errors` fault ([`crate::net::NodeFault::Errors`]): while one is in
//! force, each call that arrives is answered 500 at once with the fault's
//! probability, without doing the work (the draw comes from a stream of
//! the store's own, so errors shift no other draw).
//!
//! Simplifications, stated: a write is applied at the instant its reply
//! is sent, so a crash never separates the two (a write applied before a
//! crash stays applied: the store is durable; one in progress at the crash
//! is neither applied nor answered). A write is not idempotent: a caller's
//! retry of a call whose reply was lost or late applies the effect again
//! (the ledger counts it `duplicated`). Every call is the same operation
//! (no reads versus writes, no keys contending for locks, no transactions,
//! no replication): the latency distribution stands for all of it. Calls
//! are not dropped for their caller's `deadline`: a store serves whoever
//! is waiting. The `errors` draw happens when a call arrives; a call
//! already waiting when an `errors` fault begins is served. An `errors`
//! fault that begins while the store is down is void (as every fault
//! aimed at a part of a node); one in force survives a crash of the store
//! (it is the schedule, not the store's memory).

mod kind;
#[cfg(test)]
mod tests;

pub use crate::dedup::Stores;
pub use kind::{StoreKind, StoreSpec};

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{RpcMsg, Status};
use crate::rng::{chance, SimRng};
use crate::size::side_stream;
use std::collections::{BTreeMap, VecDeque};

/// The metrics a store reports.
pub const METRICS: [&str; 2] = ["store_calls", "store_errors"];

/// A store's timer: call number `n` (the store's own serial) is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served(pub u64);

impl Timer for Served {
    fn to_word(self) -> u64 {
        self.0
    }
    fn from_word(word: u64) -> Option<Self> {
        Some(Served(word))
    }
}

/// One call the store holds: who asked, for what, under which number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    from: NodeId,
    rec: Record,
    call: u64,
}

/// A running store (see the module doc).
#[derive(Debug)]
pub struct Store {
    latency: Sampler,
    /// Calls served at once; 0: unlimited.
    concurrency: u32,
    writes: bool,
    /// Calls being served, by their serial number.
    busy: BTreeMap<u64, Pending>,
    /// Calls waiting for a free connection, oldest first.
    waiting: VecDeque<Pending>,
    /// The serial of the next call to start.
    next: u64,
    /// The probabilities (in millionths) of the `errors` faults in force.
    errors: Vec<u32>,
    /// The stream the `errors` draws come from, made on first use.
    errors_rng: Option<SimRng>,
}

impl Store {
    /// A store as `spec` describes it.
    pub fn new(spec: &StoreSpec) -> Self {
        Store {
            latency: spec.latency.sampler(),
            concurrency: spec.concurrency,
            writes: spec.writes,
            busy: BTreeMap::new(),
            waiting: VecDeque::new(),
            next: 0,
            errors: Vec::new(),
            errors_rng: None,
        }
    }

    /// The probability that a call arriving now is answered 500: each
    /// `errors` fault in force fails it independently.
    fn error_probability(&self) -> f64 {
        1.0 - self.errors.iter().map(|&m| 1.0 - f64::from(m) / 1e6).product::<f64>()
    }

    fn has_room(&self) -> bool {
        self.concurrency == 0 || self.busy.len() < self.concurrency as usize
    }

    fn on_call(&mut self, ctx: &mut Ctx<Served>, p: Pending) {
        ctx.metric_add("store_calls", 1.0);
        let q = self.error_probability();
        if q > 0.0 {
            let rng = self.errors_rng.get_or_insert_with(|| side_stream(ctx.rng(), "errors"));
            if chance(rng, q) {
                ctx.metric_add("store_errors", 1.0);
                ctx.send(p.from, RpcMsg::Reply { id: p.rec.id, call: p.call, status: Status::Error });
                return;
            }
        }
        if self.has_room() {
            self.begin(ctx, p);
        } else {
            self.waiting.push_back(p);
            ctx.set_queue_depth(self.waiting.len() as u64);
        }
    }

    /// Starts serving `p`.
    fn begin(&mut self, ctx: &mut Ctx<Served>, p: Pending) {
        let n = self.next;
        self.next += 1;
        if self.writes {
            ctx.start_processing(p.rec.id);
        }
        let slow = ctx.slow_factor();
        let delay = self.latency.sample_scaled_ns(ctx.rng(), slow);
        self.busy.insert(n, p);
        ctx.set_timer(delay, Served(n));
    }

    /// Call `n` is done: apply, answer, and start the next waiting call.
    fn finish(&mut self, ctx: &mut Ctx<Served>, n: u64) {
        let Some(p) = self.busy.remove(&n) else { return };
        if self.writes {
            ctx.apply_effect(p.rec.id);
        }
        ctx.send(p.from, RpcMsg::Reply { id: p.rec.id, call: p.call, status: Status::Ok });
        if self.has_room() {
            if let Some(next) = self.waiting.pop_front() {
                self.begin(ctx, next);
                ctx.set_queue_depth(self.waiting.len() as u64);
            }
        }
    }
}

impl Component for Store {
    type Timer = Served;

    fn start(&mut self, _ctx: &mut Ctx<Served>) {}

    fn on_message(&mut self, ctx: &mut Ctx<Served>, from: NodeId, msg: Msg) {
        if let Msg::Rpc(RpcMsg::Call { rec, call, .. }) = msg {
            self.on_call(ctx, Pending { from, rec, call });
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Served>, timer: Served) {
        self.finish(ctx, timer.0);
    }

    fn crash(&mut self) {
        // Calls in progress and waiting die with the process, unanswered;
        // the `errors` faults in force and the serial numbers go on.
        self.busy.clear();
        self.waiting.clear();
    }

    fn restart(&mut self, ctx: &mut Ctx<Served>) {
        ctx.set_queue_depth(0);
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.busy.values().map(|p| p.rec.id));
        out.extend(self.waiting.iter().map(|p| p.rec.id));
    }

    fn on_fault(&mut self, _ctx: &mut Ctx<Served>, fault: &NodeFault, begins: bool) {
        if let NodeFault::Errors { ppm } = *fault {
            if begins {
                self.errors.push(ppm);
            } else if let Some(i) = self.errors.iter().position(|&m| m == ppm) {
                self.errors.remove(i);
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 64;
        (self.busy.len() + self.waiting.capacity()) * ENTRY_BYTES
    }
}
