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
//!
//! **`__consumer_offsets`.** After the topics' partitions come the internal
//! partitions of Kafka's offsets topic, where the group coordinators write
//! ([`Layout::with_groups`]): group `g` is coordinated by the leader of
//! partition `abs(hashCode(g)) % 50` of that topic (50 is Kafka's
//! `offsets.topic.num.partitions`). Only the partitions some group of the
//! scenario maps to are laid out, not all 50 (the others would hold
//! nothing). They are placed as a topic's partitions are, as if the offsets
//! topic were one more topic with start index 0 (Kafka draws it at
//! random), with `min(3, brokers)` replicas (Kafka's
//! `offsets.topic.replication.factor` is 3; Kafka refuses to create the
//! topic on fewer brokers, here it gets one replica per broker). Clients
//! never see them: metadata answers name topics only.

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
    /// Per partition (numbered across topics, then the internal offsets
    /// partitions), its replicas' brokers, preferred leader first.
    pub replicas: Vec<Vec<BrokerIx>>,
    /// The internal offsets partitions laid out: (number in
    /// `__consumer_offsets`, cluster-wide number), in the first's order.
    pub offsets: Vec<(u32, u32)>,
    /// Whether racks place the replicas (for the offsets partitions added later).
    rack_order: Option<Vec<BrokerIx>>,
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
        let rack_order = (racks_n > 1).then_some(order);
        Layout {
            controller,
            voters: vec![controller],
            brokers,
            racks,
            topics,
            replicas,
            offsets: Vec::new(),
            rack_order,
        }
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

    /// The same layout with the offsets partitions of the groups named
    /// `groups` (those it lacks), each replicated on `min(3, brokers)`.
    pub fn with_groups<'a>(mut self, groups: impl IntoIterator<Item = &'a str>) -> Layout {
        let mut wanted: Vec<u32> = groups.into_iter().map(offsets_partition).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let n = self.brokers.len().max(1);
        let order = self.rack_order.clone().unwrap_or_else(|| (0..n as BrokerIx).collect());
        let rf = OFFSETS_REPLICATION.min(n);
        for p in wanted {
            if self.offsets.iter().any(|&(q, _)| q == p) {
                continue;
            }
            let global = self.replicas.len() as u32;
            self.replicas.push(assign(&order, 0, p as usize, rf, self.rack_order.is_some()));
            self.offsets.push((p, global));
        }
        self.offsets.sort_unstable();
        self
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

    /// The cluster-wide number of the offsets partition of the group named
    /// `group` (Kafka: partition `abs(hashCode(group)) % 50` of
    /// `__consumer_offsets`; its leader coordinates the group), if laid out.
    pub fn offsets_of(&self, group: &str) -> Option<u32> {
        let p = offsets_partition(group);
        self.offsets.iter().find(|&&(q, _)| q == p).map(|&(_, global)| global)
    }

    /// Whether cluster-wide partition `global` is an internal offsets partition.
    pub fn is_offsets(&self, global: u32) -> bool {
        self.offsets.iter().any(|&(_, g)| g == global)
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

/// Kafka's `offsets.topic.replication.factor` default.
const OFFSETS_REPLICATION: usize = 3;

/// The number of the `__consumer_offsets` partition of group `group`.
pub fn offsets_partition(group: &str) -> u32 {
    (java_hash(group) & 0x7fff_ffff) % OFFSETS_PARTITIONS
}

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
