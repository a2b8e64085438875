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
use crate::reliable::{Failed, RetryPolicy, UntilAcked};
use crate::subscription::Subscription;
use crate::time::ms_to_ns;
use std::collections::BTreeSet;

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

/// A request awaited (its attempts are kept by [`UntilAcked`]).
struct Request {
    key: u64,
    /// One of its attempts timed out.
    timed_out: bool,
}

/// A running client.
pub struct Client {
    target: NodeId,
    responses: NodeId,
    // Durable: the workload's progress and the subscription's session count.
    workload: Workload<ClientTimer>,
    /// The handshake with the response queue.
    subscription: Subscription<ClientTimer>,
    // What the client has seen of each request it made, to classify
    // responses (bookkeeping for the metrics, kept across crashes).
    answered: BTreeSet<MsgId>,
    abandoned: BTreeSet<MsgId>,
    // Volatile.
    /// Requests awaited: a response is the ack.
    outstanding: UntilAcked<Request, ClientTimer>,
}

impl Client {
    /// A client sending to `target` and reading `responses`, as `spec` says.
    pub fn new(spec: &ClientSpec, target: NodeId, responses: NodeId) -> Self {
        let policy = RetryPolicy {
            ack_timeout_ns: ms_to_ns(spec.timeout_ms.0).max(1),
            retries: spec.retries,
            backoff_ns: ms_to_ns(spec.retry_backoff_ms.0),
            delivery_timeout_ns: None,
            zero_delay_at_once: true,
        };
        Client {
            target,
            responses,
            workload: Workload::new(&spec.arrival, &spec.keys, spec.messages, ClientTimer::Arrival),
            subscription: Subscription::new(
                responses,
                spec.prefetch.max(1),
                false,
                ms_to_ns(spec.resubscribe_ms.0).max(1),
                ClientTimer::Resubscribe,
            ),
            answered: BTreeSet::new(),
            abandoned: BTreeSet::new(),
            outstanding: UntilAcked::new(policy, ClientTimer::Timeout, ClientTimer::Retry),
        }
    }

    /// Sends the next attempt of request `id`.
    fn send(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        let target = self.target;
        self.outstanding.send(ctx, id, |ctx, r, attempt| {
            if attempt > 1 {
                ctx.resent(id, crate::ledger::DupCause::ProducerRetry);
            }
            ctx.send(target, publish(Record::new(id, r.key), false, attempt));
        });
    }

    /// The attempt of request `id` in progress got no response in time:
    /// send it again (after the backoff), or give it up.
    fn attempt_timed_out(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        let Some(r) = self.outstanding.get_mut(id) else { return };
        ctx.metric_add("request_timeouts", 1.0);
        r.timed_out = true;
        match self.outstanding.failed(ctx, id, false) {
            Some(Failed::GaveUp { .. }) => {
                ctx.metric_add("requests_given_up", 1.0);
                // A response that comes now is ignored: the request is lost.
                ctx.discarded(id, crate::ledger::LossCause::GaveUp);
                self.abandoned.insert(id);
            }
            Some(Failed::SendNow) => self.send(ctx, id),
            Some(Failed::Backoff) | None => {}
        }
    }

    /// A response to request `id` arrived.
    fn response(&mut self, ctx: &mut Ctx<ClientTimer>, id: MsgId) {
        if let Some(r) = self.outstanding.remove(id) {
            // Ids grow in the order requests were made.
            if self.outstanding.keys().next().is_some_and(|first| first < id) {
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

    fn produce_one(&mut self, ctx: &mut Ctx<ClientTimer>, key: u64) {
        // The request counts as sent as it leaves: only a response confirms it.
        let id = ctx.produce(key, true);
        self.outstanding.insert(id, Request { key, timed_out: false }, ctx.now());
        self.send(ctx, id);
    }

    /// In the drain, with no request awaited, the timeout and retry timers
    /// guard nothing and would only keep the run waiting.
    fn settle_timers(&mut self, ctx: &mut Ctx<ClientTimer>) {
        if ctx.draining() && self.outstanding.is_empty() {
            self.outstanding.cancel_timers(ctx);
        }
    }
}

impl Component for Client {
    type Timer = ClientTimer;

    fn start(&mut self, ctx: &mut Ctx<ClientTimer>) {
        for name in METRICS {
            ctx.metric_add(name, 0.0); // listed in the summary even when 0
        }
        self.subscription.start(ctx);
        self.workload.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<ClientTimer>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) => {
                ctx.send(self.responses, QueueMsg::Ack { tag });
                self.response(ctx, rec.id);
                self.settle_timers(ctx);
            }
            Msg::Queue(QueueMsg::Subscribed { session }) => self.subscription.subscribed(ctx, session),
            Msg::Queue(QueueMsg::Cancelled { session }) => {
                self.subscription.cancelled(ctx, session);
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
                for id in self.outstanding.timed_out(ctx) {
                    self.attempt_timed_out(ctx, id);
                }
            }
            ClientTimer::Retry => {
                for id in self.outstanding.due(ctx) {
                    self.send(ctx, id);
                }
            }
            ClientTimer::Resubscribe => self.subscription.on_timer(ctx),
        }
        self.settle_timers(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<ClientTimer>) {
        self.workload.drain(ctx);
        self.settle_timers(ctx);
    }

    fn crash(&mut self) {
        // The callers waiting on these requests are gone with the process.
        self.abandoned.extend(self.outstanding.keys());
        self.outstanding.crash(|_, _| false);
        self.workload.crash();
        self.subscription.crash();
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
