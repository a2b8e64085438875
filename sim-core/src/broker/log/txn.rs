//! Transactions of the log broker: a read-process-write stage's output
//! records, written into the output partitions while the transaction is
//! open, and its input offsets, committed together or not at all.
//!
//! **Open transactions.** A member's first [`LogMsg::TxnWrite`] for an
//! input partition begins its transaction; each write is appended at once
//! to the output partition the record's key hashes to, marked as part of
//! the open transaction (a network copy of a write is appended once, as a
//! transactional producer's sequence numbers make it). The commit
//! ([`LogMsg::TxnCommit`]) carries the outputs again: any write lost on
//! the way is made then, as a producer flushes its sends before it
//! commits. A transaction is identified by the group's input partition
//! (Kafka Streams' first exactly-once mode: one transactional identity per
//! input partition) and written by one member, in one generation, under
//! the member's number for it.
//!
//! **Replicas.** Transactional writes are `acks = "all"` in Kafka, so
//! while an output partition has fewer live in-sync replicas than
//! `min_insync_replicas` (or no live leader) a write is refused and the
//! commit too (`not-enough-replicas`, `leader-not-available`): the
//! transaction stays open and the member sends the commit again. A commit
//! that goes through brings every live in-sync replica up to date at once
//! (Kafka's commit waits for that replication; here it takes no time), so
//! a clean failover cannot cut committed output off.
//!
//! **Ends.** A commit moves the group's offset and ends the transaction.
//! The broker aborts an open transaction when a newer one of the same
//! input partition begins (a new owner after a rebalance, or the same
//! member after a restart: the old writer is fenced), when its writer,
//! fenced by a rebalance, tries to commit it, and when it has been open
//! for longer than the group's `transaction_timeout_ms`. Its records stay
//! in the log, marked aborted; a later write or commit of the aborted
//! transaction is refused, and the member redoes the batch.
//!
//! **Reading.** A group that reads `read_committed` is served records
//! below the last stable offset (LSO: the first offset of the earliest
//! transaction still open on the partition, or the high watermark), and
//! never an aborted record. A `read_uncommitted` group (Kafka's default)
//! is served everything below the high watermark at once, aborted records
//! included: an aborted record it processed is an effect that happened,
//! and when the batch is redone its record is written and read again (a
//! duplicate, counted under `aborted_transaction`).
//!
//! Left out: the transaction coordinator and its log (it never fails, and
//! needs no replicas of its own); commit and abort markers take no offset
//! and are written at once, even while the ISR is below the minimum (Kafka
//! retries them until it is not, holding the LSO back); offsets of
//! transactions of a member that owns several input partitions are still
//! committed one partition at a time; and lag (`lag_records`) is counted
//! from the high watermark whatever the group's isolation.

use super::{key_partition, LogBroker, LogTimer, Produce};
use crate::engine::Ctx;
use crate::ledger::DupCause;
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::{Acks, LogMsg, Transaction};
use crate::time::{ms_to_ns, Duration, Time};
use std::collections::{BTreeMap, BTreeSet};

/// How a group's members read and write transactions (from their
/// settings; every member of a group gives the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTxn {
    /// Read only committed records (`isolation = "read_committed"`).
    pub read_committed: bool,
    /// How long a transaction may stay open before the broker aborts it.
    pub timeout_ns: Duration,
}

impl Default for GroupTxn {
    fn default() -> Self {
        GroupTxn { read_committed: false, timeout_ns: ms_to_ns(60_000.0) }
    }
}

/// Who writes a transaction: the member, its generation, its number for it.
type Writer = (NodeId, u32, u32);

/// A transaction's input partition: (group, partition).
type Input = (u16, u32);

/// One record written in a transaction.
struct Write {
    pi: usize,
    offset: u64,
    id: MsgId,
    at: Time,
}

struct Open {
    writer: Writer,
    deadline: Time,
    writes: Vec<Write>,
    /// Index in `writes`, by message id.
    ids: BTreeMap<MsgId, usize>,
    /// (partition, the first offset written there): the LSO it holds.
    first: Vec<(usize, u64)>,
}

#[derive(Default)]
struct Slot {
    open: Option<Open>,
    /// The last transaction that ended, and whether it committed.
    last: Option<(Writer, bool)>,
    /// Records written by aborted transactions and not written again since.
    aborted_ids: BTreeSet<MsgId>,
}

/// The broker's transactions (durable, as Kafka's transaction log is).
#[derive(Default)]
pub(super) struct Txns {
    slots: BTreeMap<Input, Slot>,
    /// Per partition: the aborted records, by offset, with their id and
    /// append time (an election may cut one off and reuse its offset).
    aborted: Vec<BTreeMap<u64, (MsgId, Time)>>,
    groups: Vec<GroupTxn>,
    /// When the expiry timer is due, if armed.
    pub expiry_at: Option<Time>,
}

impl Txns {
    pub fn new(partitions: usize) -> Self {
        Txns { aborted: vec![BTreeMap::new(); partitions], ..Txns::default() }
    }

    pub fn set_groups(&mut self, groups: Vec<GroupTxn>) {
        self.groups = groups;
    }

    fn group(&self, group: usize) -> GroupTxn {
        self.groups.get(group).copied().unwrap_or_default()
    }

    /// The last stable offset of partition `pi`, whose HW is `hw`.
    fn lso(&self, pi: usize, hw: u64) -> u64 {
        let open = self.slots.values().filter_map(|s| s.open.as_ref());
        open.flat_map(|o| o.first.iter()).filter(|&&(p, _)| p == pi).fold(hw, |lso, &(_, o)| lso.min(o))
    }
}

/// Why a transactional write cannot be made now.
type Refusal = &'static str;

impl LogBroker {
    /// Sets how each group reads and writes transactions (in group order;
    /// a group left out reads uncommitted, with Kafka's 60 s timeout).
    pub fn with_transactions(mut self, groups: Vec<GroupTxn>) -> Self {
        self.txns.set_groups(groups);
        self
    }

    /// The offsets group `group` may be served from partition `pi`,
    /// starting at `offset`, at most `max`: `(first, end)`. Under
    /// read_committed, aborted records at `offset` are skipped, and the
    /// range ends at the LSO and before the next aborted record (a reply
    /// holds consecutive offsets). `first >= end` means nothing to serve.
    pub(super) fn readable(&self, group: usize, pi: usize, offset: u64, max: u64) -> (u64, u64) {
        let p = &self.parts[pi];
        if !self.txns.group(group).read_committed {
            return (offset, p.hw.min(offset + max));
        }
        let limit = self.txns.lso(pi, p.hw);
        let aborted = &self.txns.aborted[pi];
        let is_aborted =
            |o: u64| aborted.get(&o).is_some_and(|&(id, at)| p.entry(o).is_some_and(|e| e.rec.id == id && e.at == at));
        let mut first = offset;
        while first < limit && is_aborted(first) {
            first += 1;
        }
        // (A reader can be past the LSO: a transaction begun after an
        // election cut the log back below its position.)
        let end = limit.min(first + max).max(first);
        let next_aborted = aborted.range(first..end).map(|(&o, _)| o).find(|&o| is_aborted(o));
        (first, next_aborted.unwrap_or(end))
    }

    fn output_partition(&self, out_topic: usize, key: u64) -> Option<usize> {
        let t = self.topics.get(out_topic)?;
        Some(t.first + key_partition(key, t.partitions))
    }

    /// At least `min_insync_replicas` in-sync replicas of `pi` are alive.
    fn enough_in_sync(&self, pi: usize) -> bool {
        let p = &self.parts[pi];
        (0..p.isr.len()).filter(|&r| p.isr[r] && self.alive[r]).count() >= self.min_isr
    }

    /// A member's write of `rec` in its transaction `seq` for `partition`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn txn_write(
        &mut self,
        ctx: &mut Ctx<LogTimer>,
        from: NodeId,
        (group, partition): Input,
        generation: u32,
        seq: u32,
        out_topic: usize,
        rec: Record,
    ) {
        if !self.coord.may_commit(group as usize, from, generation, partition as usize) {
            return; // a zombie: its commit will be refused
        }
        let Some(pi) = self.output_partition(out_topic, rec.key()) else { return };
        let input = (group, partition);
        if self.begin(ctx, input, (from, generation, seq)) {
            if let Err(why) = self.write_in_txn(ctx, input, pi, rec, from) {
                ctx.error(why);
            }
        }
    }

    /// Makes `writer`'s transaction the open one of `input`, aborting an
    /// older one (its writer is fenced). False when `writer`'s transaction
    /// is over, or older than the open one: a late message.
    fn begin(&mut self, ctx: &mut Ctx<LogTimer>, input: Input, writer: Writer) -> bool {
        let slot = self.txns.slots.entry(input).or_default();
        if slot.last.is_some_and(|(w, _)| w == writer) {
            return false;
        }
        match &slot.open {
            Some(o) if o.writer == writer => return true,
            Some(o) if (o.writer.0, o.writer.1) == (writer.0, writer.1) && writer.2 < o.writer.2 => return false,
            Some(_) => self.abort_txn(ctx, input, false),
            None => {}
        }
        let deadline = ctx.now().saturating_add(self.txns.group(input.0 as usize).timeout_ns);
        let open = Open { writer, deadline, writes: Vec::new(), ids: BTreeMap::new(), first: Vec::new() };
        self.txns.slots.entry(input).or_default().open = Some(open);
        self.arm_txn_expiry(ctx);
        true
    }

    /// Appends `rec` to `pi` in `input`'s open transaction, unless it is
    /// there already.
    fn write_in_txn(
        &mut self,
        ctx: &mut Ctx<LogTimer>,
        input: Input,
        pi: usize,
        rec: Record,
        from: NodeId,
    ) -> Result<(), Refusal> {
        if !self.leader_alive(pi) {
            return Err("leader-not-available");
        }
        if !self.enough_in_sync(pi) {
            return Err("not-enough-replicas");
        }
        let open = self.txns.slots.get(&input).and_then(|s| s.open.as_ref()).expect("begun");
        let known = open.ids.get(&rec.id).copied();
        if let Some(w) = known.map(|i| &open.writes[i]) {
            if self.parts[w.pi].entry(w.offset).is_some_and(|e| e.rec.id == w.id && e.at == w.at) {
                return Ok(()); // written before: a copy, or the commit's flush
            }
        }
        // The write is part of the open transaction before it is appended:
        // the append serves waiting fetches, and a read_committed one must
        // already see the last stable offset held back by it.
        let (offset, at) = (self.parts[pi].end(), ctx.now());
        let slot = self.txns.slots.get_mut(&input).expect("begun");
        let open = slot.open.as_mut().expect("begun");
        let write = Write { pi, offset, id: rec.id, at };
        match known {
            Some(i) => open.writes[i] = write, // cut off by an election: written again
            None => {
                open.ids.insert(rec.id, open.writes.len());
                open.writes.push(write);
            }
        }
        match open.first.iter_mut().find(|(p, _)| *p == pi) {
            Some((_, first)) => *first = (*first).min(offset),
            None => open.first.push((pi, offset)),
        }
        if slot.aborted_ids.remove(&rec.id) {
            // An aborted copy is in the log: a read_uncommitted reader may
            // have processed it, and will process this one too.
            ctx.resent(rec.id, DupCause::AbortedTransaction);
        }
        self.append(ctx, pi, Produce { recs: Box::new([rec]), acks: Acks::None, attempt: 1 }, from, 0, 0);
        Ok(())
    }

    /// Aborts `input`'s open transaction: its records stay, marked aborted.
    fn abort_txn(&mut self, ctx: &mut Ctx<LogTimer>, input: Input, timed_out: bool) {
        let Some(slot) = self.txns.slots.get_mut(&input) else { return };
        let Some(open) = slot.open.take() else { return };
        slot.last = Some((open.writer, false));
        for w in &open.writes {
            slot.aborted_ids.insert(w.id);
            if self.parts[w.pi].entry(w.offset).is_some_and(|e| e.rec.id == w.id && e.at == w.at) {
                self.txns.aborted[w.pi].insert(w.offset, (w.id, w.at));
            }
        }
        ctx.error("transaction-aborted");
        ctx.metric_add("transactions_aborted", 1.0);
        if timed_out {
            ctx.metric_add("transactions_timed_out", 1.0);
        }
        for &(pi, _) in &open.first {
            let start = self.parts[pi].start;
            self.txns.aborted[pi].retain(|&o, _| o >= start);
            // The LSO moved: held read_committed fetches may go on.
            self.serve_parked(ctx, pi);
        }
        self.arm_txn_expiry(ctx);
    }

    /// Aborts `input`'s open transaction if `writer` wrote it.
    fn abort_if(&mut self, ctx: &mut Ctx<LogTimer>, input: Input, writer: Writer) {
        let open = self.txns.slots.get(&input).and_then(|s| s.open.as_ref());
        if open.is_some_and(|o| o.writer == writer) {
            self.abort_txn(ctx, input, false);
        }
    }

    /// Arms the expiry timer for the earliest deadline of an open
    /// transaction (or cancels it when none is open).
    pub(super) fn arm_txn_expiry(&mut self, ctx: &mut Ctx<LogTimer>) {
        let next = self.txns.slots.values().filter_map(|s| s.open.as_ref()).map(|o| o.deadline).min();
        match (next, self.txns.expiry_at) {
            (Some(at), Some(armed)) if armed <= at => {} // it will arm the next
            (Some(at), armed) => {
                if armed.is_some() {
                    ctx.cancel_timer(LogTimer::TxnExpiry);
                }
                ctx.set_timer(at.saturating_sub(ctx.now()), LogTimer::TxnExpiry);
                self.txns.expiry_at = Some(at);
            }
            (None, Some(_)) => {
                ctx.cancel_timer(LogTimer::TxnExpiry);
                self.txns.expiry_at = None;
            }
            (None, None) => {}
        }
    }

    /// Aborts every transaction open past its timeout.
    pub(super) fn expire_txns(&mut self, ctx: &mut Ctx<LogTimer>) {
        self.txns.expiry_at = None;
        let now = ctx.now();
        let expired: Vec<Input> = self
            .txns
            .slots
            .iter()
            .filter(|(_, s)| s.open.as_ref().is_some_and(|o| o.deadline <= now))
            .map(|(&k, _)| k)
            .collect();
        for input in expired {
            self.abort_txn(ctx, input, true);
        }
        self.arm_txn_expiry(ctx);
    }

    /// A member's commit of its transaction `t`.
    pub(super) fn transaction(&mut self, ctx: &mut Ctx<LogTimer>, from: NodeId, t: Transaction) {
        let (gi, partition) = (t.group as usize, t.partition as usize);
        if gi >= self.coord.len() {
            return;
        }
        let Some(input_pi) = self.index(self.coord.info(gi).topic, partition) else { return };
        let stored = self.coord.committed(gi, partition);
        let may_commit = self.coord.may_commit(gi, from, t.generation, partition);
        // Where the group reads from: its commit, or the log start if
        // retention has passed it (or it never committed).
        let committed = stored.unwrap_or(0).max(self.parts[input_pi].start);
        let (input, writer) = ((t.group, t.partition), (from, t.generation, t.seq));
        let reply = |ctx: &mut Ctx<LogTimer>, ok: bool, aborted: bool, committed: u64| {
            ctx.send(from, LogMsg::TxnAck { partition: t.partition, committed, ok, aborted });
        };
        if !may_commit {
            ctx.metric_add("transactions_fenced", 1.0);
            self.abort_if(ctx, input, writer);
            return reply(ctx, false, true, committed);
        }
        if stored.is_some_and(|c| c >= t.end) {
            // Committed before: a resend whose answer was lost.
            return reply(ctx, true, false, committed);
        }
        // Overlapping what is committed, or aborted (timed out): redo from
        // the commit. (A start past the commit means retention deleted the
        // records in between before anyone read them: the group moves on.)
        if t.start < stored.unwrap_or(0) || self.topics.get(t.out_topic as usize).is_none() {
            self.abort_if(ctx, input, writer);
            return reply(ctx, false, true, committed);
        }
        if !self.begin(ctx, input, writer) {
            return reply(ctx, false, true, committed);
        }
        if let Err(why) = self.flush(ctx, input, &t, from) {
            ctx.error(why);
            return reply(ctx, false, false, committed); // still open: sent again later
        }
        self.commit_txn(ctx, input, writer, input_pi, (t.end, t.epoch));
        reply(ctx, true, false, t.end);
    }

    /// Writes the outputs not written yet; checks that every partition
    /// written has a live leader and enough in-sync replicas.
    fn flush(&mut self, ctx: &mut Ctx<LogTimer>, input: Input, t: &Transaction, from: NodeId) -> Result<(), Refusal> {
        for &rec in &t.outputs {
            let pi = self.output_partition(t.out_topic as usize, rec.key()).expect("checked");
            self.write_in_txn(ctx, input, pi, rec, from)?;
        }
        let open = self.txns.slots.get(&input).and_then(|s| s.open.as_ref()).expect("begun");
        for &(pi, _) in &open.first {
            if !self.leader_alive(pi) {
                return Err("leader-not-available");
            }
            if !self.enough_in_sync(pi) {
                return Err("not-enough-replicas");
            }
        }
        Ok(())
    }

    /// Commits `input`'s open transaction: its output on every live
    /// in-sync replica, the group's offset moved to `end`, with the leader
    /// epoch of its last input record (KIP-320).
    fn commit_txn(
        &mut self,
        ctx: &mut Ctx<LogTimer>,
        input: Input,
        writer: Writer,
        input_pi: usize,
        (end, epoch): (u64, Option<u32>),
    ) {
        let slot = self.txns.slots.get_mut(&input).expect("begun");
        let open = slot.open.take().expect("begun");
        slot.last = Some((writer, true));
        let mut written: Vec<usize> = open.first.iter().map(|&(pi, _)| pi).collect();
        written.sort_unstable();
        for pi in written {
            // Kafka commits only once the transaction's writes (acks=all)
            // are on every in-sync replica, so a clean failover cannot lose them.
            self.sync_in_sync_replicas(ctx, pi);
            self.serve_parked(ctx, pi);
        }
        let (gi, partition) = (input.0 as usize, input.1 as usize);
        self.coord.record_commit(gi, partition, end, (writer.0, writer.1), epoch);
        self.refresh_backlog(ctx, input_pi);
        ctx.metric_add("transactions_committed", 1.0);
        ctx.mark("transaction committed");
        self.arm_txn_expiry(ctx);
    }
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
