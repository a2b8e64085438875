//! The request/response protocol (HTTP-like), spoken between users (the
//! load), services and stores: a call and its reply, and, at an
//! asynchronous edge, the status endpoint a client polls and the callback
//! a worker makes when the work is done.
//!
//! A call names its caller's number for it (`call`): the caller matches a
//! reply to the attempt it answers by that number, whatever order replies
//! come in. A call carries the request's record, so the ledger sees the
//! request in flight while the call is on the wire; a reply carries
//! nothing the ledger counts (the outcome is the caller's to act on).
//!
//! A call may carry its caller's **deadline** (absolute simulated time,
//! 0: none): a server that propagates deadlines drops a queued request
//! whose deadline has passed instead of working for a caller who has left,
//! and passes the deadline on to its own calls.
//!
//! Left out: connections and their pools (a call is one message each way,
//! as over a kept-alive connection), headers, and bodies' sizes beyond the
//! request's record.

use super::{wire, MsgId, Observed, Protocol, Record};
use crate::digest::Digest;
use crate::time::Time;

/// The outcome a reply carries, as an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// 200: done.
    Ok,
    /// 202: accepted; the work happens later (an asynchronous edge).
    Accepted,
    /// 500: the server (or a dependency it needed) failed.
    Error,
    /// 503: the server refused it at once: its accept queue was full, a
    /// circuit breaker was open, or a bulkhead was full.
    Unavailable,
    /// 504: a dependency the server called timed out.
    GatewayTimeout,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 5] =
        [Status::Ok, Status::Accepted, Status::Error, Status::Unavailable, Status::GatewayTimeout];

    /// True for a success (200 or 202).
    pub fn is_success(self) -> bool {
        matches!(self, Status::Ok | Status::Accepted)
    }

    /// Its HTTP code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Accepted => 202,
            Status::Error => 500,
            Status::Unavailable => 503,
            Status::GatewayTimeout => 504,
        }
    }

    fn word(self) -> u64 {
        Status::ALL.iter().position(|&s| s == self).unwrap_or(0) as u64
    }
}

/// What a status endpoint knows of a request it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted, not finished yet.
    Pending,
    /// Finished with this outcome.
    Finished(Status),
    /// Never accepted here (or forgotten).
    Unknown,
}

impl JobState {
    fn word(self) -> u64 {
        match self {
            JobState::Pending => 0,
            JobState::Unknown => 1,
            JobState::Finished(s) => 2 + s.word(),
        }
    }
}

/// A message of the request/response protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcMsg {
    /// Caller to server: handle request `rec`, this caller's attempt `call`.
    Call {
        /// The request.
        rec: Record,
        /// The caller's number for this attempt (unique per caller).
        call: u64,
        /// When the caller gives up (absolute simulated time); 0 for none
        /// said (a caller that does not propagate its deadline).
        deadline: Time,
    },
    /// Server to caller: attempt `call` of request `id` ended with `status`.
    Reply {
        /// The request.
        id: MsgId,
        /// The attempt answered.
        call: u64,
        /// The outcome.
        status: Status,
    },
    /// Client to a status endpoint: what became of request `id`?
    Poll {
        /// The request.
        id: MsgId,
        /// The client's number for this poll.
        call: u64,
    },
    /// Status endpoint to client: the answer to poll `call`.
    PollReply {
        /// The request.
        id: MsgId,
        /// The poll answered.
        call: u64,
        /// What the endpoint knows.
        state: JobState,
    },
    /// Worker to a client's callback (or to a status endpoint): request
    /// `id`, accepted earlier, finished with `status`.
    Done {
        /// The request.
        id: MsgId,
        /// The outcome.
        status: Status,
    },
    /// The receiver of a [`RpcMsg::Done`] took it (the sender resends
    /// until it hears this).
    DoneAck {
        /// The request.
        id: MsgId,
    },
}

impl Protocol for RpcMsg {
    fn name(&self) -> &'static str {
        match self {
            RpcMsg::Call { .. } => "call",
            RpcMsg::Reply { .. } => "reply",
            RpcMsg::Poll { .. } => "poll",
            RpcMsg::PollReply { .. } => "poll-reply",
            RpcMsg::Done { .. } => "done",
            RpcMsg::DoneAck { .. } => "done-ack",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match *self {
            RpcMsg::Call { rec, .. } => Some(rec.id),
            RpcMsg::Reply { id, .. }
            | RpcMsg::Poll { id, .. }
            | RpcMsg::PollReply { id, .. }
            | RpcMsg::Done { id, .. }
            | RpcMsg::DoneAck { id } => Some(id),
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            RpcMsg::Call { rec, call, deadline } => {
                digest.add(120);
                digest.add(rec.id);
                digest.add(rec.key());
                digest.add(call);
                digest.add(deadline);
            }
            RpcMsg::Reply { id, call, status } => {
                digest.add(121);
                digest.add(id);
                digest.add(call);
                digest.add(status.word());
            }
            RpcMsg::Poll { id, call } => {
                digest.add(122);
                digest.add(id);
                digest.add(call);
            }
            RpcMsg::PollReply { id, call, state } => {
                digest.add(123);
                digest.add(id);
                digest.add(call);
                digest.add(state.word());
            }
            RpcMsg::Done { id, status } => {
                digest.add(124);
                digest.add(id);
                digest.add(status.word());
            }
            RpcMsg::DoneAck { id } => {
                digest.add(125);
                digest.add(id);
            }
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        if let RpcMsg::Call { rec, .. } = self {
            out.push(rec.id);
        }
    }

    fn observe(&self, _see: &mut impl FnMut(Observed)) {}

    fn wire_bytes(&self) -> u64 {
        match self {
            RpcMsg::Call { rec, .. } => wire::HEADER + u64::from(rec.bytes),
            _ => wire::CONTROL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fold_apart_and_stay_small() {
        let rec = Record::new(1, 2);
        let msgs = [
            RpcMsg::Call { rec, call: 1, deadline: 0 },
            RpcMsg::Reply { id: 1, call: 1, status: Status::Ok },
            RpcMsg::Reply { id: 1, call: 1, status: Status::Error },
            RpcMsg::Poll { id: 1, call: 1 },
            RpcMsg::PollReply { id: 1, call: 1, state: JobState::Pending },
            RpcMsg::PollReply { id: 1, call: 1, state: JobState::Finished(Status::Ok) },
            RpcMsg::Done { id: 1, status: Status::Ok },
            RpcMsg::DoneAck { id: 1 },
        ];
        let digests: std::collections::BTreeSet<String> = msgs
            .iter()
            .map(|m| {
                let mut d = Digest::default();
                m.fold(&mut d);
                d.hex()
            })
            .collect();
        assert_eq!(digests.len(), msgs.len(), "every message folds to its own digest");
        let mut carried = Vec::new();
        msgs.iter().for_each(|m| m.carried(&mut carried));
        assert_eq!(carried, [1], "only a call carries its request");
        assert!(Status::ALL.iter().filter(|s| s.is_success()).count() == 2);
    }
}
