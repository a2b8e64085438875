//! One partition of a replicated log: the records, each replica's log end
//! offset (LEO), the in-sync replica set (ISR), the high watermark (HW),
//! the idempotent producers' sequence numbers, and the acks waiting for
//! replication.
//!
//! The replicas' logs are kept as one history plus each replica's LEO: a
//! replica's log is always a prefix of the leader's. An election truncates
//! every replica to the new leader's end at once (Kafka truncates a
//! returning replica to the divergence point when it rejoins: the same
//! records end up gone).

use super::epoch::EpochHistory;
use crate::message::{MsgId, NodeId, Record};
use crate::sequencer::Sequencer;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};

/// One record in the log.
pub(super) struct Entry {
    pub rec: Record,
    pub at: Time,
    pub producer: NodeId,
    pub epoch: u32,
    pub seq: u64,
    /// The producer was told it is written.
    pub acked: bool,
}

/// A produced batch waiting for the high watermark to pass its last
/// offset (`acks=all`); it was appended from offset `first`.
pub(super) struct Waiter {
    pub producer: NodeId,
    pub ids: Box<[MsgId]>,
    pub attempt: u32,
    pub first: u64,
}

/// An idempotent producer's state in this partition.
#[derive(Default)]
pub(super) struct Idem {
    /// Its session, the next number, and the sends that came ahead of a
    /// gap (held until it fills).
    pub seq: Sequencer<Produce>,
    /// (base sequence, first offset, records) of recent batches appended
    /// (the last few thousand).
    pub recent: VecDeque<(u64, u64, u32)>,
    /// Sequence numbers truncated away after the producer was told they
    /// were written: it will not send them again, so they are skipped.
    pub gone: std::collections::BTreeSet<u64>,
}

/// A produced batch as the leader handles it (and holds it, when it comes
/// ahead of a gap in its producer's sequence numbers).
#[derive(Clone)]
pub(super) struct Produce {
    pub recs: Box<[Record]>,
    pub acks: crate::protocol::Acks,
    pub attempt: u32,
}

/// A fetch parked until the HW passes its offset (long polling).
#[derive(Clone, Copy)]
pub(super) struct Parked {
    pub member: NodeId,
    pub group: u16,
    pub generation: u32,
    pub offset: u64,
    pub max: u32,
    pub max_bytes: u32,
    /// The leader epoch of the record before `offset`, if the member knows it.
    pub epoch: Option<u32>,
}

/// A partition of a topic, replicated on every replica of the broker.
pub(super) struct Partition {
    /// Offset of `log[0]` (earlier records were removed by retention).
    pub start: u64,
    pub log: VecDeque<Entry>,
    pub leo: Vec<u64>,
    pub isr: Vec<bool>,
    pub caught_up_at: Vec<Time>,
    pub hw: u64,
    /// The leader, if any (it may be dead and not yet replaced).
    pub leader: Option<usize>,
    /// An election is scheduled.
    pub electing: bool,
    /// Per follower: when its fetch in progress completes, the leader end
    /// it will bring back, and when it was asked.
    pub fetch: Vec<Option<(Time, u64, Time)>>,
    pub waiters: BTreeMap<u64, Vec<Waiter>>,
    pub isr_check_at: Option<Time>,
    pub idem: BTreeMap<NodeId, Idem>,
    pub parked: Vec<Parked>,
    /// The leader epochs and where each began (see [`super::epoch`]).
    pub epochs: EpochHistory,
    /// Its eligible leader replicas and held HW (see [`super::elr`]).
    pub elr: super::elr::Elr,
}

impl Partition {
    /// Bytes of allocated capacity in the log, the part that grows.
    pub fn memory_bytes(&self) -> usize {
        self.log.capacity() * std::mem::size_of::<Entry>()
    }

    pub fn new(replicas: usize, leader: usize) -> Self {
        Partition {
            start: 0,
            log: VecDeque::new(),
            leo: vec![0; replicas],
            isr: vec![true; replicas],
            caught_up_at: vec![0; replicas],
            hw: 0,
            leader: Some(leader),
            electing: false,
            fetch: vec![None; replicas],
            waiters: BTreeMap::new(),
            isr_check_at: None,
            idem: BTreeMap::new(),
            parked: Vec::new(),
            epochs: EpochHistory::default(),
            elr: super::elr::Elr::new(replicas),
        }
    }

    /// The offset the next append gets (the leader's LEO).
    pub fn end(&self) -> u64 {
        self.start + self.log.len() as u64
    }

    pub fn isr_count(&self) -> usize {
        self.isr.iter().filter(|&&x| x).count()
    }

    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        offset.checked_sub(self.start).and_then(|i| self.log.get(i as usize))
    }

    /// Appends `e` at the leader; returns its offset. Followers that were
    /// caught up were so until now.
    pub fn append(&mut self, now: Time, e: Entry) -> u64 {
        let end = self.end();
        for r in 0..self.leo.len() {
            if self.leo[r] == end {
                self.caught_up_at[r] = now;
            }
        }
        self.log.push_back(e);
        if let Some(l) = self.leader {
            self.leo[l] = end + 1;
        }
        end
    }

    /// Removes records beyond retention, telling `removed_id` each one's
    /// id; returns how many.
    pub fn trim(
        &mut self,
        now: Time,
        max_records: Option<u64>,
        max_age: Option<Time>,
        mut removed_id: impl FnMut(MsgId),
    ) -> u64 {
        let mut removed = 0;
        // As Kafka's log start offset, never past the HW: a record nobody
        // could read yet is not deleted.
        while let Some(front) = self.log.front().filter(|_| self.start < self.hw) {
            let too_many = max_records.is_some_and(|m| self.log.len() as u64 > m);
            let too_old = max_age.is_some_and(|a| now.saturating_sub(front.at) > a);
            if !(too_many || too_old) {
                break;
            }
            if let Some(e) = self.log.pop_front() {
                removed_id(e.rec.id);
            }
            self.start += 1;
            removed += 1;
        }
        removed
    }

    /// The new HW: the lowest LEO in the ISR (never above the leader's end).
    pub fn isr_min_leo(&self) -> u64 {
        let mut hw = self.end();
        for r in 0..self.leo.len() {
            if self.isr[r] {
                hw = hw.min(self.leo[r]);
            }
        }
        hw
    }

    /// Truncates the log to `new_end` (a new leader's end). Returns the
    /// truncated records. Idempotent producers resume from the first
    /// truncated sequence the producer was never told was written (it will
    /// resend those); truncated records it was told about are gone for good.
    pub fn truncate(&mut self, new_end: u64) -> Vec<Entry> {
        let keep = new_end.saturating_sub(self.start) as usize;
        let cut: Vec<Entry> = self.log.drain(keep.min(self.log.len())..).collect();
        for leo in &mut self.leo {
            *leo = (*leo).min(new_end);
        }
        self.hw = self.hw.min(new_end);
        self.epochs.truncate(new_end);
        self.waiters.retain(|&o, _| o < new_end);
        for (producer, idem) in &mut self.idem {
            idem.recent.retain(|&(_, o, n)| o + u64::from(n) <= new_end);
            let epoch = idem.seq.epoch();
            let mine = cut.iter().filter(|e| e.producer == *producer && e.epoch == epoch && e.epoch != 0);
            let mut resend_from = None;
            let mut past_told = None;
            for e in mine {
                if !e.acked {
                    resend_from = Some(resend_from.map_or(e.seq, |s: u64| s.min(e.seq)));
                } else {
                    past_told = Some(past_told.map_or(e.seq + 1, |s: u64| s.max(e.seq + 1)));
                }
            }
            for e in cut.iter().filter(|e| e.producer == *producer && e.epoch == epoch && e.epoch != 0 && e.acked) {
                idem.gone.insert(e.seq);
            }
            if let Some(s) = resend_from.or(past_told) {
                idem.seq.resume_at(s);
                idem.skip_gone();
            }
        }
        cut
    }

    /// Marks the records of `producer`'s batch numbered from `seq` as told
    /// (the producer had a positive answer for it).
    pub fn mark_told(&mut self, producer: NodeId, seq: u64) {
        let Some((first, n)) =
            self.idem.get(&producer).and_then(|i| i.recent.iter().find(|r| r.0 == seq)).map(|&(_, o, n)| (o, n))
        else {
            return;
        };
        self.mark_acked(first, first + u64::from(n));
    }

    /// Marks the records at offsets `from..to` as told.
    pub fn mark_acked(&mut self, from: u64, to: u64) {
        for o in from.max(self.start)..to {
            if let Some(e) = self.log.get_mut((o - self.start) as usize) {
                e.acked = true;
            }
        }
    }

    /// The first offset and length of `producer`'s recent batch numbered
    /// from `seq`, if it is kept.
    pub fn recent_batch(&self, producer: NodeId, seq: u64) -> Option<(u64, u32)> {
        let idem = self.idem.get(&producer)?;
        idem.recent.iter().find(|r| r.0 == seq).map(|&(_, o, n)| (o, n))
    }
}

impl Idem {
    /// The state of a session `epoch` adopted at once: the older sessions
    /// are fenced from now on, and nothing of theirs is kept.
    pub fn new(epoch: u32) -> Self {
        let mut idem = Idem::default();
        idem.seq.start_session(epoch);
        idem
    }

    /// Moves the next number past sequence numbers that are gone for good.
    pub fn skip_gone(&mut self) {
        while self.gone.remove(&self.seq.next()) {
            self.seq.resume_at(self.seq.next() + 1);
        }
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
