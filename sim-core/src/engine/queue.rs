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
//! **The lane for the present** (round 3 of issue 17). Most events are
//! pushed at the current time (`now`, the time of the last event popped):
//! in the M/M/1 workload three of the five per message, the zero-latency
//! network hops. Those skip the ordering: they go to a FIFO, the lane, and
//! an event that cannot be cancelled (anything but a timer) goes there
//! whole, without a slab slot. The order stays exactly (time, sequence):
//! - every event in the lane is at `now`, and every key in the ordering is
//!   at `now` or later (a pop moves `now` to the earliest);
//! - a key at `now` in the ordering was pushed while the time was still
//!   earlier than `now` (once `now` is reached, pushes at it go to the
//!   lane), so before every event in the lane; the lane's own events are
//!   in push order;
//! - so a pop takes the ordering's keys at `now` first, then the lane,
//!   then the later keys. Whether the ordering holds a key at `now` is one
//!   compare for the radix heap: its last key popped is at `now`, and keys
//!   at that time sit in its 64 low buckets (after a rare rebase, which
//!   resets its last key, it looks at its lowest bucket instead).
//!
//! A timer at `now` goes to the lane as its slot (it stays in the slab and
//! its node's list, so a cancel finds it and drops `work` at once; the
//! lane then holds a tombstone that frees the slot when it comes up). A
//! push earlier than `now` (the engine never makes one) moves the lane's
//! events into the ordering at `now`, in order, and `now` back to the
//! pushed time, so the rules above hold again. Measured on mm1 at 200k
//! messages: 799.5M -> 783.6M instructions (the hop's push and pop cost
//! a VecDeque push and pop instead of a slab slot and a radix key).
//!
//! Cancelling a timer (by its value) or all of a node's timers (a crash)
//! looks only at that node's pending timers: they are linked into a list
//! per node through their slab entries (each entry holds the slots of the
//! node's previous and next pending timer), so setting a timer links it in
//! and firing or cancelling it unlinks it, a few stores each, with no list
//! to grow, compact or check for stale slots. A cancel walks the node's own
//! pending timers, and 50,000 consumers confirming their subscriptions stay
//! linear. (Round 2 of issue 17: this replaced per-node vectors of slots,
//! compacted as they went stale, which cost a vector push, a capacity check
//! and periodic retain/sort/dedup per timer.)

mod keys;
mod radix;

pub use keys::{Binary16, Binary24, Keys, Quad16};
pub use radix::Radix;

use crate::message::{Msg, NodeId};
use crate::time::Time;
use std::collections::VecDeque;

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
    /// The word of this event if it is a timer of `node`.
    fn timer_of(&self, node: NodeId) -> Option<u64> {
        match self {
            Ev::Timer { node: n, tag, .. } | Ev::Tick { node: n, tag, .. } if *n == node => Some(*tag),
            _ => None,
        }
    }

    /// What the queue counts of this event, decoded once: (is work, is
    /// steering, the node whose timer it is). Messages and timers are work
    /// (while any is pending, something can still happen); faults and the
    /// run deadline steer the run; samples only observe.
    #[inline(always)]
    fn class(&self) -> (bool, bool, Option<NodeId>) {
        match *self {
            Ev::Arrive { .. } => (true, false, None),
            Ev::Timer { node, .. } => (true, false, Some(node)),
            Ev::Tick { node, .. } => (false, false, Some(node)),
            Ev::FaultBegin(_) | Ev::FaultEnd(_) | Ev::EndRun => (false, true, None),
            Ev::Sample | Ev::EndDrain => (false, false, None),
        }
    }
}

/// No slot: the end of a node's list of pending timers.
const NONE: u32 = u32::MAX;

/// One slot of the slab: an event (none once it was taken, until its key
/// comes up and frees the slot) and, for a pending timer, the slots of its
/// node's previous and next pending timers.
struct Entry {
    ev: Option<Ev>,
    prev: u32,
    next: u32,
}

/// An event pushed at the present time, in the lane.
enum Lane {
    /// An event that cannot be cancelled (not a timer), held here.
    Ev(Ev),
    /// A timer, held in the slab (and its node's list) so that it can be
    /// cancelled; a cancelled one leaves a tombstone here.
    Slot(u32),
}

/// The pending events, earliest first, ties in insertion order. Events live
/// in a slab whose slots are reused, so the steady state allocates nothing.
pub(crate) struct EventQueue<K: Keys = Chosen> {
    /// The keys (time, slot) of the events later than `now`, in their
    /// order, and of those at `now` pushed before `now` was reached.
    keys: K,
    /// The events pushed at `now` once it was reached, in push order: they
    /// come after the keys at `now` and before every later key.
    lane: VecDeque<Lane>,
    /// The time of the last event popped (zero before the first).
    now: Time,
    slab: Vec<Entry>,
    free: Vec<u32>,
    work: u64,
    steering: u64,
    /// Per node, the slot of its latest pending timer ([`NONE`]: none),
    /// the head of its list.
    heads: Vec<u32>,
}

impl<K: Keys> EventQueue<K> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self::with_keys(K::default())
    }

    /// An empty queue ordering its events with `keys`.
    fn with_keys(keys: K) -> Self {
        EventQueue {
            keys,
            lane: VecDeque::new(),
            now: 0,
            slab: Vec::new(),
            free: Vec::new(),
            work: 0,
            steering: 0,
            heads: Vec::new(),
        }
    }

    /// Adds `ev` at `time` (after every event pushed before it at that time).
    #[inline(always)]
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        let (work, steering, owner) = ev.class();
        if owner.is_none() && time == self.now {
            return self.hold(ev, work, steering);
        }
        self.insert(time, ev, work, steering, owner);
    }

    /// Adds the arrival of `msg` from `from` at `to` at `time`: a push that
    /// knows its kind (a message's own tag shares the event's, so a general
    /// push would decode it).
    #[inline(always)]
    pub(crate) fn push_arrive(&mut self, time: Time, from: NodeId, to: NodeId, msg: Msg) {
        if time == self.now {
            return self.hold(Ev::Arrive { from, to, msg }, true, false);
        }
        self.insert(time, Ev::Arrive { from, to, msg }, true, false, None);
    }

    /// Adds timer `tag` of `node` (set in its `incarnation`) at `time`; a
    /// `background` one is not work.
    #[inline(always)]
    pub(crate) fn push_timer(&mut self, time: Time, node: NodeId, incarnation: u32, tag: u64, background: bool) {
        let ev = if background { Ev::Tick { node, incarnation, tag } } else { Ev::Timer { node, incarnation, tag } };
        self.insert(time, ev, !background, false, Some(node));
    }

    /// Holds `ev`, pushed at `now` and not a timer (nothing can cancel
    /// it), whole in the lane; `work` and `steering` say what it is.
    #[inline(always)]
    fn hold(&mut self, ev: Ev, work: bool, steering: bool) {
        self.work += u64::from(work);
        self.steering += u64::from(steering);
        self.lane.push_back(Lane::Ev(ev));
    }

    /// Puts `ev` in a slot, the slot in the lane (at `now`) or its key in
    /// the ordering, and a timer in its node's list; `work`, `steering` and
    /// `owner` say what it is.
    #[inline(always)]
    fn insert(&mut self, time: Time, ev: Ev, work: bool, steering: bool, owner: Option<NodeId>) {
        self.work += u64::from(work);
        self.steering += u64::from(steering);
        let slot = self.store(ev);
        if time == self.now {
            self.lane.push_back(Lane::Slot(slot));
        } else if time > self.now {
            self.keys.push(time, slot);
        } else {
            self.past(time, slot);
        }
        if let Some(node) = owner {
            self.link(node, slot);
        }
    }

    /// A key earlier than `now` (the engine never pushes one): the lane's
    /// events go into the ordering at `now` (after its keys at `now`, which
    /// were pushed before them), then the key, and `now` moves back to its
    /// time, so that the lane's rule holds again.
    #[cold]
    #[inline(never)]
    fn past(&mut self, time: Time, slot: u32) {
        let now = self.now;
        for item in std::mem::take(&mut self.lane) {
            let at = match item {
                Lane::Ev(ev) => self.store(ev),
                Lane::Slot(at) => at,
            };
            self.keys.push(now, at);
        }
        self.keys.push(time, slot);
        self.now = time;
    }

    /// Puts `ev` in a free slot (or a new one) and returns the slot.
    #[inline(always)]
    fn store(&mut self, ev: Ev) -> u32 {
        let entry = Entry { ev: Some(ev), prev: NONE, next: NONE };
        match self.free.pop() {
            Some(slot) => {
                // A free slot is empty (its event was taken): replacing it
                // needs no drop glue.
                let old = std::mem::replace(&mut self.slab[slot as usize], entry);
                debug_assert!(old.ev.is_none(), "a free slot holds no event");
                std::mem::forget(old);
                slot
            }
            None => {
                self.slab.push(entry);
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        }
    }

    /// Puts the timer in `slot` at the head of `node`'s list.
    #[inline(always)]
    fn link(&mut self, node: NodeId, slot: u32) {
        let i = node as usize;
        if i >= self.heads.len() {
            self.grow(i);
        }
        let head = std::mem::replace(&mut self.heads[i], slot);
        self.slab[slot as usize].next = head;
        if head != NONE {
            self.slab[head as usize].prev = slot;
        }
    }

    /// Makes room in the heads for node `i`.
    #[cold]
    fn grow(&mut self, i: usize) {
        self.heads.resize(i + 1, NONE);
    }

    /// Takes the timer in `slot` (of `node`) out of its node's list.
    #[inline(always)]
    fn unlink(&mut self, node: NodeId, slot: u32) {
        let Entry { prev, next, .. } = self.slab[slot as usize];
        if prev == NONE {
            self.heads[node as usize] = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next != NONE {
            self.slab[next as usize].prev = prev;
        }
    }

    /// Takes the event out of `slot`.
    #[inline(always)]
    fn take(&mut self, slot: u32) -> Option<Ev> {
        let ev = self.slab[slot as usize].ev.take()?;
        // Checked where they are read: below zero they would wrap past the
        // number of pending events.
        let (work, steering, owner) = ev.class();
        self.work = self.work.wrapping_sub(u64::from(work));
        self.steering = self.steering.wrapping_sub(u64::from(steering));
        if let Some(node) = owner {
            self.unlink(node, slot);
        }
        Some(ev)
    }

    /// Takes the earliest event out: the keys at `now` first, then the
    /// lane, then the later keys.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(Time, Ev)> {
        loop {
            if !self.lane.is_empty() && !self.keys.due(self.now) {
                if let Some(ev) = self.pop_lane() {
                    return Some((self.now, ev));
                }
                continue;
            }
            let (time, slot) = self.keys.pop()?;
            self.now = time;
            self.free.push(slot);
            // A cancelled event left an empty slot behind (a tombstone).
            if let Some(ev) = self.take(slot) {
                return Some((time, ev));
            }
        }
    }

    /// Takes the lane's first event (none: it was a cancelled timer).
    #[inline(always)]
    fn pop_lane(&mut self) -> Option<Ev> {
        match self.lane.pop_front()? {
            Lane::Ev(ev) => {
                let (work, steering, _) = ev.class();
                self.work = self.work.wrapping_sub(u64::from(work));
                self.steering = self.steering.wrapping_sub(u64::from(steering));
                Some(ev)
            }
            Lane::Slot(slot) => {
                self.free.push(slot);
                self.take(slot)
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
        let mut slot = self.heads.get(node as usize).copied().unwrap_or(NONE);
        while slot != NONE {
            let entry = &self.slab[slot as usize];
            let next = entry.next;
            if entry.ev.as_ref().and_then(|ev| ev.timer_of(node)).is_some_and(&pick) {
                self.take(slot);
            }
            slot = next;
        }
    }

    /// True when no message or timer is pending (the engine asks at every
    /// event; [`EventQueue::work`] checks the count).
    #[inline(always)]
    pub(crate) fn idle(&self) -> bool {
        self.work == 0
    }

    /// Pending messages and timers: while any is left, something can still happen.
    pub(crate) fn work(&self) -> u64 {
        assert!(self.work <= self.held(), "the count of pending work went below zero");
        self.work
    }

    /// Pending faults and the run deadline.
    pub(crate) fn steering(&self) -> u64 {
        assert!(self.steering <= self.held(), "the count of pending faults went below zero");
        self.steering
    }

    /// Places for pending events: the slab's slots and the lane's.
    fn held(&self) -> u64 {
        (self.slab.len() + self.lane.len()) as u64
    }

    /// Bytes of allocated capacity: the slab's slots, the keys, the lane,
    /// the free list and the heads of the timer lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Entry>()
            + self.keys.memory_bytes()
            + self.lane.capacity() * std::mem::size_of::<Lane>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.heads.capacity() * std::mem::size_of::<u32>()
    }

    /// The events still pending, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Ev> {
        let lane = self.lane.iter().filter_map(|item| match item {
            Lane::Ev(ev) => Some(ev),
            Lane::Slot(_) => None,
        });
        self.slab.iter().filter_map(|e| e.ev.as_ref()).chain(lane)
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
