//! The partitioned log broker (Kafka-like): topics split into partitions,
//! each an append-only log with offsets, replicated on `replicas` replicas
//! with a leader and followers; consumer groups with committed offsets; and
//! atomic read-process-write transactions.
//!
//! **Replication.** The leader appends; each follower fetches what the
//! leader has, taking a `replication` delay per fetch, and fetches again
//! while behind. A follower that has not caught up for `replica_lag_max_ms`
//! leaves the in-sync replica set (ISR) and rejoins once caught up. The
//! high watermark (HW) is the lowest log end in the ISR: consumers read only
//! below it. `acks = "0"` gets no answer, `acks = "1"` is answered when the
//! leader has appended, `acks = "all"` when the HW passes the record, and is
//! refused while the ISR is smaller than `min_insync_replicas`.
//!
//! **Failover.** When a leader dies, a controller notices after
//! `election_delay_ms` (9 s by default: a KRaft controller fences a broker
//! that has not heartbeated for `broker.session.timeout.ms`) and elects the
//! first live replica of the ISR (clean election). Every replica failure
//! is a crash: a controlled shutdown, which in Kafka moves leadership at
//! once, is not modelled. With none, the partition stays offline until an ISR member
//! returns, unless `unclean_leader_election` lets any live replica lead:
//! then records only the old leader had, acknowledged ones included, are
//! truncated away. A new leader's log is the truth: every replica is cut
//! back to it, so with `acks = "1"` records acknowledged but not yet
//! replicated are lost even in a clean election.
//!
//! **Versions** (see [`elr`]): `version` picks the Kafka release whose
//! rules apply. From 3.7 the HW stands still while the ISR is below
//! `min_insync_replicas` (strict min ISR); from 4.1 (4.0 when enabled) an
//! election with no live in-sync replica may pick an eligible leader
//! replica, one that left the ISR while the HW stood still.
//!
//! **Transactions** (see [`txn`]): a stage's output is appended as it is
//! processed, marked as part of its open transaction, and the commit
//! copies it at once to every live in-sync replica (Kafka's commit waits
//! for that replication; here it takes no time), so a clean failover
//! cannot cut committed output off. A commit is refused while an output
//! partition has fewer live in-sync replicas than `min_insync_replicas`.
//! `read_committed` groups read up to the last stable offset and skip
//! aborted records.
//!
//! **Disks** (see [`disk`]): a `power-loss` fault crashes replicas at
//! once and each loses what it had not flushed (`flush_interval_ms`, or
//! the OS's writeback when unset); a process crash loses nothing.
//!
//! Simplifications: replicas are parts of this one node (replication
//! traffic does not cross the simulated network, so a network partition
//! cannot split replicas; crash them with `replica-crash` or `leader-crash`
//! faults); every replica holds every partition; the group and
//! transaction coordinators and committed offsets never fail. The group
//! coordinator is a part of its own ([`coordinator`]), which a cluster's
//! broker embeds too; membership and rebalancing are described in
//! [`membership`].

mod backlog;
mod coordinator;
mod disk;
pub(crate) mod elr;
pub(crate) mod epoch;
mod fetch_bytes;
mod group;
mod membership;
mod partition;

pub use coordinator::{CoordTimer, Coordinator, GroupHost, Handled, HostTimer};
pub use group::{Assignor, GroupInfo, RebalanceProtocol};

mod kind;
pub use kind::{partitions_needed, LogBrokerKind, LogGroups, LogSpec, TopicSpec};

mod txn;
pub use txn::GroupTxn;

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::{DomainId, DupCause, LossCause};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{Acks, ControlMsg, FetchError, LogMsg, ProduceError};
use crate::sequencer::Offer;
use crate::time::{ms_to_ns, Duration, Time};
use partition::{Entry, Idem, Parked, Partition, Produce, Waiter};

/// Appends per idempotent producer and partition whose offset is kept, to
/// answer a retry (it must find what it retries) and to know what the
/// producer was told.
const RECENT_SEQUENCES: usize = 4096;

/// A log broker's timers. Partitions are numbered across topics, in topic
/// order; groups in the order the broker lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTimer {
    /// Follower `replica` of `partition` has its fetch answered.
    Fetch {
        /// The partition.
        partition: u32,
        /// The follower.
        replica: u16,
    },
    /// The controller elects a new leader of this partition.
    Election(u32),
    /// Check this partition's in-sync replicas for laggards.
    IsrCheck(u32),
    /// This group's rebalance timeout, or its initial delay, is over.
    Rebalance(u32),
    /// Expire this group's members that stopped heartbeating.
    Expiry(u32),
    /// Abort the transactions open past their timeout.
    TxnExpiry,
}

impl From<CoordTimer> for LogTimer {
    // The coordinator's timers keep the words they had before it was a part.
    #[inline]
    fn from(t: CoordTimer) -> Self {
        match t {
            CoordTimer::Rebalance(g) => LogTimer::Rebalance(g),
            CoordTimer::Expiry(g) => LogTimer::Expiry(g),
        }
    }
}

impl Timer for LogTimer {
    // The top byte says which timer, bits 16.. the partition or group, the
    // low 16 bits the replica.
    fn to_word(self) -> u64 {
        let (kind, index, replica) = match self {
            LogTimer::Fetch { partition, replica } => (1, partition, replica),
            LogTimer::Election(p) => (2, p, 0),
            LogTimer::IsrCheck(p) => (3, p, 0),
            LogTimer::Rebalance(g) => (4, g, 0),
            LogTimer::Expiry(g) => (5, g, 0),
            LogTimer::TxnExpiry => (6, 0, 0),
        };
        kind << 56 | u64::from(index) << 16 | u64::from(replica)
    }
    fn from_word(word: u64) -> Option<Self> {
        let index = u32::try_from((word >> 16) & 0xff_ffff_ffff).ok()?;
        let replica = (word & 0xffff) as u16;
        Some(match (word >> 56, replica) {
            (1, replica) => LogTimer::Fetch { partition: index, replica },
            (2, 0) => LogTimer::Election(index),
            (3, 0) => LogTimer::IsrCheck(index),
            (4, 0) => LogTimer::Rebalance(index),
            (5, 0) => LogTimer::Expiry(index),
            (6, 0) if index == 0 => LogTimer::TxnExpiry,
            _ => return None,
        })
    }
}

struct Topic {
    first: usize,
    partitions: usize,
    /// Records appended per partition, ever (for the skew figure).
    appended: Vec<u64>,
    retention_messages: Option<u64>,
    retention_ns: Option<Duration>,
    /// The groups that read it, by number.
    readers: Vec<usize>,
    /// A dead-letter topic: what is appended is dead-lettered, and held
    /// for every domain while the log keeps it.
    dead_letter: bool,
}

/// A running log broker.
pub struct LogBroker {
    topics: Vec<Topic>,
    parts: Vec<Partition>,
    alive: Vec<bool>,
    down: Vec<u32>,
    /// Which replica each active leader-crash fault (by number) took down.
    crashed_leaders: Vec<(u32, usize)>,
    /// The group coordinator, of every group.
    coord: Coordinator,
    /// Per group and partition of its topic, the end of the highest range
    /// of offsets sent to the group: records below it that are sent again
    /// are redeliveries (only for the ledger's causes; it changes nothing
    /// the broker does).
    served: Vec<Vec<u64>>,
    /// The topic of each partition.
    topic_of: Vec<u32>,
    /// Per partition, the records below the HW its readers' groups have
    /// not committed, summed over them (see [`backlog`]).
    backlog: Vec<u64>,
    /// The sum of `backlog`: the queue depth reported.
    backlog_total: u64,
    min_isr: usize,
    unclean: bool,
    replication: Sampler,
    lag_max_ns: Duration,
    election_ns: Duration,
    txns: txn::Txns,
    /// The replication rules of its Kafka version (see [`elr`]).
    rules: elr::Rules,
    disk: disk::Disk,
    /// The partition-count check of its topics (`expected_rate_per_s`):
    /// the most partitions any needs, and the most any lacks.
    pub(crate) sizing: (u32, u32),
}

impl LogBroker {
    /// A log broker as `spec` says, serving `groups`.
    pub fn new(spec: &LogSpec, groups: Vec<GroupInfo>) -> Self {
        let replicas = spec.replicas.max(1) as usize;
        let mut topics = Vec::new();
        let mut parts = Vec::new();
        let mut topic_of = Vec::new();
        for t in spec.topics.values() {
            let n = t.partitions.max(1) as usize;
            topics.push(Topic {
                first: parts.len(),
                partitions: n,
                appended: vec![0; n],
                retention_messages: t.retention_messages,
                retention_ns: t.retention_ms.map(|m| ms_to_ns(m.0)),
                readers: Vec::new(),
                dead_letter: false,
            });
            for p in 0..n {
                // Leadership is spread over the replicas.
                parts.push(Partition::new(replicas, p % replicas));
                topic_of.push((topics.len() - 1) as u32);
            }
        }
        for (i, g) in groups.iter().enumerate() {
            topics[g.topic].readers.push(i);
        }
        let served = groups.iter().map(|g| vec![0; topics[g.topic].partitions]).collect();
        let sizes: Vec<usize> = topics.iter().map(|t| t.partitions).collect();
        let coord = Coordinator::new(spec, groups, &sizes);
        LogBroker {
            backlog: vec![0; parts.len()],
            backlog_total: 0,
            txns: txn::Txns::new(parts.len()),
            topic_of,
            topics,
            parts,
            alive: vec![true; replicas],
            down: vec![0; replicas],
            crashed_leaders: Vec::new(),
            coord,
            served,
            min_isr: spec.min_insync_replicas.max(1) as usize,
            unclean: spec.unclean_leader_election,
            replication: spec.replication.sampler(),
            lag_max_ns: ms_to_ns(spec.replica_lag_max_ms.0),
            election_ns: ms_to_ns(spec.election_delay_ms.0),
            rules: elr::Rules::of(spec).unwrap_or_default(),
            disk: disk::Disk::new(spec.flush_interval_ms.map(|m| m.0)),
            sizing: (0, 0),
        }
    }

    fn index(&self, topic: usize, partition: usize) -> Option<usize> {
        let t = self.topics.get(topic)?;
        (partition < t.partitions).then_some(t.first + partition)
    }

    fn leader_alive(&self, pi: usize) -> bool {
        self.parts[pi].leader.is_some_and(|l| self.alive[l])
    }

    // ---- producing ----

    /// A produce request: the batch `send` for `pi`, from `from`.
    fn produce(&mut self, ctx: &mut Ctx<LogTimer>, from: NodeId, send: Produce, epoch: u32, seq: u64, pi: usize) {
        let p = &self.parts[pi];
        let Some(leader) = p.leader else {
            ctx.error("leader-not-available");
            send.recs.iter().for_each(|r| ctx.discarded(r.id, LossCause::NoLeader));
            return answer(ctx, from, &send, ProduceError::NotLeader);
        };
        if !self.alive[leader] {
            send.recs.iter().for_each(|r| ctx.discarded(r.id, LossCause::NoLeader));
            return; // the leader is dead: nobody answers
        }
        if send.acks == Acks::All && p.isr_count() < self.min_isr {
            ctx.error("not-enough-replicas");
            return answer(ctx, from, &send, ProduceError::NotEnoughReplicas);
        }
        if epoch == 0 {
            self.append(ctx, pi, send, from, 0, 0);
        } else {
            self.produce_in_sequence(ctx, pi, from, send, epoch, seq);
        }
    }

    /// The idempotent producer's rule (see [`crate::sequencer`]), per batch:
    /// a batch's base sequence must be the next number. As Kafka does, a
    /// send of a newer session fences the older one at once.
    fn produce_in_sequence(
        &mut self,
        ctx: &mut Ctx<LogTimer>,
        pi: usize,
        from: NodeId,
        send: Produce,
        epoch: u32,
        seq: u64,
    ) {
        let idem = self.parts[pi].idem.entry(from).or_default();
        if epoch > idem.seq.epoch() {
            *idem = Idem::new(epoch);
        }
        let answer_to = (send.acks, send.recs.iter().map(|r| r.id).collect::<Box<[MsgId]>>(), send.attempt);
        match idem.seq.offer(epoch, seq, send) {
            Offer::Fenced => {
                ctx.error("fenced");
                answer_ids(ctx, from, answer_to, ProduceError::InvalidProducerEpoch);
            }
            // Written before: a retry whose original got through.
            Offer::Duplicate => self.produce_again(ctx, pi, from, answer_to, seq),
            Offer::Overflow => {
                ctx.error("out-of-order");
                answer_ids(ctx, from, answer_to, ProduceError::OutOfOrderSequence);
            }
            Offer::Held => {}
            Offer::Next(s) => {
                self.append(ctx, pi, s, from, epoch, seq);
                // Batches held behind the gap may follow now.
                while let Some((next, s)) = self.parts[pi].idem.get_mut(&from).expect("just used").seq.take_next() {
                    self.append(ctx, pi, s, from, epoch, next);
                }
            }
        }
    }

    /// A retry of `from`'s batch numbered from `seq`, already written:
    /// answered now, or, with `acks = "all"` while the original is not yet
    /// replicated, once it is.
    fn produce_again(
        &mut self,
        ctx: &mut Ctx<LogTimer>,
        pi: usize,
        from: NodeId,
        (acks, ids, attempt): (Acks, Box<[MsgId]>, u32),
        seq: u64,
    ) {
        let p = &mut self.parts[pi];
        let pending = p.recent_batch(from, seq).filter(|&(o, n)| o + u64::from(n) > p.hw);
        match (acks, pending) {
            (Acks::All, Some((first, n))) => {
                let last = first + u64::from(n) - 1;
                p.waiters.entry(last).or_default().push(Waiter { producer: from, ids, attempt, first });
            }
            _ => {
                p.mark_told(from, seq);
                answer_ids(ctx, from, (acks, ids, attempt), ProduceError::None);
            }
        }
    }

    /// Appends the batch `send` of `producer` (numbered from `seq` in
    /// session `epoch`, 0: not idempotent) to `pi` atomically, and answers
    /// or waits as its `acks` say.
    fn append(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, send: Produce, producer: NodeId, epoch: u32, seq: u64) {
        let now = ctx.now();
        let p = &mut self.parts[pi];
        let Produce { recs, acks, attempt } = send;
        let acked = acks == Acks::Leader;
        let first = p.end();
        for (i, &rec) in recs.iter().enumerate() {
            p.append(now, Entry { rec, at: now, producer, epoch, seq: seq + i as u64, acked });
        }
        let (n, last) = (recs.len() as u32, p.end() - 1);
        if epoch != 0 {
            if let Some(idem) = p.idem.get_mut(&producer) {
                idem.seq.appended_batch(epoch, seq, u64::from(n));
                idem.skip_gone();
                idem.recent.push_back((seq, first, n));
                if idem.recent.len() > RECENT_SEQUENCES {
                    idem.recent.pop_front();
                }
            }
        }
        let ids = || recs.iter().map(|r| r.id).collect::<Box<[MsgId]>>();
        match acks {
            Acks::Leader => ctx
                .send(producer, LogMsg::ProduceAck { ids: ids(), accepted: true, attempt, error: ProduceError::None }),
            Acks::All => p.waiters.entry(last).or_default().push(Waiter { producer, ids: ids(), attempt, first }),
            Acks::None => {}
        }
        let topic = self
            .topics
            .iter_mut()
            .find(|t| pi >= t.first && pi < t.first + t.partitions)
            .expect("a partition has a topic");
        if topic.dead_letter {
            recs.iter().for_each(|r| ctx.dead_lettered(r.id));
        }
        let removed = p.trim(now, topic.retention_messages, topic.retention_ns, |id| {
            ctx.discarded(id, LossCause::Retention);
        });
        if topic.partitions > 1 {
            // How unevenly keys load partitions: the hottest one's share of
            // everything appended to its topic.
            topic.appended[pi - topic.first] += u64::from(n);
            let total: u64 = topic.appended.iter().sum();
            let hottest = topic.appended.iter().copied().max().unwrap_or(0);
            ctx.metric_set("hottest_partition_share", hottest as f64 / total as f64);
        }
        if removed > 0 {
            ctx.metric_add("retention_deleted", removed as f64);
        }
        for (i, rec) in recs.iter().enumerate() {
            self.note_skipped(ctx, pi, first + i as u64, rec.id);
        }
        self.replicate(ctx, pi);
        self.check_isr(ctx, pi);
        self.advance_hw(ctx, pi);
        if removed > 0 {
            // Retention may have deleted records a group had yet to commit.
            self.refresh_backlog(ctx, pi);
        }
    }

    /// After an election cut the log back, a record `id` appended at
    /// `offset` of `pi` can land below an offset a group has already
    /// committed, or been sent (a member then commits past it): that group
    /// may skip it (for the ledger's causes only).
    fn note_skipped(&self, ctx: &mut Ctx<LogTimer>, pi: usize, offset: u64, id: MsgId) {
        let Some(ti) = self.topics.iter().position(|t| pi >= t.first && pi < t.first + t.partitions) else { return };
        let part = pi - self.topics[ti].first;
        for &gi in &self.topics[ti].readers {
            let committed = self.coord.committed(gi, part).unwrap_or(0);
            if committed.max(self.served[gi][part]) > offset {
                ctx.discarded_in(self.coord.info(gi).domain, id, LossCause::SkippedOffset);
            }
        }
    }

    // ---- replication ----

    /// Starts a fetch for every live follower that is idle and behind, or
    /// outside the ISR: a follower that has everything still fetches to
    /// rejoin the ISR (else, with no new writes, it would never rejoin).
    fn replicate(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let Some(leader) = self.parts[pi].leader.filter(|&l| self.alive[l]) else { return };
        for f in 0..self.alive.len() {
            let p = &self.parts[pi];
            if f != leader && self.alive[f] && p.fetch[f].is_none() && (p.leo[f] < p.end() || !p.isr[f]) {
                let delay = self.replication.sample_ns(ctx.rng());
                let p = &mut self.parts[pi];
                p.fetch[f] = Some((ctx.now().saturating_add(delay), p.end(), ctx.now()));
                ctx.set_timer(delay, LogTimer::Fetch { partition: pi as u32, replica: f as u16 });
            }
        }
    }

    fn fetch_done(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, f: usize) {
        let now = ctx.now();
        let p = &mut self.parts[pi];
        let Some((due, target, asked)) = p.fetch[f] else { return };
        if due != now {
            return; // a fetch of an earlier leadership
        }
        p.fetch[f] = None;
        let leader_ok = p.leader.is_some_and(|l| self.alive[l] && l != f);
        if !self.alive[f] || !leader_ok {
            return;
        }
        p.leo[f] = p.leo[f].max(target.min(p.end()));
        // In sync means: caught up with the leader's end as of a recent
        // fetch (Kafka's replica.lag.time.max.ms), not with every record
        // appended since.
        if p.leo[f] >= target {
            p.caught_up_at[f] = p.caught_up_at[f].max(asked);
        }
        if p.leo[f] == p.end() {
            p.caught_up_at[f] = now;
        }
        if !p.isr[f] && p.leo[f] >= p.hw && now.saturating_sub(p.caught_up_at[f]) <= self.lag_max_ns {
            p.isr[f] = true;
            ctx.metric_add("isr_expands", 1.0);
            ctx.mark("isr expanded");
        }
        self.advance_hw(ctx, pi);
        self.replicate(ctx, pi);
    }

    /// Drops from the ISR every follower behind for longer than the lag
    /// limit, and arranges to check again while acks wait on a laggard.
    fn check_isr(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let now = ctx.now();
        let Some(leader) = self.parts[pi].leader.filter(|&l| self.alive[l]) else { return };
        let p = &mut self.parts[pi];
        let end = p.end();
        let mut next_check: Option<Time> = None;
        for f in 0..p.leo.len() {
            if f == leader || !p.isr[f] || p.leo[f] >= end {
                continue;
            }
            let limit = p.caught_up_at[f].saturating_add(self.lag_max_ns);
            if now > limit {
                p.isr[f] = false;
                ctx.metric_add("isr_shrinks", 1.0);
                ctx.mark("isr shrunk");
            } else {
                next_check = Some(next_check.map_or(limit + 1, |t| t.min(limit + 1)));
            }
        }
        // Checked whether or not an acks=all write waits: a lagging
        // follower holds the HW, and so every reader, back too.
        if let Some(at) = next_check {
            if p.isr_check_at.is_none_or(|t| at < t || t < now) {
                p.isr_check_at = Some(at);
                ctx.set_timer(at - now, LogTimer::IsrCheck(pi as u32));
            }
        }
    }

    /// Raises the HW to the lowest LEO in the ISR; answers the acks it
    /// passes and the fetches that were waiting for records.
    fn advance_hw(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let held = self.hw_held(ctx, pi);
        let p = &mut self.parts[pi];
        if held || !p.leader.is_some_and(|l| self.alive[l]) {
            return;
        }
        let hw = p.isr_min_leo();
        if hw <= p.hw {
            return;
        }
        p.hw = hw;
        let enough = p.isr_count() >= self.min_isr;
        while let Some(entry) = p.waiters.first_entry() {
            if *entry.key() >= hw {
                break;
            }
            let (offset, waiters) = entry.remove_entry();
            if enough {
                for w in &waiters {
                    p.mark_acked(w.first, offset + 1);
                }
            } else {
                ctx.error("not-enough-replicas-after-append");
            }
            let error = if enough { ProduceError::None } else { ProduceError::NotEnoughReplicas };
            for w in waiters {
                ctx.send(w.producer, LogMsg::ProduceAck { ids: w.ids, accepted: enough, attempt: w.attempt, error });
            }
        }
        self.refresh_backlog(ctx, pi);
        self.serve_parked(ctx, pi);
    }

    /// Brings every live in-sync follower of `pi` up to the leader's end at
    /// once, and drops dead ones from the ISR, so that the HW passes the
    /// leader's end: a transaction's commit waits for that (its writes are
    /// acks=all), and here the wait takes no time.
    fn sync_in_sync_replicas(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let now = ctx.now();
        let p = &mut self.parts[pi];
        let end = p.end();
        for r in 0..p.leo.len() {
            if !p.isr[r] {
                continue;
            }
            if self.alive[r] {
                p.leo[r] = end;
                p.caught_up_at[r] = now;
            } else {
                // The leader would have dropped it before the commit went through.
                p.isr[r] = false;
                ctx.metric_add("isr_shrinks", 1.0);
                ctx.mark("isr shrunk");
            }
        }
        self.advance_hw(ctx, pi);
    }

    // ---- leadership ----

    fn replica_down(&mut self, ctx: &mut Ctx<LogTimer>, r: usize) {
        self.down[r] += 1;
        if self.down[r] > 1 {
            return;
        }
        self.alive[r] = false;
        ctx.metric_add("replica_crashes", 1.0);
        for pi in 0..self.parts.len() {
            let p = &mut self.parts[pi];
            p.fetch[r] = None;
            if p.leader == Some(r) {
                // The leader's in-memory state dies with it. Parked fetches
                // stay: a real consumer would refetch from the new leader as
                // soon as its metadata told it who that is.
                p.waiters.clear();
                for idem in p.idem.values_mut() {
                    idem.seq.clear_held();
                }
                if !p.electing {
                    p.electing = true;
                    ctx.set_timer(self.election_ns, LogTimer::Election(pi as u32));
                }
            }
        }
    }

    fn replica_up(&mut self, ctx: &mut Ctx<LogTimer>, r: usize) {
        self.down[r] = self.down[r].checked_sub(1).expect("a replica comes up only after it went down");
        if self.down[r] > 0 || self.alive[r] {
            return;
        }
        self.alive[r] = true;
        self.elr_forget(r);
        for pi in 0..self.parts.len() {
            let p = &self.parts[pi];
            // An offline partition gets a leader again: the returning
            // replica if it was in sync, or (unclean) whoever comes first.
            if p.leader.is_none() && (p.isr[r] || self.unclean) {
                self.elect(ctx, pi);
            } else {
                self.replicate(ctx, pi);
            }
        }
    }

    fn elect(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let p = &mut self.parts[pi];
        p.electing = false;
        if p.leader.is_some_and(|l| self.alive[l]) {
            return; // back before anyone noticed
        }
        let clean = (0..self.alive.len()).find(|&r| self.alive[r] && p.isr[r]);
        let from_elr = if clean.is_none() { self.elr_candidate(ctx, pi) } else { None };
        if let Some(r) = from_elr {
            self.elr_elected(ctx, pi, r);
        }
        let (p, alive) = (&mut self.parts[pi], &self.alive);
        let chosen = match clean.or(from_elr) {
            Some(r) => Some((r, true)),
            None if self.unclean => (0..alive.len()).find(|&r| alive[r]).map(|r| (r, false)),
            None => None,
        };
        let Some((leader, clean)) = chosen else {
            // No in-sync replica is alive: offline until one returns.
            p.leader = None;
            ctx.metric_add("offline_partitions", 1.0);
            ctx.mark("partition offline");
            return;
        };
        ctx.metric_add("leader_elections", 1.0);
        ctx.mark(if clean { "leader elected" } else { "unclean leader election" });
        p.leader = Some(leader);
        if clean {
            for (in_sync, &up) in p.isr.iter_mut().zip(alive) {
                *in_sync = *in_sync && up;
            }
        } else {
            ctx.metric_add("unclean_elections", 1.0);
            for (r, in_sync) in p.isr.iter_mut().enumerate() {
                *in_sync = r == leader;
            }
        }
        let cut = p.truncate(p.leo[leader]);
        p.epochs.begin(p.end());
        let cause = if clean { LossCause::LeaderFailover } else { LossCause::UncleanElection };
        for e in &cut {
            ctx.discarded(e.rec.id, cause);
        }
        if !cut.is_empty() {
            ctx.metric_add("truncated_records", cut.len() as f64);
            let told = cut.iter().filter(|e| e.acked).count();
            ctx.metric_add("acked_records_truncated", told as f64);
        }
        p.waiters.clear();
        p.fetch.iter_mut().for_each(|f| *f = None);
        let now = ctx.now();
        p.caught_up_at.iter_mut().for_each(|t| *t = now);
        // The HW may only rise from here; after an unclean election it may
        // have fallen to the new leader's end.
        p.hw = p.hw.min(p.end());
        self.refresh_backlog(ctx, pi);
        self.replicate(ctx, pi);
        self.advance_hw(ctx, pi);
        self.serve_parked(ctx, pi);
    }

    fn on_part_fault(&mut self, ctx: &mut Ctx<LogTimer>, fault: &NodeFault, begins: bool) {
        match *fault {
            NodeFault::ReplicaCrash { replica } => {
                let r = replica as usize;
                if r < self.alive.len() {
                    if begins {
                        self.replica_down(ctx, r)
                    } else {
                        self.replica_up(ctx, r)
                    }
                }
            }
            NodeFault::LeaderCrash { topic, partition, fault } => {
                if begins {
                    let Some(pi) = self.index(topic as usize, partition as usize) else { return };
                    let Some(l) = self.parts[pi].leader.filter(|&l| self.alive[l]) else {
                        ctx.error("leader-crash-skipped");
                        return;
                    };
                    self.crashed_leaders.push((fault, l));
                    self.replica_down(ctx, l);
                } else if let Some(i) = self.crashed_leaders.iter().position(|&(k, _)| k == fault) {
                    let (_, r) = self.crashed_leaders.remove(i);
                    self.replica_up(ctx, r);
                }
            }
            NodeFault::PowerLoss { ref replicas } => self.power_loss(ctx, replicas, begins),
            // Validation aims node-loss at queue cluster nodes only, and
            // `errors` at nodes that answer calls.
            NodeFault::DiskLoss | NodeFault::Errors { .. } => {}
        }
    }

    // ---- consuming ----

    /// Serves or parks a fetch of `pi` from `offset` (already fenced).
    fn serve_fetch(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, partition: u32, f: Parked) {
        let p = &mut self.parts[pi];
        if !p.leader.is_some_and(|l| self.alive[l]) {
            park(p, f);
            return;
        }
        if let Some((end, epoch)) = f.epoch.and_then(|e| p.epochs.diverged(f.offset, e, p.end())) {
            return self.diverged(ctx, pi, partition, f, end, epoch);
        }
        let mut offset = f.offset;
        if offset < p.start || offset > p.end() {
            // Out of range: deleted by retention, or truncated away.
            offset = if offset < p.start { p.start } else { p.hw };
            ctx.metric_add("offset_resets", 1.0);
        }
        // Below the HW (and, read_committed, the LSO, past aborted records).
        let (offset, upto) = self.readable(f.group as usize, pi, offset, u64::from(f.max.max(1)));
        let p = &mut self.parts[pi];
        if offset >= upto && offset == f.offset {
            park(p, f);
            return;
        }
        // One answer holds the records of one leader epoch.
        let upto = upto.min(p.epochs.epoch_end_after(offset, p.end()));
        let upto = fetch_bytes::cut(p, offset, upto, f.max_bytes);
        let epoch = p.epochs.epoch_of(if upto > offset { offset } else { offset.saturating_sub(1) });
        let recs: Vec<Record> = (offset..upto).filter_map(|o| p.entry(o).map(|e| e.rec)).collect();
        if let Some(served) = self.served.get_mut(f.group as usize).and_then(|s| s.get_mut(partition as usize)) {
            count_redelivered(ctx, served, offset, &recs, upto);
        }
        ctx.send(f.member, LogMsg::Records { partition, offset, recs, error: FetchError::None, epoch });
    }

    /// A fetch from a position the log no longer has: the leader's log
    /// diverged from what the member read (see [`epoch`]). It is sent back
    /// to `end`, the first offset that differs, with no records.
    fn diverged(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, partition: u32, f: Parked, end: u64, epoch: u32) {
        ctx.metric_add("truncations_detected", 1.0);
        if let Some(served) = self.served.get_mut(f.group as usize).and_then(|s| s.get_mut(partition as usize)) {
            // What lies past `end` now are other records: new to the group.
            *served = (*served).min(end.max(self.parts[pi].start));
        }
        let recs = Vec::new();
        ctx.send(f.member, LogMsg::Records { partition, offset: end, recs, error: FetchError::None, epoch });
    }

    fn serve_parked(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        if self.parts[pi].parked.is_empty() || !self.leader_alive(pi) {
            return;
        }
        let parked = std::mem::take(&mut self.parts[pi].parked);
        for f in parked {
            let gi = f.group as usize;
            let partition = pi - self.topics[self.coord.info(gi).topic].first;
            if self.coord.may_fetch(gi, f.member, f.generation, partition) {
                self.serve_fetch(ctx, pi, partition as u32, f);
            }
        }
    }
}

impl LogBroker {
    /// Makes the topics numbered in `topics` dead-letter topics.
    pub fn with_dead_letters(mut self, topics: std::collections::BTreeSet<usize>) -> Self {
        for t in topics {
            if let Some(t) = self.topics.get_mut(t) {
                t.dead_letter = true;
            }
        }
        self
    }
}

/// What the coordinator sees of the logs.
struct Logs<'a> {
    topics: &'a [Topic],
    parts: &'a [Partition],
}

impl GroupHost for Logs<'_> {
    fn log_start(&self, topic: usize, partition: usize) -> u64 {
        self.parts[self.topics[topic].first + partition].start
    }
}

fn park(p: &mut Partition, f: Parked) {
    p.parked.retain(|x| !(x.member == f.member && x.group == f.group));
    p.parked.push(f);
}

/// Answers a produce, unless it asked for no answer (`acks = 0`).
fn answer(ctx: &mut Ctx<LogTimer>, producer: NodeId, send: &Produce, error: ProduceError) {
    let ids = send.recs.iter().map(|r| r.id).collect();
    answer_ids(ctx, producer, (send.acks, ids, send.attempt), error);
}

/// Answers the produce of the batch `ids`, unless it asked for no answer.
fn answer_ids(
    ctx: &mut Ctx<LogTimer>,
    producer: NodeId,
    (acks, ids, attempt): (Acks, Box<[MsgId]>, u32),
    error: ProduceError,
) {
    if acks != Acks::None {
        let accepted = error == ProduceError::None;
        ctx.send(producer, LogMsg::ProduceAck { ids, accepted, attempt, error });
    }
}

/// The partition of `key` among `n`: a fixed hash, so a key always lands
/// in the same partition (Kafka uses murmur2; any fixed hash shows the same).
pub fn key_partition(key: u64, n: usize) -> usize {
    (crate::rng::stable_hash(&key.to_le_bytes()) % n.max(1) as u64) as usize
}

impl Component for LogBroker {
    type Timer = LogTimer;

    fn start(&mut self, ctx: &mut Ctx<LogTimer>) {
        if self.sizing.0 > 0 {
            ctx.metric_max("partitions_needed", f64::from(self.sizing.0));
            ctx.metric_max("partitions_short", f64::from(self.sizing.1));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<LogTimer>, from: NodeId, msg: Msg) {
        let group_ok = |group: u16| self.coord.knows(group);
        match msg {
            Msg::Log(LogMsg::Produce { recs, acks, attempt, epoch, seq, topic, partition }) => {
                match self.index(topic as usize, partition as usize) {
                    Some(pi) if !recs.is_empty() => {
                        self.produce(ctx, from, Produce { recs, acks, attempt }, epoch, seq, pi);
                    }
                    _ => ctx.error("unknown-partition"),
                }
            }
            Msg::Log(LogMsg::Fetch { group, generation, partition, offset, max, max_bytes, epoch }) => {
                if !group_ok(group) {
                    return;
                }
                let Some(pi) = self.index(self.coord.info(group as usize).topic, partition as usize) else { return };
                if self.coord.check_fetch(ctx, from, (group as usize, generation), partition, offset) {
                    let f = Parked { member: from, group, generation, offset, max, max_bytes, epoch };
                    self.serve_fetch(ctx, pi, partition, f);
                }
            }
            Msg::Log(LogMsg::TxnWrite { rec, group, generation, partition, seq, out_topic }) => {
                self.txn_write(ctx, from, (group, partition), generation, seq, out_topic as usize, rec);
            }
            Msg::Log(LogMsg::TxnCommit(t)) if group_ok(t.group) => self.transaction(ctx, from, *t),
            // An autoscaler's lag query (KEDA's scaler asks for offsets).
            Msg::Control(ControlMsg::LagQuery { group }) if group_ok(group) => {
                let (records, oldest_ns) = self.group_lag(group as usize, ctx.now());
                ctx.send(from, ControlMsg::Lag { group, records, oldest_ns });
            }
            // Heartbeat, join, sync, leave, commit: the coordinator's.
            Msg::Log(m) => {
                let logs = Logs { topics: &self.topics, parts: &self.parts };
                if let Handled::Committed { topic, partition } = self.coord.handle(ctx, &logs, from, &m) {
                    self.refresh_backlog(ctx, self.topics[topic].first + partition);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<LogTimer>, timer: LogTimer) {
        match timer {
            LogTimer::Fetch { partition, replica } => self.fetch_done(ctx, partition as usize, replica as usize),
            LogTimer::Election(p) if self.parts[p as usize].electing => self.elect(ctx, p as usize),
            LogTimer::Election(_) => {}
            LogTimer::IsrCheck(p) => {
                let p = p as usize;
                self.parts[p].isr_check_at = None;
                self.check_isr(ctx, p);
                self.advance_hw(ctx, p);
            }
            LogTimer::Rebalance(g) => self.coord.on_timer(ctx, CoordTimer::Rebalance(g)),
            LogTimer::Expiry(g) => self.coord.on_timer(ctx, CoordTimer::Expiry(g)),
            LogTimer::TxnExpiry => self.expire_txns(ctx),
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<LogTimer>) {
        self.coord.drain(ctx);
    }

    fn on_fault(&mut self, ctx: &mut Ctx<LogTimer>, fault: &NodeFault, begins: bool) {
        self.on_part_fault(ctx, fault, begins);
    }

    fn crash(&mut self) {
        // Logs and committed offsets are on disk; the rest is memory.
        for p in &mut self.parts {
            p.waiters.clear();
            p.parked.clear();
            p.fetch.iter_mut().for_each(|f| *f = None);
            p.electing = false;
            p.isr_check_at = None;
            for idem in p.idem.values_mut() {
                idem.seq.clear_held();
            }
        }
        self.coord.crash();
        // Open transactions are in the transaction log; their timer is not.
        self.txns.expiry_at = None;
    }

    fn restart(&mut self, ctx: &mut Ctx<LogTimer>) {
        self.arm_txn_expiry(ctx);
        for pi in 0..self.parts.len() {
            if self.leader_alive(pi) {
                self.replicate(ctx, pi);
            } else if self.alive.iter().any(|&a| a) {
                self.elect(ctx, pi);
            }
        }
    }

    // Sends held ahead of a gap are not reported as held: at the end of a
    // drain (no loss, no partition) a gap still open belongs to a producer
    // that forgot the missing sends (it crashed), so those sends failed.

    fn memory_bytes(&self) -> usize {
        self.parts.iter().map(Partition::memory_bytes).sum()
    }

    fn gauges(&self, now: Time, out: &mut crate::metrics::Gauges) {
        self.lag_gauges(now, out);
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        // A dead letter stays where a person (or a replay) can read it.
        for t in self.topics.iter().filter(|t| t.dead_letter) {
            for part in &self.parts[t.first..t.first + t.partitions] {
                out.extend((part.start..part.end()).filter_map(|o| part.entry(o)).map(|e| e.rec.id));
            }
        }
    }

    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        // A record is still on its way to a group until the group's
        // committed offset passes it.
        for (gi, g) in self.coord.infos().enumerate() {
            let t = &self.topics[g.topic];
            for p in 0..t.partitions {
                let part = &self.parts[t.first + p];
                let from = self.coord.committed(gi, p).unwrap_or(0).max(part.start);
                for o in from..part.end() {
                    if let Some(e) = part.entry(o) {
                        out.push((e.rec.id, g.domain));
                    }
                }
            }
        }
    }
}

/// A group is sent `recs`, read from `offset` up to `end`, where `served`
/// is the end of what the group was sent of the partition before: the
/// records below it go out again, a redelivery (after a rebalance, or to a
/// member the group gave up on); `served` moves up to `end`.
pub(crate) fn count_redelivered<T: Timer>(ctx: &mut Ctx<T>, served: &mut u64, offset: u64, recs: &[Record], end: u64) {
    let again = served.saturating_sub(offset).min(recs.len() as u64) as usize;
    for r in &recs[..again] {
        ctx.resent(r.id, DupCause::Redelivered);
    }
    *served = (*served).max(end);
}

#[cfg(test)]
mod tests;
