//! Where a cluster's replicas live: Kafka's replica assignment over the
//! brokers, and the network node of each broker and of the controller.
//!
//! The assignment follows Kafka's (`AdminUtils.assignReplicasToBrokers`):
//! the first replica of partition `p` of a topic goes to broker
//! `(start + p) % N`, and its followers to the brokers after it, shifted
//! by one more each time the partitions wrap around the brokers, so that
//! leadership and followers spread evenly. Kafka draws `start` at random;
//! here it is the topic's index, so runs repeat. With racks, the brokers
//! are first listed rack by rack in turn (one of rack 0, one of rack 1,
//! ...), and a partition's replicas are consecutive in that list, so they
//! fall in different racks while there are racks enough.
//!
//! The first replica of a partition is its preferred leader, and leads it
//! when the cluster starts.

use super::super::log::LogSpec;
use crate::message::NodeId;
use crate::protocol::cluster::BrokerIx;

/// A topic's partitions in the cluster's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// The number of its first partition.
    pub first: u32,
    /// How many partitions it has.
    pub partitions: u32,
}

/// A cluster's nodes and its replica assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The controller's node (in a broker's copy: the controller voter it
    /// believes active, which it heartbeats to).
    pub controller: NodeId,
    /// The controller quorum's voters' nodes (the first is the cluster's
    /// own node; just it, unless `controllers` > 1).
    pub voters: Vec<NodeId>,
    /// Each broker's node, by broker index.
    pub brokers: Vec<NodeId>,
    /// Each broker's rack.
    pub racks: Vec<u16>,
    /// The topics, in name order.
    pub topics: Vec<TopicLayout>,
    /// Per partition (numbered across topics), its replicas' brokers,
    /// preferred leader first.
    pub replicas: Vec<Vec<BrokerIx>>,
}

impl Layout {
    /// The layout of the cluster `spec` describes, whose controller is node
    /// `controller` and whose brokers are nodes `brokers`.
    pub fn new(spec: &LogSpec, controller: NodeId, brokers: Vec<NodeId>) -> Layout {
        let n = brokers.len().max(1);
        let racks_n = spec.racks.unwrap_or(1).max(1) as usize;
        let racks: Vec<u16> = (0..n).map(|i| (i % racks_n) as u16).collect();
        let order = rack_alternated(&racks);
        let rf = (spec.replicas.max(1) as usize).min(n);
        let mut topics = Vec::new();
        let mut replicas = Vec::new();
        for (ti, t) in spec.topics.values().enumerate() {
            let parts = t.partitions.max(1);
            topics.push(TopicLayout { first: replicas.len() as u32, partitions: parts });
            for p in 0..parts as usize {
                replicas.push(assign(&order, ti, p, rf, racks_n > 1));
            }
        }
        Layout { controller, voters: vec![controller], brokers, racks, topics, replicas }
    }

    /// The layout with these controller voters (the first leads at start).
    pub fn with_voters(mut self, voters: Vec<NodeId>) -> Layout {
        if let Some(&first) = voters.first() {
            self.controller = first;
            self.voters = voters;
        }
        self
    }

    /// Whether `node` is one of the controller voters.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    /// The number of brokers.
    pub fn broker_count(&self) -> usize {
        self.brokers.len()
    }

    /// The number of partitions, across topics.
    pub fn partition_count(&self) -> usize {
        self.replicas.len()
    }

    /// The broker index of node `node`, if it is one of the brokers.
    pub fn broker_of(&self, node: NodeId) -> Option<BrokerIx> {
        self.brokers.iter().position(|&b| b == node).map(|i| i as BrokerIx)
    }

    /// The node of broker `broker`.
    pub fn node_of(&self, broker: BrokerIx) -> NodeId {
        self.brokers[usize::from(broker)]
    }

    /// The broker that coordinates the consumer group named `group`: in
    /// Kafka, the leader of partition `abs(hash(group)) % 50` of
    /// `__consumer_offsets` (50 partitions by default,
    /// `offsets.topic.num.partitions`), which is that partition's
    /// preferred leader while no election moved it. That internal topic is
    /// not modelled, so the coordinator stays on this broker (see
    /// [`crate::broker::cluster`]).
    pub fn coordinator(&self, group: &str) -> BrokerIx {
        let partition = java_hash(group) & 0x7fff_ffff;
        (partition % OFFSETS_PARTITIONS % self.brokers.len().max(1) as u32) as BrokerIx
    }

    /// The cluster-wide number of partition `partition` of topic `topic`.
    pub fn global(&self, topic: u16, partition: u32) -> Option<u32> {
        let t = self.topics.get(usize::from(topic))?;
        (partition < t.partitions).then_some(t.first + partition)
    }

    /// The (topic, partition) of cluster-wide partition `global`.
    pub fn local(&self, global: u32) -> (u16, u32) {
        let ti = self.topics.iter().rposition(|t| t.first <= global).unwrap_or(0);
        (ti as u16, global - self.topics[ti].first)
    }
}

/// Kafka's `offsets.topic.num.partitions` default.
const OFFSETS_PARTITIONS: u32 = 50;

/// Java's `String.hashCode` (of the UTF-16 units; group names are ASCII
/// here), which Kafka uses to place a group.
pub(super) fn java_hash(s: &str) -> u32 {
    s.encode_utf16().fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)))
}

/// The brokers listed rack by rack in turn (with one rack: in order).
fn rack_alternated(racks: &[u16]) -> Vec<BrokerIx> {
    let max_rack = racks.iter().copied().max().unwrap_or(0);
    let mut by_rack: Vec<Vec<BrokerIx>> = vec![Vec::new(); usize::from(max_rack) + 1];
    for (b, &r) in racks.iter().enumerate() {
        by_rack[usize::from(r)].push(b as BrokerIx);
    }
    let mut out = Vec::with_capacity(racks.len());
    for round in 0..racks.len() {
        out.extend(by_rack.iter().filter_map(|brokers| brokers.get(round)));
    }
    out
}

/// The replicas of partition `p` of topic number `topic`: `rf` brokers
/// from `order`. Rack-aware placement takes consecutive brokers of the
/// rack-alternated list; otherwise followers are shifted as Kafka's are.
fn assign(order: &[BrokerIx], topic: usize, p: usize, rf: usize, rack_aware: bool) -> Vec<BrokerIx> {
    let n = order.len();
    let start = topic % n;
    let first = (start + p) % n;
    let mut out = vec![order[first]];
    if n == 1 {
        return out;
    }
    let shift = if rack_aware { 0 } else { (topic + p / n) % (n - 1) };
    for j in 0..rf - 1 {
        let next = (first + 1 + (shift + j) % (n - 1)) % n;
        out.push(order[next]);
    }
    out
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
