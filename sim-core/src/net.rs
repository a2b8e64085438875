//! The network between nodes, and every fault the simulator can inject.
//!
//! A message sent from one node to another is, in this order: dropped if a
//! partition separates the pair; dropped with the link's loss probability
//! (raised by any active loss spike); duplicated with the link's duplication
//! probability (raised by any active duplicate spike); and delayed by a draw
//! from the link's latency distribution, stretched by the slower endpoint's
//! slow-node factor. Each copy that survives becomes an arrival event.
//!
//! A link may have a bandwidth. Then a message first waits until its
//! connection has finished transmitting what was sent on it before, then
//! takes its wire size ([`Protocol::wire_bytes`]) over the bandwidth to
//! transmit, and then its latency: a connection is a queue that serves
//! bytes at the link's rate, so once the offered bytes per second pass the
//! bandwidth, the wait grows without bound. A duplicate is transmitted
//! once (the copy is the network's doing); a message held back by
//! `reorder_probability` still takes its turn on the connection. The
//! transmission state lives with the pair's link, so only pairs that talk
//! keep one. A link without a bandwidth (the default) transmits
//! instantly, and never asks a message its size.
//!
//! Messages travel on connections, which keep their order as TCP does. Each
//! directed pair of nodes that talks has one connection at a time, and
//! remembers the latest arrival it scheduled on it: jitter, or a slow-node
//! fault, delays a message, but never to before that arrival (equal times
//! keep the send order). So a message is never overtaken within its
//! connection. Reordering happens only:
//!
//! - across connections: two senders to one receiver, or one sender to two
//!   receivers, have no order between them;
//! - after a reconnect: a crash of either end, or a partition blocking the
//!   pair, breaks the connection, and the next message opens a new one that
//!   does not wait for the old one's messages still on the wire;
//! - explicitly: with a link's `reorder_probability` (raised by any active
//!   `reorder` fault) a message leaves the connection's order. It is held
//!   back by a second latency draw, does not wait for earlier messages, and
//!   later ones do not wait for it.
//!
//! An arrival is dropped too if, when it lands, a partition separates the
//! pair or the destination is crashed: nothing crosses a partition while it
//! is in force, and a crashed node receives nothing.
//!
//! Faults are data ([`FaultAction`]) with a start and an optional end; the
//! drain phase heals them all, and also turns off random loss, duplication
//! and reordering, so that "eventually" guarantees get their chance.
//!
//! The network decides; the engine schedules. `Network::send` returns a
//! [`Delivery`] (dropped, or arriving after a delay, perhaps twice) and
//! `Network::on_arrival` whether an arriving copy may land, so every fault
//! rule lives here, once.
//!
//! Left out: a bandwidth shared between connections (each directed pair
//! has the link's full bandwidth: a node's network card is not a
//! bottleneck), a crash's effect on bytes queued to transmit (a new
//! connection still waits for them), and the rest of TCP: a connection is
//! an order and, with a bandwidth, a rate, nothing more. Opening one costs no
//! handshake; a lost message is simply lost (no retransmission, so it holds
//! back nothing behind it); and there is no flow control.

use crate::digest::tag;
use crate::dist::Sampler;
use crate::message::{Msg, NodeId, Protocol};
use crate::rng::{chance, stream, SimRng};
use crate::size::Bandwidth;
use crate::time::{Duration, Time};
use crate::trace::{DropReason, Trace, TraceWhat, Wire};
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// It is lost, for this reason (a partition or random loss).
    Dropped(DropReason),
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
    /// Probability that a message leaves its connection's order (see the
    /// module doc).
    pub reorder_probability: f64,
    /// How fast a connection on the link transmits (none: instantly).
    pub bandwidth: Option<Bandwidth>,
}

impl LinkModel {
    /// A link with `latency` that loses, duplicates and reorders nothing.
    pub fn reliable(latency: Sampler) -> Self {
        LinkModel {
            latency,
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            reorder_probability: 0.0,
            bandwidth: None,
        }
    }
}

struct Link {
    model: LinkModel,
    rng: SimRng,
    /// With a bandwidth: when the pair's connection has finished
    /// transmitting what was sent on it so far.
    busy_until: Time,
    /// The latency of a link that can only deliver, once, after a constant
    /// latency (no loss, duplication or reordering of its own, no
    /// bandwidth): such a link draws no random number, so while no spike is
    /// in force [`Network::send`] skips the general path (same draws: none).
    constant: Option<Duration>,
}

impl Link {
    fn new(model: LinkModel, rng: SimRng) -> Self {
        let m = &model;
        let plain = m.loss_probability <= 0.0
            && m.duplicate_probability <= 0.0
            && m.reorder_probability <= 0.0
            && m.bandwidth.is_none();
        let constant = match m.latency {
            Sampler::Constant(ns) if plain => Some(ns),
            _ => None,
        };
        Link { model, rng, busy_until: 0, constant }
    }
}

impl Link {
    /// With a bandwidth, the time from `now` until `msg` has been
    /// transmitted: it starts once the connection is free and takes its
    /// wire size over the bandwidth. Without one, no time.
    #[inline]
    fn transmission(&mut self, now: Time, msg: &Msg) -> Duration {
        match self.model.bandwidth {
            None => 0,
            Some(bw) => {
                let done = self.busy_until.max(now).saturating_add(bw.transmit_ns(msg.wire_bytes()));
                self.busy_until = done;
                done - now
            }
        }
    }
}

/// What the network knows about one directed pair of nodes. A pair exists
/// only once something happened on it (a send, or a partition between the
/// two), so memory grows with the pairs in use, not with the square of the
/// node count.
struct Pair {
    to: NodeId,
    /// How many partitions currently block it, so that overlapping
    /// partitions heal independently.
    blocked: u16,
    /// The sender has sent on it since it last crashed: the receiver hears
    /// when the sender's process dies (its connection closes).
    connected: bool,
    /// The latest arrival scheduled on the current connection (0: none, or
    /// the connection broke): a message in order never arrives before it.
    last: Time,
    /// The link's [`Link::constant`] latency, once the link is made: kept
    /// here so that [`Network::send`]'s fast path reads the pair alone.
    constant: Option<Duration>,
    /// The link's model and random stream, made on the first send.
    link: Option<Box<Link>>,
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
        /// The node is lost with its disk: it is told first
        /// ([`NodeFault::DiskLoss`]), so that it forgets its durable state too.
        lose_disk: bool,
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
    /// Duplication probability rises to at least `probability` on every
    /// link that touches one of `nodes` (every link when `nodes` is empty).
    DuplicateSpike {
        /// The raised duplication probability.
        probability: f64,
        /// Links touching these nodes are affected; empty means all links.
        nodes: Vec<NodeId>,
    },
    /// Reorder probability rises to at least `probability` on every link
    /// that touches one of `nodes` (every link when `nodes` is empty).
    Reorder {
        /// The raised reorder probability.
        probability: f64,
        /// Links touching these nodes are affected; empty means all links.
        nodes: Vec<NodeId>,
    },
}

/// Which probability of a link a spike raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raises {
    Loss,
    Duplication,
    Reordering,
}

/// A spike in force: fault number `id` raises `what` to at least
/// `probability` on links touching `nodes` (all links when empty).
struct Spike {
    id: usize,
    what: Raises,
    probability: f64,
    nodes: Vec<NodeId>,
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
    /// Replicas of a log broker lose power at once: they crash and lose
    /// what they had not flushed to disk (restart at the end).
    PowerLoss {
        /// Replica indices; empty: every replica.
        replicas: Vec<u32>,
    },
    /// The node is lost with its disk (a `node-loss` fault): told just
    /// before it crashes, it forgets everything, durable state included,
    /// and comes back empty when the fault ends.
    DiskLoss,
    /// The node answers each call with an error (500), without doing the
    /// work, with probability `ppm` / 1,000,000 (an `errors` fault); a queue
    /// consumer's processing attempt fails so (its dependency failing). Only
    /// kinds that say so take it ([`crate::kind::Kind::ACCEPTS_ERRORS_FAULT`]).
    Errors {
        /// The probability of an error, in millionths.
        ppm: u32,
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

/// The index of the pair to `to` in a sender's sorted list, made if new
/// (then counted in `made`).
fn find_or_insert(list: &mut Vec<Pair>, to: NodeId, made: &mut usize) -> usize {
    match list.binary_search_by_key(&to, |p| p.to) {
        Ok(i) => i,
        Err(i) => {
            list.insert(i, Pair { to, blocked: 0, connected: false, last: 0, constant: None, link: None });
            *made += 1;
            i
        }
    }
}

/// The pair to `to` in a sender's sorted list, if there is one, looked up
/// for a send's fast path: most senders send to a few receivers (a
/// consumer to its broker, a broker to its consumers), and a scan of a
/// short list is inlined where the slice's binary search is a call (mm1
/// 200k: two look-ups a message, about 22 instructions each in the call).
#[inline(always)]
fn find_mut(list: &mut [Pair], to: NodeId) -> Option<&mut Pair> {
    if list.len() <= 4 {
        return list.iter_mut().find(|p| p.to == to);
    }
    let i = list.binary_search_by_key(&to, |p| p.to).ok()?;
    Some(&mut list[i])
}

/// A link's loss, duplication and reorder probabilities: none once
/// `healed` (the drain), else raised by the `spikes` in force.
#[cold]
#[inline(never)]
fn raised(m: &LinkModel, healed: bool, spikes: &[Spike], from: NodeId, to: NodeId) -> (f64, f64, f64) {
    if healed {
        return (0.0, 0.0, 0.0);
    }
    (
        spiked(m.loss_probability, Raises::Loss, spikes, from, to),
        spiked(m.duplicate_probability, Raises::Duplication, spikes, from, to),
        spiked(m.reorder_probability, Raises::Reordering, spikes, from, to),
    )
}

/// A link's probability `base` of `what`, raised by every spike of it in
/// force on a link that touches `from` or `to`.
fn spiked(base: f64, what: Raises, spikes: &[Spike], from: NodeId, to: NodeId) -> f64 {
    let mut p = base;
    for s in spikes {
        if s.what == what && (s.nodes.is_empty() || s.nodes.contains(&from) || s.nodes.contains(&to)) {
            p = p.max(s.probability);
        }
    }
    p
}

/// Delays `delay` (and a duplicate's `copy`) of a message sent `now` so that
/// neither arrives before `last`, the connection's latest arrival, which
/// becomes the later of the two arrivals.
#[inline]
fn in_order(last: &mut Time, now: Time, delay: Duration, copy: Option<Duration>) -> (Duration, Option<Duration>) {
    let floor = last.saturating_sub(now);
    let delay = delay.max(floor);
    let copy = copy.map(|c| c.max(floor));
    *last = now.saturating_add(delay.max(copy.unwrap_or(0)));
    (delay, copy)
}

/// The network: links, partitions, slow nodes and spikes.
pub struct Network {
    seed: u64,
    /// Node names, which name each link's random stream.
    names: Vec<String>,
    /// The model of every link not in `models`.
    default: LinkModel,
    /// Links the scenario configured, by (from, to).
    models: BTreeMap<(NodeId, NodeId), LinkModel>,
    /// Per sender, the pairs in use, sorted by receiver.
    pairs: Vec<Vec<Pair>>,
    /// Partitions in force, so that a send skips the lookup when none is.
    partitions: usize,
    /// Pairs and links made so far, for the memory count.
    pairs_made: usize,
    links_made: usize,
    slow: Vec<f64>,
    /// Active slow faults (fault id, node, factor): a node is as slow as the
    /// slowest fault on it, so overlapping faults end independently.
    slowdowns: Vec<(usize, NodeId, f64)>,
    /// Loss, duplicate and reorder spikes in force.
    spikes: Vec<Spike>,
    healed: bool,
    /// No partition, slow node or spike is in force: a send on a link of
    /// constant latency takes the fast path (see [`Network::send`]).
    calm: bool,
    /// Tests set it to make every send take the general path.
    #[cfg(test)]
    general_only: bool,
    /// What the network did, for the summary.
    pub stats: NetStats,
}

impl Network {
    /// A network of `names.len()` nodes where every directed link uses
    /// `default` until [`Network::set_link`] says otherwise. Each link draws
    /// from its own stream, named after its endpoints, made when the link
    /// first carries a message.
    pub fn new(seed: u64, names: &[String], default: LinkModel) -> Self {
        let n = names.len();
        Network {
            seed,
            names: names.to_vec(),
            default,
            models: BTreeMap::new(),
            pairs: (0..n).map(|_| Vec::new()).collect(),
            partitions: 0,
            pairs_made: 0,
            links_made: 0,
            slow: vec![1.0; n],
            slowdowns: Vec::new(),
            spikes: Vec::new(),
            healed: false,
            calm: true,
            #[cfg(test)]
            general_only: false,
            stats: NetStats::default(),
        }
    }

    /// Gives the link from `from` to `to` its own model. Call before the run.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, model: LinkModel) {
        self.models.insert((from, to), model);
    }

    /// The pair from `from` to `to`, made if it is new.
    fn pair(&mut self, from: NodeId, to: NodeId) -> &mut Pair {
        let list = &mut self.pairs[from as usize];
        let i = find_or_insert(list, to, &mut self.pairs_made);
        &mut list[i]
    }

    /// True while a partition keeps messages from `from` reaching `to`.
    #[inline]
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        if self.partitions == 0 {
            return false;
        }
        let list = &self.pairs[from as usize];
        list.binary_search_by_key(&to, |p| p.to).is_ok_and(|i| list[i].blocked > 0)
    }

    /// The slow-node factor of `node` (1.0 when not slowed).
    #[inline]
    pub fn slow_factor(&self, node: NodeId) -> f64 {
        self.slow[node as usize]
    }

    /// Bytes of allocated capacity, about: the per-node lists (a list's
    /// capacity is at most twice its pairs), the links made and the
    /// configured models.
    pub(crate) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.pairs.capacity() * size_of::<Vec<Pair>>()
            + 2 * self.pairs_made * size_of::<Pair>()
            + self.links_made * size_of::<Link>()
            + self.models.len() * (size_of::<LinkModel>() + 2 * size_of::<NodeId>() + 16)
            + self.names.iter().map(|n| n.capacity() + size_of::<String>()).sum::<usize>()
            + self.slow.capacity() * size_of::<f64>()
    }

    /// The receivers `node` has sent to since it last crashed, in order,
    /// forgetting them: its process died, and each hears its connection close.
    pub(crate) fn close_connections(&mut self, node: NodeId) -> Vec<NodeId> {
        let mut peers = Vec::new();
        for p in &mut self.pairs[node as usize] {
            if std::mem::take(&mut p.connected) && p.to != node {
                peers.push(p.to);
            }
        }
        peers
    }

    /// `node` crashed: every connection from or to it is broken, so the next
    /// message on each of those pairs opens a new one, which does not wait
    /// for the old one's messages. Call after its connection-close notices
    /// are sent: they travel behind what it sent before. Crashes are rare,
    /// so this looks at every pair in use rather than keep a count per send.
    pub(crate) fn break_connections(&mut self, node: NodeId) {
        for p in &mut self.pairs[node as usize] {
            p.last = 0;
        }
        for list in &mut self.pairs {
            if let Ok(i) = list.binary_search_by_key(&node, |p| p.to) {
                list[i].last = 0;
            }
        }
    }

    /// Decides the fate of `msg` sent now from `from` to `to`: partitions,
    /// loss, duplication, latency and the connection's order, in that order.
    ///
    /// The common case is a fast path, small enough to inline into the
    /// engine: while no partition, slow node or spike is in force, a send
    /// on a link already made whose latency is constant and that loses,
    /// duplicates and reorders nothing draws no random number, so its fate
    /// is the constant delay held back by the connection's order. That is
    /// one look-up of the pair and a few instructions (mm1 200k:
    /// `Network::send` and `on_arrival` cost 70.8M instructions, about 118
    /// a hop, out of line; their fast paths inlined cost about 16M). Every
    /// other send takes [`Network::send_general`], which decides it as
    /// before, rule by rule. The engine calls the two itself (see
    /// [`Network::send_fast`]); this composes them for the other callers.
    #[inline]
    pub(crate) fn send(&mut self, now: Time, from: NodeId, to: NodeId, msg: &Msg, trace: &mut Trace) -> Delivery {
        match self.send_fast(now, from, to, trace.enabled()) {
            Some(delay) => Delivery::Arrives { delay, copy: None },
            None => self.send_general(now, from, to, msg, trace),
        }
    }

    /// [`Network::send`]'s fast path, which needs nothing of the message:
    /// the delay of a send that takes it, or `None` for the general path
    /// (which a `traced` send always takes, to record it). The engine
    /// calls it with the message still unstored, so that a message no
    /// rule needs to look at is written once, where it waits in the event
    /// queue (a message whose address went to the general path was built
    /// on the stack, field by field, then copied in wide words: a
    /// store-forwarding stall on every hop).
    #[inline(always)]
    pub(crate) fn send_fast(&mut self, now: Time, from: NodeId, to: NodeId, traced: bool) -> Option<Duration> {
        if !self.fast() || traced {
            return None;
        }
        let pair = find_mut(&mut self.pairs[from as usize], to)?;
        // What the general path computes for such a send.
        let ns = pair.constant?;
        self.stats.sent += 1;
        pair.connected = true;
        let (delay, _) = in_order(&mut pair.last, now, ns, None);
        Some(delay)
    }

    /// Whether [`Network::send`] may take its fast path.
    #[inline]
    fn fast(&self) -> bool {
        #[cfg(test)]
        if self.general_only {
            return false;
        }
        self.calm
    }

    /// Recomputes [`Network::calm`] after a fault began or ended.
    fn update_calm(&mut self) {
        self.calm = self.partitions == 0 && self.slowdowns.is_empty() && self.spikes.is_empty();
    }

    /// [`Network::send`] by every rule: any link, any fault in force.
    #[inline(never)]
    pub(crate) fn send_general(
        &mut self,
        now: Time,
        from: NodeId,
        to: NodeId,
        msg: &Msg,
        trace: &mut Trace,
    ) -> Delivery {
        self.stats.sent += 1;
        let factor = self.slow[from as usize].max(self.slow[to as usize]);
        let (seed, healed) = (self.seed, self.healed);
        let (names, models, default) = (&self.names, &self.models, &self.default);
        let list = &mut self.pairs[from as usize];
        let i = find_or_insert(list, to, &mut self.pairs_made);
        let pair = &mut list[i];
        pair.connected = true;
        if pair.blocked > 0 {
            self.stats.dropped_partition += 1;
            fold_wire(trace, tag::DROP, now, from, to, msg);
            trace.record(now, || TraceWhat::Drop(wire(from, to, msg), DropReason::Partition));
            return Delivery::Dropped(DropReason::Partition);
        }
        let links_made = &mut self.links_made;
        let link = pair.link.get_or_insert_with(|| {
            *links_made += 1;
            let model = models.get(&(from, to)).unwrap_or(default).clone();
            let name = format!("link:{}->{}", names[from as usize], names[to as usize]);
            Box::new(Link::new(model, stream(seed, &name)))
        });
        pair.constant = link.constant;
        if let Some(ns) = link.constant.filter(|_| self.spikes.is_empty()) {
            // What the general path below computes for such a link (every
            // chance is 0 and draws nothing; the latency is constant).
            let delay = if factor == 1.0 { ns } else { link.model.latency.sample_scaled_ns(&mut link.rng, factor) };
            let (delay, _) = in_order(&mut pair.last, now, delay, None);
            trace.record(now, || TraceWhat::Send(wire(from, to, msg), delay));
            return Delivery::Arrives { delay, copy: None };
        }
        let m = &link.model;
        let (loss, dup, reorder) = if !healed && self.spikes.is_empty() {
            (m.loss_probability, m.duplicate_probability, m.reorder_probability)
        } else {
            raised(m, healed, &self.spikes, from, to)
        };
        if chance(&mut link.rng, loss) {
            self.stats.dropped_loss += 1;
            fold_wire(trace, tag::DROP, now, from, to, msg);
            trace.record(now, || TraceWhat::Drop(wire(from, to, msg), DropReason::Loss));
            return Delivery::Dropped(DropReason::Loss);
        }
        let duplicate = chance(&mut link.rng, dup);
        let sent = link.transmission(now, msg);
        let copy = duplicate.then(|| sent + link.model.latency.sample_scaled_ns(&mut link.rng, factor));
        let delay = sent + link.model.latency.sample_scaled_ns(&mut link.rng, factor);
        let (delay, copy) = if chance(&mut link.rng, reorder) {
            (delay.saturating_add(link.model.latency.sample_scaled_ns(&mut link.rng, factor)), copy)
        } else {
            in_order(&mut pair.last, now, delay, copy)
        };
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
    #[inline]
    pub(crate) fn on_arrival(&mut self, from: NodeId, to: NodeId, to_alive: bool) -> Option<DropReason> {
        if self.partitions == 0 && to_alive {
            self.stats.arrived += 1;
            return None;
        }
        self.arrival_checked(from, to, to_alive)
    }

    /// [`Network::on_arrival`] while a partition is in force or at a
    /// crashed node.
    #[cold]
    #[inline(never)]
    fn arrival_checked(&mut self, from: NodeId, to: NodeId, to_alive: bool) -> Option<DropReason> {
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

    /// Puts the network part of fault number `id` in force. Crashes are the
    /// engine's business and are ignored here.
    pub(crate) fn begin(&mut self, id: usize, action: &FaultAction) {
        match action {
            FaultAction::Partition { blocked } => {
                self.partitions += 1;
                for &(a, b) in blocked {
                    let pair = self.pair(a, b);
                    pair.blocked += 1;
                    // The connection breaks: the next one starts afresh.
                    pair.last = 0;
                }
            }
            FaultAction::Slow { node, factor } => {
                self.slowdowns.push((id, *node, *factor));
                self.update_slow(*node);
            }
            FaultAction::LossSpike { probability, nodes } => self.spike(id, Raises::Loss, *probability, nodes),
            FaultAction::DuplicateSpike { probability, nodes } => {
                self.spike(id, Raises::Duplication, *probability, nodes)
            }
            FaultAction::Reorder { probability, nodes } => self.spike(id, Raises::Reordering, *probability, nodes),
            FaultAction::Crash { .. } | FaultAction::Part { .. } => {}
        }
        self.update_calm();
    }

    /// Lifts the network part of fault number `id`.
    pub(crate) fn end(&mut self, id: usize, action: &FaultAction) {
        match action {
            FaultAction::Partition { blocked } => {
                self.partitions -= 1;
                for &(a, b) in blocked {
                    let c = &mut self.pair(a, b).blocked;
                    *c = c.checked_sub(1).expect("a partition ends only after it began");
                }
            }
            FaultAction::Slow { node, .. } => {
                self.slowdowns.retain(|(i, _, _)| *i != id);
                self.update_slow(*node);
            }
            FaultAction::LossSpike { .. } | FaultAction::DuplicateSpike { .. } | FaultAction::Reorder { .. } => {
                self.spikes.retain(|s| s.id != id)
            }
            FaultAction::Crash { .. } | FaultAction::Part { .. } => {}
        }
        self.update_calm();
    }

    fn spike(&mut self, id: usize, what: Raises, probability: f64, nodes: &[NodeId]) {
        self.spikes.push(Spike { id, what, probability, nodes: nodes.to_vec() });
    }

    fn update_slow(&mut self, node: NodeId) {
        self.slow[node as usize] =
            self.slowdowns.iter().filter(|(_, n, _)| *n == node).map(|(_, _, f)| *f).fold(1.0, f64::max);
    }

    /// The drain: no more random loss, duplication or reordering (faults are
    /// ended one by one by the engine, so that each end shows in the trace).
    pub(crate) fn heal_randomness(&mut self) {
        self.healed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;
    use crate::protocol::Notice;

    fn network(n: usize, loss: f64) -> Network {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let model = LinkModel { loss_probability: loss, ..LinkModel::reliable(Dist::constant_ms(1.0).sampler()) };
        Network::new(7, &names, model)
    }

    fn send(net: &mut Network, from: NodeId, to: NodeId) -> Delivery {
        net.send(0, from, to, &Msg::Notice(Notice::PeerDown), &mut Trace::new(false, 0))
    }

    #[test]
    fn a_pair_costs_memory_only_once_it_is_used() {
        let mut net = network(50_000, 0.0);
        assert!(net.pairs.iter().all(Vec::is_empty));
        send(&mut net, 3, 9);
        send(&mut net, 3, 9);
        send(&mut net, 3, 1);
        assert_eq!(net.pairs[3].iter().map(|p| p.to).collect::<Vec<_>>(), vec![1, 9], "sorted by receiver");
        assert_eq!(net.pairs.iter().map(Vec::len).sum::<usize>(), 2);
    }

    #[test]
    fn a_node_that_dies_closes_the_connections_it_opened_once() {
        let mut net = network(5, 0.0);
        send(&mut net, 2, 4);
        send(&mut net, 2, 0);
        send(&mut net, 1, 2);
        assert_eq!(net.close_connections(2), vec![0, 4], "in order of receiver");
        assert_eq!(net.close_connections(2), Vec::<NodeId>::new(), "closed connections stay closed");
        assert_eq!(net.close_connections(1), vec![2]);
    }

    #[test]
    fn overlapping_partitions_heal_independently_per_pair() {
        let mut net = network(3, 0.0);
        let a = FaultAction::Partition { blocked: vec![(0, 1)] };
        let b = FaultAction::Partition { blocked: vec![(0, 1), (1, 2)] };
        net.begin(0, &a);
        net.begin(1, &b);
        assert!(net.is_blocked(0, 1) && net.is_blocked(1, 2) && !net.is_blocked(1, 0));
        net.end(0, &a);
        assert!(net.is_blocked(0, 1), "the other partition still blocks it");
        assert_eq!(send(&mut net, 0, 1), Delivery::Dropped(DropReason::Partition));
        net.end(1, &b);
        assert!(!net.is_blocked(0, 1) && !net.is_blocked(1, 2));
        assert!(matches!(send(&mut net, 0, 1), Delivery::Arrives { .. }));
    }

    /// A link's stream is named after its endpoints, so its draws do not
    /// depend on which other links were used first.
    #[test]
    fn a_links_draws_do_not_depend_on_other_links_being_used() {
        let fates = |warm_up: bool| {
            let mut net = network(3, 0.5);
            if warm_up {
                for _ in 0..10 {
                    send(&mut net, 2, 1);
                }
            }
            (0..64).map(|_| send(&mut net, 0, 1) == Delivery::Dropped(DropReason::Loss)).collect::<Vec<_>>()
        };
        let alone = fates(false);
        assert_eq!(alone, fates(true));
        assert!(alone.contains(&true) && alone.contains(&false), "half are lost: {alone:?}");
    }

    #[test]
    fn a_configured_link_keeps_its_own_model() {
        let mut net = network(2, 0.0);
        let lossy = LinkModel { loss_probability: 1.0, ..LinkModel::reliable(Dist::constant_ms(1.0).sampler()) };
        net.set_link(0, 1, lossy);
        assert_eq!(send(&mut net, 0, 1), Delivery::Dropped(DropReason::Loss));
        assert!(matches!(send(&mut net, 1, 0), Delivery::Arrives { .. }));
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod connection_tests;
