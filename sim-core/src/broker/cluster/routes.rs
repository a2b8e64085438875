//! A client's routing state in a log cluster: what a producer or a group
//! member knows of where things are, and when it asks again (Kafka's client
//! `Metadata` and its coordinator lookup).
//!
//! - **Bootstrap**: the cluster's brokers, in order. Requests for metadata
//!   and for the coordinator go to the broker under a cursor; each request
//!   left unanswered (or a request of the client's that timed out) moves
//!   the cursor to the next broker, as Kafka's client leaves a node it has
//!   lost for another one.
//! - **Leaders**: per (topic, partition), the leader's node and the leader
//!   epoch of that knowledge, from [`ClusterMsg::Leaders`] (an answer to a
//!   [`ClusterMsg::MetadataRequest`], or the hint a broker sends along with a
//!   refusal, KIP-951). Knowledge with an older epoch than what is known is
//!   ignored; an equal or newer one is taken (Kafka's client keeps the
//!   largest epoch seen and drops metadata older than it, KIP-320). A
//!   `NOT_LEADER_OR_FOLLOWER` from the node believed leader forgets that
//!   leader (keeping its epoch).
//! - **Refresh**: a refresh is wanted at the start, when the client asks
//!   for one (an unknown leader it needs, a refusal, a `NotLeader`, a
//!   timeout), and when the last full answer is `metadata.max.age.ms`
//!   (5 min) old. One request is in flight at a time; requests leave at
//!   least `retry.backoff.ms` (100 ms) apart; an answer overdue by the
//!   client's request timeout moves the cursor and asks again.
//! - **Coordinator**: the node of the client's group coordinator, learned
//!   with [`ClusterMsg::FindCoordinator`] (any broker answers, from its own
//!   view), asked again after the backoff when the answer names none. It is
//!   marked unknown and looked up again when the coordinator answers
//!   `NOT_COORDINATOR` or a commit fails for want of it (Kafka's
//!   `markCoordinatorUnknown`), and, at the next broker, when a group
//!   request goes unanswered.
//!
//! Simplifications: one request for each topic per refresh, all to the same
//! broker (Kafka asks for every topic in one request, to its least loaded
//! node); the backoff is fixed (Kafka's grows exponentially up to
//! `retry.backoff.max.ms` since 3.7); a client keeps no connection state
//! (a timeout stands for Kafka's disconnection).

use crate::message::NodeId;
use crate::protocol::cluster::ClusterMsg;
use crate::time::{Duration, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `metadata.max.age.ms`: metadata is refreshed at least this often.
pub const METADATA_MAX_AGE_MS: f64 = 300_000.0;

/// How a client times its lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTiming {
    /// An answer not back after this is given up (the client's request
    /// timeout), and the next broker is asked.
    pub request_timeout_ns: Duration,
    /// Least time between two requests of one kind (`retry.backoff.ms`).
    pub backoff_ns: Duration,
    /// Metadata older than this is refreshed (`metadata.max.age.ms`).
    pub max_age_ns: Duration,
}

/// What a client knows of one partition's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Route {
    /// The leader's node, if known.
    leader: Option<NodeId>,
    /// The leader epoch of what is known (none: never heard of).
    epoch: Option<u32>,
}

/// One kind of lookup: wanted, in flight, and when it last left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Ask {
    wanted: bool,
    sent: Option<Time>,
    last: Option<Time>,
}

impl Ask {
    /// The request in flight is overdue at `now`: forget it, and want one.
    fn overdue(&mut self, now: Time, timeout: Duration) -> bool {
        let late = self.sent.is_some_and(|t| now >= t.saturating_add(timeout));
        if late {
            self.sent = None;
            self.wanted = true;
        }
        late
    }

    /// Whether a request leaves at `now` (then it is in flight).
    fn leaves(&mut self, now: Time, backoff: Duration) -> bool {
        let go = self.wanted && self.sent.is_none() && self.last.is_none_or(|t| now >= t.saturating_add(backoff));
        if go {
            (self.wanted, self.sent, self.last) = (false, Some(now), Some(now));
        }
        go
    }

    /// When this lookup next needs the client's attention.
    fn wake(&self, timing: &RouteTiming) -> Option<Time> {
        match self.sent {
            Some(t) => Some(t.saturating_add(timing.request_timeout_ns)),
            None if self.wanted => Some(self.last.map_or(0, |t| t.saturating_add(timing.backoff_ns))),
            None => None,
        }
    }
}

/// A client's routes in one cluster (see the module docs).
#[derive(Debug, Clone)]
pub struct Routes {
    brokers: Vec<NodeId>,
    cursor: usize,
    timing: RouteTiming,
    topics: BTreeMap<u16, Vec<Route>>,
    /// Per topic, how many of its partitions have no known leader (kept
    /// so that a client asks it without a scan of every partition).
    unknown: BTreeMap<u16, usize>,
    metadata: Ask,
    /// Topics asked in the request in flight and not answered yet.
    unanswered: BTreeSet<u16>,
    /// When the last full answer came.
    refreshed_at: Time,
    group: Option<u16>,
    coordinator: Option<NodeId>,
    find: Ask,
    /// When the client's route timer is set to fire (none: not set).
    timer_at: Option<Time>,
}

impl Routes {
    /// Routes to `topics` (each with its partition count) through the
    /// cluster's `brokers` (in order; at least one), knowing nothing yet:
    /// a refresh is wanted.
    pub fn new(brokers: Vec<NodeId>, topics: &[(u16, u32)], timing: RouteTiming) -> Self {
        assert!(!brokers.is_empty(), "a cluster has brokers");
        Routes {
            brokers,
            cursor: 0,
            timing,
            topics: topics.iter().map(|&(t, n)| (t, vec![Route::default(); n as usize])).collect(),
            unknown: topics.iter().map(|&(t, n)| (t, n as usize)).collect(),
            metadata: Ask { wanted: true, ..Ask::default() },
            unanswered: BTreeSet::new(),
            refreshed_at: 0,
            group: None,
            coordinator: None,
            find: Ask::default(),
            timer_at: None,
        }
    }

    /// Also looks up the coordinator of `group` (a group member).
    pub fn with_group(mut self, group: u16) -> Self {
        self.group = Some(group);
        self.find.wanted = true;
        self
    }

    /// The node of the leader of `partition` of `topic`, if known.
    pub fn leader(&self, topic: u16, partition: u32) -> Option<NodeId> {
        self.topics.get(&topic)?.get(partition as usize)?.leader
    }

    /// [`Routes::leader`] of each partition of `topic`, with the topic
    /// looked up once (for a scan of every partition).
    pub fn leaders_of(&self, topic: u16) -> impl Fn(u32) -> Option<NodeId> + '_ {
        let routes = self.topics.get(&topic).map_or(&[][..], Vec::as_slice);
        move |partition| routes.get(partition as usize)?.leader
    }

    /// Whether the leader of every partition of `topic` is known (false
    /// for a topic the client does not route).
    pub fn knows_every_leader(&self, topic: u16) -> bool {
        self.unknown.get(&topic) == Some(&0)
    }

    /// The leader epoch known for `partition` of `topic`.
    pub fn epoch(&self, topic: u16, partition: u32) -> Option<u32> {
        self.topics.get(&topic)?.get(partition as usize)?.epoch
    }

    /// The cluster's brokers, in order (every leader is one of them).
    pub fn brokers(&self) -> &[NodeId] {
        &self.brokers
    }

    /// The broker the next lookup goes to.
    pub fn next_broker(&self) -> NodeId {
        self.brokers[self.cursor % self.brokers.len()]
    }

    /// The group's coordinator, if known.
    pub fn coordinator(&self) -> Option<NodeId> {
        self.coordinator
    }

    /// Whether `node` is one of the cluster's brokers.
    pub fn is_broker(&self, node: NodeId) -> bool {
        self.brokers.contains(&node)
    }

    /// Takes what a broker said of `topic`'s leaders at `now`; returns the
    /// partitions whose leader changed (or became known).
    pub fn on_leaders(&mut self, now: Time, topic: u16, leaders: &[(Option<NodeId>, u32)]) -> Vec<u32> {
        let mut changed = Vec::new();
        let Some(routes) = self.topics.get_mut(&topic) else { return changed };
        for (p, (r, &(leader, epoch))) in routes.iter_mut().zip(leaders).enumerate() {
            if r.epoch.is_some_and(|known| epoch < known) {
                continue; // older than what is known: a stale broker's view
            }
            if r.leader != leader {
                changed.push(p as u32);
            }
            *r = Route { leader, epoch: Some(epoch) };
        }
        self.unknown.insert(topic, routes.iter().filter(|r| r.leader.is_none()).count());
        if self.unanswered.remove(&topic) && self.unanswered.is_empty() {
            self.metadata.sent = None;
            self.refreshed_at = now;
        }
        changed
    }

    /// Takes a broker's answer about `group`'s coordinator.
    pub fn on_coordinator(&mut self, group: u16, node: Option<NodeId>) {
        if self.group != Some(group) {
            return;
        }
        self.find.sent = None;
        match node {
            Some(n) => self.coordinator = Some(n),
            None => self.find.wanted = true, // none now: ask again after the backoff
        }
    }

    /// `node` said it does not lead `partition` of `topic`: forget it as
    /// leader (if it is the one known) and refresh. Returns true when it
    /// was forgotten.
    pub fn not_leader(&mut self, topic: u16, partition: u32, node: NodeId) -> bool {
        self.metadata.wanted = true;
        let Some(r) = self.topics.get_mut(&topic).and_then(|t| t.get_mut(partition as usize)) else { return false };
        let forget = r.leader == Some(node);
        if forget {
            r.leader = None;
            *self.unknown.entry(topic).or_default() += 1;
        }
        forget
    }

    /// The client needs fresher metadata (an unknown leader, a refusal).
    pub fn want_refresh(&mut self) {
        self.metadata.wanted = true;
    }

    /// A request of the client's went unanswered: the broker asked next is
    /// the one after the cursor, and metadata is refreshed.
    pub fn timed_out(&mut self) {
        self.cursor = (self.cursor + 1) % self.brokers.len();
        self.metadata.wanted = true;
    }

    /// A group request went unanswered: the coordinator is unknown, and
    /// looked up again at the next broker.
    pub fn rediscover(&mut self) {
        if self.group.is_some() {
            self.cursor = (self.cursor + 1) % self.brokers.len();
            self.coordinator_unknown();
        }
    }

    /// The coordinator refused (`NOT_COORDINATOR`, or a commit it could
    /// not write): it is unknown until looked up again.
    pub fn coordinator_unknown(&mut self) {
        if self.group.is_some() {
            self.coordinator = None;
            self.find.wanted = true;
        }
    }

    /// Sends (through `send`) the lookups due at `now`, and returns when
    /// the client should call again, if it needs to: the time, and whether
    /// only the periodic refresh waits then (a background wake).
    pub fn poll(&mut self, now: Time, mut send: impl FnMut(NodeId, ClusterMsg)) -> Option<(Time, bool)> {
        let timing = self.timing;
        if self.metadata.overdue(now, timing.request_timeout_ns) {
            self.unanswered.clear();
            self.cursor = (self.cursor + 1) % self.brokers.len();
        }
        if self.find.overdue(now, timing.request_timeout_ns) {
            self.cursor = (self.cursor + 1) % self.brokers.len();
        }
        if now >= self.refreshed_at.saturating_add(timing.max_age_ns) && self.metadata.sent.is_none() {
            self.metadata.wanted = true;
        }
        if self.metadata.leaves(now, timing.backoff_ns) {
            let to = self.next_broker();
            self.unanswered = self.topics.keys().copied().collect();
            for &topic in self.topics.keys() {
                send(to, ClusterMsg::MetadataRequest { topic });
            }
        }
        if let Some(group) = self.group.filter(|_| self.find.leaves(now, timing.backoff_ns)) {
            send(self.next_broker(), ClusterMsg::FindCoordinator { group });
        }
        let urgent = [self.metadata.wake(&timing), self.find.wake(&timing)].into_iter().flatten().min();
        match urgent {
            Some(t) => Some((t.max(now), false)),
            None => Some((self.refreshed_at.saturating_add(timing.max_age_ns).max(now), true)),
        }
    }

    /// Whether the client must set its route timer to fire at `at`: not
    /// when one is set already to fire by then. Records the new one.
    pub fn arm(&mut self, now: Time, at: Time) -> bool {
        let set = self.timer_at.is_some_and(|t| t >= now && t <= at);
        if !set {
            self.timer_at = Some(at);
        }
        !set
    }

    /// The client's route timer fired at `now`.
    pub fn fired(&mut self, now: Time) {
        if self.timer_at.is_some_and(|t| t <= now) {
            self.timer_at = None;
        }
    }

    /// The client's route timer is gone (a crash, or cancelled).
    pub fn timer_gone(&mut self) {
        self.timer_at = None;
    }

    /// A restart: leaders and the coordinator are learned afresh (a client
    /// keeps no metadata across a crash).
    pub fn restart(&mut self) {
        for (&topic, routes) in &mut self.topics {
            routes.iter_mut().for_each(|r| *r = Route::default());
            self.unknown.insert(topic, routes.len());
        }
        self.metadata = Ask { wanted: true, ..Ask::default() };
        self.unanswered.clear();
        self.coordinator = None;
        self.find = Ask { wanted: self.group.is_some(), ..Ask::default() };
        self.timer_at = None;
        self.cursor = 0;
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
