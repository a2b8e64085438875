//! Consumers: subscribe to a broker, process each delivered message for a
//! time drawn from a processing-time distribution, with at most
//! `concurrency` messages in progress at once, then apply the message's
//! effect.
//!
//! When the consumer acks decides its delivery guarantee:
//!
//! - `ack = "after"` (the default): process, apply the effect, then ack.
//!   An ack lost on the network, a consumer timeout, a broker crash before
//!   the ack arrives, or a crash of the consumer with work in progress makes
//!   the broker deliver the message again, and the effect may be applied
//!   twice: **at-least-once**.
//! - `ack = "before"`: subscribe with auto-ack. The broker forgets each
//!   message the moment it sends it (and ignores prefetch), so a message
//!   lost on the way, or by a crash or a failure while processing, is lost:
//!   **at-most-once**.
//!
//! `effect = "idempotent"` makes the effect safe to repeat: the id of every
//! message applied goes into a dedup store, written in the same transaction
//! as the effect (an `INSERT IGNORE` keyed by message id), and a message
//! already there is skipped. The store is a database shared by every
//! consumer that names it in `dedup_store` (by default, all consumers of
//! the same broker), so a message redelivered to another consumer is caught
//! too. With `ack = "after"` this gives an effect applied exactly once.
//! Simplification: the store never fails, answers without network delay,
//! survives every crash, and keeps every id (a real one would expire them).
//!
//! Processing can fail. A transient failure (`failure_probability`, drawn
//! afresh each time) nacks the message for redelivery; a permanent one
//! (`poison_probability`, a property of the message: it fails every time,
//! on every consumer) nacks it without requeue, so the broker dead-letters
//! it. With `ack = "before"` there is nothing left to nack: the message is
//! lost.
//!
//! A consumer subscribes at start and after every restart, and asks again
//! every `resubscribe_ms` until the broker confirms, so a subscription lost
//! on the network is not a consumer lost for good.
//!
//! Deliveries that arrive while every slot is busy wait in a local buffer.
//! A crash loses the work in progress and the buffer (volatile); the broker
//! gets them back when the consumer re-subscribes on restart, or when it
//! cancels the consumer for holding a delivery past its timeout. The
//! broker's `subscribed` and `cancelled` name the session they answer; one
//! for an older session is stale and ignored.
//!
//! Network duplication can still deliver a message twice even at most once
//! (the network model has no transport-level dedup). Transactional
//! read-process-write comes with the log broker.

use crate::dist::{Dist, Sampler};
use crate::engine::{Component, Ctx, TimerId};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::rng::chance;
use crate::time::{ms_to_ns, Duration};
use crate::units::{Millis, Probability};
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
    /// When to ack: after the effect (at-least-once) or on receipt (at-most-once).
    #[serde(default)]
    pub ack: AckTiming,
    /// Whether the effect is deduplicated by message id.
    #[serde(default)]
    pub effect: Effect,
    /// Probability that one processing attempt fails (transient failure).
    #[serde(default)]
    pub failure_probability: Probability,
    /// Probability that a message is poison: it fails every time (permanent failure).
    #[serde(default)]
    pub poison_probability: Probability,
    /// The dedup store of an idempotent effect; consumers naming the same
    /// store share it. Default: the source broker's name (one store per broker).
    #[serde(default)]
    pub dedup_store: Option<String>,
    /// The effect domain this consumer's effect belongs to (see the
    /// ledger): consumers of one domain change the same state, and every
    /// message must take effect once in every domain. Default: `default`.
    #[serde(default)]
    pub domain: Option<String>,
    /// The subscription it reads, when its source broker fans out (one of
    /// the broker's `subscriptions`); consumers of one subscription compete
    /// for its messages.
    #[serde(default)]
    pub subscription: Option<String>,
    /// Log brokers: the topic to read.
    #[serde(default)]
    pub topic: Option<String>,
    /// Log brokers: the consumer group (default `group`).
    #[serde(default)]
    pub group: Option<String>,
    /// Log brokers: most records per fetch.
    #[serde(default = "default_max_poll")]
    pub max_poll_records: u32,
    /// Log brokers, with `ack = "auto"`: how often offsets are committed.
    #[serde(default = "default_auto_commit")]
    pub auto_commit_interval_ms: Millis,
    /// Log brokers: how the group shares partitions among its members.
    #[serde(default)]
    pub assignment: crate::broker::Assignor,
    /// Log brokers: a topic of the same broker to write each processed
    /// record to (a read-process-write stage).
    #[serde(default)]
    pub output_topic: Option<String>,
    /// Log brokers: write the output and commit the offsets in one
    /// transaction.
    #[serde(default)]
    pub transactional: bool,
    /// Log brokers: how often the member heartbeats to its group.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: Millis,
}

fn default_max_poll() -> u32 {
    500
}

fn default_auto_commit() -> Millis {
    Millis(5000.0)
}

fn default_heartbeat() -> Millis {
    Millis(300.0)
}

impl ConsumerSpec {
    /// The name of this consumer's effect domain: `domain`, else its
    /// subscription's name (each subscriber keeps its own state), else
    /// `default`.
    pub fn domain_name(&self) -> String {
        self.domain.clone().or_else(|| self.subscription.clone()).unwrap_or_else(|| "default".to_string())
    }
}

impl ConsumerSpec {
    /// The name of the dedup store this consumer uses, if its effect is
    /// idempotent: `dedup_store`, or else the name of its source broker
    /// (`BROKER/SUBSCRIPTION` for a subscriber: each subscription gets
    /// every message, so subscribers must not share a store).
    pub fn store_name(&self) -> Option<String> {
        let default = || match &self.subscription {
            Some(sub) => format!("{}/{sub}", self.source),
            None => self.source.clone(),
        };
        (self.effect == Effect::Idempotent).then(|| self.dedup_store.clone().unwrap_or_else(default))
    }
}

/// When a consumer acks a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckTiming {
    /// After applying the effect: at-least-once.
    #[default]
    After,
    /// On receipt, before processing: at-most-once.
    Before,
    /// Log brokers: commit what was processed every `auto_commit_interval_ms`.
    Auto,
}

/// How a consumer applies a message's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Apply it every time the message is processed.
    #[default]
    Plain,
    /// Apply it only if the message's id is not yet in the dedup store.
    Idempotent,
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
    ack: AckTiming,
    failure_probability: f64,
    poison_probability: f64,
    /// The dedup store (an index into the engine's stores), when the effect is idempotent.
    store: Option<usize>,
    /// Work in progress, one entry per slot; the timer tag is the slot.
    slots: Vec<Option<Job>>,
    buffer: VecDeque<Job>,
}

impl Consumer {
    /// A consumer reading from `source` as `spec` says, with dedup store
    /// number `store` when its effect is idempotent.
    pub fn new(spec: &ConsumerSpec, source: NodeId, store: Option<usize>) -> Self {
        let concurrency = spec.concurrency.max(1);
        Consumer {
            source,
            processing: spec.processing.sampler(),
            prefetch: spec.prefetch.unwrap_or(concurrency).max(1),
            resubscribe_ns: ms_to_ns(spec.resubscribe_ms.0).max(1),
            session: 0,
            subscribed: false,
            retry: None,
            ack: spec.ack,
            failure_probability: spec.failure_probability.0,
            poison_probability: spec.poison_probability.0,
            store,
            slots: (0..concurrency).map(|_| None).collect(),
            buffer: VecDeque::new(),
        }
    }

    /// Processing of `job` ended: apply its effect and ack, or nack.
    fn finish(&mut self, ctx: &mut Ctx, job: Job) {
        let id = job.rec.id;
        let poison = self.poison_probability > 0.0 && ctx.message_draw(id, "poison") < self.poison_probability;
        let failed = poison || chance(ctx.rng(), self.failure_probability);
        if failed {
            ctx.error(if poison { "permanent-failure" } else { "transient-failure" });
            if self.ack == AckTiming::After {
                ctx.send(self.source, Msg::Nack { tag: job.tag, requeue: !poison });
            }
            return;
        }
        // The dedup check and the effect are one transaction.
        if self.store.is_none_or(|store| ctx.dedup_insert(store, id)) {
            ctx.apply_effect(id);
        }
        if self.ack == AckTiming::After {
            ctx.send(self.source, Msg::Ack { tag: job.tag });
        }
    }

    fn subscribe(&mut self, ctx: &mut Ctx) {
        self.subscribed = false;
        let auto_ack = self.ack == AckTiming::Before;
        ctx.send(self.source, Msg::Subscribe { prefetch: self.prefetch, session: self.session, auto_ack });
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
            Msg::Cancelled { session } if session == self.session => {
                // The broker took back everything we held: the buffered
                // deliveries are void, and we must subscribe afresh. Work in
                // progress finishes (its effect applies); its ack is ignored.
                self.buffer.clear();
                if let Some(id) = self.retry.take() {
                    ctx.cancel_timer(id);
                }
                self.start(ctx);
            }
            Msg::Subscribed { session } if session == self.session => {
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
        self.finish(ctx, job);
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
