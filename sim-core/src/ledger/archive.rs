//! The residual flags of messages the ledger has settled: one byte per
//! message id, run-length encoded by blocks.
//!
//! A message applied in every domain leaves the ledger's dense window (see
//! [`super::window`]) with a few bits that a later fact can still read or
//! change: whether its ack came, whether each domain saw a delivery, and
//! the last reason a copy of it was made. In a steady run those bits are
//! the same for every message (an M/M/1 run: never acked, delivered, no
//! copy), so the archive stores ids in blocks of `block` ids and keeps a
//! block whose bytes are all equal as a run, merged with the runs of equal
//! value before and after it: a run of any length costs one map entry. A
//! block with mixed bytes keeps them all (one byte per id, as a plain
//! vector would). So the archive costs a constant for a uniform history,
//! and never more than about one byte per message for any history.
//!
//! Ids are appended in order; a later fact about an archived id rewrites
//! its byte in place (splitting a run into a dense block when it differs,
//! folding the block back into a run when it is uniform again).

use crate::message::MsgId;
use std::collections::BTreeMap;

/// A block's bytes: a run of one value (up to the next block), or one
/// byte per id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Run(u8),
    Bytes(Box<[u8]>),
}

/// One byte per archived id, ids `0..len()`.
#[derive(Debug)]
pub(super) struct Archive {
    /// Keyed by first id (a multiple of `block`); each covers up to the
    /// next key, or `tail_start`. A `Bytes` block covers exactly `block`.
    blocks: BTreeMap<MsgId, Block>,
    /// The bytes of ids from `tail_start`, fewer than `block` of them.
    tail: Vec<u8>,
    tail_start: MsgId,
    block: usize,
    /// The bits kept: the others read as 0.
    mask: u8,
    /// The last byte appended (what a placeholder repeats).
    last: u8,
    /// False while every byte of the tail is known to be equal (then
    /// sealing it makes a run without looking at it).
    mixed: bool,
    dense: usize,
}

/// A map entry's share of a B-tree node (key, value and slack).
const ENTRY_BYTES: usize = 48;

impl Archive {
    /// An empty archive that keeps the bits of `mask`, in blocks of `block` ids.
    pub(super) fn new(mask: u8, block: usize) -> Self {
        assert!(block >= 2, "a block holds at least two ids");
        Archive {
            blocks: BTreeMap::new(),
            tail: Vec::new(),
            tail_start: 0,
            block,
            mask,
            last: 0,
            mixed: false,
            dense: 0,
        }
    }

    /// Ids archived so far.
    pub(super) fn len(&self) -> MsgId {
        self.tail_start + self.tail.len() as MsgId
    }

    /// Bytes held: the map's entries, the dense blocks and the tail.
    pub(super) fn memory_bytes(&self) -> usize {
        self.blocks.len() * ENTRY_BYTES + self.dense * self.block + self.tail.capacity()
    }

    /// Appends the byte of the next id.
    #[inline]
    pub(super) fn push(&mut self, byte: u8) {
        let byte = byte & self.mask;
        self.mixed |= self.tail.first().is_some_and(|&b| b != byte);
        self.last = byte;
        self.tail.push(byte);
        if self.tail.len() == self.block {
            self.seal();
        }
    }

    /// Appends `n` ids' bytes, all `byte`: whole blocks of them, with the
    /// tail empty, extend the last run without being written out (the
    /// ledger's window leaves a steady run's settled ids so).
    pub(super) fn push_n(&mut self, byte: u8, mut n: usize) {
        if n == 0 {
            return;
        }
        let byte = byte & self.mask;
        self.last = byte;
        while n > 0 {
            if self.tail.is_empty() && n >= self.block {
                let whole = n - n % self.block;
                let extends = matches!(self.blocks.last_key_value(), Some((_, Block::Run(u))) if *u == byte);
                if !extends {
                    self.blocks.insert(self.tail_start, Block::Run(byte));
                }
                self.tail_start += whole as MsgId;
                n -= whole;
                continue;
            }
            let take = n.min(self.block - self.tail.len());
            self.mixed |= self.tail.first().is_some_and(|&b| b != byte);
            self.tail.resize(self.tail.len() + take, byte);
            n -= take;
            if self.tail.len() == self.block {
                self.seal();
            }
        }
    }

    /// Appends a byte for an id whose state is kept elsewhere: the last
    /// byte again, so that it does not break a run.
    pub(super) fn push_placeholder(&mut self) {
        self.push(self.last);
    }

    /// Moves the full tail into the map.
    fn seal(&mut self) {
        let first = self.tail[0];
        let block = if !self.mixed || self.tail.iter().all(|&b| b == first) {
            Block::Run(first)
        } else {
            self.dense += 1;
            Block::Bytes(std::mem::take(&mut self.tail).into_boxed_slice())
        };
        let extends =
            matches!((&block, self.blocks.last_key_value()), (Block::Run(v), Some((_, Block::Run(u)))) if u == v);
        if !extends {
            self.blocks.insert(self.tail_start, block);
        }
        self.tail.clear();
        self.mixed = false;
        self.tail_start += self.block as MsgId;
    }

    /// The byte of `id` (below [`Archive::len`]).
    pub(super) fn get(&self, id: MsgId) -> u8 {
        debug_assert!(id < self.len());
        if id >= self.tail_start {
            return self.tail[(id - self.tail_start) as usize];
        }
        match self.blocks.range(..=id).next_back() {
            Some((_, Block::Run(v))) => *v,
            Some((&start, Block::Bytes(b))) => b[(id - start) as usize],
            None => unreachable!("every archived id is in a block"),
        }
    }

    /// Rewrites the byte of `id` (below [`Archive::len`]).
    pub(super) fn set(&mut self, id: MsgId, byte: u8) {
        let byte = byte & self.mask;
        if id >= self.tail_start {
            self.tail[(id - self.tail_start) as usize] = byte;
            self.mixed = true;
            return;
        }
        let block = self.block as MsgId;
        let k = id - id % block;
        let (&start, found) = self.blocks.range_mut(..=id).next_back().expect("every archived id is in a block");
        match found {
            Block::Bytes(b) => {
                b[(id - start) as usize] = byte;
                self.fold(start);
            }
            Block::Run(v) if *v == byte => {}
            Block::Run(v) => {
                let v = *v;
                let end = self.blocks.range(start + 1..).next().map_or(self.tail_start, |(&e, _)| e);
                let mut bytes = vec![v; self.block].into_boxed_slice();
                bytes[(id - k) as usize] = byte;
                self.blocks.insert(k, Block::Bytes(bytes));
                self.dense += 1;
                if k + block < end {
                    self.blocks.insert(k + block, Block::Run(v));
                }
            }
        }
    }

    /// Turns the dense block at `start` back into a run if its bytes are
    /// all equal, merged with equal runs either side.
    fn fold(&mut self, start: MsgId) {
        let Some(Block::Bytes(b)) = self.blocks.get(&start) else { return };
        let v = b[0];
        if b.iter().any(|&x| x != v) {
            return;
        }
        self.dense -= 1;
        let next = start + self.block as MsgId;
        if self.blocks.get(&next) == Some(&Block::Run(v)) {
            self.blocks.remove(&next);
        }
        let prev_is_run = matches!(self.blocks.range(..start).next_back(), Some((_, Block::Run(u))) if *u == v);
        if prev_is_run {
            self.blocks.remove(&start);
        } else {
            self.blocks.insert(start, Block::Run(v));
        }
    }

    /// Map entries (runs and dense blocks), for tests.
    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_uniform_history_is_one_run_whatever_its_length() {
        let mut a = Archive::new(0xff, 8);
        for _ in 0..10_000 {
            a.push(3);
        }
        assert_eq!(a.entries(), 1);
        assert_eq!((a.get(0), a.get(9_999), a.len()), (3, 3, 10_000));
        a.set(4_000, 5);
        assert_eq!((a.get(4_000), a.get(3_999), a.get(4_001)), (5, 3, 3));
        assert_eq!(a.entries(), 3, "a run, the dense block, the rest of the run");
        a.set(4_000, 3);
        assert_eq!(a.entries(), 1, "folded back into one run");
    }

    #[test]
    fn bits_outside_the_mask_read_as_zero() {
        let mut a = Archive::new(0b0110, 4);
        a.push(0xff);
        a.set(0, 0b1001);
        assert_eq!(a.get(0), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Appending `n` equal bytes at once leaves the archive exactly as
        /// appending them one by one does (same runs, same dense blocks),
        /// rewrites included.
        #[test]
        fn push_n_is_n_pushes(
            stretches in proptest::collection::vec((0u8..3, 0usize..40), 0..40),
            sets in proptest::collection::vec((0usize..800, 0u8..3), 0..10),
            block in 2usize..9,
        ) {
            let (mut batched, mut single) = (Archive::new(0b11, block), Archive::new(0b11, block));
            for (i, &(byte, n)) in stretches.iter().enumerate() {
                batched.push_n(byte | 4, n);
                (0..n).for_each(|_| single.push(byte | 4));
                if let Some(&(at, b)) = sets.get(i % sets.len().max(1)).filter(|s| (s.0 as MsgId) < single.len()) {
                    batched.set(at as MsgId, b);
                    single.set(at as MsgId, b);
                }
                prop_assert_eq!(&batched.blocks, &single.blocks);
                prop_assert_eq!((&batched.tail, batched.tail_start), (&single.tail, single.tail_start));
                prop_assert_eq!((batched.last, batched.dense), (single.last, single.dense));
            }
        }

        /// Pushes and rewrites read back exactly as a plain vector does.
        #[test]
        fn reads_back_as_a_vector(
            pushes in proptest::collection::vec(0u8..3, 0..300),
            sets in proptest::collection::vec((0usize..300, 0u8..3), 0..60),
            block in 2usize..9,
        ) {
            let mut a = Archive::new(0xff, block);
            let mut v: Vec<u8> = Vec::new();
            for (i, &p) in pushes.iter().enumerate() {
                a.push(p);
                v.push(p);
                if let Some(&(at, b)) = sets.get(i % sets.len().max(1)) {
                    if at < v.len() && i % 3 == 0 {
                        a.set(at as MsgId, b);
                        v[at] = b;
                    }
                }
            }
            for &(at, b) in &sets {
                if at < v.len() {
                    a.set(at as MsgId, b);
                    v[at] = b;
                }
            }
            prop_assert_eq!(a.len(), v.len() as MsgId);
            for (i, &b) in v.iter().enumerate() {
                prop_assert_eq!(a.get(i as MsgId), b, "id {}", i);
            }
            // Never two adjacent runs of one value.
            let runs: Vec<_> = a.blocks.iter().collect();
            for w in runs.windows(2) {
                if let (Block::Run(x), Block::Run(y)) = (w[0].1, w[1].1) {
                    prop_assert!(x != y, "adjacent equal runs at {} and {}", w[0].0, w[1].0);
                }
            }
        }
    }
}
