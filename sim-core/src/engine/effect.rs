//! Effects: what a component's handler asks the engine to do, as data.
//! A handler never touches the queue, the network, the ledger or the
//! metrics; it emits effects through its [`super::Ctx`], and the engine
//! applies them, in the order they were emitted, once the handler returns.
//! In a unit test nobody applies them: the test reads them.

use crate::message::{Msg, MsgId, NodeId};
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
}
