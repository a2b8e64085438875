//! A saga participant: does its step when asked (by a coordinator's call,
//! or by the previous step's event), undoes it when asked, and remembers
//! what it did for each workflow so every repeated request is answered
//! without doing anything twice.
//!
//! Its table of outcomes (done, refused, compensated) and its outbox of
//! events not yet acknowledged are durable (its database, written in the
//! same transaction as the step: a transactional outbox); the work in
//! progress is not, and a crash forgets it (the caller's retry, or the
//! sender's resend, asks again). An event is acknowledged once the work it
//! asked for is recorded, never before, so a crash cannot swallow it.
//! Every request is worked on at once (no pool of workers).

use super::{Action, StepSpec};
use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::rpc::{RpcMsg, Status};
use crate::rng::chance;
use crate::time::{ms_to_ns, Time};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

/// The metrics a participant reports.
pub(super) const METRICS: [&str; 4] = ["steps_applied", "compensations_run", "compensation_retries", "saga_messages"];

/// A participant's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTimer {
    /// The earliest unacknowledged event is due to be sent again.
    Resend,
    /// The work on workflow `0` is finished.
    Process(MsgId),
}

impl Timer for StepTimer {
    fn to_word(self) -> u64 {
        match self {
            StepTimer::Resend => 0,
            StepTimer::Process(id) => id << 1 | 1,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        match word {
            0 => Some(StepTimer::Resend),
            w if w & 1 == 1 => Some(StepTimer::Process(w >> 1)),
            _ => None,
        }
    }
}

/// Who asked for work in progress, to be answered when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// A coordinator's call (its latest attempt).
    Call(NodeId, u64),
    /// A neighbour's event, acknowledged when the work is recorded.
    Event(NodeId),
}

/// What the participant did for one workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Did {
    /// Working on it (volatile).
    Working(Action, Asker),
    /// The step is done (and not undone).
    Done,
    /// The step refused (a business failure): nothing to undo.
    Refused,
    /// Undone, or cancelled before it was done (a tombstone).
    Compensated,
}

/// A running participant.
pub struct Step {
    processing: Sampler,
    failure_probability: f64,
    compensation_failure_probability: f64,
    resend_ns: u64,
    /// In a choreographed flow: (upstream, downstream).
    links: Option<(NodeId, NodeId)>,
    // Durable.
    table: BTreeMap<MsgId, Did>,
    /// Events not acknowledged yet: (workflow, downstream?) -> next resend.
    outbox: BTreeMap<(MsgId, bool), Time>,
    // Volatile.
    resends: Deadlines,
}

impl Step {
    /// A participant as `spec` says; `links` when it is choreographed.
    pub fn new(spec: &StepSpec, links: Option<(NodeId, NodeId)>) -> Self {
        Step {
            processing: spec.processing.sampler(),
            failure_probability: spec.failure_probability,
            compensation_failure_probability: spec.compensation_failure_probability,
            resend_ns: ms_to_ns(spec.resend_ms.0).max(1),
            links,
            table: BTreeMap::new(),
            outbox: BTreeMap::new(),
            resends: Deadlines::default(),
        }
    }

    fn send(ctx: &mut Ctx<StepTimer>, to: NodeId, msg: RpcMsg) {
        ctx.metric_add("saga_messages", 1.0);
        ctx.send(to, msg);
    }

    /// Answers `asker` about workflow `id`: a reply to a call, an ack of an
    /// event.
    fn answer(ctx: &mut Ctx<StepTimer>, id: MsgId, asker: Asker, status: Status) {
        match asker {
            Asker::Call(to, call) => Self::send(ctx, to, RpcMsg::Reply { id, call, status }),
            Asker::Event(to) => Self::send(ctx, to, RpcMsg::DoneAck { id }),
        }
    }

    /// A request to do (or undo) the step of workflow `id`.
    fn request(&mut self, ctx: &mut Ctx<StepTimer>, id: MsgId, action: Action, asker: Asker) {
        let did = self.table.get(&id).copied();
        match (did, action) {
            (None, Action::Do) | (Some(Did::Done), Action::Compensate) => self.work(ctx, id, action, asker),
            (None, Action::Compensate) => {
                // Cancelled before it came: a late request to do it is refused.
                self.table.insert(id, Did::Compensated);
                Self::answer(ctx, id, asker, Status::Ok);
            }
            (Some(Did::Working(working, _)), _) => {
                if working == action {
                    self.table.insert(id, Did::Working(action, asker));
                }
            }
            (Some(Did::Done), Action::Do) | (Some(Did::Refused | Did::Compensated), Action::Compensate) => {
                Self::answer(ctx, id, asker, Status::Ok)
            }
            (Some(Did::Refused | Did::Compensated), Action::Do) => Self::answer(ctx, id, asker, Status::Error),
        }
    }

    fn work(&mut self, ctx: &mut Ctx<StepTimer>, id: MsgId, action: Action, asker: Asker) {
        self.table.insert(id, Did::Working(action, asker));
        let factor = ctx.slow_factor();
        let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
        ctx.set_timer(took, StepTimer::Process(id));
    }

    /// The work on workflow `id` is finished.
    fn finished(&mut self, ctx: &mut Ctx<StepTimer>, id: MsgId) {
        let Some(&Did::Working(action, asker)) = self.table.get(&id) else { return };
        let (did, status) = match action {
            Action::Do if chance(ctx.rng(), self.failure_probability) => (Did::Refused, Status::Error),
            Action::Do => {
                ctx.metric_add("steps_applied", 1.0);
                (Did::Done, Status::Ok)
            }
            Action::Compensate if chance(ctx.rng(), self.compensation_failure_probability) => {
                // A transient failure: the step stays done, and the
                // caller's retry (or the sender's resend) asks again.
                self.table.insert(id, Did::Done);
                if let Asker::Call(..) = asker {
                    Self::answer(ctx, id, asker, Status::Error);
                }
                return;
            }
            Action::Compensate => {
                ctx.metric_add("compensations_run", 1.0);
                (Did::Compensated, Status::Ok)
            }
        };
        self.table.insert(id, did);
        Self::answer(ctx, id, asker, status);
        if let Asker::Event(_) = asker {
            // Done: tell the next step; refused or undone: the previous one.
            self.emit(ctx, id, did == Did::Done);
        }
    }

    /// Puts the event of workflow `id` (downstream: done; else: undo) in
    /// the outbox, and sends it.
    fn emit(&mut self, ctx: &mut Ctx<StepTimer>, id: MsgId, down: bool) {
        self.outbox.insert((id, down), ctx.now());
        self.resend(ctx, id, down);
    }

    fn resend(&mut self, ctx: &mut Ctx<StepTimer>, id: MsgId, down: bool) {
        let Some((up, downstream)) = self.links else { return };
        let (to, status) = if down { (downstream, Status::Ok) } else { (up, Status::Error) };
        Self::send(ctx, to, RpcMsg::Done { id, status });
        let at = ctx.now() + self.resend_ns;
        self.outbox.insert((id, down), at);
        self.resends.add(ctx, at, id << 1 | u64::from(down), StepTimer::Resend);
    }

    fn due(&mut self, ctx: &mut Ctx<StepTimer>) {
        let outbox = &self.outbox;
        let keys = self.resends.expire(ctx, StepTimer::Resend, |k, at| outbox.get(&(k >> 1, k & 1 == 1)) == Some(&at));
        for k in keys {
            let down = k & 1 == 1;
            if !down {
                ctx.metric_add("compensation_retries", 1.0);
            }
            self.resend(ctx, k >> 1, down);
        }
    }

    fn acked(&mut self, from: NodeId, id: MsgId) {
        let Some((up, down)) = self.links else { return };
        // The same node may be both neighbours (a sub-flow of one step):
        // then only one of the two events exists.
        if from == down && self.outbox.remove(&(id, true)).is_some() {
            return;
        }
        if from == up {
            self.outbox.remove(&(id, false));
        }
    }
}

impl Component for Step {
    type Timer = StepTimer;

    fn start(&mut self, ctx: &mut Ctx<StepTimer>) {
        for name in METRICS {
            ctx.metric_add(name, 0.0);
        }
        // After a restart: the outbox survived, its timers did not.
        let now = ctx.now();
        let pending: Vec<(MsgId, bool)> = self.outbox.keys().copied().collect();
        for (id, down) in pending {
            self.outbox.insert((id, down), now);
            self.resends.add(ctx, now, id << 1 | u64::from(down), StepTimer::Resend);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<StepTimer>, from: NodeId, msg: Msg) {
        let Msg::Rpc(msg) = msg else { return };
        match msg {
            RpcMsg::Call { rec, call, .. } => self.request(ctx, rec.id, Action::of(call), Asker::Call(from, call)),
            RpcMsg::Done { id, status } => {
                let action = if status.is_success() { Action::Do } else { Action::Compensate };
                self.request(ctx, id, action, Asker::Event(from));
            }
            RpcMsg::DoneAck { id } => self.acked(from, id),
            RpcMsg::Reply { .. } | RpcMsg::Poll { .. } | RpcMsg::PollReply { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<StepTimer>, timer: StepTimer) {
        match timer {
            StepTimer::Resend => self.due(ctx),
            StepTimer::Process(id) => self.finished(ctx, id),
        }
    }

    fn crash(&mut self) {
        // Work in progress is lost; an undo in progress leaves the step
        // done, as it was before the undo began.
        self.table.retain(|_, d| !matches!(d, Did::Working(Action::Do, _)));
        for d in self.table.values_mut() {
            if let Did::Working(Action::Compensate, _) = d {
                *d = Did::Done;
            }
        }
        self.resends.clear();
    }

    fn memory_bytes(&self) -> usize {
        (self.table.len() + self.outbox.len()) * 48
    }
}
