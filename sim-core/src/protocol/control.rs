//! The control protocol: what an operator's controller (a Kubernetes
//! deployment, an autoscaler) says to the nodes it runs, and how it reads
//! a consumer group's lag from a log broker.
//!
//! - [`ControlMsg::Start`] and [`ControlMsg::Stop`] start and stop a node
//!   **gracefully**, as a pod is created or sent SIGTERM: any kind may
//!   handle them (a log consumer stops by committing what it processed and
//!   leaving its group; a kind that ignores them keeps running). Unlike
//!   [`crate::engine::Ctx::stop_node`] (a crash) nothing volatile is lost
//!   by surprise: the node itself decides what to finish.
//! - [`ControlMsg::LagQuery`] and [`ControlMsg::Lag`]: a controller asks a
//!   log broker for a group's lag, as KEDA's Kafka scaler asks the broker
//!   for the committed offsets and the end offsets of each partition. The
//!   answer comes over the network, so the controller acts on a lag that
//!   is one round trip old.
//!
//! Left out: the Kubernetes API server between the controller and the
//! pods (its latency is the network's), and readiness probes.

use super::{wire, MsgId, Observed, Protocol};
use crate::digest::Digest;

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMsg {
    /// Controller to node: start (a new replica is scheduled).
    Start,
    /// Controller to node: stop gracefully (a replica is removed).
    Stop,
    /// Controller to log broker: the lag of group `group`.
    LagQuery {
        /// The group's number at the broker.
        group: u16,
    },
    /// Log broker to controller: group `group` has `records` records not
    /// yet committed, the oldest appended `oldest_ns` ago (0: none waits).
    Lag {
        /// The group's number at the broker.
        group: u16,
        /// Records appended and not yet committed, over all partitions.
        records: u64,
        /// The age of the oldest such record, in nanoseconds.
        oldest_ns: u64,
    },
}

impl Protocol for ControlMsg {
    fn name(&self) -> &'static str {
        match self {
            ControlMsg::Start => "control-start",
            ControlMsg::Stop => "control-stop",
            ControlMsg::LagQuery { .. } => "lag-query",
            ControlMsg::Lag { .. } => "lag",
        }
    }

    fn id(&self) -> Option<MsgId> {
        None
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            ControlMsg::Start => digest.add(180),
            ControlMsg::Stop => digest.add(181),
            ControlMsg::LagQuery { group } => {
                digest.add(182);
                digest.add(u64::from(group));
            }
            ControlMsg::Lag { group, records, oldest_ns } => {
                digest.add(183);
                digest.add(u64::from(group));
                digest.add(records);
                digest.add(oldest_ns);
            }
        }
    }

    fn carried(&self, _out: &mut Vec<MsgId>) {}

    fn observe(&self, _see: &mut impl FnMut(Observed)) {}

    fn wire_bytes(&self) -> u64 {
        wire::CONTROL
    }
}

impl From<ControlMsg> for super::Msg {
    fn from(m: ControlMsg) -> Self {
        super::Msg::Control(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_carry_nothing_and_fold_apart() {
        let msgs = [
            ControlMsg::Start,
            ControlMsg::Stop,
            ControlMsg::LagQuery { group: 1 },
            ControlMsg::Lag { group: 1, records: 5, oldest_ns: 7 },
            ControlMsg::Lag { group: 1, records: 5, oldest_ns: 8 },
        ];
        let mut carried = Vec::new();
        msgs.iter().for_each(|m| m.carried(&mut carried));
        assert!(carried.is_empty());
        let digests: std::collections::BTreeSet<String> = msgs
            .iter()
            .map(|m| {
                let mut d = Digest::default();
                m.fold(&mut d);
                d.hex()
            })
            .collect();
        assert_eq!(digests.len(), msgs.len());
    }
}
