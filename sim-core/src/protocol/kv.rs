//! The key-value protocol of read models and caches: a reader's `Get` and
//! the `Value` that answers it, the writes an API makes straight into a
//! cache (`Put`, `Evict`), and the `Made` that tells a user their write is
//! done (the 201 of a create-link).
//!
//! A value is named by the write it reflects: `seen` is the ledger id of
//! the message that carried that write (`None`: not found, a 404; a
//! delete's id: a tombstone or deletion marker, 410 Gone). No message here
//! carries a produced message: reads are not ledger messages, and a `Put`
//! or a `Made` only names one (the record itself travels through the log).
//!
//! Left out: values themselves (the long URL), sizes beyond a header, and
//! any batching of reads.

use super::{wire, MsgId, Observed, Protocol};
use crate::digest::Digest;

/// A message of the key-value protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvMsg {
    /// Reader (or cache) to a table or cache: read `key`; `req` is the
    /// asker's own number for this read.
    Get {
        /// The key.
        key: u64,
        /// The asker's number for the read.
        req: u64,
    },
    /// The answer to read `req` of `key`: the write the value reflects.
    Value {
        /// The key.
        key: u64,
        /// The read answered.
        req: u64,
        /// The write seen (`None`: not found).
        seen: Option<MsgId>,
    },
    /// Writer to a cache: set `key` to write `id` (a write-through, or a
    /// deletion marker when `id` is a delete).
    Put {
        /// The key.
        key: u64,
        /// The write.
        id: MsgId,
    },
    /// Writer to a cache: forget `key` (cache-aside invalidation).
    Evict {
        /// The key.
        key: u64,
    },
    /// Writer to its user: write `id` of `key` is made (201 Created).
    Made {
        /// The key.
        key: u64,
        /// The write.
        id: MsgId,
        /// A delete.
        delete: bool,
    },
}

impl Protocol for KvMsg {
    fn name(&self) -> &'static str {
        match self {
            KvMsg::Get { .. } => "kv-get",
            KvMsg::Value { .. } => "kv-value",
            KvMsg::Put { .. } => "kv-put",
            KvMsg::Evict { .. } => "kv-evict",
            KvMsg::Made { .. } => "kv-made",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match *self {
            KvMsg::Put { id, .. } | KvMsg::Made { id, .. } => Some(id),
            KvMsg::Value { seen, .. } => seen,
            KvMsg::Get { .. } | KvMsg::Evict { .. } => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            KvMsg::Get { key, req } => {
                digest.add(140);
                digest.add(key);
                digest.add(req);
            }
            KvMsg::Value { key, req, seen } => {
                digest.add(141);
                digest.add(key);
                digest.add(req);
                digest.add(seen.map_or(0, |id| id + 1));
            }
            KvMsg::Put { key, id } => {
                digest.add(142);
                digest.add(key);
                digest.add(id);
            }
            KvMsg::Evict { key } => {
                digest.add(143);
                digest.add(key);
            }
            KvMsg::Made { key, id, delete } => {
                digest.add(144);
                digest.add(key);
                digest.add(id);
                digest.add(u64::from(delete));
            }
        }
    }

    fn carried(&self, _out: &mut Vec<MsgId>) {}

    fn observe(&self, _see: &mut impl FnMut(Observed)) {}

    fn wire_bytes(&self) -> u64 {
        wire::HEADER
    }
}

/// Whether write `id` is a delete, when a fraction `deletes` of the writes
/// are: a function of the id alone, so the writer that makes it and the
/// table that applies it agree without a payload.
pub fn is_delete(draw: f64, deletes: f64) -> bool {
    draw < deletes
}

/// The purpose of the draw [`is_delete`] takes (`Ctx::message_draw`).
pub const DELETE_DRAW: &str = "kv-delete";
