//! Sagas: a workflow of local steps (order, payment, shipping), each done
//! by its own participant, where a step that fails makes the steps already
//! done undo themselves with **compensations** (refund the payment,
//! release the stock, cancel the order), so a workflow ends either
//! completed or fully compensated, never half-done.
//!
//! Two kinds: a `saga` (`[sagas.NAME]`, [`Saga`]) is the workflow source
//! and, as the style asks, its coordinator; a `saga-step`
//! (`[participants.NAME]`, [`Step`]) is one participant. The same nodes run
//! three styles:
//!
//! - **orchestration**: the saga calls each step in turn (`RpcMsg::Call`,
//!   answered by `Reply`), with a timeout per attempt and retries; a step
//!   that refuses (`Reply` 500) or never answers after the retries makes it
//!   call the compensations of the steps done, in reverse, retried until
//!   each succeeds. The workflow's state is in one place: the coordinator.
//! - **choreography**: the saga only starts the workflow with an event to
//!   the first step; each step reacts to the previous step's event and
//!   emits its own to the next (`RpcMsg::Done` with status 200, resent
//!   until the receiver's `DoneAck`); a step that fails emits a failure
//!   event (`Done` with status 500) back to the previous step, which
//!   compensates itself and passes it on. The last step's success, or the
//!   first step's compensation, reaches the saga as the workflow's end.
//!   The state is spread over every participant.
//! - **hybrid**: the saga orchestrates the first steps and hands the rest
//!   (from `subflow_from`) to a choreographed sub-flow, whose end event
//!   tells it the sub-flow completed or compensated itself (then it
//!   compensates its own steps).
//!
//! A call says what it asks in the low bit of its number (`call`): even to
//! do the step, odd to compensate it (see [`Action`]). An event's meaning
//! comes from its direction: 200 from upstream is "go", 500 from
//! downstream is "undo".
//!
//! Idempotence: a participant keeps, durably (its database), what it did
//! for each workflow: done, refused, compensated. A repeated request gets
//! the recorded answer, so a retry after a lost reply never refunds twice;
//! a compensation that arrives before its step (the call was lost, or
//! given up) leaves a tombstone, so the late step is refused.
//!
//! Ledger: each workflow is one produced message (fire-and-forget: the
//! workflow exists once started); it applies its effect once, in the saga's
//! domain (`workflows` by default), when it ENDS, completed or fully
//! compensated, so the domain's latency is the end-to-end time and its
//! `lost`/`in_flight` the workflows left stuck.
//!
//! Left out: a broker between choreographed steps (events go point to
//! point, with resends until acked: the at-least-once delivery a broker
//! with acks would give, without its queues), concurrency control between
//! workflows (semantic locks, pessimistic views), pivot and retriable
//! steps (every step is compensatable), and timeouts inside a
//! choreographed flow (a step that never answers holds its workflow until
//! it does, as an event-driven flow does without a watchdog).

mod coordinator;
mod kind;
mod step;

pub use coordinator::{Saga, SagaTimer};
pub use kind::{SagaKind, SagaSpec, StepKind, StepSpec, Style};
pub use step::{Step, StepTimer};

#[cfg(test)]
mod tests;

/// What a call asks of a participant, carried in the low bit of its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Do the step (reserve, charge, ship).
    Do,
    /// Undo it (release, refund, cancel).
    Compensate,
}

impl Action {
    /// The call number of attempt `seq` asking this.
    pub fn call(self, seq: u64) -> u64 {
        seq << 1 | u64::from(self == Action::Compensate)
    }

    /// What call number `call` asks.
    pub fn of(call: u64) -> Action {
        if call & 1 == 1 {
            Action::Compensate
        } else {
            Action::Do
        }
    }
}
