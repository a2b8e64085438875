//! A run's trace for Perfetto (ui.perfetto.dev) and `chrome://tracing`, in
//! the Chrome trace-event JSON format (the JSON object form:
//! `{"traceEvents": [...], "otherData": {...}}`), streamed to disk as the
//! run goes.
//!
//! What it models, all in one process (`pid` 1, named `asyncsim VARIANT`):
//! - **one track per node** (`tid` = node id + 1, named after the node):
//!   each message sent is a zero-length slice there (`send KIND #ID`), each
//!   arrival one on the receiver's track (`recv KIND #ID`), and a **flow
//!   arrow** (flow events `s`, then `f` with `"bp":"e"`, which bind to the
//!   slice or instant just written on their track) joins the two. A copy
//!   the network made (`duplicate KIND #ID`) has its own arrow; a message
//!   dropped on arrival (a partition, a crashed receiver) ends its arrow at
//!   a `drop` instant on the receiver's track, with the reason; one lost
//!   at sending (random loss, a partition) is a `drop` instant on the
//!   sender's track. Crashes, restarts and the marks components make
//!   (leader elections, partitions offline) are instants on the node's
//!   track; fault begins/ends and phase changes are process instants, and
//!   each fault's window is an async slice (`b`/`e`).
//! - **a slice per processing step**, from the start of a message's
//!   processing at a node to the application of its effect there. A node
//!   may process several messages at once, and Chrome slices on one track
//!   must nest, so steps go on the node's step lanes (tracks named
//!   `NAME steps`, `NAME steps 2`, ...; `tid` = (lane + 1) × stride + node
//!   id + 1): a step takes the first lane free since its start. Steps are
//!   complete events (`X`) written when the effect is applied, so each lane
//!   stays in time order in the file.
//! - **counters** from the run's time series (queue depth, lag, and the
//!   gauges components report), appended after the run.
//!
//! Every track's events are in time order in the file. Times (`ts`, `dur`)
//! are microseconds of simulated time, with three decimals: simulated time
//! is integer nanoseconds, and nothing is rounded.
//!
//! Bounds: a window (`from_ns..=to_ns`) and a limit on the events kept in
//! it; what falls outside is counted, not written, and the counts, the
//! window and the limit are stated in `otherData` at the end of the file.
//! Memory: the write buffer, plus what it takes to join the two ends of a
//! message or a step (messages in flight, steps under way), all counted in
//! the run's memory budget.
//!
//! Perfetto piles zero-length slices and instants of one time on one
//! track on top of each other, and drops those past its nesting limit: past
//! [`MAX_AT_ONCE`] at one time on one node's track (a broker answering a
//! thousand requests at once), events are folded, not drawn, and their
//! arrows start or end at the last one drawn there (counted).
//!
//! Left out: timers (the CSV trace has them), the content of messages, a
//! processing step whose effect is never applied (it failed, was a
//! duplicate the receiver skipped, or a crash cut it short: its start is
//! forgotten), steps of a node beyond [`MAX_LANES`] at once (counted), and
//! the arrows of messages sent before the window (their arrivals are plain
//! slices). A message still in flight when the trace ends (at the end of
//! the window, the limit or the run) ends its arrow at an `in flight`
//! slice at that time on the receiver's track.

use crate::temp_path;
use sim_core::metrics::Sample;
use sim_core::trace::{DropReason, FaultEvent, TraceEvent, TraceSink, TraceWhat, Wire};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The write buffer.
const BUFFER_BYTES: usize = 64 * 1024;
/// Most step lanes a node gets; a step that finds them all busy is counted, not drawn.
pub const MAX_LANES: usize = 16;
/// Most processing steps remembered as under way; past it the oldest start is forgotten.
const MAX_OPEN_STEPS: usize = 65_536;
/// Most zero-length slices and instants drawn at one time on one node's
/// track. Perfetto piles those at one time on top of each other, and
/// drops slices past its nesting limit; past this, events are folded:
/// not drawn, their arrows bound to the last one drawn there.
pub const MAX_AT_ONCE: u32 = 100;

/// What a Perfetto trace keeps.
#[derive(Debug, Clone)]
pub struct PerfettoOptions {
    /// The variant, named in the process name and in `otherData`.
    pub variant: String,
    /// Events before this simulated time (ns) are left out.
    pub from_ns: u64,
    /// Events after this simulated time (ns) are left out (`u64::MAX`: none).
    pub to_ns: u64,
    /// Most events kept inside the window (timers, which are never drawn,
    /// do not count).
    pub limit: usize,
}

/// What a finished trace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerfettoStats {
    /// Events the run recorded, in the window or not.
    pub recorded: u64,
    /// Events kept: in the window, under the limit.
    pub kept: u64,
    /// Events left out because they fell outside the window.
    pub outside_window: u64,
    /// Events in the window left out because the limit was reached.
    pub over_limit: u64,
    /// Timers in the window (never drawn).
    pub timers: u64,
    /// Trace events (JSON objects) written into `traceEvents`.
    pub written: u64,
    /// Flow arrows started (each one is ended).
    pub flows: u64,
    /// Arrows ended at the trace's end because the message had not arrived.
    pub flows_in_flight: u64,
    /// Arrivals whose sending was not kept (before the window).
    pub arrivals_without_send: u64,
    /// Processing steps drawn.
    pub steps: u64,
    /// Steps not drawn: every lane of their node was busy.
    pub steps_not_drawn: u64,
    /// Slices and instants folded: past [`MAX_AT_ONCE`] at one time on one track.
    pub folded: u64,
    /// The limit cut the trace.
    pub truncated: bool,
}

/// A message on the wire, as a key to join its sending to its arrival.
type WireKey = (u32, u32, &'static str, Option<u64>);

fn key(w: &Wire) -> WireKey {
    (w.from, w.to, w.msg, w.id)
}

/// The trace being written.
struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    /// The JSON being formatted, reused.
    row: String,
    error: Option<std::io::Error>,
    published: bool,
    /// Node names, JSON-escaped (without quotes).
    names: Vec<String>,
    opts: PerfettoOptions,
    /// The step lanes' tid stride: a power of ten above every node's tid.
    stride: u64,
    /// Whether each node's track has been named yet.
    named: Vec<bool>,
    /// Per node, the time of the last zero-length event drawn on its track
    /// and how many were drawn then.
    at_once: Vec<(u64, u32)>,
    /// Per node, each step lane's end of its last step.
    lanes: BTreeMap<u32, Vec<u64>>,
    /// Steps under way: (node, message) to start time, and the same by start.
    open_steps: BTreeMap<(u32, u64), u64>,
    open_order: BTreeSet<(u64, u32, u64)>,
    /// Flows of messages on the wire, by (arrival time, wire).
    in_flight: BTreeMap<(u64, WireKey), VecDeque<u64>>,
    /// Flows of the network's copies (their arrival time is not traced), by wire.
    copies: BTreeMap<WireKey, VecDeque<u64>>,
    /// Async slices of faults under way, by label.
    faults: BTreeMap<String, VecDeque<u64>>,
    next_id: u64,
    /// Time of the last kept event.
    last: u64,
    /// Events past the window's end were seen.
    past_window: bool,
    stats: PerfettoStats,
}

/// A Perfetto trace being written: [`PerfettoTrace::sink`] goes to
/// `Engine::stream_trace` (alone, or in a [`crate::TraceTee`]);
/// [`PerfettoTrace::finish`] appends the counters and publishes the file.
pub struct PerfettoTrace {
    inner: Arc<Mutex<Writer>>,
}

/// The [`TraceSink`] side of a [`PerfettoTrace`]. Its own `finish` only
/// lets go: the file is published by [`PerfettoTrace::finish`], which also
/// needs the run's time series.
struct PerfettoSink(Arc<Mutex<Writer>>);

fn lock(m: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PerfettoTrace {
    /// Starts the trace that will be `path` (checked by the caller to lie
    /// in the output folder): creates its temporary file and writes the
    /// process name.
    pub fn create(path: &Path, names: &[String], opts: PerfettoOptions) -> std::io::Result<PerfettoTrace> {
        let tmp = temp_path(path);
        let out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&tmp)?);
        let mut stride = 10;
        while stride <= names.len() as u64 + 1 {
            stride *= 10;
        }
        let mut w = Writer {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            row: String::with_capacity(512),
            error: None,
            published: false,
            names: names.iter().map(|n| escaped(n)).collect(),
            stride,
            named: vec![false; names.len()],
            at_once: vec![(u64::MAX, 0); names.len()],
            lanes: BTreeMap::new(),
            open_steps: BTreeMap::new(),
            open_order: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            copies: BTreeMap::new(),
            faults: BTreeMap::new(),
            next_id: 1,
            last: opts.from_ns,
            past_window: false,
            stats: PerfettoStats::default(),
            opts,
        };
        w.row.push_str("{\"traceEvents\":[\n{\"ph\":\"M\",\"ts\":0,\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"asyncsim ");
        escape_into(&mut w.row, &w.opts.variant);
        w.row.push_str("\"}}");
        w.stats.written += 1;
        w.flush_row();
        match w.error.take() {
            Some(e) => Err(e),
            None => Ok(PerfettoTrace { inner: Arc::new(Mutex::new(w)) }),
        }
    }

    /// The sink the engine streams to.
    pub fn sink(&self) -> Box<dyn TraceSink> {
        Box::new(PerfettoSink(Arc::clone(&self.inner)))
    }

    /// Ends the trace after the run: ends the arrows and fault windows
    /// still open, appends the counters from `samples` (in the window),
    /// states what was kept in `otherData`, and renames the file into place.
    pub fn finish(self, samples: &[Sample]) -> std::io::Result<PerfettoStats> {
        let mut w = lock(&self.inner);
        w.close_open();
        w.counters(samples);
        w.publish()
    }
}

impl TraceSink for PerfettoSink {
    fn event(&mut self, event: &TraceEvent) {
        lock(&self.0).event(event);
    }

    fn memory_bytes(&self) -> usize {
        lock(&self.0).memory_bytes()
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Writer {
    /// A trace that was never published (the run failed, or a write did)
    /// leaves no temporary file behind.
    fn drop(&mut self) {
        if !self.published {
            drop(self.out.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Writer {
    fn event(&mut self, e: &TraceEvent) {
        self.stats.recorded += 1;
        if self.out.is_none() || self.error.is_some() {
            return;
        }
        let t = e.time;
        if t > self.opts.to_ns {
            self.past_window = true;
            self.stats.outside_window += 1;
            return;
        }
        if t < self.opts.from_ns {
            // Steps are followed before the window too: one applied inside
            // it may have begun before.
            match e.what {
                TraceWhat::Process(node, id, false) => self.remember_start(node, id, t),
                TraceWhat::Process(node, id, true) => {
                    self.forget_step(node, id);
                }
                TraceWhat::Crash(node, false) => self.forget_steps(node),
                _ => {}
            }
            self.stats.outside_window += 1;
            return;
        }
        if let TraceWhat::Process(node, id, false) = e.what {
            if !self.stats.truncated {
                self.remember_start(node, id, t);
            }
        }
        if matches!(e.what, TraceWhat::Timer(..)) {
            self.stats.timers += 1;
            return;
        }
        if self.stats.kept >= self.opts.limit as u64 {
            self.stats.truncated = true;
            self.stats.over_limit += 1;
            return;
        }
        self.stats.kept += 1;
        self.last = t;
        self.draw(t, &e.what);
        self.flush_row();
    }

    /// Writes the trace events of one kept event into the row.
    fn draw(&mut self, t: u64, what: &TraceWhat) {
        match what {
            TraceWhat::Send(w, delay) => self.send(t, w, "send", Some(t.saturating_add(*delay))),
            TraceWhat::Duplicate(w) => self.send(t, w, "duplicate", None),
            TraceWhat::Arrive(w) => self.arrive(t, w),
            TraceWhat::Drop(w, reason) => self.dropped(t, w, *reason),
            TraceWhat::Process(node, id, true) => self.applied(t, *node, *id),
            TraceWhat::Process(_, _, false) | TraceWhat::Timer(..) => {}
            TraceWhat::Crash(node, restarted) => {
                if !restarted {
                    self.forget_steps(*node);
                }
                if self.crowded(t, *node) {
                    return;
                }
                let tid = self.track(t, *node);
                self.open('i', t, Some(tid));
                self.row.push_str(",\"s\":\"t\",\"cat\":\"crash\",\"name\":");
                self.row.push_str(if *restarted { "\"restart\"}" } else { "\"crash\"}" });
            }
            TraceWhat::Mark(node, what) => {
                if self.crowded(t, *node) {
                    return;
                }
                let tid = self.track(t, *node);
                self.open('i', t, Some(tid));
                self.row.push_str(",\"s\":\"t\",\"cat\":\"mark\",\"name\":\"");
                escape_into(&mut self.row, what);
                self.row.push_str("\"}");
            }
            TraceWhat::Fault(label, event) => self.fault(t, label, *event),
            TraceWhat::Phase(p) => {
                self.open('i', t, None);
                self.row.push_str(",\"s\":\"p\",\"cat\":\"phase\",\"name\":\"phase: ");
                escape_into(&mut self.row, p);
                self.row.push_str("\"}");
            }
        }
    }

    /// A message (or the network's copy of one) leaves `w.from`: a slice
    /// there, and the start of its arrow, to end at `arrival` (unknown for
    /// a copy).
    fn send(&mut self, t: u64, w: &Wire, what: &str, arrival: Option<u64>) {
        let tid = self.track(t, w.from);
        if !self.crowded(t, w.from) {
            self.slice(t, tid, what, w);
            self.row.push_str(",\"args\":{\"to\":\"");
            self.row.push_str(name(&self.names, w.to));
            self.row.push('"');
            if let (Some(at), true) = (arrival, what == "send") {
                let _ = write!(self.row, ",\"delay_ms\":{}", Ms(at - t));
            }
            self.row.push_str("}}");
        }
        let flow = self.next_id;
        self.next_id += 1;
        self.stats.flows += 1;
        match arrival {
            Some(at) => self.in_flight.entry((at, key(w))).or_default().push_back(flow),
            None => self.copies.entry(key(w)).or_default().push_back(flow),
        }
        self.flow('s', t, tid, w.msg, flow);
    }

    /// The flow of the message `w` arriving now, if its sending was kept.
    fn take_flow(&mut self, t: u64, w: &Wire) -> Option<u64> {
        let k = (t, key(w));
        if let Some(q) = self.in_flight.get_mut(&k) {
            let flow = q.pop_front();
            if q.is_empty() {
                self.in_flight.remove(&k);
            }
            return flow;
        }
        let q = self.copies.get_mut(&k.1)?;
        let flow = q.pop_front();
        if q.is_empty() {
            self.copies.remove(&k.1);
        }
        flow
    }

    fn arrive(&mut self, t: u64, w: &Wire) {
        let tid = self.track(t, w.to);
        if !self.crowded(t, w.to) {
            self.slice(t, tid, "recv", w);
            self.row.push_str(",\"args\":{\"from\":\"");
            self.row.push_str(name(&self.names, w.from));
            self.row.push_str("\"}}");
        }
        match self.take_flow(t, w) {
            Some(flow) => self.flow('f', t, tid, w.msg, flow),
            None => self.stats.arrivals_without_send += 1,
        }
    }

    /// A drop: on the receiver's track, ending the message's arrow, when
    /// the message reached it (a crashed receiver, a partition on
    /// arrival); on the sender's otherwise.
    fn dropped(&mut self, t: u64, w: &Wire, reason: DropReason) {
        let flow = if reason == DropReason::Loss { None } else { self.take_flow(t, w) };
        let on_arrival = flow.is_some() || reason == DropReason::Crashed;
        let at_node = if on_arrival { w.to } else { w.from };
        let tid = self.track(t, at_node);
        if !self.crowded(t, at_node) {
            self.open('i', t, Some(tid));
            self.row.push_str(",\"s\":\"t\"");
            self.name_and_cat("drop", "drop", w);
            let (other, node) = if on_arrival { ("from", w.from) } else { ("to", w.to) };
            let _ = write!(self.row, ",\"args\":{{\"reason\":\"{}\",\"{other}\":\"", reason.name());
            self.row.push_str(name(&self.names, node));
            let at = if on_arrival { "on arrival" } else { "at sending" };
            let _ = write!(self.row, "\",\"where\":\"{at}\"}}}}");
        }
        if let Some(flow) = flow {
            self.flow('f', t, tid, w.msg, flow);
        }
    }

    /// Counts a zero-length event at `node`'s track at `t`: true when
    /// [`MAX_AT_ONCE`] were drawn there at `t` already, and this one is
    /// folded instead (the first at a time never is, so a folded arrow
    /// binds to a slice or instant of that time).
    fn crowded(&mut self, t: u64, node: u32) -> bool {
        let Some(at) = self.at_once.get_mut(node as usize) else { return false };
        if at.0 != t {
            *at = (t, 0);
        }
        at.1 += 1;
        let folded = at.1 > MAX_AT_ONCE;
        self.stats.folded += u64::from(folded);
        folded
    }

    /// A zero-length slice for a message event, without its closing brace
    /// (args follow).
    fn slice(&mut self, t: u64, tid: u64, what: &str, w: &Wire) {
        self.open('X', t, Some(tid));
        self.row.push_str(",\"dur\":0");
        self.name_and_cat(what, "msg", w);
    }

    fn name_and_cat(&mut self, what: &str, cat: &str, w: &Wire) {
        let _ = write!(self.row, ",\"cat\":\"{cat}\",\"name\":\"{what} ");
        escape_into(&mut self.row, w.msg);
        if let Some(id) = w.id {
            let _ = write!(self.row, " #{id}");
        }
        self.row.push('"');
    }

    /// A flow event: `s` starts an arrow at the slice just written on the
    /// track, `f` ends one at the slice or instant just written there.
    fn flow(&mut self, ph: char, t: u64, tid: u64, msg: &str, flow: u64) {
        self.open(ph, t, Some(tid));
        if ph == 'f' {
            self.row.push_str(",\"bp\":\"e\"");
        }
        self.row.push_str(",\"cat\":\"flow\",\"name\":\"");
        escape_into(&mut self.row, msg);
        let _ = write!(self.row, "\",\"id\":{flow}}}");
    }

    fn fault(&mut self, t: u64, label: &str, event: FaultEvent) {
        self.open('i', t, None);
        let _ = write!(self.row, ",\"s\":\"p\",\"cat\":\"fault\",\"name\":\"fault {}: ", event.name());
        escape_into(&mut self.row, label);
        self.row.push_str("\"}");
        match event {
            FaultEvent::Begins => {
                let id = self.next_id;
                self.next_id += 1;
                self.faults.entry(label.to_string()).or_default().push_back(id);
                self.fault_span('b', t, label, id);
            }
            FaultEvent::Ends => {
                let q = self.faults.get_mut(label);
                if let Some(id) = q.and_then(|q| q.pop_front()) {
                    self.fault_span('e', t, label, id);
                }
                if self.faults.get(label).is_some_and(|q| q.is_empty()) {
                    self.faults.remove(label);
                }
            }
            FaultEvent::Skipped => {}
        }
    }

    /// One end of a fault's window, as an async slice.
    fn fault_span(&mut self, ph: char, t: u64, label: &str, id: u64) {
        self.open(ph, t, None);
        self.row.push_str(",\"cat\":\"fault\",\"name\":\"");
        escape_into(&mut self.row, label);
        let _ = write!(self.row, "\",\"id\":\"fault-{id}\"}}");
    }

    fn remember_start(&mut self, node: u32, id: u64, t: u64) {
        if let Some(old) = self.open_steps.insert((node, id), t) {
            self.open_order.remove(&(old, node, id));
        }
        self.open_order.insert((t, node, id));
        if self.open_order.len() > MAX_OPEN_STEPS {
            if let Some((_, n, i)) = self.open_order.pop_first() {
                self.open_steps.remove(&(n, i));
            }
        }
    }

    /// Forgets the step of message `id` at `node`; returns its start.
    fn forget_step(&mut self, node: u32, id: u64) -> Option<u64> {
        let start = self.open_steps.remove(&(node, id))?;
        self.open_order.remove(&(start, node, id));
        Some(start)
    }

    /// A crashed node's steps under way never finish.
    fn forget_steps(&mut self, node: u32) {
        let gone: Vec<((u32, u64), u64)> =
            self.open_steps.range((node, 0)..=(node, u64::MAX)).map(|(k, v)| (*k, *v)).collect();
        for ((n, id), start) in gone {
            self.open_steps.remove(&(n, id));
            self.open_order.remove(&(start, n, id));
        }
    }

    /// The effect of message `id` was applied at `node`: the step from its
    /// start (clipped to the window) to now, on the node's first free
    /// lane; an instant when its start is unknown.
    fn applied(&mut self, t: u64, node: u32, id: u64) {
        let Some(start) = self.forget_step(node, id) else {
            if self.crowded(t, node) {
                return;
            }
            let tid = self.track(t, node);
            self.open('i', t, Some(tid));
            let _ = write!(self.row, ",\"s\":\"t\",\"cat\":\"step\",\"name\":\"applied #{id}\"}}");
            return;
        };
        let from = start.max(self.opts.from_ns);
        let Some(tid) = self.lane(node, from, t) else {
            self.stats.steps_not_drawn += 1;
            return;
        };
        self.stats.steps += 1;
        self.open('X', from, Some(tid));
        let _ = write!(self.row, ",\"dur\":{},\"cat\":\"step\",\"name\":\"process #{id}\"", Us(t - from));
        if from > start {
            let _ = write!(self.row, ",\"args\":{{\"started_ms\":{}}}", Ms(start));
        }
        self.row.push('}');
    }

    /// The first lane of `node` free at `from`, taken until `to` (a new one,
    /// named, if none is and the node has fewer than [`MAX_LANES`]).
    fn lane(&mut self, node: u32, from: u64, to: u64) -> Option<u64> {
        let lanes = self.lanes.entry(node).or_default();
        let (k, new) = match lanes.iter().position(|&end| end <= from) {
            Some(k) => (k, false),
            None if lanes.len() < MAX_LANES => {
                lanes.push(0);
                (lanes.len() - 1, true)
            }
            None => return None,
        };
        lanes[k] = to;
        let tid = (k as u64 + 1) * self.stride + u64::from(node) + 1;
        if new {
            let more = if k == 0 { String::new() } else { format!(" {}", k + 1) };
            let label = format!("{} steps{more}", name(&self.names, node));
            self.thread_meta(from, tid, &label, u64::from(node) * 100 + k as u64 + 1);
        }
        Some(tid)
    }

    /// The track of `node`, named the first time it is used.
    fn track(&mut self, t: u64, node: u32) -> u64 {
        let tid = u64::from(node) + 1;
        if let Some(named) = self.named.get_mut(node as usize).filter(|n| !**n) {
            *named = true;
            let label = name(&self.names, node).to_string();
            self.thread_meta(t, tid, &label, u64::from(node) * 100);
        }
        tid
    }

    /// Names track `tid` (`label` is JSON-escaped already) and gives its
    /// place (`chrome://tracing` sorts by it; Perfetto sorts its own way).
    fn thread_meta(&mut self, t: u64, tid: u64, label: &str, sort: u64) {
        self.open('M', t, Some(tid));
        let _ = write!(self.row, ",\"name\":\"thread_name\",\"args\":{{\"name\":\"{label}\"}}}}");
        self.open('M', t, Some(tid));
        let _ = write!(self.row, ",\"name\":\"thread_sort_index\",\"args\":{{\"sort_index\":{sort}}}}}");
    }

    /// Starts a trace event in the row: phase, time, process and track.
    fn open(&mut self, ph: char, t: u64, tid: Option<u64>) {
        self.stats.written += 1;
        let _ = write!(self.row, ",\n{{\"ph\":\"{ph}\",\"ts\":{},\"pid\":1", Us(t));
        if let Some(tid) = tid {
            let _ = write!(self.row, ",\"tid\":{tid}");
        }
    }

    /// Writes the row out.
    fn flush_row(&mut self) {
        if let (Some(out), None) = (self.out.as_mut(), self.error.as_ref()) {
            if let Err(e) = out.write_all(self.row.as_bytes()) {
                self.error = Some(e);
            }
        }
        self.row.clear();
    }

    /// The end of the trace: the window's end, if the run went past it,
    /// else the last kept event.
    fn end(&self) -> u64 {
        if self.past_window && !self.stats.truncated {
            self.opts.to_ns
        } else {
            self.last
        }
    }

    /// Ends the arrows of messages still in flight and the fault windows
    /// still open, at the end of the trace.
    fn close_open(&mut self) {
        let end = self.end();
        let mut open: Vec<(WireKey, u64)> = Vec::new();
        for ((_, k), q) in std::mem::take(&mut self.in_flight) {
            open.extend(q.into_iter().map(|f| (k, f)));
        }
        for (k, q) in std::mem::take(&mut self.copies) {
            open.extend(q.into_iter().map(|f| (k, f)));
        }
        open.sort_by_key(|&(_, f)| f);
        for ((from, to, msg, id), flow) in open {
            let w = Wire { from, to, msg, id };
            let tid = self.track(end, to);
            if !self.crowded(end, to) {
                self.slice(end, tid, "in flight", &w);
                self.row.push_str(",\"args\":{\"note\":\"not arrived by the end of the trace\"}}");
            }
            self.flow('f', end, tid, msg, flow);
            self.stats.flows_in_flight += 1;
            self.flush_row();
        }
        for (label, ids) in std::mem::take(&mut self.faults) {
            for id in ids {
                self.fault_span('e', end, &label, id);
            }
        }
        self.flush_row();
    }

    /// The time series as counters (queue depth, lag, gauges), in the window.
    fn counters(&mut self, samples: &[Sample]) {
        for s in samples {
            let t = (s.time_s * 1e9).round().max(0.0) as u64;
            if t < self.opts.from_ns || t > self.opts.to_ns {
                continue;
            }
            self.open('C', t, None);
            let _ = write!(self.row, ",\"name\":\"queue depth\",\"args\":{{\"messages\":{}}}}}", s.queue_depth);
            self.open('C', t, None);
            let _ = write!(self.row, ",\"name\":\"lag\",\"args\":{{\"messages\":{}}}}}", s.lag);
            for (gauge, v) in &s.gauges {
                self.open('C', t, None);
                self.row.push_str(",\"name\":\"");
                escape_into(&mut self.row, gauge);
                let v = if v.is_finite() { *v } else { 0.0 };
                let _ = write!(self.row, "\",\"args\":{{\"value\":{v}}}}}");
            }
            self.flush_row();
        }
    }

    /// Closes `traceEvents`, writes `otherData`, flushes, syncs and renames.
    fn publish(&mut self) -> std::io::Result<PerfettoStats> {
        let other = self.other_data();
        self.row.push_str("\n],\n\"otherData\":");
        self.row.push_str(&other);
        self.row.push_str("}\n");
        self.flush_row();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let out = self.out.take().expect("published once");
        crate::folder::publish_streamed(out, &self.tmp, &self.path)?;
        self.published = true;
        Ok(self.stats)
    }

    /// What the file holds and what it left out.
    fn other_data(&self) -> String {
        let s = &self.stats;
        let to = (self.opts.to_ns != u64::MAX).then(|| self.opts.to_ns as f64 / 1e6);
        let data = serde_json::json!({
            "about": "asyncsim trace in Chrome trace-event JSON, for ui.perfetto.dev or chrome://tracing; ts and dur are microseconds of simulated time",
            "variant": self.opts.variant,
            "window_ms": {"from": self.opts.from_ns as f64 / 1e6, "to": to},
            "limit_events": self.opts.limit,
            "events_recorded": s.recorded,
            "events_kept": s.kept,
            "events_outside_window": s.outside_window,
            "events_over_limit": s.over_limit,
            "timers_left_out": s.timers,
            "truncated": s.truncated,
            "trace_events_written": s.written,
            "flows": s.flows,
            "flows_ended_in_flight": s.flows_in_flight,
            "arrivals_without_kept_send": s.arrivals_without_send,
            "steps": s.steps,
            "steps_not_drawn": s.steps_not_drawn,
            "events_folded": s.folded,
            "max_at_once_per_track": MAX_AT_ONCE,
            "steps_never_applied_or_open": self.open_steps.len(),
            "node_track_tid": "node id + 1",
            "step_lane_tid": format!("(lane + 1) * {} + node id + 1", self.stride),
        });
        data.to_string()
    }

    /// Bytes held: the buffer, the row, and what joins the ends of
    /// messages and steps (estimated per entry).
    fn memory_bytes(&self) -> usize {
        const ENTRY: usize = 64;
        let buffer = self.out.as_ref().map_or(0, |o| o.capacity()) + self.row.capacity();
        let joins = self.open_steps.len() * 2 + self.in_flight.len() + self.copies.len() + self.faults.len();
        let lanes: usize = self.lanes.values().map(|l| l.capacity() * 8 + ENTRY).sum();
        buffer
            + joins * ENTRY
            + lanes
            + self.named.capacity()
            + self.at_once.capacity() * 16
            + self.names.iter().map(|n| n.capacity() + 24).sum::<usize>()
    }
}

/// A node's escaped name.
fn name(names: &[String], node: u32) -> &str {
    names.get(node as usize).map_or("?", String::as_str)
}

/// Nanoseconds as microseconds with three decimals: exact.
struct Us(u64);

impl std::fmt::Display for Us {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1_000, self.0 % 1_000)
    }
}

/// Nanoseconds as milliseconds with six decimals: exact.
struct Ms(u64);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// `s` escaped for a JSON string.
fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Appends `s`, escaped for a JSON string (quotes, backslashes and control
/// characters), to `out`.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn wire(from: u32, to: u32, id: u64) -> Wire {
        Wire { from, to, msg: "deliver", id: Some(id) }
    }

    /// Streams `events` through a trace with `opts` and returns the file parsed.
    fn written(name: &str, opts: PerfettoOptions, events: &[(u64, TraceWhat)]) -> Value {
        let dir = std::env::temp_dir().join(format!("asyncsim-perfetto-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let names = vec!["broker".to_string(), "worker \"w\"".to_string()];
        let trace = PerfettoTrace::create(&path, &names, opts).unwrap();
        let mut sink = trace.sink();
        for (time, what) in events {
            sink.event(&TraceEvent { time: *time, what: what.clone() });
        }
        assert!(sink.memory_bytes() >= BUFFER_BYTES, "the buffer is counted");
        trace.finish(&[]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_dir_all(&dir);
        serde_json::from_str(&text).unwrap()
    }

    fn opts(from_ns: u64, to_ns: u64, limit: usize) -> PerfettoOptions {
        PerfettoOptions { variant: "v".into(), from_ns, to_ns, limit }
    }

    fn of<'a>(trace: &'a Value, ph: &str) -> Vec<&'a Value> {
        trace["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == ph).collect()
    }

    #[test]
    fn overlapping_steps_of_a_node_take_separate_lanes() {
        use TraceWhat::Process;
        let events = [
            (1_000, Process(1, 7, false)),
            (2_000, Process(1, 8, false)),
            (3_000, Process(1, 7, true)),
            (3_000, Process(1, 9, false)),
            (4_000, Process(1, 8, true)),
            (5_500, Process(1, 9, true)),
        ];
        let trace = written("lanes", opts(0, u64::MAX, 100), &events);
        let steps: Vec<(String, u64, f64, f64)> = of(&trace, "X")
            .iter()
            .map(|e| {
                let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
                (e["name"].as_str().unwrap().to_string(), e["tid"].as_u64().unwrap(), ts, dur)
            })
            .collect();
        // 7 on lane 1 (tid 10 + 2), 8 overlaps it: lane 2 (tid 20 + 2); 9
        // starts as 7 ends: lane 1 again. Microseconds, exact.
        assert_eq!(
            steps,
            vec![
                ("process #7".to_string(), 12, 1.0, 2.0),
                ("process #8".to_string(), 22, 2.0, 2.0),
                ("process #9".to_string(), 12, 3.0, 2.5)
            ]
        );
        let lanes: Vec<&str> = of(&trace, "M")
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(lanes, ["worker \"w\" steps", "worker \"w\" steps 2"], "names escaped and parsed back");
    }

    #[test]
    fn a_window_clips_a_step_and_ends_arrows_still_in_flight() {
        use TraceWhat::{Process, Send};
        let events = [
            (1_000, Process(1, 1, false)),
            (5_000, Send(wire(1, 0, 1), 10_000)),
            (6_000, Process(1, 1, true)),
            (7_000, Send(wire(0, 1, 2), 100)),
            (20_000, TraceWhat::Arrive(wire(1, 0, 1))),
        ];
        let trace = written("window", opts(2_000, 8_000, 100), &events);
        let x = of(&trace, "X");
        let step = x.iter().find(|e| e["name"] == "process #1").expect("the step applied in the window");
        assert_eq!((step["ts"].as_f64(), step["dur"].as_f64()), (Some(2.0), Some(4.0)), "clipped to the window");
        assert_eq!(step["args"]["started_ms"].as_f64(), Some(0.001));
        // Neither arrival is in the window: both arrows end at its end.
        let ends = of(&trace, "f");
        assert_eq!(ends.len(), 2);
        assert!(ends.iter().all(|f| f["ts"].as_f64() == Some(8.0)), "{ends:?}");
        let other = &trace["otherData"];
        assert_eq!(other["flows_ended_in_flight"], 2);
        assert_eq!(other["events_outside_window"], 2, "the first start and the arrival");
        assert_eq!(other["window_ms"]["from"].as_f64(), Some(0.002));
    }

    #[test]
    fn drops_on_arrival_end_their_arrow_and_losses_stay_with_the_sender() {
        use TraceWhat::{Drop, Send};
        let events = [
            (0, Send(wire(0, 1, 1), 500)),
            (100, Drop(wire(0, 1, 2), DropReason::Loss)),
            (500, Drop(wire(0, 1, 1), DropReason::Crashed)),
        ];
        let trace = written("drops", opts(0, u64::MAX, 100), &events);
        let drops = of(&trace, "i");
        assert_eq!(drops.len(), 2);
        assert_eq!((&drops[0]["tid"], &drops[0]["args"]["reason"]), (&Value::from(1), &Value::from("loss")));
        assert_eq!((&drops[1]["tid"], &drops[1]["args"]["reason"]), (&Value::from(2), &Value::from("crashed")));
        let f = of(&trace, "f");
        assert_eq!((f.len(), &f[0]["tid"], &f[0]["id"]), (1, &Value::from(2), &of(&trace, "s")[0]["id"]));
    }

    #[test]
    fn a_burst_at_one_time_is_folded_and_its_arrows_kept() {
        let n = MAX_AT_ONCE as u64 + 50;
        let mut events: Vec<(u64, TraceWhat)> = (0..n).map(|i| (1_000, TraceWhat::Send(wire(0, 1, i), 500))).collect();
        events.extend((0..n).map(|i| (1_500, TraceWhat::Arrive(wire(0, 1, i)))));
        let trace = written("burst", opts(0, u64::MAX, 1_000), &events);
        let evs = trace["traceEvents"].as_array().unwrap();
        let slices = |verb: &str| evs.iter().filter(|e| e["name"].as_str().unwrap_or("").starts_with(verb)).count();
        assert_eq!((slices("send "), slices("recv ")), (MAX_AT_ONCE as usize, MAX_AT_ONCE as usize));
        assert_eq!((of(&trace, "s").len(), of(&trace, "f").len()), (n as usize, n as usize), "every arrow kept");
        assert_eq!(trace["otherData"]["events_folded"], 100);
        // Every flow event binds to a slice of its time on its track,
        // written before it.
        for (i, e) in evs.iter().enumerate().filter(|(_, e)| e["ph"] == "s" || e["ph"] == "f") {
            let bound = evs[..i].iter().rev().find(|b| b["ph"] == "X" && b["tid"] == e["tid"]).unwrap();
            assert_eq!(bound["ts"], e["ts"], "{e}");
        }
    }

    #[test]
    fn times_are_exact_microseconds() {
        assert_eq!(Us(0).to_string(), "0.000");
        assert_eq!(Us(1_234_567).to_string(), "1234.567");
        assert_eq!(Ms(1_234_567).to_string(), "1.234567");
        assert_eq!(escaped("a\"b\\c\n\u{1}"), "a\\\"b\\\\c\\n\\u0001");
    }
}
