//! A RabbitMQ-like cluster (RabbitMQ 3.13/4.x): `[brokers.NAME]` with
//! `kind = "queue"` and `nodes = N` makes member nodes `NAME-1` ..
//! `NAME-N` of the `queue-cluster-node` kind, each a broker node on the
//! simulated network that can crash, be cut off by a partition, or be lost
//! with its disk (`node-loss`). The table's own node `NAME` is only the
//! cluster's name: it runs nothing, and clients must connect to a member.
//!
//! The cluster holds one queue (the default queue), of `queue_type`:
//!
//! - **classic** (RabbitMQ's default for a declared queue): unreplicated,
//!   on node `home`. It is durable (`durable`, default true): it survives
//!   its node's restart, but it is gone when its node is lost, with every
//!   message it held, confirmed or not (cause `node_lost`).
//! - **quorum**: a Raft group of `group_size` replicas (default 3, or
//!   every node in a smaller cluster, as `x-quorum-initial-group-size`
//!   defaults) on `home` and the nodes after it. The leader appends
//!   enqueues and settlements (ack, dead-letter, expiry) to its log,
//!   replicates them, and commits an entry once a majority of the replicas
//!   has it; a publish is confirmed only then, and only committed messages
//!   are delivered. A leader that stops being heard from is replaced by an
//!   election (pre-vote, then vote, with terms); a leader cut off in a
//!   minority cannot commit, so its clients' publishes time out; when it
//!   hears of a newer term it steps down and its uncommitted entries are
//!   truncated away (cause `truncated_after_partition` if such a message
//!   is never published again). Every message is persisted.
//!
//! Every member serves the channels of the clients connected to it: it
//! forwards publishes to the queue's leader (its home, for a classic
//! queue) and relays the confirm back, and forwards consumers'
//! subscriptions, acks and nacks there. See `node.rs` for what is left
//! out, and docs/concepts.md for the simplifications.

mod node;
mod raft;

pub use node::{NodeTimer, QueueClusterNode};

use crate::broker::QueueSpec;
use crate::engine::{boxed, Component, Ctx, DynComponent, NoTimer};
use crate::kind::{Build, Invalid, Kind, Member, Node};
use crate::message::{Msg, NodeId};
use crate::time::{ms_to_ns, Duration};
use serde::{Deserialize, Serialize};

/// The type of a cluster's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueType {
    /// Unreplicated, on one node.
    #[default]
    Classic,
    /// Raft-replicated on `group_size` nodes.
    Quorum,
}

/// The most nodes a queue cluster may have.
pub const MAX_NODES: u32 = 16;

/// RabbitMQ's default quorum queue group size (its initial replica count).
pub const DEFAULT_GROUP_SIZE: u32 = 3;

/// Ra's timing, used by every quorum queue: the leader's heartbeat (Ra's
/// broadcast time, 100 ms), and a follower's election timeout, drawn from
/// 1 to 2 s (Ra's "long" timeout: aten's 1 s poll interval plus up to
/// twice five broadcast times).
pub(crate) const HEARTBEAT_MS: f64 = 100.0;
pub(crate) const ELECTION_MIN_MS: f64 = 1000.0;
pub(crate) const ELECTION_SPREAD_MS: f64 = 1000.0;

/// The node name of member `index` (0-based) of cluster `cluster`.
pub fn node_name(cluster: &str, index: u32) -> String {
    format!("{cluster}-{}", index + 1)
}

/// A member of a queue cluster: which cluster, and its index there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueueClusterMember {
    /// The cluster's table name.
    pub cluster: String,
    /// The member's index (0-based; its node is `cluster-(index+1)`).
    pub index: u32,
}

/// The member nodes of a `queue` table with `nodes = N`.
pub(crate) fn members(name: &str, q: &QueueSpec) -> Vec<Member> {
    // Listed before validation: a count out of range must not allocate.
    let n = q.nodes.unwrap_or(0).min(MAX_NODES);
    (0..n)
        .map(|i| {
            let m = QueueClusterMember { cluster: name.to_string(), index: i };
            Member::new(node_name(name, i), QueueClusterNodeKind, m)
        })
        .collect()
}

/// Checks a `queue` table's cluster fields (nothing to check without `nodes`).
pub(crate) fn validate(node: &Node, q: &QueueSpec) -> Result<(), Invalid> {
    let Some(n) = q.nodes else {
        for (field, set) in
            [("queue_type", q.queue_type.is_some()), ("home", q.home.is_some()), ("group_size", q.group_size.is_some())]
        {
            if set {
                return node.fail(field, "applies only to a cluster: set `nodes`");
            }
        }
        return Ok(());
    };
    if !(1..=MAX_NODES).contains(&n) {
        return node.fail("nodes", format!("expected from 1 to {MAX_NODES} nodes, got {n}"));
    }
    if q.home.is_some_and(|h| h == 0 || h > n) {
        return node.fail("home", format!("expected a node number from 1 to {n}"));
    }
    let quorum = q.queue_type == Some(QueueType::Quorum);
    if let Some(g) = q.group_size {
        if !quorum {
            return node.fail("group_size", "only a quorum queue has replicas: set queue_type = \"quorum\"");
        }
        if g == 0 || g > n {
            return node.fail("group_size", format!("expected from 1 to {n} (the cluster's nodes)"));
        }
    }
    if quorum && !q.durable {
        return node.fail("durable", "a quorum queue is always durable (RabbitMQ refuses a non-durable one)");
    }
    let not_modelled = [
        ("subscriptions", !q.subscriptions.is_empty()),
        ("capacity", q.capacity.is_some()),
        ("queues", !q.queues.is_empty()),
        ("exchanges", !q.exchanges.is_empty()),
        ("dead_letter_exchange", q.dead_letter_exchange.is_some()),
        ("overflow", q.overflow != crate::broker::Overflow::default()),
    ];
    for (field, set) in not_modelled {
        if set {
            return node.fail(field, "not modelled on a cluster (it holds one default queue, unbounded)");
        }
    }
    Ok(())
}

/// A quorum queue's `x-delivery-limit` unless set (RabbitMQ 4.0+).
pub const QUORUM_DELIVERY_LIMIT: u32 = 20;

/// Why a client may not name `name` (a cluster's table): it runs nothing.
pub fn refuse_cluster_name(topology: &crate::kind::Topology, name: &str) -> Option<String> {
    let n = topology.spec::<QueueSpec>(name)?.nodes?;
    Some(format!(
        "`{name}` is a cluster of {n} nodes: connect to one of them (`{}` .. `{}`)",
        node_name(name, 0),
        node_name(name, n.saturating_sub(1))
    ))
}

/// The component of a cluster's table node: the cluster's name, idle.
pub(crate) fn table_node() -> Box<dyn DynComponent> {
    boxed(Idle)
}

struct Idle;

impl Component for Idle {
    type Timer = NoTimer;
    fn start(&mut self, _: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, _: &mut Ctx<NoTimer>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, _: &mut Ctx<NoTimer>, _: NoTimer) {}
    fn crash(&mut self) {}
}

/// What every member of one cluster knows about it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Every member's node id, by index.
    pub nodes: Vec<NodeId>,
    /// The classic queue's node, or the quorum queue's first leader (an index).
    pub home: usize,
    /// The quorum queue's replicas (node ids); empty for a classic queue.
    pub replicas: Vec<NodeId>,
    /// Whether a classic queue survives its node's restart.
    pub durable: bool,
    /// The queue's settings.
    pub redelivery_ns: Duration,
    /// See [`QueueSpec::delivery_limit`]: a quorum queue's is 20 unless set
    /// (RabbitMQ 4.x), a classic queue's none.
    pub delivery_limit: Option<u32>,
    /// See [`QueueSpec::ttl_ms`].
    pub ttl_ns: Option<Duration>,
    /// Where dead letters go.
    pub dead_letter: Option<NodeId>,
    /// The leader's heartbeat period.
    pub heartbeat_ns: Duration,
    /// The shortest election timeout.
    pub election_min_ns: Duration,
    /// How much longer an election timeout may be drawn.
    pub election_spread_ns: Duration,
}

impl Layout {
    /// The layout of cluster `name`, whose spec is `q`, with ids from `id`.
    pub fn new(q: &QueueSpec, id: impl Fn(&str) -> NodeId, name: &str) -> Layout {
        let n = q.nodes.unwrap_or(1);
        let nodes: Vec<NodeId> = (0..n).map(|i| id(&node_name(name, i))).collect();
        let home = q.home.unwrap_or(1).saturating_sub(1) as usize;
        let replicas = if q.queue_type == Some(QueueType::Quorum) {
            let g = q.group_size.unwrap_or(DEFAULT_GROUP_SIZE.min(n)) as usize;
            (0..g).map(|k| nodes[(home + k) % nodes.len()]).collect()
        } else {
            Vec::new()
        };
        Layout {
            nodes,
            home,
            replicas,
            durable: q.durable,
            redelivery_ns: ms_to_ns(q.redelivery_timeout_ms.0).max(1),
            // RabbitMQ 4.x gives a quorum queue a delivery limit of 20.
            delivery_limit: q
                .delivery_limit
                .or((q.queue_type == Some(QueueType::Quorum)).then_some(QUORUM_DELIVERY_LIMIT)),
            ttl_ns: q.ttl_ms.map(|t| ms_to_ns(t.0)),
            dead_letter: q.dead_letter.as_deref().map(&id),
            heartbeat_ns: ms_to_ns(HEARTBEAT_MS),
            election_min_ns: ms_to_ns(ELECTION_MIN_MS),
            election_spread_ns: ms_to_ns(ELECTION_SPREAD_MS),
        }
    }

    /// Whether the queue is a quorum queue.
    pub fn quorum(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// Votes (or copies) that make a majority of the replicas.
    pub fn majority(&self) -> usize {
        self.replicas.len() / 2 + 1
    }
}

/// The kind of a queue cluster's member nodes (no table names it).
pub struct QueueClusterNodeKind;

impl Kind for QueueClusterNodeKind {
    type Spec = QueueClusterMember;
    const NAME: &'static str = "queue-cluster-node";
    const SECTION: &'static str = "brokers";

    fn build(&self, _node: &Node, m: &QueueClusterMember, build: &mut Build) -> Box<dyn DynComponent> {
        let q = build.topology().spec::<QueueSpec>(&m.cluster).expect("a member's cluster is a queue broker").clone();
        let layout = Layout::new(&q, |n| build.id(n), &m.cluster);
        boxed(QueueClusterNode::new(layout, m.index as usize))
    }
}
