//! Services: request/response servers (`[services.NAME]`), thread per
//! request, as a Tomcat-like server runs them.
//!
//! A call (`RpcMsg::Call`) takes one of `workers` workers if one is free,
//! else waits in the accept queue (`queue_limit` places; a call that finds
//! it full is answered 503 at once). A worker is held from the start of
//! processing until its reply is sent, including while it waits on the
//! dependencies: processing (`processing`, scaled by a `slow` fault), then
//! the dependencies in `sequence` (the first failure ends the request) or
//! in `parallel` (the reply waits for all), then the reply: 200 when all
//! succeeded; 500 when the service failed itself (`error_probability`) or
//! a dependency answered 500 or 503 on its last attempt; 504 when a
//! dependency's last attempt timed out; 503 when a dependency's call was
//! refused locally by its breaker or bulkhead. Each dependency call has a
//! timeout, retries with exponential backoff and optional full jitter, an
//! optional bulkhead and an optional circuit breaker ([`breaker`]); the
//! breaker comes first (resilience4j's order: a bulkhead refusal counts as
//! a failure in the breaker), and a call refused by either fails at once,
//! without retries. A reply that comes after its attempt timed out is
//! ignored.
//!
//! Deadlines: a caller's `deadline` is always used to measure the work
//! done for callers who left (`work_for_gone_callers`: replies sent after
//! it). With `propagate_deadline`, the service also drops a queued request
//! whose deadline has passed when a worker would take it (no reply;
//! `expired_dropped`), gives up a request at its deadline (504, no more
//! retries), and sends its dependencies `min(deadline, now + timeout)`;
//! without it, it sends `now + timeout`.
//!
//! Worker mode (`source`): requests come from a queue broker instead
//! (prefetch = `workers`), through the same pipeline. A job that failed is
//! tried again after `job_retry_ms`, holding its delivery and its worker,
//! until it succeeds or `job_attempts` tries are spent (then it is given
//! up: `jobs_failed`, lost to the ledger as given up). At the end the
//! worker sends `Done` to `notify`, resent every second until `DoneAck`,
//! and acks the delivery only then, so that a crash before the notice is
//! heard redelivers the job (at least once) instead of losing the notice.
//!
//! A crash loses everything volatile: the accept queue, the requests in
//! progress, the calls in flight, the breakers' state (a new process
//! starts closed). A `PeerDown` from a dependency (its process died, the
//! connection reset) fails that dependency's attempts in flight at once,
//! as errors. Failures are metrics, never user-visible errors.
//!
//! Left out: connection pools, keep-alive and connection set-up costs (a
//! call is one message each way); CPU contention between workers (each
//! worker's processing runs at full speed however many are busy); request
//! cancellation (an abandoned attempt's call still runs at the
//! dependency); a cap on the backoff; expiring queued requests before a
//! worker looks at them.

pub mod breaker;
mod calls;
mod kind;
mod worker;

pub use kind::{BreakerSpec, CallOrder, DependencySpec, Jitter, ServiceKind, ServiceSpec};
use worker::Worker;

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, NodeId, Notice, Record};
use crate::metrics::Gauges;
use crate::net::NodeFault;
use crate::protocol::rpc::{RpcMsg, Status};
use crate::protocol::QueueMsg;
use crate::rng::chance;
use crate::time::{ms_to_ns, Duration, Time};
use crate::timers::Deadlines;
use breaker::Breaker;
use std::collections::{BTreeMap, VecDeque};

/// A service's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceTimer {
    /// Request `rid`'s own processing is over.
    Processed(u64),
    /// Request `rid`'s retry of dependency `dep` is due.
    Backoff {
        /// The request.
        rid: u64,
        /// The dependency's index.
        dep: u16,
    },
    /// Worker mode: job `rid` is tried again.
    JobRetry(u64),
    /// Some attempt's timeout is due.
    AttemptTimeout,
    /// Some request's deadline is due (`propagate_deadline`).
    RequestDeadline,
    /// Worker mode: resend the `Done`s not yet acknowledged.
    DoneResend,
    /// Worker mode: the broker has not confirmed the subscription.
    Resubscribe,
}

const KIND_SHIFT: u32 = 60;
const LOW: u64 = (1 << KIND_SHIFT) - 1;

impl Timer for ServiceTimer {
    fn to_word(self) -> u64 {
        match self {
            ServiceTimer::Processed(rid) => rid & LOW,
            ServiceTimer::Backoff { rid, dep } => 1 << KIND_SHIFT | (rid << 16 | u64::from(dep)) & LOW,
            ServiceTimer::JobRetry(rid) => 2 << KIND_SHIFT | rid & LOW,
            ServiceTimer::AttemptTimeout => 3 << KIND_SHIFT,
            ServiceTimer::RequestDeadline => 4 << KIND_SHIFT,
            ServiceTimer::DoneResend => 5 << KIND_SHIFT,
            ServiceTimer::Resubscribe => 6 << KIND_SHIFT,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        let low = word & LOW;
        Some(match word >> KIND_SHIFT {
            0 => ServiceTimer::Processed(low),
            1 => ServiceTimer::Backoff { rid: low >> 16, dep: (low & 0xffff) as u16 },
            2 => ServiceTimer::JobRetry(low),
            3 => ServiceTimer::AttemptTimeout,
            4 => ServiceTimer::RequestDeadline,
            5 => ServiceTimer::DoneResend,
            6 => ServiceTimer::Resubscribe,
            _ => return None,
        })
    }
}

/// One dependency at run time.
struct Dep {
    target: NodeId,
    timeout_ns: Duration,
    retries: u32,
    backoff_ns: Duration,
    multiplier: f64,
    jitter: Jitter,
    bulkhead: u32,
    in_flight: u32,
    breaker: Option<Breaker>,
    spec: DependencySpec,
}

/// Where a request came from, and how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A caller's attempt `call`: answered with a `Reply`.
    Caller { from: NodeId, call: u64 },
    /// A delivery of the worker's broker: acked at the end.
    Job { tag: u64 },
}

/// A request the service holds.
struct Req {
    rec: Record,
    origin: Origin,
    /// The caller's deadline (0: none).
    deadline: Time,
    /// It holds a worker.
    working: bool,
    /// Dependencies not yet done (parallel).
    pending: usize,
    /// The first failure, by dependency order: (index, status to reply).
    failure: Option<(usize, Status)>,
    /// Attempts made of each dependency.
    tries: Vec<u32>,
    /// Worker mode: tries of the whole job so far.
    job_tries: u32,
}

/// A running service.
pub struct Service {
    name: String,
    workers: usize,
    queue_limit: usize,
    processing: Sampler,
    error_probability: f64,
    parallel: bool,
    propagate: bool,
    deps: Vec<Dep>,
    worker: Option<Worker>,
    /// The probabilities, in millionths, of the `errors` faults in force
    /// (each fails a call independently).
    errors: Vec<u32>,
    /// The stream the `errors` draws come from (beside the service's own,
    /// so a fault shifts no processing draw), made on first use.
    errors_rng: Option<crate::rng::SimRng>,
    // Volatile.
    busy: usize,
    queue: VecDeque<u64>,
    reqs: BTreeMap<u64, Req>,
    /// Attempts in flight, by their call number.
    attempts: BTreeMap<u64, calls::Attempt>,
    attempt_deadlines: Deadlines,
    req_deadlines: Deadlines,
    // Never reset, so that an answer from before a crash never matches.
    next_rid: u64,
    next_call: u64,
}

impl Service {
    /// Service `name` as `spec` says, calling `targets` (the ids of its
    /// dependencies, in order); a worker when `worker` is given.
    fn new(name: &str, spec: &ServiceSpec, targets: &[NodeId], worker: Option<Worker>) -> Self {
        let deps = spec.dependencies.iter().zip(targets).map(|(d, &target)| Dep::new(d, target)).collect();
        Service {
            name: name.to_string(),
            workers: spec.workers.max(1) as usize,
            queue_limit: spec.queue_limit as usize,
            processing: spec.processing.sampler(),
            error_probability: spec.error_probability.0,
            parallel: spec.calls == CallOrder::Parallel,
            propagate: spec.propagate_deadline,
            deps,
            worker,
            errors: Vec::new(),
            errors_rng: None,
            busy: 0,
            queue: VecDeque::new(),
            reqs: BTreeMap::new(),
            attempts: BTreeMap::new(),
            attempt_deadlines: Deadlines::default(),
            req_deadlines: Deadlines::default(),
            next_rid: 0,
            next_call: 0,
        }
    }

    /// A service built from `spec` for tests (dependencies' ids given).
    #[cfg(test)]
    fn for_test(spec: &ServiceSpec, targets: &[NodeId], source: Option<(NodeId, Option<NodeId>)>) -> Self {
        let worker = source.map(|(s, n)| Worker::new(spec, s, n));
        Service::new("svc", spec, targets, worker)
    }

    /// An `errors` fault begins (with this probability, in millionths)
    /// or ends: while it lasts, each call is answered 500 at once with
    /// that probability. Faults that overlap each fail a call on their own.
    pub fn set_errors(&mut self, ppm: u32, begins: bool) {
        if begins {
            self.errors.push(ppm.min(1_000_000));
        } else if let Some(i) = self.errors.iter().position(|&p| p == ppm.min(1_000_000)) {
            self.errors.remove(i);
        }
    }

    /// Whether an `errors` fault fails the call arriving now.
    fn fails_now(&mut self, ctx: &mut Ctx<ServiceTimer>) -> bool {
        if self.errors.is_empty() {
            return false;
        }
        let q = 1.0 - self.errors.iter().map(|&p| 1.0 - f64::from(p) / 1e6).product::<f64>();
        let rng = self.errors_rng.get_or_insert_with(|| crate::size::side_stream(ctx.rng(), "errors"));
        chance(rng, q)
    }

    /// A call or a delivery arrives: refused, queued, or taken at once.
    fn admit(&mut self, ctx: &mut Ctx<ServiceTimer>, rec: Record, origin: Origin, deadline: Time) {
        if let Origin::Caller { from, call } = origin {
            if self.fails_now(ctx) {
                ctx.send(from, RpcMsg::Reply { id: rec.id, call, status: Status::Error });
                return;
            }
            if self.busy >= self.workers && self.queue.len() >= self.queue_limit {
                ctx.metric_add("requests_rejected", 1.0);
                ctx.send(from, RpcMsg::Reply { id: rec.id, call, status: Status::Unavailable });
                return;
            }
        }
        let rid = self.next_rid;
        self.next_rid += 1;
        let tries = vec![0; self.deps.len()];
        let req = Req { rec, origin, deadline, working: false, pending: 0, failure: None, tries, job_tries: 0 };
        self.reqs.insert(rid, req);
        self.queue.push_back(rid);
        self.pull(ctx);
    }

    /// Gives free workers the requests waiting, in arrival order.
    fn pull(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        while self.busy < self.workers {
            let Some(rid) = self.queue.pop_front() else { break };
            self.take(ctx, rid);
        }
        ctx.set_queue_depth(self.queue.len() as u64);
    }

    /// A worker takes request `rid`, unless its caller's deadline passed
    /// and the service honours deadlines.
    fn take(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64) {
        let Some(req) = self.reqs.get_mut(&rid) else { return };
        let now = ctx.now();
        if self.propagate && req.deadline > 0 && now >= req.deadline {
            ctx.metric_add("expired_dropped", 1.0);
            self.reqs.remove(&rid);
            return;
        }
        req.working = true;
        self.busy += 1;
        ctx.metric_max("pool_saturation_max", self.busy as f64 / self.workers as f64);
        if self.propagate && req.deadline > 0 {
            self.req_deadlines.add(ctx, req.deadline, rid, ServiceTimer::RequestDeadline);
        }
        self.begin(ctx, rid);
    }

    /// Starts (or starts again, for a job) request `rid`'s processing.
    fn begin(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64) {
        let factor = ctx.slow_factor();
        let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
        ctx.set_timer(took, ServiceTimer::Processed(rid));
    }

    /// Request `rid`'s own processing is over: fail it, or call the dependencies.
    fn processed(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64) {
        let Some(req) = self.reqs.get_mut(&rid) else { return };
        if chance(ctx.rng(), self.error_probability) {
            return self.finish(ctx, rid, Status::Error);
        }
        req.failure = None;
        req.tries.iter_mut().for_each(|t| *t = 0);
        if self.deps.is_empty() {
            return self.finish(ctx, rid, Status::Ok);
        }
        if self.parallel {
            req.pending = self.deps.len();
            for dep in 0..self.deps.len() {
                self.attempt(ctx, rid, dep);
            }
        } else {
            self.attempt(ctx, rid, 0);
        }
    }

    /// Dependency `dep` of request `rid` is done with `status` (its last
    /// attempt's, or 503 when refused locally): go on, or finish.
    fn dep_done(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64, dep: usize, status: Status) {
        let Some(req) = self.reqs.get_mut(&rid) else { return };
        let failed = match status {
            Status::Ok | Status::Accepted => None,
            Status::GatewayTimeout => Some(Status::GatewayTimeout),
            Status::Unavailable => Some(Status::Unavailable),
            Status::Error => Some(Status::Error),
        };
        if !self.parallel {
            return match failed {
                Some(s) => self.finish(ctx, rid, s),
                None if dep + 1 < self.deps.len() => self.attempt(ctx, rid, dep + 1),
                None => self.finish(ctx, rid, Status::Ok),
            };
        }
        if let Some(s) = failed {
            if req.failure.is_none_or(|(d, _)| dep < d) {
                req.failure = Some((dep, s));
            }
        }
        req.pending -= 1;
        if req.pending == 0 {
            let status = req.failure.map_or(Status::Ok, |(_, s)| s);
            self.finish(ctx, rid, status);
        }
    }

    /// Request `rid` ended with `status`: reply (or end the job), free its
    /// worker, and take the next request.
    fn finish(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64, status: Status) {
        if self.retry_job(ctx, rid, status) {
            return;
        }
        let Some(req) = self.reqs.remove(&rid) else { return };
        match req.origin {
            Origin::Caller { from, call } => {
                ctx.send(from, RpcMsg::Reply { id: req.rec.id, call, status });
                if req.deadline > 0 && ctx.now() > req.deadline {
                    ctx.metric_add("work_for_gone_callers", 1.0);
                }
            }
            Origin::Job { tag } => self.job_done(ctx, req.rec.id, tag, status),
        }
        if req.working {
            self.busy -= 1;
        }
        self.pull(ctx);
    }

    /// Requests whose deadline came while they were worked on: given up
    /// (504), their attempts abandoned.
    fn deadlines_due(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        let reqs = &self.reqs;
        let due = self.req_deadlines.expire(ctx, ServiceTimer::RequestDeadline, |rid, at| {
            reqs.get(&rid).is_some_and(|r| r.working && r.deadline == at)
        });
        for rid in due {
            self.abandon_attempts(ctx, |a| a.rid == rid);
            self.finish(ctx, rid, Status::GatewayTimeout);
        }
        if self.reqs.is_empty() {
            self.req_deadlines.cancel_all(ctx, ServiceTimer::RequestDeadline);
        }
    }
}

impl Component for Service {
    type Timer = ServiceTimer;

    fn start(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        if let Some(w) = &mut self.worker {
            w.start(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<ServiceTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Rpc(RpcMsg::Call { rec, call, deadline }) => {
                self.admit(ctx, rec, Origin::Caller { from, call }, deadline)
            }
            Msg::Rpc(RpcMsg::Reply { call, status, .. }) => self.on_reply(ctx, call, status),
            Msg::Rpc(RpcMsg::DoneAck { id }) => self.done_acked(ctx, id),
            Msg::Notice(Notice::PeerDown) => self.peer_down(ctx, from),
            Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) => self.admit(ctx, rec, Origin::Job { tag }, 0),
            Msg::Queue(q) => self.on_queue(ctx, q),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<ServiceTimer>, timer: ServiceTimer) {
        match timer {
            ServiceTimer::Processed(rid) => self.processed(ctx, rid),
            ServiceTimer::Backoff { rid, dep } => {
                if self.reqs.get(&rid).is_some_and(|r| r.working) {
                    self.attempt(ctx, rid, usize::from(dep));
                }
            }
            ServiceTimer::JobRetry(rid) => {
                if self.reqs.contains_key(&rid) {
                    self.begin(ctx, rid);
                }
            }
            ServiceTimer::AttemptTimeout => self.timeouts_due(ctx),
            ServiceTimer::RequestDeadline => self.deadlines_due(ctx),
            ServiceTimer::DoneResend => self.resend_dones(ctx),
            ServiceTimer::Resubscribe => {
                if let Some(w) = &mut self.worker {
                    w.subscription.on_timer(ctx);
                }
            }
        }
    }

    fn on_fault(&mut self, _ctx: &mut Ctx<ServiceTimer>, fault: &NodeFault, begins: bool) {
        if let NodeFault::Errors { ppm } = fault {
            self.set_errors(*ppm, begins);
        }
    }

    fn crash(&mut self) {
        self.busy = 0;
        self.queue.clear();
        self.reqs.clear();
        self.attempts.clear();
        self.attempt_deadlines.clear();
        self.req_deadlines.clear();
        for d in &mut self.deps {
            d.in_flight = 0;
            d.breaker = d.spec.breaker.as_ref().map(|b| Breaker::new(b.config()));
        }
        if let Some(w) = &mut self.worker {
            w.crash();
        }
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY: usize = 128;
        (self.reqs.len() + self.attempts.len() + self.queue.len()) * ENTRY
    }

    fn gauges(&self, _now: Time, out: &mut Gauges) {
        out.sum(format!("pool_busy.{}", self.name), self.busy as f64 / self.workers as f64);
        out.sum(format!("accept_queue.{}", self.name), self.queue.len() as f64);
    }
}

impl Dep {
    fn new(d: &DependencySpec, target: NodeId) -> Self {
        Dep {
            target,
            timeout_ns: ms_to_ns(d.timeout_ms.0).max(1),
            retries: d.retries,
            backoff_ns: ms_to_ns(d.backoff_ms.0),
            multiplier: d.backoff_multiplier,
            jitter: d.jitter,
            bulkhead: d.bulkhead,
            in_flight: 0,
            breaker: d.breaker.as_ref().map(|b| Breaker::new(b.config())),
            spec: d.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
