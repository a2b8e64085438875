//! A member of a consumer group reading a topic of a log broker: it
//! heartbeats to stay in the group, fetches each partition it is assigned
//! from its committed offset, processes the records one at a time, and
//! commits offsets. When it commits decides its delivery guarantee:
//!
//! - `ack = "before"`: commit a batch's offsets as soon as it arrives, then
//!   process it. A crash mid-batch skips the rest: **at-most-once**.
//! - `ack = "after"`: process the batch, then commit. A crash (or a
//!   rebalance) before the commit makes the next owner process the batch
//!   again: **at-least-once**.
//! - `ack = "auto"` (the default, as Kafka's `enable.auto.commit=true`):
//!   at a poll (the end of a batch, or while idle) at least
//!   `auto_commit_interval_ms` after the last commit, commit the offsets of
//!   every record returned by earlier polls, all processed by then in a
//!   synchronous poll loop; and before an eager revocation. Never mid-batch:
//!   a crash redoes the batch in progress and everything since the last
//!   commit. At-least-once, with more to redo the longer the interval.
//!
//! With `output_topic` the consumer is a read-process-write stage: each
//! processed record is written to the output topic. Without
//! `transactional`, writes and commits are separate steps, so a crash
//! between them duplicates output. With `transactional = true` each batch
//! is a transaction: each output is written as its record is processed
//! (into the log, marked as part of the open transaction), and at the end
//! of the batch the member commits the output with the batch's offsets,
//! whole or not at all. A commit refused for now (too few in-sync
//! replicas) is sent again; a transaction the broker aborted (a timeout,
//! or the member was fenced) is redone from the committed offset, as a new
//! transaction. Readers with `isolation = "read_committed"` see the output
//! topic hold each record once; `read_uncommitted` readers (Kafka's
//! default) also see open and aborted output. The consumer's own effect
//! (an email sent while processing) happens outside the transaction, so it
//! is still at-least-once.
//!
//! With `sink` the consumer hands each record, once its processing time is
//! over, to another node (a table, a read model, an aggregator: any kind
//! that speaks [`SinkMsg`]) and waits until the sink says it is written,
//! resending the write every `sink_timeout_ms`; only then is the record
//! processed and its offset due for commit. The sink applies the effect,
//! in its own domain. A crash between the write and the commit writes the
//! record again after the rebalance: the sink sees the duplicate, as a
//! real database behind a Kafka consumer does.
//!
//! Processing can fail (see [`failure`]): transiently, for good (a poison
//! message), or while an `errors` fault says its dependency is down; then
//! `on_failure` retries the record in place, writes it to a retry topic or
//! a dead-letter topic, or skips it. A member with `replay_to_topic`
//! replays a dead-letter topic into another topic.
//!
//! Simplifications: one record is processed at a time (the poll loop of a
//! Kafka consumer); the output of a non-transactional stage is sent
//! fire-and-forget (`acks=0`).

use crate::dist::{Dist, Sampler};
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{Acks, ClusterMsg, FetchError, LogMsg, SinkMsg, Transaction};
use crate::time::{Duration, Time};
use std::collections::{BTreeMap, VecDeque};

mod cluster;
mod failure;
mod kind;
mod membership;
mod replica;
pub use failure::{Failures, OnFailure};
pub use kind::{Isolation, LogConsumerKind, LogConsumerSpec};

/// A group member's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogConsumerTimer {
    /// The record in progress is processed.
    Process,
    /// Heartbeat, and resend fetches left unanswered (a background timer).
    Tick,
    /// The transaction of this partition is unanswered: send it again.
    TxnRetry(u32),
    /// The commit of this partition is unanswered: send it again.
    CommitRetry(u32),
    /// The batch in progress has taken `max_poll_interval_ms`.
    PollTimeout,
    /// A join or sync may be unanswered: resend it if so.
    JoinRetry,
    /// A lookup of leaders or of the coordinator is due (in a cluster).
    Routes,
    /// The write to the sink is unanswered: send it again.
    SinkRetry,
    /// A replica's start-up delay is over.
    Startup,
    /// A retry in place is due: try the record in progress again.
    Retry,
    /// The record at hand, from a retry topic, is due.
    Due,
    /// A replaying member's replay begins.
    Replay,
}

impl Timer for LogConsumerTimer {
    // The low byte says which timer, the bits above it the partition.
    fn to_word(self) -> u64 {
        match self {
            LogConsumerTimer::Process => 1,
            LogConsumerTimer::Tick => 2,
            LogConsumerTimer::TxnRetry(p) => 3 | u64::from(p) << 8,
            LogConsumerTimer::CommitRetry(p) => 4 | u64::from(p) << 8,
            LogConsumerTimer::PollTimeout => 5,
            LogConsumerTimer::JoinRetry => 6,
            LogConsumerTimer::Routes => 7,
            LogConsumerTimer::SinkRetry => 8,
            LogConsumerTimer::Startup => 9,
            LogConsumerTimer::Retry => 10,
            LogConsumerTimer::Due => 11,
            LogConsumerTimer::Replay => 12,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        let partition = u32::try_from(word >> 8).ok()?;
        Some(match (word & 0xff, partition) {
            (1, 0) => LogConsumerTimer::Process,
            (2, 0) => LogConsumerTimer::Tick,
            (3, p) => LogConsumerTimer::TxnRetry(p),
            (4, p) => LogConsumerTimer::CommitRetry(p),
            (5, 0) => LogConsumerTimer::PollTimeout,
            (6, 0) => LogConsumerTimer::JoinRetry,
            (7, 0) => LogConsumerTimer::Routes,
            (8, 0) => LogConsumerTimer::SinkRetry,
            (9, 0) => LogConsumerTimer::Startup,
            (10, 0) => LogConsumerTimer::Retry,
            (11, 0) => LogConsumerTimer::Due,
            (12, 0) => LogConsumerTimer::Replay,
            _ => return None,
        })
    }
}

/// When a group member commits its offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// On receipt, before processing (at-most-once).
    Before,
    /// After processing each batch (at-least-once).
    After,
    /// Every interval, what was processed by then.
    Auto(Duration),
}

/// How a group member is set up (resolved from a scenario's consumer).
#[derive(Debug, Clone)]
pub struct LogConsumerSetup {
    /// The log broker.
    pub broker: NodeId,
    /// The group's index at the broker.
    pub group: u16,
    /// Processing time per record.
    pub processing: Dist,
    /// When offsets are committed.
    pub commit: CommitMode,
    /// Most records per fetch.
    pub max_poll_records: u32,
    /// Most bytes of records per fetch (the first record comes whatever its
    /// size): the smaller of `fetch_max_bytes` and
    /// `max_partition_fetch_bytes`, since a fetch reads one partition.
    pub fetch_bytes: u32,
    /// Heartbeat interval.
    pub heartbeat_ns: Duration,
    /// Longest a batch may take before the member leaves its group.
    pub max_poll_ns: Duration,
    /// The group's rebalance protocol.
    pub protocol: crate::broker::RebalanceProtocol,
    /// A static member (`group_instance_id`).
    pub static_member: bool,
    /// Time after which an unanswered fetch or transaction is sent again.
    pub request_timeout_ns: Duration,
    /// Dedup store of an idempotent effect.
    pub store: Option<usize>,
    /// Output topic (index, partitions), for a read-process-write stage.
    pub output: Option<(u16, u32)>,
    /// Whether output and commits are one transaction.
    pub transactional: bool,
    /// The node each processed record is written to, and how long to wait
    /// for its answer before writing again.
    pub sink: Option<(NodeId, Duration)>,
    /// How processing fails and what is done with a failed record (retries
    /// and dead letters).
    pub failures: Failures,
}

struct Assigned {
    /// Next offset to fetch.
    position: u64,
    /// Next offset after the last processed record.
    processed: u64,
    /// The leader epochs of the records before `position` and before
    /// `processed`, when known: a fetch carries the first, so the leader
    /// can tell whether its log diverged from what was read; a commit the
    /// second (KIP-320).
    epoch: Option<u32>,
    processed_epoch: Option<u32>,
    /// When the outstanding fetch was sent (None: no fetch outstanding).
    fetch_sent: Option<Time>,
    /// A batch of this partition is queued or in progress.
    busy: bool,
}

struct Batch {
    partition: u32,
    /// The leader epoch that wrote the records.
    epoch: u32,
    offset: u64,
    recs: Vec<Record>,
    next: usize,
    outputs: Vec<Record>,
    /// The member's number for the batch's transaction.
    seq: u32,
}

struct Txn {
    start: u64,
    end: u64,
    epoch: u32,
    outputs: Vec<Record>,
    seq: u32,
}

/// A running group member.
pub struct LogConsumer {
    s: LogConsumerSetup,
    processing: Sampler,
    /// Durable: counts starts.
    session: u32,
    generation: u32,
    m: membership::Membership,
    assigned: BTreeMap<u32, Assigned>,
    batches: VecDeque<Batch>,
    in_progress: bool,
    txns: BTreeMap<u32, Txn>,
    /// At-most-once: batches waiting for their commit to be confirmed
    /// before they are processed.
    committing: BTreeMap<u32, Batch>,
    last_auto_commit: Time,
    /// Transactions begun (numbers them).
    txn_seq: u32,
    /// This member's effect domain (what it holds is held for it alone,
    /// unless it writes output further on).
    domain: DomainId,
    /// Set when the source is a cluster: where partitions lead and the
    /// group's coordinator.
    cluster: Option<Box<cluster::ClusterRead>>,
    /// The write to the sink awaiting its answer: (record, partition,
    /// offset).
    writing: Option<(Record, u32, u64)>,
    /// As a member of a replicated table: stopped or started by its
    /// controller.
    replica: replica::Replica,
    /// Retries and dead letters: attempts, faults in force, the replay.
    f: failure::FailState,
}

impl LogConsumer {
    /// A group member as `setup` says.
    pub fn new(setup: LogConsumerSetup) -> Self {
        LogConsumer {
            processing: setup.processing.sampler(),
            s: setup,
            session: 0,
            generation: 0,
            m: membership::Membership::default(),
            assigned: BTreeMap::new(),
            batches: VecDeque::new(),
            in_progress: false,
            txns: BTreeMap::new(),
            committing: BTreeMap::new(),
            last_auto_commit: 0,
            txn_seq: 0,
            domain: 0,
            cluster: None,
            writing: None,
            replica: replica::Replica::default(),
            f: failure::FailState::default(),
        }
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let (group, session, generation) = (self.s.group, self.session, self.generation);
        if let Some(to) = self.group_node() {
            ctx.send(to, LogMsg::Heartbeat { group, session, generation });
            self.heartbeat_sent(ctx.now());
        }
    }

    fn fetch(&mut self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32) {
        if !self.assigned.contains_key(&partition) {
            return;
        }
        let to = self.fetch_node(partition);
        let held = self.replay_holds(ctx.now(), partition);
        let Some(a) = self.assigned.get_mut(&partition) else { return };
        if held {
            a.fetch_sent = None; // a replay not begun, or over
            return;
        }
        let Some(to) = to else {
            a.fetch_sent = None; // waits for a leader
            return;
        };
        a.fetch_sent = Some(ctx.now());
        let msg = LogMsg::Fetch {
            group: self.s.group,
            generation: self.generation,
            partition,
            offset: a.position,
            max: self.s.max_poll_records,
            max_bytes: self.s.fetch_bytes,
            epoch: a.epoch,
        };
        ctx.send(to, msg);
    }

    fn commit(&mut self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32, (offset, epoch): (u64, Option<u32>)) {
        let msg = LogMsg::Commit { group: self.s.group, generation: self.generation, partition, offset, epoch };
        let to = self.group_node();
        if let Some(to) = to {
            ctx.send(to, msg);
        }
        self.commit_sent(ctx, partition, offset, to.is_some());
    }

    fn commit_processed(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let done: Vec<(u32, (u64, Option<u32>))> =
            self.assigned.iter().map(|(&p, a)| (p, (a.processed, a.processed_epoch))).collect();
        for (p, at) in done {
            self.commit(ctx, p, at);
        }
        self.last_auto_commit = ctx.now();
    }

    fn send_txn(&self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32) {
        let Some(t) = self.txns.get(&partition) else { return };
        let Some((out_topic, _)) = self.s.output else { return };
        let msg = LogMsg::TxnCommit(Box::new(Transaction {
            group: self.s.group,
            generation: self.generation,
            partition,
            start: t.start,
            end: t.end,
            out_topic,
            outputs: t.outputs.clone(),
            seq: t.seq,
            epoch: Some(t.epoch),
        }));
        if let Some(to) = self.txn_node(partition) {
            ctx.send(to, msg);
        }
        // Resent until answered: a lost commit must not strand the batch.
        ctx.set_timer(self.s.request_timeout_ns, LogConsumerTimer::TxnRetry(partition));
    }

    /// Starts the next record, if idle.
    fn next(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        while !self.in_progress {
            let Some(b) = self.batches.front() else { return };
            if b.next >= b.recs.len() {
                let b = self.batches.pop_front().expect("front exists");
                ctx.cancel_timer(LogConsumerTimer::PollTimeout);
                self.end_batch(ctx, b);
                self.poll(ctx);
                continue;
            }
            let (first, id) = (b.next == 0, b.recs[b.next].id);
            if let Some(wait) = self.not_due_for(ctx, id) {
                // From a retry topic, not due yet: wait (Spring pauses the
                // partition until the record's backoff timestamp).
                ctx.set_timer(wait, LogConsumerTimer::Due);
                self.in_progress = true;
                return;
            }
            if first {
                // A poll: the batch must be done within the poll interval.
                ctx.set_timer(self.s.max_poll_ns, LogConsumerTimer::PollTimeout);
            }
            self.start_current(ctx);
        }
    }

    /// Starts (or starts again) the record at the head of the batches.
    fn start_current(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let Some(b) = self.batches.front() else { return };
        let Some(&rec) = b.recs.get(b.next) else { return };
        ctx.start_processing(rec.id);
        let factor = ctx.slow_factor();
        let took = self.processing.sample_scaled_ns(ctx.rng(), factor);
        ctx.set_timer(took, LogConsumerTimer::Process);
        self.in_progress = true;
    }

    fn processed(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        self.in_progress = false;
        let txn_to = self.batches.front().and_then(|b| self.txn_node(b.partition));
        let Some(b) = self.batches.front_mut() else { return };
        let rec = b.recs[b.next];
        let offset = b.offset + b.next as u64;
        b.next += 1;
        if self.s.sink.is_none() && self.s.store.is_none_or(|store| ctx.dedup_insert(store, rec.id)) {
            ctx.apply_effect(rec.id);
        }
        if let Some((topic, partitions)) = self.s.output {
            if self.s.transactional {
                // Written now, inside the batch's open transaction.
                b.outputs.push(rec);
                let (group, generation, partition, seq) = (self.s.group, self.generation, b.partition, b.seq);
                if let Some(to) = txn_to {
                    ctx.send(to, LogMsg::TxnWrite { rec, group, generation, partition, seq, out_topic: topic });
                }
            } else {
                let partition = crate::broker::key_partition(rec.key(), partitions as usize) as u32;
                let recs = Box::new([rec]);
                let msg = LogMsg::Produce { recs, acks: Acks::None, attempt: 1, epoch: 0, seq: 0, topic, partition };
                ctx.send(cluster::output_node(self.cluster.as_deref(), self.s.broker, topic, partition), msg);
            }
        }
        if let Some(a) = self.assigned.get_mut(&b.partition) {
            a.processed = offset + 1;
            a.processed_epoch = Some(b.epoch);
        }
    }

    fn end_batch(&mut self, ctx: &mut Ctx<LogConsumerTimer>, b: Batch) {
        let end = b.offset + b.recs.len() as u64;
        let Some(a) = self.assigned.get_mut(&b.partition) else { return };
        a.busy = false;
        if self.s.transactional {
            self.txns.insert(b.partition, Txn { start: b.offset, end, epoch: b.epoch, outputs: b.outputs, seq: b.seq });
            self.send_txn(ctx, b.partition);
            return;
        }
        // At this poll an eager member revokes everything (with a commit),
        // and one that left the group reads no more.
        let (revoking, leaving) = (self.revoking(), self.m.left);
        match self.s.commit {
            CommitMode::After if !revoking => self.commit(ctx, b.partition, (end, Some(b.epoch))),
            CommitMode::Auto(every) if !revoking && ctx.now().saturating_sub(self.last_auto_commit) >= every => {
                self.commit_processed(ctx)
            }
            _ => {}
        }
        if !revoking && !leaving {
            self.fetch(ctx, b.partition);
        }
    }

    fn on_records(
        &mut self,
        ctx: &mut Ctx<LogConsumerTimer>,
        partition: u32,
        offset: u64,
        recs: Vec<Record>,
        (error, epoch): (FetchError, u32),
    ) {
        let Some(a) = self.assigned.get_mut(&partition) else { return };
        if a.busy || self.txns.contains_key(&partition) {
            return; // a duplicate answer while the batch is being handled
        }
        if error != FetchError::None {
            a.fetch_sent = None;
            return; // not ours any more: the next heartbeat says what is
        }
        if recs.is_empty() {
            // Out of range, or the log diverged from what was read (an
            // unclean election): start again where the broker says.
            a.position = offset;
            a.processed = offset;
            (a.epoch, a.processed_epoch) = (Some(epoch), Some(epoch));
            self.fetch(ctx, partition);
            return;
        }
        if offset < a.position {
            return; // a stale duplicate
        }
        a.fetch_sent = None;
        a.busy = true;
        a.position = offset + recs.len() as u64;
        self.txn_seq = self.txn_seq.wrapping_add(u32::from(self.s.transactional));
        a.epoch = Some(epoch);
        let batch = Batch { partition, epoch, offset, recs, next: 0, outputs: Vec::new(), seq: self.txn_seq };
        if self.s.commit == CommitMode::Before && !self.s.transactional {
            // At-most-once: the batch is processed only once its offsets
            // are committed (a synchronous commit), so nobody reads it again.
            let end = a.position;
            // From here the broker will not give them to the group again.
            for r in &batch.recs {
                ctx.discarded(r.id, crate::ledger::LossCause::CommitBeforeProcess);
            }
            self.committing.insert(partition, batch);
            self.commit(ctx, partition, (end, Some(epoch)));
            // The retry timer belongs to this commit: one left by an earlier
            // commit of the partition (given up in a rebalance) must not
            // resend this one before its own timeout.
            let retry = LogConsumerTimer::CommitRetry(partition);
            ctx.cancel_timer(retry);
            ctx.set_timer(self.s.request_timeout_ns, retry);
            return;
        }
        self.batches.push_back(batch);
        self.next(ctx);
    }

    fn on_txn_ack(&mut self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32, committed: u64, ok: bool, aborted: bool) {
        let Some(t) = self.txns.get(&partition) else { return };
        if ok && committed >= t.end {
            self.txns.remove(&partition);
            self.fetch(ctx, partition);
            return;
        }
        if !aborted {
            return; // refused for now (too few in-sync replicas): the retry timer resends it
        }
        // Aborted, fenced, or someone else moved the offset: redo from there
        // (its epoch unknown to this member).
        self.txns.remove(&partition);
        if let Some(a) = self.assigned.get_mut(&partition) {
            a.position = committed;
            a.processed = committed;
            (a.epoch, a.processed_epoch) = (None, None);
        }
        self.fetch(ctx, partition);
    }

    fn tick(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        self.check_coordinator(ctx);
        self.keep_membership(ctx);
        let now = ctx.now();
        let timeout = self.s.request_timeout_ns;
        // A fetch unanswered for too long is sent again; so is one for a
        // partition left idle (a stale "not yours" answer cleared it).
        if self.assigned.values().any(|a| a.fetch_sent.is_some_and(|t| now.saturating_sub(t) >= timeout)) {
            self.fetch_timed_out();
        }
        let txns = &self.txns;
        let committing = &self.committing;
        let stale: Vec<u32> = self
            .assigned
            .iter()
            .filter(|(p, a)| match a.fetch_sent {
                Some(t) => now.saturating_sub(t) >= timeout,
                None => !a.busy && !txns.contains_key(p) && !committing.contains_key(p),
            })
            .map(|(&p, _)| p)
            .collect();
        for p in stale {
            self.fetch(ctx, p);
        }
        if let CommitMode::Auto(every) = self.s.commit {
            // Kafka auto-commits inside poll(): a member busy with a batch
            // commits at its end (end_batch), never half-way through it.
            let polling = !self.in_progress && self.batches.is_empty();
            let due = now.saturating_sub(self.last_auto_commit) >= every;
            if polling && !self.s.transactional && due && self.generation > 0 {
                self.commit_processed(ctx);
            }
        }
        ctx.set_background_timer(self.s.heartbeat_ns, LogConsumerTimer::Tick);
    }
}

impl Component for LogConsumer {
    type Timer = LogConsumerTimer;

    fn start(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        self.domain = ctx.domain();
        if self.idle_replica() {
            return; // its controller starts it
        }
        self.last_auto_commit = ctx.now();
        self.join_anew(ctx);
        ctx.set_background_timer(self.s.heartbeat_ns, LogConsumerTimer::Tick);
        if let Some(wait) = self.replay_wait(ctx.now()) {
            ctx.set_timer(wait, LogConsumerTimer::Replay);
        }
        self.poll_routes(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<LogConsumerTimer>, from: NodeId, msg: Msg) {
        if self.on_control(ctx, &msg) {
            return;
        }
        self.group_answer(ctx.now(), from, &msg);
        match msg {
            Msg::Log(LogMsg::Records { partition, error: FetchError::NotLeader, .. }) => {
                self.not_leader(from, partition)
            }
            Msg::Cluster(ClusterMsg::Leaders { topic, leaders }) => self.on_leaders(ctx, topic, &leaders),
            Msg::Cluster(ClusterMsg::Coordinator { group, node }) => self.on_coordinator(ctx, group, node),
            Msg::Cluster(ClusterMsg::TxnCoordinator { partition, node, .. }) => {
                self.on_txn_coordinator(ctx, partition, node)
            }
            Msg::Cluster(ClusterMsg::GroupError { error, commit, .. }) => self.on_group_error(ctx, from, error, commit),
            Msg::Log(LogMsg::GroupState { generation, rebalancing, partitions }) => {
                self.on_group_state(ctx, generation, rebalancing, partitions)
            }
            Msg::Log(LogMsg::JoinAck { generation }) => self.on_join_ack(ctx, generation),
            Msg::Log(LogMsg::Records { partition, offset, recs, error, epoch }) => {
                self.on_records(ctx, partition, offset, recs, (error, epoch))
            }
            Msg::Log(LogMsg::TxnAck { partition, committed, ok, aborted }) => {
                self.on_txn_ack(ctx, partition, committed, ok, aborted)
            }
            Msg::Sink(SinkMsg::Written { id }) => self.on_written(ctx, id),
            Msg::Log(LogMsg::CommitAck { partition, offset, ok }) => {
                if !ok {
                    // Kafka's CommitFailedException: fenced by a rebalance.
                    ctx.metric_add("commits_failed", 1.0);
                }
                let end = self.committing.get(&partition).map(|b| b.offset + b.recs.len() as u64);
                if end == Some(offset) {
                    // Answered: its retry timer must not resend the next
                    // batch's commit early (and call the coordinator lost).
                    ctx.cancel_timer(LogConsumerTimer::CommitRetry(partition));
                    let batch = self.committing.remove(&partition).expect("just seen");
                    if ok {
                        self.batches.push_back(batch);
                        self.next(ctx);
                    } else if let Some(a) = self.assigned.get_mut(&partition) {
                        a.busy = false; // fenced: the partition is someone else's now
                    }
                }
            }
            _ => {}
        }
        self.poll_routes(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<LogConsumerTimer>, timer: LogConsumerTimer) {
        if timer == LogConsumerTimer::Startup {
            return self.started(ctx);
        }
        if self.idle_replica() {
            return;
        }
        match timer {
            LogConsumerTimer::Process => self.attempt_over(ctx),
            LogConsumerTimer::Retry => self.retry_now(ctx),
            LogConsumerTimer::Due => {
                self.in_progress = false;
                self.next(ctx);
            }
            LogConsumerTimer::Replay => {
                let partitions: Vec<u32> = self.assigned.keys().copied().collect();
                for p in partitions {
                    self.fetch(ctx, p);
                }
            }
            LogConsumerTimer::SinkRetry => self.send_write(ctx),
            LogConsumerTimer::Startup => {}
            LogConsumerTimer::Tick => self.tick(ctx),
            LogConsumerTimer::PollTimeout => self.poll_expired(ctx),
            LogConsumerTimer::JoinRetry => self.resend_join(ctx),
            LogConsumerTimer::Routes => self.routes_due(ctx),
            LogConsumerTimer::CommitRetry(partition) => {
                let committing = self.committing.get(&partition);
                if let Some(end) = committing.map(|b| (b.offset + b.recs.len() as u64, Some(b.epoch))) {
                    // A commit sent and unanswered means the coordinator is
                    // lost; one never sent (the coordinator was unknown) or
                    // already given up at a tick blames nobody, so a
                    // coordinator found since is used, not forgotten again.
                    if self.commit_unanswered(partition) {
                        self.group_request_lost();
                    }
                    self.commit(ctx, partition, end);
                    ctx.set_timer(self.s.request_timeout_ns, timer);
                }
            }
            LogConsumerTimer::TxnRetry(partition) => {
                if self.txns.contains_key(&partition) {
                    self.group_request_lost();
                    self.send_txn(ctx, partition);
                }
            }
        }
        self.poll_routes(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.idle_replica() {
            return;
        }
        // Requests lost before the network healed are sent again now.
        self.keep_membership(ctx);
        let idle: Vec<u32> = self.assigned.iter().filter(|(_, a)| a.fetch_sent.is_some()).map(|(&p, _)| p).collect();
        for p in idle {
            self.fetch(ctx, p);
        }
        self.poll_routes(ctx);
    }

    fn crash(&mut self) {
        self.replica.starting = false; // a replica starting restarts running
        self.generation = 0;
        self.m = membership::Membership::default();
        self.assigned.clear();
        self.batches.clear();
        self.in_progress = false;
        self.writing = None;
        self.txns.clear();
        self.committing.clear();
        self.crash_failures();
        self.crash_routes();
    }

    fn on_fault(&mut self, _ctx: &mut Ctx<LogConsumerTimer>, fault: &crate::net::NodeFault, begins: bool) {
        self.errors_fault(fault, begins);
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        // A sink holds only for its own domain (see held_in); a stage's
        // records are still on their way to the next domain too.
        if self.s.output.is_some() {
            out.extend(self.holdings());
        }
    }

    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        if self.s.output.is_none() {
            out.extend(self.holdings().into_iter().map(|id| (id, self.domain)));
        }
    }
}

impl LogConsumer {
    /// The processing time of the record in progress is over: replay it,
    /// handle its failure, or write it to the sink, or it is processed.
    fn attempt_over(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.replay_current(ctx) {
            return;
        }
        if let Some(poison) = self.attempt_failed(ctx) {
            self.failed(ctx, poison);
            return;
        }
        self.attempt_succeeded();
        if !self.write_to_sink(ctx) {
            self.processed(ctx);
            self.next(ctx);
        }
    }

    /// With a sink: writes the record whose processing time is over to it
    /// and returns true (it is processed once the sink answers).
    fn write_to_sink(&mut self, ctx: &mut Ctx<LogConsumerTimer>) -> bool {
        if self.s.sink.is_none() {
            return false;
        }
        let Some(b) = self.batches.front() else { return false };
        let Some(&rec) = b.recs.get(b.next) else { return false };
        self.writing = Some((rec, b.partition, b.offset + b.next as u64));
        self.send_write(ctx);
        true
    }

    /// Sends the write awaiting its answer (again), and arms its retry.
    fn send_write(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let (Some((rec, partition, offset)), Some((to, timeout))) = (self.writing, self.s.sink) else { return };
        ctx.send(to, SinkMsg::Write { rec, partition, offset });
        ctx.set_timer(timeout, LogConsumerTimer::SinkRetry);
    }

    /// The sink wrote record `id`: if it is the one awaited, it is
    /// processed, and the next one starts.
    fn on_written(&mut self, ctx: &mut Ctx<LogConsumerTimer>, id: MsgId) {
        if self.writing.is_none_or(|(rec, ..)| rec.id != id) {
            return; // a late answer to a write already answered
        }
        self.writing = None;
        ctx.cancel_timer(LogConsumerTimer::SinkRetry);
        if self.batches.front().and_then(|b| b.recs.get(b.next)).is_some_and(|r| r.id == id) {
            self.processed(ctx);
        } else {
            self.in_progress = false; // its partition was revoked meanwhile
        }
        self.next(ctx);
    }

    /// Every message this member holds: batches not yet processed, output
    /// not yet written, batches waiting for their commit.
    fn holdings(&self) -> Vec<MsgId> {
        let mut out = Vec::new();
        for b in &self.batches {
            out.extend(b.recs[b.next.min(b.recs.len())..].iter().map(|r| r.id));
            out.extend(b.outputs.iter().map(|r| r.id));
        }
        for t in self.txns.values() {
            out.extend(t.outputs.iter().map(|r| r.id));
        }
        for b in self.committing.values() {
            out.extend(b.recs.iter().map(|r| r.id));
        }
        out
    }
}

#[cfg(test)]
#[path = "log_consumer_tests.rs"]
mod tests;
