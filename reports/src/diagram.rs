//! Space-time (Lamport) diagrams: one vertical lane per node, time flowing
//! down, one arrow per message from its send to its arrival, as an SVG
//! file drawn by hand (no plotting crate).
//!
//! What it models: the wire as the trace saw it. Each send becomes an
//! arrow; the network's extra copies, a producer's retries (the same
//! message id sent again by the node that first sent it) and a broker's
//! redeliveries (the same message sent again by another node, to the same
//! receiver or to a new one after the first receiver crashed) are told
//! apart by style. A drop is a truncated arrow ending in a red cross where
//! it happened: at the send for random loss (and a partition in force at
//! the send), at the receiver for a partition or a crashed receiver at the
//! arrival. A message the ledger counts as lost gets exactly one cross
//! labelled with the ledger's cause: on its dropped arrow when the network
//! lost it, otherwise on the lane of the node that last held it (at that
//! node's next crash for a crash or a commit before processing, at its next
//! mark for a leader failover, an unclean election or a skipped offset,
//! else where it was last seen). Crashes hatch the lane until the restart,
//! fault windows shade a band across the lanes, processing steps are bars
//! on the lane and marks (leader elections) labelled ticks.
//!
//! What it leaves out, to stay readable and small: events outside the
//! window (`--from-ms`, `--to-ms`); produced messages beyond the first `N`
//! sent in the window, and messages that carry no id (fetches, commits,
//! heartbeats) beyond `N` spread over the drawn time (both counted in the
//! caption); lanes beyond [`MAX_LANES`] (the busiest are kept); timers. A
//! message that carries a batch (a log's `records`) is shown by its first
//! record's id only, so a later record of the batch is seen arriving only
//! through its processing bar. A redelivery to another receiver with no
//! crash of the first between (a consumer timeout, a nack) is drawn as a
//! first send: the trace does not tell it from fan-out. The collector ([`Collector`]) keeps only
//! what it may draw, so a long run's diagram costs little memory.

mod svg;

pub use svg::{render, Info};

use sim_core::engine::quiet_mark;
use sim_core::message::{MsgId, NodeId};
use sim_core::time::Time;
use sim_core::trace::{DropReason, FaultEvent, TraceEvent, TraceSink, TraceWhat, Wire};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most lanes drawn; a run with more nodes shows the busiest.
pub const MAX_LANES: usize = 12;
/// Most messages without an id the collector keeps, before the drawing
/// picks at most `max_messages` of them spread over the drawn time.
pub const MAX_IDLESS_KEPT: usize = 20_000;
/// Most crashes, faults, phases and marks kept (each).
pub const MAX_NOTES: usize = 10_000;

/// What part of a run to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First time drawn, in ns.
    pub from: Time,
    /// Last send time drawn, in ns (`None`: the end of the run; the drawing
    /// then ends with the last event of the messages shown).
    pub to: Option<Time>,
    /// Most produced message ids shown (and messages without an id).
    pub max_messages: usize,
}

impl Window {
    fn contains(&self, t: Time) -> bool {
        t >= self.from && self.to.is_none_or(|to| t <= to)
    }
}

/// How an arrow is drawn: why this copy of a message exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A first send.
    Original,
    /// An extra copy the network made.
    NetworkCopy,
    /// The same message sent again by the node that first sent it.
    Retry,
    /// The same message sent again by another node (a broker).
    Redelivery,
}

impl Style {
    /// The name used as the arrow's class in the SVG.
    pub fn name(self) -> &'static str {
        match self {
            Style::Original => "original",
            Style::NetworkCopy => "network-copy",
            Style::Retry => "retry",
            Style::Redelivery => "redelivery",
        }
    }
}

/// What became of one copy on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still on the wire when the trace ended.
    OnWire,
    /// Reached its receiver at this time.
    Arrived(Time),
    /// Dropped as it was sent.
    DroppedAtSend(DropReason),
    /// Dropped at its receiver at this time.
    DroppedAtArrival(Time, DropReason),
}

/// One copy of one message on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrow {
    /// Who sent it to whom, what it is.
    pub wire: Wire,
    /// When it left.
    pub sent: Time,
    /// When it is due (unknown for a network copy: the trace does not
    /// give a copy's latency).
    pub due: Option<Time>,
    /// What became of it.
    pub fate: Fate,
    /// Why it exists.
    pub style: Style,
}

impl Arrow {
    /// When it arrived or was dropped at its receiver, if it got there.
    pub fn end(&self) -> Option<Time> {
        match self.fate {
            Fate::Arrived(t) | Fate::DroppedAtArrival(t, _) => Some(t),
            Fate::DroppedAtSend(_) => Some(self.sent),
            Fate::OnWire => None,
        }
    }
}

/// A processing step: a node started on a message, and applied its
/// effect (`end`) or never did (a crash came first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Where.
    pub node: NodeId,
    /// Which message.
    pub id: MsgId,
    /// Started.
    pub start: Time,
    /// Applied, if it was.
    pub end: Option<Time>,
}

/// The part of a run's trace a diagram draws, gathered as the run goes.
#[derive(Debug, Default)]
pub struct Collected {
    /// The window asked for.
    pub window: Option<Window>,
    /// The arrows of the sampled messages (with an id).
    pub arrows: Vec<Arrow>,
    /// The arrows of messages without an id (at most [`MAX_IDLESS_KEPT`]).
    pub idless: Vec<Arrow>,
    /// Messages without an id sent in the window but not kept, by kind.
    pub idless_not_kept: BTreeMap<&'static str, u64>,
    /// The sampled message ids, in the order first sent.
    pub sampled: Vec<MsgId>,
    /// How many distinct message ids were sent in the window.
    pub ids_in_window: u64,
    /// Processing steps of the sampled messages, in the window.
    pub steps: Vec<Step>,
    /// Marks in the window: (time, node, what).
    pub marks: Vec<(Time, NodeId, &'static str)>,
    /// Every crash (false) and restart (true) of the run.
    pub crashes: Vec<(Time, NodeId, bool)>,
    /// Every fault event of the run.
    pub faults: Vec<(Time, String, FaultEvent)>,
    /// Phase changes ("run", "drain", "end").
    pub phases: Vec<(Time, &'static str)>,
    sampled_set: BTreeSet<MsgId>,
    /// One bit per message id: sent in the window.
    seen: Vec<u64>,
    /// Arrows on the wire, by (from, to, kind, id): indexes into `arrows`
    /// (id) or `idless` (no id).
    pending: BTreeMap<WireKey, Vec<usize>>,
    /// The node that first sent each sampled id.
    first_sender: BTreeMap<MsgId, NodeId>,
    /// Earlier sends of each sampled (kind, id): (from, to, time).
    history: BTreeMap<(&'static str, MsgId), Vec<EarlierSend>>,
    /// Steps started and not yet applied, by (node, id).
    open_steps: BTreeMap<(NodeId, MsgId), usize>,
}

/// A wire's identity: (from, to, kind, id).
type WireKey = (NodeId, NodeId, &'static str, Option<MsgId>);

/// An earlier send of a message: (from, to, when).
type EarlierSend = (NodeId, NodeId, Time);

/// A reply, never a retry or a redelivery of the message it answers.
fn is_reply(kind: &str) -> bool {
    kind.ends_with("-ack") || kind.contains("response") || kind == "subscribed" || kind == "cancelled"
}

impl Collected {
    fn new(window: Window) -> Self {
        Collected { window: Some(window), ..Collected::default() }
    }

    fn window(&self) -> Window {
        self.window.expect("made with a window")
    }

    /// Takes one trace event.
    pub fn event(&mut self, e: &TraceEvent) {
        let (t, inside) = (e.time, self.window().contains(e.time));
        match &e.what {
            TraceWhat::Send(w, delay) if inside => self.start(w, t, Some(t.saturating_add(*delay)), Fate::OnWire),
            TraceWhat::Duplicate(w) if inside => self.start(w, t, None, Fate::OnWire),
            TraceWhat::Arrive(w) => self.land(w, t, None),
            TraceWhat::Drop(w, why) => {
                let at_send = *why == DropReason::Loss || (*why == DropReason::Partition && !self.due(w, t));
                if !at_send {
                    self.land(w, t, Some(*why));
                } else if inside {
                    self.start(w, t, None, Fate::DroppedAtSend(*why));
                }
            }
            TraceWhat::Process(node, id, applied) if inside && self.sampled_set.contains(id) => {
                self.step(*node, *id, t, *applied)
            }
            TraceWhat::Mark(node, what) if inside && self.marks.len() < MAX_NOTES && !quiet_mark(what) => {
                self.marks.push((t, *node, what))
            }
            TraceWhat::Crash(node, up) if self.crashes.len() < MAX_NOTES => self.crashes.push((t, *node, *up)),
            TraceWhat::Fault(label, ev) if self.faults.len() < MAX_NOTES => self.faults.push((t, label.clone(), *ev)),
            TraceWhat::Phase(p) if self.phases.len() < MAX_NOTES => self.phases.push((t, p)),
            _ => {}
        }
    }

    /// Whether a copy of `w` is due to arrive at `t` (so a partition drop
    /// now is at its arrival, not at a new send).
    fn due(&self, w: &Wire, t: Time) -> bool {
        let list = self.pending.get(&(w.from, w.to, w.msg, w.id));
        let arrows = if w.id.is_some() { &self.arrows } else { &self.idless };
        list.is_some_and(|l| l.iter().any(|&i| arrows[i].due.is_none_or(|d| d == t)))
    }

    /// A copy of `w` leaves at `t` (a network copy when `due` is unknown
    /// and it is not dropped).
    fn start(&mut self, w: &Wire, t: Time, due: Option<Time>, fate: Fate) {
        let copy = due.is_none() && fate == Fate::OnWire;
        let Some(id) = w.id else {
            if self.idless.len() >= MAX_IDLESS_KEPT {
                *self.idless_not_kept.entry(w.msg).or_default() += 1;
                return;
            }
            let style = if copy { Style::NetworkCopy } else { Style::Original };
            self.push(w, Arrow { wire: *w, sent: t, due, fate, style });
            return;
        };
        self.count(id);
        if !self.sampled_set.contains(&id) {
            if self.sampled.len() >= self.window().max_messages {
                return;
            }
            self.sampled.push(id);
            self.sampled_set.insert(id);
        }
        let style = if copy { Style::NetworkCopy } else { self.classify(w, id, t) };
        self.push(w, Arrow { wire: *w, sent: t, due, fate, style });
    }

    fn push(&mut self, w: &Wire, arrow: Arrow) {
        let list = if w.id.is_some() { &mut self.arrows } else { &mut self.idless };
        if arrow.fate == Fate::OnWire {
            self.pending.entry((w.from, w.to, w.msg, w.id)).or_default().push(list.len());
        }
        list.push(arrow);
    }

    /// Counts `id` as sent in the window (once).
    fn count(&mut self, id: MsgId) {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) == 0 {
            self.seen[word] |= 1 << bit;
            self.ids_in_window += 1;
        }
    }

    /// Why this send of a sampled message exists.
    fn classify(&mut self, w: &Wire, id: MsgId, t: Time) -> Style {
        let producer = *self.first_sender.entry(id).or_insert(w.from);
        let earlier = self.history.entry((w.msg, id)).or_default();
        let crashes = &self.crashes;
        let crashed_since = |node: NodeId, at: Time| crashes.iter().any(|&(c, n, up)| n == node && !up && c >= at);
        let style = if w.from == producer {
            if earlier.iter().any(|&(f, _, _)| f == w.from) {
                Style::Retry
            } else {
                Style::Original
            }
        } else if !is_reply(w.msg)
            && earlier.iter().any(|&(f, to, at)| f == w.from && (to == w.to || crashed_since(to, at)))
        {
            Style::Redelivery
        } else {
            Style::Original
        };
        earlier.push((w.from, w.to, t));
        style
    }

    /// A copy of `w` reaches its receiver at `t`, or is dropped there.
    fn land(&mut self, w: &Wire, t: Time, dropped: Option<DropReason>) {
        let key = (w.from, w.to, w.msg, w.id);
        let Some(list) = self.pending.get_mut(&key) else { return };
        let arrows = if w.id.is_some() { &mut self.arrows } else { &mut self.idless };
        let pos = list
            .iter()
            .position(|&i| arrows[i].due == Some(t))
            .or_else(|| list.iter().position(|&i| arrows[i].due.is_none()));
        let Some(pos) = pos else { return };
        let i = list.remove(pos);
        if list.is_empty() {
            self.pending.remove(&key);
        }
        arrows[i].fate = match dropped {
            Some(why) => Fate::DroppedAtArrival(t, why),
            None => Fate::Arrived(t),
        };
    }

    fn step(&mut self, node: NodeId, id: MsgId, t: Time, applied: bool) {
        if !applied {
            self.open_steps.insert((node, id), self.steps.len());
            self.steps.push(Step { node, id, start: t, end: None });
        } else if let Some(i) = self.open_steps.remove(&(node, id)) {
            self.steps[i].end = Some(t);
        }
    }

    /// Bytes held, about (for the run's memory budget).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let per_entry = 64;
        (self.arrows.capacity() + self.idless.capacity()) * size_of::<Arrow>()
            + self.steps.capacity() * size_of::<Step>()
            + self.seen.capacity() * 8
            + (self.marks.capacity() + self.crashes.capacity() + self.phases.capacity()) * 32
            + self.faults.iter().map(|f| f.1.capacity() + 48).sum::<usize>()
            + (self.sampled_set.len() + self.pending.len() + self.first_sender.len() + self.open_steps.len())
                * per_entry
            + self.history.values().map(|h| h.capacity() * 24 + per_entry).sum::<usize>()
    }
}

/// Gathers a diagram's events from a run: hand [`Collector::sink`] to
/// `Engine::stream_trace`, run, then [`Collector::take`] what it kept.
#[derive(Clone)]
pub struct Collector(Arc<Mutex<Collected>>);

impl Collector {
    /// A collector for `window`.
    pub fn new(window: Window) -> Self {
        Collector(Arc::new(Mutex::new(Collected::new(window))))
    }

    /// The trace sink that feeds it.
    pub fn sink(&self) -> Box<dyn TraceSink> {
        Box::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Collected> {
        // A panic while holding the lock would have ended the run already.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What it kept.
    pub fn take(&self) -> Collected {
        std::mem::take(&mut *self.lock())
    }
}

impl TraceSink for Collector {
    fn event(&mut self, event: &TraceEvent) {
        self.lock().event(event);
    }

    fn memory_bytes(&self) -> usize {
        self.lock().memory_bytes()
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
