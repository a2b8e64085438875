//! A log cluster (Kafka in KRaft mode): a log broker whose replicas live on
//! broker nodes of their own, on the simulated network, with a controller
//! node that decides leaders and in-sync replica sets. A scenario asks for
//! one with `brokers = N` on a `kind = "log"` broker table: the table's own
//! node is the controller, and `NAME-1` .. `NAME-N` are the brokers. Each
//! can crash, be slowed, or be cut off by a network partition like any
//! node, so a partition can split the cluster.
//!
//! - [`layout`]: which broker holds which replicas (Kafka's assignment,
//!   rack-aware when the brokers stand in racks), and the nodes' ids.
//! - [`controller`]: broker liveness by heartbeats, fencing after the
//!   session timeout, leader elections (clean, unclean), and ISR changes
//!   proposed by leaders; it pushes every change to the brokers.
//! - [`node`]: a broker: its replicas' logs, leading (produce, acks, the
//!   high watermark, ISR proposals, serving consumers and followers) and
//!   following (fetching from the leader over the network, and
//!   truncating where its log diverged from the leader's).
//!
//! - [`txn_coordinator`]: the transaction coordinator of transactional
//!   ids placed on a broker; [`txn`]: a broker's part in transactions (as
//!   their coordinator, as a leader writing their records and markers, as
//!   the group coordinator committing their offsets, and serving
//!   `read_committed` fetches below the last stable offset).
//! - [`quorum`] and [`voter`]: with `controllers = N` (N > 1), the
//!   controller is a Raft quorum of N voters (KRaft): one is active, the
//!   others follow its metadata log and take over when it fails.
//! - [`group_log`]: the group coordinator on the leader of the group's
//!   `__consumer_offsets` partition, its state as records there, moving
//!   with that partition's leadership.
//!
//! - [`routes`]: a client's side: where partitions lead and which broker
//!   coordinates its group, as a producer or a group member learns them.
//!
//! What each leaves out is said in its module. The protocol is
//! [`crate::protocol::cluster`].

mod active;
pub mod controller;
mod follower;
mod group_log;
mod kind;
pub mod layout;
mod leader;
pub mod node;
pub mod quorum;
mod replica;
pub mod routes;
mod txn;
pub mod txn_coordinator;
pub mod voter;

pub use kind::{
    broker_name, controller as kind_controller, layout as kind_layout, voter_name, ClusterBrokerKind, ClusterMember,
    MAX_BROKERS, MAX_CONTROLLERS,
};
pub use layout::Layout;
pub use routes::{RouteTiming, Routes};
