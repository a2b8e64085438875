//! The log broker's backlog, as Kafka defines consumer lag: per consumer
//! group and partition, the partition's end offset as a reader sees it
//! (the high watermark) minus the group's committed offset. It is the
//! number of records the group can read but has not committed yet.
//!
//! Summed over groups and partitions it is the broker's queue depth
//! (`queue_depth`, `max_queue_depth`): a record that two groups have yet to
//! commit counts twice. Per group it is reported as gauges at every
//! sampling instant: `lag_records.GROUP` (summed over partitions) and
//! `lag_seconds.GROUP`, the age of the oldest record the group has not
//! committed (the most over partitions; 0 when none waits).
//!
//! The count is kept as it changes, never by a scan of the log: each
//! partition's share is recounted (one subtraction per group reading it)
//! when its HW rises, when retention deletes its oldest records, when an
//! election cuts it back, and when a group commits. Records the leader has
//! but the HW has not passed are not counted (no one may read them yet). A
//! group that never committed counts from the oldest record kept: it reads
//! from there. Logs and committed offsets survive a crash of the broker, so
//! the backlog does too.

use super::partition::Partition;
use super::{LogBroker, LogTimer};
use crate::engine::Ctx;
use crate::metrics::Gauges;
use crate::time::Time;

/// Where a group with `committed` reads `p` from, and how many records
/// below the HW it has yet to commit.
fn uncommitted(committed: Option<u64>, p: &Partition) -> (u64, u64) {
    let first = committed.unwrap_or(0).max(p.start);
    (first, p.hw.saturating_sub(first))
}

impl LogBroker {
    /// Recounts partition `pi`'s share of the backlog and reports the
    /// broker's queue depth if it changed.
    pub(super) fn refresh_backlog(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) {
        let t = &self.topics[self.topic_of[pi] as usize];
        let (p, part) = (&self.parts[pi], pi - t.first);
        let share = t.readers.iter().map(|&g| uncommitted(self.coord.committed(g, part), p).1).sum();
        let old = std::mem::replace(&mut self.backlog[pi], share);
        if old != share {
            self.backlog_total = self.backlog_total - old + share;
            ctx.set_queue_depth(self.backlog_total);
        }
    }

    /// Reports `lag_records.GROUP` and `lag_seconds.GROUP` for every group,
    /// and each partition's share, `partition_lag_records.GROUP.P` and
    /// `partition_lag_seconds.GROUP.P`.
    pub(super) fn lag_gauges(&self, now: Time, out: &mut Gauges) {
        for (gi, g) in self.coord.infos().enumerate() {
            let (mut records, mut oldest_ns) = (0, 0);
            for (part, lag, age_ns) in self.partition_lags(gi, now) {
                records += lag;
                oldest_ns = oldest_ns.max(age_ns);
                out.sum(format!("partition_lag_records.{}.{part}", g.name), lag as f64);
                out.max(format!("partition_lag_seconds.{}.{part}", g.name), age_ns as f64 / 1e9);
            }
            out.sum(format!("lag_records.{}", g.name), records as f64);
            out.max(format!("lag_seconds.{}", g.name), oldest_ns as f64 / 1e9);
        }
    }

    /// Group `gi`'s lag at `now`: records not committed, over its topic's
    /// partitions, and the age of the oldest (0 when none waits).
    pub(super) fn group_lag(&self, gi: usize, now: Time) -> (u64, u64) {
        self.partition_lags(gi, now).fold((0, 0), |(r, a), (_, lag, age)| (r + lag, a.max(age)))
    }

    /// Each partition of group `gi`'s topic: its number, the records the
    /// group has not committed, and the age of the oldest of them.
    fn partition_lags(&self, gi: usize, now: Time) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        let t = &self.topics[self.coord.info(gi).topic];
        self.parts[t.first..t.first + t.partitions].iter().enumerate().map(move |(part, p)| {
            let (first, lag) = uncommitted(self.coord.committed(gi, part), p);
            let age = p.entry(first).filter(|_| lag > 0).map_or(0, |e| now.saturating_sub(e.at));
            (part, lag, age)
        })
    }
}

#[cfg(test)]
#[path = "backlog_tests.rs"]
mod tests;
