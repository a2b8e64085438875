//! The autoscaler's decision, as a pure function of the lag it reads: the
//! rules of a Kubernetes HPA driven by KEDA's Kafka scaler, simplified to
//! one member at a time.
//!
//! - **Up**: the lag has stayed above `up_lag` for `up_window` (every
//!   reading in that window above it), fewer than `max` members run (the
//!   topic's partitions cap `max`: a member beyond them would sit idle),
//!   and the last change is at least `cooldown` ago.
//! - **Down**: the lag has stayed below `down_lag` for `down_window`
//!   (longer, as the HPA's 5-minute scale-down stabilization), more than
//!   `min` run, and the cooldown is over.
//! - After a change the windows start again: the next change must see the
//!   lag the new count gives.
//! - Fewer than `min` or more than `max` running (never by its own doing)
//!   is corrected at the next reading, cooldown or not.
//!
//! Left out: the HPA's proportional rule (desired = ceil(current x
//! metric / target)) and its scaling policies (N pods or P% per period):
//! this autoscaler adds or removes one member per change, so a big spike
//! takes several cooldowns to answer. Lag is read in seconds (the age of
//! the oldest uncommitted record), where KEDA's Kafka scaler reads
//! records per partition (`lagThreshold`).

use crate::time::Time;

/// The bounds, thresholds and windows of an autoscaler (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Fewest members running.
    pub min: usize,
    /// Most members running (already capped at the partition count).
    pub max: usize,
    /// Lag above which the group is short of members.
    pub up_lag_ns: u64,
    /// How long the lag must stay above `up_lag_ns`.
    pub up_window_ns: u64,
    /// Lag below which the group has members to spare.
    pub down_lag_ns: u64,
    /// How long the lag must stay below `down_lag_ns`.
    pub down_window_ns: u64,
    /// Least time between two changes.
    pub cooldown_ns: u64,
}

/// What to do after a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Hold,
    /// Add one member.
    Up,
    /// Remove one member.
    Down,
}

/// An autoscaler's memory of the lag it read.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    /// Its policy.
    pub policy: Policy,
    above_since: Option<Time>,
    below_since: Option<Time>,
    last_change: Option<Time>,
}

impl Autoscaler {
    /// An autoscaler that has read nothing yet.
    pub fn new(policy: Policy) -> Self {
        Autoscaler { policy, above_since: None, below_since: None, last_change: None }
    }

    /// Reads lag `lag_ns` at `now` with `running` members: what to do.
    /// The caller applies an `Up` or `Down` at once.
    pub fn observe(&mut self, now: Time, lag_ns: u64, running: usize) -> Decision {
        let p = self.policy;
        if running < p.min.min(p.max) {
            return self.change(now, Decision::Up);
        }
        if running > p.max {
            return self.change(now, Decision::Down);
        }
        self.above_since = if lag_ns > p.up_lag_ns { Some(self.above_since.unwrap_or(now)) } else { None };
        self.below_since = if lag_ns < p.down_lag_ns { Some(self.below_since.unwrap_or(now)) } else { None };
        if self.last_change.is_some_and(|t| now.saturating_sub(t) < p.cooldown_ns) {
            return Decision::Hold;
        }
        let held = |since: Option<Time>, window: u64| since.is_some_and(|t| now.saturating_sub(t) >= window);
        if running < p.max && held(self.above_since, p.up_window_ns) {
            return self.change(now, Decision::Up);
        }
        if running > p.min && held(self.below_since, p.down_window_ns) {
            return self.change(now, Decision::Down);
        }
        Decision::Hold
    }

    fn change(&mut self, now: Time, d: Decision) -> Decision {
        self.last_change = Some(now);
        self.above_since = None;
        self.below_since = None;
        d
    }
}

#[cfg(test)]
#[path = "autoscaler_tests.rs"]
mod tests;
