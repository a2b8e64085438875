//! The saga node: starts workflows (one produced message each) and
//! coordinates them as its style says. Its table of workflows (the step
//! each is at, the call awaited) is durable, as a saga log would be: a
//! crash loses only its timers, and a restart resumes every workflow with
//! a fresh attempt.
//!
//! Forward calls are retried `retries` times after a timeout; a step that
//! still has not answered is given up and compensated with the others
//! (it may have done the work: its compensation undoes it, or leaves a
//! tombstone that refuses the late call). Compensation calls are retried
//! until they succeed, after every timeout or failure reply.

use super::{Action, SagaSpec};
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::producer::Workload;
use crate::protocol::rpc::{RpcMsg, Status};
use crate::time::{ms_to_ns, Time};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

/// The metrics a saga reports.
pub(super) const METRICS: [&str; 6] =
    ["sagas_completed", "sagas_compensated", "sagas_stuck", "compensation_retries", "saga_messages", "state_locations"];

/// A saga's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaTimer {
    /// The next workflow is due.
    Arrival,
    /// The earliest workflow's wake-up (a reply's deadline, a backoff's
    /// end, an event's resend) has come.
    Wake,
}

impl Timer for SagaTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        [SagaTimer::Arrival, SagaTimer::Wake].get(word as usize).copied()
    }
}

/// Where a workflow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Calling step `0` to do it.
    Forward(usize),
    /// Sending the sub-flow its start event, until acknowledged.
    Handoff,
    /// Waiting for the sub-flow's end event.
    Chain,
    /// Calling step `0` to undo it.
    Compensate(usize),
}

/// One workflow under way.
#[derive(Debug, Clone, Copy)]
struct Flow {
    key: u64,
    phase: Phase,
    /// The call awaited; 0 while backing off (or none).
    call: u64,
    /// Attempts made of the current call.
    attempts: u32,
    /// When it wakes next; 0 for never.
    wake: Time,
}

/// A running saga source and coordinator.
pub struct Saga {
    steps: Vec<NodeId>,
    /// The first choreographed step (`steps.len()` when none is).
    chain: usize,
    locations: usize,
    timeout_ns: u64,
    retries: u32,
    backoff_ns: u64,
    resend_ns: u64,
    // Durable.
    workload: Workload<SagaTimer>,
    flows: BTreeMap<MsgId, Flow>,
    next_call: u64,
    // Volatile.
    wakes: Deadlines,
}

impl Saga {
    /// A saga as `spec` says, whose steps are the nodes `steps`.
    pub fn new(spec: &SagaSpec, steps: Vec<NodeId>) -> Self {
        Saga {
            chain: spec.chain_start(),
            locations: spec.state_locations(),
            steps,
            timeout_ns: ms_to_ns(spec.timeout_ms.0).max(1),
            retries: spec.retries,
            backoff_ns: ms_to_ns(spec.retry_backoff_ms.0),
            resend_ns: ms_to_ns(spec.resend_ms.0).max(1),
            workload: Workload::new(&spec.arrival, &spec.keys, spec.messages, SagaTimer::Arrival),
            flows: BTreeMap::new(),
            next_call: 1,
            wakes: Deadlines::default(),
        }
    }

    fn send(ctx: &mut Ctx<SagaTimer>, to: NodeId, msg: RpcMsg) {
        ctx.metric_add("saga_messages", 1.0);
        ctx.send(to, msg);
    }

    fn flow(&mut self, id: MsgId) -> &mut Flow {
        self.flows.get_mut(&id).expect("a workflow under way")
    }

    fn wake_at(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId, at: Time) {
        self.flow(id).wake = at;
        self.wakes.add(ctx, at, id, SagaTimer::Wake);
    }

    fn arrive(&mut self, ctx: &mut Ctx<SagaTimer>) {
        let Some(key) = self.workload.arrive(ctx) else { return };
        let id = ctx.produce(key, true);
        ctx.metric_add("sagas_stuck", 1.0);
        self.flows.insert(id, Flow { key, phase: Phase::Forward(0), call: 0, attempts: 0, wake: 0 });
        self.workload.made(ctx);
        self.advance(ctx, id, 0);
    }

    /// Steps before `i` are done: go on with step `i`.
    fn advance(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId, i: usize) {
        if i < self.chain {
            *self.flow(id) = Flow { phase: Phase::Forward(i), call: 0, attempts: 0, ..*self.flow(id) };
            self.call(ctx, id);
        } else if i < self.steps.len() {
            self.flow(id).phase = Phase::Handoff;
            self.hand_off(ctx, id);
        } else {
            self.end(ctx, id, true);
        }
    }

    /// Step `i` refused or is undone: undo the one before it.
    fn undo_below(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId, i: usize) {
        if i == 0 {
            self.end(ctx, id, false);
        } else {
            *self.flow(id) = Flow { phase: Phase::Compensate(i - 1), call: 0, attempts: 0, ..*self.flow(id) };
            self.call(ctx, id);
        }
    }

    /// Sends the next attempt of the workflow's current call.
    fn call(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId) {
        let (step, action) = match self.flow(id).phase {
            Phase::Forward(i) => (i, Action::Do),
            Phase::Compensate(i) => (i, Action::Compensate),
            Phase::Handoff | Phase::Chain => return,
        };
        let call = action.call(self.next_call);
        self.next_call += 1;
        let flow = self.flow(id);
        flow.call = call;
        flow.attempts += 1;
        let rec = Record::new(id, flow.key);
        let deadline = ctx.now() + self.timeout_ns;
        Self::send(ctx, self.steps[step], RpcMsg::Call { rec, call, deadline });
        self.wake_at(ctx, id, deadline);
    }

    fn hand_off(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId) {
        Self::send(ctx, self.steps[self.chain], RpcMsg::Done { id, status: Status::Ok });
        let at = ctx.now() + self.resend_ns;
        self.wake_at(ctx, id, at);
    }

    /// The current call failed (a timeout, or a compensation's failure
    /// reply): retry it after the backoff, or give the step up.
    fn attempt_failed(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId) {
        let flow = *self.flow(id);
        match flow.phase {
            Phase::Forward(i) if flow.attempts > self.retries => {
                // Given up: it may have done the step, so undo it too.
                *self.flow(id) = Flow { phase: Phase::Compensate(i), call: 0, attempts: 0, ..flow };
                self.call(ctx, id);
                return;
            }
            Phase::Compensate(_) => ctx.metric_add("compensation_retries", 1.0),
            _ => {}
        }
        self.flow(id).call = 0;
        let at = ctx.now() + self.backoff_ns;
        self.wake_at(ctx, id, at);
    }

    fn woken(&mut self, ctx: &mut Ctx<SagaTimer>) {
        let flows = &self.flows;
        let due = self.wakes.expire(ctx, SagaTimer::Wake, |id, at| flows.get(&id).is_some_and(|f| f.wake == at));
        for id in due {
            let flow = *self.flow(id);
            match flow.phase {
                Phase::Handoff => self.hand_off(ctx, id),
                Phase::Chain => {}
                Phase::Forward(_) | Phase::Compensate(_) if flow.call != 0 => self.attempt_failed(ctx, id),
                Phase::Forward(_) | Phase::Compensate(_) => self.call(ctx, id),
            }
        }
    }

    fn replied(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId, call: u64, status: Status) {
        let Some(flow) = self.flows.get(&id).copied() else { return };
        if flow.call != call {
            return; // an earlier attempt's late reply
        }
        self.flow(id).wake = 0;
        match (flow.phase, status.is_success()) {
            (Phase::Forward(i), true) => self.advance(ctx, id, i + 1),
            (Phase::Forward(i), false) => self.undo_below(ctx, id, i),
            (Phase::Compensate(i), true) => self.undo_below(ctx, id, i),
            (Phase::Compensate(_), false) => self.attempt_failed(ctx, id),
            (Phase::Handoff | Phase::Chain, _) => {}
        }
    }

    /// An event from the sub-flow: its start taken, or its end.
    fn event(&mut self, ctx: &mut Ctx<SagaTimer>, from: NodeId, id: MsgId, status: Option<Status>) {
        let Some(flow) = self.flows.get(&id).copied() else { return };
        if !matches!(flow.phase, Phase::Handoff | Phase::Chain) {
            return;
        }
        let last = *self.steps.last().expect("a saga has steps");
        match status {
            None if from == self.steps[self.chain] && flow.phase == Phase::Handoff => {
                *self.flow(id) = Flow { phase: Phase::Chain, wake: 0, ..flow };
            }
            Some(Status::Ok) if from == last => self.end(ctx, id, true),
            Some(s) if !s.is_success() && from == self.steps[self.chain] => self.undo_below(ctx, id, self.chain),
            _ => {}
        }
    }

    fn end(&mut self, ctx: &mut Ctx<SagaTimer>, id: MsgId, completed: bool) {
        self.flows.remove(&id);
        ctx.apply_effect(id);
        ctx.metric_add("sagas_stuck", -1.0);
        ctx.metric_add(if completed { "sagas_completed" } else { "sagas_compensated" }, 1.0);
    }
}

impl Component for Saga {
    type Timer = SagaTimer;

    fn start(&mut self, ctx: &mut Ctx<SagaTimer>) {
        for name in METRICS {
            ctx.metric_add(name, 0.0);
        }
        ctx.metric_max("state_locations", self.locations as f64);
        self.workload.start(ctx);
        // After a restart: resume every workflow with a fresh attempt.
        let now = ctx.now();
        let ids: Vec<MsgId> = self.flows.iter().filter(|(_, f)| f.phase != Phase::Chain).map(|(&id, _)| id).collect();
        for id in ids {
            self.flow(id).call = 0;
            self.wake_at(ctx, id, now);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<SagaTimer>, from: NodeId, msg: Msg) {
        let Msg::Rpc(msg) = msg else { return };
        match msg {
            RpcMsg::Reply { id, call, status } => self.replied(ctx, id, call, status),
            RpcMsg::Done { id, status } => {
                Self::send(ctx, from, RpcMsg::DoneAck { id });
                self.event(ctx, from, id, Some(status));
            }
            RpcMsg::DoneAck { id } => self.event(ctx, from, id, None),
            RpcMsg::Call { .. } | RpcMsg::Poll { .. } | RpcMsg::PollReply { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<SagaTimer>, timer: SagaTimer) {
        match timer {
            SagaTimer::Arrival => self.arrive(ctx),
            SagaTimer::Wake => self.woken(ctx),
        }
    }

    fn crash(&mut self) {
        self.workload.crash();
        self.wakes.clear();
    }

    fn drain(&mut self, ctx: &mut Ctx<SagaTimer>) {
        self.workload.drain(ctx);
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.flows.keys());
    }

    fn is_producer(&self) -> bool {
        true
    }

    fn memory_bytes(&self) -> usize {
        self.flows.len() * 64
    }
}
