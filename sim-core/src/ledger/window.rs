//! Where the ledger keeps each message's state: a sliding window over
//! message ids, a sparse map of the few old messages still unapplied, and
//! an archive of the settled ones' residual flags.
//!
//! Ids are allocated in order and most messages are applied soon after,
//! so the state of ids from a low watermark `base` up lives in a dense
//! ring (`VecDeque`, index = id - base): one [`Slot`] of 24 bytes, plus a
//! byte per extra domain. When the window is longer than `min_len`, its
//! front leaves it:
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

use super::archive::Archive;
use super::{LossCause, APPLIED, DELIVERED, DUP_MASK, FIRST_DOMAIN};
use crate::message::MsgId;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};

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
    base: MsgId,
    window: VecDeque<Slot>,
    /// Per domain after the first, its byte for each id in the window.
    extra: Vec<VecDeque<u8>>,
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
            window: VecDeque::new(),
            extra: vec![VecDeque::new(); domains - 1],
            window_pending: 0,
            stuck: BTreeMap::new(),
            archive,
            min_len,
        }
    }

    /// Ids produced so far.
    #[inline]
    pub(super) fn len(&self) -> MsgId {
        self.base + self.window.len() as MsgId
    }

    /// Bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        let window = self.window.capacity() * std::mem::size_of::<Slot>();
        let extra: usize = self.extra.iter().map(VecDeque::capacity).sum();
        let archive: usize = self.archive.iter().map(Archive::memory_bytes).sum();
        window + extra + archive + self.stuck.len() * (STUCK_ENTRY_BYTES + self.extra.len())
    }

    /// Adds the next message (unapplied everywhere), and lets the oldest
    /// leave the window.
    #[inline]
    pub(super) fn push(&mut self, slot: Slot) {
        debug_assert!(slot.remaining > 0);
        self.window.push_back(slot);
        for e in &mut self.extra {
            e.push_back(0);
        }
        self.window_pending += 1;
        if self.window.len() > self.min_len {
            self.slide();
        }
    }

    /// Moves the front out of the window while the window is long enough
    /// and the front may go (see the module doc).
    #[inline]
    fn slide(&mut self) {
        while self.window.len() > self.min_len {
            let front = self.window[0];
            if front.remaining == 0 {
                self.archive[0].push(front.flags);
                for (a, e) in self.archive[1..].iter_mut().zip(&self.extra) {
                    a.push(e[0]);
                }
            } else if self.window_pending * 2 < self.window.len() {
                self.unpin(front);
            } else {
                return;
            }
            self.window.pop_front();
            for e in &mut self.extra {
                e.pop_front();
            }
            self.base += 1;
        }
    }

    /// The unapplied front leaves the window for the stuck map.
    #[cold]
    fn unpin(&mut self, slot: Slot) {
        let extra = self.extra.iter().map(|e| e[0]).collect();
        self.stuck.insert(self.base, Stuck { slot, extra });
        self.window_pending -= 1;
        for a in &mut self.archive {
            a.push_placeholder();
        }
    }

    /// The window index of `id`, if the window holds it.
    #[inline]
    pub(super) fn index(&self, id: MsgId) -> Option<usize> {
        let i = id.checked_sub(self.base)? as usize;
        (i < self.window.len()).then_some(i)
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
    pub(super) fn with_byte<R>(&mut self, domain: usize, id: MsgId, f: impl FnOnce(&mut u8) -> R) -> Option<R> {
        if let Some(i) = self.index(id) {
            return Some(match domain {
                0 => f(&mut self.window[i].flags),
                d => f(&mut self.extra[d - 1][i]),
            });
        }
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
        for (i, slot) in self.window.iter().enumerate() {
            if slot.remaining > 0 {
                f(self.base + i as MsgId, slot, &|d| self.extra[d - 1][i]);
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
