//! The orderings of the event queue's keys: a key is an event's time and
//! its slot in the slab, and every structure here hands the keys back
//! earliest first, ties in the order they were pushed. The slab, the timer
//! lists and the counts live in [`super::EventQueue`]; these only order.
//!
//! Candidates (see the module doc of `queue.rs` for the figures):
//! - [`Binary24`]: the standard library's binary heap of 24-byte keys
//!   (time, 64-bit sequence, slot), the queue of the start of issue 17;
//! - [`Binary16`]: the same heap of packed 16-byte keys ([`pack`]);
//! - [`Quad16`]: a 4-ary heap of packed keys (half the depth, and a
//!   node's four children share a cache line);
//! - [`super::radix::Radix`]: a radix heap of packed keys.

use crate::time::Time;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An ordering of (time, slot) keys: earliest time first, ties in push order.
#[doc(hidden)]
pub trait Keys: Default {
    /// Adds the event in `slot` at `time`, after every key pushed before it.
    fn push(&mut self, time: Time, slot: u32);
    /// Like [`Keys::push`], for a `time` later than every key popped so
    /// far (the event queue knows it is, for a key later than `now`): an
    /// ordering may then skip its checks for an earlier one.
    #[inline(always)]
    fn push_later(&mut self, time: Time, slot: u32) {
        self.push(time, slot);
    }
    /// Removes the earliest key (of equal times, the first pushed).
    fn pop(&mut self) -> Option<(Time, u32)>;
    /// True when a key is at `now` or earlier (`now` is the time of the
    /// last key popped, or earlier: no key is earlier than it).
    fn due(&self, now: Time) -> bool;
    /// Bytes of allocated capacity.
    fn memory_bytes(&self) -> usize;
    /// The same structure renumbering its sequence once `limit` keys were
    /// pushed (tests make the rare renumbering happen often).
    #[cfg(test)]
    fn with_seq_limit(limit: u64) -> Self;
}

/// A 24-byte key: time, sequence and slot.
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

/// The standard binary heap of 24-byte keys with a 64-bit sequence.
#[doc(hidden)]
#[derive(Default)]
pub struct Binary24 {
    heap: BinaryHeap<Key>,
    seq: u64,
}

impl Keys for Binary24 {
    #[inline(always)]
    fn push(&mut self, time: Time, slot: u32) {
        self.heap.push(Key { time, seq: self.seq, slot });
        self.seq += 1;
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(Time, u32)> {
        self.heap.pop().map(|k| (k.time, k.slot))
    }

    #[inline(always)]
    fn due(&self, now: Time) -> bool {
        self.heap.peek().is_some_and(|k| k.time <= now)
    }

    fn memory_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Key>()
    }

    #[cfg(test)]
    fn with_seq_limit(_: u64) -> Self {
        Self::default()
    }
}

/// Sequence numbers of packed keys have 32 bits and start at 1 (no key is
/// zero, which the radix heap relies on): once they run out, the pending
/// keys are renumbered 1.. in their order.
const SEQ_LIMIT: u64 = 1 << 32;

/// A packed key: time in the high 64 bits, then the sequence (32 bits),
/// then the slot (32 bits). Comparing two packed keys compares (time,
/// sequence): sequences are unique, so the slot never decides.
#[inline(always)]
pub(super) fn pack(time: Time, seq: u64, slot: u32) -> u128 {
    (u128::from(time) << 64) | (u128::from(seq) << 32) | u128::from(slot)
}

/// The time and the slot of a packed key.
#[inline(always)]
pub(super) fn unpack(key: u128) -> (Time, u32) {
    ((key >> 64) as Time, key as u32)
}

/// The sequence numbers of packed keys: 32 bits, renumbered when they run
/// out, so no run ever reaches a limit.
pub(super) struct Seq {
    next: u64,
    limit: u64,
}

impl Default for Seq {
    fn default() -> Self {
        Seq { next: 1, limit: SEQ_LIMIT }
    }
}

impl Seq {
    /// A counter that runs out at `limit`.
    #[cfg(test)]
    pub(super) fn with_limit(limit: u64) -> Self {
        Seq { next: 1, limit }
    }

    /// The next number, or None when the pending keys must be renumbered
    /// first (with [`Seq::renumber`]).
    #[inline(always)]
    pub(super) fn take(&mut self) -> Option<u64> {
        let seq = self.next;
        if seq >= self.limit {
            return None;
        }
        self.next += 1;
        Some(seq)
    }

    /// Renumbers `keys` (all the pending ones) 1.. in their (time,
    /// sequence) order, which it keeps, and sorts them (a sorted array is
    /// also a valid min-heap). Returns the number of the key being pushed.
    #[cold]
    pub(super) fn renumber(&mut self, keys: &mut [u128]) -> u64 {
        keys.sort_unstable();
        for (i, key) in keys.iter_mut().enumerate() {
            let (time, slot) = unpack(*key);
            *key = pack(time, i as u64 + 1, slot);
        }
        let seq = keys.len() as u64 + 1;
        assert!(seq < SEQ_LIMIT, "fewer pending events than sequence numbers");
        self.next = seq + 1;
        seq
    }
}

/// The standard binary heap of packed 16-byte keys. The heap is a
/// max-heap: it holds the complements of the keys, whose largest is the
/// earliest key.
#[doc(hidden)]
#[derive(Default)]
pub struct Binary16 {
    heap: BinaryHeap<u128>,
    seq: Seq,
}

impl Keys for Binary16 {
    #[inline(always)]
    fn push(&mut self, time: Time, slot: u32) {
        let seq = match self.seq.take() {
            Some(seq) => seq,
            None => {
                let mut keys: Vec<u128> = std::mem::take(&mut self.heap).into_iter().map(|k| !k).collect();
                let seq = self.seq.renumber(&mut keys);
                self.heap = keys.into_iter().map(|k| !k).collect();
                seq
            }
        };
        self.heap.push(!pack(time, seq, slot));
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(Time, u32)> {
        self.heap.pop().map(|k| unpack(!k))
    }

    #[inline(always)]
    fn due(&self, now: Time) -> bool {
        self.heap.peek().is_some_and(|&k| unpack(!k).0 <= now)
    }

    fn memory_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<u128>()
    }

    #[cfg(test)]
    fn with_seq_limit(limit: u64) -> Self {
        Binary16 { heap: BinaryHeap::new(), seq: Seq::with_limit(limit) }
    }
}

/// A 4-ary min-heap of packed keys: the children of `i` are `4i+1..=4i+4`.
#[doc(hidden)]
#[derive(Default)]
pub struct Quad16 {
    heap: Vec<u128>,
    seq: Seq,
}

impl Quad16 {
    /// Moves `key` up from the end until its parent is earlier.
    #[inline(always)]
    fn sift_up(&mut self, key: u128) {
        let mut i = self.heap.len();
        self.heap.push(key);
        while i > 0 {
            let parent = (i - 1) / 4;
            let p = self.heap[parent];
            if p <= key {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = key;
    }

    /// Puts `key` in the hole at the root and moves it down until its
    /// children are all later.
    #[inline(always)]
    fn sift_down(&mut self, key: u128) {
        let heap = &mut self.heap[..];
        let n = heap.len();
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            let mut best_key = heap[first];
            for (c, &k) in heap.iter().enumerate().take((first + 4).min(n)).skip(first + 1) {
                if k < best_key {
                    best = c;
                    best_key = k;
                }
            }
            if key <= best_key {
                break;
            }
            heap[i] = best_key;
            i = best;
        }
        heap[i] = key;
    }
}

impl Keys for Quad16 {
    #[inline(always)]
    fn push(&mut self, time: Time, slot: u32) {
        let seq = match self.seq.take() {
            Some(seq) => seq,
            None => self.seq.renumber(&mut self.heap),
        };
        self.sift_up(pack(time, seq, slot));
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(Time, u32)> {
        let last = self.heap.pop()?;
        let Some(&top) = self.heap.first() else {
            return Some(unpack(last));
        };
        self.sift_down(last);
        Some(unpack(top))
    }

    #[inline(always)]
    fn due(&self, now: Time) -> bool {
        self.heap.first().is_some_and(|&k| unpack(k).0 <= now)
    }

    fn memory_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<u128>()
    }

    #[cfg(test)]
    fn with_seq_limit(limit: u64) -> Self {
        Quad16 { heap: Vec::new(), seq: Seq::with_limit(limit) }
    }
}
