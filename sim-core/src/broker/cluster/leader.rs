//! A cluster broker leading a partition, as far as its own metadata view
//! says (a leader cut off from the controller keeps leading: a stale
//! leader).
//!
//! - **Produce**: `acks = 0` gets no answer, `acks = 1` is answered at
//!   the append, `acks = all` is refused (`not-enough-replicas`) while the
//!   ISR is smaller than `min_insync_replicas`, else answered once the HW
//!   passes the batch. An idempotent producer's retry of a batch already
//!   in the log is answered without appending it again; a batch after a
//!   gap in its numbers is refused (`out-of-order`), a batch of an older
//!   session too (`fenced`). Unlike the single broker, batches that come
//!   ahead of a gap are not held: the producer sends them again.
//! - **High watermark**: the lowest LEO over the ISR (with a proposed
//!   expansion counted, as Kafka's "maximal ISR"), known from each
//!   follower's fetch offset; it only rises, and from 3.7 it stands still
//!   while the ISR is smaller than the minimum (strict min ISR).
//! - **ISR**: every half of `replica_lag_max_ms` the leader proposes to
//!   drop the followers not caught up with its log end for longer than
//!   `replica_lag_max_ms` (Kafka's `Partition.maybeShrinkIsr`); a follower
//!   whose fetch reaches the HW (and the start of the leader's epoch) is
//!   proposed back. A proposal (`AlterPartition`) changes nothing until the
//!   controller's answer says so; one is outstanding at a time, sent again
//!   at each check while unanswered.
//! - **Followers' fetches**: answered with records from the follower's
//!   offset (up to 1 MiB per partition, Kafka's `replica.fetch.max.bytes`),
//!   or with the point where the follower's log diverged, checked from
//!   the epoch of its last record (KIP-595); a fetch that finds nothing is
//!   held up to `replica_fetch_wait_max_ms` and answered as soon as
//!   something is appended.
//! - **Consumers' fetches**: served up to the HW, one leader epoch per
//!   answer, within the member's byte budget; parked while nothing is
//!   readable (long polling), as the single broker does. Records sent to a
//!   group again (below the end of what this leadership sent it) are
//!   reported as redelivered, as the single broker does; what an earlier
//!   leader of the partition sent is not known to the new one.
//!
//! - **Transactions** (see [`super::txn`]): a consumer's fetch skips
//!   markers, and under `read_committed` ends at the last stable offset
//!   and skips aborted records.
//!
//! Left out: the consumer fetch's ownership check (the group lives on its
//! coordinator; a leader serves any member, as Kafka's does), retention,
//! and fetch sessions (each follower fetch lists every partition).

use super::node::{BrokerTimer, ClusterBroker};
use super::replica::SeqCheck;
use crate::broker::log::count_redelivered;
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::cluster::{BrokerIx, ClusterMsg, DataPart, FetchPart, PartState, ReplicaError, ReplicaRecord};
use crate::protocol::{Acks, FetchError, LogMsg, ProduceError};
use crate::time::Time;
use std::collections::BTreeMap;

type Ctx<'a> = crate::engine::Ctx<'a, BrokerTimer>;

/// Kafka's `replica.fetch.max.bytes`: most bytes per partition a follower's
/// fetch brings (the first record goes whatever its size).
pub(super) const REPLICA_FETCH_MAX_BYTES: u64 = 1 << 20;

/// A produced batch waiting for the HW to pass it (`acks = all`).
#[derive(Debug, Clone)]
pub(super) struct Waiter {
    pub producer: NodeId,
    pub ids: Box<[MsgId]>,
    pub attempt: u32,
    /// Its first offset.
    pub first: u64,
}

/// A follower as its leader knows it.
#[derive(Debug, Clone)]
pub(super) struct Follower {
    pub broker: BrokerIx,
    /// Its log end, from its last fetch (unknown until it fetches).
    pub leo: Option<u64>,
    /// When it was last caught up with the leader's end.
    pub caught_up_at: Time,
    /// The leader's end at its previous fetch, and when that was.
    pub last_fetch: (u64, Time),
}

/// A consumer's fetch parked until the HW passes its offset.
#[derive(Debug, Clone, Copy)]
pub(super) struct Read {
    pub member: NodeId,
    /// The member's group.
    pub group: u16,
    /// Partition within the topic.
    pub partition: u32,
    pub offset: u64,
    pub max: u32,
    pub max_bytes: u32,
    pub epoch: Option<u32>,
    /// The member's group reads `read_committed`.
    pub committed: bool,
}

/// What a leader keeps of a partition it leads (all of it volatile).
#[derive(Debug, Clone, Default)]
pub(super) struct Lead {
    pub followers: Vec<Follower>,
    /// `acks = all` batches by last offset.
    pub waiters: BTreeMap<u64, Vec<Waiter>>,
    /// The ISR change proposed and not yet answered.
    pub pending: Option<PartState>,
    pub parked: Vec<Read>,
    /// Per (group, partition within the topic): the end of what this
    /// leadership sent the group, so that records sent again count as
    /// redelivered (what an earlier leader sent is not known here).
    pub served: BTreeMap<(u16, u32), u64>,
}

impl Lead {
    /// A new leadership of a partition replicated on `replicas`, led by
    /// `me`, at `now`: the followers count as caught up now.
    pub fn new(replicas: &[BrokerIx], me: BrokerIx, end: u64, now: Time) -> Self {
        let followers = replicas
            .iter()
            .filter(|&&b| b != me)
            .map(|&broker| Follower { broker, leo: None, caught_up_at: now, last_fetch: (end, now) })
            .collect();
        Lead { followers, ..Lead::default() }
    }
}

/// A produced batch as the leader handles it.
pub(super) struct Batch {
    pub recs: Box<[Record]>,
    pub acks: Acks,
    pub attempt: u32,
    pub epoch: u32,
    pub seq: u64,
}

impl ClusterBroker {
    /// A produce of `b` to partition `pi` (numbered across topics) of
    /// `topic`, from `from`.
    pub(super) fn produce(&mut self, ctx: &mut Ctx, from: NodeId, topic: u16, pi: u32, b: Batch) {
        if !self.leads(pi) {
            ctx.error("not-leader-or-follower");
            if b.acks == Acks::None {
                b.recs.iter().for_each(|r| ctx.discarded(r.id, crate::ledger::LossCause::NoLeader));
            }
            answer(ctx, from, &b, ProduceError::NotLeader);
            return self.send_leaders(ctx, from, topic);
        }
        if b.acks == Acks::All && self.views[pi as usize].isr.len() < self.cfg.min_isr {
            ctx.error("not-enough-replicas");
            return answer(ctx, from, &b, ProduceError::NotEnoughReplicas);
        }
        if b.epoch != 0 {
            let r = self.replica(pi);
            match r.check_seq(from, b.epoch, b.seq, b.recs.len() as u64) {
                SeqCheck::Next => {}
                SeqCheck::Duplicate(last) => return self.produce_again(ctx, from, pi, b, last),
                SeqCheck::Fenced => {
                    ctx.error("fenced");
                    return answer(ctx, from, &b, ProduceError::InvalidProducerEpoch);
                }
                SeqCheck::OutOfOrder => {
                    ctx.error("out-of-order");
                    return answer(ctx, from, &b, ProduceError::OutOfOrderSequence);
                }
            }
        }
        self.append_batch(ctx, from, pi, b);
    }

    /// A retry of a batch already written, whose last record is at `last`
    /// (if still known): answered now, or with `acks = all` once the HW
    /// passes it.
    fn produce_again(&mut self, ctx: &mut Ctx, from: NodeId, pi: u32, b: Batch, last: Option<u64>) {
        let r = self.replica_mut(pi);
        match last.filter(|&l| b.acks == Acks::All && l >= r.hw) {
            Some(last) => {
                let first = (last + 1).saturating_sub(b.recs.len() as u64);
                let w =
                    Waiter { producer: from, ids: b.recs.iter().map(|r| r.id).collect(), attempt: b.attempt, first };
                r.lead.as_mut().expect("leads").waiters.entry(last).or_default().push(w);
            }
            None => {
                if let Some(last) = last {
                    r.mark_acked((last + 1).saturating_sub(b.recs.len() as u64), last + 1);
                }
                answer(ctx, from, &b, ProduceError::None);
            }
        }
    }

    /// Appends `b` to `pi`, answers or waits as its `acks` say, and wakes
    /// the followers' fetches waiting for records.
    fn append_batch(&mut self, ctx: &mut Ctx, from: NodeId, pi: u32, b: Batch) {
        let (now, incarnation) = (ctx.now(), self.incarnation);
        let leader_epoch = self.views[pi as usize].leader_epoch;
        let r = self.replica_mut(pi);
        let first = r.end();
        let acked = b.acks == Acks::Leader;
        for (i, &rec) in b.recs.iter().enumerate() {
            let seq = b.seq + i as u64;
            let rr = ReplicaRecord { rec, leader_epoch, producer: from, producer_epoch: b.epoch, seq };
            r.append(rr, now, acked, incarnation);
        }
        let last = r.end() - 1;
        match b.acks {
            Acks::All => {
                let w =
                    Waiter { producer: from, ids: b.recs.iter().map(|r| r.id).collect(), attempt: b.attempt, first };
                r.lead.as_mut().expect("leads").waiters.entry(last).or_default().push(w);
            }
            Acks::Leader => answer(ctx, from, &b, ProduceError::None),
            Acks::None => {}
        }
        self.wake_followers(ctx, pi);
        self.advance_hw(ctx, pi);
    }

    /// Raises the HW of `pi` to the lowest LEO of its (maximal) ISR;
    /// answers the acks it passes and the consumers' fetches it unblocks.
    pub(super) fn advance_hw(&mut self, ctx: &mut Ctx, pi: u32) {
        // Borrowed field by field: the view is read while the replica changes.
        let ClusterBroker { views, replicas, cfg, .. } = self;
        let isr = &views[pi as usize].isr;
        let strict_held = cfg.strict_min_isr && isr.len() < cfg.min_isr;
        let enough = isr.len() >= cfg.min_isr;
        let Some(r) = replicas[pi as usize].as_mut() else { return };
        let end = r.end();
        let Some(lead) = r.lead.as_mut() else { return };
        let mut hw = end;
        let pending = lead.pending.as_ref().map_or(&[][..], |p| &p.isr[..]);
        for f in &lead.followers {
            if isr.contains(&f.broker) || pending.contains(&f.broker) {
                hw = hw.min(f.leo.unwrap_or(0));
            }
        }
        if strict_held || hw <= r.hw {
            return;
        }
        r.hw = hw;
        let mut answered = Vec::new();
        while let Some(entry) = lead.waiters.first_entry() {
            if *entry.key() >= hw {
                break;
            }
            let (last, ws) = entry.remove_entry();
            answered.extend(ws.into_iter().map(|w| (last, w)));
        }
        let error = if enough { ProduceError::None } else { ProduceError::NotEnoughReplicas };
        for (last, w) in answered {
            if enough {
                r.mark_acked(w.first, last + 1);
            } else {
                ctx.error("not-enough-replicas-after-append");
            }
            ctx.send(w.producer, LogMsg::ProduceAck { ids: w.ids, accepted: enough, attempt: w.attempt, error });
        }
        self.txn_hw(ctx, pi);
        self.serve_reads(ctx, pi);
        self.group_log_advanced(ctx, pi);
    }

    // ---- followers ----

    /// A follower's fetch: every partition served, or held until something
    /// is appended when none has anything new (and `may_park`).
    pub(super) fn on_replica_fetch(
        &mut self,
        ctx: &mut Ctx,
        follower: BrokerIx,
        seq: u32,
        parts: Box<[FetchPart]>,
        may_park: bool,
    ) {
        self.parked_fetches.remove(&follower);
        let mut out = Vec::with_capacity(parts.len());
        let mut moved = Vec::with_capacity(parts.len());
        for fp in parts.iter() {
            let (d, m) = self.serve_follower(ctx, follower, fp);
            out.push(d);
            moved.push(m);
        }
        let idle = out.iter().all(|d| d.error == ReplicaError::None && d.recs.is_empty() && d.diverging.is_none());
        for (fp, &moved) in parts.iter().zip(&moved) {
            if self.leads(fp.partition) {
                let proposed = self.maybe_expand(ctx, fp.partition, follower);
                // The HW depends on the followers' LEOs, the ISR (with a
                // proposal) and the log end, and every other change to
                // them raises it at once: with neither moved here, it
                // would not move (the common case: an idle partition).
                if moved || proposed {
                    self.advance_hw(ctx, fp.partition);
                }
            }
        }
        if idle && may_park && self.cfg.wait_max_ns > 0 {
            let until = ctx.now() + self.cfg.wait_max_ns;
            self.parked_fetches.insert(follower, (parts, until, seq));
            ctx.set_background_timer(self.cfg.wait_max_ns, BrokerTimer::FetchWait { follower });
            return;
        }
        let node = self.layout.node_of(follower);
        ctx.send(node, ClusterMsg::ReplicaData { broker: self.me, seq, parts: out.into_boxed_slice() });
    }

    /// One partition of a follower's fetch, and whether the follower's
    /// LEO as the leader knows it moved.
    fn serve_follower(&mut self, ctx: &mut Ctx, follower: BrokerIx, fp: &FetchPart) -> (DataPart, bool) {
        let mut d = DataPart {
            partition: fp.partition,
            error: ReplicaError::None,
            offset: fp.offset,
            recs: Vec::new(),
            hw: 0,
            log_start: 0,
            diverging: None,
            offsets: Vec::new(),
        };
        if !self.leads(fp.partition) {
            d.error = ReplicaError::NotLeader;
            return (d, false);
        }
        if fp.leader_epoch > self.views[fp.partition as usize].leader_epoch {
            d.error = ReplicaError::UnknownEpoch;
            return (d, false);
        }
        let now = ctx.now();
        let r = self.replica_mut(fp.partition);
        let end = r.end();
        (d.hw, d.log_start) = (r.hw, r.start);
        if let Some(e) = fp.last_epoch {
            let (known, epoch_end) = r.epochs.end_of(e, end).unwrap_or((0, r.start));
            if known < e || epoch_end < fp.offset {
                d.diverging = Some((known, epoch_end));
                return (d, false);
            }
        }
        d.recs = r.records_from(fp.offset, REPLICA_FETCH_MAX_BYTES);
        d.offsets = self.group_log_records(fp.partition, fp.offset, d.recs.len());
        let r = self.replica_mut(fp.partition);
        let lead = r.lead.as_mut().expect("leads");
        let mut moved = false;
        if let Some(f) = lead.followers.iter_mut().find(|f| f.broker == follower) {
            let leo = fp.offset.min(end);
            let new = Some(f.leo.map_or(leo, |l| l.max(leo)));
            moved = f.leo != new;
            f.leo = new;
            // Kafka's rule: caught up now if it has the leader's end, or
            // since its previous fetch if it has what the leader had then.
            if leo >= end {
                f.caught_up_at = now;
            } else if leo >= f.last_fetch.0 {
                f.caught_up_at = f.caught_up_at.max(f.last_fetch.1);
            }
            f.last_fetch = (end, now);
        }
        (d, moved)
    }

    /// Answers the parked fetches of followers that follow `pi`.
    pub(super) fn wake_followers(&mut self, ctx: &mut Ctx, pi: u32) {
        let waiting: Vec<BrokerIx> = self
            .parked_fetches
            .iter()
            .filter(|(_, (parts, _, _))| parts.iter().any(|p| p.partition == pi))
            .map(|(&b, _)| b)
            .collect();
        for b in waiting {
            if let Some((parts, _, seq)) = self.parked_fetches.remove(&b) {
                self.on_replica_fetch(ctx, b, seq, parts, false);
            }
        }
    }

    /// A parked follower fetch's wait may be over.
    pub(super) fn fetch_wait_over(&mut self, ctx: &mut Ctx, follower: BrokerIx) {
        if self.parked_fetches.get(&follower).is_some_and(|&(_, until, _)| until <= ctx.now()) {
            let (parts, _, seq) = self.parked_fetches.remove(&follower).expect("just seen");
            self.on_replica_fetch(ctx, follower, seq, parts, false);
        }
    }

    // ---- the ISR ----

    /// Proposes `follower` back into the ISR of `pi` once it reached the
    /// HW and the start of this leader's epoch. Returns whether it did.
    fn maybe_expand(&mut self, ctx: &mut Ctx, pi: u32, follower: BrokerIx) -> bool {
        let view = &self.views[pi as usize];
        if view.isr.contains(&follower) || self.fenced.contains(&follower) {
            return false;
        }
        let r = self.replica(pi);
        let epoch_start = match view.leader_epoch {
            0 => 0,
            e => r.epochs.end_of(e - 1, r.end()).map_or(0, |(_, end)| end),
        };
        let lead = r.lead.as_ref().expect("leads");
        let Some(leo) = lead.followers.iter().find(|f| f.broker == follower).and_then(|f| f.leo) else { return false };
        if lead.pending.is_some() || leo < r.hw || leo < epoch_start {
            return false;
        }
        let replicas = &self.layout.replicas[pi as usize];
        let isr: Vec<BrokerIx> = replicas.iter().copied().filter(|b| view.isr.contains(b) || *b == follower).collect();
        self.propose(ctx, pi, isr);
        true
    }

    /// Every half of `replica_lag_max_ms`: proposes to drop the laggards
    /// of every partition led, and sends an unanswered proposal again.
    pub(super) fn check_isr(&mut self, ctx: &mut Ctx) {
        let now = ctx.now();
        for pi in 0..self.replicas.len() as u32 {
            if !self.leads(pi) {
                continue;
            }
            let view = &self.views[pi as usize];
            let r = self.replica(pi);
            let lead = r.lead.as_ref().expect("leads");
            if let Some(p) = lead.pending.clone() {
                let state = Box::new(p);
                ctx.send(self.layout.controller, ClusterMsg::AlterPartition { broker: self.me, state });
                continue;
            }
            let end = r.end();
            let out_of_sync = |f: &&super::leader::Follower| {
                view.isr.contains(&f.broker)
                    && f.leo != Some(end)
                    && now.saturating_sub(f.caught_up_at) > self.cfg.lag_max_ns
            };
            let laggards: Vec<BrokerIx> = lead.followers.iter().filter(out_of_sync).map(|f| f.broker).collect();
            if !laggards.is_empty() {
                let isr = view.isr.iter().copied().filter(|b| !laggards.contains(b)).collect();
                ctx.metric_add("isr_shrink_proposals", 1.0);
                self.propose(ctx, pi, isr);
            }
        }
    }

    /// Sends the controller a proposal to make `isr` the ISR of `pi`.
    fn propose(&mut self, ctx: &mut Ctx, pi: u32, isr: Vec<BrokerIx>) {
        let state = PartState { isr, ..self.views[pi as usize].clone() };
        self.replica_mut(pi).lead.as_mut().expect("leads").pending = Some(state.clone());
        let state = Box::new(state);
        ctx.send(self.layout.controller, ClusterMsg::AlterPartition { broker: self.me, state });
    }

    // ---- consumers ----

    /// A consumer's fetch of `partition` of the topic of `group`.
    pub(super) fn consumer_fetch(&mut self, ctx: &mut Ctx, topic: u16, read: Read) {
        let Some(pi) = self.layout.global(topic, read.partition) else {
            return ctx.error("unknown-partition");
        };
        if !self.leads(pi) {
            let (partition, offset) = (read.partition, read.offset);
            let error = FetchError::NotLeader;
            ctx.send(read.member, LogMsg::Records { partition, offset, recs: Vec::new(), error, epoch: 0 });
            return self.send_leaders(ctx, read.member, topic);
        }
        self.serve_read(ctx, pi, read);
    }

    /// Serves `read` from `pi` (led here), or parks it.
    fn serve_read(&mut self, ctx: &mut Ctx, pi: u32, read: Read) {
        let r = self.replica_mut(pi);
        let partition = read.partition;
        if let Some((end, epoch)) = read.epoch.and_then(|e| r.epochs.diverged(read.offset, e, r.end())) {
            // The log diverged from what the member read: back to `end`.
            ctx.metric_add("truncations_detected", 1.0);
            let error = FetchError::None;
            ctx.send(read.member, LogMsg::Records { partition, offset: end, recs: Vec::new(), error, epoch });
            return;
        }
        let mut offset = read.offset;
        if offset < r.start || offset > r.end() {
            offset = if offset < r.start { r.start } else { r.hw };
            ctx.metric_add("offset_resets", 1.0);
        }
        let reset = offset != read.offset;
        let (offset, upto) = self.readable_range(pi, offset, u64::from(read.max.max(1)), read.committed);
        let r = self.replica_mut(pi);
        if offset >= upto && !reset {
            let lead = r.lead.as_mut().expect("leads");
            lead.parked.retain(|x| !(x.member == read.member && x.partition == read.partition));
            lead.parked.push(read);
            return;
        }
        let recs = r.readable(offset, upto, read.max_bytes);
        let epoch = r.epochs.epoch_of(if recs.is_empty() { offset.saturating_sub(1) } else { offset });
        let lead = r.lead.as_mut().expect("leads");
        let served = lead.served.entry((read.group, partition)).or_insert(0);
        count_redelivered(ctx, served, offset, &recs, offset + recs.len() as u64);
        ctx.send(read.member, LogMsg::Records { partition, offset, recs, error: FetchError::None, epoch });
    }

    /// Serves the parked consumers' fetches of `pi` that may go on.
    fn serve_reads(&mut self, ctx: &mut Ctx, pi: u32) {
        let r = self.replica_mut(pi);
        let hw = r.hw;
        let Some(lead) = r.lead.as_mut() else { return };
        if lead.parked.iter().all(|f| f.offset >= hw) {
            return;
        }
        let (ready, parked): (Vec<Read>, Vec<Read>) = lead.parked.drain(..).partition(|f| f.offset < hw);
        lead.parked = parked;
        for f in ready {
            self.serve_read(ctx, pi, f);
        }
    }

    /// Tells `to` where the partitions of `topic` lead, as this broker knows.
    pub(super) fn send_leaders(&self, ctx: &mut Ctx, to: NodeId, topic: u16) {
        let Some(t) = self.layout.topics.get(usize::from(topic)) else { return };
        let leaders = (t.first..t.first + t.partitions)
            .map(|g| {
                let v = &self.views[g as usize];
                (v.leader.map(|l| self.layout.node_of(l)), v.leader_epoch)
            })
            .collect();
        ctx.send(to, ClusterMsg::Leaders { topic, leaders });
    }
}

/// Answers a produce, unless it asked for no answer (`acks = 0`).
fn answer(ctx: &mut Ctx, producer: NodeId, b: &Batch, error: ProduceError) {
    if b.acks != Acks::None {
        let ids = b.recs.iter().map(|r| r.id).collect();
        let accepted = error == ProduceError::None;
        ctx.send(producer, LogMsg::ProduceAck { ids, accepted, attempt: b.attempt, error });
    }
}
