//! The event queue: pending events ordered by (time, insertion sequence),
//! earliest first. The events sit in slabs whose slots are reused, so the
//! steady state allocates nothing; what is ordered is a small key per
//! event (its time, its sequence and its slot), and a cancelled timer
//! leaves a tombstone key that frees its slot when it comes up. Timers
//! have a slab of their own, of compact 32-byte entries (node,
//! incarnation, word and their node's list), and a key's slot says which
//! slab it points into (round 4 of issue 17: a timer no longer builds,
//! moves and decodes a whole event record).
//!
//! The engine takes the next event in steps rather than as one popped
//! record ([`EventQueue::lane_first`], [`EventQueue::pop_lane`],
//! [`EventQueue::pop_key`], then [`EventQueue::take_timer`] or
//! [`EventQueue::take_event`]): each kind of event then goes straight
//! from where it was to its handler, with nothing built, merged and
//! decoded in between. [`EventQueue::pop`] composes the steps, for the
//! tests and the benchmark.
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
//! lane then holds a tombstone that frees the slot when it comes up), and
//! so does any other event at `now` but a message (a fault, a sample: rare,
//! and kept in the slab so that the lane holds only arrivals whole). A
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
use crate::ring::Ring;
use crate::time::Time;

/// The ordering the engine uses (see the module doc for why).
pub(crate) type Chosen = Radix;

/// Something that happens at an instant.
#[derive(Debug, Clone)]
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

/// The bit that marks a key's slot as one of the timers' slab (clear: the
/// other events' slab).
const TIMER_SLOT: u32 = 1 << 31;

/// Whether `slot` (from the lane or a key) is a timer's: take it with
/// [`EventQueue::take_timer`], else with [`EventQueue::take_event`].
#[inline(always)]
pub(crate) fn is_timer(slot: u32) -> bool {
    slot & TIMER_SLOT != 0
}

/// The slot of the last entry of `slab` (either slab: its number leaves
/// the timer bit clear).
#[inline(always)]
fn last_slot<T>(slab: &[T]) -> u32 {
    u32::try_from(slab.len() - 1).ok().filter(|&s| s < TIMER_SLOT).expect("fewer than 2^31 pending events of a kind")
}

/// One slot of the timers' slab: a pending timer, compact (32 bytes, no
/// event enum to build, move or decode), and the slots of its node's
/// previous and next pending timers.
#[derive(Clone, Copy)]
struct TimerEntry {
    tag: u64,
    node: NodeId,
    incarnation: u32,
    prev: u32,
    next: u32,
    /// What the slot holds: [`TimerState`].
    state: TimerState,
}

/// What a slot of the timers' slab holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TimerState {
    /// Nothing: the timer fired or was cancelled (a cancelled one's key is
    /// still in the ordering, a tombstone that frees the slot when it
    /// comes up).
    Empty,
    /// A timer: work.
    Timer,
    /// A background timer (a tick): not work.
    Tick,
}

/// An event pushed at the present time, in the lane.
pub(crate) enum Lane {
    /// A message's arrival (it cannot be cancelled), held here whole: the
    /// common case, three of the M/M/1 workload's five events a message.
    Arrive { from: NodeId, to: NodeId, msg: Msg },
    /// Any other event, held in a slab: a timer (in its node's list, so
    /// that it can be cancelled; a cancelled one leaves a tombstone here),
    /// or a rare fault, sample or deadline at the present.
    Slot(u32),
}

/// The pending events, earliest first, ties in insertion order. Events live
/// in slabs whose slots are reused, so the steady state allocates nothing.
pub(crate) struct EventQueue<K: Keys = Chosen> {
    /// The keys (time, slot) of the events later than `now`, in their
    /// order, and of those at `now` pushed before `now` was reached.
    keys: K,
    /// The events pushed at `now` once it was reached, in push order: they
    /// come after the keys at `now` and before every later key.
    lane: Ring<Lane>,
    /// The time of the last event popped (zero before the first).
    now: Time,
    /// The events other than timers (none once taken, until the key comes up).
    events: Vec<Option<Ev>>,
    free_events: Vec<u32>,
    /// The timers, with their nodes' lists.
    timers: Vec<TimerEntry>,
    free_timers: Vec<u32>,
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
            lane: Ring::new(),
            now: 0,
            events: Vec::new(),
            free_events: Vec::new(),
            timers: Vec::new(),
            free_timers: Vec::new(),
            work: 0,
            steering: 0,
            heads: Vec::new(),
        }
    }

    /// Adds `ev` at `time` (after every event pushed before it at that time).
    pub(crate) fn push(&mut self, time: Time, ev: Ev) {
        match ev {
            Ev::Arrive { from, to, msg } => self.push_arrive(time, from, to, msg),
            Ev::Timer { node, incarnation, tag } => self.push_timer(time, node, incarnation, tag, false),
            Ev::Tick { node, incarnation, tag } => self.push_timer(time, node, incarnation, tag, true),
            other => {
                let (work, steering, _) = other.class();
                self.work += u64::from(work);
                self.steering += u64::from(steering);
                let slot = self.store(other);
                self.file(time, slot);
            }
        }
    }

    /// Adds the arrival of `msg` from `from` at `to` at `time`.
    #[inline(always)]
    pub(crate) fn push_arrive(&mut self, time: Time, from: NodeId, to: NodeId, msg: Msg) {
        self.work += 1;
        if time == self.now {
            self.lane.push_back(Lane::Arrive { from, to, msg });
        } else {
            let slot = self.store(Ev::Arrive { from, to, msg });
            self.file(time, slot);
        }
    }

    /// Adds timer `tag` of `node` (set in its `incarnation`) at `time`; a
    /// `background` one is not work.
    #[inline(always)]
    pub(crate) fn push_timer(&mut self, time: Time, node: NodeId, incarnation: u32, tag: u64, background: bool) {
        self.work += u64::from(!background);
        let state = if background { TimerState::Tick } else { TimerState::Timer };
        let i = node as usize;
        if i >= self.heads.len() {
            self.grow(i);
        }
        // At the head of its node's list.
        let head = std::mem::replace(&mut self.heads[i], NONE);
        let entry = TimerEntry { tag, node, incarnation, prev: NONE, next: head, state };
        let slot = match self.free_timers.pop() {
            Some(slot) => {
                self.timers[slot as usize] = entry;
                slot
            }
            None => {
                self.timers.push(entry);
                last_slot(&self.timers)
            }
        };
        self.heads[i] = slot;
        if head != NONE {
            self.timers[head as usize].prev = slot;
        }
        self.file(time, slot | TIMER_SLOT);
    }

    /// Files `slot` at `time`: in the lane (at `now`) or its key in the
    /// ordering.
    #[inline(always)]
    fn file(&mut self, time: Time, slot: u32) {
        if time == self.now {
            self.lane.push_back(Lane::Slot(slot));
        } else if time > self.now {
            // Every key popped so far is at `now` or earlier.
            self.keys.push_later(time, slot);
        } else {
            self.past(time, slot);
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
        for item in std::mem::take(&mut self.lane).drain_all() {
            let at = match item {
                Lane::Arrive { from, to, msg } => self.store(Ev::Arrive { from, to, msg }),
                Lane::Slot(at) => at,
            };
            self.keys.push(now, at);
        }
        self.keys.push(time, slot);
        self.now = time;
    }

    /// Puts `ev` (not a timer) in a free slot (or a new one) and returns the slot.
    #[inline(always)]
    fn store(&mut self, ev: Ev) -> u32 {
        match self.free_events.pop() {
            Some(slot) => {
                // A free slot is empty (its event was taken): replacing it
                // needs no drop glue.
                let old = self.events[slot as usize].replace(ev);
                debug_assert!(old.is_none(), "a free slot holds no event");
                std::mem::forget(old);
                slot
            }
            None => {
                self.events.push(Some(ev));
                last_slot(&self.events)
            }
        }
    }

    /// Makes room in the heads for node `i`.
    #[cold]
    fn grow(&mut self, i: usize) {
        self.heads.resize(i + 1, NONE);
    }

    /// Takes the timer in timers' `slot` out (none: it was cancelled), out
    /// of its node's list.
    #[inline(always)]
    fn take_timer_entry(&mut self, slot: u32) -> Option<TimerEntry> {
        let entry = &mut self.timers[slot as usize];
        let t = *entry;
        if t.state == TimerState::Empty {
            return None;
        }
        entry.state = TimerState::Empty;
        // Checked where it is read: below zero it would wrap past the
        // number of pending events.
        self.work = self.work.wrapping_sub(u64::from(t.state == TimerState::Timer));
        if t.prev == NONE {
            self.heads[t.node as usize] = t.next;
        } else {
            self.timers[t.prev as usize].next = t.next;
        }
        if t.next != NONE {
            self.timers[t.next as usize].prev = t.prev;
        }
        Some(t)
    }

    /// Whether the next event is the lane's first: the lane holds one
    /// and the ordering none at `now`. The engine then takes it with
    /// [`EventQueue::pop_lane`], else the next key with
    /// [`EventQueue::pop_key`]. (Steps rather than one pop returning an
    /// event: each kind of event then goes its own way in the engine,
    /// with no event record built, stored and decoded in between.)
    #[inline(always)]
    pub(crate) fn lane_first(&self) -> bool {
        !self.lane.is_empty() && !self.keys.due(self.now)
    }

    /// Takes the lane's first event out (there must be one): an arrival,
    /// or the slot of another event, at `now`.
    #[inline(always)]
    pub(crate) fn pop_lane(&mut self) -> Lane {
        let item = self.lane.pop_front().expect("the lane holds an event");
        if let Lane::Arrive { .. } = item {
            self.work = self.work.wrapping_sub(1);
        }
        item
    }

    /// Takes the next key out of the ordering: its time (now the present)
    /// and its slot.
    #[inline(always)]
    pub(crate) fn pop_key(&mut self) -> Option<(Time, u32)> {
        let (time, slot) = self.keys.pop()?;
        self.now = time;
        Some((time, slot))
    }

    /// Takes the timer in `slot` out and frees the slot: (its node, its
    /// incarnation, its word), or none for a cancelled one's tombstone.
    #[inline(always)]
    pub(crate) fn take_timer(&mut self, slot: u32) -> Option<(NodeId, u32, u64)> {
        let slot = slot & !TIMER_SLOT;
        self.free_timers.push(slot);
        let t = self.take_timer_entry(slot)?;
        Some((t.node, t.incarnation, t.tag))
    }

    /// Takes the event (not a timer) in `slot` out and frees the slot.
    #[inline(always)]
    pub(crate) fn take_event(&mut self, slot: u32) -> Ev {
        self.free_events.push(slot);
        let ev = self.events[slot as usize].take().expect("only timers are cancelled");
        let (work, steering, _) = ev.class();
        self.work = self.work.wrapping_sub(u64::from(work));
        self.steering = self.steering.wrapping_sub(u64::from(steering));
        ev
    }

    /// Takes the earliest event out: the keys at `now` first, then the
    /// lane, then the later keys (the tests' and the benchmark's form of
    /// the engine's steps).
    pub(crate) fn pop(&mut self) -> Option<(Time, Ev)> {
        loop {
            let (time, slot) = if self.lane_first() {
                match self.pop_lane() {
                    Lane::Arrive { from, to, msg } => return Some((self.now, Ev::Arrive { from, to, msg })),
                    Lane::Slot(slot) => (self.now, slot),
                }
            } else {
                self.pop_key()?
            };
            if !is_timer(slot) {
                return Some((time, self.take_event(slot)));
            }
            let background = self.timers[(slot & !TIMER_SLOT) as usize].state == TimerState::Tick;
            if let Some((node, incarnation, tag)) = self.take_timer(slot) {
                let ev =
                    if background { Ev::Tick { node, incarnation, tag } } else { Ev::Timer { node, incarnation, tag } };
                return Some((time, ev));
            }
        }
    }

    /// The time of the last event taken out.
    #[inline(always)]
    pub(crate) fn now(&self) -> Time {
        self.now
    }

    /// Cancels every pending timer of `node` whose word is `word`. Its key
    /// stays in the ordering as a tombstone and frees the slot when it comes up.
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
            let entry = self.timers[slot as usize];
            debug_assert!(
                entry.node == node && entry.state != TimerState::Empty,
                "a list holds its node's pending timers"
            );
            if pick(entry.tag) {
                self.take_timer_entry(slot);
            }
            slot = entry.next;
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

    /// Places for pending events: the slabs' slots and the lane's.
    fn held(&self) -> u64 {
        (self.events.len() + self.timers.len() + self.lane.len()) as u64
    }

    /// Bytes of allocated capacity: the slabs' slots, the keys, the lane,
    /// the free lists and the heads of the timer lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Option<Ev>>()
            + self.timers.capacity() * std::mem::size_of::<TimerEntry>()
            + self.keys.memory_bytes()
            + self.lane.memory_bytes()
            + (self.free_events.capacity() + self.free_timers.capacity()) * std::mem::size_of::<u32>()
            + self.heads.capacity() * std::mem::size_of::<u32>()
    }

    /// The events still pending, in no particular order (copies: the end
    /// of a run and the tests ask).
    pub(crate) fn pending(&self) -> impl Iterator<Item = Ev> + '_ {
        let lane = self.lane.iter().filter_map(|item| match item {
            Lane::Arrive { from, to, msg } => Some(Ev::Arrive { from: *from, to: *to, msg: msg.clone() }),
            Lane::Slot(_) => None,
        });
        let timers = self.timers.iter().filter_map(|t| match t.state {
            TimerState::Empty => None,
            TimerState::Timer => Some(Ev::Timer { node: t.node, incarnation: t.incarnation, tag: t.tag }),
            TimerState::Tick => Some(Ev::Tick { node: t.node, incarnation: t.incarnation, tag: t.tag }),
        });
        self.events.iter().filter_map(|e| e.clone()).chain(timers).chain(lane)
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
