//! A service in worker mode (`source`): its requests are the deliveries of
//! a queue broker. A failed job is tried again after `job_retry_ms`,
//! holding its delivery and its worker, until it succeeds or `job_attempts`
//! tries are spent; at its end the worker tells `notify` (`Done`, resent
//! every second until `DoneAck`) and acks the delivery once the notice is
//! acknowledged (at once when there is no `notify`).

use super::{Origin, Service, ServiceSpec, ServiceTimer};
use crate::engine::Ctx;
use crate::ledger::LossCause;
use crate::message::{MsgId, NodeId};
use crate::protocol::rpc::{RpcMsg, Status};
use crate::protocol::QueueMsg;
use crate::subscription::Subscription;
use crate::time::{ms_to_ns, Duration, NS_PER_S};
use std::collections::BTreeMap;

/// How often an unacknowledged `Done` is sent again.
const DONE_RESEND_NS: Duration = NS_PER_S;

/// Worker mode's settings and state.
pub(super) struct Worker {
    source: NodeId,
    notify: Option<NodeId>,
    job_retry_ns: Duration,
    job_attempts: u32,
    pub(super) subscription: Subscription<ServiceTimer>,
    /// Jobs ended whose `Done` is not acknowledged: outcome and the
    /// delivery tag to ack then (`None` once the broker took it back).
    dones: BTreeMap<MsgId, (Status, Option<u64>)>,
    done_armed: bool,
}

impl Worker {
    /// A worker reading from broker `source`, telling `notify`.
    pub(super) fn new(spec: &ServiceSpec, source: NodeId, notify: Option<NodeId>) -> Self {
        Worker {
            source,
            notify,
            job_retry_ns: ms_to_ns(spec.job_retry_ms.0),
            job_attempts: spec.job_attempts,
            subscription: Subscription::new(source, spec.workers.max(1), false, NS_PER_S, ServiceTimer::Resubscribe),
            dones: BTreeMap::new(),
            done_armed: false,
        }
    }

    pub(super) fn start(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        self.subscription.start(ctx);
    }

    pub(super) fn crash(&mut self) {
        self.subscription.crash();
        self.dones.clear();
        self.done_armed = false;
    }
}

impl Service {
    /// Job `rid` failed with `status` and has tries left: keeps it (its
    /// delivery and its worker) and tries again after `job_retry_ms`.
    pub(super) fn retry_job(&mut self, ctx: &mut Ctx<ServiceTimer>, rid: u64, status: Status) -> bool {
        let (Some(w), Some(req)) = (&self.worker, self.reqs.get_mut(&rid)) else { return false };
        if status == Status::Ok || !matches!(req.origin, Origin::Job { .. }) {
            return false;
        }
        req.job_tries += 1;
        if w.job_attempts > 0 && req.job_tries >= w.job_attempts {
            return false;
        }
        ctx.metric_add("job_retries", 1.0);
        // The job's calls go out again: if an earlier one took effect after
        // all, the ledger names this retry as why it is applied twice.
        ctx.resent(req.rec.id, crate::ledger::DupCause::ProducerRetry);
        ctx.set_timer(w.job_retry_ns, ServiceTimer::JobRetry(rid));
        true
    }

    /// Job `id` (delivery `tag`) ended with `status`.
    pub(super) fn job_done(&mut self, ctx: &mut Ctx<ServiceTimer>, id: MsgId, tag: u64, status: Status) {
        let Some(w) = &mut self.worker else { return };
        if status != Status::Ok {
            ctx.metric_add("jobs_failed", 1.0);
            ctx.discarded(id, LossCause::GaveUp);
        }
        let Some(notify) = w.notify else {
            ctx.send(w.source, QueueMsg::Ack { tag });
            return;
        };
        ctx.send(notify, RpcMsg::Done { id, status });
        w.dones.insert(id, (status, Some(tag)));
        if !std::mem::replace(&mut w.done_armed, true) {
            ctx.set_timer(DONE_RESEND_NS, ServiceTimer::DoneResend);
        }
    }

    /// `notify` acknowledged job `id`'s `Done`: the delivery is acked.
    pub(super) fn done_acked(&mut self, ctx: &mut Ctx<ServiceTimer>, id: MsgId) {
        let Some(w) = &mut self.worker else { return };
        if let Some((_, Some(tag))) = w.dones.remove(&id) {
            ctx.send(w.source, QueueMsg::Ack { tag });
        }
    }

    /// Sends every unacknowledged `Done` again.
    pub(super) fn resend_dones(&mut self, ctx: &mut Ctx<ServiceTimer>) {
        let Some(w) = &mut self.worker else { return };
        w.done_armed = false;
        let Some(notify) = w.notify else { return };
        for (&id, &(status, _)) in &w.dones {
            ctx.send(notify, RpcMsg::Done { id, status });
        }
        if !w.dones.is_empty() {
            w.done_armed = true;
            ctx.set_timer(DONE_RESEND_NS, ServiceTimer::DoneResend);
        }
    }

    /// The broker's side of the subscription.
    pub(super) fn on_queue(&mut self, ctx: &mut Ctx<ServiceTimer>, msg: QueueMsg) {
        let Some(w) = &mut self.worker else { return };
        match msg {
            QueueMsg::Subscribed { session } => w.subscription.subscribed(ctx, session),
            QueueMsg::Cancelled { session } if session == w.subscription.session() => {
                // The broker took back every delivery: the queued ones are
                // void, and so are the tags still to ack. Jobs in progress
                // finish; their acks are ignored.
                w.dones.values_mut().for_each(|d| d.1 = None);
                w.subscription.cancelled(ctx, session);
                let reqs = &mut self.reqs;
                self.queue.retain(|rid| {
                    let job = reqs.get(rid).is_some_and(|r| matches!(r.origin, Origin::Job { .. }));
                    if job {
                        reqs.remove(rid);
                    }
                    !job
                });
                ctx.set_queue_depth(self.queue.len() as u64);
            }
            _ => {}
        }
    }
}
