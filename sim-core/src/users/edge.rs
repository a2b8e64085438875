//! The asynchronous edge: the front of a system that answers `202
//! Accepted` once a request's job is safely queued, keeps a status table
//! users poll, and calls users back when a worker reports a job done.
//!
//! On a [`RpcMsg::Call`] the edge publishes the request's record to its
//! queue broker (persistent, asking for a publisher confirm) and answers
//! 202 once the broker confirms it, or 503 if the broker refuses it or no
//! confirm comes within `confirm_timeout_ms`. The user's retry of a
//! request whose confirm was overdue publishes it again (the publish or
//! its confirm may have been lost, or the broker may have crashed with
//! it), so a job whose first publish did get through is queued twice: at
//! least once, as every publisher that retries. A call for a request
//! already accepted is answered 202 at once (the request id is the
//! idempotency key).
//!
//! The status table holds, per accepted request, its caller and its state
//! (Pending, or Finished with the worker's status); [`RpcMsg::Poll`]s are
//! answered from it. A worker's [`RpcMsg::Done`] is acked with
//! [`RpcMsg::DoneAck`] and marks the job Finished; with `callbacks`, the
//! edge sends the caller a `Done` of its own, resent every
//! `callback_retry_ms` until the caller acks it.
//!
//! Durability: the status table (callbacks still owed included) is kept in
//! a database behind the edge, so it survives a crash of the edge, and
//! callbacks owed resume at the restart (an outbox). Publishes awaiting a
//! confirm are volatile: a confirm that comes after a crash of the edge is
//! dropped, and the caller's retry publishes the request again. Left out: the
//! database's own latency and failures, and expiry of old table entries.

use super::EdgeSpec;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::rpc::{JobState, RpcMsg, Status};
use crate::protocol::{publish, QueueMsg};
use crate::time::{ms_to_ns, Time};
use crate::timers::Deadlines;
use std::collections::BTreeMap;

/// The metrics an edge reports.
pub(super) const EDGE_METRICS: [&str; 3] = ["accepted", "status_polls", "callbacks_sent"];

/// An edge's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeTimer {
    /// The earliest publish confirm is overdue.
    Confirm,
    /// The earliest callback is due to be resent.
    Callback,
}

impl Timer for EdgeTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        [EdgeTimer::Confirm, EdgeTimer::Callback].get(word as usize).copied()
    }
}

/// A publish awaiting its confirm, and the call to answer.
#[derive(Debug, Clone, Copy)]
struct Publishing {
    caller: NodeId,
    call: u64,
    attempt: u32,
    deadline: Time,
    /// The call was answered (503: the confirm was late).
    answered: bool,
}

/// A row of the status table.
#[derive(Debug, Clone, Copy)]
struct Job {
    /// Who to call back (unknown for a job whose worker reported it done
    /// before its confirm reached the edge, until the confirm comes).
    caller: Option<NodeId>,
    state: JobState,
    /// With callbacks: when the callback is resent, while owed.
    callback_due: Option<Time>,
}

/// A running edge.
pub struct Edge {
    queue: NodeId,
    confirm_ns: u64,
    callbacks: bool,
    callback_ns: u64,
    // Durable (a database): the status table.
    jobs: BTreeMap<MsgId, Job>,
    next_attempt: u32,
    // Volatile.
    publishing: BTreeMap<MsgId, Publishing>,
    confirms: Deadlines,
    resends: Deadlines,
}

impl Edge {
    /// An edge publishing to `queue`, as `spec` says.
    pub fn new(spec: &EdgeSpec, queue: NodeId) -> Self {
        Edge {
            queue,
            confirm_ns: ms_to_ns(spec.confirm_timeout_ms.0).max(1),
            callbacks: spec.callbacks,
            callback_ns: ms_to_ns(spec.callback_retry_ms.0).max(1),
            jobs: BTreeMap::new(),
            next_attempt: 0,
            publishing: BTreeMap::new(),
            confirms: Deadlines::default(),
            resends: Deadlines::default(),
        }
    }

    fn call(&mut self, ctx: &mut Ctx<EdgeTimer>, from: NodeId, rec: Record, call: u64) {
        let id = rec.id;
        if let Some(job) = self.jobs.get_mut(&id) {
            // A retry of a request already accepted: the same answer.
            job.caller = Some(from);
            ctx.send(from, RpcMsg::Reply { id, call, status: Status::Accepted });
            if job.callback_due.is_none() && self.callbacks && matches!(job.state, JobState::Finished(_)) {
                self.call_back(ctx, id);
            }
            return;
        }
        let deadline = ctx.now().saturating_add(self.confirm_ns);
        if let Some(p) = self.publishing.get_mut(&id).filter(|p| !p.answered) {
            // A retry while the publish awaits its confirm: answer this call.
            *p = Publishing { caller: from, call, deadline, answered: false, ..*p };
        } else {
            // New, or a retry after the confirm was overdue (the publish or
            // its confirm may be lost, the broker may have crashed): publish
            // again, as a new attempt.
            self.next_attempt = self.next_attempt.wrapping_add(1);
            let attempt = self.next_attempt;
            let mut msg = publish(rec, true, attempt);
            if let QueueMsg::Publish { persistent, .. } = &mut msg {
                *persistent = true;
            }
            ctx.send(self.queue, msg);
            self.publishing.insert(id, Publishing { caller: from, call, attempt, deadline, answered: false });
        }
        self.confirms.add(ctx, deadline, id, EdgeTimer::Confirm);
    }

    fn confirmed(&mut self, ctx: &mut Ctx<EdgeTimer>, id: MsgId, accepted: bool, attempt: u32) {
        let Some(p) = self.publishing.get(&id).copied() else { return };
        if p.attempt != attempt {
            return;
        }
        self.publishing.remove(&id);
        if accepted {
            ctx.metric_add("accepted", 1.0);
            // A worker may have finished the job before the broker's confirm
            // came back (the delivery overtook the confirm): keep its outcome.
            let job = self.jobs.entry(id).or_insert(Job { caller: None, state: JobState::Pending, callback_due: None });
            job.caller = Some(p.caller);
        }
        if !p.answered {
            let status = if accepted { Status::Accepted } else { Status::Unavailable };
            ctx.send(p.caller, RpcMsg::Reply { id, call: p.call, status });
        }
        let early =
            self.jobs.get(&id).is_some_and(|j| j.callback_due.is_none() && matches!(j.state, JobState::Finished(_)));
        if accepted && early && self.callbacks {
            self.call_back(ctx, id);
        }
    }

    fn on_confirm_timeouts(&mut self, ctx: &mut Ctx<EdgeTimer>) {
        let publishing = &self.publishing;
        let live = |id, at| publishing.get(&id).is_some_and(|p| !p.answered && p.deadline == at);
        for id in self.confirms.expire(ctx, EdgeTimer::Confirm, live) {
            let Some(p) = self.publishing.get_mut(&id) else { continue };
            p.answered = true;
            ctx.send(p.caller, RpcMsg::Reply { id, call: p.call, status: Status::Unavailable });
        }
    }

    /// A worker reports job `id` done with `status`.
    fn done(&mut self, ctx: &mut Ctx<EdgeTimer>, from: NodeId, id: MsgId, status: Status) {
        ctx.send(from, RpcMsg::DoneAck { id });
        let job = self.jobs.entry(id).or_insert(Job { caller: None, state: JobState::Pending, callback_due: None });
        if job.state != JobState::Pending {
            return; // a repeated Done
        }
        job.state = JobState::Finished(status);
        if self.callbacks {
            self.call_back(ctx, id);
        }
    }

    /// Sends (or resends) the callback of finished job `id`, if its caller
    /// is known.
    fn call_back(&mut self, ctx: &mut Ctx<EdgeTimer>, id: MsgId) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let (Some(caller), JobState::Finished(status)) = (job.caller, job.state) else { return };
        ctx.send(caller, RpcMsg::Done { id, status });
        ctx.metric_add("callbacks_sent", 1.0);
        let due = ctx.now().saturating_add(self.callback_ns);
        job.callback_due = Some(due);
        self.resends.add(ctx, due, id, EdgeTimer::Callback);
    }

    fn on_resends(&mut self, ctx: &mut Ctx<EdgeTimer>) {
        let jobs = &self.jobs;
        let live = |id, at| jobs.get(&id).is_some_and(|j| j.callback_due == Some(at));
        for id in self.resends.expire(ctx, EdgeTimer::Callback, live) {
            self.call_back(ctx, id);
        }
    }

    fn poll(&mut self, ctx: &mut Ctx<EdgeTimer>, from: NodeId, id: MsgId, call: u64) {
        ctx.metric_add("status_polls", 1.0);
        let state = self.jobs.get(&id).map_or(JobState::Unknown, |j| j.state);
        ctx.send(from, RpcMsg::PollReply { id, call, state });
    }
}

impl Component for Edge {
    type Timer = EdgeTimer;

    fn start(&mut self, ctx: &mut Ctx<EdgeTimer>) {
        for name in EDGE_METRICS {
            ctx.metric_add(name, 0.0); // listed in the summary even when 0
        }
        // After a restart: the callbacks still owed, from the database.
        let owed: Vec<MsgId> = self.jobs.iter().filter(|(_, j)| j.callback_due.is_some()).map(|(&id, _)| id).collect();
        for id in owed {
            self.call_back(ctx, id);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<EdgeTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Rpc(RpcMsg::Call { rec, call, .. }) => self.call(ctx, from, rec, call),
            Msg::Rpc(RpcMsg::Poll { id, call }) => self.poll(ctx, from, id, call),
            Msg::Rpc(RpcMsg::Done { id, status }) => self.done(ctx, from, id, status),
            Msg::Rpc(RpcMsg::DoneAck { id }) => {
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.callback_due = None;
                }
            }
            Msg::Queue(QueueMsg::PublishAck { id, accepted, attempt, .. }) => {
                self.confirmed(ctx, id, accepted, attempt);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<EdgeTimer>, timer: EdgeTimer) {
        match timer {
            EdgeTimer::Confirm => self.on_confirm_timeouts(ctx),
            EdgeTimer::Callback => self.on_resends(ctx),
        }
    }

    fn crash(&mut self) {
        self.publishing.clear();
        self.confirms.clear();
        self.resends.clear();
    }
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
