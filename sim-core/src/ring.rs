//! A first-in first-out ring of values: the engine's lane of events at the
//! present, a queue broker's ready messages and its deliveries awaiting an
//! ack. It does what the standard `VecDeque` does for them, with one
//! difference that matters on the hot path: a push is always inlined, and
//! only growing is a call. (Round 5 of issue 17: the standard push is a
//! call the compiler keeps out of line, and the value it is handed, built
//! field by field on the stack, was read back in wide words before those
//! stores had retired, a store-forwarding stall on three pushes a message.
//! Inlined, the value is written where it lives.)
//!
//! The values sit in a power-of-two array of `Option` slots (`None` where
//! nothing is), so a position is a mask away and no `unsafe` is needed.
//! The capacity grows as the `VecDeque`'s does (4 slots, then doubling) and
//! never shrinks, except by [`std::mem::take`].
//!
//! Left out: everything its users do not need (slicing, sorting, ranges).

use std::fmt;

/// Values in first-in first-out order, with pushes and pops at both ends
/// (see the module doc).
pub(crate) struct Ring<T> {
    /// The slots: a power of two of them (or none), the values at
    /// `head`, `head + 1`, ... (mod the length), `len` of them.
    slots: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Ring<T> {
    /// An empty ring (no allocation until the first push).
    pub(crate) const fn new() -> Self {
        Ring { slots: Vec::new(), head: 0, len: 0 }
    }

    /// How many values it holds.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when it holds none.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many values it can hold before it grows.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of allocated capacity.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<T>>()
    }

    /// The slot of the `i`-th value from the front (`i` below the
    /// capacity, which is not zero).
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        (self.head + i) & (self.slots.len() - 1)
    }

    /// Adds `value` at the back. Always inlined (see the module doc).
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let i = self.at(self.len);
        self.put(i, value);
        self.len += 1;
    }

    /// Adds `value` at the front.
    pub(crate) fn push_front(&mut self, value: T) {
        if self.len == self.slots.len() {
            self.grow();
        }
        self.head = self.at(self.slots.len() - 1);
        let i = self.head;
        self.put(i, value);
        self.len += 1;
    }

    /// Writes `value` into the empty slot `i` (an empty slot holds
    /// nothing to drop, so no drop glue runs).
    #[inline(always)]
    fn put(&mut self, i: usize, value: T) {
        let old = self.slots[i].replace(value);
        debug_assert!(old.is_none(), "a free slot holds no value");
        std::mem::forget(old);
    }

    /// Takes the front value out.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head].take();
        self.head = self.at(1);
        self.len -= 1;
        value
    }

    /// The `i`-th value from the front.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        self.slots[self.at(i)].as_ref()
    }

    /// The `i`-th value from the front, to change.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        let at = self.at(i);
        self.slots[at].as_mut()
    }

    /// The front value.
    #[inline(always)]
    pub(crate) fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// The back value.
    #[inline(always)]
    pub(crate) fn back(&self) -> Option<&T> {
        self.get(self.len.wrapping_sub(1))
    }

    /// The values, front to back.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        (0..self.len).map(|i| self.slots[self.at(i)].as_ref().expect("a held slot holds a value"))
    }

    /// Where a value with `key` is, by binary search over values sorted by
    /// key: `Ok` with its position, or `Err` with where it would go.
    pub(crate) fn binary_search_by_key<K: Ord>(&self, key: &K, f: impl Fn(&T) -> K) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match f(&self[mid]).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Keeps only the values `keep` says yes to, in their order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for _ in 0..self.len {
            let value = self.pop_front().expect("a held value");
            if keep(&value) {
                self.push_back(value);
            }
        }
    }

    /// Takes every value out, front to back (the capacity stays).
    pub(crate) fn drain_all(&mut self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.pop_front())
    }

    /// Forgets every value (the capacity stays).
    pub(crate) fn clear(&mut self) {
        self.drain_all().for_each(drop);
        self.head = 0;
    }

    /// Doubles the capacity (4 at the first push), the values moved to
    /// the front of the new slots in order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let (len, capacity) = (self.len, (self.slots.len() * 2).max(4));
        let mut slots: Vec<Option<T>> = Vec::with_capacity(capacity);
        slots.extend(self.drain_all().map(Some));
        slots.resize_with(capacity, || None);
        self.slots = slots;
        self.len = len;
        self.head = 0;
    }
}

impl<T> Extend<T> for Ring<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        values.into_iter().for_each(|v| self.push_back(v));
    }
}

impl<T> std::ops::Index<usize> for Ring<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("a position in the ring")
    }
}

impl<T> std::ops::IndexMut<usize> for Ring<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("a position in the ring")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        /// Against the standard `VecDeque`: pushes at both ends, pops,
        /// lookups, retains, clears and drains; the same values in the same
        /// order, and the same capacity (4, then doubling).
        #[test]
        fn behaves_as_a_vec_deque(ops in prop::collection::vec((0u8..8, 0u32..50), 1..300)) {
            let (mut ours, mut model) = (Ring::new(), VecDeque::new());
            for (op, x) in ops {
                match op {
                    0 | 1 => {
                        ours.push_back(x);
                        model.push_back(x);
                    }
                    2 => {
                        ours.push_front(x);
                        model.push_front(x);
                    }
                    3 => prop_assert_eq!(ours.pop_front(), model.pop_front()),
                    4 => {
                        let i = x as usize;
                        prop_assert_eq!(ours.get(i), model.get(i));
                        if let (Some(a), Some(b)) = (ours.get_mut(i), model.get_mut(i)) {
                            *a += 1;
                            *b += 1;
                        }
                    }
                    5 => {
                        ours.retain(|v| v % 3 != x % 3);
                        model.retain(|v| v % 3 != x % 3);
                    }
                    6 if x % 5 == 0 => {
                        ours.clear();
                        model.clear();
                    }
                    6 => {
                        let a: Vec<u32> = ours.drain_all().collect();
                        let b: Vec<u32> = model.drain(..).collect();
                        prop_assert_eq!(a, b);
                    }
                    _ => ours.extend([x, x + 1]),
                }
                if op == 7 {
                    model.extend([x, x + 1]);
                }
                prop_assert_eq!(ours.len(), model.len());
                prop_assert_eq!(ours.is_empty(), model.is_empty());
                prop_assert_eq!(ours.front(), model.front());
                prop_assert_eq!(ours.back(), model.back());
                prop_assert!(ours.iter().eq(model.iter()));
                prop_assert!(ours.iter().rev().eq(model.iter().rev()));
                prop_assert_eq!(ours.capacity(), model.capacity());
            }
        }

        /// A binary search over sorted values finds what the slice's does,
        /// wherever the values sit in the slots.
        #[test]
        fn searches_as_a_slice(n in 0usize..40, popped in 0usize..20, key in 0u32..100) {
            let mut ours = Ring::new();
            (0..popped).for_each(|_| ours.push_back(0));
            (0..popped).for_each(|_| { ours.pop_front(); });
            let sorted: Vec<u32> = (0..n as u32).map(|v| v * 2 + 1).collect();
            ours.extend(sorted.iter().copied());
            let found = ours.binary_search_by_key(&key, |&v| v);
            prop_assert_eq!(found.is_ok(), sorted.binary_search(&key).is_ok());
            match found {
                Ok(i) => prop_assert_eq!(ours[i], key),
                Err(i) => prop_assert_eq!(i, sorted.partition_point(|&v| v < key)),
            }
        }
    }

    /// A value pushed into a full ring is kept with every other, in order,
    /// across the wrap.
    #[test]
    fn grows_across_the_wrap() {
        let mut ring = Ring::new();
        for i in 0..4 {
            ring.push_back(i);
        }
        ring.pop_front();
        ring.pop_front();
        for i in 4..7 {
            ring.push_back(i);
        }
        assert_eq!(ring.capacity(), 8);
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![2, 3, 4, 5, 6]);
    }
}
