//! The event trace: an optional, bounded record of everything that happened
//! in a run (sends, arrivals, drops, timers, faults, phase changes), for
//! space-time diagrams, debugging and determinism checks. Recording is off
//! unless asked for, and costs nothing then: callers pass a closure that is
//! only called when recording.
//!
//! Independently of the trace, every run folds every dispatched event into a
//! 64-bit digest, so two runs can be compared cheaply for identical histories.

pub use crate::digest::Digest;
use crate::message::{MsgId, NodeId};
use crate::time::Time;

/// Why the network dropped a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss (or a loss spike).
    Loss,
    /// A partition separated sender and receiver.
    Partition,
    /// The receiver was crashed when the message arrived.
    Crashed,
}

impl DropReason {
    /// The name used in trace files.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::Crashed => "crashed",
        }
    }
}

/// A message on the wire, as traces show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wire {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Message kind ("publish", "deliver", ...).
    pub msg: &'static str,
    /// The produced message it carries, if any.
    pub id: Option<MsgId>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceWhat {
    /// A message left its sender, to arrive after `.1` nanoseconds.
    Send(Wire, u64),
    /// The network made an extra copy.
    Duplicate(Wire),
    /// A message reached its receiver.
    Arrive(Wire),
    /// A message was dropped.
    Drop(Wire, DropReason),
    /// A node's timer fired: (node, the timer as its kind names it).
    Timer(NodeId, String),
    /// A fault began, ended, or was skipped.
    Fault(String, FaultEvent),
    /// A node crashed (false) or restarted (true).
    Crash(NodeId, bool),
    /// The run moved to another phase ("run", "drain", "end").
    Phase(&'static str),
}

/// What happened to a scheduled fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEvent {
    /// It came into force.
    Begins,
    /// It was lifted (at its end time, or healed by the drain).
    Ends,
    /// It never happened: the run phase was over before its start.
    Skipped,
}

impl FaultEvent {
    /// The name used in summaries and traces.
    pub fn name(self) -> &'static str {
        match self {
            FaultEvent::Begins => "begins",
            FaultEvent::Ends => "ends",
            FaultEvent::Skipped => "skipped",
        }
    }
}

/// One trace line.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    /// When, in simulated nanoseconds.
    pub time: Time,
    /// What.
    pub what: TraceWhat,
}

/// A bounded trace recorder, and the run's digest (always kept).
#[derive(Debug, Default)]
pub struct Trace {
    /// Every dispatched event and every drop, folded: equal digests, equal histories.
    pub digest: Digest,
    enabled: bool,
    limit: usize,
    events: Vec<TraceEvent>,
    truncated: bool,
}

impl Trace {
    /// A recorder that keeps at most `limit` events when `enabled`.
    pub fn new(enabled: bool, limit: usize) -> Self {
        Trace { digest: Digest::default(), enabled, limit, events: Vec::new(), truncated: false }
    }

    /// Records the event `what()` at `time`, if recording.
    #[inline]
    pub fn record(&mut self, time: Time, what: impl FnOnce() -> TraceWhat) {
        if self.enabled {
            if self.events.len() < self.limit {
                self.events.push(TraceEvent { time, what: what() });
            } else {
                self.truncated = true;
            }
        }
    }

    /// True if events were dropped because the limit was reached.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The recorded events.
    pub fn into_events(self) -> Vec<TraceEvent> {
        self.events
    }
}
