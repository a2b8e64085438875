//! The queue protocol (AMQP-like), spoken between producers, consumers,
//! clients and the queue broker: publish and its confirm, push delivery
//! with a delivery tag, ack and nack, and the subscribe handshake (a
//! consumer asks until the broker confirms; the broker may cancel it).
//!
//! A publish names its route: the broker's number for the exchange and
//! routing key its publisher uses (see `broker::queue::exchange`).
//!
//! Publisher confirms: a producer's publishes are numbered on its channel
//! (delivery tags from 1, a new channel at each start of the producer),
//! and the broker may confirm several at once (`multiple`: every tag up to
//! and including this one) or refuse one (a nack: `accepted = false`).
//! Publishes that are not numbered (tag 0: a consumer's forward, a client's
//! request, a dead-lettered message) are answered one by one.
//!
//! Left out: the `mandatory` flag, basic.get (delivery is push only), and
//! multiple nacks (each refusal is nacked alone).

use super::{MsgId, Observed, Protocol, Record, Seen};
use crate::digest::Digest;

/// A message of the queue protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueMsg {
    /// Producer to broker: enqueue this record.
    Publish {
        /// The record.
        rec: Record,
        /// Whether the producer waits for a [`QueueMsg::PublishAck`].
        want_ack: bool,
        /// Which attempt this is (1 for the first send).
        attempt: u32,
        /// The producer's channel (its session: 1 at its first start, one
        /// more at each restart; 0 for a publish that is not numbered).
        channel: u32,
        /// The publish's delivery tag on `channel`, from 1 (0: not numbered,
        /// answered alone); a resend is a new publish with a new tag. (32
        /// bits on the wire, to keep every message within 48 bytes: a
        /// channel's tags stay far below 2^32 within a run's event budget.)
        tag: u32,
        /// AMQP's delivery mode 2: a durable queue keeps it across a restart
        /// (and confirms it once it is on disk); transient (1) otherwise.
        persistent: bool,
        /// Where it goes: the broker's number for the exchange and routing
        /// key the publisher names (0: the broker's implicit route, see
        /// `broker::queue::exchange`).
        route: u16,
        /// The message's own TTL in whole ms (AMQP's `expiration` property),
        /// or [`NO_EXPIRATION`] (kept to 4 bytes: every event pays for
        /// the largest message).
        expiration: u32,
    },
    /// Broker to producer: the publish of `id` was accepted or refused.
    PublishAck {
        /// Which message.
        id: MsgId,
        /// False when the broker refused it (queue full).
        accepted: bool,
        /// The attempt being answered (of `id`).
        attempt: u32,
        /// The delivery tag answered (0: an unnumbered publish).
        tag: u64,
        /// A confirm of every tag of the channel up to and including `tag`.
        multiple: bool,
        /// The other messages a `multiple` confirm covers (the broker's own
        /// record, carried so that the ledger sees every confirmed id; a
        /// real basic.ack carries only the tag and the flag).
        also: Box<[MsgId]>,
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
        /// The delivery tag from [`QueueMsg::Deliver`].
        tag: u64,
    },
    /// Consumer to broker: processing delivery `tag` failed. With `requeue`
    /// the broker delivers it again; without, it dead-letters it.
    Nack {
        /// The delivery tag from [`QueueMsg::Deliver`].
        tag: u64,
        /// Whether to try again.
        requeue: bool,
    },
    /// Consumer to broker: (re)connect and accept up to `prefetch` unacked
    /// deliveries at once. Sent at start and after a restart, and repeated
    /// until the broker confirms with [`QueueMsg::Subscribed`].
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
    /// Broker to consumer: your subscription of `session` was cancelled
    /// (you held a delivery too long); everything you held was taken back.
    Cancelled {
        /// The session cancelled: a notice for an older session is stale.
        session: u32,
    },
}

/// A publish's `expiration` when the message has no TTL of its own.
pub const NO_EXPIRATION: u32 = u32::MAX;

/// A plain publish of `rec` (not numbered on a confirm channel, and
/// transient, the clients' default), as a forwarding consumer or a client
/// sends it.
pub fn publish(rec: Record, want_ack: bool, attempt: u32) -> QueueMsg {
    QueueMsg::Publish {
        rec,
        want_ack,
        attempt,
        channel: 0,
        tag: 0,
        persistent: false,
        route: 0,
        expiration: NO_EXPIRATION,
    }
}

/// The answer to one publish (`tag` alone).
pub fn publish_ack(id: MsgId, accepted: bool, attempt: u32, tag: u64) -> QueueMsg {
    QueueMsg::PublishAck { id, accepted, attempt, tag, multiple: false, also: Box::default() }
}

impl Protocol for QueueMsg {
    fn name(&self) -> &'static str {
        match self {
            QueueMsg::Publish { .. } => "publish",
            QueueMsg::PublishAck { .. } => "publish-ack",
            QueueMsg::Deliver { .. } => "deliver",
            QueueMsg::Ack { .. } => "ack",
            QueueMsg::Subscribe { .. } => "subscribe",
            QueueMsg::Subscribed { .. } => "subscribed",
            QueueMsg::Nack { .. } => "nack",
            QueueMsg::Cancelled { .. } => "cancelled",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match self {
            QueueMsg::Publish { rec, .. } | QueueMsg::Deliver { rec, .. } => Some(rec.id),
            QueueMsg::PublishAck { id, .. } => Some(*id),
            QueueMsg::Ack { .. }
            | QueueMsg::Nack { .. }
            | QueueMsg::Subscribe { .. }
            | QueueMsg::Subscribed { .. }
            | QueueMsg::Cancelled { .. } => None,
        }
    }

    #[inline(always)]
    fn fold(&self, digest: &mut Digest) {
        let _ = self.fold_seen(digest);
    }

    // Always inlined into the engine's arrival (the M/M/1 benchmark's
    // messages): a call costs more than the folds of the common messages.
    // What each message proves is as `observe` says (a test holds them
    // together), decided in the same match as its fold.
    #[inline(always)]
    fn fold_seen(&self, digest: &mut Digest) -> Seen {
        match *self {
            QueueMsg::Publish { rec, want_ack, attempt, channel, tag, persistent, route, expiration } => {
                digest.add(1);
                digest.add(rec.id);
                digest.add(rec.key());
                digest.add(u64::from(want_ack) << 32 | u64::from(attempt));
                digest.add(u64::from(channel));
                digest.add(u64::from(tag));
                fold_publish_options(digest, persistent, route, expiration);
                Seen::Nothing
            }
            QueueMsg::PublishAck { id, accepted, attempt, tag, multiple, ref also } => {
                fold_ack(digest, id, accepted, attempt);
                if tag > 0 {
                    digest.add(tag << 1 | u64::from(multiple));
                    also.iter().for_each(|&id| digest.add(id));
                }
                match (accepted, also.is_empty()) {
                    (false, _) => Seen::Nothing,
                    (true, true) => Seen::One(Observed::Acked(id)),
                    (true, false) => Seen::Later,
                }
            }
            QueueMsg::Deliver { rec, tag, redelivered } => {
                digest.add(3);
                digest.add(rec.id);
                digest.add(rec.key());
                digest.add(tag);
                digest.add(u64::from(redelivered));
                Seen::One(Observed::Delivered(rec.id))
            }
            QueueMsg::Ack { tag } => {
                digest.add(4);
                digest.add(tag);
                Seen::Nothing
            }
            QueueMsg::Subscribe { prefetch, session, auto_ack } => {
                digest.add(5);
                digest.add(u64::from(prefetch) << 32 | u64::from(session));
                digest.add(u64::from(auto_ack));
                Seen::Nothing
            }
            QueueMsg::Subscribed { session } => {
                digest.add(6);
                digest.add(u64::from(session));
                Seen::Nothing
            }
            QueueMsg::Nack { tag, requeue } => {
                digest.add(7);
                digest.add(tag);
                digest.add(u64::from(requeue));
                Seen::Nothing
            }
            QueueMsg::Cancelled { session } => {
                digest.add(8);
                digest.add(u64::from(session));
                Seen::Nothing
            }
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        match self {
            QueueMsg::Publish { rec, .. } | QueueMsg::Deliver { rec, .. } => out.push(rec.id),
            QueueMsg::PublishAck { .. }
            | QueueMsg::Ack { .. }
            | QueueMsg::Nack { .. }
            | QueueMsg::Subscribe { .. }
            | QueueMsg::Subscribed { .. }
            | QueueMsg::Cancelled { .. } => {}
        }
    }

    // Always inlined into the engine's arrival, like `fold` (left to
    // itself, the compiler keeps it out of line in some builds).
    #[inline(always)]
    fn observe(&self, see: &mut impl FnMut(Observed)) {
        match *self {
            QueueMsg::PublishAck { id, accepted: true, ref also, .. } => {
                see(Observed::Acked(id));
                also.iter().for_each(|&id| see(Observed::Acked(id)));
            }
            QueueMsg::Deliver { rec, .. } => see(Observed::Delivered(rec.id)),
            QueueMsg::PublishAck { accepted: false, .. }
            | QueueMsg::Publish { .. }
            | QueueMsg::Ack { .. }
            | QueueMsg::Nack { .. }
            | QueueMsg::Subscribe { .. }
            | QueueMsg::Subscribed { .. }
            | QueueMsg::Cancelled { .. } => {}
        }
    }

    fn wire_bytes(&self) -> u64 {
        match self {
            QueueMsg::Publish { rec, .. } | QueueMsg::Deliver { rec, .. } => {
                super::wire::control(0) + u64::from(rec.bytes)
            }
            QueueMsg::PublishAck { .. }
            | QueueMsg::Ack { .. }
            | QueueMsg::Nack { .. }
            | QueueMsg::Subscribe { .. }
            | QueueMsg::Subscribed { .. }
            | QueueMsg::Cancelled { .. } => super::wire::control(0),
        }
    }
}

/// The digest words of a publish's options, each only when set, so that
/// the digests of runs without them are those of before they existed.
#[inline(always)]
fn fold_publish_options(digest: &mut Digest, persistent: bool, route: u16, expiration: u32) {
    if persistent {
        digest.add(1);
    }
    if route != 0 {
        digest.add(u64::from(route) | 1 << 40);
    }
    if expiration != NO_EXPIRATION {
        digest.add(u64::from(expiration));
    }
}

/// The digest words of a publish or produce acknowledgement (both protocols
/// share the code, so digests compare across them).
pub(crate) fn fold_ack(digest: &mut Digest, id: MsgId, accepted: bool, attempt: u32) {
    digest.add(2);
    digest.add(id);
    digest.add(u64::from(accepted) << 32 | u64::from(attempt));
}

/// Drops `msg`, skipping the call to its drop glue (about 18 instructions
/// per message, on the queue broker's and the consumer's hot path) for the
/// queue messages that own no heap memory: every one but a publish ack,
/// whose `also` may. Kept beside the type, so that a field added to one of
/// these variants is seen here: a field that owns heap memory must take its
/// variant out of this list, or it leaks.
#[inline(always)]
pub(crate) fn release(msg: super::Msg) {
    use QueueMsg::{Ack, Cancelled, Deliver, Nack, Publish, Subscribe, Subscribed};
    if matches!(
        msg,
        super::Msg::Queue(
            Publish { .. }
                | Ack { .. }
                | Nack { .. }
                | Deliver { .. }
                | Subscribe { .. }
                | Subscribed { .. }
                | Cancelled { .. }
        )
    ) {
        std::mem::forget(msg);
    } else {
        drop(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Msg;

    /// Every kind of queue message, with the field values that change
    /// what it folds or proves.
    fn every_kind() -> Vec<QueueMsg> {
        let rec = Record::new(7, 3);
        let ack = |accepted, tag, also: &[MsgId]| QueueMsg::PublishAck {
            id: 7,
            accepted,
            attempt: 2,
            tag,
            multiple: !also.is_empty(),
            also: also.into(),
        };
        vec![
            publish(rec, false, 0),
            QueueMsg::Publish {
                rec,
                want_ack: true,
                attempt: 1,
                channel: 2,
                tag: 9,
                persistent: true,
                route: 4,
                expiration: 50,
            },
            ack(true, 0, &[]),
            ack(true, 5, &[]),
            ack(true, 5, &[3, 4]),
            ack(false, 5, &[]),
            ack(false, 5, &[3]),
            QueueMsg::Deliver { rec, tag: 11, redelivered: true },
            QueueMsg::Ack { tag: 11 },
            QueueMsg::Nack { tag: 11, requeue: true },
            QueueMsg::Subscribe { prefetch: 1, session: 2, auto_ack: false },
            QueueMsg::Subscribed { session: 2 },
            QueueMsg::Cancelled { session: 2 },
        ]
    }

    /// What `fold_seen` says an arrival proves is what `observe` tells
    /// (when it says), and the message seen through `Msg` is the same.
    #[test]
    fn fold_seen_agrees_with_observe() {
        for m in every_kind() {
            let mut told = Vec::new();
            m.observe(&mut |o| told.push(o));
            let seen = m.fold_seen(&mut Digest::default());
            match seen {
                Seen::Nothing => assert!(told.is_empty(), "{m:?}: {told:?}"),
                Seen::One(one) => assert_eq!(told, vec![one], "{m:?}"),
                Seen::Later => assert!(told.len() > 1, "{m:?}: say it when it is at most one"),
            }
            let (mut a, mut b) = (Digest::default(), Digest::default());
            assert_eq!(Msg::Queue(m.clone()).fold_seen(&mut a), seen);
            m.fold(&mut b);
            assert_eq!(a.hex(), b.hex(), "{m:?}");
        }
    }

    /// A protocol that keeps the default folds as `fold` does and asks for
    /// `observe`.
    #[test]
    fn the_default_asks_for_observe() {
        let m = Msg::Notice(crate::protocol::Notice::PeerDown);
        let (mut a, mut b) = (Digest::default(), Digest::default());
        assert_eq!(m.fold_seen(&mut a), Seen::Later);
        m.fold(&mut b);
        assert_eq!(a.hex(), b.hex());
    }
}
