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
//! the same broker and subscription, or of the same log consumer group),
//! so a message redelivered to another consumer is caught too. With `ack = "after"` this gives an effect applied exactly once.
//! Simplification: the store never fails, answers without network delay,
//! survives every crash, and keeps every id (a real one would expire them).
//!
//! Processing can fail (see `consumer/failure.rs`). A transient failure
//! (`failure_probability`, drawn afresh each time, or an `errors` fault on
//! the consumer: its dependency failing) is handled as `on_failure` says:
//! nacked for redelivery (the default), rejected (dead-lettered), retried
//! in place after a backoff while the slot waits, or dropped. A permanent
//! one (`poison_probability`, a property of the message: it fails every
//! time, on every consumer; or a message schema version the consumer
//! cannot read yet, see [`crate::contract`]) is rejected at once, so the
//! broker dead-letters it (or dropped). With `ack = "before"` there is
//! nothing left to nack: a failure not retried in place loses the message.
//!
//! A consumer subscribes at start and after every restart, and asks again
//! every `resubscribe_ms` until the broker confirms, so a subscription lost
//! on the network is not a consumer lost for good.
//!
//! Deliveries that arrive while every slot is busy wait in a local buffer.
//! A crash loses the work in progress and the buffer (volatile); the broker
//! gets them back when the crash's connection-close notice (`PeerDown`)
//! reaches it, when the consumer re-subscribes on restart, or when it
//! cancels the consumer for holding a delivery past its timeout. The
//! broker's `subscribed` and `cancelled` name the session they answer; one
//! for an older session is stale and ignored.
//!
//! A consumer with `forward_to` forwards each record it processed (same id
//! and key) to another queue broker: service A changing X and telling B to
//! change Y, or a server replying on a response queue. It forwards whether
//! or not the effect was new, so a redelivery still tells B. How it orders
//! the two writes and its ack decides what a crash between them does:
//! acked at the commit and sent after `forward_delay` (a crash in that
//! window loses the forward for good); `ack = "after-forward"`, which acks
//! the input only once the next broker acked the forward (the slot waits,
//! and a forward given up after `forward_retries` nacks the input with
//! requeue); or `outbox = true`, which writes the forward in the effect's
//! transaction (durable) and has a relay publish it until acked, after
//! restarts too. Simplifications: the outbox write never fails and
//! survives every crash like the dedup store; the relay sends each entry
//! on its own, so a retried one can overtake later ones.
//!
//! Network duplication can still deliver a message twice even at most once
//! (the network model has no transport-level dedup). Transactional
//! read-process-write comes with the log broker.

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::{DupCause, LossCause};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{publish, QueueMsg};
use crate::reliable::{Failed, RetryPolicy, UntilAcked};
use crate::subscription::Subscription;
use crate::time::{ms_to_ns, Duration};
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

mod failure;
mod kind;
use failure::{Attempt, Failures, Verdict};
pub use failure::{DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BACKOFF_MS};
pub(crate) use kind::{check_effect, check_source};
pub use kind::{ConsumerKind, ConsumerSpec};

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
    /// After the effect and after the forward (`forward_to`) was acked by
    /// the next broker.
    #[serde(rename = "after-forward")]
    AfterForward,
}

/// What a consumer does with a delivery whose processing failed
/// transiently (a poison message is rejected, or dropped under `Drop`;
/// see `consumer/failure.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Nack it with requeue: back to the head of the queue, at once.
    #[default]
    Requeue,
    /// Reject it (nack without requeue): the queue dead-letters it, and a
    /// dead-letter exchange can bring it back after a wait (a delayed retry).
    Reject,
    /// Retry in place: process it again after `retry_backoff_ms`, up to
    /// `retry_attempts` attempts in all, holding the slot; then reject it.
    Retry,
    /// Ack it without its effect, and go on: it is lost.
    Drop,
}

/// Whether a consumer's forward waits for the next broker's ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardAcks {
    /// Fire-and-forget: the forward is done the moment it leaves.
    #[default]
    None,
    /// Wait for the broker's ack; retry on a timeout or a refusal.
    Broker,
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

/// A consumer's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerTimer {
    /// Processing in this slot is over.
    Slot(u32),
    /// The broker has not confirmed the subscription: ask again.
    Resubscribe,
    /// A forward attempt is due (after `forward_delay`, or after a backoff).
    ForwardSend,
    /// The ack deadline of a forward attempt.
    ForwardAck,
}

impl Timer for ConsumerTimer {
    // Slots are words 0..concurrency; the rest count down from the top.
    fn to_word(self) -> u64 {
        match self {
            ConsumerTimer::Slot(slot) => u64::from(slot),
            ConsumerTimer::Resubscribe => u64::MAX,
            ConsumerTimer::ForwardSend => u64::MAX - 1,
            ConsumerTimer::ForwardAck => u64::MAX - 2,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        Some(match word {
            u64::MAX => ConsumerTimer::Resubscribe,
            w if w == u64::MAX - 1 => ConsumerTimer::ForwardSend,
            w if w == u64::MAX - 2 => ConsumerTimer::ForwardAck,
            slot => ConsumerTimer::Slot(u32::try_from(slot).ok()?),
        })
    }
}

struct Job {
    rec: Record,
    tag: u64,
    /// Processing is over, and the delivery waits for its forward's ack
    /// before it is acked (`ack = "after-forward"`): the slot stays busy.
    forwarding: bool,
    /// Processing attempts made of this delivery (retries in place).
    attempt: u32,
}

/// How a consumer forwards what it processed (`forward_to`); how it
/// retries is the policy of its [`UntilAcked`] forwards.
struct Forwarding {
    to: NodeId,
    want_ack: bool,
    delay: Sampler,
    outbox: bool,
}

/// How the forwards of `spec` retry. A forward waiting for its
/// `forward_delay` waits the way a backoff does; with no delay (or no
/// backoff) it leaves at once.
fn forward_policy(spec: &ConsumerSpec) -> RetryPolicy {
    RetryPolicy {
        ack_timeout_ns: ms_to_ns(spec.forward_ack_timeout_ms.unwrap_or(Millis(1000.0)).0).max(1),
        retries: if spec.outbox { u32::MAX } else { spec.forward_retries.unwrap_or(0) },
        backoff_ns: ms_to_ns(spec.forward_retry_backoff_ms.unwrap_or(Millis(0.0)).0),
        delivery_timeout_ns: None,
        zero_delay_at_once: true,
    }
}

/// One forward of a record to the `forward_to` broker (its attempts are
/// kept by [`UntilAcked`]).
struct Forward {
    rec: Record,
    /// The slot and delivery tag to ack once this forward is acked
    /// (`ack = "after-forward"`).
    input: Option<(usize, u64)>,
    /// An outbox entry: written with the effect, kept across crashes, and
    /// sent until the broker acks it.
    durable: bool,
}

/// A running consumer.
pub struct Consumer {
    source: NodeId,
    processing: Sampler,
    /// The handshake with `source` (its session count is durable).
    subscription: Subscription<ConsumerTimer>,
    ack: AckTiming,
    /// How processing fails, and what it does then.
    failures: Failures,
    /// The dedup store (an index into the engine's stores), when the effect is idempotent.
    store: Option<usize>,
    /// Work in progress, one entry per slot; the timer tag is the slot.
    slots: Vec<Option<Job>>,
    buffer: VecDeque<Job>,
    fwd: Option<Forwarding>,
    /// Forwards not yet done, by a number that is never reused. Outbox
    /// entries (`durable`) survive a crash; the others are volatile.
    forwards: UntilAcked<Forward, ConsumerTimer>,
    /// The forwards of each message (a redelivery may be forwarded again
    /// while the first forward is pending), so that an ack finds them.
    by_msg: BTreeMap<MsgId, Vec<u64>>,
    /// Outbox entries among `forwards`.
    outbox_len: usize,
    next_forward: u64,
    /// This consumer's effect domain.
    domain: crate::ledger::DomainId,
    /// Set at start when it has no dedup store and no forward: a slot's
    /// end takes [`Consumer::finish_plain`] while no attempt can fail.
    plain: bool,
}

impl Consumer {
    /// A consumer reading from `source` as `spec` says, with dedup store
    /// number `store` when its effect is idempotent.
    pub fn new(spec: &ConsumerSpec, source: NodeId, store: Option<usize>) -> Self {
        let concurrency = spec.concurrency.max(1);
        Consumer {
            source,
            processing: spec.processing.sampler(),
            subscription: Subscription::new(
                source,
                spec.prefetch.unwrap_or(0),
                spec.ack == AckTiming::Before,
                ms_to_ns(spec.resubscribe_ms.0).max(1),
                ConsumerTimer::Resubscribe,
            ),
            ack: spec.ack,
            failures: Failures::new(spec),
            store,
            slots: (0..concurrency).map(|_| None).collect(),
            buffer: VecDeque::new(),
            fwd: None,
            forwards: UntilAcked::new(forward_policy(spec), ConsumerTimer::ForwardAck, ConsumerTimer::ForwardSend),
            by_msg: BTreeMap::new(),
            outbox_len: 0,
            next_forward: 0,
            domain: 0,
            plain: false,
        }
    }

    /// Makes this consumer forward each record it processes to broker
    /// `to`, as `spec`'s `forward_*` and `outbox` fields say.
    pub fn with_forward(mut self, spec: &ConsumerSpec, to: NodeId) -> Self {
        self.fwd = Some(Forwarding {
            to,
            want_ack: spec.forward_acks == ForwardAcks::Broker || spec.outbox,
            delay: spec.forward_delay.sampler(),
            outbox: spec.outbox,
        });
        assert!(self.forwards.is_empty(), "forwarding is set up before the consumer runs");
        self.forwards = UntilAcked::new(forward_policy(spec), ConsumerTimer::ForwardAck, ConsumerTimer::ForwardSend);
        self
    }

    /// Processing in `slot` ended, in a plain consumer (see `plain`) whose
    /// attempt cannot fail: step for step what [`Consumer::finish`] does
    /// then (no draw, an effect always new with no store, an ack unless
    /// auto-acked, nothing to forward), reading the job in place. Then
    /// the next buffered delivery begins, as after the general path.
    #[inline(always)]
    fn finish_plain(&mut self, ctx: &mut Ctx<ConsumerTimer>, slot: usize) {
        let Some(cell) = self.slots.get_mut(slot) else { return };
        let Some(job) = cell else { return };
        let (id, tag) = (job.rec.id, job.tag);
        *cell = None;
        ctx.apply_effect(id);
        if self.ack != AckTiming::Before {
            ctx.send(self.source, QueueMsg::Ack { tag });
        }
        if let Some(next) = self.buffer.pop_front() {
            self.begin(ctx, slot, next);
        }
    }

    /// Processing of `job` in `slot` ended: apply its effect and ack, or
    /// nack. Returns the job when the slot stays busy: its ack waits for
    /// the forward's.
    fn finish(&mut self, ctx: &mut Ctx<ConsumerTimer>, slot: usize, mut job: Job) -> Option<Job> {
        let id = job.rec.id;
        job.attempt += 1;
        let acks = self.ack != AckTiming::Before;
        let attempt = self.failures.attempt(ctx, id);
        if attempt != Attempt::Ok {
            return self.failed(ctx, slot, job, attempt);
        }
        // The dedup check and the effect are one transaction.
        let new = self.store.is_none_or(|store| ctx.dedup_insert(store, id));
        if new {
            ctx.apply_effect(id);
        }
        let Some(outbox) = self.fwd.as_ref().map(|f| f.outbox) else {
            if acks {
                ctx.send(self.source, QueueMsg::Ack { tag: job.tag });
            }
            return None;
        };
        if self.ack == AckTiming::AfterForward {
            // The input is acked only once the next broker has the record.
            self.add_forward(ctx, job.rec, Some((slot, job.tag)), false);
            job.forwarding = true;
            return Some(job);
        }
        if acks {
            ctx.send(self.source, QueueMsg::Ack { tag: job.tag });
        }
        if !outbox {
            // Told whether or not the effect was new: a redelivery whose
            // effect is already in the store must still tell the next one.
            self.add_forward(ctx, job.rec, None, false);
        } else if new {
            // The entry was written in the effect's transaction: a repeat
            // the store skips wrote none (the first one's entry is there).
            self.add_forward(ctx, job.rec, None, true);
            ctx.metric_max("outbox_max_entries", self.outbox_len as f64);
        }
        None
    }

    /// Processing of `job` in `slot` failed: retry it in place (the job
    /// is returned: its slot stays busy), or hand it back, or drop it.
    fn failed(&mut self, ctx: &mut Ctx<ConsumerTimer>, slot: usize, job: Job, how: Attempt) -> Option<Job> {
        let (Attempt::Transient(kind) | Attempt::Permanent(kind)) = how else { return None };
        ctx.error(kind);
        let id = job.rec.id;
        let acks = self.ack != AckTiming::Before;
        match self.failures.verdict(how, job.attempt) {
            Verdict::RetryAfter(backoff) => {
                ctx.metric_add("retries_in_place", 1.0);
                let factor = ctx.slow_factor();
                let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
                ctx.set_timer(backoff.saturating_add(took), ConsumerTimer::Slot(slot as u32));
                return Some(job);
            }
            Verdict::Drop => {
                if acks {
                    ctx.send(self.source, QueueMsg::Ack { tag: job.tag });
                }
                // A forwarding stage holds it for the domains downstream
                // too: dropped here, it never reaches them either.
                if self.fwd.is_some() {
                    ctx.discarded(id, LossCause::DroppedOnFailure);
                } else {
                    ctx.discarded_in(self.domain, id, LossCause::DroppedOnFailure);
                }
            }
            Verdict::Requeue | Verdict::Reject if !acks => {
                // Auto-acked: the broker has forgotten it.
                ctx.discarded(id, LossCause::ProcessingFailed);
            }
            Verdict::Requeue => ctx.send(self.source, QueueMsg::Nack { tag: job.tag, requeue: true }),
            Verdict::Reject => {
                if job.attempt > 1 {
                    ctx.error("retries-exhausted");
                }
                ctx.send(self.source, QueueMsg::Nack { tag: job.tag, requeue: false });
            }
        }
        None
    }

    fn add_forward(&mut self, ctx: &mut Ctx<ConsumerTimer>, rec: Record, input: Option<(usize, u64)>, durable: bool) {
        let Some(f) = &self.fwd else { return };
        let delay = f.delay.sample_ns(ctx.rng());
        let fid = self.next_forward;
        self.next_forward += 1;
        self.by_msg.entry(rec.id).or_default().push(fid);
        self.outbox_len += usize::from(durable);
        self.forwards.insert(fid, Forward { rec, input, durable }, ctx.now());
        self.send_after(ctx, fid, delay);
    }

    fn remove_forward(&mut self, fid: u64) -> Option<Forward> {
        let fw = self.forwards.remove(fid)?;
        self.unindex(fid, &fw);
        Some(fw)
    }

    /// Forward `fid` is gone: drops it from the indexes.
    fn unindex(&mut self, fid: u64, fw: &Forward) {
        if let Some(fids) = self.by_msg.get_mut(&fw.rec.id) {
            fids.retain(|&f| f != fid);
            if fids.is_empty() {
                self.by_msg.remove(&fw.rec.id);
            }
        }
        let durable = usize::from(fw.durable);
        self.outbox_len = self.outbox_len.checked_sub(durable).expect("outbox_len counts the outbox entries kept");
    }

    /// Sends forward `fid` after `delay` (at once when it is 0).
    fn send_after(&mut self, ctx: &mut Ctx<ConsumerTimer>, fid: u64, delay: Duration) {
        if self.forwards.schedule(ctx, fid, delay) {
            self.send_forward(ctx, fid);
        }
    }

    fn send_forward(&mut self, ctx: &mut Ctx<ConsumerTimer>, fid: u64) {
        let Some(f) = &self.fwd else { return };
        if f.want_ack {
            let to = f.to;
            self.forwards.send(ctx, fid, |ctx, fw, attempt| {
                if attempt > 1 {
                    ctx.resent(fw.rec.id, DupCause::ProducerRetry);
                }
                ctx.send(to, publish(fw.rec, true, attempt))
            });
        } else if let Some(rec) = self.forwards.get(fid).map(|fw| fw.rec) {
            // Fire-and-forget: done as it leaves.
            ctx.send(f.to, publish(rec, false, 1));
            self.remove_forward(fid);
        }
    }

    /// An attempt of forward `fid` timed out or was refused: try again, or
    /// give up (an outbox entry is never given up).
    fn forward_failed(&mut self, ctx: &mut Ctx<ConsumerTimer>, fid: u64) {
        let durable = self.forwards.get(fid).is_some_and(|fw| fw.durable);
        match self.forwards.failed(ctx, fid, durable) {
            Some(Failed::GaveUp { payload, .. }) => {
                ctx.error("forward-failed");
                ctx.discarded(payload.rec.id, LossCause::GaveUp);
                self.unindex(fid, &payload);
                if let Some((slot, tag)) = payload.input {
                    // Handed back: the broker delivers the input again, and the
                    // forward is tried anew.
                    self.release(ctx, slot, tag, false);
                }
            }
            Some(Failed::SendNow) => self.send_forward(ctx, fid),
            Some(Failed::Backoff) | None => {}
        }
    }

    /// The delivery waiting in `slot` for its forward is done: ack it (or
    /// nack it with requeue, when the forward was given up), and take the
    /// next buffered delivery.
    fn release(&mut self, ctx: &mut Ctx<ConsumerTimer>, slot: usize, tag: u64, ok: bool) {
        if !self.slots.get(slot).is_some_and(|s| s.as_ref().is_some_and(|j| j.forwarding && j.tag == tag)) {
            return;
        }
        self.slots[slot] = None;
        ctx.send(self.source, if ok { QueueMsg::Ack { tag } } else { QueueMsg::Nack { tag, requeue: true } });
        if let Some(next) = self.buffer.pop_front() {
            self.begin(ctx, slot, next);
        }
    }

    /// In the drain, with no forward left, the forward timers guard nothing
    /// and would only keep the run waiting.
    fn settle_timers(&mut self, ctx: &mut Ctx<ConsumerTimer>) {
        if ctx.draining() && self.forwards.is_empty() {
            self.forwards.cancel_timers(ctx);
        }
    }

    /// Begins `job` in free `slot`: draws its processing time. Inlined into
    /// every caller: a delivery begins a job on every message's path.
    #[inline(always)]
    fn begin(&mut self, ctx: &mut Ctx<ConsumerTimer>, slot: usize, job: Job) {
        ctx.start_processing(job.rec.id);
        let factor = ctx.slow_factor();
        let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
        self.slots[slot] = Some(job);
        ctx.set_timer(took, ConsumerTimer::Slot(slot as u32));
    }

    /// A delivery of `rec` under `tag`: begun in a free slot, or buffered.
    #[inline(always)]
    fn deliver(&mut self, ctx: &mut Ctx<ConsumerTimer>, rec: Record, tag: u64) {
        let job = Job { rec, tag, forwarding: false, attempt: 0 };
        match self.slots.iter().position(Option::is_none) {
            Some(slot) => self.begin(ctx, slot, job),
            None => self.buffer.push_back(job),
        }
    }

    /// Handles one message from the broker other than a delivery.
    #[inline(never)]
    fn handle(&mut self, ctx: &mut Ctx<ConsumerTimer>, msg: &Msg) {
        match *msg {
            Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) => self.deliver(ctx, rec, tag),
            Msg::Queue(QueueMsg::Cancelled { session }) if session == self.subscription.session() => {
                // The broker took back everything we held: the buffered
                // deliveries are void, and we must subscribe afresh. Work in
                // progress finishes (its effect applies); its ack is ignored.
                self.buffer.clear();
                self.subscription.cancelled(ctx, session);
            }
            Msg::Queue(QueueMsg::Subscribed { session }) => self.subscription.subscribed(ctx, session),
            Msg::Queue(QueueMsg::PublishAck { id, accepted, attempt, .. }) => {
                if accepted {
                    // The next broker has the record: every forward of it
                    // already sent is done, whichever attempt this answers.
                    let fids = self.by_msg.get(&id).map_or(&[][..], Vec::as_slice);
                    let done: Vec<u64> = fids.iter().copied().filter(|&f| self.forwards.was_sent(f)).collect();
                    for fid in done {
                        if let Some((slot, tag)) = self.remove_forward(fid).and_then(|f| f.input) {
                            self.release(ctx, slot, tag, true);
                        }
                    }
                } else {
                    // A refusal of the attempt in progress fails it at its deadline.
                    for &fid in self.by_msg.get(&id).map_or(&[][..], Vec::as_slice) {
                        assert!(self.forwards.contains(fid), "indexed forwards exist");
                        self.forwards.refused(fid, attempt);
                    }
                }
                self.settle_timers(ctx);
            }
            _ => {}
        }
    }

    /// The timers other than a slot's (out of line: rare on the hot path).
    #[inline(never)]
    fn on_other_timer(&mut self, ctx: &mut Ctx<ConsumerTimer>, timer: ConsumerTimer) {
        match timer {
            // The subscribe or its confirmation may have been lost: ask again.
            ConsumerTimer::Resubscribe => self.subscription.on_timer(ctx),
            ConsumerTimer::ForwardSend => {
                for fid in self.forwards.due(ctx) {
                    self.send_forward(ctx, fid);
                }
                self.settle_timers(ctx);
            }
            ConsumerTimer::ForwardAck => {
                for fid in self.forwards.timed_out(ctx) {
                    if !self.forwards.is_refused(fid) {
                        ctx.error("forward-timeout");
                    }
                    self.forward_failed(ctx, fid);
                }
                self.settle_timers(ctx);
            }
            ConsumerTimer::Slot(_) => {}
        }
    }
}

impl Component for Consumer {
    type Timer = ConsumerTimer;

    fn start(&mut self, ctx: &mut Ctx<ConsumerTimer>) {
        self.plain = self.store.is_none() && self.fwd.is_none();
        self.domain = ctx.domain();
        self.subscription.start(ctx);
    }

    fn restart(&mut self, ctx: &mut Ctx<ConsumerTimer>) {
        self.start(ctx);
        // The outbox relay starts again on every entry still there.
        let entries: Vec<u64> = self.forwards.keys().collect();
        for fid in entries {
            let delay = self.fwd.as_ref().map_or(0, |f| f.delay.sample_ns(ctx.rng()));
            self.send_after(ctx, fid, delay);
        }
    }

    // Inlined into the engine's handler shim, as the queue broker's.
    #[inline]
    fn on_message(&mut self, ctx: &mut Ctx<ConsumerTimer>, _from: NodeId, msg: Msg) {
        // A delivery, the common message, is handled inline (and released
        // knowing its variant: no copy, no drop glue).
        if let Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) = msg {
            self.deliver(ctx, rec, tag);
            crate::protocol::queue::release(msg);
            return;
        }
        self.handle(ctx, &msg);
        crate::protocol::queue::release(msg);
    }

    // Inlined into the engine's handler shim, as the queue broker's.
    #[inline]
    fn on_timer(&mut self, ctx: &mut Ctx<ConsumerTimer>, timer: ConsumerTimer) {
        let ConsumerTimer::Slot(slot) = timer else {
            return self.on_other_timer(ctx, timer);
        };
        let slot = slot as usize;
        if self.plain && self.failures.cannot_fail() {
            return self.finish_plain(ctx, slot);
        }
        let Some(job) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(job) = self.finish(ctx, slot, job) {
            self.slots[slot] = Some(job); // waits for its forward, or retries
            return;
        }
        if let Some(next) = self.buffer.pop_front() {
            self.begin(ctx, slot, next);
        }
    }

    /// The jobs it holds (a buffer as deep as the broker's prefetch lets
    /// it be) and the forwards waiting for their acks, which grow while the
    /// next hop is down.
    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        const FORWARD_BYTES: usize = 128;
        self.slots.capacity() * size_of::<Option<Job>>()
            + self.buffer.capacity() * size_of::<Job>()
            + self.forwards.len() * FORWARD_BYTES
            + self.by_msg.len() * FORWARD_BYTES
    }

    fn crash(&mut self) {
        self.subscription.crash();
        self.slots.iter_mut().for_each(|s| *s = None);
        self.buffer.clear();
        // Forwards in memory are lost; outbox entries are in the database,
        // and no input waits for them any more.
        self.forwards.crash(|_, f| {
            f.input = None;
            f.durable
        });
        self.by_msg.clear();
        for (fid, f) in self.forwards.iter() {
            self.by_msg.entry(f.rec.id).or_default().push(fid);
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<ConsumerTimer>) {
        self.settle_timers(ctx);
    }

    fn on_fault(&mut self, _ctx: &mut Ctx<ConsumerTimer>, fault: &NodeFault, begins: bool) {
        self.failures.on_fault(fault, begins);
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        // What a forwarding consumer holds is still on its way to the next
        // domain too; what a sink holds is on its way to its own only.
        if self.fwd.is_some() {
            out.extend(self.slots.iter().flatten().map(|j| j.rec.id));
            out.extend(self.buffer.iter().map(|j| j.rec.id));
        }
        out.extend(self.forwards.iter().map(|(_, f)| f.rec.id));
    }

    fn held_in(&self, out: &mut Vec<(MsgId, crate::ledger::DomainId)>) {
        if self.fwd.is_none() {
            let d = self.domain;
            out.extend(self.slots.iter().flatten().map(|j| (j.rec.id, d)));
            out.extend(self.buffer.iter().map(|j| (j.rec.id, d)));
        }
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "consumer_failure_tests.rs"]
mod failure_tests;

#[cfg(test)]
mod plain_tests;
