//! Deadlines: many logical timeouts behind few engine timers. A broker that
//! waits for an ack on every delivery, or a producer that waits for an ack on
//! every publish, would otherwise put one timer event per message in the
//! queue, most of them to be ignored. Here a component keeps its deadlines in
//! a small heap and keeps one engine timer armed for the earliest one.

use crate::engine::Ctx;
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Timeouts keyed by a `u64` (a message id, a delivery tag), served by
/// engine timers with one fixed tag. Cancellation is lazy: the owner checks,
/// when a key expires, whether it still cares.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    /// Engine timers already set, by firing time (with multiplicity).
    timers: BTreeMap<Time, u32>,
}

impl Deadlines {
    fn arm(&mut self, ctx: &mut Ctx, at: Time, tag: u64) {
        if self.timers.first_key_value().is_none_or(|(&t, _)| at < t) {
            *self.timers.entry(at).or_insert(0) += 1;
            ctx.set_timer(at.saturating_sub(ctx.now()), tag);
        }
    }

    /// Adds a deadline at `at` for `key`, setting the engine timer `tag` if
    /// no timer fires by then.
    pub fn add(&mut self, ctx: &mut Ctx, at: Time, key: u64, tag: u64) {
        self.heap.push(Reverse((at, key)));
        self.arm(ctx, at, tag);
    }

    /// Call when timer `tag` fires: returns every key whose deadline has
    /// passed, in deadline order, and makes sure a timer is set for the next.
    pub fn expire(&mut self, ctx: &mut Ctx, tag: u64) -> Vec<u64> {
        let now = ctx.now();
        if let Some(n) = self.timers.get_mut(&now) {
            *n -= 1;
            if *n == 0 {
                self.timers.remove(&now);
            }
        }
        let mut out = Vec::new();
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push(key);
        }
        if let Some(&Reverse((at, _))) = self.heap.peek() {
            self.arm(ctx, at, tag);
        }
        out
    }

    /// Forgets everything (after a crash, which cancels the engine's timers).
    pub fn clear(&mut self) {
        self.heap.clear();
        self.timers.clear();
    }

    /// Number of deadlines kept (including lazily cancelled ones).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no deadline is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
