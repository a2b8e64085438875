//! The event queue: pending events ordered by (time, insertion sequence),
//! earliest first. Heap entries are 24-byte keys; the events themselves sit
//! in a slab whose slots are reused, so the steady state allocates nothing,
//! and a cancelled timer leaves a tombstone key that frees its slot when it
//! comes up.
//!
//! Each node's pending timers are indexed (a list of their slots), so that
//! cancelling a node's timer by value, or all its timers at a crash, looks
//! at that node's timers only.

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

    /// The node whose timer this is, if it is a timer.
    #[inline]
    fn timer_node(&self) -> Option<NodeId> {
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
    /// For a slot holding a timer: its place in its node's `timers` list.
    timer_pos: Vec<u32>,
    /// Per node: the slots of its pending timers, in no particular order.
    timers: Vec<Vec<u32>>,
    free: Vec<u32>,
    seq: u64,
    work: u64,
    steering: u64,
}

impl EventQueue {
    /// An empty queue for a run of `nodes` nodes.
    pub(crate) fn new(nodes: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            timer_pos: Vec::new(),
            timers: vec![Vec::new(); nodes],
            free: Vec::new(),
            seq: 0,
            work: 0,
            steering: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        self.work += u64::from(ev.is_work());
        self.steering += u64::from(ev.is_steering());
        let seq = self.seq;
        let node = ev.timer_node();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.slab.push(Some(ev));
                self.timer_pos.push(0);
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        if let Some(node) = node {
            let list = &mut self.timers[node as usize];
            self.timer_pos[slot as usize] = list.len() as u32;
            list.push(slot);
        }
        self.heap.push(Key { time, seq, slot });
        self.seq += 1;
    }

    /// Takes the event out of `slot` (a timer leaves its node's index).
    #[inline(always)]
    fn take(&mut self, slot: u32) -> Option<Ev> {
        let ev = self.slab[slot as usize].take()?;
        self.work -= u64::from(ev.is_work());
        self.steering -= u64::from(ev.is_steering());
        if let Some(node) = ev.timer_node() {
            let list = &mut self.timers[node as usize];
            let at = self.timer_pos[slot as usize] as usize;
            assert_eq!(list[at], slot, "the timer index points at its slot");
            list.swap_remove(at);
            if let Some(&moved) = list.get(at) {
                self.timer_pos[moved as usize] = at as u32;
            }
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
        let mut i = self.timers[node as usize].len();
        while i > 0 {
            i -= 1;
            let slot = self.timers[node as usize][i];
            if matches!(self.slab[slot as usize], Some(Ev::Timer { tag, .. } | Ev::Tick { tag, .. }) if tag == word) {
                self.take(slot);
            }
        }
    }

    /// Cancels every pending timer of `node` (a crash).
    pub(crate) fn cancel_timers_of(&mut self, node: NodeId) {
        while let Some(&slot) = self.timers[node as usize].last() {
            self.take(slot);
        }
    }

    /// Pending messages and timers: while any is left, something can still happen.
    pub(crate) fn work(&self) -> u64 {
        self.work
    }

    /// Pending faults and the run deadline.
    pub(crate) fn steering(&self) -> u64 {
        self.steering
    }

    /// The events still pending, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Ev> {
        self.slab.iter().flatten()
    }
}
