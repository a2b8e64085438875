//! A partition's leader-epoch history, and the truncation detection built on
//! it (Kafka's KIP-320, in consumers since Kafka 2.1).
//!
//! Every election starts a new leader epoch at the new leader's log end. A
//! record belongs to the epoch in which it was appended, so the history
//! (epoch -> first offset) says which epoch wrote each offset. When an
//! election cuts the log back, the epochs that only the cut records had are
//! forgotten, and the next epoch starts at the cut: offsets get reused by
//! records of a later epoch.
//!
//! A consumer's position (and a committed offset) carries the epoch of the
//! last record it consumed. Asked about that epoch, the leader answers with
//! the end of it in its own history: the first offset of the next epoch it
//! knows, or its log end (Kafka's OffsetsForLeaderEpoch). If that end lies
//! before the consumer's offset, the log diverged from what the consumer
//! read (an unclean election truncated it, then reused the offsets), and
//! the consumer rewinds to the end, the first offset known to diverge, so
//! the records written there since are read and not skipped.
//!
//! Left out: the epoch cache lives with the partition here (one history for
//! all replicas, as the log itself is kept as one history); the consumer's
//! separate validation request is folded into its fetch, which carries the
//! epoch (the same answer, without the extra round trip).

/// A partition's leader epochs: (epoch, first offset), in epoch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EpochHistory {
    entries: Vec<(u32, u64)>,
    /// The latest epoch ever begun: the controller never gives an epoch
    /// twice, even when truncation forgot it.
    latest: u32,
}

impl Default for EpochHistory {
    /// Epoch 0 starts at offset 0.
    fn default() -> Self {
        EpochHistory { entries: vec![(0, 0)], latest: 0 }
    }
}

impl EpochHistory {
    /// The current (latest) epoch.
    #[cfg(test)]
    pub fn current(&self) -> u32 {
        self.latest
    }

    /// The epoch that wrote `offset` (the latest epoch starting at or before it).
    pub fn epoch_of(&self, offset: u64) -> u32 {
        self.entries.iter().rev().find(|&&(_, start)| start <= offset).map_or(0, |&(e, _)| e)
    }

    /// The first offset after the epochs that wrote `[offset, ...)` and
    /// share its epoch: where a fetch from `offset` must stop so that one
    /// answer holds records of one epoch.
    pub fn epoch_end_after(&self, offset: u64, log_end: u64) -> u64 {
        let epoch = self.epoch_of(offset);
        self.entries.iter().find(|&&(e, start)| e > epoch && start > offset).map_or(log_end, |&(_, s)| s)
    }

    /// Kafka's OffsetsForLeaderEpoch: for `epoch`, the largest epoch known
    /// at or below it and the end of that epoch (the next known epoch's
    /// start, or `log_end` for the current one). None if every known epoch
    /// is above `epoch` (the history was cut below it: nothing to compare).
    pub fn end_of(&self, epoch: u32, log_end: u64) -> Option<(u32, u64)> {
        let i = self.entries.iter().rposition(|&(e, _)| e <= epoch)?;
        let end = self.entries.get(i + 1).map_or(log_end, |&(_, s)| s);
        Some((self.entries[i].0, end))
    }

    /// Where a consumer at (`offset`, `epoch`) must go on: `None` while its
    /// position is consistent with this log, else the divergence point and
    /// the epoch it belongs to.
    pub fn diverged(&self, offset: u64, epoch: u32, log_end: u64) -> Option<(u64, u32)> {
        let (known, end) = self.end_of(epoch, log_end)?;
        (end < offset).then_some((end, known))
    }

    /// The log was cut back to `new_end`: epochs that began at or after it
    /// wrote only records that are gone (the first epoch always stays).
    pub fn truncate(&mut self, new_end: u64) {
        while self.entries.len() > 1 && self.entries.last().is_some_and(|&(_, s)| s >= new_end) {
            self.entries.pop();
        }
    }

    /// Epoch `epoch`, given by a cluster's controller, wrote from `start`
    /// on (a replica becoming its leader at its log end, or a follower
    /// appending the epoch's first record it receives). An epoch not newer
    /// than the last known one changes nothing.
    pub fn record(&mut self, epoch: u32, start: u64) {
        if self.entries.last().is_none_or(|&(e, _)| e < epoch) {
            self.entries.push((epoch, start));
            self.latest = self.latest.max(epoch);
        }
    }

    /// A new leader begins the next epoch at `start` (its log end); returns it.
    pub fn begin(&mut self, start: u64) -> u32 {
        self.latest += 1;
        self.entries.push((self.latest, start));
        self.latest
    }
}

#[cfg(test)]
#[path = "epoch_tests.rs"]
mod tests;
