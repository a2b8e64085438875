//! Consumers: subscribe to a broker, process each delivered message for a
//! time drawn from a processing-time distribution, with at most
//! `concurrency` messages in progress at once, then apply the message's
//! effect and ack it (process-then-ack: at-least-once).
//!
//! A consumer subscribes at start and after every restart, and asks again
//! every `resubscribe_ms` until the broker confirms, so a subscription lost
//! on the network is not a consumer lost for good.
//!
//! Deliveries that arrive while every slot is busy wait in a local buffer.
//! A crash loses the work in progress and the buffer (volatile); the broker
//! gets them back when the consumer re-subscribes on restart, or when their
//! redelivery timeout passes. Commit-before-processing, idempotent effects
//! and transactional consumers come with the delivery-guarantee models.

use crate::dist::{Dist, Sampler};
use crate::engine::{Component, Ctx, TimerId};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::time::{ms_to_ns, Duration};
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A consumer as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// The broker it subscribes to.
    pub source: String,
    /// How long processing one message takes.
    pub processing: Dist,
    /// Messages processed at once (servers, in queueing terms).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Unacked deliveries the broker may push ahead; defaults to `concurrency`.
    #[serde(default)]
    pub prefetch: Option<u32>,
    /// How long to wait for the broker to confirm a subscription before
    /// asking again.
    #[serde(default = "default_resubscribe")]
    pub resubscribe_ms: Millis,
}

fn one() -> u32 {
    1
}

fn default_resubscribe() -> Millis {
    Millis(1000.0)
}

/// The timer tag of the subscription retry (slots use 0..concurrency).
const TAG_RESUBSCRIBE: u64 = u64::MAX;

struct Job {
    rec: Record,
    tag: u64,
}

/// A running consumer.
pub struct Consumer {
    source: NodeId,
    processing: Sampler,
    prefetch: u32,
    resubscribe_ns: Duration,
    /// Durable: counts starts, so the broker can tell a reconnect from a repeat.
    session: u32,
    subscribed: bool,
    retry: Option<TimerId>,
    /// Work in progress, one entry per slot; the timer tag is the slot.
    slots: Vec<Option<Job>>,
    buffer: VecDeque<Job>,
}

impl Consumer {
    /// A consumer reading from `source` as `spec` says.
    pub fn new(spec: &ConsumerSpec, source: NodeId) -> Self {
        let concurrency = spec.concurrency.max(1);
        Consumer {
            source,
            processing: spec.processing.sampler(),
            prefetch: spec.prefetch.unwrap_or(concurrency).max(1),
            resubscribe_ns: ms_to_ns(spec.resubscribe_ms.0).max(1),
            session: 0,
            subscribed: false,
            retry: None,
            slots: (0..concurrency).map(|_| None).collect(),
            buffer: VecDeque::new(),
        }
    }

    fn subscribe(&mut self, ctx: &mut Ctx) {
        self.subscribed = false;
        ctx.send(self.source, Msg::Subscribe { prefetch: self.prefetch, session: self.session });
        self.retry = Some(ctx.set_timer(self.resubscribe_ns, TAG_RESUBSCRIBE));
    }

    fn begin(&mut self, ctx: &mut Ctx, slot: usize, job: Job) {
        ctx.start_processing(job.rec.id);
        let factor = ctx.slow_factor();
        let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
        self.slots[slot] = Some(job);
        ctx.set_timer(took, slot as u64);
    }
}

impl Component for Consumer {
    fn start(&mut self, ctx: &mut Ctx) {
        self.session += 1;
        self.subscribe(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Deliver { rec, tag, .. } => {
                let job = Job { rec, tag };
                match self.slots.iter().position(Option::is_none) {
                    Some(slot) => self.begin(ctx, slot, job),
                    None => self.buffer.push_back(job),
                }
            }
            Msg::Subscribed => {
                self.subscribed = true;
                if let Some(id) = self.retry.take() {
                    ctx.cancel_timer(id);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx, tag: u64) {
        if tag == TAG_RESUBSCRIBE {
            self.retry = None;
            // The subscribe or its confirmation was lost: ask again.
            if !self.subscribed {
                self.subscribe(ctx);
            }
            return;
        }
        let slot = tag as usize;
        let Some(job) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        ctx.apply_effect(job.rec.id);
        ctx.send(self.source, Msg::Ack { tag: job.tag });
        if let Some(next) = self.buffer.pop_front() {
            self.begin(ctx, slot, next);
        }
    }

    fn crash(&mut self) {
        self.subscribed = false;
        self.retry = None;
        self.slots.iter_mut().for_each(|s| *s = None);
        self.buffer.clear();
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.slots.iter().flatten().map(|j| j.rec.id));
        out.extend(self.buffer.iter().map(|j| j.rec.id));
    }
}
