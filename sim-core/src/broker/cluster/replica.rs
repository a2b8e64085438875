//! One replica of a partition as a cluster broker hosts it: its own log
//! (each record with the leader epoch that appended it and the idempotent
//! producer's numbering), its log end offset (LEO), its high watermark
//! (HW), its leader-epoch history, and the idempotent producers' next
//! sequence numbers as its log says them. The log is durable: a process
//! crash keeps all of it.
//!
//! Unlike the single-node broker's partition, each replica keeps a log of
//! its own, so replicas really diverge (a stale leader appends what no one
//! else has) and a follower really truncates (to where its log diverged
//! from its leader's, KIP-595's fetch-based truncation).
//!
//! Left out: retention (the log start stays 0 in a cluster), segments, and
//! the producer-state snapshots (the producers' state is kept by the
//! replica, from the records appended, leader or follower alike).

use super::leader::Lead;
use crate::broker::log::epoch::EpochHistory;
use crate::message::{NodeId, Record};
use crate::protocol::cluster::ReplicaRecord;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};

/// Records per producer whose offset is kept, to find a retried batch.
pub(super) const RECENT: usize = 1024;

/// One record in a replica's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// The record, with the leader epoch that appended it and its producer's numbering.
    pub r: ReplicaRecord,
    /// When this replica appended it.
    pub at: Time,
    /// The producer was told it is written (by this broker, as leader).
    pub acked: bool,
    /// The broker's incarnation when it appended it.
    pub incarnation: u32,
}

/// An idempotent producer as a replica's log says it.
#[derive(Debug, Clone, Default)]
pub(super) struct Producer {
    /// Its session (producer epoch).
    pub epoch: u32,
    /// The next sequence number expected in `epoch`.
    pub next: u64,
    /// (sequence number, offset) of its last [`RECENT`] records in `epoch`.
    pub recent: VecDeque<(u64, u64)>,
}

/// What a produce's sequence number is to a replica's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeqCheck {
    /// Append it.
    Next,
    /// Written before: its last record's offset, if still known.
    Duplicate(Option<u64>),
    /// An older session of the producer: refused (`fenced`).
    Fenced,
    /// A gap before it: refused (`out-of-order`).
    OutOfOrder,
}

/// One hosted replica.
#[derive(Default)]
pub(super) struct Replica {
    /// Offset of `log[0]` (always 0: retention is left out).
    pub start: u64,
    pub log: VecDeque<Entry>,
    pub hw: u64,
    pub epochs: EpochHistory,
    pub producers: BTreeMap<NodeId, Producer>,
    /// Its leader's state while this broker leads it (volatile).
    pub lead: Option<Lead>,
}

impl Replica {
    /// The log end offset: where the next record goes.
    pub fn end(&self) -> u64 {
        self.start + self.log.len() as u64
    }

    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        offset.checked_sub(self.start).and_then(|i| self.log.get(i as usize))
    }

    /// The leader epoch of the last record (none for an empty log).
    pub fn last_epoch(&self) -> Option<u32> {
        self.log.back().map(|e| e.r.leader_epoch)
    }

    /// Appends `r`; returns its offset.
    pub fn append(&mut self, r: ReplicaRecord, at: Time, acked: bool, incarnation: u32) -> u64 {
        let offset = self.end();
        self.epochs.record(r.leader_epoch, offset);
        if r.producer_epoch != 0 {
            let p = self.producers.entry(r.producer).or_default();
            if r.producer_epoch != p.epoch {
                *p = Producer { epoch: r.producer_epoch, ..Producer::default() };
            }
            p.next = r.seq + 1;
            if p.recent.len() == RECENT {
                p.recent.pop_front();
            }
            p.recent.push_back((r.seq, offset));
        }
        self.log.push_back(Entry { r, at, acked, incarnation });
        offset
    }

    /// What to do with `producer`'s batch of `n` records numbered from
    /// `seq` in session `epoch` (not 0). A producer this log knows nothing
    /// of starts anywhere (its records may be gone, or were never
    /// replicated here).
    pub fn check_seq(&self, producer: NodeId, epoch: u32, seq: u64, n: u64) -> SeqCheck {
        let Some(p) = self.producers.get(&producer) else { return SeqCheck::Next };
        if epoch < p.epoch {
            SeqCheck::Fenced
        } else if epoch > p.epoch {
            if seq == 0 {
                SeqCheck::Next
            } else {
                SeqCheck::OutOfOrder
            }
        } else if seq == p.next {
            SeqCheck::Next
        } else if seq < p.next {
            let last = seq + n.max(1) - 1;
            SeqCheck::Duplicate(p.recent.iter().find(|&&(s, _)| s == last).map(|&(_, o)| o))
        } else {
            SeqCheck::OutOfOrder
        }
    }

    /// The records from `offset` for a follower: up to the log end, at
    /// most `budget` bytes (the first record goes whatever its size).
    pub fn records_from(&self, offset: u64, budget: u64) -> Vec<ReplicaRecord> {
        let mut used = 0u64;
        let from = offset.max(self.start);
        // Sized for what there is (bounded: the budget may stop it sooner).
        let mut out = Vec::with_capacity(self.end().saturating_sub(from).min(256) as usize);
        for o in from..self.end() {
            let e = self.entry(o).expect("below the end");
            let bytes = u64::from(e.r.rec.bytes);
            if !out.is_empty() && used + bytes > budget {
                break;
            }
            used += bytes;
            out.push(e.r);
        }
        out
    }

    /// The records from `offset` to `upto` that a consumer may have in one
    /// answer: of one leader epoch, within `budget` bytes (at least one).
    pub fn readable(&self, offset: u64, upto: u64, budget: u32) -> Vec<Record> {
        let upto = upto.min(self.epochs.epoch_end_after(offset, self.end()));
        let mut used = 0u64;
        let mut out = Vec::new();
        for o in offset..upto {
            let Some(e) = self.entry(o) else { break };
            let bytes = u64::from(e.r.rec.bytes);
            if !out.is_empty() && used + bytes > u64::from(budget) {
                break;
            }
            used += bytes;
            out.push(e.r.rec);
        }
        out
    }

    /// Where a follower whose log diverged at (`epoch`, `end` in the
    /// leader's log) must cut its own: the smaller of that end and the end
    /// of the same epoch in its own log (KIP-595).
    pub fn divergence_point(&self, epoch: u32, end: u64) -> u64 {
        let own = self.epochs.end_of(epoch, self.end()).map_or(self.start, |(_, e)| e);
        end.min(own).min(self.end()).max(self.start)
    }

    /// Cuts the log back to `new_end`; returns the records cut. Each
    /// producer with records cut goes back to what the log now says of it
    /// (Kafka reloads the producers' state from the log).
    pub fn truncate(&mut self, new_end: u64) -> Vec<Entry> {
        let keep = new_end.saturating_sub(self.start) as usize;
        let cut: Vec<Entry> = self.log.drain(keep.min(self.log.len())..).collect();
        self.hw = self.hw.min(self.end());
        self.epochs.truncate(self.end());
        let mut touched: Vec<NodeId> = cut.iter().filter(|e| e.r.producer_epoch != 0).map(|e| e.r.producer).collect();
        touched.sort_unstable();
        touched.dedup();
        for producer in touched {
            self.reload(producer);
        }
        cut
    }

    /// Rebuilds `producer`'s state from the log's last records of it
    /// (looking back at most [`RECENT`] of its records' worth of offsets
    /// kept; further back, the producer is forgotten: unknown, it may
    /// start anywhere).
    fn reload(&mut self, producer: NodeId) {
        let end = self.end();
        let Some(p) = self.producers.get_mut(&producer) else { return };
        p.recent.retain(|&(_, o)| o < end);
        let last = match p.recent.back() {
            Some(&(_, o)) => self.entry(o).map(|e| e.r),
            None => self
                .log
                .iter()
                .rev()
                .take(RECENT * 16)
                .find(|e| e.r.producer == producer && e.r.producer_epoch != 0)
                .map(|e| e.r),
        };
        match last {
            Some(r) => {
                let p = self.producers.get_mut(&producer).expect("known");
                if r.producer_epoch != p.epoch {
                    p.recent.clear();
                }
                (p.epoch, p.next) = (r.producer_epoch, r.seq + 1);
            }
            None => {
                self.producers.remove(&producer);
            }
        }
    }

    /// Marks the records at offsets `from..to` as told to their producer.
    pub fn mark_acked(&mut self, from: u64, to: u64) {
        for o in from.max(self.start)..to {
            if let Some(e) = self.log.get_mut((o - self.start) as usize) {
                e.acked = true;
            }
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
