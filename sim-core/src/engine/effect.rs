//! Effects: what a component's handler asks the engine to do, as data.
//! A handler never touches the queue, the network, the ledger or the
//! metrics; it emits effects through its [`super::Ctx`], and the engine
//! applies them, in the order they were emitted, once the handler returns.
//! In a unit test nobody applies them: the test reads them.

use crate::ledger::{DupCause, LossCause};
use crate::message::{Msg, MsgId, NodeId};
pub use crate::metrics::Timing;
use crate::time::Duration;

/// One thing a handler asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `msg` to `to` over the network (which may lose, duplicate or
    /// delay it).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// Fire the timer whose compact form is `timer` after `delay`.
    SetTimer {
        /// How long from now.
        delay: Duration,
        /// The timer's word (see [`super::Timer`]).
        timer: u64,
        /// A background timer is not work: a periodic one (a heartbeat)
        /// must not keep a drained run from ending.
        background: bool,
    },
    /// Cancel every pending timer of this node equal to `timer`.
    CancelTimer {
        /// The timer's word.
        timer: u64,
    },
    /// A fact for the ledger.
    Fact(Fact),
    /// A figure for the metrics.
    Metric(Metric),
    /// Stop node `.0` (as a crash: its volatile state is lost), or start it
    /// again when it is down (an autoscaler adding or removing a worker).
    Node(NodeId, bool),
}

/// Facts a component reports to the ledger. The ledger judges loss and
/// duplication from these and from what it sees on the wire; a component
/// never counts them itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// This node produced message `id` with `key`; `fire_and_forget` means
    /// it considers it sent at once.
    Produced {
        /// The id the context allocated.
        id: MsgId,
        /// Its key.
        key: u64,
        /// Considered sent at once.
        fire_and_forget: bool,
    },
    /// This producer now considers `id` sent (it accepted the broker's ack).
    Confirmed(MsgId),
    /// This node starts processing `id`.
    Started(MsgId),
    /// This node applied the effect of `id`, in its effect domain.
    Applied(MsgId),
    /// This producer has produced all it was asked to.
    ProducerDone,
    /// A fact about state, for the state observer ([`crate::observer`]).
    State(crate::observer::StateFact),
    /// A notable moment at this node, as its kind names it (a leader
    /// election...): not a verdict; plots, diagrams and traces show it,
    /// except the [`QUIET_MARKS`].
    Mark(&'static str),
    /// This node let message `id` go for `cause` (dropped it: a full queue,
    /// a TTL, a truncation...), or left it unprotected (committed its offset
    /// before processing it). Not a verdict: if the message ends lost, the
    /// ledger names this as why, unless something later explains it.
    Discarded {
        /// The message.
        id: MsgId,
        /// Why.
        cause: LossCause,
        /// When it was dropped for one consumer's effect domain only (one
        /// subscription's queue), a consumer of that domain.
        reader: Option<NodeId>,
        /// When it was dropped for one effect domain only, that domain, if
        /// the node knows it (a log broker knows its groups' domains).
        domain: Option<crate::ledger::DomainId>,
    },
    /// This node put message `id` into a dead-letter queue (a queue or
    /// topic that holds what could not be processed, for a person or a
    /// replay): not a retry queue's hop. The ledger keeps the set.
    DeadLettered(MsgId),
    /// This node sent or delivered another copy of message `id` because of
    /// `cause` (a retry, a redelivery): if its effect is applied again, the
    /// ledger names this as why.
    Resent {
        /// The message.
        id: MsgId,
        /// Why.
        cause: DupCause,
    },
}

/// Figures for the run's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Add to a named figure.
    Add(&'static str, f64),
    /// Set a named figure (the last value is reported).
    Set(&'static str, f64),
    /// Raise a named figure to at least this.
    Max(&'static str, f64),
    /// Count an error of this kind.
    Error(&'static str),
    /// This node's queue depth (messages waiting).
    QueueDepth(u64),
    /// One measured duration of a user-facing kind, in ns.
    Timing(Timing, u64),
}

/// Marks of protocol moments that are frequent or routine (an ISR change,
/// a rebalance, a transaction commit, a candidacy): kept in a run's marks
/// and its trace, for the fault search to aim at (`asyncsim check
/// --search guided`), but not drawn on plots or space-time diagrams, where
/// they would bury the elections and failovers.
pub const QUIET_MARKS: [&str; 7] = [
    "isr shrunk",
    "isr expanded",
    "rebalance began",
    "rebalance completed",
    "transaction committed",
    "election started",
    "controller election started",
];

/// Whether mark `what` is one of the [`QUIET_MARKS`].
pub fn quiet_mark(what: &str) -> bool {
    QUIET_MARKS.contains(&what)
}
