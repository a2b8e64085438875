//! The wire vocabulary: every message a component can send another. One enum
//! for the whole simulator keeps dispatch a `match` and lets the engine and
//! the ledger observe the messages that matter (a broker's ack reaching a
//! producer, a delivery reaching a consumer) without trusting components.

/// Global identity of one produced message, assigned by the ledger in
/// production order (0, 1, 2, ...).
pub type MsgId = u64;

/// Index of a node (component) in the simulation, in topology order.
pub type NodeId = u32;

/// The part of a produced message every hop carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The ledger's identity for the message.
    pub id: MsgId,
    /// The message key (ordering is judged within a key).
    pub key: u64,
}

/// A message in flight between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Producer to broker: append/enqueue this record.
    Publish {
        /// The record.
        rec: Record,
        /// Whether the producer waits for a [`Msg::PublishAck`].
        want_ack: bool,
        /// Which attempt this is (1 for the first send).
        attempt: u32,
        /// The idempotent producer's session (0: not idempotent).
        epoch: u32,
        /// The idempotent producer's sequence number within `epoch`.
        seq: u64,
    },
    /// Broker to producer: the publish of `id` was accepted or refused.
    PublishAck {
        /// Which message.
        id: MsgId,
        /// False when the broker refused it (queue full).
        accepted: bool,
        /// The attempt being answered.
        attempt: u32,
    },
    /// Broker to consumer: process this record.
    Deliver {
        /// The record.
        rec: Record,
        /// Broker-assigned delivery tag, echoed back in the ack.
        tag: u64,
        /// True when this is a redelivery after a timeout or a reconnect.
        redelivered: bool,
    },
    /// Consumer to broker: the delivery `tag` is done; forget it.
    Ack {
        /// The delivery tag from [`Msg::Deliver`].
        tag: u64,
    },
    /// Consumer to broker: processing delivery `tag` failed. With `requeue`
    /// the broker delivers it again; without, it dead-letters it.
    Nack {
        /// The delivery tag from [`Msg::Deliver`].
        tag: u64,
        /// Whether to try again.
        requeue: bool,
    },
    /// Consumer to broker: (re)connect and accept up to `prefetch` unacked
    /// deliveries at once. Sent at start and after a restart, and repeated
    /// until the broker confirms with [`Msg::Subscribed`].
    Subscribe {
        /// How many unacknowledged deliveries the consumer accepts at once.
        prefetch: u32,
        /// Which (re)start of the consumer this is: a repeat with the same
        /// session is a retransmission, not a reconnect.
        session: u32,
        /// Auto-ack: the broker forgets each message the moment it sends it
        /// and sends without limit (prefetch does not apply).
        auto_ack: bool,
    },
    /// Broker to consumer: the subscription of `session` is in place.
    Subscribed {
        /// The session confirmed: a confirmation of an older one is stale.
        session: u32,
    },
    /// Sent by the engine on behalf of a node whose process died, to every
    /// node it had sent to: its connections closed. The network may delay
    /// or lose it like any message.
    PeerDown,
    /// Broker to consumer: your subscription of `session` was cancelled
    /// (you held a delivery too long); everything you held was taken back.
    Cancelled {
        /// The session cancelled: a notice for an older session is stale.
        session: u32,
    },
}

impl Msg {
    /// The produced message this carries, if any.
    pub fn msg_id(&self) -> Option<MsgId> {
        match self {
            Msg::Publish { rec, .. } | Msg::Deliver { rec, .. } => Some(rec.id),
            Msg::PublishAck { id, .. } => Some(*id),
            Msg::Ack { .. }
            | Msg::Nack { .. }
            | Msg::Subscribe { .. }
            | Msg::Subscribed { .. }
            | Msg::Cancelled { .. }
            | Msg::PeerDown => None,
        }
    }

    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Publish { .. } => "publish",
            Msg::PublishAck { .. } => "publish-ack",
            Msg::Deliver { .. } => "deliver",
            Msg::Ack { .. } => "ack",
            Msg::Subscribe { .. } => "subscribe",
            Msg::Subscribed { .. } => "subscribed",
            Msg::Nack { .. } => "nack",
            Msg::Cancelled { .. } => "cancelled",
            Msg::PeerDown => "peer-down",
        }
    }

    /// Folds every field into `digest`, so that two histories that differ in
    /// any message differ in digest.
    pub(crate) fn fold(&self, digest: &mut crate::trace::Digest) {
        digest.add(self.code());
        match *self {
            Msg::Publish { rec, want_ack, attempt, epoch, seq } => {
                digest.add(rec.id);
                digest.add(rec.key);
                digest.add(u64::from(want_ack) << 32 | u64::from(attempt));
                digest.add(u64::from(epoch));
                digest.add(seq);
            }
            Msg::PublishAck { id, accepted, attempt } => {
                digest.add(id);
                digest.add(u64::from(accepted) << 32 | u64::from(attempt));
            }
            Msg::Deliver { rec, tag, redelivered } => {
                digest.add(rec.id);
                digest.add(rec.key);
                digest.add(tag);
                digest.add(u64::from(redelivered));
            }
            Msg::Ack { tag } => digest.add(tag),
            Msg::Nack { tag, requeue } => {
                digest.add(tag);
                digest.add(u64::from(requeue));
            }
            Msg::Subscribe { prefetch, session, auto_ack } => {
                digest.add(u64::from(prefetch) << 32 | u64::from(session));
                digest.add(u64::from(auto_ack));
            }
            Msg::Cancelled { session } | Msg::Subscribed { session } => digest.add(u64::from(session)),
            Msg::PeerDown => {}
        }
    }

    pub(crate) fn code(&self) -> u64 {
        match self {
            Msg::Publish { .. } => 1,
            Msg::PublishAck { .. } => 2,
            Msg::Deliver { .. } => 3,
            Msg::Ack { .. } => 4,
            Msg::Subscribe { .. } => 5,
            Msg::Subscribed { .. } => 6,
            Msg::Nack { .. } => 7,
            Msg::Cancelled { .. } => 8,
            Msg::PeerDown => 9,
        }
    }
}
