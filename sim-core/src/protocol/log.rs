//! The log protocol (Kafka-like), spoken between producers, group members
//! and the log broker: produce with `acks` and idempotent sequence numbers,
//! group membership by heartbeat, fetch by offset, offset commits, and
//! atomic read-process-write transactions.
//!
//! A produce request carries one batch: the records of one partition, which
//! the broker appends atomically and acks together (Kafka's request carries
//! a batch per partition for every partition led by the broker; here each
//! request carries one). Its sequence number is the batch's base sequence:
//! record `i` has number `seq + i`.
//!
//! Left out: batching of commit requests (one per partition), metadata
//! requests (clients know the topic layout), and the transaction
//! coordinator's two-phase protocol (a transaction is one request).

use super::queue::fold_ack;
use super::{MsgId, Observed, Protocol, Record};
use crate::digest::Digest;

/// How much replication a log producer waits for before its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No ack at all (`acks=0`): fire-and-forget.
    None,
    /// The leader appended it (`acks=1`).
    Leader,
    /// Every in-sync replica has it (`acks=all`).
    All,
}

/// Why a fetch from a log was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// Served (possibly with no records).
    None,
    /// The consumer does not own the partition in the group's current
    /// generation, or the group is rebalancing: stop and wait for the new
    /// assignment.
    NotOwner,
}

/// One read-process-write transaction: append `outputs` to `out_topic`
/// and move the group's offset of `partition` from `start` to `end`,
/// atomically, or do nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Group index.
    pub group: u16,
    /// The member's generation (a zombie's is stale: fenced).
    pub generation: u32,
    /// Input partition.
    pub partition: u32,
    /// The committed offset the transaction starts from.
    pub start: u64,
    /// The offset it commits.
    pub end: u64,
    /// Output topic index.
    pub out_topic: u16,
    /// Output records.
    pub outputs: Vec<Record>,
}

/// A message of the log protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogMsg {
    /// Producer to log broker: append this batch to `partition` of `topic`.
    Produce {
        /// The batch's records, in the producer's order (at least one).
        recs: Box<[Record]>,
        /// What the producer waits for.
        acks: Acks,
        /// Which attempt this is (1 for the first send).
        attempt: u32,
        /// The idempotent producer's session (0: not idempotent).
        epoch: u32,
        /// The idempotent producer's sequence number of the batch's first
        /// record in this partition (the batch numbers `seq..seq + len`).
        seq: u64,
        /// Topic index (in the broker's topic order).
        topic: u16,
        /// Partition within the topic.
        partition: u32,
    },
    /// Log broker to producer: the produce of the batch `ids` was appended
    /// (as far as its `acks` asked) or refused.
    ProduceAck {
        /// The batch's messages, in its order.
        ids: Box<[MsgId]>,
        /// False when the broker refused it.
        accepted: bool,
        /// The attempt being answered.
        attempt: u32,
    },
    /// Group member to log broker: I am alive, in `session`, holding the
    /// assignment of `generation` (0: none). An unknown member or session
    /// joins the group.
    Heartbeat {
        /// Group index.
        group: u16,
        /// The member's (re)start count.
        session: u32,
        /// The generation whose assignment the member holds.
        generation: u32,
    },
    /// Log broker to group member: the group's state. Stable: your
    /// partitions and where to start reading each (the committed offset).
    GroupState {
        /// The group's generation.
        generation: u32,
        /// True while a rebalance is in progress (stop fetching).
        rebalancing: bool,
        /// (partition, committed offset) for each partition assigned to you.
        partitions: Vec<(u32, u64)>,
    },
    /// Group member to log broker: records of `partition` from `offset`.
    Fetch {
        /// Group index.
        group: u16,
        /// The member's generation.
        generation: u32,
        /// Partition of the group's topic.
        partition: u32,
        /// First offset wanted.
        offset: u64,
        /// Most records wanted.
        max: u32,
    },
    /// Log broker to group member: records of `partition` starting at
    /// `offset` (which may differ from the offset asked for when that was
    /// out of range).
    Records {
        /// Partition.
        partition: u32,
        /// Offset of the first record (or where to read next, when empty).
        offset: u64,
        /// The records, in offset order.
        recs: Vec<Record>,
        /// Why nothing was served, if so.
        error: FetchError,
    },
    /// Group member to log broker: commit `offset` (the next to read) for
    /// `partition`.
    Commit {
        /// Group index.
        group: u16,
        /// The member's generation.
        generation: u32,
        /// Partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
    },
    /// Group member to log broker: one read-process-write transaction
    /// (boxed: it is rare and large, and every message pays for the
    /// largest variant).
    TxnCommit(Box<Transaction>),
    /// Log broker to group member: the outcome of a transaction.
    TxnAck {
        /// Input partition.
        partition: u32,
        /// The group's committed offset for it now.
        committed: u64,
        /// True when the transaction is (now or before) committed.
        ok: bool,
    },
    /// Log broker to group member: the outcome of a [`LogMsg::Commit`].
    CommitAck {
        /// Partition.
        partition: u32,
        /// The offset that was to be committed.
        offset: u64,
        /// False when the member was fenced (it no longer owns the partition).
        ok: bool,
    },
}

impl Protocol for LogMsg {
    fn name(&self) -> &'static str {
        match self {
            LogMsg::Produce { .. } => "produce",
            LogMsg::ProduceAck { .. } => "produce-ack",
            LogMsg::Heartbeat { .. } => "heartbeat",
            LogMsg::GroupState { .. } => "group-state",
            LogMsg::Fetch { .. } => "fetch",
            LogMsg::Records { .. } => "records",
            LogMsg::Commit { .. } => "commit",
            LogMsg::TxnCommit(_) => "txn-commit",
            LogMsg::TxnAck { .. } => "txn-ack",
            LogMsg::CommitAck { .. } => "commit-ack",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match self {
            LogMsg::Produce { recs, .. } => recs.first().map(|r| r.id),
            LogMsg::ProduceAck { ids, .. } => ids.first().copied(),
            LogMsg::Records { recs, .. } => recs.first().map(|r| r.id),
            LogMsg::TxnCommit(t) => t.outputs.first().map(|r| r.id),
            LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. } => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            LogMsg::Produce { ref recs, acks, attempt, epoch, seq, topic, partition } => {
                digest.add(10);
                for rec in recs.iter() {
                    digest.add(rec.id);
                    digest.add(rec.key);
                }
                digest.add((acks as u64) << 32 | u64::from(attempt));
                digest.add(u64::from(epoch));
                digest.add(seq);
                digest.add(u64::from(topic) << 32 | u64::from(partition));
            }
            LogMsg::ProduceAck { ref ids, accepted, attempt } => {
                ids.iter().for_each(|&id| fold_ack(digest, id, accepted, attempt));
            }
            LogMsg::Heartbeat { group, session, generation } => {
                digest.add(11);
                digest.add(u64::from(group));
                digest.add(u64::from(session) << 32 | u64::from(generation));
            }
            LogMsg::GroupState { generation, rebalancing, ref partitions } => {
                digest.add(12);
                digest.add(u64::from(generation) << 1 | u64::from(rebalancing));
                for &(p, o) in partitions {
                    digest.add(u64::from(p));
                    digest.add(o);
                }
            }
            LogMsg::Fetch { group, generation, partition, offset, max } => {
                digest.add(13);
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition) << 32 | u64::from(max));
                digest.add(offset);
            }
            LogMsg::Records { partition, offset, ref recs, error } => {
                digest.add(14);
                digest.add(u64::from(partition) << 8 | error as u64);
                digest.add(offset);
                recs.iter().for_each(|r| digest.add(r.id));
            }
            _ => self.fold_commits(digest),
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        match self {
            LogMsg::Produce { recs, .. } => out.extend(recs.iter().map(|r| r.id)),
            LogMsg::Records { recs, .. } => out.extend(recs.iter().map(|r| r.id)),
            LogMsg::TxnCommit(t) => out.extend(t.outputs.iter().map(|r| r.id)),
            LogMsg::ProduceAck { .. }
            | LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. } => {}
        }
    }

    #[inline]
    fn observe(&self, see: &mut impl FnMut(Observed)) {
        match self {
            LogMsg::ProduceAck { ids, accepted: true, .. } => ids.iter().for_each(|&id| see(Observed::Acked(id))),
            LogMsg::Records { recs, .. } => recs.iter().for_each(|r| see(Observed::Delivered(r.id))),
            LogMsg::ProduceAck { accepted: false, .. }
            | LogMsg::Produce { .. }
            | LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnCommit(_)
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. } => {}
        }
    }
}

impl LogMsg {
    /// The digest words of commits, transactions and their answers.
    fn fold_commits(&self, digest: &mut Digest) {
        match *self {
            LogMsg::Commit { group, generation, partition, offset } => {
                digest.add(15);
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition));
                digest.add(offset);
            }
            LogMsg::TxnCommit(ref t) => {
                digest.add(16);
                digest.add(u64::from(t.group) << 32 | u64::from(t.generation));
                digest.add(u64::from(t.partition) << 16 | u64::from(t.out_topic));
                digest.add(t.start);
                digest.add(t.end);
                t.outputs.iter().for_each(|r| digest.add(r.id));
            }
            LogMsg::TxnAck { partition, committed, ok } => {
                digest.add(17);
                digest.add(u64::from(partition) << 1 | u64::from(ok));
                digest.add(committed);
            }
            LogMsg::CommitAck { partition, offset, ok } => {
                digest.add(18);
                digest.add(u64::from(partition) << 1 | u64::from(ok));
                digest.add(offset);
            }
            _ => unreachable!("fold_commits folds commits only"),
        }
    }
}
