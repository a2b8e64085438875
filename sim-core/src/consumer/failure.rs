//! How a queue consumer's processing attempt fails, and what it then does
//! with the delivery (its `on_failure` policy).
//!
//! An attempt fails:
//! - permanently when the message is poison (`poison_probability`, a
//!   property of the message) or written in a schema version this consumer
//!   cannot read yet (see [`crate::contract`]). A permanent failure is not
//!   retried: it is rejected (dead-lettered) at once, or dropped under
//!   `on_failure = "drop"`;
//! - transiently with `failure_probability`, drawn afresh each attempt,
//!   and, while an `errors` fault is in force on the consumer (its
//!   downstream dependency failing), with the fault's probability, drawn
//!   from a stream of the consumer's own (so a fault shifts no other draw).
//!
//! A transient failure is nacked with requeue (`"requeue"`), rejected
//! (`"reject"`: dead-lettered), dropped (`"drop"`: acked without its
//! effect, lost with cause `dropped_on_failure`), or retried in place
//! (`"retry"`): the consumer processes the same delivery again after
//! `retry_backoff_ms`, up to `retry_attempts` attempts in all, holding its
//! slot all the while (head-of-line blocking: deliveries behind it wait);
//! when the attempts run out it rejects the delivery (dead-lettered).

use super::{ConsumerSpec, OnFailure};
use crate::contract::{Read, ReaderSchema};
use crate::engine::Ctx;
use crate::message::MsgId;
use crate::net::NodeFault;
use crate::rng::{chance, SimRng};
use crate::time::{ms_to_ns, Duration};
use crate::units::Millis;

/// Attempts in all of a retry in place, unless `retry_attempts` says.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// The pause before each retry in place, unless `retry_backoff_ms` says.
pub const DEFAULT_RETRY_BACKOFF_MS: f64 = 1000.0;

/// How one processing attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// It succeeded (the effect may be applied).
    Ok,
    /// It failed this time (error kind to report).
    Transient(&'static str),
    /// It fails every time (error kind to report).
    Permanent(&'static str),
}

/// What the consumer does with a delivery whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nack with requeue: the broker delivers it again.
    Requeue,
    /// Nack without requeue: the broker dead-letters it.
    Reject,
    /// Ack it without its effect: it is lost.
    Drop,
    /// Process it again in the same slot after this pause.
    RetryAfter(Duration),
}

/// A consumer's failure model and policy.
pub struct Failures {
    failure_probability: f64,
    poison_probability: f64,
    policy: OnFailure,
    attempts: u32,
    backoff: Duration,
    /// The probabilities (ppm) of the `errors` faults in force.
    errors: Vec<u32>,
    /// Draws the `errors` faults' failures (made at the first).
    errors_rng: Option<SimRng>,
    reader: Option<ReaderSchema>,
    /// Nothing configured can fail an attempt (no failure or poison
    /// probability, no schema): while no `errors` fault is in force, an
    /// attempt succeeds with no draw, and is not asked more (issue 17).
    never_fails: bool,
}

impl Failures {
    /// The failure model of `spec`.
    pub fn new(spec: &ConsumerSpec) -> Self {
        let reader = ReaderSchema::new(spec.schema_version, spec.schema_upgrade_at_ms);
        // As `chance` draws nothing for a probability of 0 or below.
        let never_fails = reader.is_none() && spec.poison_probability.0 <= 0.0 && spec.failure_probability.0 <= 0.0;
        Failures {
            failure_probability: spec.failure_probability.0,
            poison_probability: spec.poison_probability.0,
            policy: spec.on_failure,
            attempts: spec.retry_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS).max(1),
            backoff: ms_to_ns(spec.retry_backoff_ms.unwrap_or(Millis(DEFAULT_RETRY_BACKOFF_MS)).0),
            errors: Vec::new(),
            errors_rng: None,
            reader,
            never_fails,
        }
    }

    /// No attempt can fail now: [`Failures::attempt`] answers
    /// [`Attempt::Ok`] with no draw.
    #[inline]
    pub fn cannot_fail(&self) -> bool {
        self.never_fails && self.errors.is_empty()
    }

    /// Processes message `id` once: how did it go?
    #[inline]
    pub fn attempt<T: crate::engine::Timer>(&mut self, ctx: &mut Ctx<T>, id: MsgId) -> Attempt {
        if self.cannot_fail() {
            return Attempt::Ok;
        }
        self.attempt_drawn(ctx, id)
    }

    /// [`Failures::attempt`] when something configured can fail it.
    fn attempt_drawn<T: crate::engine::Timer>(&mut self, ctx: &mut Ctx<T>, id: MsgId) -> Attempt {
        match self.reader.map(|r| r.read(ctx, id)) {
            Some(Read::Cannot) => return Attempt::Permanent("schema-mismatch"),
            Some(Read::IgnoresNewFields) => ctx.metric_add("new_fields_ignored", 1.0),
            Some(Read::Reads) | None => {}
        }
        if self.poison_probability > 0.0 && ctx.message_draw(id, "poison") < self.poison_probability {
            return Attempt::Permanent("permanent-failure");
        }
        if chance(ctx.rng(), self.failure_probability) || self.dependency_fails(ctx) {
            return Attempt::Transient("transient-failure");
        }
        Attempt::Ok
    }

    /// Whether an `errors` fault in force fails this attempt.
    fn dependency_fails<T: crate::engine::Timer>(&mut self, ctx: &mut Ctx<T>) -> bool {
        if self.errors.is_empty() {
            return false;
        }
        let q = 1.0 - self.errors.iter().map(|&p| 1.0 - f64::from(p) / 1e6).product::<f64>();
        let rng = self.errors_rng.get_or_insert_with(|| crate::size::side_stream(ctx.rng(), "errors"));
        chance(rng, q)
    }

    /// What to do after a failed attempt, the `attempt`-th of this delivery.
    pub fn verdict(&self, failed: Attempt, attempt: u32) -> Verdict {
        match (failed, self.policy) {
            (Attempt::Ok, _) => unreachable!("a verdict is asked of a failed attempt only"),
            (_, OnFailure::Drop) => Verdict::Drop,
            (Attempt::Permanent(_), _) => Verdict::Reject,
            (Attempt::Transient(_), OnFailure::Requeue) => Verdict::Requeue,
            (Attempt::Transient(_), OnFailure::Reject) => Verdict::Reject,
            (Attempt::Transient(_), OnFailure::Retry) if attempt < self.attempts => Verdict::RetryAfter(self.backoff),
            (Attempt::Transient(_), OnFailure::Retry) => Verdict::Reject,
        }
    }

    /// An `errors` fault begins or ends on the consumer.
    pub fn on_fault(&mut self, fault: &NodeFault, begins: bool) {
        let NodeFault::Errors { ppm } = *fault else { return };
        let ppm = ppm.min(1_000_000);
        if begins {
            self.errors.push(ppm);
        } else if let Some(i) = self.errors.iter().position(|&p| p == ppm) {
            self.errors.remove(i);
        }
    }
}
