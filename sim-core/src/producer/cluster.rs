//! A log producer writing to a cluster: it learns where partitions lead
//! (see [`Routes`]) and sends each batch to its partition's leader.
//!
//! - At the start it knows no leader and asks a broker for the topic's
//!   metadata. A batch whose partition has no known leader stays in the
//!   accumulator (Kafka's sender drains only partitions whose leader it
//!   knows, and asks for metadata meanwhile); its delivery timeout still
//!   runs.
//! - A produce request goes to one broker and carries the batches of the
//!   partitions that broker leads; `max_in_flight` counts requests per
//!   broker (Kafka's limit is per connection).
//! - A refusal (the broker is not the leader, has too few in-sync
//!   replicas, or found the batch out of sequence) fails the attempt at
//!   once: it is retried after `retry_backoff_ms`, to the leader known
//!   then. Only `NOT_LEADER_OR_FOLLOWER` refreshes metadata, as Kafka's
//!   sender refreshes on its invalid-metadata errors only (a non-leader
//!   also sends its view along, which routes the retry to the new leader
//!   without waiting for the refresh, KIP-951). An out-of-sequence refusal
//!   may start the partition's numbers again (see [`super::sequence`]).
//! - An ack timeout refreshes metadata, asking the next broker.
//! - A retry due while its partition has no known leader waits for one.
//!
//! Simplification: a crash forgets the metadata.

use super::requests::Requests;
use super::{Producer, ProducerTimer, Settings};
use crate::broker::cluster::{RouteTiming, Routes};
use crate::engine::Ctx;
use crate::message::{MsgId, NodeId};
use crate::protocol::ProduceError;
use crate::time::{ms_to_ns, Time};
use std::collections::BTreeSet;

/// A producer's state in a cluster.
#[derive(Debug)]
pub(super) struct ClusterSend {
    pub routes: Routes,
    /// Batches whose resend is due but whose leader is unknown.
    pub parked: BTreeSet<MsgId>,
}

impl Producer {
    /// The same producer, writing to a cluster whose brokers are `brokers`.
    pub fn in_cluster(mut self, brokers: Vec<NodeId>) -> Self {
        let Some(log) = self.log else { return self };
        let timing = RouteTiming {
            request_timeout_ns: self.settings.ack_timeout_ns,
            backoff_ns: self.settings.backoff_ns,
            max_age_ns: ms_to_ns(crate::broker::cluster::routes::METADATA_MAX_AGE_MS),
        };
        let routes = Routes::new(brokers, &[(log.topic, log.partitions)], timing);
        self.cluster = Some(Box::new(ClusterSend { routes, parked: BTreeSet::new() }));
        self
    }

    /// Where the next attempt of batch `key` goes: the target broker, or in
    /// a cluster its partition's leader. None (in a cluster): the leader is
    /// unknown, so the batch is parked until one is known.
    pub(super) fn route_of(&mut self, key: MsgId) -> Option<NodeId> {
        let Some(c) = self.cluster.as_mut() else { return Some(self.target) };
        let (topic, partition) = (self.log.map_or(0, |l| l.topic), self.outstanding.get(key)?.partition);
        let leader = c.routes.leader(topic, partition);
        if leader.is_none() {
            c.parked.insert(key);
            c.routes.want_refresh();
        }
        leader
    }

    /// After filling requests: a batch waiting for a leader wants metadata.
    pub(super) fn want_leaders(&mut self) {
        let (Some(c), Some(log)) = (self.cluster.as_mut(), self.log) else { return };
        if c.routes.knows_every_leader(log.topic) {
            return; // no scan of the waiting partitions: none lacks a leader
        }
        let unknown = {
            let leader = c.routes.leaders_of(log.topic);
            self.acc.waiting().any(|p| leader(p).is_none())
        };
        if unknown {
            c.routes.want_refresh();
        }
    }

    /// A broker's view of the topic's leaders: routes updated, parked
    /// batches whose leader is known now are sent, and so are waiting ones.
    pub(super) fn on_leaders(&mut self, ctx: &mut Ctx<ProducerTimer>, topic: u16, leaders: &[(Option<NodeId>, u32)]) {
        let Some(c) = self.cluster.as_mut() else { return };
        c.routes.on_leaders(ctx.now(), topic, leaders);
        let parked: Vec<MsgId> = std::mem::take(&mut c.parked).into_iter().collect();
        for key in parked {
            if self.expire_parked(ctx, key) {
                continue;
            }
            self.send(ctx, key); // parks it again if its leader is still unknown
        }
        self.fill_in_flight(ctx);
    }

    /// Gives a parked batch up if its delivery timeout has passed.
    fn expire_parked(&mut self, ctx: &mut Ctx<ProducerTimer>, key: MsgId) -> bool {
        let expired = self.outstanding.made_at(key).is_some_and(|t| self.outstanding.policy().expired(ctx.now(), t));
        if expired {
            let o = self.outstanding.remove(key).expect("a parked batch is kept");
            self.requests.batch_done(o.request);
            o.recs.all().iter().for_each(|_| ctx.error("delivery-timeout"));
            if self.settings.idempotent {
                self.bump_epoch(ctx, o.partition);
            }
        }
        expired
    }

    /// In a cluster, a refusal fails the attempt at once (retried after the
    /// backoff); one that says the leader moved refreshes metadata. Returns
    /// false outside a cluster.
    pub(super) fn refused_in_cluster(
        &mut self,
        ctx: &mut Ctx<ProducerTimer>,
        key: MsgId,
        attempt: u32,
        error: ProduceError,
    ) -> bool {
        let Some(c) = self.cluster.as_mut() else { return false };
        if error == ProduceError::NotLeader {
            c.routes.want_refresh();
        }
        self.outstanding.refused(key, attempt);
        if self.outstanding.is_refused(key) {
            self.attempt_failed(ctx, key);
        }
        true
    }

    /// An ack timed out: in a cluster, ask the next broker for metadata.
    pub(super) fn ack_timed_out(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.timed_out();
        }
    }

    /// Sends the lookups due now and sets the route timer for the next
    /// (in a cluster; a producer to one broker has none to look up).
    #[inline(always)]
    pub(super) fn poll_routes(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        if self.cluster.is_some() {
            self.poll_cluster_routes(ctx);
        }
    }

    /// [`Producer::poll_routes`] in a cluster.
    #[inline(never)]
    fn poll_cluster_routes(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        let Some(c) = self.cluster.as_mut() else { return };
        let now = ctx.now();
        // Parked batches past their delivery timeout are given up here too.
        let parked: Vec<MsgId> = c.parked.iter().copied().collect();
        for key in parked {
            if self.expire_parked(ctx, key) {
                self.cluster.as_mut().expect("in a cluster").parked.remove(&key);
            }
        }
        let c = self.cluster.as_mut().expect("in a cluster");
        let Some((at, background)) = c.routes.poll(now, |to, m| ctx.send(to, m)) else { return };
        if c.routes.arm(now, at) {
            arm(ctx, at - now, background);
        }
    }

    /// The route timer fired.
    pub(super) fn routes_due(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.fired(ctx.now());
        }
        self.fill_in_flight(ctx);
    }

    /// Whether nothing waits on the cluster's routes (for the drain).
    pub(super) fn routes_idle(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.parked.is_empty())
    }

    /// The drain has nothing left to send: the route timer is cancelled.
    pub(super) fn cancel_routes(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.timer_gone();
            ctx.cancel_timer(ProducerTimer::Routes);
        }
    }

    /// A crash: metadata is forgotten.
    pub(super) fn crash_routes(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.restart();
            c.parked.clear();
        }
    }
}

/// The route of each partition of `topic` for the next request: its
/// leader's node, if known and (when acks are awaited) with a free request
/// slot. The topic is looked up once, for a scan of every partition.
pub(super) fn request_router<'a>(
    c: &'a ClusterSend,
    topic: u16,
    requests: &'a Requests,
    s: &'a Settings,
) -> impl Fn(u32) -> Option<u64> + 'a {
    let leader = c.routes.leaders_of(topic);
    // Read once for the scan, not per partition.
    let (wait_ack, max_in_flight) = (s.wait_ack(), s.max_in_flight);
    move |p| {
        let node = leader(p)?;
        let free = !wait_ack || requests.len_to(node) < max_in_flight;
        free.then_some(u64::from(node))
    }
}

/// Whether some broker could take a request now: always when no ack is
/// awaited, else when one has a free request slot. When none has, no
/// partition routes anywhere (every leader is a broker), so the caller
/// skips the scan of the ready batches: on the saturated cluster benchmark
/// that scan, failing, was most of the run.
pub(super) fn any_request_slot(c: &ClusterSend, requests: &Requests, s: &Settings) -> bool {
    !s.wait_ack() || c.routes.brokers().iter().any(|&b| requests.len_to(b) < s.max_in_flight)
}

fn arm(ctx: &mut Ctx<ProducerTimer>, delay: Time, background: bool) {
    if background {
        ctx.set_background_timer(delay, ProducerTimer::Routes);
    } else {
        ctx.set_timer(delay, ProducerTimer::Routes);
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
