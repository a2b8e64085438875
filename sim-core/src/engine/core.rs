//! The run state that effects change: the event queue, the network, the
//! ledger, the metrics, the trace and the stores, and how each effect a
//! component emits is applied to them. Components never see this; they
//! see their [`super::Ctx`].

use super::effect::{Effect, Fact, Metric};
use super::queue::EventQueue;
use super::Phase;
use crate::dedup::Stores;
use crate::ledger::{DomainId, DupCause, Ledger, LossCause};
use crate::message::{Msg, NodeId, Protocol};
use crate::metrics::Metrics;
use crate::net::{Delivery, Network};
use crate::time::{Duration, Time};
use crate::trace::{DropReason, Trace, TraceWhat};

/// Most marks ([`Fact::Mark`]) a run keeps; later ones still reach the trace.
pub(crate) const MAX_MARKS: usize = 10_000;
/// Most marks of one name a run keeps, so that a frequent moment (a
/// transaction commit) leaves room for the rare ones (an election).
pub(crate) const MAX_MARKS_EACH: u32 = 1_000;

/// Shared run state the engine applies effects to.
pub(crate) struct Core {
    pub(crate) seed: u64,
    pub(crate) stores: Stores,
    pub(super) queue: EventQueue,
    pub(crate) net: Network,
    pub(super) ledger: Ledger,
    /// The judge of state (balances, replicas, aggregates).
    pub(super) observer: crate::observer::Observer,
    /// Nodes that handlers asked to start (true) or stop (false): the
    /// engine does it once the handler returns.
    pub(super) node_requests: Vec<(NodeId, bool)>,
    pub(super) metrics: Metrics,
    pub(super) trace: Trace,
    /// Each node's effect domain (for nodes that apply effects), for the
    /// rare lookup of another node's; a handler's own comes in its context.
    pub(crate) domain_of: Vec<DomainId>,
    pub(crate) phase: Phase,
    pub(super) producers_total: usize,
    pub(super) producers_active: usize,
    /// Set when the last active producer retires: the engine ends the run
    /// phase after the event (and clears it), so that it checks one flag
    /// per event rather than the counts and the phase.
    pub(super) all_retired: bool,
    /// Producers that will produce no more in the run phase: done, or
    /// crashed with no restart before the drain.
    pub(super) retired: Vec<bool>,
    /// Notable moments components marked: (time, node, what), at most
    /// [`MAX_MARKS`].
    pub(super) marks: Vec<(Time, NodeId, &'static str)>,
    /// How many marks of each name were kept (few names: a list).
    mark_counts: Vec<(&'static str, u32)>,
}

impl Core {
    /// The state of a run of `n` nodes, `producers` of which produce.
    pub(super) fn new(seed: u64, n: usize, net: Network, trace: Trace, producers: usize) -> Self {
        Core {
            seed,
            stores: Stores::default(),
            queue: EventQueue::new(),
            net,
            ledger: Ledger::default(),
            observer: Default::default(),
            node_requests: Vec::new(),
            metrics: Metrics::new(n),
            trace,
            domain_of: vec![0; n],
            phase: Phase::Run,
            producers_total: producers,
            producers_active: producers,
            all_retired: false,
            retired: vec![false; n],
            marks: Vec::new(),
            mark_counts: Vec::new(),
        }
    }

    /// Applies one effect emitted at `now` by `node`, in its (incarnation,
    /// effect domain). Always inlined: a context emits one known kind at
    /// each call site, so the match folds.
    #[inline(always)]
    pub(crate) fn apply(&mut self, now: Time, node: NodeId, (incarnation, domain): (u32, DomainId), effect: Effect) {
        match effect {
            Effect::Send { to, msg } => self.send(now, node, to, msg),
            Effect::SetTimer { delay, timer, background } => {
                self.set_timer(now, node, incarnation, delay, timer, background)
            }
            Effect::CancelTimer { timer } => self.queue.cancel_timer(node, timer),
            // The frequent facts and figures go straight to their own small
            // functions (the match folds at each call site), the rest
            // through one out-of-line match.
            Effect::Fact(Fact::Produced { id, key, fire_and_forget }) => {
                self.produced(now, node, id, key, fire_and_forget)
            }
            Effect::Fact(Fact::Confirmed(id)) => self.ledger.confirm(id),
            Effect::Fact(Fact::Started(id)) => self.started(now, node, id),
            Effect::Fact(Fact::Applied(id)) => self.applied(now, node, domain, id),
            Effect::Fact(fact) => self.fact(now, node, fact),
            Effect::Metric(Metric::QueueDepth(depth)) => self.metrics.set_depth(node as usize, depth),
            Effect::Metric(Metric::Timing(kind, ns)) => self.metrics.timing(kind, ns),
            Effect::Metric(metric) => self.metric(node, metric),
            Effect::Node(target, up) => self.node_requests.push((target, up)),
        }
    }

    /// Sets timer `tag` of `node` (in its `incarnation`) to fire after
    /// `delay` (inlined into the context's `set_timer`).
    #[inline(always)]
    pub(crate) fn set_timer(
        &mut self,
        now: Time,
        node: NodeId,
        incarnation: u32,
        delay: Duration,
        tag: u64,
        background: bool,
    ) {
        self.queue.push_timer(now.saturating_add(delay), node, incarnation, tag, background);
    }

    /// The id the next produced message gets.
    #[inline]
    pub(crate) fn next_id(&self) -> crate::message::MsgId {
        self.ledger.produced()
    }

    /// Marks producer `node` as finished with the run phase (once).
    pub(super) fn retire(&mut self, node: NodeId) {
        let retired = &mut self.retired[node as usize];
        if !*retired {
            *retired = true;
            self.producers_active = self.producers_active.checked_sub(1).expect("a producer retires once");
            self.all_retired = self.producers_active == 0;
        }
    }

    /// Hands `msg` to the network and schedules the copies that survive.
    /// Inlined into each context's send. The network's fast path needs
    /// nothing of the message, so a message that takes it goes from where
    /// its handler builds it straight into the event queue; only the
    /// general path, out of line, takes it whole.
    #[inline(always)]
    pub(crate) fn send(&mut self, now: Time, from: NodeId, to: NodeId, msg: Msg) {
        match self.net.send_fast(now, from, to, self.trace.enabled()) {
            Some(delay) => self.queue.push_arrive(now.saturating_add(delay), from, to, msg),
            None => self.send_general(now, from, to, msg),
        }
    }

    /// [`Core::send`] by the network's general path.
    #[inline(never)]
    fn send_general(&mut self, now: Time, from: NodeId, to: NodeId, msg: Msg) {
        match self.net.send_general(now, from, to, &msg, &mut self.trace) {
            Delivery::Arrives { delay, copy } => {
                if let Some(copy) = copy {
                    self.copied(now.saturating_add(copy), from, to, &msg);
                }
                self.queue.push_arrive(now.saturating_add(delay), from, to, msg);
            }
            Delivery::Dropped(reason) => self.dropped(reason, &msg),
        }
    }

    /// The network made an extra copy of `msg`, arriving at `at`.
    #[cold]
    #[inline(never)]
    fn copied(&mut self, at: Time, from: NodeId, to: NodeId, msg: &Msg) {
        self.ledger.all_copied(|ids| msg.carried(ids), DupCause::NetworkCopy);
        self.queue.push_arrive(at, from, to, msg.clone());
    }

    /// Tells the ledger why what `msg` carries may be lost: the reason the
    /// network dropped it.
    #[cold]
    #[inline(never)]
    pub(super) fn dropped(&mut self, reason: DropReason, msg: &Msg) {
        let cause = match reason {
            DropReason::Partition => LossCause::Partition,
            DropReason::Crashed => LossCause::CrashedReceiver,
            DropReason::Loss => LossCause::NetworkLoss,
        };
        self.ledger.all_at_risk(|ids| msg.carried(ids), cause);
    }

    /// Applies a cause or a mark a component at `node` reported (off the hot
    /// path).
    #[cold]
    #[inline(never)]
    fn cause(&mut self, now: Time, node: NodeId, fact: Fact) {
        match fact {
            Fact::Discarded { id, cause, reader, domain } => {
                let domain = domain.or(reader.map(|r| self.domain_of[r as usize]));
                self.ledger.at_risk(id, cause, domain);
            }
            Fact::Resent { id, cause } => self.ledger.copied(id, cause),
            Fact::DeadLettered(id) => self.ledger.dead_lettered(id),
            Fact::Mark(what) => {
                if self.marks.len() < MAX_MARKS && self.count_mark(what) {
                    self.marks.push((now, node, what));
                }
                self.trace.record(now, || TraceWhat::Mark(node, what));
            }
            _ => unreachable!("only causes come here, from {node}"),
        }
    }

    /// Counts a mark named `what`: false once [`MAX_MARKS_EACH`] of them
    /// were kept.
    fn count_mark(&mut self, what: &'static str) -> bool {
        let at = match self.mark_counts.iter().position(|(w, _)| *w == what) {
            Some(at) => at,
            None => {
                self.mark_counts.push((what, 0));
                self.mark_counts.len() - 1
            }
        };
        let n = &mut self.mark_counts[at].1;
        *n += 1;
        *n <= MAX_MARKS_EACH
    }

    /// Hands a fact about state to the observer (off the hot path).
    #[cold]
    #[inline(never)]
    fn observe(&mut self, now: Time, node: NodeId, fact: crate::observer::StateFact) {
        self.observer.record(now, node, fact);
    }

    /// `node` produced message `id`.
    #[inline(always)]
    fn produced(&mut self, now: Time, node: NodeId, id: crate::message::MsgId, key: u64, fire_and_forget: bool) {
        let got = self.ledger.produce(now, node, key, fire_and_forget);
        assert_eq!(got, id, "the context allocates ids in the ledger's order");
    }

    /// `node` starts processing message `id`.
    #[inline(always)]
    fn started(&mut self, now: Time, node: NodeId, id: crate::message::MsgId) {
        self.ledger.started(now, id);
        self.trace.record(now, || TraceWhat::Process(node, id, false));
    }

    /// `node` applied the effect of message `id` in its `domain`.
    #[inline(always)]
    fn applied(&mut self, now: Time, node: NodeId, domain: DomainId, id: crate::message::MsgId) {
        self.ledger.applied(now, domain, id);
        self.trace.record(now, || TraceWhat::Process(node, id, true));
    }

    /// Applies one fact a component at `node` reported (the frequent ones
    /// come to their own functions from [`Core::apply`]).
    #[inline(never)]
    fn fact(&mut self, now: Time, node: NodeId, fact: Fact) {
        match fact {
            Fact::Produced { id, key, fire_and_forget } => self.produced(now, node, id, key, fire_and_forget),
            Fact::Confirmed(id) => self.ledger.confirm(id),
            Fact::Started(id) => self.started(now, node, id),
            Fact::Applied(id) => self.applied(now, node, self.domain_of[node as usize], id),
            Fact::ProducerDone => self.retire(node),
            Fact::State(s) => self.observe(now, node, s),
            Fact::Discarded { .. } | Fact::Resent { .. } | Fact::DeadLettered(_) | Fact::Mark(_) => {
                self.cause(now, node, fact)
            }
        }
    }

    /// Applies one figure a component at `node` reported.
    #[inline(never)]
    fn metric(&mut self, node: NodeId, metric: Metric) {
        match metric {
            Metric::Add(name, v) => self.metrics.add(name, v),
            Metric::Set(name, v) => self.metrics.set(name, v),
            Metric::Max(name, v) => self.metrics.max(name, v),
            Metric::Error(kind) => self.metrics.error(kind),
            Metric::QueueDepth(depth) => self.metrics.set_depth(node as usize, depth),
            Metric::Timing(kind, ns) => self.metrics.timing(kind, ns),
        }
    }
}
