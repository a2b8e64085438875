//! The discrete-event engine: one queue of events ordered by (time,
//! insertion sequence), a dispatch loop, and the context through which
//! components act.
//!
//! A run has three phases. **Run**: producers produce, faults come and go.
//! It ends at the scenario's `duration_ms`, or as soon as every producer has
//! produced its `messages`, whichever is first. **Drain**: producers stop,
//! every fault is healed and random loss and duplication are turned off, so
//! a guarantee that only promises "eventually" gets its chance; it ends when
//! no message or timer is left (only periodic sampling), or after
//! `drain_ms`. **Accounting**: the ledger settles each message as processed,
//! lost, still in flight, or a send the producer knows failed.
//!
//! Ties in time break by insertion order, so a run is a pure function of its
//! scenario and seed. Components never touch the queue: they emit
//! [`Effect`]s through their [`Ctx`], and the engine applies them, in order,
//! once the handler returns. The engine knows no component kind and looks
//! inside no message: what it needs of a message it asks the message's
//! [`Protocol`].

use crate::digest::tag;
use crate::ledger::{Counts, DomainCounts, DomainId, Ledger};
use crate::message::{Msg, MsgId, NodeId, Notice, Observed, Protocol};
use crate::net::{Fault, FaultAction, Network};
use crate::protocol::Seen;
use crate::rng::{stream, SimRng};
use crate::time::{Duration, Time};
use crate::trace::{FaultEvent, Trace, TraceEvent, TraceWhat, Wire};

mod context;
mod core;
mod effect;
mod harness;
mod progress;
mod queue;

use self::core::Core;
use context::Sink;
pub use context::{boxed, Component, Ctx, DynComponent, NoTimer, Parts, Timer};
pub use effect::{quiet_mark, Effect, Fact, Metric, Timing, QUIET_MARKS};
pub use harness::{Emitted, Harness};
pub use progress::{Progress, Snapshot, RUN_SHARE};
#[doc(hidden)]
pub use queue::bench as event_queue;
use queue::{is_timer, Ev, Lane};

/// Which phase the run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Producing, with faults.
    Run,
    /// Healed, producers stopped, waiting for in-flight work to finish.
    Drain,
    /// Over.
    Done,
}

/// Knobs of one run that are not part of the topology.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// End of the run phase, if any.
    pub run_ns: Option<Duration>,
    /// Longest drain.
    pub drain_ns: Duration,
    /// Time-series interval.
    pub sample_ns: Duration,
    /// Upper bound on dispatched events; a run that reaches it stops (see
    /// [`Stopped`]) with what it measured.
    pub max_events: u64,
    /// Upper bound on the memory the run's growing state holds (the event
    /// queue, the ledger's pending messages, what components hold), in
    /// bytes of allocated capacity; checked every [`MEMORY_CHECK_EVERY`]
    /// events. A run that exceeds it stops (see [`Stopped`]).
    pub max_memory_bytes: u64,
    /// Record a trace of at most this many events (0: no trace).
    pub trace_limit: usize,
}

/// How often, in dispatched events, the engine totals the memory its
/// growing state holds: the hot path pays one counter compare.
pub const MEMORY_CHECK_EVERY: u64 = 4096;

/// A run that a bound ended early: no more events were dispatched, and the
/// ledger settled what it had (messages still held are in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Which bound: `"max_events"` or `"max_memory"`.
    pub reason: &'static str,
    /// The simulated time when it stopped.
    pub at: Time,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = match self.reason {
            "max_events" => "run.max_events",
            "max_memory" => "run.max_memory_mb",
            other => other,
        };
        write!(f, "the run stopped at its limit {bound} at t={} s", crate::time::ns_to_s(self.at))
    }
}

impl std::error::Error for Stopped {}

/// What a finished run produced.
pub struct RunOutput {
    /// Set when a bound (events, memory) stopped the run early.
    pub stopped: Option<Stopped>,
    /// The ledger's verdict (totals over the effect domains).
    pub counts: Counts,
    /// Each effect domain's verdict, by name.
    pub domains: std::collections::BTreeMap<String, DomainCounts>,
    /// Messages applied in some effect domains but not all.
    pub inconsistent: u64,
    /// What became of the messages put into a dead-letter queue.
    pub dead_letters: crate::ledger::DeadLetters,
    /// Seconds from the sampled peak of the total queue depth to its first
    /// sample back at 1% of the peak or below
    /// ([`crate::metrics::time_to_drain_s`]).
    pub time_to_drain_s: Option<f64>,
    /// Named figures components reported.
    pub metrics: std::collections::BTreeMap<&'static str, f64>,
    /// Latency from production to first application.
    pub latency: crate::metrics::LatencySummary,
    /// The latency distribution: (latency in ms, fraction of messages at
    /// or below it), rising, at most [`crate::metrics::CDF_POINTS`] points.
    pub latency_cdf: Vec<(f64, f64)>,
    /// The lost messages by id with the ledger's cause (the first
    /// [`crate::ledger::MAX_LOST_LISTED`]).
    pub lost: Vec<(crate::message::MsgId, crate::ledger::LossCause)>,
    /// Notable moments components marked (leader elections...): (time,
    /// node, what), the first 10,000, and the first 1,000 of each name.
    pub marks: Vec<(Time, NodeId, &'static str)>,
    /// Waiting time from production to first start of processing.
    pub wait: crate::metrics::LatencySummary,
    /// Time-average number of produced, unapplied messages over [0, end]
    /// (Little's L). Lost messages stay counted once lost, so with loss this
    /// overstates the number really waiting.
    pub mean_in_system: f64,
    /// Errors by kind.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// The user-facing durations measured, in [`Timing::ALL`] order
    /// (`None` for one never measured).
    pub timings: [Option<crate::metrics::LatencySummary>; 3],
    /// What the state observer concluded (balances, replicas, aggregates).
    pub state: crate::observer::StateReport,
    /// Total errors.
    pub errors_total: u64,
    /// Highest total queue depth.
    pub max_queue_depth: u64,
    /// The network's own counters.
    pub network: crate::net::NetStats,
    /// When the run phase ended.
    pub run_end: Time,
    /// The horizon for rates: the later of the run phase's end and the last
    /// first application of an effect.
    pub end: Time,
    /// When the last message or timer was handled.
    pub last_event: Time,
    /// False when the drain ran out of time (`drain_ms`) with messages or
    /// timers still pending: what was still in flight then never got its
    /// chance, and latencies leave it out.
    pub drain_complete: bool,
    /// Events dispatched.
    pub events: u64,
    /// Digest of every dispatched event.
    pub digest: String,
    /// Faults as they began, ended or were skipped.
    pub fault_log: Vec<(Time, String, FaultEvent)>,
    /// The time series.
    pub samples: Vec<crate::metrics::Sample>,
    /// The trace, if one was asked for and kept in memory.
    pub trace: Vec<TraceEvent>,
    /// The sink the trace streamed to, if one was given
    /// ([`Engine::stream_trace`]), for the caller to finish.
    pub trace_sink: Option<Box<dyn crate::trace::TraceSink>>,
    /// True when the trace hit its limit.
    pub trace_truncated: bool,
    /// Node names, by id.
    pub names: Vec<String>,
    /// The steady-state analysis of the time series, when the scenario
    /// asked for one ([`Engine::analyse_steady_state`]).
    pub steady_state: Option<crate::stats::SteadyState>,
}

impl RunOutput {
    /// The output of a run that ended by itself, or the bound that stopped
    /// it early (for callers that need a complete run).
    pub fn completed(self) -> Result<RunOutput, Stopped> {
        match self.stopped {
            Some(s) => Err(s),
            None => Ok(self),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FaultState {
    Scheduled,
    Active,
    Over,
}

/// One node as the engine holds it: its component, its random stream and
/// its state, in one record, so that an event looks its node up once (one
/// bounds check, one cache line for the state) rather than in five vectors.
struct Node {
    component: Box<dyn DynComponent>,
    rng: SimRng,
    /// Up (not crashed).
    alive: bool,
    /// Bumped at each crash: a timer set before it is stale.
    incarnation: u32,
    /// The effect domain it applies effects in.
    domain: DomainId,
}

/// Calls one handler of `node` (node number `me`), with the effects it
/// emits applied to `core` as they come. The caller then serves the nodes
/// it asked to start or stop ([`Engine::node_requests`]).
#[inline(always)]
fn call(core: &mut Core, now: Time, me: NodeId, node: &mut Node, handler: impl Handler) {
    let mut parts = Parts {
        now,
        me,
        incarnation: node.incarnation,
        domain: node.domain,
        rng: &mut node.rng,
        sink: Sink::Engine(core),
    };
    handler(node.component.as_mut(), &mut parts);
}

/// A call of one of a component's handlers, with the parts of its context
/// (lent: see [`Ctx`]).
trait Handler: for<'a> FnOnce(&mut dyn DynComponent, &'a mut Parts<'a>) {}
impl<F: for<'a> FnOnce(&mut dyn DynComponent, &'a mut Parts<'a>)> Handler for F {}

/// A simulation ready to run.
pub struct Engine {
    names: Vec<String>,
    nodes: Vec<Node>,
    core: Core,
    faults: Vec<(Fault, FaultState)>,
    /// Per node, how many crash faults hold it down: overlapping crashes
    /// restart it only when the last one ends.
    down: Vec<u32>,
    fault_log: Vec<(Time, String, FaultEvent)>,
    /// Ends of part faults that came while their node was down.
    deferred: Vec<(NodeId, crate::net::NodeFault)>,
    /// Per fault: a part fault whose begin reached its node (one that
    /// began while the node was down is void).
    part_began: Vec<bool>,
    limits: RunLimits,
    now: Time,
    run_end: Time,
    /// The run phase ended because no work and no fault was left.
    quiescent: bool,
    /// The drain ended at its deadline with work still pending.
    drain_cut: bool,
    last_work: Time,
    events: u64,
    /// At this many dispatched events, check the bounds (events, memory).
    check_at: u64,
    stopped: Option<Stopped>,
    started: bool,
    /// Where the run publishes its progress, if someone watches it.
    progress: Option<std::sync::Arc<Progress>>,
    /// The steady-state analysis to make of the time series at the end.
    steady: Option<crate::stats::SteadyStateSpec>,
}

impl Engine {
    /// Builds an engine over `nodes` (named, in id order) joined by
    /// `network`, with `faults` scheduled. Each node's random stream is
    /// derived from (`seed`, its name).
    pub fn new(
        seed: u64,
        nodes: Vec<(String, Box<dyn DynComponent>)>,
        network: Network,
        faults: Vec<Fault>,
        limits: RunLimits,
    ) -> Self {
        let n = nodes.len();
        let (names, components): (Vec<String>, Vec<Box<dyn DynComponent>>) = nodes.into_iter().unzip();
        let producers_active = components.iter().filter(|c| c.is_producer()).count();
        let nodes = names
            .iter()
            .zip(components)
            .map(|(name, component)| Node {
                component,
                rng: stream(seed, &format!("node:{name}")),
                alive: true,
                incarnation: 0,
                domain: 0,
            })
            .collect();
        let n_faults = faults.len();
        let check_at = MEMORY_CHECK_EVERY.min(limits.max_events);
        Engine {
            core: Core::new(seed, n, network, Trace::new(limits.trace_limit > 0, limits.trace_limit), producers_active),
            names,
            nodes,
            faults: faults.into_iter().map(|f| (f, FaultState::Scheduled)).collect(),
            down: vec![0; n],
            fault_log: Vec::new(),
            deferred: Vec::new(),
            part_began: vec![false; n_faults],
            limits,
            now: 0,
            run_end: 0,
            quiescent: false,
            drain_cut: false,
            last_work: 0,
            events: 0,
            check_at,
            stopped: None,
            started: false,
            progress: None,
            steady: None,
        }
    }

    /// Asks for the steady-state analysis of the run phase's time series
    /// ([`crate::stats::steady`]), made once at the end: the run itself is
    /// unchanged.
    pub fn analyse_steady_state(&mut self, spec: crate::stats::SteadyStateSpec) {
        self.steady = Some(spec);
    }

    /// Declares the effect domains (see [`Ledger`]) and which domain each
    /// node applies its effects in. Call before the first step.
    pub fn set_domains(&mut self, names: Vec<String>, domain_of: Vec<DomainId>) {
        assert_eq!(domain_of.len(), self.nodes.len());
        assert!(!self.started, "domains are declared before the run starts");
        self.core.ledger = Ledger::new(names);
        for (node, &domain) in self.nodes.iter_mut().zip(&domain_of) {
            node.domain = domain;
        }
        self.core.domain_of = domain_of;
    }

    /// Publishes this run's progress into `progress`, at every periodic
    /// bound check and when the run ends (see [`Progress`]); the run itself
    /// is unchanged.
    pub fn watch(&mut self, progress: std::sync::Arc<Progress>) {
        progress.plan(self.limits.run_ns, self.limits.drain_ns);
        self.progress = Some(progress);
    }

    /// Tells the watcher, if any, where the run is.
    fn publish(&self) {
        if let Some(p) = &self.progress {
            p.publish(self.now, self.events, self.core.ledger.produced(), self.core.phase, self.run_end);
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.core.phase
    }

    /// Events dispatched so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The ledger's counts so far.
    pub fn counts(&self) -> Counts {
        self.core.ledger.counts()
    }

    /// The network's counters so far.
    pub fn net_stats(&self) -> &crate::net::NetStats {
        &self.core.net.stats
    }

    /// Whether `node` is up.
    pub fn is_alive(&self, node: NodeId) -> bool {
        self.nodes[node as usize].alive
    }

    /// Calls one handler of `node`; the effects it emits are applied as
    /// they come, and the nodes it starts or stops once it returns.
    #[inline]
    fn dispatch(&mut self, node: NodeId, handler: impl Handler) {
        call(&mut self.core, self.now, node, &mut self.nodes[node as usize], handler);
        self.after_handler();
    }

    /// Serves the nodes a handler asked to start or stop, if any.
    #[inline(always)]
    fn after_handler(&mut self) {
        if !self.core.node_requests.is_empty() {
            self.node_requests();
        }
    }

    /// Starts and stops the nodes a handler asked to.
    #[cold]
    #[inline(never)]
    fn node_requests(&mut self) {
        for (target, up) in std::mem::take(&mut self.core.node_requests) {
            if !up {
                self.crash(target);
            } else if self.down[target as usize] == 0 {
                self.restart(target);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn begin(&mut self) {
        self.started = true;
        self.core.trace.record(0, || TraceWhat::Phase("run"));
        for i in 0..self.faults.len() {
            let f = &self.faults[i].0;
            let (start, end) = (f.start, f.end);
            self.core.queue.push(start, Ev::FaultBegin(i));
            if let Some(end) = end {
                self.core.queue.push(end.max(start), Ev::FaultEnd(i));
            }
        }
        if let Some(run_ns) = self.limits.run_ns {
            self.core.queue.push(run_ns, Ev::EndRun);
        }
        self.core.queue.push(self.limits.sample_ns, Ev::Sample);
        for node in 0..self.nodes.len() as NodeId {
            self.dispatch(node, |c, p| c.start(p));
        }
        if self.core.producers_total == 0 && self.limits.run_ns.is_none() {
            self.start_drain();
        }
    }

    /// Dispatches one event. Returns false once the run is over.
    pub fn step(&mut self) -> bool {
        if !self.started {
            self.begin();
        }
        if self.core.phase == Phase::Done {
            return false;
        }
        self.dispatch_events(true)
    }

    /// Dispatches the events of a run that has begun and is not over, until
    /// it is over (returns false) or, when `once`, after one event (returns
    /// true unless the run is over). One function serves [`Engine::step`]
    /// and [`Engine::run`], so the hot path is one loop with the queue's pop
    /// and the handlers' dispatch inlined: no call, no prologue, per event.
    ///
    /// The common path is a straight line: one branch each for "no work
    /// left", "a bound to check", "every producer just finished", "over"
    /// and "once", each answered by one flag or count kept as it changes;
    /// the rare answers are handled out of line.
    #[inline(never)]
    fn dispatch_events(&mut self, once: bool) -> bool {
        loop {
            if !self.dispatch_one() {
                return false;
            }
            if once {
                return true;
            }
        }
    }

    /// One event of [`Engine::dispatch_events`]: false once the run is over.
    #[inline(always)]
    fn dispatch_one(&mut self) -> bool {
        if self.core.queue.idle() && self.on_idle() {
            return false;
        }
        // One compare per event: the bounds are checked every few thousand.
        if self.events >= self.check_at && self.over_limit() {
            return false;
        }
        if !self.next_event() {
            self.finish_phase();
            return false;
        }
        // The run phase also ends early once every producer has produced all it was asked to.
        if self.core.all_retired {
            self.on_all_retired();
        }
        self.core.phase != Phase::Done
    }

    /// No message or timer is pending: ends the drain (returns true: the
    /// run is over), or, in the run phase with nothing left that could
    /// start work again (a producer crashed for good, say), heals and
    /// drains rather than spin on samples.
    #[cold]
    #[inline(never)]
    fn on_idle(&mut self) -> bool {
        match self.core.phase {
            Phase::Drain => {
                self.finish_phase();
                true
            }
            Phase::Run if self.core.queue.steering() == 0 => {
                self.quiescent = true;
                self.start_drain();
                false
            }
            _ => false,
        }
    }

    /// The last producer has just retired: the run phase ends (if it is
    /// still on).
    #[cold]
    #[inline(never)]
    fn on_all_retired(&mut self) {
        self.core.all_retired = false;
        if self.core.phase == Phase::Run {
            self.start_drain();
        }
    }

    /// Checks the bounds at the `check_at`-th event: stops the run (and
    /// returns true) when one is reached, else sets the next check. Also
    /// publishes the run's progress, if it is watched.
    #[cold]
    fn over_limit(&mut self) -> bool {
        self.publish();
        // The counts' own check (below zero they would wrap), now and then.
        let _ = (self.core.queue.work(), self.core.queue.steering());
        let reason = if self.events >= self.limits.max_events {
            "max_events"
        } else if self.memory_bytes() > self.limits.max_memory_bytes {
            "max_memory"
        } else {
            self.check_at = (self.events + MEMORY_CHECK_EVERY).min(self.limits.max_events);
            return false;
        };
        self.stopped = Some(Stopped { reason, at: self.now });
        self.finish_phase();
        true
    }

    /// Bytes the run's growing state holds, in allocated capacity: the
    /// event queue, the ledger, the network, the dedup stores, the trace
    /// (its events, or a streaming sink's buffer), and what each component
    /// says it holds.
    pub fn memory_bytes(&self) -> u64 {
        let nodes: usize = self.nodes.iter().map(|n| n.component.memory_bytes()).sum();
        let core = &self.core;
        let engine = core.queue.memory_bytes()
            + core.ledger.memory_bytes()
            + core.net.memory_bytes()
            + core.stores.memory_bytes()
            + core.observer.memory_bytes();
        (engine + core.trace.memory_bytes() + nodes) as u64
    }

    /// Takes the next event out of the queue and handles it (false: none
    /// is left). The time moves to it, and the digest folds it in (kept in
    /// a register while the event's words are folded, and stored back
    /// before anything else can fold). Each kind goes its own way from the
    /// queue to its handler, with no event record in between.
    #[inline(always)]
    fn next_event(&mut self) -> bool {
        let digest = self.core.trace.digest;
        loop {
            let q = &mut self.core.queue;
            let (time, slot) = if q.lane_first() {
                match q.pop_lane() {
                    // At the present.
                    Lane::Arrive { from, to, msg } => {
                        let now = q.now();
                        self.events += 1;
                        self.arrival(now, from, to, msg, digest);
                        return true;
                    }
                    Lane::Slot(slot) => (q.now(), slot),
                }
            } else {
                let Some(key) = q.pop_key() else { return false };
                key
            };
            if !is_timer(slot) {
                // A message with a delay among them.
                let ev = q.take_event(slot);
                self.events += 1;
                self.handle_other(time, ev, digest);
                return true;
            }
            // None: a cancelled timer's tombstone.
            if let Some((node, incarnation, word)) = q.take_timer(slot) {
                self.events += 1;
                self.timer(time, node, incarnation, word, digest);
                return true;
            }
        }
    }

    /// A message arrives at `time`; `digest` as in [`Engine::next_event`].
    #[inline(always)]
    fn arrival(&mut self, time: Time, from: NodeId, to: NodeId, msg: Msg, mut digest: crate::digest::Digest) {
        self.now = time;
        self.last_work = time;
        digest.add(time);
        digest.add(tag::ARRIVE);
        digest.add(u64::from(from) << 32 | u64::from(to));
        let seen = msg.fold_seen(&mut digest);
        self.core.trace.digest = digest;
        self.arrive(from, to, msg, seen);
    }

    /// Handles an event that is not a timer nor a message at the present:
    /// a message that was on the wire for a while (most of them, in most
    /// scenarios: out of line, it costs a call), faults, samples, the
    /// phases' deadlines.
    #[inline(never)]
    fn handle_other(&mut self, time: Time, ev: Ev, mut digest: crate::digest::Digest) {
        if let Ev::Arrive { from, to, msg } = ev {
            return self.arrival(time, from, to, msg, digest);
        }
        self.now = time;
        digest.add(time);
        self.core.trace.digest = digest;
        let digest = &mut self.core.trace.digest;
        match ev {
            Ev::Arrive { .. } | Ev::Timer { .. } | Ev::Tick { .. } => unreachable!("handled apart"),
            Ev::FaultBegin(i) => {
                digest.add(tag::FAULT_BEGIN);
                digest.add(i as u64);
                if self.core.phase == Phase::Run && self.faults[i].1 == FaultState::Scheduled {
                    self.fault_begin(i);
                }
            }
            Ev::FaultEnd(i) => {
                digest.add(tag::FAULT_END);
                digest.add(i as u64);
                if self.faults[i].1 == FaultState::Active {
                    self.fault_end(i);
                }
            }
            Ev::Sample => {
                digest.add(tag::SAMPLE);
                let l = &self.core.ledger;
                let (p, c, lag) = (l.produced(), l.processed(), l.unapplied());
                let latency = l.latency.totals();
                let gauges = self.gauges(time);
                self.core.metrics.sample(time, p, c, lag, gauges, latency);
                self.core.queue.push(time.saturating_add(self.limits.sample_ns), Ev::Sample);
            }
            Ev::EndRun => {
                digest.add(tag::END_RUN);
                if self.core.phase == Phase::Run {
                    self.start_drain();
                }
            }
            Ev::EndDrain => {
                digest.add(tag::END_DRAIN);
                self.drain_cut = !self.core.queue.idle();
                self.finish_phase();
            }
        }
    }

    /// A timer of `node` set in its `incarnation` fires at `time` (a stale
    /// one, set before a crash, is ignored); `digest` as in
    /// [`Engine::next_event`].
    #[inline]
    fn timer(&mut self, time: Time, node: NodeId, incarnation: u32, word: u64, mut digest: crate::digest::Digest) {
        self.now = time;
        digest.add(time);
        let core = &mut self.core;
        let n = &mut self.nodes[node as usize];
        if n.incarnation != incarnation || !n.alive {
            digest.add(tag::STALE_TIMER);
            core.trace.digest = digest;
            return;
        }
        self.last_work = time;
        digest.add(tag::TIMER);
        digest.add(u64::from(node));
        digest.add(word);
        core.trace.digest = digest;
        core.trace.record(time, || TraceWhat::Timer(node, n.component.timer_name(word)));
        call(core, time, node, n, |c, p| c.on_timer(p, word));
        self.after_handler();
    }

    /// `msg` arrives at `to` (the digest has folded it; `seen` is what it
    /// proves, from the same fold).
    #[inline(always)]
    fn arrive(&mut self, from: NodeId, to: NodeId, msg: Msg, seen: Seen) {
        let now = self.now;
        let core = &mut self.core;
        let node = &mut self.nodes[to as usize];
        if let Some(reason) = core.net.on_arrival(from, to, node.alive) {
            core.dropped(reason, &msg);
            core.trace.digest.add(tag::DROP);
            core.trace.digest.add(reason as u64);
            core.trace.record(now, || TraceWhat::Drop(Wire { from, to, msg: msg.name(), id: msg.id() }, reason));
            return;
        }
        core.trace.record(now, || TraceWhat::Arrive(Wire { from, to, msg: msg.name(), id: msg.id() }));
        // The engine, not the components, tells the ledger what the wire saw.
        let (ledger, domain) = (&mut core.ledger, node.domain);
        let mut note = |seen| match seen {
            Observed::Acked(id) => ledger.acked(id),
            Observed::Delivered(id) => ledger.delivered(domain, id),
        };
        match seen {
            Seen::Nothing => {}
            Seen::One(one) => note(one),
            Seen::Later => msg.observe(&mut note),
        }
        call(core, now, to, node, |c, p| c.on_message(p, from, msg));
        self.after_handler();
    }

    fn fault_begin(&mut self, i: usize) {
        self.faults[i].1 = FaultState::Active;
        let (action, label) = (self.faults[i].0.action.clone(), self.faults[i].0.label.clone());
        self.log_fault(label, FaultEvent::Begins);
        match action {
            FaultAction::Part { node, ref fault } => {
                // A part of a node that is down cannot fail: the fault is
                // void, its end too.
                let up = self.nodes[node as usize].alive;
                self.part_began[i] = up;
                if up {
                    self.dispatch(node, |c, p| c.on_fault(p, fault, true));
                }
            }
            FaultAction::Crash { node, lose_disk } => {
                if lose_disk && self.nodes[node as usize].alive {
                    self.dispatch(node, |c, p| c.on_fault(p, &crate::net::NodeFault::DiskLoss, true));
                }
                self.down[node as usize] += 1;
                if self.down[node as usize] == 1 {
                    self.crash(node);
                }
                // A producer down for good can never finish its count: it must
                // not hold the run phase open (it restarts in the drain).
                if self.faults[i].0.end.is_none() && self.nodes[node as usize].component.is_producer() {
                    self.core.retire(node);
                }
            }
            other => self.core.net.begin(i, &other),
        }
    }

    fn fault_end(&mut self, i: usize) {
        // A part of a node that recovers while the node itself is down
        // recovers when the node restarts.
        if let FaultAction::Part { node, fault } = &self.faults[i].0.action {
            if self.part_began[i] && !self.nodes[*node as usize].alive {
                self.deferred.push((*node, fault.clone()));
            }
        }
        self.faults[i].1 = FaultState::Over;
        let (action, label) = (self.faults[i].0.action.clone(), self.faults[i].0.label.clone());
        self.log_fault(label, FaultEvent::Ends);
        match action {
            FaultAction::Part { node, ref fault } => {
                if self.part_began[i] && self.nodes[node as usize].alive {
                    self.dispatch(node, |c, p| c.on_fault(p, fault, false));
                }
            }
            FaultAction::Crash { node, .. } => {
                let down = &mut self.down[node as usize];
                *down = down.checked_sub(1).expect("a crash fault ends only after it began");
                if *down == 0 {
                    self.restart(node);
                }
            }
            other => self.core.net.end(i, &other),
        }
    }

    fn log_fault(&mut self, label: String, event: FaultEvent) {
        let l = label.clone();
        self.core.trace.record(self.now, || TraceWhat::Fault(l, event));
        self.fault_log.push((self.now, label, event));
    }

    fn crash(&mut self, node: NodeId) {
        let i = node as usize;
        if !self.nodes[i].alive {
            return;
        }
        self.nodes[i].alive = false;
        self.nodes[i].incarnation += 1;
        // Its pending timers die with it (they must not keep the drain waiting).
        self.core.queue.cancel_timers_of(node);
        self.core.trace.digest.add(tag::CRASH);
        self.core.trace.digest.add(u64::from(node));
        self.core.trace.record(self.now, || TraceWhat::Crash(node, false));
        // What it held before and holds no more was lost with its memory.
        let before = self.holdings(i);
        self.nodes[i].component.crash();
        self.core.ledger.crashed(&before, &self.holdings(i));
        self.core.observer.crashed(self.now, node);
        // The dead process's connections close: every node it had talked to
        // hears so over the network (as a TCP reset would tell it).
        for peer in self.core.net.close_connections(node) {
            self.core.send(self.now, node, peer, Msg::Notice(Notice::PeerDown));
        }
        // Its connections, both ways, are gone: the next message on each
        // pair opens a new one.
        self.core.net.break_connections(node);
    }

    fn restart(&mut self, node: NodeId) {
        let i = node as usize;
        if self.nodes[i].alive {
            return;
        }
        self.nodes[i].alive = true;
        self.core.trace.digest.add(tag::RESTART);
        self.core.trace.digest.add(u64::from(node));
        self.core.trace.record(self.now, || TraceWhat::Crash(node, true));
        let mut i = 0;
        while i < self.deferred.len() {
            if self.deferred[i].0 == node {
                let (_, fault) = self.deferred.remove(i);
                self.dispatch(node, |c, p| c.on_fault(p, &fault, false));
            } else {
                i += 1;
            }
        }
        self.dispatch(node, |c, p| c.restart(p));
    }

    #[cold]
    #[inline(never)]
    fn start_drain(&mut self) {
        self.core.phase = Phase::Drain;
        self.run_end = self.now;
        self.core.trace.digest.add(tag::DRAIN);
        self.core.trace.record(self.now, || TraceWhat::Phase("drain"));
        // Heal in fault order, so the trace shows each healing; a fault that
        // had not begun is reported as skipped, not silently dropped.
        for i in 0..self.faults.len() {
            match self.faults[i].1 {
                FaultState::Active => self.fault_end(i),
                FaultState::Scheduled => {
                    self.faults[i].1 = FaultState::Over;
                    self.core.trace.digest.add(tag::SKIPPED);
                    let label = self.faults[i].0.label.clone();
                    self.log_fault(label, FaultEvent::Skipped);
                }
                FaultState::Over => {}
            }
        }
        self.core.net.heal_randomness();
        for node in 0..self.nodes.len() as NodeId {
            if self.nodes[node as usize].alive {
                self.dispatch(node, |c, p| c.drain(p));
            }
        }
        self.core.queue.push(self.now.saturating_add(self.limits.drain_ns), Ev::EndDrain);
    }

    #[cold]
    #[inline(never)]
    fn finish_phase(&mut self) {
        if self.core.phase == Phase::Run {
            self.run_end = self.now;
        }
        self.core.phase = Phase::Done;
        self.core.trace.record(self.now, || TraceWhat::Phase("end"));
        self.publish();
    }

    /// Node names, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Streams the trace (if [`RunLimits::trace_limit`] asks for one) to
    /// `sink` as it is recorded, instead of keeping it in memory; the sink
    /// comes back in [`RunOutput::trace_sink`].
    pub fn stream_trace(&mut self, sink: Box<dyn crate::trace::TraceSink>) {
        self.core.trace.stream_to(sink);
    }

    /// Runs to the end and settles the accounts.
    pub fn run(mut self) -> RunOutput {
        if !self.started {
            self.begin();
        }
        if self.core.phase != Phase::Done {
            self.dispatch_events(false);
        }
        self.finish()
    }

    /// The messages node `i` holds (for any domain), sorted.
    fn holdings(&self, i: usize) -> Vec<MsgId> {
        let (mut held, mut held_in) = (Vec::new(), Vec::new());
        self.nodes[i].component.held(&mut held);
        self.nodes[i].component.held_in(&mut held_in);
        held.extend(held_in.into_iter().map(|(id, _)| id));
        held.sort_unstable();
        held.dedup();
        held
    }

    /// What is still somewhere at the end: in a live node (for every domain,
    /// or for one), or on the wire.
    fn still_held(&self) -> (Vec<MsgId>, Vec<(MsgId, DomainId)>) {
        let mut held = Vec::new();
        let mut held_in = Vec::new();
        for node in &self.nodes {
            if node.alive {
                node.component.held(&mut held);
                node.component.held_in(&mut held_in);
            }
        }
        for ev in self.core.queue.pending() {
            if let Ev::Arrive { msg, .. } = &ev {
                msg.carried(&mut held);
            }
        }
        (held, held_in)
    }

    /// Every node's gauges at `now`, if a sample will be kept then.
    fn gauges(&self, now: Time) -> crate::metrics::Gauges {
        let mut gauges = crate::metrics::Gauges::default();
        if self.core.metrics.wants_sample(now) {
            for node in &self.nodes {
                node.component.gauges(now, &mut gauges);
            }
            self.core.observer.gauges(&mut gauges);
        }
        gauges
    }

    fn finish(mut self) -> RunOutput {
        // Rates and averages are taken over [0, end]: up to the last first
        // application, so that a stale timer firing late in the drain does
        // not dilute them.
        // A run that ended because nothing could happen any more (a producer
        // crashed for good, say) ended, for rates, at its last application.
        let run_end = if self.quiescent { 0 } else { self.run_end };
        let end = self.core.ledger.last_applied().max(run_end);
        let l = &self.core.ledger;
        let (p, c, lag) = (l.produced(), l.processed(), l.unapplied());
        let latency = l.latency.totals();
        let gauges = self.gauges(end);
        self.core.metrics.sample(end, p, c, lag, gauges, latency);
        let mean_in_system = self.core.ledger.mean_in_system(end);
        let (mut held, mut held_in) = self.still_held();
        let verdict = self.core.ledger.finish(&mut held, &mut held_in);
        let truncated = self.core.trace.truncated();
        let digest = self.core.trace.digest.hex();
        let (trace, trace_sink) = std::mem::take(&mut self.core.trace).into_parts();
        let samples = std::mem::take(&mut self.core.metrics.samples);
        let steady_state = self
            .steady
            .as_ref()
            .map(|spec| crate::stats::steady::analyse(spec, &samples, self.limits.sample_ns, self.run_end));
        RunOutput {
            stopped: self.stopped,
            counts: verdict.counts,
            domains: verdict.domains,
            inconsistent: verdict.inconsistent,
            dead_letters: verdict.dead_letters,
            time_to_drain_s: crate::metrics::time_to_drain_s(&samples),
            metrics: std::mem::take(&mut self.core.metrics.named),
            latency: self.core.ledger.latency.summary(),
            latency_cdf: self.core.ledger.latency.cdf(),
            lost: verdict.lost,
            marks: std::mem::take(&mut self.core.marks),
            wait: self.core.ledger.wait.summary(),
            mean_in_system,
            errors: std::mem::take(&mut self.core.metrics.errors),
            timings: self.core.metrics.timing_summaries(),
            state: self.core.observer.report(),
            errors_total: self.core.metrics.errors_total,
            max_queue_depth: self.core.metrics.depth_max,
            network: self.core.net.stats.clone(),
            run_end: self.run_end,
            end,
            last_event: self.last_work,
            drain_complete: !self.drain_cut && self.stopped.is_none(),
            events: self.events,
            digest,
            fault_log: self.fault_log,
            samples,
            trace,
            trace_sink,
            trace_truncated: truncated,
            names: self.names,
            steady_state,
        }
    }
}

#[cfg(test)]
mod tests;
