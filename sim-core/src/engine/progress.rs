//! How far a run has got, readable from another thread while it runs: the
//! simulated time, the events dispatched, the messages produced and the
//! phase, with the run's plan (the end of the run phase, the drain bound).
//!
//! The engine publishes into a shared [`Progress`] of atomics at its
//! periodic bound check (every [`super::MEMORY_CHECK_EVERY`] events), never
//! per event, and once more when the run ends, so that watching costs
//! nothing measurable and a run that nobody watches pays one `None` check.
//! Publishing only writes: nothing here feeds back into the run, so a
//! watched run is the same run, event for event. What to draw, when and
//! on which terminal is the caller's business (the CLI's progress bar):
//! this module knows no wall clock and no terminal.

use super::Phase;
use crate::time::{Duration, Time};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// The share of a run's progress given to its run phase; the drain, which
/// usually ends long before its bound, gets the rest.
pub const RUN_SHARE: f64 = 0.9;

/// "No planned end": a run phase bound only by message counts.
const NONE: u64 = u64::MAX;

/// A run's progress, shared between the engine (which writes it) and
/// watchers (which read [`Progress::snapshot`]). Each field is read on its
/// own, so a snapshot may mix two publications: fine for a display.
#[derive(Debug)]
pub struct Progress {
    now: AtomicU64,
    events: AtomicU64,
    produced: AtomicU64,
    /// 0: not started; then 1 + the [`Phase`] index.
    phase: AtomicU8,
    /// When the drain began (meaningful from the drain on).
    drain_from: AtomicU64,
    /// The planned end of the run phase, or [`NONE`].
    run_ns: AtomicU64,
    drain_ns: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            now: AtomicU64::new(0),
            events: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            phase: AtomicU8::new(0),
            drain_from: AtomicU64::new(0),
            run_ns: AtomicU64::new(NONE),
            drain_ns: AtomicU64::new(0),
        }
    }
}

/// What a [`Progress`] held when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Simulated time of the last publication.
    pub now: Time,
    /// Events dispatched.
    pub events: u64,
    /// Messages produced (as the ledger counts them).
    pub produced: u64,
    /// The phase; `None` before the run's first publication.
    pub phase: Option<Phase>,
    /// When the drain began (once in the drain or done).
    pub drain_from: Time,
    /// The planned end of the run phase (`run.duration_ms`), if any.
    pub run_ns: Option<Time>,
    /// The longest drain (`run.drain_ms`).
    pub drain_ns: Duration,
}

impl Progress {
    /// A progress not yet attached to a run (see `Engine::watch`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the run's plan: the end of its run phase (if it has one) and
    /// its longest drain.
    pub(super) fn plan(&self, run_ns: Option<Duration>, drain_ns: Duration) {
        self.run_ns.store(run_ns.unwrap_or(NONE), Relaxed);
        self.drain_ns.store(drain_ns, Relaxed);
    }

    /// Publishes where the run is.
    pub(super) fn publish(&self, now: Time, events: u64, produced: u64, phase: Phase, drain_from: Time) {
        self.now.store(now, Relaxed);
        self.events.store(events, Relaxed);
        self.produced.store(produced, Relaxed);
        self.drain_from.store(drain_from, Relaxed);
        let code = match phase {
            Phase::Run => 1,
            Phase::Drain => 2,
            Phase::Done => 3,
        };
        self.phase.store(code, Relaxed);
    }

    /// Reads the latest publication.
    pub fn snapshot(&self) -> Snapshot {
        let run_ns = self.run_ns.load(Relaxed);
        Snapshot {
            now: self.now.load(Relaxed),
            events: self.events.load(Relaxed),
            produced: self.produced.load(Relaxed),
            phase: match self.phase.load(Relaxed) {
                1 => Some(Phase::Run),
                2 => Some(Phase::Drain),
                3 => Some(Phase::Done),
                _ => None,
            },
            drain_from: self.drain_from.load(Relaxed),
            run_ns: (run_ns != NONE).then_some(run_ns),
            drain_ns: self.drain_ns.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// How much of the run is done, from 0 to 1: the run phase counts for
    /// [`RUN_SHARE`], by simulated time against `run.duration_ms` or by
    /// messages produced against `planned_messages` (whichever is further,
    /// as the run phase ends at the first of the two), and the drain for
    /// the rest, by simulated time against its bound. `None` while the run
    /// phase has neither a planned end nor a planned message count.
    pub fn fraction(&self, planned_messages: Option<u64>) -> Option<f64> {
        match self.phase {
            None => Some(0.0),
            Some(Phase::Done) => Some(1.0),
            Some(Phase::Run) => {
                let by_time = self.run_ns.map(|r| if r == 0 { 1.0 } else { self.now as f64 / r as f64 });
                let by_count = planned_messages.filter(|&m| m > 0).map(|m| self.produced as f64 / m as f64);
                let run = match (by_time, by_count) {
                    (Some(a), Some(b)) => a.max(b),
                    (a, b) => a.or(b)?,
                };
                Some(RUN_SHARE * run.min(1.0))
            }
            Some(Phase::Drain) => {
                let spent = self.now.saturating_sub(self.drain_from) as f64;
                let drain = if self.drain_ns == 0 { 1.0 } else { (spent / self.drain_ns as f64).min(1.0) };
                Some(RUN_SHARE + (1.0 - RUN_SHARE) * drain)
            }
        }
    }
}
