//! Replicated keyed state: a key is written in one place (the write is
//! **made** when the system tells its user it is done) and read from
//! replicas that learn of writes later: a database table fed from a log, a
//! read model, a cache.
//!
//! The versions of a key are its writes in the order they were made. A
//! replica's state for a key is the write it reflects, or nothing. Two
//! states are **equivalent** when they show a reader the same thing: the
//! same live write, or "gone" (a delete, or nothing at all, are both a key
//! that is not there).
//!
//! - A **read** is fresh when what it saw is equivalent to the newest write
//!   made before it was answered; otherwise it is stale, and its
//!   **staleness** is how long it has been out of date: the answer's time
//!   minus the time the oldest write it misses was made (a fresh read
//!   counts 0). This is the lag a user feels; the gap between the newest
//!   write's time and the time of the write seen would instead grow with
//!   the quiet time between writes.
//! - A write's **consistency window** runs from when it was made until
//!   every replica reflects it or a newer write (or a state equivalent to
//!   the newest). A complete replica (a table) must hold it; a cache that
//!   holds nothing for the key does not stand in the way (a read there
//!   misses and goes on), but one holding an older write does.
//! - At the end, a (replica, key) pair **diverges** when the replica's
//!   state is not equivalent to the newest write: for a cache, only when it
//!   holds an older one.
//!
//! Left out: a replica answers for every key (no sharding of one table
//! over several nodes: model each shard as the one replica for its keys,
//! or accept that an unserved key counts as missing there).

use crate::message::{MsgId, NodeId};
use crate::metrics::{Gauges, LatencyStats, LatencySummary};
use crate::time::Time;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// A replica's position for a key that sees past every write (a cache
/// that holds nothing).
const CLEAR: i64 = i64::MAX;

/// Estimated bytes of one write kept per key, and of one replica's state
/// for a key, in their B-tree or vector.
const WRITE_BYTES: usize = 32;
const HELD_BYTES: usize = 24;

/// The consistency figures of a run (the summary's `consistency`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConsistencySummary {
    /// Writes made.
    pub writes: u64,
    /// Reads answered.
    pub reads: u64,
    /// Reads that saw an older state than the newest write made.
    pub stale_reads: u64,
    /// `stale_reads / reads` (0 with no reads).
    pub stale_fraction: f64,
    /// Over every read (a fresh one counts 0): how long it had been out of
    /// date.
    pub staleness_ms: LatencySummary,
    /// Reads by the maker of the key's newest write.
    pub own_reads: u64,
    /// Own reads that were stale: read-your-writes broken.
    pub own_stale: u64,
    /// Own reads answered "not found" although the key was written.
    pub own_not_found: u64,
    /// Reads answered with a live value although the key's newest write
    /// is a delete (a stale redirect).
    pub stale_after_delete: u64,
    /// Per write: from when it was made until every replica reflects it.
    pub window_ms: LatencySummary,
    /// Writes still not visible on every replica at the end.
    pub open_windows: u64,
    /// (replica, key) pairs that disagree with the truth at the end.
    pub diverged: u64,
    /// Replicas that reported.
    pub replicas: u64,
}

#[derive(Default)]
struct Key {
    /// Its writes, in the order they were made: (id, made at, delete).
    writes: Vec<(MsgId, Time, bool)>,
    /// Each replica's state: an index into `writes`, or -1 for nothing.
    held: BTreeMap<NodeId, i64>,
    /// Writes whose window is open: (index, made at).
    open: VecDeque<(i64, Time)>,
    /// Replicas now behind the newest write.
    behind: u64,
}

impl Key {
    fn newest(&self) -> i64 {
        self.writes.len() as i64 - 1
    }

    fn is_gone(&self, index: i64) -> bool {
        index < 0 || self.writes[index as usize].2
    }

    /// The index of write `id`, or -1 for none or one never made.
    fn index_of(&self, id: Option<MsgId>) -> i64 {
        let Some(id) = id else { return -1 };
        self.writes.iter().rposition(|w| w.0 == id).map_or(-1, |i| i as i64)
    }

    /// Whether state `index` shows a reader what the newest write does.
    fn current(&self, index: i64) -> bool {
        let newest = self.newest();
        index == newest || (self.is_gone(index) && self.is_gone(newest))
    }

    /// How far replica `node` (complete or not) has come: the newest index
    /// when it is current, `CLEAR` for a cache holding nothing.
    fn reach(&self, node: NodeId, complete: bool) -> i64 {
        match self.held.get(&node) {
            None | Some(-1) if !complete => CLEAR,
            held => {
                let index = held.copied().unwrap_or(-1);
                if self.current(index) {
                    self.newest()
                } else {
                    index
                }
            }
        }
    }
}

/// The observer's part for replicated state.
#[derive(Default)]
pub struct Replicas {
    /// Each replica, and whether it is complete.
    roles: BTreeMap<NodeId, bool>,
    keys: BTreeMap<u64, Key>,
    writes: u64,
    reads: u64,
    stale_reads: u64,
    own_reads: u64,
    own_stale: u64,
    own_not_found: u64,
    stale_after_delete: u64,
    staleness: LatencyStats,
    window: LatencyStats,
    /// Sum of every key's `behind`.
    behind: u64,
    /// Sum of every key's open windows.
    open: u64,
}

impl Replicas {
    /// Node `node` serves reads; `complete` as [`super::StateFact::Replica`].
    pub fn replica(&mut self, node: NodeId, complete: bool) {
        if self.roles.insert(node, complete) != Some(complete) {
            let keys: Vec<u64> = self.keys.keys().copied().collect();
            for key in keys {
                self.settle(0, key, false);
            }
        }
    }

    /// Write `id` of `key` made at `now`.
    pub fn wrote(&mut self, now: Time, key: u64, id: MsgId, delete: bool) {
        self.writes += 1;
        let k = self.keys.entry(key).or_default();
        k.writes.push((id, now, delete));
        k.open.push_back((k.newest(), now));
        self.open += 1;
        self.settle(now, key, true);
    }

    /// Replica `node` now reflects write `id` of `key`.
    pub fn holds(&mut self, now: Time, node: NodeId, key: u64, id: Option<MsgId>) {
        let k = self.keys.entry(key).or_default();
        let index = k.index_of(id);
        k.held.insert(node, index);
        self.settle(now, key, true);
    }

    /// A read of `key` answered at `now` with write `seen`.
    pub fn read(&mut self, now: Time, key: u64, seen: Option<MsgId>, own: bool) {
        self.reads += 1;
        self.own_reads += u64::from(own);
        let Some(k) = self.keys.get(&key) else {
            self.staleness.record(0);
            return;
        };
        let index = k.index_of(seen);
        if k.writes.is_empty() || k.current(index) {
            self.staleness.record(0);
            return;
        }
        self.stale_reads += 1;
        // Out of date since the first write after the newest one that showed
        // what the read saw: for "gone", the key's last delete (if any).
        let since = if k.is_gone(index) { k.writes.iter().rposition(|w| w.2).map_or(-1, |i| i as i64) } else { index };
        let missed = k.writes[(since + 1) as usize].1;
        self.staleness.record(now.saturating_sub(missed));
        if own {
            self.own_stale += 1;
            self.own_not_found += u64::from(index < 0);
        }
        if k.is_gone(k.newest()) && !k.is_gone(index) {
            self.stale_after_delete += 1;
        }
    }

    /// Node `node` crashed at `now`: a cache forgets what it held.
    pub fn crashed(&mut self, now: Time, node: NodeId) {
        if self.roles.get(&node) != Some(&false) {
            return;
        }
        let keys: Vec<u64> =
            self.keys.iter().filter(|(_, k)| k.held.contains_key(&node)).map(|(&key, _)| key).collect();
        for key in keys {
            if let Some(k) = self.keys.get_mut(&key) {
                k.held.remove(&node);
            }
            self.settle(now, key, true);
        }
    }

    /// Recounts who is behind on `key`, and, with `close`, closes the
    /// windows of the writes every replica now reflects.
    fn settle(&mut self, now: Time, key: u64, close: bool) {
        let Some(k) = self.keys.get_mut(&key) else { return };
        if k.writes.is_empty() {
            return;
        }
        let newest = k.newest();
        let reaches: Vec<i64> = self.roles.iter().map(|(&node, &complete)| k.reach(node, complete)).collect();
        let behind = reaches.iter().filter(|&&r| r < newest).count() as u64;
        self.behind = self.behind - k.behind + behind;
        k.behind = behind;
        if !close {
            return;
        }
        let reached = reaches.iter().copied().min().unwrap_or(CLEAR);
        while let Some(&(index, made)) = k.open.front() {
            if index > reached {
                break;
            }
            k.open.pop_front();
            self.open -= 1;
            self.window.record(now.saturating_sub(made));
        }
    }

    /// `stale_replicas` and `open_windows`.
    pub fn gauges(&self, out: &mut Gauges) {
        out.sum("stale_replicas", self.behind as f64);
        out.sum("open_windows", self.open as f64);
    }

    /// Estimated bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.keys.values().map(|k| k.writes.capacity() * WRITE_BYTES + k.held.len() * HELD_BYTES).sum::<usize>()
            + self.open as usize * 16
    }

    /// Every read's staleness as a CDF (ms, fraction).
    pub fn staleness_cdf(&self) -> Vec<(f64, f64)> {
        self.staleness.cdf()
    }

    /// The figures so far.
    pub fn summary(&self) -> ConsistencySummary {
        let diverged = self
            .keys
            .values()
            .filter(|k| !k.writes.is_empty())
            .map(|k| {
                let stale = |(node, complete): (&NodeId, &bool)| match k.held.get(node) {
                    None | Some(-1) if !complete => false,
                    held => !k.current(held.copied().unwrap_or(-1)),
                };
                self.roles.iter().filter(|r| stale(*r)).count() as u64
            })
            .sum();
        ConsistencySummary {
            writes: self.writes,
            reads: self.reads,
            stale_reads: self.stale_reads,
            stale_fraction: if self.reads > 0 { self.stale_reads as f64 / self.reads as f64 } else { 0.0 },
            staleness_ms: self.staleness.summary(),
            own_reads: self.own_reads,
            own_stale: self.own_stale,
            own_not_found: self.own_not_found,
            stale_after_delete: self.stale_after_delete,
            window_ms: self.window.summary(),
            open_windows: self.open,
            diverged,
            replicas: self.roles.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Time = 1_000_000_000;

    fn table_and_cache() -> Replicas {
        let mut r = Replicas::default();
        r.replica(1, true);
        r.replica(2, false);
        r
    }

    #[test]
    fn a_read_before_the_table_has_the_write_is_stale_by_the_time_since_the_write() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, false);
        r.read(S + S / 2, 7, None, true);
        let s = r.summary();
        assert_eq!((s.reads, s.stale_reads, s.own_stale, s.own_not_found), (1, 1, 1, 1));
        assert_eq!(s.staleness_ms.max, 500.0);
    }

    #[test]
    fn the_window_closes_when_the_table_holds_the_write_and_a_cache_holding_nothing_does_not_wait() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, false);
        assert_eq!(r.summary().open_windows, 1);
        r.holds(S + 100_000_000, 1, 7, Some(100));
        let s = r.summary();
        assert_eq!((s.open_windows, s.window_ms.count, s.window_ms.max), (0, 1, 100.0));
        r.read(2 * S, 7, Some(100), false);
        assert_eq!(r.summary().stale_reads, 0);
    }

    #[test]
    fn a_cache_holding_an_older_write_keeps_the_window_open_until_it_expires() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, false);
        r.holds(S, 1, 7, Some(100));
        r.holds(S, 2, 7, Some(100));
        r.wrote(2 * S, 7, 101, false);
        r.holds(2 * S, 1, 7, Some(101));
        assert_eq!(r.summary().open_windows, 1, "the cache still shows write 100");
        let mut g = Gauges::default();
        r.gauges(&mut g);
        assert!(g.into_vec().contains(&("stale_replicas".to_string(), 1.0)));
        r.holds(5 * S, 2, 7, None);
        let s = r.summary();
        assert_eq!((s.open_windows, s.window_ms.max, s.diverged), (0, 3000.0, 0));
    }

    #[test]
    fn a_live_answer_after_a_delete_is_a_stale_redirect_and_a_not_found_is_fresh() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, false);
        r.holds(S, 1, 7, Some(100));
        r.wrote(2 * S, 7, 101, true);
        r.read(3 * S, 7, Some(100), false);
        r.read(3 * S, 7, None, false);
        let s = r.summary();
        assert_eq!((s.stale_reads, s.stale_after_delete), (1, 1));
        assert_eq!(s.diverged, 1, "the table still shows the deleted link");
        r.holds(4 * S, 1, 7, None);
        assert_eq!(r.summary().diverged, 0, "a table without the key agrees with a delete");
    }

    #[test]
    fn a_replica_going_back_to_an_older_write_diverges_the_lost_update() {
        let mut r = Replicas::default();
        r.replica(1, true);
        r.wrote(S, 7, 100, false);
        r.wrote(2 * S, 7, 101, false);
        r.holds(3 * S, 1, 7, Some(101));
        r.holds(4 * S, 1, 7, Some(100));
        let s = r.summary();
        assert_eq!((s.diverged, s.open_windows), (1, 0), "both windows closed at 3 s; the state went back");
    }

    #[test]
    fn a_crashed_cache_forgets_and_so_stops_holding_writes_back() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, false);
        r.holds(S, 2, 7, Some(100));
        r.holds(S, 1, 7, Some(100));
        r.wrote(2 * S, 7, 101, false);
        r.holds(2 * S, 1, 7, Some(101));
        r.crashed(3 * S, 2);
        let s = r.summary();
        assert_eq!((s.open_windows, s.diverged, s.window_ms.max), (0, 0, 1000.0));
    }

    #[test]
    fn a_not_found_after_a_delete_and_a_create_is_stale_only_since_the_create() {
        let mut r = table_and_cache();
        r.wrote(S, 7, 100, true);
        r.wrote(10 * S, 7, 101, false);
        r.read(11 * S, 7, None, false);
        assert_eq!(r.summary().staleness_ms.max, 1000.0, "not found was right until the create at 10 s");
    }

    #[test]
    fn a_read_of_a_key_never_written_is_fresh() {
        let mut r = table_and_cache();
        r.read(S, 9, None, false);
        let s = r.summary();
        assert_eq!((s.reads, s.stale_reads, s.staleness_ms.count), (1, 0, 1));
    }
}
