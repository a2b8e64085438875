//! The data-sync protocol: a crawler's or a watcher's copy of one key of
//! the source system, sent to a destination.
//!
//! A copy is state, not a produced message: it carries the id of the
//! source's write it copies (a ledger message already made) and its
//! version, and it is never produced again, so the ledger expects nothing
//! of it (it carries no record). What it carries is what the source held
//! when the copy was read: by the time it lands, the source may have moved
//! on (the race behind the lost-update anomaly).

use super::{wire, MsgId, Observed, Protocol};
use crate::digest::Digest;

/// A data-sync message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMsg {
    /// Crawler or watcher to destination: the source held write `id`,
    /// version `version`, of `key` when this was read.
    Copy {
        /// The key.
        key: u32,
        /// The source's write of `key` it copies.
        id: MsgId,
        /// That write's version (its position among the key's writes).
        version: u32,
        /// Sent by a watcher repairing a difference (false: a crawler's
        /// copy of existing data).
        repair: bool,
    },
}

impl Protocol for SyncMsg {
    fn name(&self) -> &'static str {
        match self {
            SyncMsg::Copy { repair: false, .. } => "crawl-copy",
            SyncMsg::Copy { repair: true, .. } => "repair-copy",
        }
    }
    fn id(&self) -> Option<MsgId> {
        None
    }
    fn fold(&self, digest: &mut Digest) {
        match *self {
            SyncMsg::Copy { key, id, version, repair } => {
                digest.add(160);
                digest.add(u64::from(key));
                digest.add(id);
                digest.add(u64::from(version));
                digest.add(u64::from(repair));
            }
        }
    }
    fn carried(&self, _out: &mut Vec<MsgId>) {}
    fn observe(&self, _see: &mut impl FnMut(Observed)) {}
    fn wire_bytes(&self) -> u64 {
        wire::control(2)
    }
}
