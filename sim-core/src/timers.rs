//! Deadlines: many logical timeouts behind few engine timers. A broker that
//! waits for an ack on every delivery, or a producer that waits for an ack on
//! every publish, would otherwise put one timer event per message in the
//! queue, most of them to be ignored. Here a component keeps its deadlines
//! and keeps one engine timer armed for the earliest live one.
//!
//! Deadlines usually come in order (a constant timeout added to a clock that
//! only moves forward), so they go to a FIFO, O(1) each; only one that is
//! earlier than the last goes to a heap.

use crate::engine::{Ctx, Timer};
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// Timeouts keyed by a `u64` (a message id, a delivery tag), served by
/// engine timers of one fixed value. Cancellation is lazy: the owner says,
/// when a deadline comes up, whether it still cares.
#[derive(Debug, Default)]
pub struct Deadlines {
    in_order: VecDeque<(Time, u64)>,
    out_of_order: BinaryHeap<Reverse<(Time, u64)>>,
    /// Engine timers already set, by firing time: how many at each.
    timers: BTreeMap<Time, u32>,
}

impl Deadlines {
    fn arm<T: Timer>(&mut self, ctx: &mut Ctx<T>, at: Time, tag: T) {
        if self.timers.first_key_value().is_none_or(|(&t, _)| at < t) {
            ctx.set_timer(at.saturating_sub(ctx.now()), tag);
            *self.timers.entry(at).or_default() += 1;
        }
    }

    /// Adds a deadline at `at` for `key`, setting the engine timer `tag` if
    /// no timer fires by then.
    pub fn add<T: Timer>(&mut self, ctx: &mut Ctx<T>, at: Time, key: u64, tag: T) {
        if self.in_order.back().is_none_or(|&(last, _)| last <= at) {
            self.in_order.push_back((at, key));
        } else {
            self.out_of_order.push(Reverse((at, key)));
        }
        self.arm(ctx, at, tag);
    }

    fn peek(&self) -> Option<(Time, u64)> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (Some(&a), None) => Some(a),
            (None, Some(&Reverse(b))) => Some(b),
            (None, None) => None,
        }
    }

    fn pop(&mut self) {
        let from_fifo = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(&a), Some(&Reverse(b))) => a <= b,
            (a, _) => a.is_some(),
        };
        if from_fifo {
            self.in_order.pop_front();
        } else {
            self.out_of_order.pop();
        }
    }

    /// Call when timer `tag` fires: returns every key whose deadline has
    /// passed and that `live(key, deadline)` still cares about, in deadline
    /// order, and makes sure a timer is set for the next live deadline.
    /// Dead entries at the head are dropped first, so deadlines that were
    /// cancelled (an ack came) cost no timer event of their own.
    pub fn expire<T: Timer>(&mut self, ctx: &mut Ctx<T>, tag: T, live: impl Fn(u64, Time) -> bool) -> Vec<u64> {
        let now = ctx.now();
        if let Some(count) = self.timers.get_mut(&now) {
            *count = count.checked_sub(1).expect("an armed timer was counted");
            if *count == 0 {
                self.timers.remove(&now);
            }
        }
        let mut out = Vec::new();
        while let Some((at, key)) = self.peek() {
            if at > now {
                break;
            }
            self.pop();
            if live(key, at) {
                out.push(key);
            }
        }
        while let Some((at, key)) = self.peek() {
            if live(key, at) {
                self.arm(ctx, at, tag);
                break;
            }
            self.pop();
        }
        out
    }

    /// Forgets everything (after a crash, which cancels the engine's timers).
    pub fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
        self.timers.clear();
    }

    /// Forgets everything and cancels the engine timers (`tag`) set for it:
    /// for when the owner knows no deadline matters any more (every ack came).
    pub fn cancel_all<T: Timer>(&mut self, ctx: &mut Ctx<T>, tag: T) {
        if !self.timers.is_empty() {
            ctx.cancel_timer(tag);
        }
        self.clear();
    }

    /// Drops the deadlines `live` no longer cares about, now rather than
    /// when they come due: for an owner whose deadlines lie far ahead (a
    /// 30-minute consumer timeout) and are mostly cancelled long before.
    /// Timers already set stay set.
    pub fn compact(&mut self, live: impl Fn(u64, Time) -> bool) {
        self.in_order.retain(|&(at, key)| live(key, at));
        self.out_of_order.retain(|&Reverse((at, key))| live(key, at));
    }

    /// Number of deadlines kept (including lazily cancelled ones).
    pub fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    /// True when no deadline is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
