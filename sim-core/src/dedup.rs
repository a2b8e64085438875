//! Dedup stores: the ids whose effect each idempotent consumer has
//! recorded, as a database table with a unique key would hold them. The
//! engine owns them (a consumer checks and inserts through its context);
//! [`crate::store`] re-exports them beside the `store` kind.
//!
//! Simplifications: a dedup store never fails, answers without network
//! delay, survives every crash, and keeps every id forever (a real one
//! would expire them). The `store` kind ([`crate::store`]) is the
//! database with its own latency and failures, called over the network.

use crate::message::MsgId;
use std::collections::{BTreeMap, BTreeSet};

/// The run's stores, by index (numbered by the scenario, in order of first use).
#[derive(Debug, Default)]
pub struct Stores {
    dedup: Vec<BTreeSet<MsgId>>,
    /// Headers producers stamped on their messages, by message id and
    /// header.
    headers: BTreeMap<(MsgId, Header), u64>,
    /// The source system's table (data sync): per key, its newest write
    /// and that write's version.
    source: BTreeMap<u64, (MsgId, u64)>,
    /// Snapshots of projections, by store number: the state (per key, its
    /// write and version) and, per partition, the next offset.
    snapshots: BTreeMap<usize, Snapshot>,
}

/// A header a producer stamps on a message, which the 16-byte record has
/// no room for: the reader finds it here by the message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Header {
    /// Its key's version (1, 2, ...): an event's per-aggregate sequence
    /// number (see [`crate::events`]).
    Version,
    /// When the event it reports happened (simulated ns): a click's event
    /// time (see [`crate::stream`]).
    EventTime,
    /// The version of the message schema it was written in, when its
    /// producer was upgraded to version 2 (absent: version 1; see
    /// [`crate::contract`]).
    SchemaVersion,
    /// The oldest reader version that can read it: its own version for a
    /// breaking change, 1 for a compatible one (see [`crate::contract`]).
    OldestReader,
    /// When a record written to a retry topic is due to be tried again
    /// (simulated ns): Spring Kafka's backoff-timestamp header (see
    /// [`crate::log_consumer`]).
    RetryDue,
    /// When it was last written to a dead-letter topic (simulated ns): a
    /// replay takes what was there when it began.
    DeadLetteredAt,
}

/// A projection's snapshot: its state (per key, its write and that write's
/// version) and, per partition, the offset of the first record it does not
/// include.
pub type Snapshot = (BTreeMap<u64, (MsgId, u64)>, BTreeMap<u32, u64>);

impl Stores {
    /// Records `id` in dedup store number `store` and returns true if it was
    /// not there yet: the check and the insert are one atomic step, as an
    /// `INSERT IGNORE` in the same transaction as the effect. Stores are
    /// shared by every node that names the same one, and durable.
    ///
    /// ```
    /// let mut stores = sim_core::store::Stores::default();
    /// assert!(stores.dedup_insert(0, 7));
    /// assert!(!stores.dedup_insert(0, 7), "a repeat is caught");
    /// assert!(stores.dedup_insert(1, 7), "another store is another table");
    /// ```
    pub fn dedup_insert(&mut self, store: usize, id: MsgId) -> bool {
        if store >= self.dedup.len() {
            self.dedup.resize_with(store + 1, Default::default);
        }
        self.dedup[store].insert(id)
    }

    /// Stamps message `id` with `value` for `header` (a version, an event
    /// time): a record is 16 bytes and carries no headers, so the value
    /// waits here for whoever reads the record.
    pub fn set_header(&mut self, id: MsgId, header: Header, value: u64) {
        self.headers.insert((id, header), value);
    }

    /// Header `header` of message `id`, if its producer stamped one.
    pub fn header(&self, id: MsgId, header: Header) -> Option<u64> {
        self.headers.get(&(id, header)).copied()
    }

    /// The source system (data sync) committed write `id`, version
    /// `version`, of `key`: its table now holds it.
    pub fn source_write(&mut self, key: u64, id: MsgId, version: u64) {
        self.source.insert(key, (id, version));
    }

    /// The source system's table: per key, the newest write and its version.
    pub fn source(&self) -> &BTreeMap<u64, (MsgId, u64)> {
        &self.source
    }

    /// Keeps `snapshot` as the newest of snapshot store `store`.
    pub fn save_snapshot(&mut self, store: usize, snapshot: Snapshot) {
        self.snapshots.insert(store, snapshot);
    }

    /// The newest snapshot of snapshot store `store`, if one was taken.
    pub fn snapshot(&self, store: usize) -> Option<&Snapshot> {
        self.snapshots.get(&store)
    }

    /// Bytes the stores hold, about: each id a B-tree entry (its 8 bytes
    /// and a share of its node's slack and bookkeeping). Every id is kept
    /// forever, so a long run's stores grow with the messages processed.
    pub fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 16;
        self.dedup.iter().map(|s| s.len() * ENTRY_BYTES).sum::<usize>()
            + self.dedup.capacity() * std::mem::size_of::<BTreeSet<MsgId>>()
            + (self.headers.len() + self.source.len()) * 2 * ENTRY_BYTES
            + self.snapshots.values().map(|(s, o)| (s.len() + o.len()) * 2 * ENTRY_BYTES).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_count_grows_with_the_ids_kept() {
        let mut s = Stores::default();
        let empty = s.memory_bytes();
        for id in 0..1000 {
            s.dedup_insert(0, id);
        }
        assert!(s.memory_bytes() >= empty + 1000 * 8, "{} bytes", s.memory_bytes());
    }
}
