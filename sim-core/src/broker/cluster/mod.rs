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
//! - [`group_log`]: the group coordinator on the leader of the group's
//!   `__consumer_offsets` partition, its state as records there, moving
//!   with that partition's leadership.
//!
//! - [`routes`]: a client's side: where partitions lead and which broker
//!   coordinates its group, as a producer or a group member learns them.
//!
//! What each leaves out is said in its module. The protocol is
//! [`crate::protocol::cluster`].

pub mod controller;
mod follower;
mod group_log;
mod kind;
pub mod layout;
mod leader;
pub mod node;
mod replica;
pub mod routes;

pub use kind::{broker_name, layout as kind_layout, ClusterBrokerKind, ClusterMember};
pub use layout::Layout;
pub use routes::{RouteTiming, Routes};
