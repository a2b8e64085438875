//! A radix heap of packed (time, sequence, slot) keys ([`super::keys::pack`]).
//!
//! It relies on the simulation's time being monotone: every key pushed is
//! later than the last key popped (`last`). Bucket `b` holds the keys whose
//! highest bit that differs from `last` is bit `b`. A pop takes the lowest
//! non-empty bucket (one `trailing_zeros` on a mask); a bucket of one key
//! is the answer, otherwise its smallest key becomes `last` and the others
//! move to lower buckets. A key moves down at most 128 times in its life,
//! and in practice a few times, whatever the queue's size.
//!
//! A key pushed earlier than `last` (the engine never does it) is still
//! ordered exactly: the heap rebases on zero and sorts its keys into
//! buckets again.

use super::keys::{pack, unpack, Keys, Seq};
use crate::time::Time;

/// Bits in a packed key, and buckets.
const BUCKETS: usize = 128;

/// A radix heap of packed keys.
#[doc(hidden)]
pub struct Radix {
    /// Bucket `b`: keys whose highest bit differing from `last` is bit `b`.
    buckets: Vec<Vec<u128>>,
    /// Bit `b` is set when bucket `b` holds a key.
    mask: u128,
    /// The last key popped: every pending key is later.
    last: u128,
    seq: Seq,
}

impl Default for Radix {
    fn default() -> Self {
        Radix { buckets: (0..BUCKETS).map(|_| Vec::new()).collect(), mask: 0, last: 0, seq: Seq::default() }
    }
}

/// The bucket of `key`, later than `last` (no key is zero, so even the
/// first is later than the initial `last`).
#[inline(always)]
fn bucket(key: u128, last: u128) -> usize {
    BUCKETS - 1 - (key ^ last).leading_zeros() as usize
}

impl Radix {
    #[inline(always)]
    fn insert(&mut self, key: u128) {
        let b = bucket(key, self.last);
        self.buckets[b].push(key);
        self.mask |= 1 << b;
    }

    /// Takes every pending key out, lets `change` renumber them, and puts
    /// them back relative to a `last` of zero. Returns what `change` did.
    #[cold]
    fn rebase<T>(&mut self, change: impl FnOnce(&mut Seq, &mut [u128]) -> T) -> T {
        let mut keys: Vec<u128> = self.buckets.iter_mut().flat_map(std::mem::take).collect();
        let out = change(&mut self.seq, &mut keys);
        self.mask = 0;
        self.last = 0;
        for key in keys {
            self.insert(key);
        }
        out
    }
}

impl Keys for Radix {
    #[inline(always)]
    fn push(&mut self, time: Time, slot: u32) {
        let seq = match self.seq.take() {
            Some(seq) => seq,
            None => self.rebase(|seq, keys| seq.renumber(keys)),
        };
        let key = pack(time, seq, slot);
        if key < self.last {
            self.rebase(|_, _| {});
        }
        self.insert(key);
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(Time, u32)> {
        if self.mask == 0 {
            return None;
        }
        let b = self.mask.trailing_zeros() as usize;
        self.mask &= !(1 << b);
        let (lower, rest) = self.buckets.split_at_mut(b);
        let here = &mut rest[0];
        if here.len() == 1 {
            let key = here.pop().expect("one key");
            self.last = key;
            return Some(unpack(key));
        }
        let min = *here.iter().min().expect("a marked bucket holds keys");
        self.last = min;
        for &key in here.iter() {
            if key != min {
                let c = bucket(key, min);
                lower[c].push(key);
                self.mask |= 1 << c;
            }
        }
        here.clear();
        Some(unpack(min))
    }

    fn memory_bytes(&self) -> usize {
        let keys: usize = self.buckets.iter().map(Vec::capacity).sum();
        self.buckets.capacity() * std::mem::size_of::<Vec<u128>>() + keys * std::mem::size_of::<u128>()
    }

    #[cfg(test)]
    fn with_seq_limit(limit: u64) -> Self {
        Radix { seq: Seq::with_limit(limit), ..Radix::default() }
    }
}
