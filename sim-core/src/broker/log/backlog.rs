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

    /// Reports `lag_records.GROUP` and `lag_seconds.GROUP` for every group.
    pub(super) fn lag_gauges(&self, now: Time, out: &mut Gauges) {
        for (gi, g) in self.coord.infos().enumerate() {
            let t = &self.topics[g.topic];
            let (mut records, mut oldest_ns) = (0, 0);
            for (part, p) in self.parts[t.first..t.first + t.partitions].iter().enumerate() {
                let (first, lag) = uncommitted(self.coord.committed(gi, part), p);
                records += lag;
                if let Some(e) = p.entry(first).filter(|_| lag > 0) {
                    oldest_ns = oldest_ns.max(now.saturating_sub(e.at));
                }
            }
            out.sum(format!("lag_records.{}", g.name), records as f64);
            out.max(format!("lag_seconds.{}", g.name), oldest_ns as f64 / 1e9);
        }
    }
}

#[cfg(test)]
#[path = "backlog_tests.rs"]
mod tests;
