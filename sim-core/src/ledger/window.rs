//! Where the ledger keeps each message's state: a sliding window over
//! message ids, a sparse map of the few old messages still unapplied, and
//! an archive of the settled ones' residual flags.
//!
//! Ids are allocated in order and most messages are applied soon after,
//! so the state of ids from a low watermark `base` up lives in a dense
//! window: one [`Slot`] of 24 bytes, plus a byte per extra domain. When
//! the window is longer than `min_len`, its front leaves it:
//!
//! - applied in every domain: only its residual flags stay, in the
//!   [`Archive`] of each domain's byte plane (run-length encoded: a steady
//!   run's residuals are all alike, and cost one entry however many);
//! - still unapplied somewhere, while most of the window is applied: it
//!   moves to `stuck` (a `BTreeMap`, about 64 bytes a message) so that one
//!   message lost for good does not pin the window; once applied
//!   everywhere, its residual goes to the archive. While most of the
//!   window is unapplied (a backlog), the front stays: dense is cheaper.
//!
//! So what the ledger holds depends on the messages in flight (the
//! window's span and the stuck ones), not on the messages processed. This
//! replaced a byte per produced message plus a `BTreeMap` entry per
//! unapplied one: in M/M/1 the map's inserts and removes were about 8% of
//! all instructions, and a window slot is one index.
//!
//! The window is a ring whose size is a power of two (each extra
//! domain's bytes a ring beside it, on the same positions): a slot is one
//! add and one mask away from its id, the front leaves by moving `head`
//! on, and the front slides out in steps of an eighth of `min_len` rather
//! than one id per push. With one domain nothing is done for the others.
//! The `VecDeque` this replaced wrapped around by comparison and
//! subtraction on every index, and slid one id per push (mm1 200k:
//! `Ledger::produce` with its slide, 35.3M -> 25.6M instructions; a
//! `Vec` cut off when half of it had left cost 33.9M, a third of it in
//! the moves).

use super::archive::Archive;
use super::{LossCause, APPLIED, DELIVERED, DUP_MASK, FIRST_DOMAIN};
use crate::message::MsgId;
use crate::time::Time;
use std::collections::BTreeMap;

// The bits of a settled message that a later fact can read: its ack, and
// per domain whether it was applied (always, once settled) and delivered,
// and the cause of its last copy. Confirmation and the start of
// processing only matter while a message is unapplied.
const RESIDUAL_FIRST: u8 = super::ACKED | ((APPLIED | DELIVERED) << FIRST_DOMAIN) | DUP_MASK;
const RESIDUAL_OTHER: u8 = APPLIED | DELIVERED;

/// The ids a window keeps at least before its front leaves.
pub(super) const MIN_WINDOW: usize = 1024;
/// Ids per block of the archive.
pub(super) const ARCHIVE_BLOCK: usize = 1024;
/// A stuck message's share of a B-tree node (key, [`Stuck`], slack).
const STUCK_ENTRY_BYTES: usize = 96;

/// One message's state while it is in the window (or stuck).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) produced_at: Time,
    pub(super) key_seq: u64,
    /// Index into the ledger's `sequences`: the (producer, key) it is ordered in.
    pub(super) stream: u32,
    /// Domains whose effect is not applied yet.
    pub(super) remaining: u16,
    /// The last thing seen to put it at risk.
    pub(super) cause: LossCause,
    /// The message's byte: its own flags and the first domain's.
    pub(super) flags: u8,
}

/// What fills a ring position no message holds.
const EMPTY: Slot =
    Slot { produced_at: 0, key_seq: 0, stream: 0, remaining: 0, cause: LossCause::Unexplained, flags: 0 };

/// A message that left the window unapplied.
#[derive(Debug)]
pub(super) struct Stuck {
    pub(super) slot: Slot,
    /// The byte of each domain after the first.
    pub(super) extra: Box<[u8]>,
}

/// Every produced message's state (see the module doc).
#[derive(Debug)]
pub(super) struct Messages {
    /// The id of the window's front, at `window[head]`.
    base: MsgId,
    /// The ring: its length is 0 or a power of two, and the window's
    /// `span` ids are at `head`, `head + 1`, ... modulo that length.
    window: Vec<Slot>,
    head: usize,
    /// `window.len() - 1` (0 while empty): a position is an id's offset
    /// from the front, plus `head`, masked.
    mask: usize,
    span: usize,
    /// The window's span at which [`Messages::push`] slides its front out.
    slide_at: usize,
    /// Per domain after the first, its byte for each position of `window`.
    extra: Vec<Vec<u8>>,
    /// Messages in the window not yet applied everywhere.
    window_pending: usize,
    /// Ids below `base` not yet applied everywhere.
    stuck: BTreeMap<MsgId, Stuck>,
    /// Per domain, the residual byte of every id below `base` (a
    /// placeholder for the stuck ones).
    archive: Vec<Archive>,
    min_len: usize,
}

impl Messages {
    /// State for `domains` domains (at least one); the window keeps at
    /// least `min_len` ids, the archive's blocks are `block` ids.
    pub(super) fn new(domains: usize, min_len: usize, block: usize) -> Self {
        let archive =
            (0..domains).map(|d| Archive::new(if d == 0 { RESIDUAL_FIRST } else { RESIDUAL_OTHER }, block)).collect();
        Messages {
            base: 0,
            window: Vec::new(),
            head: 0,
            mask: 0,
            span: 0,
            slide_at: min_len + min_len / 8,
            extra: vec![Vec::new(); domains - 1],
            window_pending: 0,
            stuck: BTreeMap::new(),
            archive,
            min_len,
        }
    }

    /// Ids produced so far.
    #[inline]
    pub(super) fn len(&self) -> MsgId {
        self.base + self.span() as MsgId
    }

    /// Ids in the window.
    #[inline]
    fn span(&self) -> usize {
        self.span
    }

    /// The ring position `k` places after the front.
    #[inline]
    fn position(&self, k: usize) -> usize {
        (self.head + k) & self.mask
    }

    /// Bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        let window = self.window.capacity() * std::mem::size_of::<Slot>();
        let extra: usize = self.extra.iter().map(Vec::capacity).sum();
        let archive: usize = self.archive.iter().map(Archive::memory_bytes).sum();
        window + extra + archive + self.stuck.len() * (STUCK_ENTRY_BYTES + self.extra.len())
    }

    /// Adds the next message (unapplied everywhere), and lets the oldest
    /// leave the window.
    #[inline]
    pub(super) fn push(&mut self, slot: Slot) {
        debug_assert!(slot.remaining > 0);
        if self.span == self.window.len() {
            self.grow();
        }
        let i = self.position(self.span);
        self.window[i] = slot;
        if !self.extra.is_empty() {
            for e in &mut self.extra {
                e[i] = 0;
            }
        }
        self.span += 1;
        self.window_pending += 1;
        if self.span > self.slide_at {
            self.slide();
        }
    }

    /// Doubles the ring (at least 16), the window's ids first in order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = (2 * self.window.len()).max(16);
        let (head, old) = (self.head, self.window.len());
        let mut window = Vec::with_capacity(len);
        window.extend_from_slice(&self.window[head..]);
        window.extend_from_slice(&self.window[..head]);
        window.resize(len, EMPTY);
        self.window = window;
        for e in &mut self.extra {
            let mut bytes = Vec::with_capacity(len);
            bytes.extend_from_slice(&e[head..]);
            bytes.extend_from_slice(&e[..head]);
            bytes.resize(len, 0);
            *e = bytes;
        }
        debug_assert_eq!(self.span, old);
        self.head = 0;
        self.mask = len - 1;
    }

    /// Moves the front out of the window while the window is long enough
    /// and the front may go (see the module doc). With one domain, a
    /// settled stretch of the front whose residual bytes are all equal
    /// goes to the archive in one call ([`Archive::push_n`]): a steady run
    /// costs a load and a compare or two per id, not an archive push each.
    #[inline(never)]
    fn slide(&mut self) {
        while self.span > self.min_len {
            let front = self.window[self.head];
            let n = if front.remaining == 0 && self.extra.is_empty() {
                let byte = front.flags & RESIDUAL_FIRST;
                let n = self.settled_run(byte, self.span - self.min_len);
                self.archive[0].push_n(byte, n);
                n
            } else if front.remaining == 0 {
                self.archive[0].push(front.flags);
                for (a, e) in self.archive[1..].iter_mut().zip(&self.extra) {
                    a.push(e[self.head]);
                }
                1
            } else if self.window_pending * 2 < self.span {
                self.unpin(front);
                1
            } else {
                break;
            };
            self.head = (self.head + n) & self.mask;
            self.span -= n;
            self.base += n as MsgId;
        }
    }

    /// How many of the front's first `most` ids (at least one, the
    /// front, settled with residual `byte`) are settled with that
    /// residual: the ring's two stretches, each a slice scan.
    fn settled_run(&self, byte: u8, most: usize) -> usize {
        let alike = |s: &Slot| s.remaining == 0 && s.flags & RESIDUAL_FIRST == byte;
        let upper = &self.window[self.head..];
        let upper = &upper[..most.min(upper.len())];
        let n = upper.iter().position(|s| !alike(s)).unwrap_or(upper.len());
        if n < upper.len() || n == most {
            return n;
        }
        let lower = &self.window[..most - n];
        n + lower.iter().position(|s| !alike(s)).unwrap_or(lower.len())
    }

    /// The unapplied front leaves the window for the stuck map.
    #[cold]
    fn unpin(&mut self, slot: Slot) {
        let extra = self.extra.iter().map(|e| e[self.head]).collect();
        self.stuck.insert(self.base, Stuck { slot, extra });
        self.window_pending -= 1;
        for a in &mut self.archive {
            a.push_placeholder();
        }
    }

    /// Where the window holds `id` (a ring position for [`Messages::at`]
    /// and [`Messages::byte_at`]), if it does.
    #[inline]
    pub(super) fn index(&self, id: MsgId) -> Option<usize> {
        // An id below `base` wraps around to a huge offset.
        let offset = id.wrapping_sub(self.base);
        (offset < self.span as MsgId).then(|| self.position(offset as usize))
    }

    /// The slot of `id`, if the window holds it: a subtraction, a
    /// comparison and a mask (the ledger's fast paths start here).
    #[inline(always)]
    pub(super) fn slot_mut(&mut self, id: MsgId) -> Option<&mut Slot> {
        let offset = id.wrapping_sub(self.base);
        if offset >= self.span as MsgId {
            return None;
        }
        self.window.get_mut((self.head + offset as usize) & self.mask)
    }

    /// The slot at window index `i` (from [`Messages::index`]).
    #[inline]
    pub(super) fn at(&mut self, i: usize) -> &mut Slot {
        &mut self.window[i]
    }

    /// The byte of `domain` at window index `i` (see [`Messages::with_byte`]).
    #[inline]
    pub(super) fn byte_at(&mut self, domain: usize, i: usize) -> &mut u8 {
        match domain {
            0 => &mut self.window[i].flags,
            d => &mut self.extra[d - 1][i],
        }
    }

    /// The state of `id` if it is not applied everywhere yet (in the
    /// window or stuck).
    pub(super) fn unapplied(&mut self, id: MsgId) -> Option<&mut Slot> {
        let slot = match self.index(id) {
            Some(i) => &mut self.window[i],
            None => &mut self.stuck.get_mut(&id)?.slot,
        };
        (slot.remaining > 0).then_some(slot)
    }

    /// Whether `id` was produced and is not applied everywhere yet.
    pub(super) fn is_unapplied(&self, id: MsgId) -> bool {
        match self.index(id) {
            Some(i) => self.window[i].remaining > 0,
            None => self.stuck.contains_key(&id),
        }
    }

    /// Applies `f` to the byte of `id` in `domain` (the first domain's bits
    /// are in the message's byte, shifted by [`FIRST_DOMAIN`]; `domain` 0
    /// also reaches the message's own flags). A settled message keeps only
    /// its residual bits: what `f` sets in others is forgotten.
    #[inline]
    pub(super) fn with_byte<R>(&mut self, domain: usize, id: MsgId, f: impl FnOnce(&mut u8) -> R) -> Option<R> {
        match self.index(id) {
            Some(i) => Some(f(self.byte_at(domain, i))),
            None => self.with_byte_outside(domain, id, f),
        }
    }

    /// [`Messages::with_byte`] for an id the window does not hold.
    #[cold]
    #[inline(never)]
    fn with_byte_outside<R>(&mut self, domain: usize, id: MsgId, f: impl FnOnce(&mut u8) -> R) -> Option<R> {
        if id >= self.base {
            return None;
        }
        if let Some(s) = self.stuck.get_mut(&id) {
            return Some(match domain {
                0 => f(&mut s.slot.flags),
                d => f(&mut s.extra[d - 1]),
            });
        }
        let a = &mut self.archive[domain];
        let mut byte = a.get(id);
        let before = byte;
        let r = f(&mut byte);
        if byte != before {
            a.set(id, byte);
        }
        Some(r)
    }

    /// The message `id`, stuck, is now applied everywhere: its residual
    /// joins the archive.
    pub(super) fn settle_stuck(&mut self, id: MsgId) {
        let Some(s) = self.stuck.remove(&id) else { return };
        self.archive[0].set(id, s.slot.flags);
        for (a, &b) in self.archive[1..].iter_mut().zip(s.extra.iter()) {
            a.set(id, b);
        }
    }

    /// One fewer unapplied message in the window.
    #[inline]
    pub(super) fn settled_in_window(&mut self) {
        self.window_pending -= 1;
    }

    /// Every unapplied message, in id order, with its byte per domain
    /// after the first.
    pub(super) fn each_unapplied(&self, mut f: impl FnMut(MsgId, &Slot, &dyn Fn(usize) -> u8)) {
        for (&id, s) in &self.stuck {
            f(id, &s.slot, &|d| s.extra[d - 1]);
        }
        for k in 0..self.span {
            let i = self.position(k);
            let slot = &self.window[i];
            if slot.remaining > 0 {
                f(self.base + k as MsgId, slot, &|d| self.extra[d - 1][i]);
            }
        }
    }

    /// Ids below the window, for tests.
    #[cfg(test)]
    pub(super) fn base(&self) -> MsgId {
        self.base
    }

    /// Stuck messages, for tests.
    #[cfg(test)]
    pub(super) fn stuck_len(&self) -> usize {
        self.stuck.len()
    }
}
