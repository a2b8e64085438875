//! Request/response clients: asynchronous RPC over two queues. A client
//! creates requests as a producer creates messages (an arrival process and
//! keys), publishes each to a request queue (`target`), and subscribes to
//! a response queue (`responses`) like a consumer. A server is a consumer
//! of the request queue that forwards each record it processed to the
//! response queue (`forward_to`); the record keeps its id, which is the
//! request's **correlation id**, so the client matches a response to its
//! request by id, whatever order responses come back in.
//!
//! Each attempt has a deadline (`timeout_ms`). When it passes, the client
//! sends the request again after `retry_backoff_ms`, up to `retries` times,
//! and then gives it up. A retry carries the same id: to the server it is
//! an **idempotency key**. A server whose effect is idempotent finds the
//! key in its dedup store and sends the original result back without doing
//! the work again; a plain one does the work twice.
//!
//! The first response to a request still awaited applies the client's own
//! effect (its domain, `responses` by default): its latency is the
//! user-visible response time, and a request never answered counts as lost
//! there. The client reports, as named metrics, `request_timeouts` (attempts
//! whose deadline passed), `requests_given_up`, `late_responses` (a first
//! response after one of the request's timeouts, or any response after the
//! client gave the request up or forgot it in a crash), `duplicate_responses`
//! (a response to a request already answered) and `responses_out_of_order`
//! (a first response that arrives while an earlier-sent request is still
//! awaited).
//!
//! Simplifications: the client cannot tell which attempt a response answers
//! (every attempt carries the same id), so a first response after a timeout
//! counts as late even when it answers the retry. Requests are published
//! fire-and-forget: the response is the only confirmation the client waits
//! for. A crash forgets the requests awaited (their callers are gone); the
//! count of requests made survives. Each client needs its own response
//! queue, and acks every response on receipt.

use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::producer::Workload;
use crate::protocol::{publish, QueueMsg};
use crate::time::{ms_to_ns, Duration, Time};
use crate::timers::Deadlines;
use std::collections::{BTreeMap, BTreeSet};

mod kind;
pub use kind::{ClientKind, ClientSpec};

/// A client's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTimer {
    /// The next request is due.
    Arrival,
    /// The earliest response deadline has come.
    Timeout,
    /// The earliest retry backoff has passed.
    Retry,
    /// The response queue has not confirmed the subscription: ask again.
    Resubscribe,
}

impl Timer for ClientTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        use ClientTimer::*;
        [Arrival, Timeout, Retry, Resubscribe].get(word as usize).copied()
    }
}

/// The metrics a client reports.
const METRICS: [&str; 5] =
    ["request_timeouts", "requests_given_up", "late_responses", "duplicate_responses", "responses_out_of_order"];

struct Request {
    key: u64,
    attempts: u32,
    /// The deadline of the attempt in progress (`Time::MAX`: waiting to retry).
    deadline: Time,
    /// When the retry is due (`Time::MAX`: none).
    retry_at: Time,
    /// One of its attempts timed out.
    timed_out: bool,
}

/// A running client.
pub struct Client {
    target: NodeId,
    responses: NodeId,
    workload: Workload<ClientTimer>,
    timeout_ns: Duration,
    retries: u32,
    backoff_ns: Duration,
    prefetch: u32,
    resubscribe_ns: Duration,
    // Durable: the workload's progress and the session count.
    session: u32,
    // What the client has seen of each request it made, to classify
    // responses (bookkeeping for the metrics, kept across crashes).
    answered: BTreeSet<MsgId>,
    abandoned: BTreeSet<MsgId>,
    // Volatile.
    outstanding: BTreeMap<MsgId, Request>,
    timeouts: Deadlines,
    retry_due: Deadlines,
    subscribed: bool,
    /// The resubscribe timer is pending.
    resubscribe: bool,
}

impl Client {
    /// A client sending to `target` and reading `responses`, as `spec` says.
    pub fn new(spec: &ClientSpec, target: NodeId, responses: NodeId) -> Self {
        Client {
            target,
            responses,
            workload: Workload::new(&spec.arrival, &spec.keys, spec.messages, ClientTimer::Arrival),
            timeout_ns: ms_to_ns(spec.timeout_ms.0).max(1),
            retries: spec.retries,
            backoff_ns: ms_to_ns(spec.retry_backoff_ms.0),
            prefetch: spec.prefetch.max(1),
            resubscribe_ns: ms_to_ns(spec.resubscribe_ms.0).max(1),
            session: 0,
            answered: BTreeSet::new(),
            abandoned: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            timeouts: Deadlines::default(),
            retry_due: Deadlines::default(),
            subscribed: false,
            resubscribe: false,
        }
    }

    fn send(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        let Some(r) = self.outstanding.get_mut(&id) else { return };
        r.attempts += 1;
        r.deadline = ctx.now().saturating_add(self.timeout_ns);
        r.retry_at = Time::MAX;
        ctx.send(self.target, publish(Record { id, key: r.key }, false, r.attempts));
        self.timeouts.add(ctx, r.deadline, id, ClientTimer::Timeout);
    }

    fn timed_out(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        let Some(r) = self.outstanding.get_mut(&id) else { return };
        ctx.metric_add("request_timeouts", 1.0);
        r.timed_out = true;
        r.deadline = Time::MAX;
        if r.attempts > self.retries {
            ctx.metric_add("requests_given_up", 1.0);
            self.outstanding.remove(&id);
            self.abandoned.insert(id);
        } else if self.backoff_ns == 0 {
            self.send(ctx, id);
        } else {
            r.retry_at = ctx.now().saturating_add(self.backoff_ns);
            self.retry_due.add(ctx, r.retry_at, id, ClientTimer::Retry);
        }
    }

    /// A response to request `id` arrived.
    fn response(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        if let Some(r) = self.outstanding.remove(&id) {
            // Ids grow in the order requests were made.
            if self.outstanding.first_key_value().is_some_and(|(&first, _)| first < id) {
                ctx.metric_add("responses_out_of_order", 1.0);
            }
            if r.timed_out {
                ctx.metric_add("late_responses", 1.0);
            }
            ctx.apply_effect(id);
            self.answered.insert(id);
        } else if self.answered.contains(&id) {
            ctx.metric_add("duplicate_responses", 1.0);
        } else if self.abandoned.contains(&id) {
            ctx.metric_add("late_responses", 1.0);
        }
    }

    fn subscribe(&mut self, ctx: &mut Ctx<ClientTimer>) {
        self.subscribed = false;
        let (prefetch, session) = (self.prefetch, self.session);
        ctx.send(self.responses, QueueMsg::Subscribe { prefetch, session, auto_ack: false });
        ctx.set_timer(self.resubscribe_ns, ClientTimer::Resubscribe);
        self.resubscribe = true;
    }

    fn produce_one(&mut self, ctx: &mut Ctx<ClientTimer>, key: u64) {
        // The request counts as sent as it leaves: only a response confirms it.
        let id = ctx.produce(key, true);
        let r = Request { key, attempts: 0, deadline: Time::MAX, retry_at: Time::MAX, timed_out: false };
        self.outstanding.insert(id, r);
        self.send(ctx, id);
    }

    /// In the drain, with no request awaited, the timeout and retry timers
    /// guard nothing and would only keep the run waiting.
    fn settle_timers(&mut self, ctx: &mut Ctx<ClientTimer>) {
        if ctx.draining() && self.outstanding.is_empty() {
            self.timeouts.cancel_all(ctx, ClientTimer::Timeout);
            self.retry_due.cancel_all(ctx, ClientTimer::Retry);
        }
    }
}

impl Component for Client {
    type Timer = ClientTimer;

    fn start(&mut self, ctx: &mut Ctx<ClientTimer>) {
        for name in METRICS {
            ctx.metric_add(name, 0.0); // listed in the summary even when 0
        }
        self.session += 1;
        self.subscribe(ctx);
        self.workload.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<ClientTimer>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) => {
                ctx.send(self.responses, QueueMsg::Ack { tag });
                self.response(ctx, rec.id);
                self.settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Subscribed { session }) if session == self.session => {
                self.subscribed = true;
                if std::mem::take(&mut self.resubscribe) {
                    ctx.cancel_timer(ClientTimer::Resubscribe);
                }
            }
            Msg::Queue(QueueMsg::Cancelled { session }) if session == self.session => {
                if std::mem::take(&mut self.resubscribe) {
                    ctx.cancel_timer(ClientTimer::Resubscribe);
                }
                self.session += 1;
                self.subscribe(ctx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<ClientTimer>, timer: ClientTimer) {
        match timer {
            ClientTimer::Arrival => {
                let Some(key) = self.workload.arrive(ctx) else { return };
                self.produce_one(ctx, key);
                self.workload.made(ctx);
            }
            ClientTimer::Timeout => {
                let outstanding = &self.outstanding;
                let live = |id, at| outstanding.get(&id).is_some_and(|r: &Request| r.deadline == at);
                for id in self.timeouts.expire(ctx, ClientTimer::Timeout, live) {
                    self.timed_out(ctx, id);
                }
            }
            ClientTimer::Retry => {
                let outstanding = &self.outstanding;
                let due = |id, at| outstanding.get(&id).is_some_and(|r: &Request| r.retry_at == at);
                for id in self.retry_due.expire(ctx, ClientTimer::Retry, due) {
                    self.send(ctx, id);
                }
            }
            ClientTimer::Resubscribe => {
                self.resubscribe = false;
                if !self.subscribed {
                    self.subscribe(ctx);
                }
            }
        }
        self.settle_timers(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<ClientTimer>) {
        self.workload.drain(ctx);
        self.settle_timers(ctx);
    }

    fn crash(&mut self) {
        // The callers waiting on these requests are gone with the process.
        self.abandoned.extend(std::mem::take(&mut self.outstanding).into_keys());
        self.timeouts.clear();
        self.retry_due.clear();
        self.workload.crash();
        self.subscribed = false;
        self.resubscribe = false;
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.outstanding.keys());
    }

    fn is_producer(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
