//! Disks and fsync: what each replica's log keeps through a power loss.
//!
//! A replica appends to its operating system's page cache; the data reaches
//! the disk when it is flushed. A process crash (`replica-crash`,
//! `leader-crash`, a broker node's `crash`) keeps the page cache, as a
//! `kill -9` of a Kafka broker loses nothing it wrote, so those faults are
//! unaffected by flushing. A **power loss** (`power-loss` fault) crashes
//! its replicas at once and each loses what it had not flushed: its log is
//! cut back to its flushed end.
//!
//! When a record counts as flushed, for replica `r` at time `t`:
//!
//! - with `flush_interval_ms = I` (Kafka's `log.flush.interval.ms`), every
//!   replica flushes its whole log at each multiple of `I` since the start:
//!   records the leader appended before the last such tick are on disk
//!   (`I = 0`: every append is flushed before anything else happens);
//! - unset (Kafka's default: `log.flush.interval.messages` and
//!   `log.flush.interval.ms` are effectively infinite, and Kafka's docs
//!   advise leaving flushing to the operating system and durability to
//!   replication), Linux writes back dirty pages: its flusher wakes every
//!   5 s (`vm.dirty_writeback_centisecs = 500`) and writes pages dirty for
//!   30 s or more (`vm.dirty_expire_centisecs = 3000`). Records the leader
//!   appended at least 30 s before the last 5 s tick are on disk.
//!
//! Simplifications: a record's age is counted from the leader's append,
//! also at followers (which get it a replication delay later, usually
//! milliseconds); a replica has on disk at most what it has (its log end);
//! Linux's writeback when dirty pages exceed `vm.dirty_background_ratio`
//! of memory, Kafka's flush at segment roll and at clean shutdown, and the
//! per-broker phase of the flush scheduler are left out; committed
//! offsets and transaction state are assumed durable.
//!
//! After a power loss, records that no replica kept on disk are gone at
//! once, counted as `unflushed_records_dropped` (cause `unflushed`).
//! When the power comes back, a partition whose leader lost power elects
//! its leader again with the usual clean-election rule (the first live
//! in-sync replica), whose log is then the truth: records another replica
//! had flushed but the new leader had not are cut by that election, as
//! any clean election cuts (cause `leader_failover`). Epochs and consumer
//! truncation detection then work as after any election.

use super::partition::Partition;
use super::{LogBroker, LogTimer};
use crate::engine::Ctx;
use crate::ledger::LossCause;
use crate::time::{ms_to_ns, Duration, Time};

/// Linux's `vm.dirty_writeback_centisecs` default: the flusher wakes every 5 s.
const WRITEBACK_NS: Duration = 5_000_000_000;
/// Linux's `vm.dirty_expire_centisecs` default: pages dirty 30 s are written.
const EXPIRE_NS: Duration = 30_000_000_000;

/// When the replicas of one log broker flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Disk {
    /// Kafka's `log.flush.interval.ms`, if set.
    interval_ns: Option<Duration>,
}

impl Disk {
    /// Flushing every `interval_ms`, or left to the OS when `None`.
    pub fn new(interval_ms: Option<f64>) -> Self {
        Disk { interval_ns: interval_ms.map(ms_to_ns) }
    }

    /// Records the leader appended before this time are on disk at `now`.
    pub fn flushed_before(&self, now: Time) -> Time {
        match self.interval_ns {
            Some(0) => now.saturating_add(1),
            Some(i) => now / i * i,
            None => (now / WRITEBACK_NS * WRITEBACK_NS).saturating_sub(EXPIRE_NS),
        }
    }

    /// The end of replica `r`'s log of `p` that is on disk at `now`.
    pub fn flushed_end(&self, p: &Partition, r: usize, now: Time) -> u64 {
        let before = self.flushed_before(now);
        // Appends come in time order: `at` never decreases along the log.
        let on_disk = p.start + p.log.partition_point(|e| e.at < before) as u64;
        on_disk.min(p.leo[r])
    }
}

impl LogBroker {
    /// The replicas a power-loss fault names (none named: all of them).
    fn powered(&self, replicas: &[u32]) -> Vec<usize> {
        let n = self.alive.len();
        if replicas.is_empty() {
            return (0..n).collect();
        }
        let mut out: Vec<usize> = replicas.iter().map(|&r| r as usize).filter(|&r| r < n).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// `replicas` lose power (or get it back, when `begins` is false).
    pub(super) fn power_loss(&mut self, ctx: &mut Ctx<LogTimer>, replicas: &[u32], begins: bool) {
        let hit = self.powered(replicas);
        if begins {
            ctx.mark("power loss");
            for pi in 0..self.parts.len() {
                self.drop_unflushed(ctx, pi, &hit);
            }
            for &r in &hit {
                self.replica_down(ctx, r);
            }
        } else {
            self.power_back(ctx, &hit);
        }
    }

    /// Cuts each of `hit`'s logs of `pi` back to its flushed end, and the
    /// partition's history back to the longest log any replica still has:
    /// what lies beyond it is on no replica.
    fn drop_unflushed(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, hit: &[usize]) {
        let now = ctx.now();
        let disk = self.disk;
        let p = &mut self.parts[pi];
        for &r in hit {
            p.leo[r] = disk.flushed_end(p, r, now);
        }
        // A replica that kept power keeps its log; the leader's is the
        // whole history.
        let kept = (0..p.leo.len())
            .map(|r| {
                if hit.contains(&r) {
                    p.leo[r]
                } else if p.leader == Some(r) {
                    p.end()
                } else {
                    p.leo[r]
                }
            })
            .max()
            .unwrap_or(0);
        if kept >= p.end() {
            return;
        }
        let cut = p.truncate(kept);
        for e in &cut {
            ctx.discarded(e.rec.id, LossCause::Unflushed);
        }
        ctx.metric_add("unflushed_records_dropped", cut.len() as f64);
        ctx.metric_add("truncated_records", cut.len() as f64);
        let told = cut.iter().filter(|e| e.acked).count();
        ctx.metric_add("acked_records_truncated", told as f64);
        self.refresh_backlog(ctx, pi);
    }

    /// Power is back for `hit`: they restart with what their disks kept,
    /// and every partition that one of them led elects a leader again.
    fn power_back(&mut self, ctx: &mut Ctx<LogTimer>, hit: &[usize]) {
        for &r in hit {
            self.down[r] = self.down[r].saturating_sub(1);
            if self.down[r] == 0 {
                self.alive[r] = true;
            }
        }
        for pi in 0..self.parts.len() {
            let p = &self.parts[pi];
            let back_in_sync = hit.iter().any(|&r| self.alive[r] && (p.isr[r] || self.unclean));
            match p.leader {
                // Its log lost its unflushed tail: it cannot simply go on.
                Some(l) if hit.contains(&l) => {
                    self.parts[pi].leader = None;
                    self.elect(ctx, pi);
                }
                // Offline: as when any replica returns.
                None if back_in_sync => self.elect(ctx, pi),
                _ => self.replicate(ctx, pi),
            }
        }
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
