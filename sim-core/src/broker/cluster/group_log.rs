//! The group coordinator of a cluster, as Kafka's: it lives on the leader
//! of the group's `__consumer_offsets` partition (see
//! [`super::layout`]), keeps its state as records of that partition, and
//! moves with its leadership.
//!
//! - **Who coordinates.** A broker coordinates a group while its own
//!   metadata view says it leads the group's offsets partition (and it
//!   serves clients). It answers every group request of a group it does
//!   not coordinate with `NOT_COORDINATOR` ([`CoordError::NotCoordinator`]),
//!   and answers `FindCoordinator` with the leader its view names (none
//!   while the partition is offline: Kafka's `COORDINATOR_NOT_AVAILABLE`).
//!   A stale leader of the offsets partition keeps coordinating on its view,
//!   as it keeps leading.
//! - **Commits are records.** An offset commit the group accepts (the
//!   member owns the partition in its generation; otherwise it is fenced at
//!   once, as before) is appended to the offsets partition, replicated like
//!   any record, and answered only once the high watermark passes it, as
//!   Kafka's coordinator appends with `acks = -1`. Then the offset moves.
//!   With fewer in-sync replicas than `min_insync_replicas` it is refused
//!   (`COORDINATOR_NOT_AVAILABLE`, Kafka's mapping of `NOT_ENOUGH_REPLICAS`),
//!   at once or when the HW passes it; when this broker stops leading the
//!   partition first, `NOT_COORDINATOR`; when it is not committed within
//!   `offsets.commit.timeout.ms` (5 s), `REQUEST_TIMED_OUT`.
//! - **Group metadata is a record** too: the generation, members and
//!   assignment, written whenever they changed and the group is stable
//!   (Kafka writes it when a rebalance settles, and when the group empties).
//! - **Moving.** A broker that becomes leader of the offsets partition loads
//!   its groups from its own replica of the log, to its end (see
//!   [`crate::broker::Coordinator::load`]): the loaded members' sessions
//!   start afresh. Loading takes no time here, so Kafka's
//!   `COORDINATOR_LOAD_IN_PROGRESS` never occurs. One that stops leading it
//!   (or crashes) forgets the groups; the commits waiting are refused.
//!   Metric `coordinator_moves`: groups loaded by a leader elected after
//!   the start (leader epoch above 0).
//! - **Heartbeats are answered** ([`ClusterMsg::HeartbeatOk`]) when the
//!   member is known, so that a member can tell a coordinator it cannot
//!   reach.
//!
//! Its unit tests are with the broker's (`node_tests.rs`, the last ones).
//!
//! Simplifications: a SyncGroup is answered at once, its group record
//! written alongside (Kafka answers it once the record is committed); the
//! whole log is read at a load (Kafka compacts it); the log of an offsets
//! partition holds only its groups' records, and, as every cluster log,
//! keeps everything.

use super::node::{BrokerTimer, ClusterBroker};
use crate::broker::{CoordTimer, GroupHost, GroupInfo};
use crate::message::{NodeId, Record};
use crate::protocol::cluster::{ClusterMsg, CoordError, ReplicaRecord, TxnOffsets};
use crate::protocol::offsets::{CommitRecord, GroupRecord, OffsetsRecord, OFFSETS_RECORD};
use crate::protocol::LogMsg;
use crate::time::{ms_to_ns, Duration, Time};
use std::collections::BTreeMap;

type Ctx<'a> = crate::engine::Ctx<'a, BrokerTimer>;

/// Kafka's `offsets.commit.timeout.ms`.
pub(super) const OFFSETS_COMMIT_TIMEOUT_MS: f64 = 5000.0;

/// A commit waiting for its record to be committed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    member: NodeId,
    group: usize,
    generation: u32,
    partition: u32,
    offset: u64,
    epoch: Option<u32>,
    deadline: Time,
}

/// A broker's offsets partitions and the groups it coordinates.
#[derive(Debug)]
pub(crate) struct GroupLogs {
    /// The cluster-wide number of the first offsets partition.
    first: u32,
    /// Per offsets partition hosted here: each record of its log, by offset.
    logs: BTreeMap<u32, Vec<OffsetsRecord>>,
    /// Per group: its offsets partition.
    partition_of: Vec<Option<u32>>,
    /// Per group: coordinated here now (loaded).
    loaded: Vec<bool>,
    /// Per group: its last group record, written or loaded.
    last_group: Vec<Option<GroupRecord>>,
    /// Commits waiting, by (offsets partition, offset of their record).
    pending: BTreeMap<(u32, u64), Pending>,
    /// When the commit-timeout timer fires (none: not set).
    timer_at: Option<Time>,
    timeout_ns: Duration,
}

impl GroupLogs {
    /// The offsets partitions of `groups` in `layout`, nothing coordinated yet.
    pub(crate) fn new(layout: &super::Layout, groups: &[GroupInfo]) -> Self {
        let first = layout.offsets.iter().map(|&(_, g)| g).min().unwrap_or(layout.replicas.len() as u32);
        GroupLogs {
            first,
            logs: layout.offsets.iter().map(|&(_, g)| (g, Vec::new())).collect(),
            partition_of: groups.iter().map(|g| layout.offsets_of(&g.name)).collect(),
            loaded: vec![false; groups.len()],
            last_group: vec![None; groups.len()],
            pending: BTreeMap::new(),
            timer_at: None,
            timeout_ns: ms_to_ns(OFFSETS_COMMIT_TIMEOUT_MS),
        }
    }

    /// Whether group `gi` is coordinated here now.
    pub(crate) fn coordinates(&self, gi: usize) -> bool {
        self.loaded.get(gi).copied().unwrap_or(false)
    }

    /// A crash: what is in memory is gone (the logs are on disk).
    pub(crate) fn crash(&mut self) {
        self.loaded.iter_mut().for_each(|l| *l = false);
        self.pending.clear();
        self.timer_at = None;
    }

    /// The records of offsets partition `pi` hosted here (for tests).
    #[cfg(test)]
    pub(crate) fn records(&self, pi: u32) -> &[OffsetsRecord] {
        self.logs.get(&pi).map_or(&[], Vec::as_slice)
    }

    /// The offsets partition (cluster-wide number) of group `group`.
    fn offsets_of(&self, group: u16) -> Option<u32> {
        self.partition_of.get(usize::from(group)).copied().flatten()
    }

    fn is_offsets(&self, pi: u32) -> bool {
        pi >= self.first && self.logs.contains_key(&pi)
    }
}

/// A cluster's logs start at 0 (no retention): where a group with no
/// commit starts reading.
struct LogStart;

impl GroupHost for LogStart {
    fn log_start(&self, _topic: usize, _partition: usize) -> u64 {
        0
    }
}

impl ClusterBroker {
    /// A group request for group `group` from `from`.
    pub(super) fn group_request(&mut self, ctx: &mut Ctx, from: NodeId, group: u16, msg: LogMsg) {
        let gi = usize::from(group);
        if !self.ready || !self.group_logs.coordinates(gi) {
            let commit = match msg {
                LogMsg::Commit { partition, offset, .. } => Some((partition, offset)),
                _ => None,
            };
            ctx.metric_add("not_coordinator_answers", 1.0);
            return ctx.send(from, ClusterMsg::GroupError { group, error: CoordError::NotCoordinator, commit });
        }
        match msg {
            LogMsg::Commit { generation, partition, offset, epoch, .. } => {
                self.commit_request(ctx, from, (gi, generation), partition, (offset, epoch));
            }
            LogMsg::Heartbeat { session, .. } => {
                let known = self.coordinator.is_member(gi, from, session);
                self.coordinator.handle(ctx, &LogStart, from, &msg);
                if known {
                    ctx.send(from, ClusterMsg::HeartbeatOk { group });
                }
            }
            // Transactions are not coordinated in a cluster (validation
            // refuses transactional members of one).
            LogMsg::TxnWrite { .. } | LogMsg::TxnCommit(_) => {}
            _ => {
                self.coordinator.handle(ctx, &LogStart, from, &msg);
                self.write_group(ctx, gi);
            }
        }
    }

    /// The node of the coordinator of group `group` as this broker's view
    /// says: the leader of its offsets partition (none while it has none).
    pub(super) fn coordinator_node(&self, group: u16) -> Option<NodeId> {
        let pi = self.group_logs.offsets_of(group)?;
        self.views[pi as usize].leader.map(|l| self.layout.node_of(l))
    }

    /// A timer of the coordinator: its group's record is written if it changed.
    pub(super) fn coord_timer(&mut self, ctx: &mut Ctx, t: CoordTimer) {
        self.coordinator.on_timer(ctx, t);
        let (CoordTimer::Rebalance(g) | CoordTimer::Expiry(g)) = t;
        if self.group_logs.coordinates(g as usize) {
            self.write_group(ctx, g as usize);
        }
    }

    /// An offset commit of group `gi` by `from` in `generation`.
    fn commit_request(
        &mut self,
        ctx: &mut Ctx,
        from: NodeId,
        (gi, generation): (usize, u32),
        partition: u32,
        (offset, epoch): (u64, Option<u32>),
    ) {
        let p = partition as usize;
        if !self.coordinator.may_commit(gi, from, generation, p) {
            // Fenced: refused at once, as before.
            self.coordinator.commit(ctx, from, (gi, generation), p, (offset, epoch));
            return;
        }
        let pi = self.group_logs.partition_of[gi].expect("a coordinated group has its offsets partition");
        if self.views[pi as usize].isr.len() < self.cfg.min_isr {
            return refuse(ctx, from, gi, (partition, offset), CoordError::NotAvailable);
        }
        let group = gi as u16;
        let rec = OffsetsRecord::Commit(CommitRecord { group, partition, offset, epoch, by: (from, generation) });
        let deadline = ctx.now() + self.group_logs.timeout_ns;
        let pending = Pending { member: from, group: gi, generation, partition, offset, epoch, deadline };
        self.append_group_record(ctx, pi, rec, Some(pending));
    }

    /// A transaction's offset commit, taken by this coordinator: written to
    /// the group's offsets partition like any commit (with no member
    /// waiting for its answer), so a coordinator that takes over has it.
    pub(super) fn log_txn_commit(&mut self, ctx: &mut Ctx, o: &TxnOffsets) {
        let Some(pi) = self.group_logs.offsets_of(o.group) else { return };
        let by = (o.member, o.generation);
        let (group, partition, offset, epoch) = (o.group, o.partition, o.end, o.epoch);
        let rec = OffsetsRecord::Commit(CommitRecord { group, partition, offset, epoch, by });
        self.append_group_record(ctx, pi, rec, None);
    }

    /// Writes group `gi`'s record if its metadata changed since the last.
    fn write_group(&mut self, ctx: &mut Ctx, gi: usize) {
        let Some(record) = self.coordinator.group_record(gi) else { return };
        if self.group_logs.last_group[gi].as_ref() == Some(&record) {
            return;
        }
        let pi = self.group_logs.partition_of[gi].expect("a coordinated group has its offsets partition");
        self.group_logs.last_group[gi] = Some(record.clone());
        self.append_group_record(ctx, pi, OffsetsRecord::Group(Box::new(record)), None);
    }

    /// Appends `rec` to offsets partition `pi` (led here), with the commit
    /// that waits for it, and lets replication and the HW move.
    fn append_group_record(&mut self, ctx: &mut Ctx, pi: u32, rec: OffsetsRecord, pending: Option<Pending>) {
        let (now, incarnation) = (ctx.now(), self.incarnation);
        let leader_epoch = self.views[pi as usize].leader_epoch;
        let rec_bytes = rec.bytes();
        let r = self.replica_mut(pi);
        let placeholder = Record { id: OFFSETS_RECORD, key: 0, bytes: rec_bytes };
        let rr = ReplicaRecord { rec: placeholder, leader_epoch, producer: 0, producer_epoch: 0, seq: 0 };
        let offset = r.append(rr, now, false, incarnation);
        let log = self.group_logs.logs.get_mut(&pi).expect("a hosted offsets partition");
        log.truncate(offset as usize);
        log.push(rec);
        if let Some(p) = pending {
            self.group_logs.pending.insert((pi, offset), p);
            self.arm_commit_timeout(ctx, p.deadline);
        }
        self.wake_followers(ctx, pi);
        self.advance_hw(ctx, pi);
    }

    /// The HW of `pi` moved (called by the leader): the commits it passed
    /// are answered.
    pub(super) fn group_log_advanced(&mut self, ctx: &mut Ctx, pi: u32) {
        if !self.group_logs.is_offsets(pi) {
            return;
        }
        let hw = self.replica(pi).hw;
        let enough = self.views[pi as usize].isr.len() >= self.cfg.min_isr;
        let done: Vec<(u32, u64)> = self.group_logs.pending.range((pi, 0)..(pi, hw)).map(|(&k, _)| k).collect();
        for key in done {
            let p = self.group_logs.pending.remove(&key).expect("just seen");
            if enough && self.group_logs.coordinates(p.group) {
                let (gi, part) = ((p.group, p.generation), p.partition as usize);
                self.coordinator.apply_commit(ctx, p.member, gi, part, (p.offset, p.epoch));
            } else {
                refuse(ctx, p.member, p.group, (p.partition, p.offset), CoordError::NotAvailable);
            }
        }
    }

    /// This broker now leads `pi`: it takes over the groups whose offsets
    /// partition it is, from its own log.
    pub(super) fn group_log_led(&mut self, ctx: &mut Ctx, pi: u32) {
        if !self.group_logs.is_offsets(pi) {
            return;
        }
        let moved = self.views[pi as usize].leader_epoch > 0;
        for gi in 0..self.group_logs.partition_of.len() {
            if self.group_logs.partition_of[gi] != Some(pi) {
                continue;
            }
            let log = &self.group_logs.logs[&pi];
            self.coordinator.load(ctx, gi, log);
            let last = log.iter().rev().find_map(|r| match r {
                OffsetsRecord::Group(g) if usize::from(g.group) == gi => Some((**g).clone()),
                _ => None,
            });
            self.group_logs.last_group[gi] = last;
            self.group_logs.loaded[gi] = true;
            if moved {
                ctx.metric_add("coordinator_moves", 1.0);
                ctx.mark("coordinator moved");
            }
        }
    }

    /// This broker stops leading `pi`: its groups are given up, and the
    /// commits waiting are refused (`NOT_COORDINATOR`).
    pub(super) fn group_log_resigned(&mut self, ctx: &mut Ctx, pi: u32) {
        if !self.group_logs.is_offsets(pi) {
            return;
        }
        for gi in 0..self.group_logs.partition_of.len() {
            if self.group_logs.partition_of[gi] == Some(pi) && self.group_logs.loaded[gi] {
                self.coordinator.unload(ctx, gi);
                self.group_logs.loaded[gi] = false;
            }
        }
        let waiting: Vec<(u32, u64)> =
            self.group_logs.pending.range((pi, 0)..=(pi, u64::MAX)).map(|(&k, _)| k).collect();
        for key in waiting {
            let p = self.group_logs.pending.remove(&key).expect("just seen");
            refuse(ctx, p.member, p.group, (p.partition, p.offset), CoordError::NotCoordinator);
        }
    }

    /// The content of the `n` records of `pi` from `offset`, for a
    /// follower (none for a topic's partition).
    pub(super) fn group_log_records(&self, pi: u32, offset: u64, n: usize) -> Vec<OffsetsRecord> {
        if n == 0 || pi < self.group_logs.first {
            return Vec::new();
        }
        match self.group_logs.logs.get(&pi) {
            Some(log) => log.iter().skip(offset as usize).take(n).cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// A follower appended `recs` to `pi` at `offset`: their content.
    pub(super) fn group_log_appended(&mut self, pi: u32, offset: u64, recs: Vec<OffsetsRecord>) {
        if let Some(log) = self.group_logs.logs.get_mut(&pi) {
            log.truncate(offset as usize);
            log.extend(recs);
        }
    }

    /// The log of `pi` was cut back to `at`: true (and its content cut
    /// too) when it is an offsets partition, whose records the ledger
    /// knows nothing of.
    pub(super) fn group_log_truncated(&mut self, pi: u32, at: u64) -> bool {
        match self.group_logs.logs.get_mut(&pi) {
            Some(log) => {
                log.truncate(at as usize);
                true
            }
            None => false,
        }
    }

    fn arm_commit_timeout(&mut self, ctx: &mut Ctx, at: Time) {
        if self.group_logs.timer_at.is_none() {
            self.group_logs.timer_at = Some(at);
            ctx.set_timer(at.saturating_sub(ctx.now()).max(1), BrokerTimer::CommitTimeout);
        }
    }

    /// The commit-timeout timer: commits waiting past their deadline are
    /// refused (`REQUEST_TIMED_OUT`).
    pub(super) fn commit_timeouts(&mut self, ctx: &mut Ctx) {
        let now = ctx.now();
        self.group_logs.timer_at = None;
        let late: Vec<(u32, u64)> =
            self.group_logs.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(&k, _)| k).collect();
        for key in late {
            let p = self.group_logs.pending.remove(&key).expect("just seen");
            ctx.metric_add("offset_commit_timeouts", 1.0);
            refuse(ctx, p.member, p.group, (p.partition, p.offset), CoordError::TimedOut);
        }
        if let Some(next) = self.group_logs.pending.values().map(|p| p.deadline).min() {
            self.arm_commit_timeout(ctx, next);
        }
    }
}

/// Refuses `member`'s commit of (partition, offset) of group `gi`.
fn refuse(ctx: &mut Ctx, member: NodeId, gi: usize, commit: (u32, u64), error: CoordError) {
    let group = gi as u16;
    ctx.send(member, ClusterMsg::GroupError { group, error, commit: Some(commit) });
}
