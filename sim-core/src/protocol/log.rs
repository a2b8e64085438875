//! The log protocol (Kafka-like), spoken between producers, group members
//! and the log broker: produce with `acks` and idempotent sequence numbers,
//! group membership (join, sync, heartbeat, leave), fetch by offset, offset commits, and
//! atomic read-process-write transactions.
//!
//! A [`LogMsg::Produce`] is one batch: the records of one partition, which
//! the broker appends atomically and acks together. A producer's request
//! carries a batch for every partition that has one waiting, as Kafka's
//! does: it sends them as one `Produce` each, at the same instant, on the
//! same connection, and counts them as one request (see the producer's
//! `requests`). A batch's sequence number is its base sequence: record `i`
//! has number `seq + i`.
//!
//! A transaction is a run of [`LogMsg::TxnWrite`]s (each appended at once
//! to its output partition, marked as part of the open transaction) ended
//! by one [`LogMsg::TxnCommit`], which also carries the outputs so that a
//! write lost on the way is made at commit (as a producer flushes its
//! sends before it commits).
//!
//! Left out: batching of commit requests (one per partition) and of
//! transactional writes (one record each), metadata requests (clients know
//! the topic layout), and the transaction coordinator's own requests
//! (`InitProducerId`, `AddPartitionsToTxn`, `EndTxn` and the markers are
//! folded into the writes and the commit).

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
    /// The broker does not lead the partition (a cluster's broker, as far
    /// as it knows): find the leader and fetch there.
    NotLeader,
}

/// Why a log broker refused a produce: the error codes of Kafka's produce
/// response that a producer acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceError {
    /// Accepted.
    None,
    /// `NOT_LEADER_OR_FOLLOWER` (or `LEADER_NOT_AVAILABLE`): the producer's
    /// metadata is stale; it refreshes it before the retry.
    NotLeader,
    /// `NOT_ENOUGH_REPLICAS` (before or after the append): the leader is
    /// right, its ISR is too small; retried as is.
    NotEnoughReplicas,
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`: an idempotent batch after a gap in
    /// its session's numbers (or beyond the broker's window).
    OutOfOrderSequence,
    /// `INVALID_PRODUCER_EPOCH`: an older session of the producer (fenced).
    InvalidProducerEpoch,
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
    /// The member's number for this transaction (a redone batch is a new
    /// transaction, with a new number).
    pub seq: u32,
    /// The leader epoch of the last input record (of offset `end - 1`), if
    /// known: it is committed with the offset (KIP-320).
    pub epoch: Option<u32>,
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
        /// Why it was refused ([`ProduceError::None`] when accepted).
        error: ProduceError,
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
    /// Log broker to group member: the group's state. Stable (the answer
    /// to a [`LogMsg::SyncGroup`]): your partitions in `generation` and
    /// where to start reading each (the committed offset). Rebalancing (the
    /// answer to a heartbeat or a sync): rejoin the group; generation 0
    /// says the coordinator does not know you (expired, left, or replaced):
    /// your partitions are lost, join as a new member.
    GroupState {
        /// The group's generation.
        generation: u32,
        /// True while a rebalance is in progress: rejoin.
        rebalancing: bool,
        /// (partition, committed offset, the leader epoch committed with
        /// it) for each partition assigned to you.
        partitions: Vec<(u32, u64, Option<u32>)>,
    },
    /// Group member to log broker: let me into the group (a new member, or
    /// a known one rejoining for a rebalance), owning `owned` (eager members
    /// own nothing when they rejoin: they revoked everything).
    JoinGroup {
        /// Group index.
        group: u16,
        /// The member's incarnation (with its node, a dynamic member's id).
        session: u32,
        /// The partitions it keeps (cooperative rebalancing).
        owned: Vec<u32>,
        /// A static member (`group_instance_id`): known by its node across restarts.
        static_member: bool,
    },
    /// Log broker to group member: every member has joined; generation
    /// `generation` is formed. Ask for your assignment ([`LogMsg::SyncGroup`]).
    JoinAck {
        /// The new generation.
        generation: u32,
    },
    /// Group member to log broker: my assignment in `generation`, please.
    SyncGroup {
        /// Group index.
        group: u16,
        /// The member's incarnation.
        session: u32,
        /// The generation it joined.
        generation: u32,
    },
    /// Group member to log broker: I leave the group (its poll interval
    /// ran out).
    LeaveGroup {
        /// Group index.
        group: u16,
        /// The member's incarnation.
        session: u32,
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
        /// Most bytes of records wanted (the first record comes whatever
        /// its size, so that the reader always makes progress).
        max_bytes: u32,
        /// The leader epoch of the record before `offset`, if known: the
        /// leader checks that its log has not diverged from it (KIP-320).
        epoch: Option<u32>,
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
        /// The leader epoch that wrote these records (an answer never mixes
        /// epochs), or, with none, the epoch of the record before `offset`.
        epoch: u32,
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
        /// The leader epoch of the last record consumed (of `offset - 1`).
        epoch: Option<u32>,
    },
    /// Group member to log broker: write `rec` to `out_topic` (to the
    /// partition its key hashes to) inside the member's transaction `seq`
    /// for input `partition`; the first write begins the transaction.
    TxnWrite {
        /// The output record.
        rec: Record,
        /// Group index.
        group: u16,
        /// The member's generation (a zombie's is stale: fenced).
        generation: u32,
        /// Input partition.
        partition: u32,
        /// The member's number for the transaction.
        seq: u32,
        /// Output topic index.
        out_topic: u16,
    },
    /// Group member to log broker: commit one read-process-write
    /// transaction (boxed: it is rare and large, and every message pays
    /// for the largest variant).
    TxnCommit(Box<Transaction>),
    /// Log broker to group member: the outcome of a transaction.
    TxnAck {
        /// Input partition.
        partition: u32,
        /// The group's committed offset for it now.
        committed: u64,
        /// True when the transaction is (now or before) committed.
        ok: bool,
        /// With `ok` false: true when the transaction is over (aborted by
        /// the broker, fenced, or overlapping what is committed) and the
        /// batch must be redone from `committed`; false when the commit
        /// was refused for now (not enough in-sync replicas, no leader) and
        /// may be sent again.
        aborted: bool,
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
            LogMsg::TxnWrite { .. } => "txn-write",
            LogMsg::TxnCommit(_) => "txn-commit",
            LogMsg::TxnAck { .. } => "txn-ack",
            LogMsg::CommitAck { .. } => "commit-ack",
            LogMsg::JoinGroup { .. } => "join-group",
            LogMsg::JoinAck { .. } => "join-ack",
            LogMsg::SyncGroup { .. } => "sync-group",
            LogMsg::LeaveGroup { .. } => "leave-group",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match self {
            LogMsg::Produce { recs, .. } => recs.first().map(|r| r.id),
            LogMsg::TxnWrite { rec, .. } => Some(rec.id),
            LogMsg::ProduceAck { ids, .. } => ids.first().copied(),
            LogMsg::Records { recs, .. } => recs.first().map(|r| r.id),
            LogMsg::TxnCommit(t) => t.outputs.first().map(|r| r.id),
            LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. }
            | LogMsg::JoinGroup { .. }
            | LogMsg::JoinAck { .. }
            | LogMsg::SyncGroup { .. }
            | LogMsg::LeaveGroup { .. } => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            LogMsg::Produce { ref recs, acks, attempt, epoch, seq, topic, partition } => {
                digest.add(10);
                for rec in recs.iter() {
                    digest.add(rec.id);
                    digest.add(rec.key());
                }
                digest.add((acks as u64) << 32 | u64::from(attempt));
                digest.add(u64::from(epoch));
                digest.add(seq);
                digest.add(u64::from(topic) << 32 | u64::from(partition));
            }
            // The error is not folded: the broker's state, which the
            // history determines, decides it.
            LogMsg::ProduceAck { ref ids, accepted, attempt, .. } => {
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
                for &(p, o, e) in partitions {
                    digest.add(u64::from(p));
                    digest.add(o);
                    fold_epoch(digest, e);
                }
            }
            LogMsg::Fetch { group, generation, partition, offset, max, epoch, .. } => {
                digest.add(13);
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition) << 32 | u64::from(max));
                digest.add(offset);
                fold_epoch(digest, epoch);
            }
            LogMsg::Records { partition, offset, ref recs, error, epoch } => {
                digest.add(14);
                digest.add(u64::from(partition) << 8 | error as u64);
                digest.add(offset);
                fold_epoch(digest, Some(epoch));
                recs.iter().for_each(|r| digest.add(r.id));
            }
            LogMsg::JoinGroup { .. }
            | LogMsg::JoinAck { .. }
            | LogMsg::SyncGroup { .. }
            | LogMsg::LeaveGroup { .. } => self.fold_membership(digest),
            _ => self.fold_commits(digest),
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        match self {
            LogMsg::Produce { recs, .. } => out.extend(recs.iter().map(|r| r.id)),
            LogMsg::TxnWrite { rec, .. } => out.push(rec.id),
            LogMsg::Records { recs, .. } => out.extend(recs.iter().map(|r| r.id)),
            LogMsg::TxnCommit(t) => out.extend(t.outputs.iter().map(|r| r.id)),
            LogMsg::ProduceAck { .. }
            | LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. }
            | LogMsg::JoinGroup { .. }
            | LogMsg::JoinAck { .. }
            | LogMsg::SyncGroup { .. }
            | LogMsg::LeaveGroup { .. } => {}
        }
    }

    #[inline]
    fn observe(&self, see: &mut impl FnMut(Observed)) {
        match self {
            LogMsg::ProduceAck { ids, accepted: true, .. } => ids.iter().for_each(|&id| see(Observed::Acked(id))),
            LogMsg::Records { recs, .. } => recs.iter().for_each(|r| see(Observed::Delivered(r.id))),
            LogMsg::ProduceAck { accepted: false, .. }
            | LogMsg::Produce { .. }
            | LogMsg::TxnWrite { .. }
            | LogMsg::Heartbeat { .. }
            | LogMsg::GroupState { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnCommit(_)
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. }
            | LogMsg::JoinGroup { .. }
            | LogMsg::JoinAck { .. }
            | LogMsg::SyncGroup { .. }
            | LogMsg::LeaveGroup { .. } => {}
        }
    }

    fn wire_bytes(&self) -> u64 {
        use super::wire;
        match self {
            LogMsg::Produce { recs, .. } => wire::HEADER + wire::batch(recs),
            LogMsg::Records { recs, .. } => wire::HEADER + wire::batch(recs),
            LogMsg::TxnWrite { rec, .. } => wire::HEADER + wire::batch(std::slice::from_ref(rec)),
            LogMsg::TxnCommit(t) => wire::control(0) + wire::batch(&t.outputs),
            LogMsg::ProduceAck { .. } => wire::control(0) + wire::PARTITION,
            LogMsg::GroupState { partitions, .. } => wire::control(partitions.len()),
            LogMsg::JoinGroup { owned, .. } => wire::control(owned.len()),
            LogMsg::Heartbeat { .. }
            | LogMsg::Fetch { .. }
            | LogMsg::Commit { .. }
            | LogMsg::TxnAck { .. }
            | LogMsg::CommitAck { .. }
            | LogMsg::JoinAck { .. }
            | LogMsg::SyncGroup { .. }
            | LogMsg::LeaveGroup { .. } => wire::control(0),
        }
    }
}

impl LogMsg {
    /// The digest words of the group membership messages.
    fn fold_membership(&self, digest: &mut Digest) {
        match *self {
            LogMsg::JoinGroup { group, session, ref owned, static_member } => {
                digest.add(19);
                digest.add(u64::from(group) << 33 | u64::from(session) << 1 | u64::from(static_member));
                owned.iter().for_each(|&p| digest.add(u64::from(p)));
            }
            LogMsg::JoinAck { generation } => {
                digest.add(20);
                digest.add(u64::from(generation));
            }
            LogMsg::SyncGroup { group, session, generation } => {
                digest.add(21);
                digest.add(u64::from(group) << 32 | u64::from(session));
                digest.add(u64::from(generation));
            }
            LogMsg::LeaveGroup { group, session } => {
                digest.add(22);
                digest.add(u64::from(group) << 32 | u64::from(session));
            }
            _ => unreachable!("fold_membership folds membership messages only"),
        }
    }

    /// The digest words of commits, transactions and their answers.
    fn fold_commits(&self, digest: &mut Digest) {
        match *self {
            LogMsg::Commit { group, generation, partition, offset, epoch } => {
                digest.add(15);
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition));
                digest.add(offset);
                fold_epoch(digest, epoch);
            }
            LogMsg::TxnCommit(ref t) => {
                digest.add(16);
                digest.add(u64::from(t.group) << 32 | u64::from(t.generation));
                digest.add(u64::from(t.partition) << 16 | u64::from(t.out_topic));
                digest.add(t.start);
                digest.add(t.end);
                fold_epoch(digest, t.epoch);
                t.outputs.iter().for_each(|r| digest.add(r.id));
                digest.add(u64::from(t.seq));
            }
            LogMsg::TxnWrite { rec, group, generation, partition, seq, out_topic } => {
                digest.add(19);
                digest.add(rec.id);
                digest.add(rec.key());
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition) << 32 | u64::from(seq));
                digest.add(u64::from(out_topic));
            }
            LogMsg::TxnAck { partition, committed, ok, aborted } => {
                digest.add(17);
                digest.add(u64::from(partition) << 2 | u64::from(aborted) << 1 | u64::from(ok));
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

/// Folds a leader epoch past the first (epoch 0, or none, adds nothing: a
/// run without elections keeps the digest it had before epochs existed).
fn fold_epoch(digest: &mut Digest, epoch: Option<u32>) {
    if let Some(e) = epoch.filter(|&e| e != 0) {
        digest.add(0xe90c << 32 | u64::from(e));
    }
}
