//! A service's calls to its dependencies: one attempt at a time per
//! dependency and request, through the breaker and the bulkhead, with a
//! timeout, and retries after an exponential backoff (AWS "full jitter":
//! a uniform draw between 0 and the backoff).

use super::breaker::{Change, Permit};
use super::{Service, ServiceTimer};
use crate::engine::Ctx;
use crate::message::NodeId;
use crate::protocol::rpc::{RpcMsg, Status};

/// An attempt in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    pub(super) rid: u64,
    pub(super) dep: usize,
    permit: Option<Permit>,
}

impl Service {
    /// Makes the next attempt of dependency `dep` for request `rid`, or
    /// fails it at once when its breaker or bulkhead refuses.
    pub(super) fn attempt(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64, dep: usize) {
        let now = ctx.now();
        let Some(req) = self.reqs.get_mut(&rid) else { return };
        let d = &mut self.deps[dep];
        req.tries[dep] += 1;
        let permit = match d.breaker.as_mut().map(|b| b.try_acquire(now)) {
            Some(None) => {
                ctx.metric_add("breaker_rejected", 1.0);
                return self.dep_done(ctx, rid, dep, Status::Unavailable);
            }
            Some(Some(p)) => Some(p),
            None => None,
        };
        if d.bulkhead > 0 && d.in_flight >= d.bulkhead {
            ctx.metric_add("bulkhead_rejected", 1.0);
            if let (Some(b), Some(p)) = (d.breaker.as_mut(), permit) {
                if b.record(now, p, true) == Change::Opened {
                    ctx.metric_add("breaker_opened", 1.0);
                }
            }
            return self.dep_done(ctx, rid, dep, Status::Unavailable);
        }
        d.in_flight += 1;
        let mut at = now + d.timeout_ns;
        if self.propagate && req.deadline > 0 {
            at = at.min(req.deadline);
        }
        let call = self.next_call;
        self.next_call += 1;
        if req.tries[dep] > 1 {
            // A retry: if the attempt that timed out took effect after all,
            // the ledger names this as why the effect is applied twice.
            ctx.resent(req.rec.id, crate::ledger::DupCause::ProducerRetry);
        }
        ctx.send(d.target, RpcMsg::Call { rec: req.rec, call, deadline: at });
        self.attempts.insert(call, Attempt { rid, dep, permit });
        self.attempt_deadlines.add(ctx, at, call, ServiceTimer::AttemptTimeout);
    }

    /// Ends attempt `call` (answered, timed out, reset): frees its
    /// bulkhead place and records its outcome in the breaker.
    fn end_attempt(&mut self, ctx: &mut Ctx<ServiceTimer>, call: u64, failed: bool) -> Option<Attempt> {
        let a = self.attempts.remove(&call)?;
        let d = &mut self.deps[a.dep];
        d.in_flight -= 1;
        if let (Some(b), Some(p)) = (d.breaker.as_mut(), a.permit) {
            if b.record(ctx.now(), p, failed) == Change::Opened {
                ctx.metric_add("breaker_opened", 1.0);
            }
        }
        if self.attempts.is_empty() {
            self.attempt_deadlines.cancel_all(ctx, ServiceTimer::AttemptTimeout);
        }
        Some(a)
    }

    /// A dependency answered attempt `call` (a late answer is ignored).
    pub(super) fn on_reply(&mut self, ctx: &mut Ctx<ServiceTimer>, call: u64, status: Status) {
        let ok = status.is_success();
        let Some(a) = self.end_attempt(ctx, call, !ok) else { return };
        if ok {
            return self.dep_done(ctx, a.rid, a.dep, Status::Ok);
        }
        ctx.metric_add("dependency_errors", 1.0);
        self.failed_attempt(ctx, a, Status::Error);
    }

    /// Attempts whose timeout came.
    pub(super) fn timeouts_due(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        let attempts = &self.attempts;
        let due =
            self.attempt_deadlines.expire(ctx, ServiceTimer::AttemptTimeout, |call, _| attempts.contains_key(&call));
        for call in due {
            if let Some(a) = self.end_attempt(ctx, call, true) {
                ctx.metric_add("dependency_timeouts", 1.0);
                self.failed_attempt(ctx, a, Status::GatewayTimeout);
            }
        }
    }

    /// Node `from`'s process died: its connections reset, and every
    /// attempt in flight to it fails at once.
    pub(super) fn peer_down(&mut self, ctx: &mut Ctx<ServiceTimer>, from: NodeId) {
        let deps = &self.deps;
        let calls: Vec<u64> =
            self.attempts.iter().filter(|(_, a)| deps[a.dep].target == from).map(|(&c, _)| c).collect();
        for call in calls {
            if let Some(a) = self.end_attempt(ctx, call, true) {
                ctx.metric_add("dependency_errors", 1.0);
                self.failed_attempt(ctx, a, Status::Error);
            }
        }
    }

    /// Abandons the attempts `pick` selects (their request is given up):
    /// no outcome, their breaker permits given back.
    pub(super) fn abandon_attempts(&mut self, ctx: &mut Ctx<ServiceTimer>, pick: impl Fn(&Attempt) -> bool) {
        let calls: Vec<u64> = self.attempts.iter().filter(|(_, a)| pick(a)).map(|(&c, _)| c).collect();
        for call in calls {
            let Some(a) = self.attempts.remove(&call) else { continue };
            let d = &mut self.deps[a.dep];
            d.in_flight -= 1;
            if let (Some(b), Some(p)) = (d.breaker.as_mut(), a.permit) {
                b.release(p);
            }
        }
        if self.attempts.is_empty() {
            self.attempt_deadlines.cancel_all(ctx, ServiceTimer::AttemptTimeout);
        }
    }

    /// Attempt `a` failed with `status`: retry after a backoff, or give
    /// the dependency up.
    fn failed_attempt(&mut self, ctx: &mut Ctx<ServiceTimer>, a: Attempt, status: Status) {
        let Some(req) = self.reqs.get(&a.rid) else { return };
        let d = &self.deps[a.dep];
        let tries = req.tries[a.dep];
        let expired = self.propagate && req.deadline > 0 && ctx.now() >= req.deadline;
        if tries > d.retries || expired {
            return self.dep_done(ctx, a.rid, a.dep, status);
        }
        ctx.metric_add("dependency_retries", 1.0);
        let wait = crate::reliable::backoff_ns(d.backoff_ns, d.multiplier, tries, d.jitter, ctx.rng());
        if wait == 0 {
            return self.attempt(ctx, a.rid, a.dep);
        }
        ctx.set_timer(wait, ServiceTimer::Backoff { rid: a.rid, dep: a.dep as u16 });
    }
}
