//! Transactions on a cluster broker, in its three roles:
//!
//! - **Transaction coordinator** of the transactional ids placed on it
//!   ([`txn_coordinator_of`]): it runs [`TxnCoordinator`] and carries out
//!   its actions over the network. A member's `TxnWrite` or `TxnCommit`
//!   that reaches another broker is answered with the coordinator's node
//!   ([`ClusterMsg::TxnCoordinator`]). A broker that restarted serves as
//!   coordinator once it is ready again (Kafka's
//!   `COORDINATOR_LOAD_IN_PROGRESS` meanwhile: a commit is refused for now).
//! - **Leader** of an output partition: it appends a transaction's record
//!   ([`ClusterMsg::TxnProduce`]) as an idempotent `acks = all` write,
//!   numbered by the transactional producer's id, the transaction's
//!   number (its producer epoch) and a sequence number, so a copy is
//!   appended once and a write of an older transaction is refused; it is
//!   acknowledged once the high watermark passes it. A marker
//!   ([`ClusterMsg::WriteTxnMarker`]) is a control record in the log
//!   (replicated like any record, so a new leader has it, and cut off by
//!   a truncation like any record), acknowledged the same way; both are
//!   refused while the ISR is below `min_insync_replicas`.
//! - **Group coordinator**: it commits a transaction's offset
//!   ([`ClusterMsg::TxnOffsetCommit`]) if the member still owns the
//!   partition in its generation, and refuses it otherwise (fenced).
//!
//! **Reading.** Each replica's transactional state (which transactions
//! are open, from which offset; which records were aborted; where the
//! markers are) is read off its own log, so it follows the log through
//! replication and truncation. A `read_committed` fetch is served below
//! the last stable offset (the first offset of the earliest open
//! transaction, or the high watermark) and never an aborted record; a
//! `read_uncommitted` one up to the high watermark, aborted records
//! included. Neither ever gets a marker (each answer holds consecutive
//! offsets, so it ends before a marker or a skipped record).
//!
//! Left out: the `__transaction_state` log (see [`super::txn_coordinator`]),
//! the markers of `__consumer_offsets` (the offset commit is checked and
//! made at once by the group coordinator, before the markers are written:
//! the decision point; the markers are then written until they are), and
//! the producer-state snapshots (the state is scanned from the log).

use super::node::{BrokerTimer, ClusterBroker};
use super::replica::Replica;
use super::txn_coordinator::{
    is_txn_producer, transactional_id, txn_coordinator_of, Action, Commit, TxnCoordinator, TICK_NS,
};
use crate::broker::GroupTxn;
use crate::ledger::DupCause;
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::cluster::{BrokerIx, ClusterMsg, ReplicaRecord, TxnMarker, TxnOffsets, TxnRecord};
use crate::protocol::{LogMsg, Transaction};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

type Ctx<'a> = crate::engine::Ctx<'a, BrokerTimer>;

/// The sequence number of a commit marker (an abort's is one more): far
/// above any write's, so a write of a transaction after its marker is a
/// duplicate to the log.
const MARKER_SEQ: u64 = 1 << 62;

/// Whether `r` is a transaction marker (a control record).
fn is_marker(r: &ReplicaRecord) -> bool {
    is_txn_producer(r.producer) && r.seq >= MARKER_SEQ
}

/// A transaction's state in one replica's log, as scanned from it.
#[derive(Debug, Default)]
pub(super) struct PartTxns {
    /// Offsets scanned: up to here, and the last record's (id, append time).
    scanned: u64,
    last: Option<(MsgId, Time)>,
    /// Open transactions, by (producer, epoch): their offsets here.
    open: BTreeMap<(NodeId, u32), Vec<u64>>,
    aborted: BTreeSet<u64>,
    markers: BTreeSet<u64>,
}

impl PartTxns {
    /// Scans what `r` appended since, or all of it again if it was cut.
    fn update(&mut self, r: &Replica) {
        let same = self.scanned <= r.end()
            && (self.scanned == r.start
                || r.entry(self.scanned - 1).is_some_and(|e| Some((e.r.rec.id, e.at)) == self.last));
        if !same {
            *self = PartTxns { scanned: r.start, ..PartTxns::default() };
        }
        for o in self.scanned..r.end() {
            let e = r.entry(o).expect("below the end");
            let key = (e.r.producer, e.r.producer_epoch);
            if is_marker(&e.r) {
                self.markers.insert(o);
                if let Some(offsets) = self.open.remove(&key) {
                    if e.r.seq != MARKER_SEQ {
                        self.aborted.extend(offsets);
                    }
                }
            } else if is_txn_producer(e.r.producer) && e.r.producer_epoch != 0 {
                self.open.entry(key).or_default().push(o);
            }
            self.last = Some((e.r.rec.id, e.at));
        }
        self.scanned = r.end();
    }

    /// The last stable offset under a high watermark `hw`.
    fn lso(&self, hw: u64) -> u64 {
        self.open.values().filter_map(|o| o.first()).fold(hw, |lso, &o| lso.min(o))
    }
}

/// An acknowledgement a leader owes once the HW passes `offset`.
#[derive(Debug)]
struct Owed {
    offset: u64,
    id: MsgId,
    to: NodeId,
    msg: ClusterMsg,
}

/// A broker's transactional state (see the module doc).
#[derive(Debug, Default)]
pub struct BrokerTxns {
    coordinator: TxnCoordinator,
    groups: Vec<GroupTxn>,
    parts: BTreeMap<u32, PartTxns>,
    owed: BTreeMap<u32, Vec<Owed>>,
    armed: bool,
}

impl BrokerTxns {
    /// A process crash: the acknowledgements owed and the timer are gone;
    /// the coordinator's state survives (see [`super::txn_coordinator`]).
    pub(super) fn crash(&mut self) {
        self.owed.clear();
        self.armed = false;
        self.coordinator.restart();
    }
}

impl ClusterBroker {
    /// Sets how each group reads and writes transactions (in group order).
    pub fn with_transactions(mut self, groups: Vec<GroupTxn>) -> Self {
        self.txn.coordinator = TxnCoordinator::new(groups.iter().map(|g| g.timeout_ns).collect());
        self.txn.groups = groups;
        self
    }

    /// Whether group `group` reads `read_committed`.
    pub(super) fn read_committed(&self, group: u16) -> bool {
        self.txn.groups.get(usize::from(group)).is_some_and(|g| g.read_committed)
    }

    /// The broker coordinating the transactions of input `partition` of `group`.
    fn txn_coordinator(&self, group: u16, partition: u32) -> Option<BrokerIx> {
        let g = self.groups.get(usize::from(group))?;
        Some(txn_coordinator_of(&self.layout, &transactional_id(&g.name, partition)))
    }

    /// The partition (across topics) `rec` goes to in `out_topic`.
    fn output_partition(&self, out_topic: u16, rec: &Record) -> Option<u32> {
        let t = self.layout.topics.get(usize::from(out_topic))?;
        self.layout.global(out_topic, crate::broker::key_partition(rec.key(), t.partitions as usize) as u32)
    }

    /// A member's `TxnWrite` or `TxnCommit`.
    pub(super) fn on_txn_client(&mut self, ctx: &mut Ctx, from: NodeId, msg: LogMsg) {
        let (group, partition) = match &msg {
            LogMsg::TxnWrite { group, partition, .. } => (*group, *partition),
            LogMsg::TxnCommit(t) => (t.group, t.partition),
            _ => return,
        };
        let Some(coordinator) = self.txn_coordinator(group, partition) else { return };
        if coordinator != self.me {
            let node = self.layout.node_of(coordinator);
            return ctx.send(from, ClusterMsg::TxnCoordinator { group, partition, node });
        }
        let now = ctx.now();
        let actions = match msg {
            _ if !self.ready => {
                let ack = LogMsg::TxnAck { partition, committed: 0, ok: false, aborted: false };
                return ctx.send(from, ack);
            }
            LogMsg::TxnWrite { rec, generation, seq, out_topic, .. } => {
                let Some(pi) = self.output_partition(out_topic, &rec) else { return };
                self.txn.coordinator.write(now, (group, partition), (from, generation, seq), pi, rec)
            }
            LogMsg::TxnCommit(t) => {
                let Some(c) = self.commit_of(from, &t) else { return };
                self.txn.coordinator.commit(now, (group, partition), c)
            }
            _ => return,
        };
        self.carry_out(ctx, actions);
    }

    fn commit_of(&self, from: NodeId, t: &Transaction) -> Option<Commit> {
        let outputs: Option<Vec<(u32, Record)>> =
            t.outputs.iter().map(|r| Some((self.output_partition(t.out_topic, r)?, *r))).collect();
        Some(Commit {
            from,
            writer: (from, t.generation, t.seq),
            start: t.start,
            end: t.end,
            epoch: t.epoch,
            outputs: outputs?,
        })
    }

    /// Carries out the coordinator's actions, and keeps its timer armed
    /// while it has work.
    fn carry_out(&mut self, ctx: &mut Ctx, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Produce { pi, producer, epoch, seq, rec } => {
                    let w = TxnRecord { producer, epoch, seq, partition: pi, rec };
                    self.send_to_leader(ctx, pi, ClusterMsg::TxnProduce(Box::new(w)));
                }
                Action::Marker { pi, producer, epoch, commit } => {
                    let m = TxnMarker { producer, epoch, partition: pi, commit };
                    self.send_to_leader(ctx, pi, ClusterMsg::WriteTxnMarker(Box::new(m)));
                }
                Action::OffsetCommit { input: (group, partition), writer, end, epoch } => {
                    let (member, generation) = (writer.0, writer.1);
                    let o = TxnOffsets { group, partition, member, generation, end, epoch };
                    // To the leader of the group's offsets partition; none
                    // known: the commit is sent again on a later tick.
                    if let Some(to) = self.coordinator_node(group) {
                        ctx.send(to, ClusterMsg::TxnOffsetCommit(Box::new(o)));
                    }
                }
                Action::Reply { to, partition, committed, ok, aborted } => {
                    ctx.send(to, LogMsg::TxnAck { partition, committed, ok, aborted });
                }
                Action::Rewritten(id) => ctx.resent(id, DupCause::AbortedTransaction),
                Action::Count(metric) => {
                    match metric {
                        "transactions_aborted" => ctx.error("transaction-aborted"),
                        "transactions_committed" => ctx.mark("transaction committed"),
                        _ => {}
                    }
                    ctx.metric_add(metric, 1.0);
                }
            }
        }
        self.arm_txn(ctx);
    }

    /// Sends `msg` to the leader of `pi` as this broker knows it (none
    /// known: it goes at a retry).
    fn send_to_leader(&self, ctx: &mut Ctx, pi: u32, msg: ClusterMsg) {
        if let Some(l) = self.views.get(pi as usize).and_then(|v| v.leader) {
            ctx.send(self.layout.node_of(l), msg);
        }
    }

    /// Arms the coordinator's timer if it has work and none is armed.
    pub(super) fn arm_txn(&mut self, ctx: &mut Ctx) {
        if !self.txn.armed && self.txn.coordinator.busy() {
            self.txn.armed = true;
            ctx.set_background_timer(TICK_NS, BrokerTimer::Txn);
        }
    }

    /// The coordinator's timer: retries and timeouts (none while the
    /// broker is not ready).
    pub(super) fn txn_tick(&mut self, ctx: &mut Ctx) {
        self.txn.armed = false;
        let actions = if self.ready { self.txn.coordinator.tick(ctx.now()) } else { Vec::new() };
        self.carry_out(ctx, actions);
    }

    /// A transaction message between brokers.
    pub(super) fn on_txn_cluster(&mut self, ctx: &mut Ctx, from: NodeId, msg: ClusterMsg) {
        let now = ctx.now();
        let actions = match msg {
            ClusterMsg::TxnProduce(w) => return self.txn_produce(ctx, from, *w),
            ClusterMsg::WriteTxnMarker(m) => return self.txn_marker(ctx, from, *m),
            ClusterMsg::TxnOffsetCommit(o) => return self.txn_offsets(ctx, from, *o),
            _ if !self.ready => return,
            ClusterMsg::TxnProduceAck { partition, id, ok } => {
                self.txn.coordinator.produce_acked(now, partition, id, ok)
            }
            ClusterMsg::TxnMarkerAck { marker: m, ok } => {
                self.txn.coordinator.marker_acked(now, m.producer, m.epoch, m.partition, ok)
            }
            ClusterMsg::TxnOffsetCommitAck { group, partition, committed, ok, retriable } => {
                self.txn.coordinator.offsets_answered(now, (group, partition), ok, retriable, committed)
            }
            _ => return,
        };
        self.carry_out(ctx, actions);
    }

    /// Whether this broker may append to `pi` for a transaction now; if
    /// not, says why.
    fn txn_writable(&self, ctx: &mut Ctx, pi: u32) -> bool {
        if !self.leads(pi) {
            ctx.error("not-leader-or-follower");
            return false;
        }
        if self.views[pi as usize].isr.len() < self.cfg.min_isr {
            ctx.error("not-enough-replicas");
            return false;
        }
        true
    }

    /// Leader: a transaction's record.
    fn txn_produce(&mut self, ctx: &mut Ctx, from: NodeId, w: TxnRecord) {
        let (pi, id) = (w.partition, w.rec.id);
        let ack = |ok| ClusterMsg::TxnProduceAck { partition: pi, id, ok };
        if self.replicas.get(pi as usize).is_none_or(Option::is_none) || !self.txn_writable(ctx, pi) {
            return ctx.send(from, ack(false));
        }
        use super::replica::SeqCheck;
        let offset = match self.replica(pi).check_seq(w.producer, w.epoch, w.seq, 1) {
            SeqCheck::Next => {
                let leader_epoch = self.views[pi as usize].leader_epoch;
                let rr = ReplicaRecord {
                    rec: w.rec,
                    leader_epoch,
                    producer: w.producer,
                    producer_epoch: w.epoch,
                    seq: w.seq,
                };
                self.append_txn(ctx, pi, rr)
            }
            SeqCheck::Duplicate(Some(offset)) => offset,
            // Written in a transaction that has ended since (or long ago).
            SeqCheck::Duplicate(None) => return ctx.send(from, ack(true)),
            SeqCheck::Fenced | SeqCheck::OutOfOrder => {
                ctx.error("out-of-order");
                return ctx.send(from, ack(false));
            }
        };
        self.owe(ctx, pi, Owed { offset, id, to: from, msg: ack(true) });
    }

    /// Leader: a transaction's marker.
    fn txn_marker(&mut self, ctx: &mut Ctx, from: NodeId, m: TxnMarker) {
        let pi = m.partition;
        let ack = |ok| ClusterMsg::TxnMarkerAck { marker: Box::new(m), ok };
        if self.replicas.get(pi as usize).is_none_or(Option::is_none) || !self.txn_writable(ctx, pi) {
            return ctx.send(from, ack(false));
        }
        let id = marker_id(&m);
        let p = self.replica(pi).producers.get(&m.producer);
        let offset = match p.map(|p| (p.epoch, p.next, p.recent.back().map(|&(_, o)| o))) {
            Some((epoch, _, _)) if epoch > m.epoch => return ctx.send(from, ack(true)),
            Some((epoch, next, Some(at))) if epoch == m.epoch && next > MARKER_SEQ => at,
            _ => {
                let leader_epoch = self.views[pi as usize].leader_epoch;
                let seq = MARKER_SEQ + u64::from(!m.commit);
                let rec = Record { id, key: 0, bytes: 0 };
                let rr = ReplicaRecord { rec, leader_epoch, producer: m.producer, producer_epoch: m.epoch, seq };
                self.append_txn(ctx, pi, rr)
            }
        };
        self.owe(ctx, pi, Owed { offset, id, to: from, msg: ack(true) });
    }

    fn append_txn(&mut self, ctx: &mut Ctx, pi: u32, rr: ReplicaRecord) -> u64 {
        let (now, incarnation) = (ctx.now(), self.incarnation);
        self.replica_mut(pi).append(rr, now, false, incarnation)
    }

    /// Owes `o` once the HW passes it; wakes the followers and moves the HW.
    fn owe(&mut self, ctx: &mut Ctx, pi: u32, o: Owed) {
        self.txn.owed.entry(pi).or_default().push(o);
        self.wake_followers(ctx, pi);
        self.advance_hw(ctx, pi);
        self.txn_hw(ctx, pi);
    }

    /// The HW of `pi` moved: the acknowledgements it passes are sent (if
    /// the record is still there: a truncation may have cut it).
    pub(super) fn txn_hw(&mut self, ctx: &mut Ctx, pi: u32) {
        let Some(owed) = self.txn.owed.get_mut(&pi) else { return };
        let Some(r) = self.replicas[pi as usize].as_mut() else { return };
        let (due, keep): (Vec<Owed>, Vec<Owed>) = owed.drain(..).partition(|o| o.offset < r.hw);
        *owed = keep;
        for o in due {
            if r.entry(o.offset).is_some_and(|e| e.r.rec.id == o.id) {
                r.mark_acked(o.offset, o.offset + 1);
                ctx.send(o.to, o.msg);
            }
        }
    }

    /// Group coordinator: a transaction's offset commit.
    fn txn_offsets(&mut self, ctx: &mut Ctx, from: NodeId, o: TxnOffsets) {
        let (gi, p) = (usize::from(o.group), o.partition as usize);
        let ack = |committed, ok, retriable| {
            let (group, partition) = (o.group, o.partition);
            ClusterMsg::TxnOffsetCommitAck { group, partition, committed, ok, retriable }
        };
        if !self.ready || gi >= self.coordinator.len() || !self.group_logs.coordinates(gi) {
            return ctx.send(from, ack(0, false, true));
        }
        let stored = self.coordinator.committed(gi, p);
        if stored.is_some_and(|c| c >= o.end) {
            return ctx.send(from, ack(stored.unwrap_or(0), true, false));
        }
        if !self.coordinator.may_commit(gi, o.member, o.generation, p) {
            return ctx.send(from, ack(stored.unwrap_or(0), false, false));
        }
        self.coordinator.record_commit(gi, p, o.end, (o.member, o.generation), o.epoch);
        // Written to the offsets partition too, so a coordinator that takes
        // the group over loads it; acknowledged without waiting for it to
        // replicate (a simplification: see docs/concepts.md).
        self.log_txn_commit(ctx, &o);
        ctx.send(from, ack(o.end, true, false));
    }

    /// The offsets of `pi` a fetch from `offset` (of at most `max`
    /// records) may be served: `(first, end)`, skipping markers (and
    /// under read_committed aborted records) at `offset`, ending at the
    /// HW (the LSO) or before the next record skipped.
    pub(super) fn readable_range(&mut self, pi: u32, offset: u64, max: u64, committed: bool) -> (u64, u64) {
        let ClusterBroker { replicas, txn, .. } = self;
        let r = replicas[pi as usize].as_ref().expect("a hosted replica");
        let plain = (offset, r.hw.min(offset.saturating_add(max)));
        if r.producers.range(0x8000_0000..).next().is_none() {
            return plain; // never written in a transaction
        }
        let idx = txn.parts.entry(pi).or_default();
        idx.update(r);
        let limit = if committed { idx.lso(r.hw) } else { r.hw };
        let skipped = |o: u64| idx.markers.contains(&o) || (committed && idx.aborted.contains(&o));
        let mut first = offset;
        while first < limit && skipped(first) {
            first += 1;
        }
        let end = limit.min(first.saturating_add(max)).max(first);
        let next_marker = idx.markers.range(first..end).next();
        let next_aborted = idx.aborted.range(first..end).next().filter(|_| committed);
        let stop = [next_marker, next_aborted].into_iter().flatten().min().copied();
        (first, stop.unwrap_or(end))
    }
}

/// The record id of a marker: the top bit set (no message has it), then
/// its producer and epoch.
fn marker_id(m: &TxnMarker) -> MsgId {
    1 << 63 | u64::from(m.producer & 0x7fff_ffff) << 32 | u64::from(m.epoch)
}
