//! The idempotent producer's rule, as a broker applies it to the numbered
//! sends of one producer (in one partition of a log; queue brokers have no
//! publisher deduplication, as RabbitMQ has it on streams only).
//!
//! Each session of an idempotent producer (a start or a restart) has an
//! epoch, and numbers its messages 0, 1, 2, ... at their first send; every
//! retry carries the same number. The broker appends the next number once;
//! acks an earlier one again without appending it (a retry whose original
//! got through); refuses a session older than the one it appends from (the
//! producer was fenced by its own restart); and holds a number that comes
//! early, ahead of a gap, until the gap fills, since the simulated network
//! keeps no order between messages where a real producer's connection (TCP)
//! would. A newer session starts at number 0: accepting a later number
//! first would make the missing ones look like duplicates. At most
//! [`WINDOW`] sends are held per producer; more are refused (the producer
//! sends them again after its ack timeout).
//!
//! A [`Sequencer`] says what to do with each send ([`Offer`]); the broker
//! appends, answers and counts. A newer session is adopted when its first
//! number is appended (until then the older one may still append), unless
//! the broker adopts it at once with [`Sequencer::start_session`], as a log
//! partition does.
//!
//! Left out: what the broker answers to a repeat (a log answers once the
//! original is replicated, which needs its offset); numbers a log lost in a
//! truncation (it moves the next number with [`Sequencer::resume_at`]);
//! Kafka's epoch bump after a give-up. The numbers appended are durable;
//! the held sends are the broker's memory ([`Sequencer::clear_held`] at a
//! crash).

use std::collections::BTreeMap;

/// Most sends held ahead of a gap per producer (per partition of a log).
pub const WINDOW: usize = 1024;

/// What to do with a numbered send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer<S> {
    /// It comes from a session older than the one appended from (or held
    /// from): refuse it (`fenced`).
    Fenced,
    /// Its number was appended before: answer it, append nothing.
    Duplicate,
    /// It is the next number: append it, then call
    /// [`Sequencer::appended`] (if it was appended) and take the held sends
    /// that follow with [`Sequencer::take_next`].
    Next(S),
    /// It came ahead of a gap and is held until the gap fills (a second
    /// copy of a number already held is dropped).
    Held,
    /// It came ahead of a gap with [`WINDOW`] sends held already: refuse
    /// it (`out-of-order`).
    Overflow,
}

/// One producer's numbered sends as a broker sees them; `S` is a send as
/// the broker keeps it while it is held.
///
/// ```
/// use sim_core::sequencer::{Offer, Sequencer};
///
/// let mut s = Sequencer::default();
/// assert_eq!(s.offer(1, 0, "a"), Offer::Next("a"));
/// s.appended(1, 0);
/// assert_eq!(s.offer(1, 2, "c"), Offer::Held); // 1 is missing
/// assert_eq!(s.offer(1, 0, "a"), Offer::Duplicate);
/// assert_eq!(s.offer(1, 1, "b"), Offer::Next("b"));
/// s.appended(1, 1);
/// assert_eq!(s.take_next(), Some((2, "c")));
/// ```
#[derive(Debug)]
pub struct Sequencer<S> {
    /// The session appended from (0: none yet).
    epoch: u32,
    /// The next number to append in `epoch`.
    next: u64,
    /// The session of the held sends (0: none held).
    held_epoch: u32,
    /// Sends that came ahead of a gap, by number.
    held: BTreeMap<u64, S>,
}

impl<S> Default for Sequencer<S> {
    fn default() -> Self {
        Sequencer { epoch: 0, next: 0, held_epoch: 0, held: BTreeMap::new() }
    }
}

impl<S> Sequencer<S> {
    /// The session appended from (0 before the first append).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The next number to append in [`Sequencer::epoch`].
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Adopts session `epoch` at once, before any of its numbers is
    /// appended: from now on the older sessions are fenced, and what was
    /// held is dropped.
    pub fn start_session(&mut self, epoch: u32) {
        *self = Sequencer { epoch, next: 0, held_epoch: epoch, held: BTreeMap::new() };
    }

    /// Says what to do with `send`, number `seq` of session `epoch`; holds
    /// it when it comes ahead of a gap.
    pub fn offer(&mut self, epoch: u32, seq: u64, send: S) -> Offer<S> {
        if epoch < self.epoch {
            return Offer::Fenced;
        }
        let expected = if epoch == self.epoch {
            if seq < self.next {
                return Offer::Duplicate;
            }
            self.next
        } else {
            0 // a newer session starts at 0
        };
        if seq == expected {
            if self.held_epoch < epoch {
                self.clear_held(); // held sends of a session that is over
            }
            return Offer::Next(send);
        }
        if self.held_epoch < epoch {
            self.held.clear(); // the older session is over
            self.held_epoch = epoch;
        }
        if self.held_epoch > epoch {
            Offer::Fenced
        } else if self.held.len() >= WINDOW && !self.held.contains_key(&seq) {
            Offer::Overflow
        } else {
            self.held.entry(seq).or_insert(send);
            Offer::Held
        }
    }

    /// Number `seq` of session `epoch` was appended (an [`Offer::Next`],
    /// or a send from [`Sequencer::take_next`]).
    pub fn appended(&mut self, epoch: u32, seq: u64) {
        self.appended_batch(epoch, seq, 1);
    }

    /// The batch numbered `seq..seq + count` of session `epoch` was
    /// appended (a log's produce request carries a batch; its base number
    /// is the one offered).
    pub fn appended_batch(&mut self, epoch: u32, seq: u64, count: u64) {
        let in_order = if epoch == self.epoch { seq == self.next } else { epoch > self.epoch && seq == 0 };
        assert!(in_order, "appended ({epoch}, {seq}) out of sequence: next is ({}, {})", self.epoch, self.next);
        self.epoch = epoch;
        self.next = seq + count.max(1);
    }

    /// The held send that comes next now, with its number, if there is one:
    /// append it and call [`Sequencer::appended`], and ask again. (A send
    /// taken is no longer held, appended or not.)
    pub fn take_next(&mut self) -> Option<(u64, S)> {
        if self.held_epoch != self.epoch {
            return None;
        }
        let send = self.held.remove(&self.next)?;
        Some((self.next, send))
    }

    /// Moves the next number to append to `seq` (a log that truncated
    /// appended numbers away takes them again; one that knows numbers are
    /// gone for good skips them).
    pub fn resume_at(&mut self, seq: u64) {
        self.next = seq;
    }

    /// The sends held, in number order.
    pub fn held(&self) -> impl Iterator<Item = &S> + '_ {
        self.held.values()
    }

    /// Drops the held sends (they were in the broker's memory: a crash).
    pub fn clear_held(&mut self) {
        self.held.clear();
        self.held_epoch = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers `seq` of `epoch` and appends it if it comes next.
    fn offer_append(s: &mut Sequencer<u64>, epoch: u32, seq: u64) -> Offer<u64> {
        let offer = s.offer(epoch, seq, seq);
        if offer == Offer::Next(seq) {
            s.appended(epoch, seq);
        }
        offer
    }

    /// Appends every held send that comes next; returns their numbers.
    fn release(s: &mut Sequencer<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some((seq, send)) = s.take_next() {
            assert_eq!(seq, send);
            s.appended(s.epoch(), seq);
            out.push(seq);
        }
        out
    }

    #[test]
    fn appends_each_number_once_in_order() {
        let mut s = Sequencer::default();
        assert_eq!(offer_append(&mut s, 1, 0), Offer::Next(0));
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert_eq!(offer_append(&mut s, 1, 0), Offer::Duplicate);
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Duplicate);
        assert_eq!((s.epoch(), s.next()), (1, 2));
    }

    #[test]
    fn a_session_starts_at_zero() {
        let mut s = Sequencer::default();
        assert_eq!(offer_append(&mut s, 1, 3), Offer::Held);
        assert_eq!(offer_append(&mut s, 1, 0), Offer::Next(0));
        assert!(release(&mut s).is_empty(), "1 and 2 are still missing");
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Next(2));
        assert_eq!(release(&mut s), vec![3]);
    }

    #[test]
    fn holds_what_comes_early_until_the_gap_fills() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        assert_eq!(offer_append(&mut s, 1, 3), Offer::Held);
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Held);
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Held, "a second copy is dropped");
        assert_eq!(s.held().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert_eq!(release(&mut s), vec![2, 3]);
        assert_eq!(s.held().count(), 0);
    }

    #[test]
    fn the_window_bounds_what_is_held() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        for seq in 2..2 + WINDOW as u64 {
            assert_eq!(offer_append(&mut s, 1, seq), Offer::Held);
        }
        assert_eq!(offer_append(&mut s, 1, 5_000), Offer::Overflow);
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Held, "one already held is no overflow");
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert_eq!(release(&mut s).len(), WINDOW);
    }

    #[test]
    fn an_older_session_is_fenced_once_a_newer_one_appends() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        offer_append(&mut s, 1, 1);
        assert_eq!(offer_append(&mut s, 2, 0), Offer::Next(0));
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Fenced);
        assert_eq!(offer_append(&mut s, 1, 9), Offer::Fenced);
    }

    #[test]
    fn a_newer_session_held_early_does_not_stop_the_older_one_appending() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        assert_eq!(offer_append(&mut s, 2, 1), Offer::Held);
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert!(release(&mut s).is_empty(), "the held send is of the next session");
        assert_eq!(offer_append(&mut s, 1, 5), Offer::Fenced, "the newer session holds sends");
        assert_eq!(offer_append(&mut s, 2, 0), Offer::Next(0));
        assert_eq!(release(&mut s), vec![1]);
    }

    #[test]
    fn a_newer_session_drops_what_the_older_one_held() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        offer_append(&mut s, 1, 2);
        assert_eq!(offer_append(&mut s, 2, 0), Offer::Next(0));
        assert_eq!(s.held().count(), 0);
        offer_append(&mut s, 1, 0);
        assert_eq!(offer_append(&mut s, 2, 3), Offer::Held);
        assert_eq!(s.held().copied().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn starting_a_session_at_once_fences_the_older_one_before_it_appends() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        offer_append(&mut s, 1, 2);
        s.start_session(2);
        assert_eq!(s.held().count(), 0);
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Fenced);
        assert_eq!(offer_append(&mut s, 2, 1), Offer::Held);
        assert_eq!(offer_append(&mut s, 2, 0), Offer::Next(0));
        assert_eq!(release(&mut s), vec![1]);
    }

    #[test]
    fn a_crash_forgets_what_was_held_but_not_what_was_appended() {
        let mut s = Sequencer::default();
        offer_append(&mut s, 1, 0);
        offer_append(&mut s, 1, 2);
        s.clear_held();
        assert_eq!(s.held().count(), 0);
        assert_eq!(offer_append(&mut s, 1, 0), Offer::Duplicate);
        assert_eq!(offer_append(&mut s, 1, 1), Offer::Next(1));
        assert!(release(&mut s).is_empty());
    }

    #[test]
    fn resuming_takes_numbers_again_or_skips_them() {
        let mut s = Sequencer::default();
        for seq in 0..4 {
            offer_append(&mut s, 1, seq);
        }
        s.resume_at(2);
        assert_eq!(offer_append(&mut s, 1, 2), Offer::Next(2));
        s.resume_at(5);
        assert_eq!(offer_append(&mut s, 1, 4), Offer::Duplicate);
        assert_eq!(offer_append(&mut s, 1, 5), Offer::Next(5));
    }

    #[test]
    #[should_panic(expected = "out of sequence")]
    fn appending_out_of_sequence_is_a_bug() {
        let mut s: Sequencer<u64> = Sequencer::default();
        s.appended(1, 3);
    }
}
