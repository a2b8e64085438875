//! The event queue: pending events ordered by (time, insertion sequence),
//! earliest first. Heap entries are 24-byte keys; the events themselves sit
//! in a slab whose slots are reused, so the steady state allocates nothing,
//! and a cancelled timer leaves a tombstone key that frees its slot when it
//! comes up.
//!
//! Cancelling a timer (by its value) or all of a node's timers (a crash)
//! looks only at that node's timers: each node keeps the slots its timers
//! were put in, checked against the slab when read (a slot may have fired
//! and been reused since) and compacted once stale entries outnumber the
//! live ones. So a cancel costs the node's own pending timers, and 50,000
//! consumers confirming their subscriptions stay linear.

use crate::message::{Msg, NodeId};
use crate::time::Time;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens at an instant.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A message arrives at `to`.
    Arrive { from: NodeId, to: NodeId, msg: Msg },
    /// A timer set by `node` in its `incarnation` fires.
    Timer { node: NodeId, incarnation: u32, tag: u64 },
    /// A background timer: like `Timer`, but it is not work (a periodic
    /// heartbeat must not keep a drained run from ending).
    Tick { node: NodeId, incarnation: u32, tag: u64 },
    /// Fault number `.0` begins.
    FaultBegin(usize),
    /// Fault number `.0` ends.
    FaultEnd(usize),
    /// Take a time-series sample.
    Sample,
    /// The run phase's deadline.
    EndRun,
    /// The drain phase's deadline.
    EndDrain,
}

impl Ev {
    /// Messages and timers are work.
    pub(crate) fn is_work(&self) -> bool {
        matches!(self, Ev::Arrive { .. } | Ev::Timer { .. })
    }

    /// The word of this event if it is a timer of `node`.
    fn timer_of(&self, node: NodeId) -> Option<u64> {
        match self {
            Ev::Timer { node: n, tag, .. } | Ev::Tick { node: n, tag, .. } if *n == node => Some(*tag),
            _ => None,
        }
    }

    /// The node whose timer this event is, if it is one.
    #[inline(always)]
    fn timer_owner(&self) -> Option<NodeId> {
        match self {
            Ev::Timer { node, .. } | Ev::Tick { node, .. } => Some(*node),
            _ => None,
        }
    }

    /// Faults and the run deadline steer the run; samples only observe.
    pub(crate) fn is_steering(&self) -> bool {
        matches!(self, Ev::FaultBegin(_) | Ev::FaultEnd(_) | Ev::EndRun)
    }
}

/// A heap entry: the event's place in time and its slot in the slab. Only
/// these 24 bytes move while the heap sifts; the event stays put.
#[derive(Clone, Copy)]
struct Key {
    time: Time,
    seq: u64,
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    // Reversed: BinaryHeap is a max-heap, and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// The pending events, earliest first, ties in insertion order. Events live
/// in a slab whose slots are reused, so the steady state allocates nothing.
pub(crate) struct EventQueue {
    heap: BinaryHeap<Key>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    seq: u64,
    work: u64,
    steering: u64,
    /// Per node, the slots its timers were put in.
    timers: Vec<NodeTimers>,
    /// The capacity of all the nodes' slot lists, in entries.
    listed: usize,
}

/// The slots a node's timers were put in, some perhaps stale (fired, then
/// reused), and how many of its timers are pending.
#[derive(Default)]
struct NodeTimers {
    slots: Vec<u32>,
    live: u32,
}

impl EventQueue {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            work: 0,
            steering: 0,
            timers: Vec::new(),
            listed: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        self.work += u64::from(ev.is_work());
        self.steering += u64::from(ev.is_steering());
        let owner = ev.timer_owner();
        let seq = self.seq;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.slab.push(Some(ev));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Key { time, seq, slot });
        self.seq += 1;
        if let Some(node) = owner {
            self.note_timer(node, slot);
        }
    }

    /// Remembers that `node` has a timer in `slot`. The list is compacted
    /// when stale entries outnumber live ones (with some slack, so that a
    /// node with one timer at a time compacts every 64 timers, not each).
    #[inline(always)]
    fn note_timer(&mut self, node: NodeId, slot: u32) {
        let i = node as usize;
        if i >= self.timers.len() {
            self.timers.resize_with(i + 1, NodeTimers::default);
        }
        let t = &mut self.timers[i];
        let before = t.slots.capacity();
        t.slots.push(slot);
        self.listed += t.slots.capacity() - before;
        t.live += 1;
        if t.slots.len() > 2 * t.live as usize + 64 {
            self.compact(node);
        }
    }

    /// Drops `node`'s stale slot entries (and repeats: a slot reused for
    /// another of its timers is listed twice).
    #[cold]
    fn compact(&mut self, node: NodeId) {
        let mut slots = std::mem::take(&mut self.timers[node as usize].slots);
        slots.retain(|&slot| self.slab[slot as usize].as_ref().is_some_and(|ev| ev.timer_owner() == Some(node)));
        slots.sort_unstable();
        slots.dedup();
        self.timers[node as usize].slots = slots;
    }

    /// Takes the event out of `slot`.
    #[inline(always)]
    fn take(&mut self, slot: u32) -> Option<Ev> {
        let ev = self.slab[slot as usize].take()?;
        // Checked where they are read: below zero they would wrap past the
        // number of pending events.
        self.work = self.work.wrapping_sub(u64::from(ev.is_work()));
        self.steering = self.steering.wrapping_sub(u64::from(ev.is_steering()));
        if let Some(node) = ev.timer_owner() {
            self.timers[node as usize].live -= 1;
        }
        Some(ev)
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(Time, Ev)> {
        loop {
            let key = self.heap.pop()?;
            self.free.push(key.slot);
            // A cancelled event left an empty slot behind (a tombstone).
            if let Some(ev) = self.take(key.slot) {
                return Some((key.time, ev));
            }
        }
    }

    /// Cancels every pending timer of `node` whose word is `word`. Its key
    /// stays in the heap as a tombstone and frees the slot when it comes up.
    pub(crate) fn cancel_timer(&mut self, node: NodeId, word: u64) {
        self.cancel_where(node, |w| w == word);
    }

    /// Cancels every pending timer of `node` (a crash).
    pub(crate) fn cancel_timers_of(&mut self, node: NodeId) {
        self.cancel_where(node, |_| true);
    }

    /// Cancels the pending timers of `node` whose word passes `pick`.
    fn cancel_where(&mut self, node: NodeId, pick: impl Fn(u64) -> bool) {
        let Some(t) = self.timers.get_mut(node as usize) else { return };
        if t.live == 0 {
            t.slots.clear();
            return;
        }
        let slots = std::mem::take(&mut t.slots);
        for &slot in &slots {
            if self.slab[slot as usize].as_ref().and_then(|ev| ev.timer_of(node)).is_some_and(&pick) {
                self.take(slot);
            }
        }
        self.timers[node as usize].slots = slots;
        self.compact(node);
    }

    /// Pending messages and timers: while any is left, something can still happen.
    pub(crate) fn work(&self) -> u64 {
        assert!(self.work <= self.slab.len() as u64, "the count of pending work went below zero");
        self.work
    }

    /// Pending faults and the run deadline.
    pub(crate) fn steering(&self) -> u64 {
        assert!(self.steering <= self.slab.len() as u64, "the count of pending faults went below zero");
        self.steering
    }

    /// Bytes of allocated capacity: the slab's slots, the heap's keys and
    /// the free list.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Option<Ev>>()
            + self.heap.capacity() * std::mem::size_of::<Key>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.timers.capacity() * std::mem::size_of::<NodeTimers>()
            + self.listed * std::mem::size_of::<u32>()
    }

    /// The events still pending, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Ev> {
        self.slab.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(node: NodeId, tag: u64) -> Ev {
        Ev::Timer { node, incarnation: 0, tag }
    }

    fn drain(q: &mut EventQueue) -> Vec<(Time, NodeId, u64)> {
        let mut out = Vec::new();
        while let Some((t, ev)) = q.pop() {
            if let Ev::Timer { node, tag, .. } = ev {
                out.push((t, node, tag));
            }
        }
        out
    }

    #[test]
    fn cancelling_by_value_takes_only_that_nodes_timers_with_that_word() {
        let mut q = EventQueue::new();
        q.push(1, timer(0, 7));
        q.push(2, timer(1, 7));
        q.push(3, timer(0, 8));
        q.push(4, timer(0, 7));
        q.cancel_timer(0, 7);
        assert_eq!(q.work(), 2);
        assert_eq!(drain(&mut q), vec![(2, 1, 7), (3, 0, 8)]);
    }

    #[test]
    fn a_slot_reused_after_firing_is_not_cancelled_for_its_old_owner() {
        let mut q = EventQueue::new();
        q.push(1, timer(0, 7));
        assert_eq!(drain(&mut q), vec![(1, 0, 7)]);
        // The freed slot now holds node 1's timer with the same word.
        q.push(5, timer(1, 7));
        q.cancel_timer(0, 7);
        q.cancel_timers_of(0);
        assert_eq!(drain(&mut q), vec![(5, 1, 7)]);
    }

    #[test]
    fn a_crash_cancels_all_of_a_nodes_timers_and_ticks_but_not_its_messages() {
        let mut q = EventQueue::new();
        q.push(1, timer(2, 1));
        q.push(2, Ev::Tick { node: 2, incarnation: 0, tag: 3 });
        q.push(3, timer(3, 1));
        q.cancel_timers_of(2);
        assert_eq!(q.work(), 1);
        assert_eq!(drain(&mut q), vec![(3, 3, 1)]);
    }

    /// A node that sets a million timers, one at a time, keeps a short list:
    /// stale entries are compacted away.
    #[test]
    fn a_nodes_list_of_timer_slots_stays_bounded_by_its_live_timers() {
        let mut q = EventQueue::new();
        for t in 0..1_000_000 {
            q.push(t, timer(0, 1));
            q.pop().expect("the timer fires");
        }
        assert!(q.timers[0].slots.len() <= 2 + 64 + 1, "{} entries", q.timers[0].slots.len());
        assert!(q.memory_bytes() < 4096, "{} bytes", q.memory_bytes());
    }

    /// Cancelling is linear in the node's own timers: 50,000 nodes each
    /// cancelling one timer among 100,000 pending takes well under the
    /// 5 x 10^9 slab checks a scan would.
    #[test]
    fn many_nodes_each_cancelling_a_timer_leave_the_others_alone() {
        let mut q = EventQueue::new();
        let n = 50_000;
        for node in 0..n {
            q.push(10, timer(node, 1));
            q.push(20, timer(node, 2));
        }
        for node in 0..n {
            q.cancel_timer(node, 1);
        }
        assert_eq!(q.work(), u64::from(n));
        let fired = drain(&mut q);
        assert_eq!(fired.len(), n as usize);
        assert!(fired.iter().all(|&(t, _, tag)| t == 20 && tag == 2));
    }
}
