//! The nodes of a log cluster as the scenario sees them: the cluster's
//! table (`kind = "log"` with `brokers = N`) is its controller, and makes
//! one member node per broker, `NAME-1` .. `NAME-N`, of the
//! `log-cluster-broker` kind, which no table names. With `controllers = N`
//! (N > 1), it also makes the other controller voters,
//! `NAME-controller-2` .. `NAME-controller-N`, of the
//! `log-cluster-controller` kind; the table's node is voter 1.

use super::layout::Layout;
use crate::broker::{LogGroups, LogSpec};
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Kind, KindPlot, Member, Node};
use serde::Deserialize;

/// A broker of a cluster: which cluster, and its index there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterMember {
    /// The cluster's table name (its controller's node).
    pub cluster: String,
    /// The broker's index (0-based; its node is `cluster-(index+1)`).
    pub index: u16,
}

/// The kind of a cluster's broker nodes.
pub struct ClusterBrokerKind;

impl ClusterBrokerKind {
    /// The member nodes of cluster `name` as `spec` says (none when it is
    /// a single node, or when `brokers` is out of range: validation refuses
    /// it, and a huge number must not be built first).
    pub fn members(name: &str, spec: &LogSpec) -> Vec<Member> {
        // The members are listed before the spec is validated: counts past
        // the valid ranges, refused later, must not allocate as asked.
        let n = spec.brokers.unwrap_or(0).min(MAX_BROKERS);
        let brokers = (0..n).map(|i| {
            let member = ClusterMember { cluster: name.to_string(), index: i as u16 };
            Member::new(broker_name(name, i as u16), ClusterBrokerKind, member)
        });
        let voters = (1..voter_count(spec).min(MAX_CONTROLLERS as usize)).map(|i| {
            let member = ClusterMember { cluster: name.to_string(), index: i as u16 };
            Member::new(voter_name(name, i as u16), ControllerVoterKind, member)
        });
        brokers.chain(voters).collect()
    }
}

/// The most brokers a cluster may have.
pub const MAX_BROKERS: u32 = 64;
/// The most controller voters a cluster may have.
pub const MAX_CONTROLLERS: u32 = 7;

/// The node name of broker `index` of cluster `cluster`.
pub fn broker_name(cluster: &str, index: u16) -> String {
    format!("{cluster}-{}", index + 1)
}

/// The node name of controller voter `index` (0-based; voter 0 is the
/// cluster's own node) of cluster `cluster`.
pub fn voter_name(cluster: &str, index: u16) -> String {
    if index == 0 {
        cluster.to_string()
    } else {
        format!("{cluster}-controller-{}", index + 1)
    }
}

/// The number of controller voters of a cluster (`controllers`, 1 unset).
pub fn voter_count(spec: &LogSpec) -> usize {
    spec.controllers.unwrap_or(1).max(1) as usize
}

/// The layout of cluster `name`, whose spec is `spec`, with its nodes' ids
/// and the offsets partitions of the groups its consumers noted.
pub fn layout(build: &mut Build, name: &str, spec: &LogSpec) -> Layout {
    let brokers = (0..spec.brokers.unwrap_or(0)).map(|i| build.id(&broker_name(name, i as u16))).collect();
    let voters = (0..voter_count(spec)).map(|i| build.id(&voter_name(name, i as u16))).collect();
    let layout = Layout::new(spec, build.id(name), brokers).with_voters(voters);
    layout.with_groups(build.note::<LogGroups>(name).groups.iter().map(|g| g.name.as_str()))
}

/// The controller of cluster `name`: one node, or voter 0 of a quorum.
pub fn controller(build: &mut Build, name: &str, spec: &LogSpec) -> Box<dyn DynComponent> {
    let layout = layout(build, name, spec);
    if voter_count(spec) > 1 {
        boxed(super::voter::Voter::new(spec, layout, 0))
    } else {
        boxed(super::controller::Controller::new(spec, layout))
    }
}

/// The kind of a cluster's controller voters other than its own node.
pub struct ControllerVoterKind;

impl Kind for ControllerVoterKind {
    type Spec = ClusterMember;
    const NAME: &'static str = "log-cluster-controller";
    const SECTION: &'static str = "brokers";

    fn build(&self, _node: &Node, m: &ClusterMember, build: &mut Build) -> Box<dyn DynComponent> {
        let spec = build.topology().spec::<LogSpec>(&m.cluster).expect("a member's cluster is a log broker").clone();
        let layout = layout(build, &m.cluster, &spec);
        boxed(super::voter::Voter::new(&spec, layout, m.index as u8))
    }
}

impl Kind for ClusterBrokerKind {
    type Spec = ClusterMember;
    const NAME: &'static str = "log-cluster-broker";
    const SECTION: &'static str = "brokers";
    const PLOTS: &'static [KindPlot] = &[KindPlot {
        name: "cluster-health",
        title: "Cluster health, as an operator watches it",
        y_label: "partitions (brokers for fenced)",
        gauges: &["under_replicated_partitions", "under_min_isr_partitions", "offline_partitions", "fenced_brokers"],
    }];

    fn build(&self, _node: &Node, m: &ClusterMember, build: &mut Build) -> Box<dyn DynComponent> {
        let spec = build.topology().spec::<LogSpec>(&m.cluster).expect("a member's cluster is a log broker").clone();
        let layout = layout(build, &m.cluster, &spec);
        let note = build.note::<LogGroups>(&m.cluster);
        let (groups, txn) = (note.groups.clone(), note.txn.clone());
        boxed(super::node::ClusterBroker::new(&spec, layout, m.index, groups).with_transactions(txn))
    }
}
