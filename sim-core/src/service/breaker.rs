//! A circuit breaker as a pure state machine: closed, open, half-open, with
//! a count-based sliding window, after resilience4j's `CircuitBreaker`
//! (its defaults: failure rate threshold 50 %, sliding window 100 calls,
//! minimum 100 calls, 60 s open, 10 calls permitted half-open).
//!
//! - **Closed**: every call is permitted; the outcome of each is recorded
//!   in a window of the last `sliding_window` calls. Once the window holds
//!   at least `minimum_calls` outcomes (at most the window's size, as
//!   resilience4j caps it) and the failure rate is at or above the
//!   threshold, the breaker opens.
//! - **Open**: every call is refused at once, until `open_ms` has passed;
//!   the first call asked for after that turns the breaker half-open (as
//!   resilience4j does without `automaticTransitionFromOpenToHalfOpen`).
//! - **Half-open**: `half_open_calls` calls are permitted, the rest
//!   refused; once all of them have an outcome, the breaker closes (a new,
//!   empty window) if their failure rate is below the threshold, or opens
//!   again.
//!
//! A permit names the state episode that granted it: an outcome that comes
//! back after the breaker changed state (a slow call permitted while closed,
//! answered once open) is ignored, where resilience4j would count it in
//! whatever state is current. A permit given back without an outcome
//! (the request it served was abandoned) frees its half-open slot.
//!
//! Left out: slow-call rate, time-based windows, ignored or recorded
//! exception types (every failure counts), `maxWaitDurationInHalfOpenState`.

use crate::time::{Duration, Time};
use std::collections::VecDeque;

/// A breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Opens at or above this failure rate (0 to 1).
    pub failure_rate_threshold: f64,
    /// Outcomes kept while closed.
    pub sliding_window: u32,
    /// Outcomes needed before the rate is judged.
    pub minimum_calls: u32,
    /// Time spent open before half-open.
    pub open_ns: Duration,
    /// Calls permitted while half-open.
    pub half_open_calls: u32,
}

/// The state a breaker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls are refused until this time.
    Open {
        /// When it may turn half-open.
        until: Time,
    },
    /// A quota of trial calls goes through.
    HalfOpen,
}

/// Leave to make one call, from the episode that granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    episode: u64,
}

/// A circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    /// Counts state changes: a permit from another episode is stale.
    episode: u64,
    /// Closed: the last outcomes (true: failed), and how many failed.
    window: VecDeque<bool>,
    window_failures: u32,
    /// Half-open: permits out, outcomes in, failures among them.
    permitted: u32,
    done: u32,
    failed: u32,
}

/// What recording an outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing visible.
    None,
    /// The breaker opened.
    Opened,
    /// The breaker closed.
    Closed,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            cfg,
            state: State::Closed,
            episode: 0,
            window: VecDeque::new(),
            window_failures: 0,
            permitted: 0,
            done: 0,
            failed: 0,
        }
    }

    /// Its state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Calls permitted and not yet answered in this half-open episode.
    pub fn half_open_in_flight(&self) -> u32 {
        self.permitted - self.done
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.episode += 1;
        self.window.clear();
        self.window_failures = 0;
        self.permitted = 0;
        self.done = 0;
        self.failed = 0;
    }

    /// Asks to make a call at `now`: a permit, or `None` when refused.
    pub fn try_acquire(&mut self, now: Time) -> Option<Permit> {
        if let State::Open { until } = self.state {
            if now < until {
                return None;
            }
            self.enter(State::HalfOpen);
        }
        if self.state == State::HalfOpen {
            if self.permitted >= self.cfg.half_open_calls {
                return None;
            }
            self.permitted += 1;
        }
        Some(Permit { episode: self.episode })
    }

    /// Gives back a permit whose call never got an outcome.
    pub fn release(&mut self, permit: Permit) {
        if permit.episode == self.episode && self.state == State::HalfOpen {
            self.permitted -= 1;
        }
    }

    fn rate_reached(&self, failures: u32, calls: u32) -> bool {
        calls > 0 && f64::from(failures) >= self.cfg.failure_rate_threshold * f64::from(calls)
    }

    /// Records the outcome of a permitted call at `now`.
    pub fn record(&mut self, now: Time, permit: Permit, failed: bool) -> Change {
        if permit.episode != self.episode {
            return Change::None;
        }
        match self.state {
            State::Open { .. } => Change::None,
            State::Closed => {
                self.window.push_back(failed);
                self.window_failures += u32::from(failed);
                if self.window.len() > self.cfg.sliding_window.max(1) as usize {
                    let old = self.window.pop_front().unwrap_or(false);
                    self.window_failures -= u32::from(old);
                }
                let minimum = self.cfg.minimum_calls.min(self.cfg.sliding_window).max(1);
                let calls = self.window.len() as u32;
                if calls >= minimum && self.rate_reached(self.window_failures, calls) {
                    self.enter(State::Open { until: now + self.cfg.open_ns });
                    return Change::Opened;
                }
                Change::None
            }
            State::HalfOpen => {
                self.done += 1;
                self.failed += u32::from(failed);
                if self.done < self.cfg.half_open_calls {
                    return Change::None;
                }
                if self.rate_reached(self.failed, self.done) {
                    self.enter(State::Open { until: now + self.cfg.open_ns });
                    Change::Opened
                } else {
                    self.enter(State::Closed);
                    Change::Closed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(window: u32, minimum: u32, half_open: u32) -> BreakerConfig {
        BreakerConfig {
            failure_rate_threshold: 0.5,
            sliding_window: window,
            minimum_calls: minimum,
            open_ns: 1000,
            half_open_calls: half_open,
        }
    }

    fn call(b: &mut Breaker, now: Time, failed: bool) -> (bool, Change) {
        match b.try_acquire(now) {
            Some(p) => (true, b.record(now, p, failed)),
            None => (false, Change::None),
        }
    }

    #[test]
    fn opens_only_once_the_minimum_is_recorded_and_the_rate_reached() {
        let mut b = Breaker::new(cfg(10, 4, 2));
        for _ in 0..3 {
            assert_eq!(call(&mut b, 0, true), (true, Change::None), "3 failures are below the minimum of 4");
        }
        assert_eq!(call(&mut b, 0, true), (true, Change::Opened));
        assert_eq!(b.state(), State::Open { until: 1000 });
        assert_eq!(b.try_acquire(999), None, "refused while open");
    }

    #[test]
    fn a_rate_below_the_threshold_keeps_it_closed_and_the_window_slides() {
        let mut b = Breaker::new(cfg(4, 4, 2));
        // F, S, S, S: 25 %; then F slides in for an S: F S S F = 50 %.
        for failed in [true, false, false, false] {
            assert_eq!(call(&mut b, 0, failed).1, Change::None);
        }
        assert_eq!(call(&mut b, 0, false).1, Change::None, "S S S S after the first F slid out");
        assert_eq!(call(&mut b, 0, true).1, Change::None, "S S S F: 25 %");
        assert_eq!(call(&mut b, 0, true).1, Change::Opened, "S S F F: 50 % reaches the threshold");
    }

    #[test]
    fn half_open_permits_its_quota_then_closes_or_opens_again() {
        let mut b = Breaker::new(cfg(2, 2, 2));
        call(&mut b, 0, true);
        assert_eq!(call(&mut b, 0, true).1, Change::Opened);
        let p1 = b.try_acquire(1000).expect("half-open after open_ms");
        assert_eq!(b.state(), State::HalfOpen);
        let p2 = b.try_acquire(1000).expect("second trial");
        assert_eq!(b.try_acquire(1000), None, "quota of 2 used");
        assert_eq!(b.record(1001, p1, false), Change::None);
        assert_eq!(b.record(1001, p2, true), Change::Opened, "1 of 2 failed: 50 % opens again");
        assert_eq!(b.state(), State::Open { until: 2001 });
        let p1 = b.try_acquire(2001).unwrap();
        let p2 = b.try_acquire(2001).unwrap();
        b.record(2002, p1, false);
        assert_eq!(b.record(2002, p2, false), Change::Closed);
        assert_eq!(call(&mut b, 2003, true).1, Change::None, "a fresh window");
    }

    #[test]
    fn stale_outcomes_and_released_permits() {
        let mut b = Breaker::new(cfg(2, 2, 1));
        let slow = b.try_acquire(0).unwrap();
        call(&mut b, 0, true);
        assert_eq!(call(&mut b, 0, true).1, Change::Opened);
        assert_eq!(b.record(5, slow, false), Change::None, "permitted while closed: ignored");
        let p = b.try_acquire(1000).unwrap();
        assert_eq!(b.try_acquire(1000), None);
        b.release(p);
        assert!(b.try_acquire(1000).is_some(), "a released permit frees its slot");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Acquire,
        Answer { which: usize, failed: bool },
        Release { which: usize },
        Wait { ns: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Acquire),
            3 => (any::<usize>(), any::<bool>()).prop_map(|(which, failed)| Op::Answer { which, failed }),
            1 => any::<usize>().prop_map(|which| Op::Release { which }),
            1 => (0u64..1500).prop_map(|ns| Op::Wait { ns }),
        ]
    }

    proptest! {
        /// Issue 13: while open or half-open, a breaker never lets more than
        /// its half-open quota through (none while open; per half-open
        /// episode, permits granted minus those given back at most the quota).
        #[test]
        fn never_more_than_the_half_open_quota_while_open_or_half_open(
            window in 1u32..8, minimum in 1u32..8, quota in 1u32..5,
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut b = Breaker::new(cfg(window, minimum, quota));
            let mut now: Time = 0;
            let mut out: Vec<Permit> = Vec::new();
            // Permits granted (net of releases) since the breaker last left Closed.
            let mut granted_since_open: i64 = 0;
            for op in ops {
                let before = b.state();
                match op {
                    Op::Acquire => {
                        let got = b.try_acquire(now);
                        if let (Some(p), State::Open { until }) = (got, before) {
                            prop_assert!(now >= until, "a permit while open, before open_ms passed");
                            out.push(p);
                            granted_since_open = 1;
                        } else if let Some(p) = got {
                            out.push(p);
                            if before == State::HalfOpen {
                                granted_since_open += 1;
                            }
                        }
                    }
                    Op::Answer { which, failed } if !out.is_empty() => {
                        let p = out.swap_remove(which % out.len());
                        b.record(now, p, failed);
                    }
                    Op::Release { which } if !out.is_empty() => {
                        let p = out.swap_remove(which % out.len());
                        if p.episode == b.episode && b.state() == State::HalfOpen {
                            granted_since_open -= 1;
                        }
                        b.release(p);
                    }
                    Op::Wait { ns } => now += ns,
                    _ => {}
                }
                match b.state() {
                    State::Closed => granted_since_open = 0,
                    State::Open { .. } => {
                        if before != b.state() {
                            granted_since_open = 0;
                        }
                    }
                    State::HalfOpen => {
                        prop_assert!(granted_since_open <= i64::from(quota));
                        prop_assert!(b.half_open_in_flight() <= quota);
                    }
                }
            }
        }
    }
}
