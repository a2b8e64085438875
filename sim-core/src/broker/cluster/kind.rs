//! The nodes of a log cluster as the scenario sees them: the cluster's
//! table (`kind = "log"` with `brokers = N`) is its controller, and makes
//! one member node per broker, `NAME-1` .. `NAME-N`, of the
//! `log-cluster-broker` kind, which no table names.

use super::layout::Layout;
use crate::broker::log::MAX_BROKERS;
use crate::broker::{LogGroups, LogSpec};
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Kind, Member, Node};
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
        let n = spec.brokers.filter(|n| (1..=MAX_BROKERS).contains(n)).unwrap_or(0);
        (0..n)
            .map(|i| {
                let member = ClusterMember { cluster: name.to_string(), index: i as u16 };
                Member::new(broker_name(name, i as u16), ClusterBrokerKind, member)
            })
            .collect()
    }
}

/// The node name of broker `index` of cluster `cluster`.
pub fn broker_name(cluster: &str, index: u16) -> String {
    format!("{cluster}-{}", index + 1)
}

/// The layout of cluster `name`, whose spec is `spec`, with its nodes' ids
/// and the offsets partitions of the groups its consumers noted.
pub fn layout(build: &mut Build, name: &str, spec: &LogSpec) -> Layout {
    let brokers = (0..spec.brokers.unwrap_or(0)).map(|i| build.id(&broker_name(name, i as u16))).collect();
    let layout = Layout::new(spec, build.id(name), brokers);
    layout.with_groups(build.note::<LogGroups>(name).groups.iter().map(|g| g.name.as_str()))
}

impl Kind for ClusterBrokerKind {
    type Spec = ClusterMember;
    const NAME: &'static str = "log-cluster-broker";
    const SECTION: &'static str = "brokers";

    fn build(&self, _node: &Node, m: &ClusterMember, build: &mut Build) -> Box<dyn DynComponent> {
        let spec = build.topology().spec::<LogSpec>(&m.cluster).expect("a member's cluster is a log broker").clone();
        let layout = layout(build, &m.cluster, &spec);
        let groups = build.note::<LogGroups>(&m.cluster).groups.clone();
        boxed(super::node::ClusterBroker::new(&spec, layout, m.index, groups))
    }
}
