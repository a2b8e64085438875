//! The network between nodes, and every fault the simulator can inject.
//!
//! A message sent from one node to another is, in this order: dropped if a
//! partition separates the pair; dropped with the link's loss probability
//! (raised by any active loss spike); duplicated with the link's duplication
//! probability; and delayed by a draw from the link's latency distribution,
//! stretched by the slower endpoint's slow-node factor. Each copy that
//! survives becomes an arrival event. Reordering is not a separate knob: it
//! comes from latency jitter, exactly as on a real network. With a constant
//! latency a link is FIFO, because equal-time events keep their send order
//! (except across the start or end of a slow-node fault, which changes the
//! latency of later messages).
//!
//! An arrival is dropped too if, when it lands, a partition separates the
//! pair or the destination is crashed: nothing crosses a partition while it
//! is in force, and a crashed node receives nothing.
//!
//! Faults are data ([`FaultAction`]) with a start and an optional end; the
//! drain phase heals them all, and also turns off random loss and
//! duplication, so that "eventually" guarantees get their chance.
//!
//! The network decides; the engine schedules. `Network::send` returns a
//! [`Delivery`] (dropped, or arriving after a delay, perhaps twice) and
//! `Network::on_arrival` whether an arriving copy may land, so every fault
//! rule lives here, once.
//!
//! Left out: bandwidth and message sizes (links have no capacity), and
//! per-connection TCP semantics (each message is an independent datagram).

use crate::digest::tag;
use crate::dist::Sampler;
use crate::message::{Msg, NodeId, Protocol};
use crate::rng::{chance, stream, SimRng};
use crate::time::{Duration, Time};
use crate::trace::{DropReason, Trace, TraceWhat, Wire};
use serde::Serialize;

/// Folds a happening on the wire into the run's digest.
fn fold_wire(trace: &mut Trace, tag: u64, now: Time, from: NodeId, to: NodeId, msg: &Msg) {
    trace.digest.add(tag);
    trace.digest.add(now);
    trace.digest.add(u64::from(from) << 32 | u64::from(to));
    msg.fold(&mut trace.digest);
}

/// What the network does with one message sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It is lost (a partition or random loss).
    Dropped,
    /// It arrives after `delay`; with `copy`, a duplicate arrives after
    /// that delay too (the copy is scheduled first).
    Arrives {
        /// The original's delay.
        delay: Duration,
        /// A duplicate's delay, if the network duplicates it.
        copy: Option<Duration>,
    },
}

/// The trace's view of a message on the wire.
fn wire(from: NodeId, to: NodeId, msg: &Msg) -> Wire {
    Wire { from, to, msg: msg.name(), id: msg.id() }
}

/// How one directed link behaves.
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// Latency of each message on the link.
    pub latency: Sampler,
    /// Probability that a message is lost.
    pub loss_probability: f64,
    /// Probability that a message is delivered twice.
    pub duplicate_probability: f64,
}

struct Link {
    model: LinkModel,
    rng: SimRng,
}

/// What a fault does while it is in force.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Messages from the first to the second node of each pair are dropped.
    /// A two-way partition lists both directions.
    Partition {
        /// Directed (from, to) pairs that cannot talk.
        blocked: Vec<(NodeId, NodeId)>,
    },
    /// The node stops: its volatile state is lost, its timers are cancelled,
    /// messages to it are dropped. It restarts when the fault ends.
    Crash {
        /// Which node.
        node: NodeId,
    },
    /// A part of the node fails: the node is told and acts it out.
    Part {
        /// Which node.
        node: NodeId,
        /// What fails.
        fault: NodeFault,
    },
    /// The node's links and processing take `factor` times longer.
    Slow {
        /// Which node.
        node: NodeId,
        /// The latency multiplier.
        factor: f64,
    },
    /// Loss probability rises to at least `probability` on every link that
    /// touches one of `nodes` (every link when `nodes` is empty).
    LossSpike {
        /// The raised loss probability.
        probability: f64,
        /// Links touching these nodes are affected; empty means all links.
        nodes: Vec<NodeId>,
    },
}

/// A fault aimed at a part of a node, which the node itself carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeFault {
    /// Replica `replica` of a log broker crashes (restarts at the end).
    ReplicaCrash {
        /// Replica index.
        replica: u32,
    },
    /// Whichever replica leads `partition` of `topic` when the fault begins
    /// crashes (and restarts at the end).
    LeaderCrash {
        /// Topic index.
        topic: u16,
        /// Partition.
        partition: u32,
        /// The fault's number in the scenario: its end restarts the
        /// replica its begin crashed, even when such faults overlap.
        fault: u32,
    },
}

/// A scheduled fault: an action in force from `start` until `end` (or until
/// the drain phase heals it).
#[derive(Debug, Clone)]
pub struct Fault {
    /// When it begins.
    pub start: Time,
    /// When it ends by itself; `None` means at the drain.
    pub end: Option<Time>,
    /// What it does.
    pub action: FaultAction,
    /// A human description for traces and summaries.
    pub label: String,
}

/// Counts of what the network did to messages. These are observations, not
/// the ledger's verdicts: a dropped ack is not a lost message.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Copies that arrived at a live destination.
    pub arrived: u64,
    /// Dropped by random loss (including loss spikes).
    pub dropped_loss: u64,
    /// Dropped because a partition separated the endpoints.
    pub dropped_partition: u64,
    /// Dropped because the destination was crashed on arrival.
    pub dropped_crashed: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
}

/// The network: links, partitions, slow nodes and loss spikes.
pub struct Network {
    n: usize,
    links: Vec<Link>,
    /// Per directed pair, how many partitions currently block it, so that
    /// overlapping partitions heal independently.
    blocked: Vec<u16>,
    slow: Vec<f64>,
    /// Active slow faults (fault id, node, factor): a node is as slow as the
    /// slowest fault on it, so overlapping faults end independently.
    slowdowns: Vec<(usize, NodeId, f64)>,
    spikes: Vec<(usize, f64, Vec<NodeId>)>,
    healed: bool,
    /// What the network did, for the summary.
    pub stats: NetStats,
}

impl Network {
    /// A network of `names.len()` nodes where every directed link uses
    /// `model(from, to)`. Each link draws from its own stream, named after
    /// its endpoints.
    pub fn new(seed: u64, names: &[String], model: impl Fn(usize, usize) -> LinkModel) -> Self {
        let n = names.len();
        let mut links = Vec::with_capacity(n * n);
        for from in 0..n {
            for to in 0..n {
                links.push(Link {
                    model: model(from, to),
                    rng: stream(seed, &format!("link:{}->{}", names[from], names[to])),
                });
            }
        }
        Network {
            n,
            links,
            blocked: vec![0; n * n],
            slow: vec![1.0; n],
            slowdowns: Vec::new(),
            spikes: Vec::new(),
            healed: false,
            stats: NetStats::default(),
        }
    }

    /// True while a partition keeps messages from `from` reaching `to`.
    #[inline]
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked[from as usize * self.n + to as usize] > 0
    }

    /// The slow-node factor of `node` (1.0 when not slowed).
    #[inline]
    pub fn slow_factor(&self, node: NodeId) -> f64 {
        self.slow[node as usize]
    }

    /// Decides the fate of `msg` sent now from `from` to `to`: partitions,
    /// loss, duplication and latency, in that order.
    pub(crate) fn send(&mut self, now: Time, from: NodeId, to: NodeId, msg: &Msg, trace: &mut Trace) -> Delivery {
        self.stats.sent += 1;
        let index = from as usize * self.n + to as usize;
        if self.blocked[index] > 0 {
            self.stats.dropped_partition += 1;
            fold_wire(trace, tag::DROP, now, from, to, msg);
            trace.record(now, || TraceWhat::Drop(wire(from, to, msg), DropReason::Partition));
            return Delivery::Dropped;
        }
        let loss = if self.healed { 0.0 } else { self.loss_probability(index, from, to) };
        let factor = self.slow[from as usize].max(self.slow[to as usize]);
        let link = &mut self.links[index];
        if chance(&mut link.rng, loss) {
            self.stats.dropped_loss += 1;
            fold_wire(trace, tag::DROP, now, from, to, msg);
            trace.record(now, || TraceWhat::Drop(wire(from, to, msg), DropReason::Loss));
            return Delivery::Dropped;
        }
        let duplicate = !self.healed && chance(&mut link.rng, link.model.duplicate_probability);
        let copy = duplicate.then(|| link.model.latency.sample_scaled_ns(&mut link.rng, factor));
        let delay = link.model.latency.sample_scaled_ns(&mut link.rng, factor);
        if copy.is_some() {
            self.stats.duplicated += 1;
            fold_wire(trace, tag::DUPLICATE, now, from, to, msg);
            trace.record(now, || TraceWhat::Duplicate(wire(from, to, msg)));
        }
        trace.record(now, || TraceWhat::Send(wire(from, to, msg), delay));
        Delivery::Arrives { delay, copy }
    }

    /// Whether a copy arriving now from `from` at `to` lands: not while a
    /// partition separates them, and not at a crashed node.
    pub(crate) fn on_arrival(&mut self, from: NodeId, to: NodeId, to_alive: bool) -> Option<DropReason> {
        let reason = if self.is_blocked(from, to) {
            self.stats.dropped_partition += 1;
            DropReason::Partition
        } else if !to_alive {
            self.stats.dropped_crashed += 1;
            DropReason::Crashed
        } else {
            self.stats.arrived += 1;
            return None;
        };
        Some(reason)
    }

    fn loss_probability(&self, index: usize, from: NodeId, to: NodeId) -> f64 {
        let mut p = self.links[index].model.loss_probability;
        for (_, spike, nodes) in &self.spikes {
            if nodes.is_empty() || nodes.contains(&from) || nodes.contains(&to) {
                p = p.max(*spike);
            }
        }
        p
    }

    /// Puts the network part of fault number `id` in force. Crashes are the
    /// engine's business and are ignored here.
    pub(crate) fn begin(&mut self, id: usize, action: &FaultAction) {
        match action {
            FaultAction::Partition { blocked } => {
                for &(a, b) in blocked {
                    self.blocked[a as usize * self.n + b as usize] += 1;
                }
            }
            FaultAction::Slow { node, factor } => {
                self.slowdowns.push((id, *node, *factor));
                self.update_slow(*node);
            }
            FaultAction::LossSpike { probability, nodes } => self.spikes.push((id, *probability, nodes.clone())),
            FaultAction::Crash { .. } | FaultAction::Part { .. } => {}
        }
    }

    /// Lifts the network part of fault number `id`.
    pub(crate) fn end(&mut self, id: usize, action: &FaultAction) {
        match action {
            FaultAction::Partition { blocked } => {
                for &(a, b) in blocked {
                    let c = &mut self.blocked[a as usize * self.n + b as usize];
                    *c = c.checked_sub(1).expect("a partition ends only after it began");
                }
            }
            FaultAction::Slow { node, .. } => {
                self.slowdowns.retain(|(i, _, _)| *i != id);
                self.update_slow(*node);
            }
            FaultAction::LossSpike { .. } => self.spikes.retain(|(i, _, _)| *i != id),
            FaultAction::Crash { .. } | FaultAction::Part { .. } => {}
        }
    }

    fn update_slow(&mut self, node: NodeId) {
        self.slow[node as usize] =
            self.slowdowns.iter().filter(|(_, n, _)| *n == node).map(|(_, _, f)| *f).fold(1.0, f64::max);
    }

    /// The drain: no more random loss or duplication (faults are ended one
    /// by one by the engine, so that each end shows in the trace).
    pub(crate) fn heal_randomness(&mut self) {
        self.healed = true;
    }
}
