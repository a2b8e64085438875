//! Users: the load on a request/response system, and what they see of it.
//!
//! Users call a `target` (a service, a store, or an asynchronous
//! [`edge`]) with [`RpcMsg::Call`]s. The load is an **open loop** (an
//! arrival process, as a producer's: requests come whatever the answers
//! do) or a **closed loop** (`users` users, each making a request, waiting
//! for its answer, thinking, and making the next).
//!
//! Each attempt carries its own call number and a deadline (`now +
//! timeout_ms`). A user gives up an attempt at its deadline (a reply that
//! comes later counts `late_replies` and is ignored, as a client that
//! closed its connection drops it) and retries a timed-out or failed
//! (500, 503, 504) attempt up to `retries` times, after `retry_backoff_ms`
//! doubled at each retry, spread with "full jitter" if asked. A retry is a
//! new call with the same request: retries are load, and a server sees
//! them as such (retry amplification).
//!
//! Ledger: a request is produced unconfirmed, confirmed when the target
//! answers 200 or 202 (the system took it), and its effect is applied in
//! the users' own domain when the user learns it succeeded (a 200, or an
//! asynchronous job Finished with 200). A request never confirmed ends
//! `send_failed`; a confirmed one whose success the user never learns is
//! lost (or in flight) in the users' domain.
//!
//! Outcomes: with `outcome = "response"` the reply is the outcome. With
//! `"poll"`, a 202 is followed by a [`RpcMsg::Poll`] of the target every
//! `poll_interval_ms` until a poll reply says Finished (a lost poll or
//! reply is simply superseded by the next poll). With `"callback"`, a 202
//! is followed by waiting for the edge's [`RpcMsg::Done`], acked with
//! [`RpcMsg::DoneAck`] (a repeated one is acked and ignored). A
//! closed-loop user moves on at the reply (202 included): the outcome of
//! an accepted job is followed on its own.
//!
//! Figures: `Timing::Response` once per request, from its first attempt to
//! the answer the user saw (success, or the final error or timeout);
//! `Timing::Completion` once per request when its outcome is known (the
//! same moment for a synchronous call or a request that failed; the poll
//! reply or callback for an accepted job; none for an accepted job whose
//! outcome never comes). Errors (`ctx.error`, the only user-visible
//! errors of a run): one per request that finally failed. Gauges per
//! sampling interval: `response_mean_ms`, `response_p99_ms` (absent when
//! no response came in the interval) and `error_rate` (failed of settled).
//!
//! Left out: connections and their pools (a call is one message each way),
//! a user's own concurrency limit in an open loop (requests come whatever
//! is outstanding), and a deadline that spans retries (each attempt has
//! its own). A crash forgets every awaited request (the people waiting
//! are gone); the count of requests made and the call numbers survive.

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer, Timing};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::metrics::Gauges;
use crate::producer::{KeyGen, Workload};
use crate::protocol::rpc::{JobState, RpcMsg, Status};
use crate::time::{ms_to_ns, Time};
use crate::timers::Deadlines;
use std::cell::RefCell;
use std::collections::BTreeMap;

mod edge;
mod edge_kind;
mod kind;
mod window;
pub use edge::{Edge, EdgeTimer};
pub use edge_kind::{EdgeKind, EdgeSpec};
pub use kind::{Jitter, Outcome, UsersKind, UsersSpec};
use window::Window;

/// The metrics users report.
const METRICS: [&str; 6] = ["requests", "attempts", "user_retries", "late_replies", "polls", "callbacks"];

/// The users' timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersTimer {
    /// The next open-loop request is due.
    Arrival,
    /// The earliest attempt deadline has come.
    Timeout,
    /// The earliest retry backoff has passed.
    Retry,
    /// The earliest poll of an accepted request is due.
    Poll,
    /// The earliest closed-loop user has finished thinking.
    Think,
}

impl Timer for UsersTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        use UsersTimer::*;
        [Arrival, Timeout, Retry, Poll, Think].get(word as usize).copied()
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Attempt `call` is out; the user gives up on it at `deadline`.
    Waiting { call: u64, deadline: Time },
    /// Waiting to retry at `due`.
    Backoff { due: Time },
    /// Answered 202; the next poll is at `next_poll` (0 for callbacks).
    Accepted { next_poll: Time },
}

/// A request awaited.
#[derive(Debug, Clone, Copy)]
struct Request {
    key: u64,
    /// When its first attempt was sent.
    first: Time,
    /// Attempts made so far.
    attempts: u32,
    phase: Phase,
    /// The closed-loop user waiting on its reply.
    user: Option<u32>,
}

/// The closed loop: `n` users thinking between requests.
struct Closed {
    n: u32,
    think: Sampler,
    keys: KeyGen,
    limit: Option<u64>,
    // Durable: requests made so far.
    made: u64,
    done: bool,
    // Volatile: when each thinking user requests next.
    thinking: BTreeMap<u32, Time>,
    think_deadlines: Deadlines,
}

/// Running users.
pub struct Users {
    target: NodeId,
    timeout_ns: u64,
    retries: u32,
    backoff_ns: u64,
    jitter: Jitter,
    outcome: Outcome,
    poll_ns: u64,
    // Durable: the load's progress and the call numbers.
    open: Option<Workload<UsersTimer>>,
    closed: Option<Closed>,
    next_call: u64,
    // Volatile.
    requests: BTreeMap<MsgId, Request>,
    timeouts: Deadlines,
    backoffs: Deadlines,
    polls: Deadlines,
    /// What the users saw since the last sample (read and reset by the
    /// gauges, which only read the component).
    window: RefCell<Window>,
}

impl Users {
    /// Users calling `target`, as `spec` says.
    pub fn new(spec: &UsersSpec, target: NodeId) -> Self {
        let open = spec.arrival.as_ref().map(|a| Workload::new(a, &spec.keys, spec.messages, UsersTimer::Arrival));
        let closed = spec.users.map(|n| Closed {
            n,
            think: spec.think.clone().unwrap_or(crate::dist::Dist::constant_ms(0.0)).sampler(),
            keys: KeyGen::new(&spec.keys),
            limit: spec.messages,
            made: 0,
            done: false,
            thinking: BTreeMap::new(),
            think_deadlines: Deadlines::default(),
        });
        Users {
            target,
            timeout_ns: ms_to_ns(spec.timeout_ms.0).max(1),
            retries: spec.retries,
            backoff_ns: ms_to_ns(spec.retry_backoff_ms.0),
            jitter: spec.jitter,
            outcome: spec.outcome,
            poll_ns: ms_to_ns(spec.poll_interval_ms.0).max(1),
            open,
            closed,
            next_call: 1,
            requests: BTreeMap::new(),
            timeouts: Deadlines::default(),
            backoffs: Deadlines::default(),
            polls: Deadlines::default(),
            window: RefCell::new(Window::default()),
        }
    }

    /// Makes a new request (for closed-loop user `user`).
    fn request(&mut self, ctx: &mut Ctx<UsersTimer>, key: u64, user: Option<u32>) {
        let id = ctx.produce(key, false);
        ctx.metric_add("requests", 1.0);
        let phase = Phase::Backoff { due: ctx.now() };
        self.requests.insert(id, Request { key, first: ctx.now(), attempts: 0, phase, user });
        self.attempt(ctx, id);
    }

    /// Sends the next attempt of request `id`.
    fn attempt(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId) {
        let Some(r) = self.requests.get_mut(&id) else { return };
        r.attempts += 1;
        ctx.metric_add("attempts", 1.0);
        if r.attempts > 1 {
            ctx.metric_add("user_retries", 1.0);
            ctx.resent(id, crate::ledger::DupCause::ProducerRetry);
        }
        let call = self.next_call;
        self.next_call += 1;
        let deadline = ctx.now().saturating_add(self.timeout_ns);
        r.phase = Phase::Waiting { call, deadline };
        ctx.send(self.target, RpcMsg::Call { rec: Record::new(id, r.key), call, deadline });
        self.timeouts.add(ctx, deadline, id, UsersTimer::Timeout);
    }

    /// Attempt `call` of request `id` was answered with `status`.
    fn reply(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId, call: u64, status: Status) {
        let current =
            self.requests.get(&id).is_some_and(|r| matches!(r.phase, Phase::Waiting { call: c, .. } if c == call));
        if !current {
            // The user gave this attempt up (or forgot it in a crash).
            ctx.metric_add("late_replies", 1.0);
            return;
        }
        match status {
            Status::Ok => {
                ctx.confirm_sent(id);
                self.answered(ctx, id);
                self.settle(ctx, id, None);
            }
            Status::Accepted => {
                ctx.confirm_sent(id);
                self.answered(ctx, id);
                self.accepted(ctx, id);
            }
            Status::Error => self.failed_attempt(ctx, id, "server-error"),
            Status::Unavailable => self.failed_attempt(ctx, id, "unavailable"),
            Status::GatewayTimeout => self.failed_attempt(ctx, id, "gateway-timeout"),
        }
    }

    /// Request `id` got the answer its user sees (a success, or its last
    /// failure): its response time, and its closed-loop user moves on.
    fn answered(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId) {
        let Some(r) = self.requests.get_mut(&id) else { return };
        let ns = ctx.now() - r.first;
        ctx.timing(Timing::Response, ns);
        self.window.borrow_mut().response(ns);
        if let Some(u) = r.user.take() {
            self.think(ctx, u);
        }
    }

    /// Request `id` was accepted (202): follow its outcome.
    fn accepted(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId) {
        let Some(r) = self.requests.get_mut(&id) else { return };
        let next_poll = match self.outcome {
            Outcome::Poll => ctx.now().saturating_add(self.poll_ns),
            _ => 0,
        };
        r.phase = Phase::Accepted { next_poll };
        if next_poll > 0 {
            self.polls.add(ctx, next_poll, id, UsersTimer::Poll);
        }
    }

    /// Request `id`'s outcome is known: its effect (a success), its
    /// completion time, and it is forgotten. `error` names a failure.
    fn settle(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId, error: Option<&'static str>) {
        let Some(r) = self.requests.remove(&id) else { return };
        ctx.timing(Timing::Completion, ctx.now() - r.first);
        self.window.borrow_mut().completion(ctx.now() - r.first);
        match error {
            None => ctx.apply_effect(id),
            Some(kind) => ctx.error(kind),
        }
        self.window.borrow_mut().settled(error.is_some());
    }

    /// An attempt of request `id` failed with `error`: retry it after the
    /// backoff, or give the request up.
    fn failed_attempt(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId, error: &'static str) {
        let Some(attempts) = self.requests.get(&id).map(|r| r.attempts) else { return };
        if attempts > self.retries {
            self.answered(ctx, id);
            self.settle(ctx, id, Some(error));
            return;
        }
        let Some(r) = self.requests.get_mut(&id) else { return };
        let delay = crate::reliable::backoff_ns(self.backoff_ns, 2.0, r.attempts, self.jitter, ctx.rng());
        if delay == 0 {
            self.attempt(ctx, id);
            return;
        }
        let due = ctx.now().saturating_add(delay);
        r.phase = Phase::Backoff { due };
        self.backoffs.add(ctx, due, id, UsersTimer::Retry);
    }

    /// A poll's answer, or a callback: what became of accepted request `id`.
    fn outcome_known(&mut self, ctx: &mut Ctx<UsersTimer>, id: MsgId, state: JobState) {
        let accepted = self.requests.get(&id).is_some_and(|r| matches!(r.phase, Phase::Accepted { .. }));
        match state {
            JobState::Finished(s) if accepted => {
                self.settle(ctx, id, (!s.is_success()).then_some("job-failed"));
            }
            _ => {}
        }
    }

    fn on_timeouts(&mut self, ctx: &mut Ctx<UsersTimer>) {
        let requests = &self.requests;
        let live = |id, at| {
            requests.get(&id).is_some_and(|r| matches!(r.phase, Phase::Waiting { deadline, .. } if deadline == at))
        };
        for id in self.timeouts.expire(ctx, UsersTimer::Timeout, live) {
            self.failed_attempt(ctx, id, "timeout");
        }
    }

    fn on_retries(&mut self, ctx: &mut Ctx<UsersTimer>) {
        let requests = &self.requests;
        let live = |id, at| requests.get(&id).is_some_and(|r| r.phase == Phase::Backoff { due: at });
        for id in self.backoffs.expire(ctx, UsersTimer::Retry, live) {
            self.attempt(ctx, id);
        }
    }

    fn on_polls(&mut self, ctx: &mut Ctx<UsersTimer>) {
        let requests = &self.requests;
        let live = |id, at| requests.get(&id).is_some_and(|r| r.phase == Phase::Accepted { next_poll: at });
        for id in self.polls.expire(ctx, UsersTimer::Poll, live) {
            let call = self.next_call;
            self.next_call += 1;
            ctx.send(self.target, RpcMsg::Poll { id, call });
            ctx.metric_add("polls", 1.0);
            // The next poll supersedes this one if it or its reply is lost.
            self.accepted(ctx, id);
        }
    }

    /// Closed-loop user `u` thinks before its next request.
    fn think(&mut self, ctx: &mut Ctx<UsersTimer>, u: u32) {
        let Some(c) = self.closed.as_mut() else { return };
        if c.done || ctx.draining() {
            return;
        }
        let at = ctx.now().saturating_add(c.think.sample_ns(ctx.rng()));
        c.thinking.insert(u, at);
        c.think_deadlines.add(ctx, at, u64::from(u), UsersTimer::Think);
    }

    fn on_think(&mut self, ctx: &mut Ctx<UsersTimer>) {
        let Some(c) = self.closed.as_mut() else { return };
        let thinking = &c.thinking;
        let live = |u, at| thinking.get(&(u as u32)) == Some(&at);
        for u in c.think_deadlines.expire(ctx, UsersTimer::Think, live) {
            self.next_of_user(ctx, u as u32);
        }
    }

    /// Closed-loop user `u` has thought: its next request, unless all are made.
    fn next_of_user(&mut self, ctx: &mut Ctx<UsersTimer>, u: u32) {
        let Some(c) = self.closed.as_mut() else { return };
        c.thinking.remove(&u);
        if c.done || ctx.draining() {
            return;
        }
        let key = c.keys.draw(ctx.rng());
        c.made += 1;
        if c.limit.is_some_and(|n| c.made >= n) {
            c.done = true;
            ctx.producer_done();
        }
        self.request(ctx, key, Some(u));
    }

    /// Every closed-loop user starts thinking (so that they do not all
    /// request at the same instant). No users, or no requests to make,
    /// switch the loop off: it is done at once.
    fn start_closed(&mut self, ctx: &mut Ctx<UsersTimer>) {
        let Some(c) = self.closed.as_mut() else { return };
        if !c.done && (c.n == 0 || c.limit == Some(0)) {
            c.done = true;
            ctx.producer_done();
        }
        let n = c.n;
        for u in 0..n {
            self.think(ctx, u);
        }
    }
}

impl Component for Users {
    type Timer = UsersTimer;

    fn start(&mut self, ctx: &mut Ctx<UsersTimer>) {
        for name in METRICS {
            ctx.metric_add(name, 0.0); // listed in the summary even when 0
        }
        if let Some(w) = self.open.as_mut() {
            w.start(ctx);
        }
        self.start_closed(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<UsersTimer>, from: NodeId, msg: Msg) {
        let Msg::Rpc(m) = msg else { return };
        match m {
            RpcMsg::Reply { id, call, status } => self.reply(ctx, id, call, status),
            RpcMsg::PollReply { id, state, .. } => self.outcome_known(ctx, id, state),
            RpcMsg::Done { id, status } => {
                ctx.send(from, RpcMsg::DoneAck { id });
                ctx.metric_add("callbacks", 1.0);
                // Only a user who asked for callbacks listens for them.
                if self.outcome == Outcome::Callback {
                    self.outcome_known(ctx, id, JobState::Finished(status));
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<UsersTimer>, timer: UsersTimer) {
        match timer {
            UsersTimer::Arrival => {
                let Some(w) = self.open.as_mut() else { return };
                let Some(key) = w.arrive(ctx) else { return };
                self.request(ctx, key, None);
                if let Some(w) = self.open.as_mut() {
                    w.made(ctx);
                }
            }
            UsersTimer::Timeout => self.on_timeouts(ctx),
            UsersTimer::Retry => self.on_retries(ctx),
            UsersTimer::Poll => self.on_polls(ctx),
            UsersTimer::Think => self.on_think(ctx),
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<UsersTimer>) {
        if let Some(w) = self.open.as_mut() {
            w.drain(ctx);
        }
        if let Some(c) = self.closed.as_mut() {
            c.thinking.clear();
            c.think_deadlines.cancel_all(ctx, UsersTimer::Think);
        }
    }

    fn crash(&mut self) {
        // The people waiting on these requests are gone with the process.
        self.requests.clear();
        self.timeouts.clear();
        self.backoffs.clear();
        self.polls.clear();
        if let Some(w) = self.open.as_mut() {
            w.crash();
        }
        if let Some(c) = self.closed.as_mut() {
            c.thinking.clear();
            c.think_deadlines.clear();
        }
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.requests.keys());
    }

    fn is_producer(&self) -> bool {
        true
    }

    fn gauges(&self, _now: Time, out: &mut Gauges) {
        self.window.borrow_mut().report(out);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
