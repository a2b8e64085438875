//! Processing failures of a log consumer, and what it does with a record
//! whose processing failed (Kafka's consumer side of error handling, as
//! Spring Kafka and Confluent describe it).
//!
//! An attempt fails transiently with `failure_probability` (drawn afresh
//! each attempt), and with the probability of an `errors` fault while one
//! is in force on the member (its dependency is down). A record is poison
//! with `poison_probability`: drawn once per message
//! (`message_draw(id, "poison")`, the same number on every consumer, as
//! queue consumers draw it), it fails every attempt.
//!
//! `on_failure` decides what comes next:
//!
//! - `"retry-in-place"` (blocking retries: Spring's `DefaultErrorHandler`
//!   seeking back to the failed record): the same record is tried again
//!   after each of `retry_delays_ms` in turn, and nothing behind it in the
//!   partition is processed meanwhile; the member is busy, so the wait
//!   counts towards `max_poll_interval_ms`. When the delays run out the
//!   record goes to `dead_letter_topic`, or, with none, is skipped.
//! - `"retry-queue"` (non-blocking retries: Spring's retry topics): the
//!   record is written, same id, to the next topic of `retry_topics`
//!   (the first, when the member reads another topic), or to
//!   `dead_letter_topic` after the last, and the member moves on at once.
//!   It stamps the record with the time it is due (Spring's backoff
//!   timestamp header): its failure time plus the retry topic's delay
//!   (`retry_delays_ms[i]` for `retry_topics[i]`). A member reading a retry
//!   topic waits until a record is due before it starts it (Spring pauses
//!   the partition until then).
//! - `"dlq-only"`: straight to `dead_letter_topic` (skipped with none).
//! - `"drop"`: skipped: its offset is committed with nothing done, and the
//!   ledger counts it lost (`skipped_after_failure`).
//!
//! A member with `replay_to_topic` replays a dead-letter topic: at
//! `replay_at_ms` (once the dependency is back) it copies each record,
//! same id, to that topic, applying no effect of its own. A replay is one
//! pass over what the dead-letter topic held when it began, as a replay
//! tool reads up to the end offsets it looked up at its start: it ends at
//! the first record dead-lettered after that (its consumer stamps the time
//! in a header) or already replayed once (a message that failed again),
//! which stays in the dead-letter topic with everything after it, for a
//! person to look at.
//!
//! Simplifications: writes to retry and dead-letter topics are sent
//! without waiting for an ack (`acks=0`; Spring's recoverer waits for the
//! send's result), so they cannot be refused, only lost on the network; a
//! member waiting for a due record or a backoff is busy, so it blocks its
//! other partitions too (Spring pauses only the one partition); a
//! dead-letter topic's records are held for every domain as long as its
//! log keeps them.

use super::{LogConsumer, LogConsumerTimer};
use crate::dedup::Header;
use crate::engine::Ctx;
use crate::ledger::LossCause;
use crate::message::{MsgId, Record};
use crate::net::NodeFault;
use crate::protocol::{Acks, LogMsg};
use crate::rng::{chance, SimRng};
use crate::size::side_stream;
use crate::time::{Duration, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a log consumer does with a record whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Try the same record again after each retry delay, blocking the
    /// partition; then the dead-letter topic (or skip it).
    #[default]
    RetryInPlace,
    /// Write it to the next retry topic (then the dead-letter topic) and
    /// go on.
    RetryQueue,
    /// Write it to the dead-letter topic at once (or skip it).
    DlqOnly,
    /// Skip it: lost.
    Drop,
}

/// A topic this member writes to: (index at the broker, partitions).
pub type TopicRef = (u16, u32);

/// How a member's processing fails and what it does then (resolved from
/// its table).
#[derive(Debug, Clone, Default)]
pub struct Failures {
    /// Probability that an attempt fails transiently.
    pub failure_probability: f64,
    /// Probability that a message is poison (fails every attempt).
    pub poison_probability: f64,
    /// What is done with a failed record.
    pub on_failure: OnFailure,
    /// The waits before each retry in place.
    pub delays: Vec<Duration>,
    /// Where a failed record goes with `retry-queue`: the next retry topic
    /// and its delay, or None for the dead-letter topic.
    pub next_retry: Option<(TopicRef, Duration)>,
    /// The dead-letter topic.
    pub dead_letter: Option<TopicRef>,
    /// Whether the member reads a retry topic (it waits for due records).
    pub reads_retry_topic: bool,
    /// A replaying member: the topic it copies to, and from when.
    pub replay: Option<(TopicRef, Time)>,
}

impl Failures {
    /// Whether anything here can make an attempt fail (no draws are made
    /// otherwise, so a scenario without failures runs as before).
    fn can_fail(&self) -> bool {
        self.failure_probability > 0.0 || self.poison_probability > 0.0
    }
}

/// A member's volatile failure state.
#[derive(Default)]
pub(super) struct FailState {
    /// Failed attempts of the record in progress.
    attempt: u32,
    /// The error rates (ppm) of the `errors` faults in force.
    errors: Vec<u32>,
    /// Messages already replayed (a replaying member).
    replayed: BTreeSet<MsgId>,
    /// The partitions whose replay pass met a message dead-lettered after
    /// it began (or replayed before): the pass is over there.
    pub(super) replay_done: BTreeSet<u32>,
    /// The draws of transient failures, and of the `errors` fault.
    failures_rng: Option<SimRng>,
    errors_rng: Option<SimRng>,
}

impl LogConsumer {
    /// The record in progress, and its offset.
    fn current(&self) -> Option<(Record, u64)> {
        let b = self.batches.front()?;
        b.recs.get(b.next).map(|&r| (r, b.offset + b.next as u64))
    }

    /// Whether the attempt just over failed, and why: `Some(true)` for a
    /// poison message, `Some(false)` for a transient failure.
    pub(super) fn attempt_failed(&mut self, ctx: &mut Ctx<LogConsumerTimer>) -> Option<bool> {
        if self.s.failures.replay.is_some() || (!self.s.failures.can_fail() && self.f.errors.is_empty()) {
            return None;
        }
        let (rec, _) = self.current()?;
        let f = &self.s.failures;
        if f.poison_probability > 0.0 && ctx.message_draw(rec.id, "poison") < f.poison_probability {
            return Some(true);
        }
        // Streams of their own: failures shift no processing-time draw, so
        // variants that handle failures differently share those.
        let transient = f.failure_probability > 0.0 && {
            let rng = self.f.failures_rng.get_or_insert_with(|| side_stream(ctx.rng(), "failures"));
            chance(rng, f.failure_probability)
        };
        let down = 1.0 - self.f.errors.iter().map(|&m| 1.0 - f64::from(m) / 1e6).product::<f64>();
        let down = down > 0.0 && {
            let rng = self.f.errors_rng.get_or_insert_with(|| side_stream(ctx.rng(), "errors"));
            chance(rng, down)
        };
        (transient || down).then_some(false)
    }

    /// The attempt at the record in progress failed (`poison`: for good).
    pub(super) fn failed(&mut self, ctx: &mut Ctx<LogConsumerTimer>, poison: bool) {
        let Some((rec, _)) = self.current() else {
            self.in_progress = false;
            return;
        };
        ctx.error(if poison { "permanent-failure" } else { "transient-failure" });
        ctx.metric_add("failed_attempts", 1.0);
        let f = &self.s.failures;
        match f.on_failure {
            OnFailure::RetryInPlace if (self.f.attempt as usize) < f.delays.len() => {
                let wait = f.delays[self.f.attempt as usize];
                self.f.attempt += 1;
                ctx.metric_add("retries_in_place", 1.0);
                ctx.set_timer(wait, LogConsumerTimer::Retry);
                return; // still busy with it: the partition waits
            }
            OnFailure::RetryQueue => match f.next_retry {
                Some((topic, delay)) => {
                    ctx.set_header(rec.id, Header::RetryDue, ctx.now().saturating_add(delay));
                    ctx.metric_add("retry_topic_writes", 1.0);
                    self.write(ctx, rec, topic);
                }
                None => self.give_up(ctx, rec),
            },
            OnFailure::Drop => {
                ctx.discarded(rec.id, LossCause::SkippedAfterFailure);
                ctx.metric_add("skipped_failures", 1.0);
            }
            OnFailure::RetryInPlace | OnFailure::DlqOnly => self.give_up(ctx, rec),
        }
        self.skip_current(ctx);
    }

    /// Retries are over for `rec`: to the dead-letter topic, or skipped.
    fn give_up(&mut self, ctx: &mut Ctx<LogConsumerTimer>, rec: Record) {
        match self.s.failures.dead_letter {
            Some(topic) => {
                ctx.set_header(rec.id, Header::DeadLetteredAt, ctx.now());
                ctx.metric_add("dead_letter_writes", 1.0);
                self.write(ctx, rec, topic);
            }
            None => {
                ctx.discarded(rec.id, LossCause::SkippedAfterFailure);
                ctx.metric_add("skipped_failures", 1.0);
            }
        }
    }

    /// Writes `rec` (same id) to `topic` of the member's broker, to the
    /// partition its key hashes to.
    fn write(&mut self, ctx: &mut Ctx<LogConsumerTimer>, rec: Record, (topic, partitions): TopicRef) {
        let partition = crate::broker::key_partition(rec.key(), partitions as usize) as u32;
        let recs = Box::new([rec]);
        let msg = LogMsg::Produce { recs, acks: Acks::None, attempt: 1, epoch: 0, seq: 0, topic, partition };
        ctx.send(super::cluster::output_node(self.cluster.as_deref(), self.s.broker, topic, partition), msg);
    }

    /// The record in progress is done with, its effect not applied: its
    /// offset is due for commit, and the next record starts.
    fn skip_current(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        self.in_progress = false;
        self.f.attempt = 0;
        if let Some(b) = self.batches.front_mut() {
            let offset = b.offset + b.next as u64;
            b.next += 1;
            if let Some(a) = self.assigned.get_mut(&b.partition) {
                a.processed = offset + 1;
                a.processed_epoch = Some(b.epoch);
            }
        }
        self.next(ctx);
    }

    /// The attempt at the record in progress succeeded: the next record's
    /// attempts are counted afresh.
    pub(super) fn attempt_succeeded(&mut self) {
        self.f.attempt = 0;
    }

    /// A retry's wait is over: the record in progress is tried again.
    pub(super) fn retry_now(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if !self.in_progress || self.current().is_none() {
            return;
        }
        self.in_progress = false;
        self.start_current(ctx);
    }

    /// Before starting a record: how long until it is due, when the
    /// member reads a retry topic and the record is not due yet.
    pub(super) fn not_due_for(&self, ctx: &mut Ctx<LogConsumerTimer>, id: MsgId) -> Option<Duration> {
        if !self.s.failures.reads_retry_topic {
            return None;
        }
        let due = ctx.header(id, Header::RetryDue)?;
        (due > ctx.now()).then(|| due - ctx.now())
    }

    /// A replaying member's record: copied to the replay topic once, or
    /// the pass ends here. Returns true when it handled the record.
    pub(super) fn replay_current(&mut self, ctx: &mut Ctx<LogConsumerTimer>) -> bool {
        let Some((to, began)) = self.s.failures.replay else { return false };
        let Some((rec, _)) = self.current() else { return true };
        let partition = self.batches.front().map_or(0, |b| b.partition);
        let later = ctx.header(rec.id, Header::DeadLetteredAt).is_some_and(|t| t > began);
        if later || !self.f.replayed.insert(rec.id) {
            // Dead-lettered after the replay began, or replayed before and
            // dead-lettered again: the pass is over; it and what follows
            // stay in the dead-letter topic. Other partitions go on.
            self.f.replay_done.insert(partition);
            self.in_progress = false;
            ctx.cancel_timer(LogConsumerTimer::PollTimeout);
            let (done, rest): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.batches).into_iter().partition(|b| b.partition == partition);
            self.batches = rest.into();
            for b in done {
                let Some(a) = self.assigned.get_mut(&b.partition) else { continue };
                a.busy = false;
                let at = (a.processed, a.processed_epoch);
                self.commit(ctx, b.partition, at);
            }
            ctx.metric_add("replay_stopped", 1.0);
            self.next(ctx);
            return true;
        }
        ctx.metric_add("replayed", 1.0);
        self.write(ctx, rec, to);
        self.skip_current(ctx);
        true
    }

    /// Whether a replaying member may not fetch `partition` yet (before
    /// its replay time) or any more (its pass over it is over).
    pub(super) fn replay_holds(&self, now: Time, partition: u32) -> bool {
        self.s.failures.replay.is_some_and(|(_, at)| now < at) || self.f.replay_done.contains(&partition)
    }

    /// When a replaying member's replay begins, if it is still ahead.
    pub(super) fn replay_wait(&self, now: Time) -> Option<Duration> {
        self.s.failures.replay.and_then(|(_, at)| (at > now).then(|| at - now))
    }

    /// An `errors` fault on this member: its dependency fails a share of
    /// the attempts while it is in force.
    pub(super) fn errors_fault(&mut self, fault: &NodeFault, begins: bool) {
        if let NodeFault::Errors { ppm } = *fault {
            if begins {
                self.f.errors.push(ppm);
            } else if let Some(i) = self.f.errors.iter().position(|&m| m == ppm) {
                self.f.errors.remove(i);
            }
        }
    }

    /// A crash forgets the attempts counted (and the replay's memory).
    pub(super) fn crash_failures(&mut self) {
        self.f.attempt = 0;
        self.f.replayed.clear();
        self.f.replay_done.clear();
    }
}

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;
