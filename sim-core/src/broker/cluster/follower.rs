//! A cluster broker following partitions: Kafka's replica fetcher, one per
//! leader broker. The broker keeps one `ReplicaFetch` outstanding at each
//! broker that leads a partition it follows (as its metadata view says),
//! covering every such partition; it sends the next one as soon as the
//! answer comes (the leader holds a fetch that finds nothing new for up to
//! `replica_fetch_wait_max_ms`), and another after
//! `replica_socket_timeout_ms` without an answer.
//!
//! Each partition asks from the follower's log end, with the leader epoch
//! of its last record. An answer appends the records (keeping their leader
//! epochs), takes the leader's HW (capped at its own end), or truncates
//! the log where the leader says it diverged (KIP-595): to the smaller of
//! the leader's end of that epoch and its own. Truncated records are
//! reported to the ledger with a cause that explains the loss if the
//! ledger finds one: `TruncatedAfterPartition` for records this broker
//! appended in its current incarnation (a stale or cut-off leader's tail),
//! else `UncleanElection` when the new leader was elected uncleanly, else
//! `LeaderFailover`.
//!
//! Left out: fetch sessions (KIP-227: every fetch lists every partition),
//! the follower's byte budget per request (`replica.fetch.response.max.bytes`),
//! several fetcher threads per broker, throttling, and the log start offset
//! (no retention in a cluster).

use super::node::{BrokerTimer, ClusterBroker};
use crate::ledger::LossCause;
use crate::protocol::cluster::{BrokerIx, ClusterMsg, DataPart, FetchPart, ReplicaError};

type Ctx<'a> = crate::engine::Ctx<'a, BrokerTimer>;

impl ClusterBroker {
    /// The partitions this broker follows at `leader`, as one fetch's parts.
    fn fetch_parts(&self, leader: BrokerIx) -> Vec<FetchPart> {
        let Some(followed) = self.follows.get(usize::from(leader)) else { return Vec::new() };
        let mut parts = Vec::with_capacity(followed.len());
        for &pi in followed {
            let (r, v) = (self.replica(pi), &self.views[pi as usize]);
            let (partition, offset, last_epoch, leader_epoch) = (pi, r.end(), r.last_epoch(), v.leader_epoch);
            parts.push(FetchPart { partition, offset, last_epoch, leader_epoch });
        }
        parts
    }

    /// Lists again, per leader broker, the hosted partitions it leads in
    /// this broker's view (none for this broker itself).
    pub(super) fn index_follows(&mut self) {
        self.follows.iter_mut().for_each(Vec::clear);
        for (pi, v) in self.views.iter().enumerate() {
            match v.leader {
                Some(l) if l != self.me && self.replicas[pi].is_some() => self.follows[usize::from(l)].push(pi as u32),
                _ => {}
            }
        }
    }

    /// Sends `leader` a fetch unless one is outstanding there (or nothing
    /// is followed there).
    pub(super) fn fetch_from(&mut self, ctx: &mut Ctx, leader: BrokerIx) {
        if self.fetching.contains_key(&leader) {
            return;
        }
        let parts = self.fetch_parts(leader);
        if parts.is_empty() {
            return;
        }
        self.fetch_seq = self.fetch_seq.wrapping_add(1);
        let seq = self.fetch_seq;
        self.fetching.insert(leader, seq);
        ctx.send(self.layout.node_of(leader), ClusterMsg::ReplicaFetch { broker: self.me, seq, parts: parts.into() });
        ctx.set_background_timer(self.cfg.socket_timeout_ns, BrokerTimer::FetchTimeout { leader, seq });
    }

    /// Fetches from every broker that leads a partition followed here.
    pub(super) fn fetch_all(&mut self, ctx: &mut Ctx) {
        for l in 0..self.follows.len() {
            self.fetch_from(ctx, l as BrokerIx);
        }
    }

    /// A fetch went unanswered for `replica_socket_timeout_ms`.
    pub(super) fn fetch_timed_out(&mut self, ctx: &mut Ctx, leader: BrokerIx, seq: u32) {
        if self.fetching.get(&leader) == Some(&seq) {
            self.fetching.remove(&leader);
            ctx.metric_add("replica_fetch_timeouts", 1.0);
            self.fetch_from(ctx, leader);
        }
    }

    /// `leader`'s answer to fetch `seq`. Only the answer to the fetch
    /// outstanding there counts: a copy the network duplicated, or a late
    /// answer to a fetch that timed out, is dropped, as Kafka's client drops
    /// a response whose correlation id it no longer waits on (else each
    /// would start one more fetch loop, and duplication would multiply them).
    pub(super) fn on_replica_data(&mut self, ctx: &mut Ctx, leader: BrokerIx, seq: u32, parts: Box<[DataPart]>) {
        if self.fetching.get(&leader) != Some(&seq) {
            return;
        }
        self.fetching.remove(&leader);
        for d in parts.into_vec() {
            let pi = d.partition as usize;
            let following = self.views.get(pi).is_some_and(|v| v.leader == Some(leader) && leader != self.me);
            if !following || self.replicas[pi].is_none() || d.error != ReplicaError::None {
                continue;
            }
            match d.diverging {
                Some((epoch, end)) => {
                    let at = self.replica(d.partition).divergence_point(epoch, end);
                    self.truncate(ctx, d.partition, at);
                }
                None => self.apply_data(ctx, d),
            }
        }
        self.fetch_from(ctx, leader);
    }

    /// Appends the records of `d` (when they follow this log's end) and
    /// takes the leader's HW.
    fn apply_data(&mut self, ctx: &mut Ctx, d: DataPart) {
        let (now, incarnation) = (ctx.now(), self.incarnation);
        let r = self.replica_mut(d.partition);
        if d.offset != r.end() {
            return; // an answer to an older position
        }
        for rr in d.recs {
            r.append(rr, now, false, incarnation);
        }
        r.hw = r.hw.max(d.hw.min(r.end()));
        self.group_log_appended(d.partition, d.offset, d.offsets);
    }

    /// Cuts the log of `pi` back to `at`, reporting what it cuts.
    pub(super) fn truncate(&mut self, ctx: &mut Ctx, pi: u32, at: u64) {
        let unclean = self.views[pi as usize].unclean;
        let incarnation = self.incarnation;
        let cut = self.replica_mut(pi).truncate(at);
        if cut.is_empty() || self.group_log_truncated(pi, at) {
            return;
        }
        for e in &cut {
            let cause = if e.incarnation == incarnation {
                LossCause::TruncatedAfterPartition
            } else if unclean {
                LossCause::UncleanElection
            } else {
                LossCause::LeaderFailover
            };
            ctx.discarded(e.r.rec.id, cause);
        }
        ctx.metric_add("truncated_records", cut.len() as f64);
        let told = cut.iter().filter(|e| e.acked).count();
        if told > 0 {
            ctx.metric_add("acked_records_truncated", told as f64);
        }
        ctx.mark("log truncated");
    }
}
