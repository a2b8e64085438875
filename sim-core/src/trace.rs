//! The event trace: an optional, bounded record of everything that happened
//! in a run (sends, arrivals, drops, timers, faults, phase changes), for
//! space-time diagrams, debugging and determinism checks. Recording is off
//! unless asked for, and costs nothing then: callers pass a closure that is
//! only called when recording. A recorded trace is either kept in memory
//! (for tests and `asyncsim check`) or streamed, event by event, to a
//! [`TraceSink`] the caller supplies (the CLI's writes a CSV file): the
//! library itself does no file I/O.
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
    /// A node started processing a produced message (`.2` false), or
    /// applied its effect (`.2` true): a processing step runs between.
    Process(NodeId, MsgId, bool),
    /// A node marked a notable moment of its own (a leader election, say):
    /// what its kind calls it.
    Mark(NodeId, &'static str),
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

/// Where a streamed trace goes: every recorded event, in order, as it is
/// recorded. The caller supplies it (a buffered file writer, say) and gets
/// it back in [`crate::engine::RunOutput::trace_sink`] to finish it.
pub trait TraceSink: Send {
    /// Takes one event. A sink that fails (a full disk) keeps the first
    /// error and reports it from [`TraceSink::finish`].
    fn event(&mut self, event: &TraceEvent);
    /// Bytes the sink holds in memory (its buffer), counted in the run's
    /// memory budget.
    fn memory_bytes(&self) -> usize;
    /// True when the sink left events out because of a bound of its own
    /// (a file's event limit); [`Trace::truncated`] reports it with the
    /// recorder's own limit.
    fn truncated(&self) -> bool {
        false
    }
    /// Ends the trace after the run: flushes, and publishes what was
    /// written (or reports the first error).
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// A bounded trace recorder, and the run's digest (always kept).
#[derive(Default)]
pub struct Trace {
    /// Every dispatched event and every drop, folded: equal digests, equal histories.
    pub digest: Digest,
    enabled: bool,
    limit: usize,
    /// Events recorded so far (kept or streamed).
    recorded: usize,
    /// The kept events, when not streaming.
    events: Vec<TraceEvent>,
    /// Heap bytes the kept events own beyond the vector (timer and fault names).
    heap_bytes: usize,
    /// Where events go instead of `events`, when streaming.
    sink: Option<Box<dyn TraceSink>>,
    truncated: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("digest", &self.digest)
            .field("enabled", &self.enabled)
            .field("limit", &self.limit)
            .field("recorded", &self.recorded)
            .field("streaming", &self.sink.is_some())
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl Trace {
    /// A recorder that keeps at most `limit` events when `enabled`.
    pub fn new(enabled: bool, limit: usize) -> Self {
        Trace { enabled, limit, ..Trace::default() }
    }

    /// Sends every event recorded from now on to `sink` instead of keeping it.
    pub fn stream_to(&mut self, sink: Box<dyn TraceSink>) {
        self.sink = Some(sink);
    }

    /// Whether it records events.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records the event `what()` at `time`, if recording.
    #[inline]
    pub fn record(&mut self, time: Time, what: impl FnOnce() -> TraceWhat) {
        if self.enabled {
            if self.recorded < self.limit {
                self.recorded += 1;
                self.keep(TraceEvent { time, what: what() });
            } else {
                self.truncated = true;
            }
        }
    }

    fn keep(&mut self, event: TraceEvent) {
        match &mut self.sink {
            Some(sink) => sink.event(&event),
            None => {
                self.heap_bytes += match &event.what {
                    TraceWhat::Timer(_, s) | TraceWhat::Fault(s, _) => s.capacity(),
                    _ => 0,
                };
                self.events.push(event);
            }
        }
    }

    /// True if events were dropped because the limit was reached (this
    /// recorder's, or the streaming sink's own).
    pub fn truncated(&self) -> bool {
        self.truncated || self.sink.as_ref().is_some_and(|s| s.truncated())
    }

    /// Bytes the trace holds in memory: the kept events (in allocated
    /// capacity, with the names they own), or a streaming sink's buffer.
    pub fn memory_bytes(&self) -> usize {
        let kept = self.events.capacity() * std::mem::size_of::<TraceEvent>() + self.heap_bytes;
        kept + self.sink.as_ref().map_or(0, |s| s.memory_bytes())
    }

    /// The kept events (none when streaming).
    pub fn into_events(self) -> Vec<TraceEvent> {
        self.events
    }

    /// The kept events and the sink, if streaming.
    pub fn into_parts(self) -> (Vec<TraceEvent>, Option<Box<dyn TraceSink>>) {
        (self.events, self.sink)
    }
}
