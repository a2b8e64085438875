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
    /// The earliest key of `timers`, kept so that adding a deadline (once
    /// per message) reads a field rather than walks the map.
    earliest: Option<Time>,
}

impl Deadlines {
    #[inline]
    fn arm<T: Timer>(&mut self, ctx: &mut Ctx<T>, at: Time, tag: T) {
        if self.earliest.is_none_or(|t| at < t) {
            ctx.set_timer(at.saturating_sub(ctx.now()), tag);
            *self.timers.entry(at).or_default() += 1;
            self.earliest = Some(at);
        }
    }

    /// Adds a deadline at `at` for `key`, setting the engine timer `tag` if
    /// no timer fires by then.
    #[inline]
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
                self.earliest = self.timers.first_key_value().map(|(&t, _)| t);
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
        self.earliest = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Harness;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Due;

    impl Timer for Due {
        fn to_word(self) -> u64 {
            1
        }
        fn from_word(word: u64) -> Option<Self> {
            (word == 1).then_some(Due)
        }
    }

    /// Deadlines in order need one engine timer, for the first; an earlier
    /// one sets another; each expiry hands back what is due and sets a
    /// timer for the next live deadline only if none is set by then.
    #[test]
    fn one_engine_timer_serves_deadlines_in_order_until_an_earlier_one_comes() {
        let mut h = Harness::new(0);
        let mut d = Deadlines::default();
        let (_, e) = h.act(|ctx| {
            d.add(ctx, 100, 1, Due);
            d.add(ctx, 200, 2, Due);
            d.add(ctx, 300, 3, Due);
        });
        assert_eq!(e.timers::<Due>(), vec![(100, Due)], "one timer, for the first");
        let (_, e) = h.act(|ctx| d.add(ctx, 50, 4, Due));
        assert_eq!(e.timers::<Due>(), vec![(50, Due)], "an earlier deadline sets its own");
        h.now = 50;
        let (due, e) = h.act(|ctx| d.expire(ctx, Due, |_, _| true));
        assert_eq!(due, vec![4]);
        assert!(e.timers::<Due>().is_empty(), "the timer at 100 still serves the next");
        h.now = 100;
        let (due, e) = h.act(|ctx| d.expire(ctx, Due, |key, _| key != 2));
        assert_eq!(due, vec![1]);
        // Key 2 (at 200) was cancelled: the next live one is at 300.
        assert_eq!(e.timers::<Due>(), vec![(200, Due)]);
        h.now = 300;
        let (due, e) = h.act(|ctx| d.expire(ctx, Due, |key, _| key != 2));
        assert_eq!(due, vec![3]);
        assert!(e.timers::<Due>().is_empty() && d.is_empty());
        // Nothing is armed any more: a new deadline sets a timer again.
        let (_, e) = h.act(|ctx| d.add(ctx, 400, 5, Due));
        assert_eq!(e.timers::<Due>(), vec![(100, Due)]);
    }
}
