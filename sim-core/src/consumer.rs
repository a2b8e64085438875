//! Consumers: subscribe to a broker, process each delivered message for a
//! time drawn from a processing-time distribution, with at most
//! `concurrency` messages in progress at once, then apply the message's
//! effect and ack it (process-then-ack: at-least-once).
//!
//! Deliveries that arrive while every slot is busy wait in a local buffer.
//! A crash loses the work in progress and the buffer (volatile); the broker
//! gets them back when the consumer re-subscribes on restart, or when their
//! redelivery timeout passes. Commit-before-processing, idempotent effects
//! and transactional consumers come with the delivery-guarantee models.

use crate::dist::{Dist, Sampler};
use crate::engine::{Component, Ctx};
use crate::message::{Msg, MsgId, NodeId, Record};
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
}

fn one() -> u32 {
    1
}

struct Job {
    rec: Record,
    tag: u64,
}

/// A running consumer.
pub struct Consumer {
    source: NodeId,
    processing: Sampler,
    prefetch: u32,
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
            slots: (0..concurrency).map(|_| None).collect(),
            buffer: VecDeque::new(),
        }
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
        ctx.send(
            self.source,
            Msg::Subscribe {
                prefetch: self.prefetch,
            },
        );
    }

    fn on_message(&mut self, ctx: &mut Ctx, _from: NodeId, msg: Msg) {
        if let Msg::Deliver { rec, tag, .. } = msg {
            let job = Job { rec, tag };
            match self.slots.iter().position(Option::is_none) {
                Some(slot) => self.begin(ctx, slot, job),
                None => self.buffer.push_back(job),
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx, tag: u64) {
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
        self.slots.iter_mut().for_each(|s| *s = None);
        self.buffer.clear();
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.slots.iter().flatten().map(|j| j.rec.id));
        out.extend(self.buffer.iter().map(|j| j.rec.id));
    }
}
