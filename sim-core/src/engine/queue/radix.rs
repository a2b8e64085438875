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
//!
//! A bucket of two keys, the usual case when few are pending (the M/M/1
//! workload's producer and consumer timers), moves its later key down
//! without the general refile loop (issue 17, round 3: the loop cost about
//! 130 instructions a refile); the buckets are an array indexed by masked
//! bucket numbers, so no index is bounds-checked.
//!
//! Which buckets hold keys is kept in two 64-bit masks rather than one
//! 128-bit one: setting or clearing bit `b` of a `u128` compiles to a
//! double-word shift and selects, of a `u64` to one shift (issue 17,
//! round 2).

use super::keys::{pack, unpack, Keys, Seq};
use crate::time::Time;

/// Bits in a packed key, and buckets.
const BUCKETS: usize = 128;

/// A radix heap of packed keys.
#[doc(hidden)]
pub struct Radix {
    /// Bucket `b`: keys whose highest bit differing from `last` is bit `b`.
    buckets: Box<[Vec<u128>; BUCKETS]>,
    /// Bit `b` is set when bucket `b` (below 64) holds a key.
    lo: u64,
    /// Bit `b - 64` is set when bucket `b` (64 and up) holds a key.
    hi: u64,
    /// The last key popped: every pending key is later.
    last: u128,
    seq: Seq,
}

impl Default for Radix {
    fn default() -> Self {
        let buckets = Box::new(std::array::from_fn(|_| Vec::new()));
        Radix { buckets, lo: 0, hi: 0, last: 0, seq: Seq::default() }
    }
}

/// The bucket of `key`, later than `last` (no key is zero, so even the
/// first is later than the initial `last`). Masked to the bucket count,
/// which it is below by construction (keys differ from `last`), so that
/// indexing the buckets needs no bounds check.
#[inline(always)]
fn bucket(key: u128, last: u128) -> usize {
    (BUCKETS - 1 - (key ^ last).leading_zeros() as usize) & (BUCKETS - 1)
}

impl Radix {
    #[inline(always)]
    fn insert(&mut self, key: u128) {
        let b = bucket(key, self.last);
        self.buckets[b].push(key);
        self.mark(b);
    }

    /// Notes that bucket `b` holds a key.
    #[inline(always)]
    fn mark(&mut self, b: usize) {
        if b < 64 {
            self.lo |= 1 << b;
        } else {
            self.hi |= 1 << (b - 64);
        }
    }

    /// The lowest bucket that holds a key, marked empty (it is about to
    /// be emptied).
    #[inline(always)]
    fn take_lowest(&mut self) -> Option<usize> {
        if self.lo != 0 {
            let b = self.lo.trailing_zeros() as usize;
            self.lo &= self.lo - 1;
            Some(b)
        } else if self.hi != 0 {
            let b = self.hi.trailing_zeros() as usize;
            self.hi &= self.hi - 1;
            // Below 128: `hi` is not zero.
            Some((64 + b) & (BUCKETS - 1))
        } else {
            None
        }
    }

    /// Takes every pending key out, lets `change` renumber them, and puts
    /// them back relative to a `last` of zero. Returns what `change` did.
    #[cold]
    fn rebase<T>(&mut self, change: impl FnOnce(&mut Seq, &mut [u128]) -> T) -> T {
        let mut keys: Vec<u128> = self.buckets.iter_mut().flat_map(std::mem::take).collect();
        let out = change(&mut self.seq, &mut keys);
        self.lo = 0;
        self.hi = 0;
        self.last = 0;
        for key in keys {
            self.insert(key);
        }
        out
    }
}

impl Radix {
    /// [`Keys::due`] when `last` is not at `now` (after a rebase): the
    /// earliest key is in the lowest non-empty bucket.
    #[cold]
    #[inline(never)]
    fn due_slow(&self, now: Time) -> bool {
        let b = if self.lo != 0 {
            self.lo.trailing_zeros() as usize
        } else if self.hi != 0 {
            64 + self.hi.trailing_zeros() as usize
        } else {
            return false;
        };
        self.buckets[b].iter().min().is_some_and(|&k| unpack(k).0 <= now)
    }

    /// Takes the smallest key of bucket `b` (holding several) as the new
    /// `last`, moves the others to lower buckets, and returns it.
    #[inline(never)]
    fn refile(&mut self, b: usize) -> u128 {
        let (lower, rest) = self.buckets.split_at_mut(b);
        let here = &mut rest[0];
        let min = *here.iter().min().expect("a marked bucket holds keys");
        self.last = min;
        let (mut lo, mut hi) = (0u64, 0u64);
        for &key in here.iter() {
            if key != min {
                let c = bucket(key, min);
                lower[c].push(key);
                if c < 64 {
                    lo |= 1 << c;
                } else {
                    hi |= 1 << (c - 64);
                }
            }
        }
        here.clear();
        self.lo |= lo;
        self.hi |= hi;
        min
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

    /// A key later in time than the last popped: no rebase for an earlier
    /// key, and its bucket from the times alone (they differ, so the
    /// highest differing bit is among theirs: the same bucket as
    /// [`bucket`] finds).
    #[inline(always)]
    fn push_later(&mut self, time: Time, slot: u32) {
        let last = unpack(self.last).0;
        debug_assert!(time > last, "a later key");
        let seq = match self.seq.take() {
            Some(seq) => seq,
            None => return self.push(time, slot),
        };
        let (key, b) = (pack(time, seq, slot), BUCKETS - 1 - (time ^ last).leading_zeros() as usize);
        debug_assert_eq!(b, bucket(key, self.last));
        self.buckets[b].push(key);
        self.hi |= 1 << (b - 64);
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(Time, u32)> {
        let b = self.take_lowest()?;
        let here = &mut self.buckets[b];
        let key = match *here.as_slice() {
            [key] => {
                here.clear();
                self.last = key;
                key
            }
            // Two keys (the common refile when few are pending): the
            // later one moves down, without the general loop.
            [x, y] => {
                here.clear();
                let (min, other) = if x < y { (x, y) } else { (y, x) };
                self.last = min;
                self.insert(other);
                min
            }
            _ => self.refile(b),
        };
        Some(unpack(key))
    }

    /// Keys at the time of `last` differ from it in the low 64 bits only:
    /// they are in the buckets below 64, and the later ones above.
    #[inline(always)]
    fn due(&self, now: Time) -> bool {
        if unpack(self.last).0 == now {
            self.lo != 0
        } else {
            self.due_slow(now)
        }
    }

    fn memory_bytes(&self) -> usize {
        let keys: usize = self.buckets.iter().map(Vec::capacity).sum();
        BUCKETS * std::mem::size_of::<Vec<u128>>() + keys * std::mem::size_of::<u128>()
    }

    #[cfg(test)]
    fn with_seq_limit(limit: u64) -> Self {
        Radix { seq: Seq::with_limit(limit), ..Radix::default() }
    }
}
