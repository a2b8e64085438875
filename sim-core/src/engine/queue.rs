//! The event queue: pending events ordered by (time, insertion sequence),
//! earliest first. Heap entries are 24-byte keys; the events themselves sit
//! in a slab whose slots are reused, so the steady state allocates nothing,
//! and a cancelled timer leaves a tombstone key that frees its slot when it
//! comes up.
//!
//! Cancelling a timer (by its value) or all of a node's timers (a crash)
//! scans the slab. Both are rare: a crash, a subscription confirmed, a
//! drained component letting its timeouts go. An index of each node's
//! timers would make them cheap, but costs every timer event about 3% of
//! the engine's instructions on mm1, so it waits until a scenario needs it.

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
}

impl EventQueue {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), seq: 0, work: 0, steering: 0 }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        self.work += u64::from(ev.is_work());
        self.steering += u64::from(ev.is_steering());
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
    }

    /// Takes the event out of `slot`.
    #[inline(always)]
    fn take(&mut self, slot: u32) -> Option<Ev> {
        let ev = self.slab[slot as usize].take()?;
        // Checked where they are read: below zero they would wrap past the
        // number of pending events.
        self.work = self.work.wrapping_sub(u64::from(ev.is_work()));
        self.steering = self.steering.wrapping_sub(u64::from(ev.is_steering()));
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
        for slot in 0..self.slab.len() as u32 {
            if self.slab[slot as usize].as_ref().is_some_and(|ev| ev.timer_of(node) == Some(word)) {
                self.take(slot);
            }
        }
    }

    /// Cancels every pending timer of `node` (a crash).
    pub(crate) fn cancel_timers_of(&mut self, node: NodeId) {
        for slot in 0..self.slab.len() as u32 {
            if self.slab[slot as usize].as_ref().is_some_and(|ev| ev.timer_of(node).is_some()) {
                self.take(slot);
            }
        }
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
    }

    /// The events still pending, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Ev> {
        self.slab.iter().flatten()
    }
}
