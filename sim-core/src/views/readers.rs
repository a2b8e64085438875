//! Readers: the users who read a table or cache, others' links at a rate
//! and their own new links a while after creating them (see the module doc
//! of [`crate::views`]). Each answer is reported to the state observer
//! where it reaches the user (`Ctx::read`).

use super::ReadersSpec;
use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId};
use crate::producer::Workload;
use crate::protocol::KvMsg;
use crate::time::{ms_to_ns, Duration};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

/// The metrics readers report.
pub const METRICS: [&str; 2] = ["reads_sent", "own_reads_sent"];

/// The error kinds readers report.
pub const ERRORS: [&str; 1] = ["read-timeout"];

/// Readers' timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadersTimer {
    /// The next read of someone else's key is due.
    Arrival,
    /// The earliest own read is due.
    Own,
    /// The earliest read in progress is overdue.
    Timeout,
}

impl Timer for ReadersTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        use ReadersTimer::{Arrival, Own, Timeout};
        [Arrival, Own, Timeout].get(word as usize).copied()
    }
}

/// Running readers (see the module doc of [`crate::views`]).
pub struct Readers {
    target: NodeId,
    others: Option<Workload<ReadersTimer>>,
    own_delay: Option<Sampler>,
    timeout: Duration,
    /// The newest write of each key the users were told of (a 201 reached
    /// its maker): a user's read is "own" while their write is the newest.
    newest: BTreeMap<u64, MsgId>,
    /// Own reads waiting for their time, by serial: (key, the user's write).
    own: BTreeMap<u64, (u64, MsgId)>,
    own_due: Deadlines,
    /// Reads sent and not answered yet, by number: (key, the user's own
    /// write it opens, for an own read).
    pending: BTreeMap<u64, (u64, Option<MsgId>)>,
    timeouts: Deadlines,
    next: u64,
}

impl Readers {
    /// Readers as `spec` describes them, reading from node `target`.
    pub fn new(spec: &ReadersSpec, target: NodeId) -> Self {
        Readers {
            target,
            others: spec.arrival.as_ref().map(|a| Workload::new(a, &spec.keys, None, ReadersTimer::Arrival)),
            own_delay: spec.own_delay.as_ref().map(|d| d.sampler()),
            timeout: ms_to_ns(spec.timeout_ms.0),
            newest: BTreeMap::new(),
            own: BTreeMap::new(),
            own_due: Deadlines::default(),
            pending: BTreeMap::new(),
            timeouts: Deadlines::default(),
            next: 0,
        }
    }

    fn serial(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// Sends a read of `key`; `own`: the user's write it opens.
    fn read(&mut self, ctx: &mut Ctx<ReadersTimer>, key: u64, own: Option<MsgId>) {
        let req = self.serial();
        self.pending.insert(req, (key, own));
        ctx.metric_add(if own.is_some() { "own_reads_sent" } else { "reads_sent" }, 1.0);
        ctx.send(self.target, KvMsg::Get { key, req });
        let at = ctx.now().saturating_add(self.timeout);
        self.timeouts.add(ctx, at, req, ReadersTimer::Timeout);
    }

    /// A user was told their write `id` of `key` is made: remember it as
    /// the key's newest, and, for a create, open the link later.
    fn made(&mut self, ctx: &mut Ctx<ReadersTimer>, key: u64, id: MsgId, delete: bool) {
        let newest = self.newest.entry(key).or_insert(id);
        *newest = (*newest).max(id);
        let Some(delay) = &self.own_delay else { return };
        if delete {
            return;
        }
        let slow = ctx.slow_factor();
        let at = ctx.now().saturating_add(delay.sample_scaled_ns(ctx.rng(), slow));
        let n = self.serial();
        self.own.insert(n, (key, id));
        self.own_due.add(ctx, at, n, ReadersTimer::Own);
    }

    fn own_due(&mut self, ctx: &mut Ctx<ReadersTimer>) {
        let own = &self.own;
        for n in self.own_due.expire(ctx, ReadersTimer::Own, |n, _| own.contains_key(&n)) {
            let Some((key, id)) = self.own.remove(&n) else { continue };
            self.read(ctx, key, Some(id));
        }
    }

    fn answered(&mut self, ctx: &mut Ctx<ReadersTimer>, req: u64, seen: Option<MsgId>) {
        if let Some((key, own)) = self.pending.remove(&req) {
            // Judged when the answer arrives: a write someone else made
            // since makes the key no longer the user's own.
            let mine = own.is_some() && self.newest.get(&key).copied() == own;
            ctx.read(key, seen, mine);
        }
    }
}

impl Component for Readers {
    type Timer = ReadersTimer;

    fn start(&mut self, ctx: &mut Ctx<ReadersTimer>) {
        if let Some(w) = &mut self.others {
            w.start(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<ReadersTimer>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Kv(KvMsg::Value { req, seen, .. }) => self.answered(ctx, req, seen),
            Msg::Kv(KvMsg::Made { key, id, delete }) => self.made(ctx, key, id, delete),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<ReadersTimer>, timer: ReadersTimer) {
        match timer {
            ReadersTimer::Arrival => {
                let Some(w) = &mut self.others else { return };
                let Some(key) = w.arrive(ctx) else { return };
                w.made(ctx);
                self.read(ctx, key, None);
            }
            ReadersTimer::Own => self.own_due(ctx),
            ReadersTimer::Timeout => {
                let pending = &self.pending;
                for req in self.timeouts.expire(ctx, ReadersTimer::Timeout, |r, _| pending.contains_key(&r)) {
                    self.pending.remove(&req);
                    ctx.error("read-timeout");
                }
            }
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<ReadersTimer>) {
        // Others stop reading; own reads already due still happen.
        if let Some(w) = &mut self.others {
            w.drain(ctx);
        }
    }

    fn crash(&mut self) {
        if let Some(w) = &mut self.others {
            w.crash();
        }
        self.own.clear();
        self.own_due.clear();
        self.pending.clear();
        self.timeouts.clear();
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 40;
        (self.newest.len() + self.own.len() + self.own_due.len() + self.pending.len() + self.timeouts.len())
            * ENTRY_BYTES
    }
}
