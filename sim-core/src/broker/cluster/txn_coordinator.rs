//! The transaction coordinator of a log cluster: the state machine of the
//! transactions of read-process-write stages, run by the broker that
//! [`txn_coordinator_of`] names, driven here without the engine (each
//! call returns the [`Action`]s its broker carries out, see
//! [`super::txn`]).
//!
//! **Identity.** As in the single-node model ([`crate::broker::log`]'s
//! transactions), a transactional id stands for one input partition of a
//! group (Kafka Streams' first exactly-once mode). Its coordinator is, as
//! in Kafka, the broker leading partition `abs(hashCode(id)) % 50` of
//! `__transaction_state` (`transaction.state.log.num.partitions`); that
//! topic is not modelled, so it is that partition's preferred leader,
//! placed as [`Layout::coordinator`] places a group's.
//!
//! **A transaction.** Its member's writes ([`crate::protocol::LogMsg::TxnWrite`])
//! reach the coordinator, which adds the output partition to the
//! transaction (`AddPartitionsToTxn`) and writes the record to that
//! partition's leader ([`Action::Produce`]: `acks = all`, numbered per
//! partition, so a copy is written once), sending it again until the
//! leader acknowledges it. The commit carries the outputs again (any write
//! lost on the way is made then). Once every write is acknowledged the
//! coordinator commits the group's offset with the group coordinator
//! ([`Action::OffsetCommit`], which checks the member still owns the
//! partition in its generation); then it writes a commit marker to every
//! partition written ([`Action::Marker`]), sent again until each leader
//! acknowledges it, and answers the member. A fenced offset commit aborts
//! the transaction instead.
//!
//! **Fencing and ends.** A transaction is numbered (its producer epoch):
//! each new one gets the next number, so the leaders refuse a write of an
//! older one. A writer of an older generation than one seen is fenced;
//! a newer writer (a new owner, or the same member after a restart or in
//! a new batch) aborts the open transaction; so does its timeout
//! (`transaction_timeout_ms`). A transaction being committed or aborted
//! must finish first: meanwhile another writer's commit waits (Kafka's
//! `CONCURRENT_TRANSACTIONS`, retried by the client) and is taken up when
//! it finishes.
//!
//! **Availability.** The state lives in the coordinator's memory and
//! survives its broker's crash (the simplification: no `__transaction_state`
//! log, no failover of the coordinator to another broker). While its
//! broker is down nothing is answered, nothing is retried and nothing
//! times out; a member's requests go unanswered and are sent again, as a
//! Kafka client retries `COORDINATOR_NOT_AVAILABLE`.
//!
//! Left out: the producer-id allocation (the id is derived from the
//! transactional id), epoch exhaustion, `transaction.max.timeout.ms`, and
//! a coordinator cut off from the cluster refusing to begin (here it
//! begins, but cannot finish while its markers or the offset commit do
//! not get through).

use super::layout::Layout;
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::cluster::BrokerIx;
use crate::time::{Duration, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `transaction.state.log.num.partitions` default.
pub const TXN_STATE_PARTITIONS: u32 = 50;

/// The broker coordinating the transactions of transactional id `id`: the
/// preferred leader of partition `abs(hashCode(id)) % 50` of
/// `__transaction_state` (Kafka's `TransactionStateManager.partitionFor`).
pub fn txn_coordinator_of(layout: &Layout, id: &str) -> BrokerIx {
    let partition = super::layout::java_hash(id) & 0x7fff_ffff;
    (partition % TXN_STATE_PARTITIONS % layout.broker_count().max(1) as u32) as BrokerIx
}

/// The transactional id of input partition `partition` of group `group`
/// (as Kafka Streams names a task's: application id, then task).
pub fn transactional_id(group: &str, partition: u32) -> String {
    format!("{group}-0_{partition}")
}

/// The producer id standing for the transactional id of `input` (a node
/// id no node has: the top bit set).
pub fn producer_id((group, partition): Input) -> NodeId {
    0x8000_0000 | (u32::from(group) & 0x7ff) << 20 | (partition & 0xf_ffff)
}

/// Whether `producer` is a transactional producer id.
pub fn is_txn_producer(producer: NodeId) -> bool {
    producer & 0x8000_0000 != 0
}

/// A transaction's input: (group, input partition).
pub type Input = (u16, u32);

/// Who writes a transaction: the member, its generation, its number for it.
pub type Writer = (NodeId, u32, u32);

/// What the coordinator's broker does for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `rec` to partition `pi`'s leader in transaction `epoch` of `producer`.
    Produce {
        /// Partition (numbered across topics).
        pi: u32,
        /// The transactional producer.
        producer: NodeId,
        /// The transaction's number.
        epoch: u32,
        /// The write's number on `pi`.
        seq: u64,
        /// The record.
        rec: Record,
    },
    /// Write the marker of transaction `epoch` of `producer` to `pi`'s leader.
    Marker {
        /// Partition.
        pi: u32,
        /// The transactional producer.
        producer: NodeId,
        /// The transaction's number.
        epoch: u32,
        /// Commit or abort.
        commit: bool,
    },
    /// Commit `input`'s offset `end` with the group coordinator.
    OffsetCommit {
        /// The input.
        input: Input,
        /// The writer.
        writer: Writer,
        /// The offset.
        end: u64,
        /// The leader epoch committed with it.
        epoch: Option<u32>,
    },
    /// Answer member `to` (a `TxnAck`).
    Reply {
        /// The member.
        to: NodeId,
        /// Input partition.
        partition: u32,
        /// The group's committed offset.
        committed: u64,
        /// Committed.
        ok: bool,
        /// Over: redo from `committed`.
        aborted: bool,
    },
    /// Record `id` is written again after an aborted copy of it.
    Rewritten(MsgId),
    /// Count a metric.
    Count(&'static str),
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Writes go on.
    Ongoing,
    /// Its member asked to commit: waiting for the writes' acknowledgements,
    /// then for the offset commit (`sent` once asked).
    Committing { sent: bool },
    /// Decided: writing the markers (commit or abort).
    Ending { commit: bool },
}

#[derive(Debug, Clone)]
struct Write {
    pi: u32,
    seq: u64,
    rec: Record,
    acked: bool,
    /// When it was last sent (None: send at the next retry).
    sent_at: Option<Time>,
}

#[derive(Debug, Clone)]
struct Txn {
    writer: Writer,
    epoch: u32,
    phase: Phase,
    deadline: Time,
    writes: Vec<Write>,
    next_seq: BTreeMap<u32, u64>,
    /// Partitions whose marker is not acknowledged yet, and when last sent.
    markers: BTreeMap<u32, Option<Time>>,
    /// The commit asked for: (end, leader epoch), and when the offset
    /// commit was last sent.
    commit: Option<(u64, Option<u32>)>,
    offsets_sent_at: Option<Time>,
    /// The member to answer when it ends.
    reply_to: Option<NodeId>,
}

/// A commit waiting for the transaction before it to end.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Its member.
    pub from: NodeId,
    /// Its writer.
    pub writer: Writer,
    /// The committed offset it starts from.
    pub start: u64,
    /// The offset it commits.
    pub end: u64,
    /// The leader epoch of its last input record.
    pub epoch: Option<u32>,
    /// Its outputs, with their partitions.
    pub outputs: Vec<(u32, Record)>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// The last transaction's number.
    epoch: u32,
    /// The newest generation seen.
    fence: u32,
    cur: Option<Txn>,
    /// The last transaction that ended, and whether it committed.
    last: Option<(Writer, bool)>,
    /// The group's committed offset, as the group coordinator last said.
    committed: u64,
    /// Records of aborted transactions not written again since.
    aborted_ids: BTreeSet<MsgId>,
    queued: Option<Commit>,
}

/// A transaction coordinator's state (of every input it coordinates).
#[derive(Debug, Clone, Default)]
pub struct TxnCoordinator {
    slots: BTreeMap<Input, Slot>,
    /// Per group: its `transaction_timeout_ms`.
    timeouts: Vec<Duration>,
}

/// How long a request to a leader or the group coordinator may go
/// unanswered before it is sent again (a lost request; Kafka notices a
/// dropped connection and retries after `retry.backoff.ms`).
pub const RESEND_NS: Duration = 1_000_000_000;

/// How often the coordinator looks for what to send again or expire.
pub const TICK_NS: Duration = 100_000_000;

impl TxnCoordinator {
    /// A coordinator for groups whose timeouts are `timeouts` (in group order).
    pub fn new(timeouts: Vec<Duration>) -> Self {
        TxnCoordinator { slots: BTreeMap::new(), timeouts }
    }

    /// Whether anything waits for a retry or a timeout.
    pub fn busy(&self) -> bool {
        self.slots.values().any(|s| s.cur.is_some() || s.queued.is_some())
    }

    fn timeout(&self, group: u16) -> Duration {
        self.timeouts.get(usize::from(group)).copied().unwrap_or(60_000_000_000)
    }

    /// A member's write of `rec` to partition `pi` in `writer`'s transaction.
    pub fn write(&mut self, now: Time, input: Input, writer: Writer, pi: u32, rec: Record) -> Vec<Action> {
        let mut out = Vec::new();
        if self.begin(now, input, writer, &mut out) {
            self.add_write(now, input, pi, rec, &mut out);
        }
        out
    }

    /// Makes `writer`'s transaction the open one of `input`, aborting an
    /// older writer's. False when it cannot write now: fenced, over, late,
    /// or another transaction is ending.
    fn begin(&mut self, now: Time, input: Input, writer: Writer, out: &mut Vec<Action>) -> bool {
        let timeout = self.timeout(input.0);
        let slot = self.slots.entry(input).or_default();
        if writer.1 < slot.fence || slot.last.is_some_and(|(w, _)| w == writer) {
            return false;
        }
        match &slot.cur {
            Some(t) if t.writer == writer => return t.phase == Phase::Ongoing,
            Some(t) if (t.writer.0, t.writer.1) == (writer.0, writer.1) && writer.2 < t.writer.2 => return false,
            Some(t) if t.phase != Phase::Ongoing => return false,
            Some(_) => self.abort(now, input, out),
            None => {}
        }
        let slot = self.slots.get_mut(&input).expect("made");
        if slot.cur.is_some() {
            return false; // the older one is being aborted
        }
        slot.fence = writer.1;
        slot.epoch += 1;
        slot.cur = Some(Txn {
            writer,
            epoch: slot.epoch,
            phase: Phase::Ongoing,
            deadline: now.saturating_add(timeout),
            writes: Vec::new(),
            next_seq: BTreeMap::new(),
            markers: BTreeMap::new(),
            commit: None,
            offsets_sent_at: None,
            reply_to: None,
        });
        true
    }

    /// Adds `rec` (for `pi`) to `input`'s open transaction unless it is in it.
    fn add_write(&mut self, now: Time, input: Input, pi: u32, rec: Record, out: &mut Vec<Action>) {
        let slot = self.slots.get_mut(&input).expect("begun");
        let t = slot.cur.as_mut().expect("begun");
        if t.writes.iter().any(|w| w.rec.id == rec.id) {
            return;
        }
        let seq = t.next_seq.entry(pi).or_insert(0);
        let w = Write { pi, seq: *seq, rec, acked: false, sent_at: Some(now) };
        *seq += 1;
        if slot.aborted_ids.remove(&rec.id) {
            out.push(Action::Rewritten(rec.id));
        }
        out.push(Action::Produce { pi, producer: producer_id(input), epoch: t.epoch, seq: w.seq, rec });
        t.writes.push(w);
    }

    /// Decides to abort `input`'s open transaction: its markers go out.
    fn abort(&mut self, now: Time, input: Input, out: &mut Vec<Action>) {
        let slot = self.slots.get_mut(&input).expect("known");
        let Some(t) = slot.cur.as_mut() else { return };
        slot.aborted_ids.extend(t.writes.iter().map(|w| w.rec.id));
        t.phase = Phase::Ending { commit: false };
        t.markers = t.writes.iter().map(|w| (w.pi, None)).collect();
        out.push(Action::Count("transactions_aborted"));
        self.send_markers(now, input, out);
    }

    /// A member's commit (`c`): see the module doc.
    pub fn commit(&mut self, now: Time, input: Input, c: Commit) -> Vec<Action> {
        let mut out = Vec::new();
        let slot = self.slots.entry(input).or_default();
        let (committed, from) = (slot.committed, c.from);
        let reply = |ok, aborted| Action::Reply { to: from, partition: input.1, committed, ok, aborted };
        if c.writer.1 < slot.fence {
            out.push(Action::Count("transactions_fenced"));
            out.push(reply(false, true));
            return out;
        }
        if let Some((_, ok)) = slot.last.filter(|&(w, _)| w == c.writer) {
            out.push(reply(ok, !ok));
            return out;
        }
        if let Some(t) = slot.cur.as_mut().filter(|t| t.writer == c.writer && t.phase != Phase::Ongoing) {
            t.reply_to = Some(from);
            return out; // under way: answered when it ends
        }
        if slot.cur.as_ref().is_some_and(|t| t.writer != c.writer && t.phase != Phase::Ongoing) {
            slot.queued = Some(c); // taken up when the one ending ends
            return out;
        }
        if c.start < committed {
            // Overlapping what is committed: redo from the commit.
            if slot.cur.as_ref().is_some_and(|t| t.writer == c.writer) {
                self.abort(now, input, &mut out);
            }
            out.push(reply(false, true));
            return out;
        }
        if !self.begin(now, input, c.writer, &mut out) {
            let slot = self.slots.get_mut(&input).expect("made");
            match slot.cur.is_some() {
                true => slot.queued = Some(c), // the older one is being aborted
                false => out.push(reply(false, true)),
            }
            return out;
        }
        for &(pi, rec) in &c.outputs {
            self.add_write(now, input, pi, rec, &mut out);
        }
        let t = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()).expect("begun");
        t.phase = Phase::Committing { sent: false };
        t.commit = Some((c.end, c.epoch));
        t.reply_to = Some(c.from);
        self.advance(now, input, &mut out);
        out
    }

    /// A committing transaction whose writes are all acknowledged asks
    /// the group coordinator to commit its offset.
    fn advance(&mut self, now: Time, input: Input, out: &mut Vec<Action>) {
        let Some(t) = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()) else { return };
        if t.phase != (Phase::Committing { sent: false }) || !t.writes.iter().all(|w| w.acked) {
            return;
        }
        let (end, epoch) = t.commit.expect("committing");
        t.phase = Phase::Committing { sent: true };
        t.offsets_sent_at = Some(now);
        out.push(Action::OffsetCommit { input, writer: t.writer, end, epoch });
    }

    /// A leader acknowledged (or refused) record `id` written to `pi`.
    pub fn produce_acked(&mut self, now: Time, pi: u32, id: MsgId, ok: bool) -> Vec<Action> {
        let mut out = Vec::new();
        let found = self.slots.iter_mut().find_map(|(&input, s)| {
            let t = s.cur.as_mut()?;
            let w = t.writes.iter_mut().find(|w| w.rec.id == id && w.pi == pi)?;
            Some((input, w))
        });
        let Some((input, w)) = found else { return out };
        if ok {
            w.acked = true;
            self.advance(now, input, &mut out);
        } else {
            w.sent_at = None; // sent again at the next retry
        }
        out
    }

    /// The group coordinator's answer to `input`'s offset commit.
    pub fn offsets_answered(
        &mut self,
        now: Time,
        input: Input,
        ok: bool,
        retriable: bool,
        committed: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(slot) = self.slots.get_mut(&input) else { return out };
        slot.committed = slot.committed.max(committed);
        let Some(t) = slot.cur.as_mut() else { return out };
        if t.phase != (Phase::Committing { sent: true }) {
            return out;
        }
        if retriable {
            t.offsets_sent_at = None;
            return out;
        }
        if !ok {
            out.push(Action::Count("transactions_fenced"));
            self.abort(now, input, &mut out);
            return out;
        }
        t.phase = Phase::Ending { commit: true };
        t.markers = t.writes.iter().map(|w| (w.pi, None)).collect();
        self.send_markers(now, input, &mut out);
        out
    }

    /// Sends the markers not acknowledged and not sent for [`RESEND_NS`];
    /// ends the transaction when none is left.
    fn send_markers(&mut self, now: Time, input: Input, out: &mut Vec<Action>) {
        let Some(t) = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()) else { return };
        let Phase::Ending { commit } = t.phase else { return };
        let producer = producer_id(input);
        for (&pi, sent) in t.markers.iter_mut() {
            if sent.is_none_or(|at| now.saturating_sub(at) >= RESEND_NS) {
                *sent = Some(now);
                out.push(Action::Marker { pi, producer, epoch: t.epoch, commit });
            }
        }
        if t.markers.is_empty() {
            self.end(now, input, commit, out);
        }
    }

    /// A leader acknowledged (or refused) the marker of transaction
    /// `epoch` of `producer` on `pi`.
    pub fn marker_acked(&mut self, now: Time, producer: NodeId, epoch: u32, pi: u32, ok: bool) -> Vec<Action> {
        let mut out = Vec::new();
        let input = self.slots.iter().find(|(&i, s)| producer_id(i) == producer && s.epoch == epoch).map(|(&i, _)| i);
        let Some(input) = input else { return out };
        let Some(t) = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()) else { return out };
        if t.epoch != epoch {
            return out;
        }
        if ok {
            t.markers.remove(&pi);
        } else if let Some(sent) = t.markers.get_mut(&pi) {
            *sent = None;
        }
        if t.markers.is_empty() {
            self.send_markers(now, input, &mut out);
        }
        out
    }

    /// Every marker is written: the transaction is over.
    fn end(&mut self, now: Time, input: Input, commit: bool, out: &mut Vec<Action>) {
        let slot = self.slots.get_mut(&input).expect("known");
        let t = slot.cur.take().expect("ending");
        slot.last = Some((t.writer, commit));
        if commit {
            let (end, _) = t.commit.expect("committed");
            slot.committed = slot.committed.max(end);
            out.push(Action::Count("transactions_committed"));
        }
        // (A member whose newer commit waits has moved on: an abort's
        // answer would be taken for the newer one's.)
        let moved_on = slot.queued.as_ref().is_some_and(|q| Some(q.from) == t.reply_to);
        if let Some(to) = t.reply_to.filter(|_| commit || !moved_on) {
            let committed = slot.committed;
            out.push(Action::Reply { to, partition: input.1, committed, ok: commit, aborted: !commit });
        }
        if let Some(c) = slot.queued.take() {
            out.extend(self.commit(now, input, c));
        }
    }

    /// The periodic look: expires transactions open past their timeout,
    /// and sends again what went unanswered for [`RESEND_NS`].
    pub fn tick(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        let inputs: Vec<Input> = self.slots.keys().copied().collect();
        for input in inputs {
            let Some(t) = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()) else { continue };
            if t.phase == Phase::Ongoing && t.deadline <= now {
                out.push(Action::Count("transactions_timed_out"));
                self.abort(now, input, &mut out);
                continue;
            }
            self.resend(now, input, &mut out);
        }
        out
    }

    fn resend(&mut self, now: Time, input: Input, out: &mut Vec<Action>) {
        let producer = producer_id(input);
        let t = self.slots.get_mut(&input).and_then(|s| s.cur.as_mut()).expect("open");
        let due = |at: Option<Time>| at.is_none_or(|at| now.saturating_sub(at) >= RESEND_NS);
        match t.phase {
            Phase::Ongoing | Phase::Committing { sent: false } => {
                for w in t.writes.iter_mut().filter(|w| !w.acked && due(w.sent_at)) {
                    w.sent_at = Some(now);
                    out.push(Action::Produce { pi: w.pi, producer, epoch: t.epoch, seq: w.seq, rec: w.rec });
                }
            }
            Phase::Committing { sent: true } if due(t.offsets_sent_at) => {
                t.offsets_sent_at = Some(now);
                let (end, epoch) = t.commit.expect("committing");
                out.push(Action::OffsetCommit { input, writer: t.writer, end, epoch });
            }
            Phase::Committing { .. } => {}
            Phase::Ending { .. } => self.send_markers(now, input, out),
        }
    }

    /// After a restart of its broker: everything unanswered is sent again
    /// at the next tick (the requests died with the process).
    pub fn restart(&mut self) {
        for t in self.slots.values_mut().filter_map(|s| s.cur.as_mut()) {
            t.writes.iter_mut().for_each(|w| w.sent_at = None);
            t.markers.values_mut().for_each(|m| *m = None);
            t.offsets_sent_at = None;
        }
    }
}

#[cfg(test)]
#[path = "txn_coordinator_tests.rs"]
mod tests;
