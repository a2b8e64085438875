//! Event sourcing and data sync: state derived from a log of writes.
//!
//! - A producer with `writes = true` is the **source of truth**: each
//!   message it produces is a write of its key (an accepted command on an
//!   aggregate, a change committed in a source system). It reports the
//!   write to the state observer when it is made, stamps it with its key's
//!   version (1, 2, ... per key: the per-aggregate sequence number) and
//!   records it in the source's table (the run's stores), then appends it
//!   to a log like any message.
//! - The **projection** kind (`[projections.NAME]`) is the sink of a log
//!   consumer: it derives keyed state from the records it is given, and it
//!   is a complete replica for the state observer. Its `order` says how it
//!   uses the version: `"sequence"` applies each key's events in sequence
//!   (an event that comes before an earlier one of its key waits for the
//!   gap to fill; one whose number was applied is skipped as a duplicate),
//!   `"version"` keeps the newest version and refuses an older one (a
//!   versioned sync destination), `"arrival"` applies whatever comes,
//!   last write wins (no check: a reordered event overwrites newer state,
//!   a duplicate is applied again). With `stop_at_offset = N` it is a
//!   time-travel projection: it applies only the records below offset N
//!   and reports the state it reached as metrics, not as a replica.
//! - The **crawler** and the **watcher** (`[syncs.NAME]`) copy keys of
//!   the source's table to a destination projection: the crawler every key
//!   the source holds when it starts, once, at a steady pace (a migration's
//!   backfill); the watcher all of them every `interval_ms` (repairs).
//!
//! Left out, stated: the version travels as a header the record cannot
//! carry (it is kept in the run's stores, keyed by message id, and read
//! there by the projection); the crawler and the watcher read the source's
//! table without delay (they run beside the source database) and the
//! watcher sends every key rather than comparing digests first (the
//! destination compares: a copy equal to what it holds changes nothing);
//! a projection's state and its waiting events are durable (a database),
//! so a crash loses none of them; events of an aggregate are never
//! deleted, and a command is never refused (every produced message is a
//! write that was accepted).

mod kind;
mod projection;
mod syncer;
#[cfg(test)]
mod tests;

pub use kind::{CrawlerKind, Order, ProjectionKind, ProjectionSpec, SyncerSpec, WatcherKind};
pub use projection::{Applied, Projection, Setup};
pub use syncer::{Role, SyncTimer, Syncer};

use crate::engine::{Ctx, Timer};
use crate::message::MsgId;
use std::collections::BTreeMap;

/// The source of truth made write `id` of `key`: the key's next version
/// (from `versions`) is stamped on it and the source's table holds it.
/// (The producer's write hook tells the state observer.)
pub(crate) fn stamp_version<T: Timer>(ctx: &mut Ctx<T>, versions: &mut BTreeMap<u64, u64>, key: u64, id: MsgId) {
    let v = versions.entry(key).or_insert(0);
    *v += 1;
    let version = *v;
    ctx.set_header(id, crate::dedup::Header::Version, version);
    ctx.stores_mut().source_write(key, id, version);
}

/// A digest of keyed state (key, write), below 2^52 so that a metric (an
/// `f64`) holds it exactly: two states with the same digest are, but for
/// a one-in-2^52 chance, the same.
pub fn digest_of(state: &BTreeMap<u64, (MsgId, u64)>) -> u64 {
    // FNV-1a over the words, as the run digest folds them.
    let mut d: u64 = 0xcbf2_9ce4_8422_2325;
    for (&key, &(id, _)) in state {
        for word in [key, id] {
            d = (d ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    d & ((1 << 52) - 1)
}
