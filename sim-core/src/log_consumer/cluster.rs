//! A group member reading from a cluster: it learns where its topic's
//! partitions lead and which broker coordinates its group (see [`Routes`]).
//!
//! - At the start it asks a broker for the topic's metadata (and the output
//!   topic's, for a stage) and for its group's coordinator
//!   ([`ClusterMsg::FindCoordinator`]). Group requests (join, sync,
//!   heartbeat, leave, commits, transactions) go to the coordinator; a join
//!   made before it is known leaves as soon as it is.
//! - Each fetch goes to its partition's leader; a fetch with no known
//!   leader waits for one (metadata is asked for, and the fetch leaves when
//!   the answer names a leader).
//! - A `NotLeader` answer forgets that leader and refreshes; so does a
//!   fetch left unanswered for the request timeout (then the next broker
//!   is asked).
//! - **The coordinator moves** with the leadership of the group's offsets
//!   partition (see [`crate::broker::cluster`]). As Kafka's consumer
//!   (`AbstractCoordinator`, classic protocol, 3.x/4.x), the member marks
//!   its coordinator unknown and looks it up again when the coordinator
//!   answers `NOT_COORDINATOR`, or refuses a commit
//!   (`COORDINATOR_NOT_AVAILABLE`, `REQUEST_TIMED_OUT`), and, asking the
//!   next broker, when a group request (join, sync, heartbeat, commit,
//!   transaction) goes unanswered for the request timeout (Kafka's
//!   disconnection), or when no heartbeat was answered for the session
//!   timeout (`sessionTimeoutExpired`). Each counts in metric
//!   `coordinator_lost`.
//! - **Meanwhile it keeps its partitions and keeps fetching** from their
//!   leaders and processing, as Kafka's consumer does: losing the
//!   coordinator revokes nothing. Its commits fail (metric
//!   `offset_commit_failures`: refused, unanswered, or made while the
//!   coordinator is unknown; an async or auto commit is not retried, a
//!   commit before processing is). It learns that its group moved on
//!   without it only when it reaches a coordinator again: the coordinator
//!   does not know it (Kafka's `UNKNOWN_MEMBER_ID`), so its partitions are
//!   lost and it rejoins. Cut off from the coordinator but not from the
//!   leaders, it processes what the group gave to another member: duplicates.
//!
//! - A transactional stage's writes and commits go to the transaction
//!   coordinator of their input partition, which any broker names when
//!   asked (until then they go to the next broker); the coordinator of a
//!   transactional id does not move in this stop, so once known it is
//!   kept.
//!
//! Simplifications: output a stage writes without a transaction
//! (`acks=0`) while its partition's leader is unknown goes to the first
//! broker, which refuses it (Kafka's producer would hold it until the
//! leader is known); a crash forgets the metadata; the route timer is a
//! background timer, like the heartbeat.

use super::{LogConsumer, LogConsumerTimer};
use crate::broker::cluster::{RouteTiming, Routes};
use crate::engine::Ctx;
use crate::message::{Msg, NodeId};
use crate::protocol::cluster::CoordError;
use crate::protocol::{ClusterMsg, LogMsg};
use crate::time::{ms_to_ns, Duration, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `retry.backoff.ms`, the consumer's (not a setting here).
const RETRY_BACKOFF_MS: f64 = 100.0;

/// A group member's state in a cluster.
#[derive(Debug)]
pub(super) struct ClusterRead {
    routes: Routes,
    /// The topic read.
    topic: u16,
    /// Assigned partitions whose fetch waits for a leader.
    waiting: BTreeSet<u32>,
    /// The transaction coordinator of each input partition, as a broker
    /// named it.
    txn_coordinators: BTreeMap<u32, NodeId>,
    /// The session timeout (the broker's `session_timeout_ms`).
    session_ns: Duration,
    /// When the coordinator last answered a group request.
    heard_at: Time,
    /// The first heartbeat sent since then.
    beat_sent: Option<Time>,
    /// Commits sent and unanswered: partition to (offset, when sent).
    commits: BTreeMap<u32, (u64, Time)>,
}

impl LogConsumer {
    /// The same member, reading topic `topic` (of `partitions` partitions)
    /// of a cluster whose brokers are `brokers`.
    pub fn in_cluster(mut self, brokers: Vec<NodeId>, topic: u16, partitions: u32) -> Self {
        let timing = RouteTiming {
            request_timeout_ns: self.s.request_timeout_ns,
            backoff_ns: ms_to_ns(RETRY_BACKOFF_MS),
            max_age_ns: ms_to_ns(crate::broker::cluster::routes::METADATA_MAX_AGE_MS),
        };
        let mut topics = vec![(topic, partitions)];
        topics.extend(self.s.output);
        let routes = Routes::new(brokers, &topics, timing).with_group(self.s.group);
        self.cluster = Some(Box::new(ClusterRead {
            routes,
            topic,
            waiting: BTreeSet::new(),
            session_ns: Duration::MAX,
            heard_at: 0,
            beat_sent: None,
            commits: BTreeMap::new(),
            txn_coordinators: BTreeMap::new(),
        }));
        self
    }

    /// The same member, with a group session timeout of `session_ns` (in a
    /// cluster: the member gives up on a coordinator that answered no
    /// heartbeat for that long).
    pub fn with_session(mut self, session_ns: Duration) -> Self {
        if let Some(c) = self.cluster.as_mut() {
            c.session_ns = session_ns;
        }
        self
    }

    /// Where group requests go: the broker, or in a cluster the group's
    /// coordinator (None while unknown).
    pub(super) fn group_node(&self) -> Option<NodeId> {
        match &self.cluster {
            None => Some(self.s.broker),
            Some(c) => c.routes.coordinator(),
        }
    }

    /// Where the writes and the commit of the transaction of input
    /// `partition` go: the broker, or in a cluster the transaction
    /// coordinator (unknown: the next broker, which names it).
    pub(super) fn txn_node(&self, partition: u32) -> Option<NodeId> {
        let Some(c) = &self.cluster else { return Some(self.s.broker) };
        Some(c.txn_coordinators.get(&partition).copied().unwrap_or_else(|| c.routes.next_broker()))
    }

    /// A broker named the transaction coordinator of input `partition`:
    /// a commit waiting for it goes there now.
    pub(super) fn on_txn_coordinator(&mut self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32, node: NodeId) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.txn_coordinators.insert(partition, node) != Some(node) && self.txns.contains_key(&partition) {
            self.send_txn(ctx, partition);
        }
    }

    /// Where a fetch of `partition` goes: the broker, or in a cluster its
    /// leader. None: unknown, and the fetch waits for it.
    pub(super) fn fetch_node(&mut self, partition: u32) -> Option<NodeId> {
        let Some(c) = self.cluster.as_mut() else { return Some(self.s.broker) };
        let leader = c.routes.leader(c.topic, partition);
        if leader.is_none() {
            c.waiting.insert(partition);
            c.routes.want_refresh();
        }
        leader
    }

    /// A broker's view of a topic's leaders: fetches waiting for a leader
    /// known now leave.
    pub(super) fn on_leaders(
        &mut self,
        ctx: &mut Ctx<LogConsumerTimer>,
        topic: u16,
        leaders: &[(Option<NodeId>, u32)],
    ) {
        let Some(c) = self.cluster.as_mut() else { return };
        c.routes.on_leaders(ctx.now(), topic, leaders);
        let (routes, t) = (&c.routes, c.topic);
        let ready: Vec<u32> = c.waiting.iter().copied().filter(|&p| routes.leader(t, p).is_some()).collect();
        ready.iter().for_each(|p| {
            c.waiting.remove(p);
        });
        for p in ready {
            let idle = self.assigned.get(&p).is_some_and(|a| !a.busy);
            if idle && !self.txns.contains_key(&p) && !self.committing.contains_key(&p) {
                self.fetch(ctx, p);
            }
        }
    }

    /// A broker named the group's coordinator: a join or sync made while
    /// it was unknown leaves now.
    pub(super) fn on_coordinator(&mut self, ctx: &mut Ctx<LogConsumerTimer>, group: u16, node: Option<NodeId>) {
        let Some(c) = self.cluster.as_mut() else { return };
        let was_known = c.routes.coordinator().is_some();
        c.routes.on_coordinator(group, node);
        if !was_known && c.routes.coordinator().is_some() {
            // Kafka restarts the session timer when it finds the coordinator.
            (c.heard_at, c.beat_sent) = (ctx.now(), None);
            self.resend_join_now(ctx);
        }
    }

    /// A heartbeat left for the coordinator at `now`.
    pub(super) fn heartbeat_sent(&mut self, now: Time) {
        if let Some(c) = self.cluster.as_mut() {
            c.beat_sent.get_or_insert(now);
        }
    }

    /// `msg` came from `from`: an answer of the coordinator to a group
    /// request restarts the session timer (and settles a commit).
    pub(super) fn group_answer(&mut self, now: Time, from: NodeId, msg: &Msg) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.routes.coordinator() != Some(from) {
            return;
        }
        match msg {
            Msg::Log(LogMsg::CommitAck { partition, offset, .. }) => {
                if c.commits.get(partition).is_some_and(|&(o, _)| o == *offset) {
                    c.commits.remove(partition);
                }
            }
            Msg::Log(LogMsg::GroupState { .. } | LogMsg::JoinAck { .. })
            | Msg::Cluster(ClusterMsg::HeartbeatOk { .. }) => {}
            _ => return,
        }
        (c.heard_at, c.beat_sent) = (now, None);
    }

    /// A commit of `partition` to `offset` left for the coordinator (`sent`),
    /// or failed at once for want of one.
    pub(super) fn commit_sent(&mut self, ctx: &mut Ctx<LogConsumerTimer>, partition: u32, offset: u64, sent: bool) {
        let Some(c) = self.cluster.as_mut() else { return };
        if sent {
            c.commits.insert(partition, (offset, ctx.now()));
        } else {
            ctx.metric_add("offset_commit_failures", 1.0);
        }
    }

    /// `from` refused a group request; `commit` names a
    /// refused commit. The coordinator is unknown (if `from` is the one
    /// known), and a refused commit has failed.
    pub(super) fn on_group_error(
        &mut self,
        ctx: &mut Ctx<LogConsumerTimer>,
        from: NodeId,
        _error: CoordError,
        commit: Option<(u32, u64)>,
    ) {
        let Some(c) = self.cluster.as_mut() else { return };
        if let Some((p, offset)) = commit {
            ctx.metric_add("offset_commit_failures", 1.0);
            if c.commits.get(&p).is_some_and(|&(o, _)| o == offset) {
                c.commits.remove(&p);
            }
        }
        // NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and REQUEST_TIMED_OUT
        // alike mark the coordinator unknown (Kafka's commit handler).
        if c.routes.coordinator() == Some(from) {
            ctx.metric_add("coordinator_lost", 1.0);
            c.routes.coordinator_unknown();
        }
    }

    /// At each tick: commits and heartbeats left unanswered for the
    /// request timeout, or no heartbeat answered for the session timeout,
    /// mean the coordinator is lost (keeping the partitions).
    pub(super) fn check_coordinator(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let timeout = self.s.request_timeout_ns;
        let Some(c) = self.cluster.as_mut() else { return };
        let now = ctx.now();
        let late = |t: Time| now.saturating_sub(t) >= timeout;
        let before = c.commits.len();
        c.commits.retain(|_, &mut (_, t)| !late(t));
        let failed = before - c.commits.len();
        if failed > 0 {
            ctx.metric_add("offset_commit_failures", failed as f64);
        }
        if c.routes.coordinator().is_none() {
            return;
        }
        let unanswered = failed > 0 || c.beat_sent.is_some_and(late);
        let expired = now.saturating_sub(c.heard_at) >= c.session_ns;
        if unanswered || expired {
            ctx.metric_add("coordinator_lost", 1.0);
            if unanswered {
                c.routes.rediscover();
            } else {
                c.routes.coordinator_unknown();
            }
            (c.heard_at, c.beat_sent) = (now, None);
        }
    }

    /// `from` said it does not lead `partition`: forget it, refresh, and
    /// fetch once a leader is known.
    pub(super) fn not_leader(&mut self, from: NodeId, partition: u32) {
        let Some(c) = self.cluster.as_mut() else { return };
        c.routes.not_leader(c.topic, partition, from);
        if let Some(a) = self.assigned.get_mut(&partition).filter(|a| !a.busy) {
            a.fetch_sent = None;
            c.waiting.insert(partition);
        }
    }

    /// A fetch went unanswered: refresh, asking the next broker.
    pub(super) fn fetch_timed_out(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.timed_out();
        }
    }

    /// Whether a commit of `partition` was sent to the coordinator and is
    /// still unanswered (not yet given up at a tick).
    pub(super) fn commit_unanswered(&self, partition: u32) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.commits.contains_key(&partition))
    }

    /// A group request went unanswered: look the coordinator up again.
    pub(super) fn group_request_lost(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.rediscover();
        }
    }

    /// Sends the lookups due now and sets the route timer for the next.
    pub(super) fn poll_routes(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let Some(c) = self.cluster.as_mut() else { return };
        let now = ctx.now();
        let Some((at, _)) = c.routes.poll(now, |to, m| ctx.send(to, m)) else { return };
        if c.routes.arm(now, at) {
            ctx.set_background_timer(at - now, LogConsumerTimer::Routes);
        }
    }

    /// The route timer fired.
    pub(super) fn routes_due(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.fired(ctx.now());
        }
    }

    /// A crash: metadata and the coordinator are forgotten.
    pub(super) fn crash_routes(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.routes.restart();
            c.waiting.clear();
            c.txn_coordinators.clear();
        }
    }
}

/// Where output to `partition` of `out_topic` goes: the broker, or in a
/// cluster the partition's leader (unknown: the broker asked next).
pub(super) fn output_node(cluster: Option<&ClusterRead>, broker: NodeId, out_topic: u16, partition: u32) -> NodeId {
    match cluster {
        None => broker,
        Some(c) => c.routes.leader(out_topic, partition).unwrap_or_else(|| c.routes.next_broker()),
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
