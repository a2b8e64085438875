//! The event queue: pending events ordered by (time, insertion sequence),
//! earliest first. The events sit in a slab whose slots are reused, so the
//! steady state allocates nothing; what is ordered is a small key per
//! event (its time, its sequence and its slot), and a cancelled timer
//! leaves a tombstone key that frees its slot when it comes up.
//!
//! The keys are ordered by a radix heap ([`Radix`], in `queue/radix.rs`):
//! simulated time never goes back, so every key pushed is later than the
//! last one popped, and a key only has to be filed in the bucket of the
//! highest bit where it differs from that last key. A push is one
//! `leading_zeros` and a `Vec::push`; a pop takes the lowest non-empty
//! bucket and, when it holds several keys, refiles them into lower
//! buckets, each key moving down a few times in its life instead of
//! sifting through log2(n) levels of a heap each time. Keys are packed in
//! 16 bytes (time, a 32-bit sequence renumbered in order when it runs
//! out, and the slot), so comparing two is one 128-bit compare.
//!
//! Measured (issue 17) against the standard binary heap of 24-byte keys
//! that this replaced, the same heap of packed 16-byte keys and a 4-ary
//! heap of packed keys (all in `queue/keys.rs`, compared in
//! `benches/event_queue.rs`), in callgrind instructions of whole runs
//! (one build choosing the ordering at run time, so the four share its
//! small dispatch cost):
//!
//! | workload | binary, 24 B | binary, 16 B | 4-ary, 16 B | radix |
//! |---|---|---|---|---|
//! | mm1.toml, 200k messages (1.0M events, ~5 pending) | 1,314M | 1,269M | 1,272M | 1,258M |
//! | cluster.toml (263k events, thousands pending) | 3,966M | 3,930M | 3,975M | 3,870M |
//!
//! A key pushed earlier than the last popped (the engine never does it)
//! is still ordered exactly: the radix heap refiles its keys from zero.
//!
//! Cancelling a timer (by its value) or all of a node's timers (a crash)
//! looks only at that node's timers: each node keeps the slots its timers
//! were put in, checked against the slab when read (a slot may have fired
//! and been reused since) and compacted once stale entries outnumber the
//! live ones. So a cancel costs the node's own pending timers, and 50,000
//! consumers confirming their subscriptions stay linear.

mod keys;
mod radix;

pub use keys::{Binary16, Binary24, Keys, Quad16};
pub use radix::Radix;

use crate::message::{Msg, NodeId};
use crate::time::Time;

/// The ordering the engine uses (see the module doc for why).
pub(crate) type Chosen = Radix;

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

/// The pending events, earliest first, ties in insertion order. Events live
/// in a slab whose slots are reused, so the steady state allocates nothing.
pub(crate) struct EventQueue<K: Keys = Chosen> {
    /// The keys (time, slot), in their order.
    keys: K,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
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

impl<K: Keys> EventQueue<K> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self::with_keys(K::default())
    }

    /// An empty queue ordering its events with `keys`.
    fn with_keys(keys: K) -> Self {
        EventQueue { keys, slab: Vec::new(), free: Vec::new(), work: 0, steering: 0, timers: Vec::new(), listed: 0 }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        self.work += u64::from(ev.is_work());
        self.steering += u64::from(ev.is_steering());
        let owner = ev.timer_owner();
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
        self.keys.push(time, slot);
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
            let (time, slot) = self.keys.pop()?;
            self.free.push(slot);
            // A cancelled event left an empty slot behind (a tombstone).
            if let Some(ev) = self.take(slot) {
                return Some((time, ev));
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

    /// Bytes of allocated capacity: the slab's slots, the keys, the free
    /// list and the timer lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Option<Ev>>()
            + self.keys.memory_bytes()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.timers.capacity() * std::mem::size_of::<NodeTimers>()
            + self.listed * std::mem::size_of::<u32>()
    }

    /// The events still pending, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Ev> {
        self.slab.iter().flatten()
    }
}

/// The queue as the criterion benchmark (`benches/event_queue.rs`) drives
/// it: timers only, over any ordering. Not part of the library's API.
#[doc(hidden)]
pub mod bench {
    pub use super::{Binary16, Binary24, Keys, Quad16, Radix};
    use super::{Ev, EventQueue};
    use crate::message::NodeId;
    use crate::time::Time;

    /// An event queue ordering its keys with `K`.
    pub struct Queue<K: Keys>(EventQueue<K>);

    impl<K: Keys> Default for Queue<K> {
        fn default() -> Self {
            Queue(EventQueue::new())
        }
    }

    impl<K: Keys> Queue<K> {
        /// Sets timer `word` of `node` to fire at `time`.
        #[inline]
        pub fn push_timer(&mut self, time: Time, node: NodeId, word: u64) {
            self.0.push(time, Ev::Timer { node, incarnation: 0, tag: word });
        }

        /// The time of the earliest pending event, taken out.
        #[inline]
        pub fn pop(&mut self) -> Option<Time> {
            self.0.pop().map(|(time, _)| time)
        }

        /// Cancels `node`'s pending timers whose word is `word`.
        pub fn cancel_timer(&mut self, node: NodeId, word: u64) {
            self.0.cancel_timer(node, word);
        }

        /// Pending timers.
        pub fn work(&self) -> u64 {
            self.0.work()
        }

        /// Bytes of allocated capacity.
        pub fn memory_bytes(&self) -> usize {
            self.0.memory_bytes()
        }
    }
}

#[cfg(test)]
mod tests;
